"""Benchmark the dose audit: RDSRs into tables against a pydicom walk, and SSDE from a CT volume.

Run by hand, not by CI::

    python benchmarks/dose.py [--reports 1000] [--slices 300] [--workdir DIR] [--keep]

1. **Dose reports.** The X-ray dose reports of the shared corpus (``../shared/corpus/rdsr``, the
   dose objects of OpenREM's test suite) are copied, cycling through the files, into
   ``DIR/rdsr/``. Each copy is rewritten with pydicom with a new StudyInstanceUID,
   SeriesInstanceUID, SOPInstanceUID and new Irradiation Event UIDs (UIDREF items of concept
   113769), so that no two copies merge. The copies are crawled into ``DIR/index``. Then, in the
   same run and with a warm page cache, ``dose_tables(index)`` and the whole ``workbench dose``
   command are timed against the serial loop a user would write: ``dcmread`` every file, walk the
   content tree, keep per irradiation event (CT Acquisition 113819 / Irradiation Event X-Ray Data
   113706) the NUM values by concept code, build a DataFrame. All three must find the same events.
2. **SSDE.** A body phantom (water, fat, bone, lungs, with a table under it) of N slices of
   512x512 HU, 0.7 mm pixels, 1 mm slices, is built in memory as a SimpleITK image;
   ``water_equivalent_diameters`` and ``series_ssde`` are timed on it, and their Dw is checked
   against the phantom's own (its HU-weighted area without the table).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import SimpleITK as sitk
from pydicom.uid import generate_uid
from report import Report, machine, version, work_directory

import workbench
from workbench.dose.ssde import conversion_factor, series_ssde, water_equivalent_diameters
from workbench.dose.tables import dose_tables

SEED = 20240607
CORPUS_VERSION = 1  # bump when the copies change, so a reused --workdir is rebuilt
UID_ROOT = "1.2.826.0.1.3680043.8.498.7.3."
REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "corpus" / "rdsr"

# Not X-ray dose reports: an Enhanced SR without dose, radiopharmaceutical (NM) reports, a
# Siemens Enhanced SR without irradiation events, and a Philips dose *image* (a secondary capture
# with the dose in its header: it has no content tree for the pydicom walk).
SKIP = {"ESR_non-dose.dcm", "RF-ESR-Siemens-Varic.dcm", "CT-SC-Philips_Brilliance16P.dcm"}
SKIP_PREFIXES = ("NM-RRDSR-",)

EVENT_CONTAINERS = {"113819", "113706"}  # CT Acquisition; Irradiation Event X-Ray Data
EVENT_UID = "113769"  # Irradiation Event UID
CTDIVOL = "113830"  # Mean CTDIvol

TARGET_EVENTS_PER_S = 1000.0
TARGET_SSDE_S = 5.0
TARGET_DW_ERROR = 0.01  # the tolerance for a water cylinder's Dw

# Phantom geometry (mm).
SIZE = 512
PIXEL_MM = 0.7
SLICE_MM = 1.0


# --------------------------------------------------------------------------- the report copies


def sources() -> list[Path]:
    """The corpus files that are X-ray dose reports, in name order."""
    return [
        p
        for p in sorted(SOURCE.glob("*.dcm"))
        if p.name not in SKIP and not p.name.startswith(SKIP_PREFIXES)
    ]


def new_uid(copy: int, *parts: str) -> str:
    """A UID fixed by the seed, the copy number and what it replaces (so reruns are identical)."""
    return generate_uid(prefix=UID_ROOT, entropy_srcs=[str(SEED), str(copy), *parts])


def event_uid_items(items) -> list:
    """Every UIDREF content item of concept Irradiation Event UID (113769), depth first."""
    found = []
    for item in items:
        name = item.get("ConceptNameCodeSequence")
        if name and item.get("ValueType") == "UIDREF" and name[0].get("CodeValue") == EVENT_UID:
            found.append(item)
        if "ContentSequence" in item:
            found += event_uid_items(item.ContentSequence)
    return found


# This worker's last source report: (path, data set, its event UID items with their original UIDs).
# Jobs come sorted by source, so each file is parsed about once per worker, not once per copy.
_last: tuple[str, pydicom.Dataset, list[tuple[pydicom.Dataset, str]]] | None = None


def write_copy(job: tuple[int, str, str]) -> int:
    """Copy one report with new study, series, instance and irradiation event UIDs."""
    global _last
    copy, source, target = job
    if _last is None or _last[0] != source:
        ds = pydicom.dcmread(source)
        items = event_uid_items(ds.get("ContentSequence", []))
        _last = (source, ds, [(item, str(item.UID)) for item in items])
    _, ds, events = _last
    ds.StudyInstanceUID = new_uid(copy, "study")
    ds.SeriesInstanceUID = new_uid(copy, "series")
    ds.SOPInstanceUID = new_uid(copy, "instance")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for item, old in events:  # the same old UID (a repeated event) gets the same new one
        item.UID = new_uid(copy, "event", old)
    ds.save_as(target)
    return copy


def ensure_reports(workdir: Path, count: int) -> tuple[Path, list[Path]]:
    """Write the copies unless the work directory already holds exactly these."""
    root = workdir / "rdsr"
    marker = workdir / "dose-rdsr.json"
    files = sources()
    if not files:
        sys.exit(f"no dose reports in {SOURCE}")
    wanted = {
        "reports": count,
        "seed": SEED,
        "version": CORPUS_VERSION,
        "sources": [[p.name, p.stat().st_size] for p in files],
    }
    if marker.exists() and root.is_dir() and json.loads(marker.read_text()) == wanted:
        print(f"reusing {count} report copies in {root}")
        return root, files
    marker.unlink(missing_ok=True)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    jobs = sorted(
        ((i, str(files[i % len(files)]), str(root / f"{i:05d}-{files[i % len(files)].name}"))
         for i in range(count)),
        key=lambda job: (job[1], job[0]),
    )
    start = time.perf_counter()
    with Pool(os.cpu_count()) as pool:
        for _ in pool.imap_unordered(write_copy, jobs, chunksize=8):
            pass
    print(f"wrote {count} report copies of {len(files)} corpus files in {time.perf_counter() - start:.1f} s")
    marker.write_text(json.dumps(wanted))
    return root, files


# --------------------------------------------------------------------------- the baseline


def baseline_walk(paths: list[str]) -> pd.DataFrame:
    """The loop a user would write: dcmread, walk the content tree, NUM values per event."""
    rows = []

    def event_row(container, path):
        row = {"path": path}

        def collect(items):
            for item in items:
                vtype = item.get("ValueType")
                name = item.get("ConceptNameCodeSequence")
                code = name[0].CodeValue if name else None
                if vtype == "NUM" and item.get("MeasuredValueSequence"):
                    value = item.MeasuredValueSequence[0].get("NumericValue")
                    try:
                        row[code] = float(value)
                    except (TypeError, ValueError):  # a vendor's "10.50/ 15.00" or several values
                        row[code] = str(value)
                elif vtype == "UIDREF" and code == EVENT_UID:
                    row["IrradiationEventUID"] = str(item.UID)
                if "ContentSequence" in item:
                    collect(item.ContentSequence)

        collect(container.ContentSequence)
        return row

    def walk(items, path):
        for item in items:
            name = item.get("ConceptNameCodeSequence")
            if item.get("ValueType") == "CONTAINER" and name and name[0].CodeValue in EVENT_CONTAINERS:
                rows.append(event_row(item, path))
            elif "ContentSequence" in item:
                walk(item.ContentSequence, path)

    for path in paths:
        ds = pydicom.dcmread(path)
        walk(ds.get("ContentSequence", []), path)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the phantom


@dataclass
class Phantom:
    """The CT volume and, per slice, the water-equivalent diameter of the body alone (mm)."""

    volume: sitk.Image
    dw_true_mm: np.ndarray
    seconds: float


def make_phantom(slices: int) -> Phantom:
    """A trunk on a table, in HU (int16), LPS, 0.7 mm pixels, 1 mm slices, built in chunks.

    The body is an ellipse whose size changes smoothly along z (lateral 280-320 mm, AP 200-240 mm):
    a 12 mm fat layer (-100 HU) around soft tissue (40 HU), a vertebra (cortex 900 HU around
    marrow 250 HU), and lungs (-820 HU) in the upper third. It lies on a 10 mm mattress (-940 HU)
    on a carbon-fibre table (two 2 mm shells of 250 HU around a 40 mm foam core of -950 HU, as wide
    as the field of view). Noise: Gaussian, 12 HU. The true Dw of a slice is the HU-weighted area
    of the noiseless body (AAPM Report 220 eqs. 3 and 4), without mattress and table.
    """
    start = time.perf_counter()
    rng = np.random.default_rng(SEED)
    centre = (np.arange(SIZE) - (SIZE - 1) / 2.0) * PIXEL_MM
    y, x = centre[:, None], centre[None, :]  # LPS: x to the patient's left, y to the posterior
    table_top = 120.0  # y of the table's top surface
    mattress = 10.0
    hu = np.empty((slices, SIZE, SIZE), dtype=np.int16)
    dw_true = np.empty(slices)
    pixel_area = PIXEL_MM * PIXEL_MM
    for k in range(slices):
        z = k * SLICE_MM
        a = 150.0 + 10.0 * math.sin(2 * math.pi * z / 300.0)  # lateral semi-axis
        b = 110.0 + 10.0 * math.cos(2 * math.pi * z / 250.0)  # AP semi-axis
        cy = table_top - mattress - b  # the back rests on the mattress
        r2 = (x / a) ** 2 + ((y - cy) / b) ** 2
        body = r2 <= 1.0
        inner = (x / (a - 12.0)) ** 2 + ((y - cy) / (b - 12.0)) ** 2 <= 1.0
        s = np.full((SIZE, SIZE), -1000.0, dtype=np.float32)
        s[body] = -100.0
        s[inner] = 40.0
        if k < slices // 3:
            for side in (-1.0, 1.0):
                lung = ((x - side * 0.45 * a) / (0.3 * a)) ** 2 + ((y - cy + 0.1 * b) / (0.6 * b)) ** 2 <= 1.0
                s[lung] = -820.0
        vy = cy + b - 45.0
        d2 = x**2 + (y - vy) ** 2
        s[d2 <= 17.0**2] = 900.0
        s[d2 <= 14.0**2] = 250.0
        dw_true[k] = 2.0 * math.sqrt(float((s[body] / 1000.0 + 1.0).sum()) * pixel_area / math.pi)
        mat = (y > table_top - mattress) & (y <= table_top)
        s[mat & ~body] = -940.0
        s[(centre > table_top) & (centre <= table_top + 44.0)] = -950.0  # whole rows: the table
        s[(centre > table_top) & (centre <= table_top + 2.0)] = 250.0
        s[(centre > table_top + 42.0) & (centre <= table_top + 44.0)] = 250.0
        s += rng.standard_normal((SIZE, SIZE), dtype=np.float32) * 12.0
        np.clip(np.rint(s), -1024, 3071, out=s)
        hu[k] = s
    volume = sitk.GetImageFromArray(hu)
    volume.SetSpacing((PIXEL_MM, PIXEL_MM, SLICE_MM))
    volume.SetOrigin((float(centre[0]), float(centre[0]), 0.0))
    return Phantom(volume, dw_true, time.perf_counter() - start)


def events_rate(events: int, seconds: float) -> str:
    """'1,234 events/s (5.67 s)'."""
    return f"{events / seconds:,.0f} events/s ({seconds:.2f} s)"


def uids(frame: pd.DataFrame) -> set[str]:
    """The Irradiation Event UIDs of a table (empty when it has none)."""
    if frame.empty or "IrradiationEventUID" not in frame.columns:
        return set()
    return {str(u) for u in frame["IrradiationEventUID"].dropna()}


def bench_reports(workdir: Path, count: int) -> Report:
    """Copy and crawl the reports, then time the baseline, dose_tables() and the command."""
    root, files = ensure_reports(workdir, count)
    paths = sorted(str(p) for p in root.iterdir())
    size = 0
    for path in paths:  # warm the page cache: both contenders read from memory
        with open(path, "rb") as fh:
            size += len(fh.read())
    index = workdir / "index"
    shutil.rmtree(index, ignore_errors=True)
    start = time.perf_counter()
    idx = workbench.crawl(root, index=index, quiet=True)
    crawl_s = time.perf_counter() - start

    print(f"baseline: serial pydicom walk of {len(paths):,} reports")
    start = time.perf_counter()
    base = baseline_walk(paths)
    base_s = time.perf_counter() - start

    print("workbench: dose_tables(index)")
    start = time.perf_counter()
    tables = dose_tables(idx)
    wb_s = time.perf_counter() - start

    print("workbench: python -m workbench dose (whole command)")
    out = workdir / "out"
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "workbench", "dose", str(index), "--out", str(out), "--quiet"]
    start = time.perf_counter()
    child = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    cmd_s = time.perf_counter() - start
    (workdir / "dose-command.log").write_text(child.stdout + child.stderr)

    n_base, n_wb = len(base), len(tables.events)
    report = Report(
        f"dose reports: {len(paths):,} RDSR copies of {len(files)} corpus files, {size / 1e6:.0f} MB, "
        f"{n_wb:,} events"
    )
    report.add("crawl of the copies (workbench.crawl, not a target)", f"{len(paths) / crawl_s:,.0f} files/s "
               f"({crawl_s:.2f} s)")
    report.add("baseline: serial pydicom walk", events_rate(n_base, base_s))
    target = f">= {TARGET_EVENTS_PER_S:,.0f} events/s"
    report.add("workbench dose_tables(index)", events_rate(n_wb, wb_s), target,
               n_wb / wb_s >= TARGET_EVENTS_PER_S)
    report.add("ratio dose_tables() / baseline", f"{(n_wb / wb_s) / (n_base / base_s):.2f}x")
    cmd_events = None
    if child.returncode != 0:
        tail = "\n".join((child.stdout + child.stderr).strip().splitlines()[-15:])
        print(f"workbench dose failed (exit {child.returncode}):\n{tail}")
        report.add("workbench dose: whole command", f"error, exit {child.returncode}", "runs", False)
    else:
        cmd_events = pd.read_parquet(out / "dose_events.parquet")
        report.add("workbench dose: whole command", events_rate(len(cmd_events), cmd_s), target,
                   len(cmd_events) / cmd_s >= TARGET_EVENTS_PER_S)
        report.add("ratio whole command / baseline", f"{(len(cmd_events) / cmd_s) / (n_base / base_s):.2f}x")

    # The same events: counts, and the Irradiation Event UIDs themselves.
    counts = [n_base, n_wb] + ([len(cmd_events)] if cmd_events is not None else [])
    same_uids = uids(base) == uids(tables.events) and (cmd_events is None or uids(cmd_events) == uids(base))
    distinct = len(uids(base)) == n_base
    ok = len(set(counts)) == 1 and same_uids and distinct
    value = " = ".join(f"{c:,}" for c in counts)
    value += ", same event UIDs" if same_uids and distinct else ", event UIDs differ or repeat"
    report.add("events: baseline = dose_tables()" + (" = command" if cmd_events is not None else ""),
               value, "equal", ok)
    # CTDIvol of every CT event (the corpus states it in mGy everywhere, so no conversion).
    if CTDIVOL in base.columns and "ctdivol_mgy" in tables.events.columns:
        ours = tables.events.dropna(subset=["ctdivol_mgy"]).set_index("IrradiationEventUID")["ctdivol_mgy"]
        theirs = base.dropna(subset=[CTDIVOL]).set_index("IrradiationEventUID")[CTDIVOL]
        joined = pd.concat([theirs.rename("base"), ours.rename("wb")], axis=1)
        equal = bool(np.allclose(joined["base"], joined["wb"], rtol=1e-9, atol=0, equal_nan=False))
        report.add("CTDIvol per CT event: baseline vs dose_tables()",
                   f"{'equal' if equal else 'differ'} on {len(joined):,} events", "equal", equal)
    report.add("reports dose_tables() could not read", f"{len(tables.errors):,}", "0", tables.errors.empty)
    return report


def bench_ssde(slices: int) -> Report:
    """Build the phantom in memory, then time Dw for every slice and the series SSDE."""
    print(f"SSDE: building a {slices}-slice {SIZE}x{SIZE} phantom in memory")
    phantom = make_phantom(slices)
    volume = phantom.volume
    print(f"SSDE: phantom built in {phantom.seconds:.1f} s; timing water_equivalent_diameters, series_ssde")
    start = time.perf_counter()
    dw = water_equivalent_diameters(volume)
    dw_s = time.perf_counter() - start
    start = time.perf_counter()
    result = series_ssde(volume, 10.0)
    ssde_s = time.perf_counter() - start

    report = Report(
        f"SSDE: phantom of {slices} slices {SIZE}x{SIZE} int16 HU, {PIXEL_MM} mm pixels, {SLICE_MM:g} mm "
        f"slices, table under the body ({volume.GetNumberOfPixels() * 2 / 2**20:.0f} MB)"
    )
    target = f"< {TARGET_SSDE_S:g} s"
    report.add("water_equivalent_diameters(volume)", f"{dw_s:.2f} s ({slices / dw_s:,.0f} slices/s)", target,
               dw_s < TARGET_SSDE_S)
    report.add("series_ssde(volume, 10.0)", f"{ssde_s:.2f} s: SSDE {result.ssde_mgy:.2f} mGy, "
               f"mean Dw {result.dw_mean_mm / 10:.1f} cm, f {result.conversion_factor:.3f}", target,
               ssde_s < TARGET_SSDE_S)
    error = np.abs(dw / phantom.dw_true_mm - 1.0)
    worst = int(np.nanargmax(error)) if np.isfinite(error).any() else 0
    ok = bool(np.isfinite(dw).all() and error.max() <= TARGET_DW_ERROR)
    report.add(
        "Dw per slice vs the phantom's own (no table)",
        f"max |error| {100 * float(np.nanmax(error)):.2f} % (slice {worst}), "
        f"mean {100 * float(np.nanmean(error)):.2f} %, {int(np.isfinite(dw).sum())} of {slices} slices",
        f"<= {100 * TARGET_DW_ERROR:g} %",
        ok,
    )
    expected = conversion_factor(float(np.mean(dw)), "32") * 10.0
    same = bool(np.allclose(result.dw_mm, dw, rtol=0, atol=0) and math.isclose(result.ssde_mgy, expected))
    report.add("series_ssde = f(mean Dw) x 10 mGy, same Dw", f"{'equal' if same else 'differ'} "
               f"({expected:.2f} mGy)", "equal", same)
    report.add("slices flagged truncated", f"{int(result.truncated.sum())}", "0", not result.truncated.any())
    return report


def main() -> int:
    """Parse arguments, run both benchmarks and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=1000, metavar="N", help="RDSR copies (0 skips)")
    parser.add_argument("--slices", type=int, default=300, metavar="S", help="phantom slices (0 skips)")
    parser.add_argument("--workdir", type=Path, help="reuse/keep the copies here (default: temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    args = parser.parse_args()
    if args.reports < 0 or args.slices < 0:
        parser.error("counts must be >= 0")

    with work_directory(args.workdir, "wb-dose-bench-", keep=args.keep) as workdir:
        print(machine())
        print(
            f"python {platform.python_version()}, pydicom {pydicom.__version__}, numpy {np.__version__}, "
            f"pandas {pd.__version__}, pyarrow {version('pyarrow')}, scipy {version('scipy')}, "
            f"SimpleITK {sitk.Version.VersionString()}, workbench {version('workbench')} (cwd {REPO})"
        )
        print(f"workdir: {workdir}")
        reports = []
        if args.reports:
            reports.append(bench_reports(workdir, args.reports))
        if args.slices:
            reports.append(bench_ssde(args.slices))
    for report in reports:
        report.print()
    notes = []
    if args.reports and args.reports != 1000:
        notes.append("the events/s target is defined for 1,000 reports")
    if args.slices and args.slices != 300:
        notes.append("the SSDE target is defined for 300 slices")
    if notes:
        print("\nnote: " + "; ".join(notes) + ".")
    failed = [r.title.split(":")[0] for r in reports if r.failed]
    print(f"\noverall: {'FAIL (' + ', '.join(failed) + ')' if failed else 'PASS'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
