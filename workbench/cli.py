"""The ``workbench`` command: a thin layer that parses arguments and calls the Python API.

Exit codes (DESIGN.md): 0 success; 1 the work ran but some inputs failed (they
are listed); 2 usage error. Errors are one sentence on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib.abc
import os
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from workbench.index import crawl, open_index
from workbench.index.crawler import NOT_FAILURES, under_any
from workbench.index.store import IndexLockedError
from workbench.net.association import DEFAULT_CALLING_AET, PacsError
from workbench.volume.geometry import SeriesGeometryError

if TYPE_CHECKING:
    import pandas as pd

EXIT_OK, EXIT_FAILED_INPUTS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command used wrongly: exit code 2."""


def _print_frame(frame: pd.DataFrame, max_rows: int = 50) -> None:
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60):
        print(frame.to_string(index=False, max_rows=max_rows) if not frame.empty else "(no rows)")


def print_status(directory: str) -> int:
    """Print the status of an index; return the number of failed inputs it records."""
    index = open_index(directory)
    status = index.status()
    crawl_stats = status["last_crawl"]
    print(f"index {index.directory}")
    print("  " + ", ".join(f"{n} {table}" for table, n in status["counts"].items()))
    print(f"  duplicate SOPInstanceUIDs: {status['duplicates']}")
    if crawl_stats and crawl_stats.get("queries"):
        print(
            f"  last crawl {crawl_stats['started']} of {crawl_stats['sources'][0]}: "
            f"{crawl_stats['queries']} queries, {crawl_stats['files_seen']} instances "
            f"({crawl_stats['instances_added']} new), {crawl_stats['rows_removed']} vanished rows removed, "
            f"{crawl_stats['failed']} failed queries, "
            f"{'complete' if crawl_stats.get('complete') else 'MAY BE INCOMPLETE (see the notes)'}, "
            f"{crawl_stats['seconds']:.1f} s"
        )
        for note in crawl_stats.get("notes", []):
            print(f"  note: {note}")
    elif crawl_stats:
        print(
            f"  last crawl {crawl_stats['started']}: {crawl_stats['files_seen']} files seen, "
            f"{crawl_stats['files_read']} read, {crawl_stats['files_unchanged']} unchanged, "
            f"{crawl_stats['rows_removed']} rows removed, {crawl_stats['failed']} failed, "
            f"{crawl_stats['seconds']:.1f} s with {crawl_stats['workers']} worker(s)"
        )
        for note in crawl_stats.get("notes", []):
            print(f"  note: {note}")
    print("\nper modality:")
    _print_frame(status["modalities"])
    if not status["error_classes"].empty:
        print("\nerrors per class:")
        _print_frame(status["error_classes"])
    return int(crawl_stats.get("failed", 0)) if crawl_stats else 0


class _WithoutPandas(importlib.abc.MetaPathFinder):
    """Refuses to import pandas in a process that does not need it."""

    def find_spec(self, name: str, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is not used by this command")
        return None


def _cmd_crawl(args: argparse.Namespace) -> int:
    # pyarrow imports pandas on its first conversion of Python values, only to look for pandas
    # objects; the crawl has none, and this process ends with the command: a fifth of a second.
    if "pandas" not in sys.modules:
        sys.meta_path.insert(0, _WithoutPandas())
    tags = [t for t in (args.tags or "").split(",") if t.strip()]
    pacs = [s for s in args.sources if "://" in s]
    folders = [s for s in args.sources if "://" not in s]
    failed = EXIT_OK
    if folders:
        try:
            index = crawl(
                folders, index=args.index, workers=args.workers, tags=tags,
                full_header=args.full_header, rescan=args.rescan, quiet=args.quiet,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        failed = _report_crawl(index)
    for url in pacs:
        failed = max(failed, _crawl_pacs(url, args))
    return failed


def _date(text: str):
    import datetime as dt

    try:
        return dt.date.fromisoformat(text.replace("-", "")[:8] if len(text) == 8 else text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _crawl_pacs(url: str, args: argparse.Namespace) -> int:
    from workbench.index.remote import crawl_pacs

    modalities = [m for value in args.modality or () for m in value.split(",") if m.strip()]
    try:
        index = crawl_pacs(
            url, args.index, calling_aet=args.calling_aet, timeout=args.timeout,
            max_results=args.max_results or None, level=args.level, since=args.since, until=args.until,
            modalities=modalities, quiet=args.quiet, tls=_tls(args), connections=args.connections,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    stats = index.last_crawl
    print(
        f"crawled {stats['sources'][0]} in {stats['seconds']:.1f} s: {stats['queries']} queries, "
        f"{stats['files_seen']} instances ({stats['instances_added']} new, {stats['files_unchanged']} "
        f"already retrieved), {stats['rows_removed']} vanished rows removed"
    )
    for note in stats.get("notes", []):
        print(f"workbench: {stats['sources'][0]}: {note}", file=sys.stderr)
    if stats["failed"] or not stats["complete"]:
        print(f"workbench: {stats['sources'][0]}: the crawl may be incomplete: see the notes above and "
              "the queries table", file=sys.stderr)
        return EXIT_FAILED_INPUTS
    print("complete: every query under the PACS's limit, and its counts agree")
    return EXIT_OK


def _report_crawl(index) -> int:
    """Print what a folder crawl did; return its exit code."""
    stats = index.last_crawl
    print(
        f"crawled {stats['files_seen']} files in {stats['seconds']:.1f} s: {stats['files_read']} read, "
        f"{stats['files_unchanged']} unchanged, {stats['instances_added']} instances and "
        f"{stats['errors_added']} errors written, {stats['rows_removed']} stale rows removed"
    )
    for note in stats.get("notes", []):
        print(f"note: {note}")
    if stats["failed"]:
        errors = sorted(
            (row["path"], row["member"] or "", row["error"], row["message"])
            for row in index.store.read_table("errors").to_pylist()
            if row["error"] not in NOT_FAILURES and under_any(row["path"], stats["sources"])
        )
        for path, member, error, message in errors[:20]:
            where = f"{path}!{member}" if member else path
            print(f"workbench: {where}: {error}: {message}", file=sys.stderr)
        if len(errors) > 20:
            print(f"workbench: ... and {len(errors) - 20} more: see the errors table", file=sys.stderr)
        return EXIT_FAILED_INPUTS
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    print_status(args.index)
    return EXIT_OK


def _cmd_sql(args: argparse.Namespace) -> int:
    import duckdb

    index = open_index(args.index)
    try:
        result = index.sql(args.query)
    except duckdb.Error as exc:
        raise UsageError(f"the query failed: {str(exc).splitlines()[0]}") from None
    if args.csv:
        result.to_csv(sys.stdout, index=False)
    else:
        _print_frame(result, max_rows=args.max_rows)
    return EXIT_OK


def _plane(text: str) -> str | tuple[float, float, float]:
    """``axial``/``coronal``/``sagittal`` or an oblique normal ``nx,ny,nz``."""
    if text.lower() in ("axial", "coronal", "sagittal"):
        return text.lower()
    try:
        normal = tuple(float(v) for v in text.split(","))
    except ValueError:
        normal = ()
    if len(normal) != 3:
        raise UsageError(f"--plane must be axial, coronal, sagittal or nx,ny,nz, not {text!r}")
    return normal


def _load(args: argparse.Namespace):
    from workbench.volume import load_series

    return load_series(
        open_index(args.index), args.series_uid, volume=args.volume, as_4d=getattr(args, "as_4d", False),
        on_irregular=args.on_irregular, tilt=args.tilt,
    )


def _cmd_volume(args: argparse.Namespace) -> int:
    from workbench.volume import save_volume

    image = _load(args)
    try:
        path = save_volume(image, args.out)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    size = "x".join(str(n) for n in image.GetSize())
    spacing = ", ".join(f"{s:g}" for s in image.GetSpacing())
    print(f"wrote {path}: {size} voxels, spacing {spacing} mm, {image.GetPixelIDTypeAsString()}")
    return EXIT_OK


def _cmd_render(args: argparse.Namespace) -> int:
    from workbench.volume.reformat import reformat
    from workbench.volume.render import render_png
    from workbench.volume.window import parse_window

    try:
        window = parse_window(args.window)
        plane = _plane(args.plane)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    image = _load(args)
    try:
        picture = reformat(image, plane, position=args.position, index=args.index_number,
                           slab=args.slab, mode=args.mode)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    path = render_png(picture, args.out, window)
    print(f"wrote {path}: {args.mode} of the {args.plane} plane"
          + (f", {args.slab:g} mm slab" if args.slab else ""))
    return EXIT_OK


def _cmd_anonymize(args: argparse.Namespace) -> int:
    import duckdb

    from workbench.deid.exporter import export, load_blanking_rules, load_key
    from workbench.deid.verify import format_findings, phi_values, verify_export

    if args.verify:
        if not args.index_dir:
            raise UsageError("--verify EXPORT needs --index DIR, the index the export came from")
        findings = verify_export(args.verify, phi_values(open_index(args.index_dir)))
        if findings:
            print(format_findings(findings), file=sys.stderr)
            print(f"workbench anonymize: {len(findings)} identifying value(s) found in {args.verify}",
                  file=sys.stderr)
            return EXIT_FAILED_INPUTS
        print(f"verified {args.verify}: no identifying value of the index found")
        return EXIT_OK
    if not args.index or not args.out:
        raise UsageError("give the index DIR and --out EXPORT (or --verify EXPORT --index DIR)")
    safe_private = [_safe_private(text) for text in args.safe_private or ()]
    if "retain_safe_private" in (args.option or ()) and not safe_private:
        print("workbench: retain_safe_private without --safe-private keeps no private element",
              file=sys.stderr)
    if safe_private and "retain_safe_private" not in (args.option or ()):
        print("workbench: --safe-private without --option retain_safe_private: every private element goes",
              file=sys.stderr)
    try:
        blanking = load_blanking_rules(args.blanking) if args.blanking else []
    except (ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None
    index = open_index(args.index)
    key = load_key(args.key_file or index.directory / "deid.key")
    try:
        result = export(
            index, args.out, key=key, where=args.where, options=args.option or (), map_path=args.map,
            zip_output=args.zip, uid_root=args.uid_root, safe_private=safe_private,
            allow_burned_in=args.allow_burned_in, blanking=blanking,
            verify=not args.no_verify, quiet=args.quiet,
        )
    except (ValueError, duckdb.Error) as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    print(f"exported {result.exported} file(s) to {result.out} ({result.already_there} already there), "
          f"{len(result.held_back)} held back, {len(result.failed)} failed")
    for where, reason in result.held_back:
        print(f"workbench: held back {where}: {reason}", file=sys.stderr)
    for where, reason in result.failed:
        print(f"workbench: {where}: {reason}", file=sys.stderr)
    if result.verified:
        if result.findings:
            print(format_findings(result.findings), file=sys.stderr)
        print("verification: " + ("no identifying value found" if not result.findings
                                   else f"{len(result.findings)} identifying value(s) found"))
    if result.archive:
        print(f"wrote {result.archive}")
    return EXIT_OK if result.clean else EXIT_FAILED_INPUTS


def _safe_private(text: str) -> tuple[str, int]:
    """``CREATOR:EE`` (the private creator, the element's last two hex digits) as a pair."""
    creator, _, element = text.rpartition(":")
    if not creator.strip() or not re.fullmatch(r"[0-9A-Fa-f]{2}", element) or int(element, 16) < 0x10:
        raise UsageError(f"--safe-private {text!r} is not CREATOR:EE, e.g. 'ACME 1.1:10' for (gggg,xx10) "
                         "of the block ACME 1.1 reserves")
    return creator.strip(), int(element, 16)


def _cmd_dose(args: argparse.Namespace) -> int:
    from workbench.dose.audit import run_audit

    try:
        audit = run_audit(open_index(args.index), args.out, ssde=args.ssde, drl_path=args.drl,
                          quiet=args.quiet)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(audit.summary())
    for path, member, error in audit.tables.errors[["path", "member", "error"]].itertuples(index=False):
        where = f"{path}!{member}" if isinstance(member, str) else path
        print(f"workbench: {where}: {error}", file=sys.stderr)
    return EXIT_FAILED_INPUTS if audit.failed else EXIT_OK


def _cmd_echo(args: argparse.Namespace) -> int:
    from workbench.net.verification import echo

    try:
        checks = echo(args.url, calling_aet=args.calling_aet, timeout=args.timeout, move_port=args.move_port,
                      move_aet=args.move_aet, move_host=args.move_host, move_study=args.move_study,
                      tls=_tls(args))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for check in checks:
        print(check)
    return EXIT_OK if all(check.ok for check in checks) else EXIT_FAILED_INPUTS


def _tls(args: argparse.Namespace):
    """The TLS files the options give, or None."""
    from workbench.net.address import TlsFiles

    if not (args.tls_ca or args.tls_cert or args.tls_key):
        return None
    return TlsFiles(args.tls_ca, args.tls_cert, args.tls_key)


def _tls_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("DICOM TLS (PS3.15 Annex B.1; implied by dicoms://)")
    group.add_argument("--tls-ca", metavar="PEM", help="CA certificates that sign the PACS's certificate")
    group.add_argument("--tls-cert", metavar="PEM", help="our certificate, when the PACS asks for one")
    group.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")


def _cmd_retrieve(args: argparse.Namespace) -> int:
    from workbench.net.retrieval import retrieve

    try:
        result = retrieve(
            args.index, args.into, where=args.where, method=args.method, calling_aet=args.calling_aet,
            move_aet=args.move_aet, move_port=args.move_port, move_host=args.move_host,
            timeout=args.timeout, quiet=args.quiet, tls=_tls(args), connections=args.connections,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(
        f"retrieved {result.received} of {result.selected} selected instances into {args.into} "
        f"({result.already} already there, {result.indexed} indexed), {result.bytes / 1e6:.1f} MB in "
        f"{result.seconds:.1f} s ({result.megabytes_per_second:.1f} MB/s)"
    )
    for what, reason in result.failed:
        print(f"workbench: {what}: {reason}", file=sys.stderr)
    return EXIT_FAILED_INPUTS if result.failed else EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from workbench.demo import run_demo

    return run_demo(args.out, quiet=args.quiet)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``workbench`` command."""
    parser = argparse.ArgumentParser(prog="workbench", description="A notebook-first DICOM workbench.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("crawl", help="crawl folders, zip archives and PACSs into a Parquet index")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="folder, file, .zip archive, dicom://AET@HOST:PORT or dicomweb+http(s)://HOST:PORT/PATH")
    p.add_argument("--index", required=True, metavar="DIR", help="index directory (created or updated)")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="reading processes (default: CPUs)")
    p.add_argument("--tags", metavar="KW,...", help="extra DICOM keywords to index as columns")
    p.add_argument("--full-header", action="store_true", help="also store the whole header as DICOM JSON")
    p.add_argument("--rescan", action="store_true", help="read every file again, changed or not")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    pacs = p.add_argument_group("PACS sources")
    pacs.add_argument("--calling-aet", default=DEFAULT_CALLING_AET, metavar="AET",
                      help="this side's AE title, as registered on the PACS (default: %(default)s)")
    pacs.add_argument("--level", choices=("study", "series", "instance"), default="instance",
                      help="how deep to query (default: %(default)s; only instance level writes rows)")
    pacs.add_argument("--since", type=_date, metavar="DATE", help="only studies from this date (YYYY-MM-DD)")
    pacs.add_argument("--until", type=_date, metavar="DATE", help="only studies up to this date")
    pacs.add_argument("--modality", action="append", metavar="CT,MR",
                      help="only studies with these modalities")
    pacs.add_argument("--max-results", type=int, default=1000, metavar="N",
                      help="the PACS's limit of results per query: windows reaching it are split "
                           "(default: %(default)s; 0 when it has none)")
    pacs.add_argument("--timeout", type=float, default=30.0, metavar="S", help="seconds per reply")
    pacs.add_argument("--connections", type=int, default=2, metavar="N",
                      help="associations querying at once (default: %(default)s)")
    _tls_arguments(p)
    p.set_defaults(func=_cmd_crawl)

    p = sub.add_parser("status", help="counts per table, modality and error class; the last crawl")
    p.add_argument("index", metavar="DIR")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("sql", help="run DuckDB SQL over the views instances, series, studies, errors")
    p.add_argument("index", metavar="DIR")
    p.add_argument("query", metavar="SQL")
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    p.add_argument("--max-rows", type=int, default=100, metavar="N", help="rows to print (table output)")
    p.set_defaults(func=_cmd_sql)

    def series_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("index", metavar="DIR", help="index directory")
        p.add_argument("series_uid", metavar="SERIES_UID", help="SeriesInstanceUID to load")
        p.add_argument("--volume", type=int, metavar="N", help="which volume, when the series holds several")
        p.add_argument("--on-irregular", choices=("raise", "resample"), default="raise",
                       help="uneven slice spacing: refuse (default) or resample onto a uniform grid")
        p.add_argument("--tilt", choices=("correct", "keep"), default="correct",
                       help="gantry tilt: shear the slices back (default) or keep the tilted geometry")

    p = sub.add_parser("volume", help="a series as a .nii.gz / .nrrd / .mha volume")
    series_arguments(p)
    p.add_argument("--as-4d", action="store_true", help="every volume of the series, along a 4th axis")
    p.add_argument("--out", required=True, metavar="FILE", help="output .nii.gz, .nii, .nrrd or .mha")
    p.set_defaults(func=_cmd_volume)

    p = sub.add_parser("render", help="a slice, MPR, MIP or MinIP slab of a series as PNG")
    series_arguments(p)
    p.add_argument("--plane", default="axial", help="axial, coronal, sagittal or an oblique normal nx,ny,nz")
    p.add_argument("--mode", choices=("slice", "mip", "minip", "mean"), default="slice")
    p.add_argument("--slab", type=float, default=0.0, metavar="MM", help="slab thickness in mm")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--position", type=float, metavar="MM", help="plane position along its normal, mm")
    where.add_argument("--index", dest="index_number", type=int, metavar="I", help="slice number instead")
    p.add_argument("--window", default="auto", metavar="PRESET|C,W",
                   help="a CT preset (brain, lung, bone, ...), auto, or center,width")
    p.add_argument("--out", required=True, metavar="FILE.png")
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("anonymize", help="a de-identified copy of a selection (PS3.15 Annex E), verified")
    p.add_argument("index", nargs="?", metavar="DIR", help="index directory")
    p.add_argument("--where", default="TRUE", metavar="SQL", help="condition on the instances view")
    p.add_argument("--out", metavar="EXPORT", help="export folder (created)")
    p.add_argument("--option", action="append", metavar="NAME",
                   help="a profile option, e.g. retain_modified_dates, clean_descriptors (repeatable)")
    p.add_argument("--key-file", metavar="F", help="project key (default: DIR/deid.key, created if missing)")
    p.add_argument("--map", metavar="MAP.parquet", help="write the original -> pseudonym map here")
    p.add_argument("--zip", action="store_true", help="also write EXPORT.zip once verified")
    p.add_argument("--uid-root", metavar="ROOT", help="root for new UIDs (default 2.25)")
    p.add_argument("--safe-private", action="append", metavar="CREATOR:EE",
                   help="with --option retain_safe_private, a private element known to be safe: its "
                        "creator and the last two hex digits of its element (repeatable)")
    p.add_argument("--allow-burned-in", action="store_true",
                   help="export objects that often carry identifying text in their pixels")
    p.add_argument("--blanking", metavar="RULES.json",
                   help="rectangles to paint over in the images they match (by modality, model, size); "
                        "those images are then exported")
    p.add_argument("--no-verify", action="store_true", help="skip the verification at the end")
    p.add_argument("--verify", metavar="EXPORT", help="only verify an existing export (with --index)")
    p.add_argument("--index", dest="index_dir", metavar="DIR", help="with --verify: the source index")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_anonymize)

    p = sub.add_parser("dose", help="dose reports into tables; SSDE, DRL comparison and charts")
    p.add_argument("index", metavar="DIR", help="index directory")
    p.add_argument("--out", required=True, metavar="OUTDIR", help="where the tables and charts go")
    p.add_argument("--ssde", action="store_true", help="size-specific dose from the CT images (AAPM 204/220)")
    p.add_argument("--drl", metavar="FILE", help="a DRL table (CSV) to compare against")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_dose)

    p = sub.add_parser("retrieve", help="fetch selected PACS instances into a local cache and index them")
    p.add_argument("index", metavar="DIR", help="index directory holding a PACS crawl")
    p.add_argument("--where", metavar="SQL", help="condition on the instances view (default: everything)")
    p.add_argument("--into", required=True, metavar="CACHE", help="the cache folder (created when missing)")
    p.add_argument("--method", choices=("get", "move", "wado"), default="get",
                   help="C-GET (default), C-MOVE to a storage SCP run here, or WADO-RS")
    p.add_argument("--calling-aet", default=DEFAULT_CALLING_AET, metavar="AET",
                   help="our AE title (default: %(default)s)")
    p.add_argument("--move-aet", metavar="AET", help="C-MOVE destination AE title (default: --calling-aet)")
    p.add_argument("--move-port", type=int, default=11112, metavar="P",
                   help="port of the C-MOVE storage SCP, as registered on the PACS (default: %(default)s)")
    p.add_argument("--move-host", default="127.0.0.1", metavar="HOST",
                   help="address the C-MOVE storage SCP listens on (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S", help="seconds per reply (default: 30)")
    p.add_argument("--connections", type=int, default=2, metavar="N",
                   help="associations fetching at once (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _tls_arguments(p)
    p.set_defaults(func=_cmd_retrieve)

    p = sub.add_parser("echo", help="check a PACS: C-ECHO and the services it accepts from us")
    p.add_argument("url", metavar="URL", help="dicom://AET@HOST:PORT (dicoms:// for TLS)")
    p.add_argument("--calling-aet", default="WORKBENCH", metavar="AET",
                   help="our AE title (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds to wait (default: 10)")
    p.add_argument("--move-port", type=int, metavar="P",
                   help="also check C-MOVE back to us, with a storage SCP on this port")
    p.add_argument("--move-aet", metavar="AET", help="C-MOVE destination AE title (default: --calling-aet)")
    p.add_argument("--move-host", default="127.0.0.1", metavar="HOST",
                   help="address the storage SCP listens on (default: %(default)s)")
    p.add_argument("--move-study", metavar="UID", help="a study to move back (its instances are dropped)")
    _tls_arguments(p)
    p.set_defaults(func=_cmd_echo)

    p = sub.add_parser("demo", help="crawl the bundled sample data into a fresh index and show it")
    p.add_argument(
        "--out", default="workbench-demo", metavar="DIR", help="where to write (default: %(default)s)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``workbench`` command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"workbench {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (FileNotFoundError, NotADirectoryError, IndexLockedError, PermissionError,
            SeriesGeometryError) as exc:
        print(f"workbench {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED_INPUTS
    except PacsError as exc:
        advice = f" ({exc.advice})" if exc.advice else ""
        print(f"workbench {args.command}: {exc}{advice}", file=sys.stderr)
        return EXIT_FAILED_INPUTS
    except KeyboardInterrupt:
        print(f"workbench {args.command}: interrupted; run it again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (``| head``): nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
