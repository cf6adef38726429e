"""Export a selection of the index as a de-identified copy, with a manifest and a verification.

The export never touches the sources. Each file is anonymized in a worker process and
written under a temporary name, then renamed; its name is made from pseudonyms only
(``<patient>/<study>/<series>/<instance>.dcm``), so a re-run with the same key finds what
is done and skips it: a killed export run again finishes with every file exactly once.

Pixel data are copied byte for byte from the source (only headers need work), unless a
blanking rule has to paint over burned-in text. Objects known to carry identifying text in
their pixels are held back unless the user allows them (PS3.15 E.3.1, Clean Pixel Data).
"""

from __future__ import annotations

import csv
import hashlib
import io
import multiprocessing
import os
import secrets
import struct
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from workbench.deid.anonymize import Anonymizer
from workbench.deid.encoded import anonymize_encoded
from workbench.deid.profile import CLEAN_PIXEL_DATA_CODE
from workbench.dicom.header import Header, encapsulated_end, read_header
from workbench.dicom.writer import encode_part10
from workbench.index.store import write_atomic
from workbench.progress import progress_bar

#: SOP classes whose pixels commonly carry identifying text: secondary captures (dose screens),
#: ultrasound, encapsulated documents.
BURNED_IN_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.1": "Multi-frame Single Bit Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.7.3": "Multi-frame Grayscale Word Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound Image Storage",
    "1.2.840.10008.5.1.4.1.1.6.2": "Enhanced US Volume Storage",
    "1.2.840.10008.5.1.4.1.1.3.1": "Ultrasound Multi-frame Image Storage",
    "1.2.840.10008.5.1.4.1.1.104.1": "Encapsulated PDF Storage",
    "1.2.840.10008.5.1.4.1.1.104.2": "Encapsulated CDA Storage",
}
_ROW_COLUMNS = [
    "path", "member", "PatientID", "PatientName", "StudyInstanceUID", "SeriesInstanceUID",
    "SOPInstanceUID", "SOPClassUID", "Modality", "ManufacturerModelName", "Rows", "Columns",
    "BurnedInAnnotation", "FrameOfReferenceUID",
]


@dataclass(frozen=True)
class BlankingRule:
    """Rectangles to paint over in images that match, the way RSNA's CTP pixel anonymizer does.

    Attributes
    ----------
    rectangles : sequence of (x0, y0, x1, y1)
        Pixel columns and rows, ``x1`` and ``y1`` excluded.
    modality, model : str, optional
        Match Modality and ManufacturerModelName (case-insensitive); None matches any.
    rows, columns : int, optional
        Match the image size; None matches any.
    """

    rectangles: tuple[tuple[int, int, int, int], ...]
    modality: str | None = None
    model: str | None = None
    rows: int | None = None
    columns: int | None = None

    def matches(self, row: dict[str, Any]) -> bool:
        """Whether an ``instances`` row is an image this rule blanks."""
        def same(wanted, value):
            return wanted is None or str(value or "").strip().lower() == str(wanted).strip().lower()

        return (
            same(self.modality, row.get("Modality")) and same(self.model, row.get("ManufacturerModelName"))
            and (self.rows is None or row.get("Rows") == self.rows)
            and (self.columns is None or row.get("Columns") == self.columns)
        )


def load_blanking_rules(path: str | os.PathLike) -> list[BlankingRule]:
    """The blanking rules in a JSON file: a list of objects with ``rectangles`` (a list of
    ``[x0, y0, x1, y1]``, pixel columns and rows, ``x1`` and ``y1`` excluded) and, to choose the
    images, any of ``modality``, ``model`` (ManufacturerModelName), ``rows`` and ``columns``::

        [{"modality": "US", "model": "LOGIQ E9", "rows": 600, "columns": 800,
          "rectangles": [[0, 0, 800, 60]]}]

    Raises
    ------
    ValueError
        Naming the file and the rule, when the file is not such a list.
    OSError
        When the file cannot be read.
    """
    import json

    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"the blanking rules {path} are not JSON: {exc}") from None
    if not isinstance(entries, list):
        kind = type(entries).__name__
        raise ValueError(f"the blanking rules {path} must be a JSON list of rules, not a {kind}")
    return [_blanking_rule(entry, f"{path}: rule {number}") for number, entry in enumerate(entries, 1)]


def _blanking_rule(entry: Any, where: str) -> BlankingRule:
    known = {"rectangles", "modality", "model", "rows", "columns"}
    if not isinstance(entry, dict) or not set(entry) <= known:
        extra = sorted(set(entry) - known) if isinstance(entry, dict) else entry
        raise ValueError(f"{where}: expected an object with {sorted(known)}, got {extra!r}")
    rectangles = entry.get("rectangles")
    if not isinstance(rectangles, list) or not rectangles:
        raise ValueError(f"{where}: 'rectangles' must be a non-empty list of [x0, y0, x1, y1]")
    for rectangle in rectangles:
        if not (isinstance(rectangle, list) and len(rectangle) == 4
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in rectangle)
                and rectangle[0] < rectangle[2] and rectangle[1] < rectangle[3]):
            raise ValueError(f"{where}: the rectangle {rectangle!r} is not [x0, y0, x1, y1] with "
                             "0 <= x0 < x1 and 0 <= y0 < y1")
    for name in ("rows", "columns"):
        if entry.get(name) is not None and (not isinstance(entry[name], int) or entry[name] <= 0):
            raise ValueError(f"{where}: {name!r} must be a positive whole number, not {entry[name]!r}")
    for name in ("modality", "model"):
        if entry.get(name) is not None and not isinstance(entry[name], str):
            raise ValueError(f"{where}: {name!r} must be text, not {entry[name]!r}")
    return BlankingRule(tuple(tuple(r) for r in rectangles), entry.get("modality"), entry.get("model"),
                        entry.get("rows"), entry.get("columns"))


@dataclass
class ExportResult:
    """What an export did. Paths in ``held_back`` and ``failed`` are the sources' (they are PHI)."""

    out: Path
    exported: int = 0
    already_there: int = 0
    held_back: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    findings: list = field(default_factory=list)
    verified: bool = False
    archive: Path | None = None

    @property
    def clean(self) -> bool:
        """Exported without failures and verified with no finding."""
        return not self.failed and not self.findings


def load_key(path: str | os.PathLike, create: bool = True) -> bytes:
    """The project key in ``path``; a new random 32-byte key is written there when missing.

    The key decides every pseudonym: keep it, out of the export, to re-run exports that match.

    Raises
    ------
    FileNotFoundError
        When the file is missing and ``create`` is False.
    ValueError
        When the file holds fewer than 16 bytes.
    """
    path = Path(path)
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"the key file {path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    key = path.read_bytes()
    if len(key) < 16:
        raise ValueError(f"the key file {path} holds {len(key)} bytes; a key needs at least 16")
    return key


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def manifest_row(anonymizer: Anonymizer, row: dict[str, Any]) -> dict[str, str]:
    """The export's manifest line of an index row: its file name, made of pseudonyms only, and
    its pseudonymous patient and UIDs (no PHI)."""
    patient = anonymizer.patient(str(row.get("PatientID") or ""), str(row.get("PatientName") or ""))
    study = anonymizer.uid(str(row.get("StudyInstanceUID") or ""))
    series = anonymizer.uid(str(row.get("SeriesInstanceUID") or ""))
    sop = anonymizer.uid(str(row["SOPInstanceUID"]))
    return {
        "file": f"{patient}/ST-{_short(study)}/SE-{_short(series)}/{_short(sop)}.dcm",
        "PatientID": patient,
        "StudyInstanceUID": study,
        "SeriesInstanceUID": series,
        "SOPInstanceUID": sop,
        "SOPClassUID": str(row.get("SOPClassUID") or ""),
        "Modality": str(row.get("Modality") or ""),
    }


def _hold_back_reason(
    row: dict[str, Any], allow_burned_in: bool, blanking: Sequence[BlankingRule]
) -> str | None:
    if allow_burned_in or any(rule.matches(row) for rule in blanking):
        return None
    if str(row.get("BurnedInAnnotation") or "").strip().upper() == "YES":
        return "BurnedInAnnotation is YES: identifying text in the pixels"
    name = BURNED_IN_CLASSES.get(str(row.get("SOPClassUID") or ""))
    if name:
        return f"{name} often carries identifying text in its pixels; allow it to export it"
    return None


# --- the worker -------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(key: bytes, settings: dict[str, Any]) -> None:
    _WORKER["anonymizer"] = Anonymizer(key, **settings)


def _export_one(task: tuple[dict[str, Any], str, str, list[BlankingRule]]) -> tuple[str, str | None]:
    """Anonymize one file into ``out/name``; return (name, error or None)."""
    row, out, name, blanking = task
    anonymizer: Anonymizer = _WORKER["anonymizer"]
    try:
        if row.get("member"):
            with zipfile.ZipFile(row["path"]) as archive:
                data = archive.read(row["member"])
        else:
            with open(row["path"], "rb") as fh:
                data = fh.read()
        rules = [rule for rule in blanking if rule.matches(row)]
        chunks = [_blanked(data, anonymizer, rules)] if rules else _anonymized(data, anonymizer)
        target = Path(out) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        # Not fsynced one by one (it halves the speed): a kill leaves whole files or none; the
        # manifest, written last and durably, lists what a finished export holds.
        write_atomic(target, lambda tmp: _write_chunks(tmp, chunks), durable=False)
        return name, None
    except Exception as exc:  # noqa: BLE001 - one file's failure is listed and the export goes on
        return name, f"{type(exc).__name__}: {exc}"


def _write_chunks(path: Path, chunks: list[bytes | memoryview]) -> None:
    with open(path, "wb") as fh:
        for chunk in chunks:
            fh.write(chunk)


def _anonymized(data: bytes, anonymizer: Anonymizer) -> list[bytes | memoryview]:
    """The de-identified file in pieces: a new header, then the source's pixel data element as is
    (a view of ``data``, not a copy)."""
    header = read_header(io.BytesIO(data), {0x00280100: "US"}, locate_pixel_data=True)
    if header.deflated or not header.little_endian:
        return [_anonymized_by_pydicom(data, anonymizer, header)]
    head = anonymize_encoded(anonymizer, data, header)  # None: pydicom has to do it
    chunks: list[bytes | memoryview] = [head or _anonymized_by_pydicom(data, anonymizer, header)]
    if header.pixel_data is not None:
        start, length, vr = header.pixel_data
        end = encapsulated_end(data, start) if length == 0xFFFFFFFF else start + length
        if header.implicit_vr:  # the copy is explicit VR: give Pixel Data an explicit header
            bits = header.elements.get(0x00280100, ("US", b"\x10\x00"))[1]
            vr = "OW" if int.from_bytes(bits[:2] or b"\x10\x00", "little") > 8 else "OB"
            chunks += [struct.pack("<HH2sHL", 0x7FE0, 0x0010, vr.encode(), 0, length),
                       memoryview(data)[start:end]]
        else:
            chunks.append(memoryview(data)[_pixel_data_element(header):end])
    return chunks


def _pixel_data_element(header: Header) -> int:
    """Where the Pixel Data element (its tag) begins in a little endian file."""
    start, _, vr = header.pixel_data
    if header.implicit_vr:
        return start - 8
    return start - (12 if vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN") else 8)


def _anonymized_by_pydicom(data: bytes, anonymizer: Anonymizer, header: Header) -> bytes:
    """The de-identified file made with pydicom: whole when deflated or big endian (pydicom
    writes it in its transfer syntax), else what comes before Pixel Data (Float and Double Float
    Pixel Data included, which ``stop_before_pixels`` would leave out) in Explicit VR Little Endian."""
    import pydicom

    whole = header.deflated or not header.little_endian
    if not whole and header.pixel_data is not None:
        data = data[:_pixel_data_element(header)]
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    _ensure_file_meta(ds, header)
    anonymizer.anonymize(ds)
    if not whole:
        return encode_part10(ds)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _ensure_file_meta(ds, header) -> None:
    """Give a bare data set (no preamble, no file meta) the file meta a Part 10 file needs."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None) or FileMetaDataset()
    if "TransferSyntaxUID" not in meta:
        meta.TransferSyntaxUID = ImplicitVRLittleEndian if header.implicit_vr else ExplicitVRLittleEndian
    if "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta = meta


def _blanked(data: bytes, anonymizer: Anonymizer, rules: Sequence[BlankingRule]) -> bytes:
    """Decode, paint the rules' rectangles with the image's minimum, store uncompressed."""
    import numpy as np
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    _ensure_file_meta(ds, read_header(io.BytesIO(data), {}))
    pixels = ds.pixel_array.copy()
    frames = pixels if int(ds.get("NumberOfFrames", 1) or 1) > 1 else pixels[np.newaxis]
    for rule in rules:
        for x0, y0, x1, y1 in rule.rectangles:
            frames[:, y0:y1, x0:x1] = frames.min()
    ds.PixelData = frames.reshape(pixels.shape).tobytes()
    if ds.get("PhotometricInterpretation", "").startswith("YBR"):
        ds.PhotometricInterpretation = "RGB"  # pydicom decoded to RGB
    if "PlanarConfiguration" in ds:
        ds.PlanarConfiguration = 0
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    anonymizer.anonymize(ds)
    ds.BurnedInAnnotation = "NO"
    item = pydicom.Dataset()
    item.CodeValue, item.CodeMeaning = CLEAN_PIXEL_DATA_CODE
    item.CodingSchemeDesignator = "DCM"
    ds.DeidentificationMethodCodeSequence.append(item)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


# --- the export -------------------------------------------------------------------------------------


def export(
    index,
    out: str | os.PathLike,
    *,
    key: bytes,
    where: str = "TRUE",
    options: Iterable[str] = (),
    map_path: str | os.PathLike | None = None,
    zip_output: bool = False,
    uid_root: str | None = None,
    safe_private: Iterable[tuple[str, int]] = (),
    allow_burned_in: bool = False,
    blanking: Sequence[BlankingRule] = (),
    verify: bool = True,
    workers: int | None = None,
    quiet: bool = False,
) -> ExportResult:
    """Export the instances ``where`` selects as a de-identified copy in ``out``.

    Parameters
    ----------
    index : Index
        The crawled index the selection comes from.
    out : path
        The export folder (created). It receives the files, ``manifest.csv``; never the map.
    key : bytes
        The project key (:func:`load_key`).
    where : str
        A DuckDB condition on the ``instances`` view, e.g. ``"Modality = 'CT'"``.
    options : iterable of str
        Profile options (:data:`workbench.deid.profile.OPTIONS`).
    map_path : path, optional
        Where to write the original -> pseudonym map (Parquet); refused inside ``out``.
    zip_output : bool
        Also write ``<out>.zip`` once the export is complete and verified.
    uid_root : str, optional
        Root for new UIDs (default ``2.25``).
    safe_private : iterable of (str, int)
        With the ``retain_safe_private`` option, the private elements known to be safe, as
        (private creator, element byte) pairs (PS3.15 E.3.10): those are kept, every other
        private element is removed. Without any, the option keeps nothing private.
    allow_burned_in : bool
        Export the objects held back for burned-in text too.
    blanking : sequence of BlankingRule
        Rectangles to paint over in matching images (those are then exported).
    verify : bool
        Scan the export for the selection's original identifying values at the end.
    workers : int, optional
        Worker processes (default: the CPU count).
    quiet : bool
        No progress bar.

    Returns
    -------
    ExportResult

    Raises
    ------
    ValueError
        When ``map_path`` is inside ``out``, an option is unknown, or ``where`` selects nothing
        valid for SQL.
    """
    out = Path(out).resolve()
    options = tuple(options)
    settings = {"options": options, "uid_root": uid_root, "safe_private": tuple(safe_private)}
    anonymizer = Anonymizer(key, **settings)
    if map_path is not None and Path(map_path).resolve().is_relative_to(out):
        raise ValueError(
            f"the map {map_path} must not be inside the export {out}: it links pseudonyms to PHI"
        )
    query = f"SELECT {', '.join(_ROW_COLUMNS)} FROM instances WHERE {where} ORDER BY path, member"
    with index.connect() as con:  # Arrow rows, not a DataFrame: the command starts without pandas
        rows = con.sql(query).to_arrow_table().to_pylist()
    out.mkdir(parents=True, exist_ok=True)
    for leftover in out.rglob(".*.tmp"):
        leftover.unlink()
    result = ExportResult(out)
    tasks, manifest = [], []
    for row in rows:
        reason = _hold_back_reason(row, allow_burned_in, blanking)
        if reason:
            result.held_back.append((_where(row), reason))
            continue
        manifest.append(manifest_row(anonymizer, row))
        name = manifest[-1]["file"]
        if (out / name).exists():
            result.already_there += 1
        else:
            tasks.append((row, str(out), name, list(blanking)))
    failed_names = _run(tasks, key, settings, workers, quiet, result)
    manifest = [m for m in manifest if m["file"] not in failed_names]
    _write_manifest(out, manifest)
    if map_path is not None:
        _write_map(Path(map_path), anonymizer, rows)
    if verify:
        from workbench.deid.verify import phi_values, verify_export

        studies = sorted({str(r["StudyInstanceUID"]) for r in rows if r.get("StudyInstanceUID")})
        ignore = _kinds_kept(options)
        phi = [v for v in phi_values(index, studies, dates="retain_full_dates" not in options,
                                     uids="retain_uids" not in options) if v.kind not in ignore]
        result.findings = verify_export(out, phi, workers=workers)
        result.verified = True
    if zip_output and result.clean:
        result.archive = _zip(out)
    return result


def _where(row: dict[str, Any]) -> str:
    return f"{row['path']}!{row['member']}" if row.get("member") else str(row["path"])


def _kinds_kept(options: Sequence[str]) -> set[str]:
    """Kinds of identifying values an option keeps on purpose (the verifier leaves them be)."""
    kept = set()
    if "retain_device_identity" in options:
        kept |= {"StationName", "DeviceSerialNumber"}
    if "retain_institution_identity" in options:
        kept |= {"InstitutionName", "InstitutionalDepartmentName", "InstitutionAddress"}
    return kept


def _run(tasks, key: bytes, settings: dict[str, Any], workers, quiet, result: ExportResult) -> set[str]:
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks) // 16 or 1))
    failed = set()
    by_name = {task[2]: task[0] for task in tasks}
    with progress_bar(total=len(tasks), unit="file", desc="anonymize", disable=quiet or not tasks) as bar:
        if workers > 1:
            context = multiprocessing.get_context("fork")
            with context.Pool(workers, _init_worker, (key, settings)) as pool:
                outcomes = pool.imap_unordered(_export_one, tasks, chunksize=8)
                failed = _collect(outcomes, bar, result, by_name)
        else:
            _init_worker(key, settings)
            failed = _collect(map(_export_one, tasks), bar, result, by_name)
    return failed


def _collect(outcomes, bar, result: ExportResult, by_name) -> set[str]:
    failed = set()
    for name, error in outcomes:
        bar.update(1)
        if error:
            failed.add(name)
            result.failed.append((_where(by_name[name]), error))
        else:
            result.exported += 1
    return failed


def _write_manifest(out: Path, manifest: list[dict[str, str]]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(manifest[0]) if manifest else ["file"])
            writer.writeheader()
            writer.writerows(sorted(manifest, key=lambda m: m["file"]))

    write_atomic(out / "manifest.csv", write)


def _write_map(path: Path, anonymizer: Anonymizer, rows: list[dict[str, Any]]) -> None:
    """Original -> pseudonym for the selection's patients and UIDs (PHI: kept out of the export)."""
    entries = set()
    for row in rows:
        patient_id, name = str(row.get("PatientID") or ""), str(row.get("PatientName") or "")
        pseudonym = anonymizer.patient(patient_id, name)
        entries.add(("PatientID", patient_id, pseudonym))
        entries.add(("PatientName", name, pseudonym))
        for column in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
            if row.get(column):
                entries.add((column, str(row[column]), anonymizer.uid(str(row[column]))))
    table = pa.table({
        "kind": [e[0] for e in sorted(entries)], "original": [e[1] for e in sorted(entries)],
        "pseudonym": [e[2] for e in sorted(entries)],
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def _zip(out: Path) -> Path:
    archive = out.with_name(out.name + ".zip")

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
            for path in sorted(p for p in out.rglob("*") if p.is_file()):
                zf.write(path, path.relative_to(out).as_posix())

    write_atomic(archive, write)
    return archive
