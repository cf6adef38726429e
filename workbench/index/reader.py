"""Read one file's header into a row of the ``instances`` table.

This is the work each crawler process does: open the file (or zip member),
read the wanted elements with :func:`workbench.dicom.header.read_header`, and
type them by column. Failures become rows of the ``errors`` table.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any, BinaryIO, NamedTuple

import pyarrow as pa

from workbench.dicom import values
from workbench.dicom.header import MEDIA_STORAGE_DIRECTORY_STORAGE, HeaderError, read_header
from workbench.dicom.uids import uid_name
from workbench.index.columns import ERROR_SCHEMA, instance_columns, instance_schema

_SPECIFIC_CHARACTER_SET = 0x00080005
_SOP_CLASS_UID = 0x00080016
_SOP_INSTANCE_UID = 0x00080018
_MEDIA_STORAGE_SOP_INSTANCE_UID = 0x00020003
_BINARY_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "SV", "UV"})
# Bulk values left out of the full-header JSON: pixel-like data is not metadata.
_BULK_DATA_THRESHOLD = 1024


class FileItem(NamedTuple):
    """A file (or zip member) to read, with what the walk learned of it."""

    path: str
    member: str | None
    source: str
    file_size: int | None
    mtime_ns: int | None


@dataclass(frozen=True)
class ReadSpec:
    """What to read from each file: the crawl's extra tags and full-header option."""

    tags: tuple[str, ...] = ()
    full_header: bool = False

    @cached_property
    def converters(self) -> tuple[tuple[str, int, Callable], ...]:
        """(name, tag, converter) of each column read from the data set."""
        return tuple(
            (c.name, c.tag, CONVERTERS[c.kind]) for c in instance_columns(self.tags, self.full_header)
            if c.level != "file" and c.tag is not None
        )

    @cached_property
    def wanted(self) -> dict[int, str]:
        """The tags to read from each file, with their dictionary VR."""
        wanted = {
            c.tag: c.vr for c in instance_columns(self.tags, self.full_header) if c.tag is not None
        }
        wanted[_SPECIFIC_CHARACTER_SET] = "CS"
        return wanted


def with_sop_class_names(instances: pa.Table) -> pa.Table:
    """``instances`` with the ``sop_class_name`` column filled from ``SOPClassUID`` (PS3.6 Annex A)."""
    names = pa.array([uid_name(u) for u in instances.column("SOPClassUID").to_pylist()], pa.string())
    return instances.set_column(instances.schema.get_field_index("sop_class_name"), "sop_class_name", names)


def _text(vr: str, raw: bytes, little: bool, encodings: tuple[str, ...]) -> str | None:
    if vr in _BINARY_VRS:
        numbers = values.to_float_list(raw, vr, little)
        return "\\".join(f"{n:g}" for n in numbers) if numbers else None
    if vr in ("OB", "OW", "UN", "SQ", "AT"):
        return None
    return values.decode_text(raw, vr, encodings) or None


def _float(vr: str, raw: bytes, little: bool, _: tuple[str, ...]) -> float | None:
    return values.to_float(raw, vr, little)


def _int(vr: str, raw: bytes, little: bool, _: tuple[str, ...]) -> int | None:
    return values.to_int(raw, vr, little)


def _float_list(vr: str, raw: bytes, little: bool, _: tuple[str, ...]) -> list[float | None] | None:
    return values.to_float_list(raw, vr, little)


def _date(vr: str, raw: bytes, little: bool, _: tuple[str, ...]) -> Any:
    return values.to_date(raw)


def _time(vr: str, raw: bytes, little: bool, _: tuple[str, ...]) -> Any:
    return values.to_time(raw)


def _datetime(vr: str, raw: bytes, little: bool, _: tuple[str, ...]) -> Any:
    return values.to_datetime(raw)


#: Column kind -> function(vr, raw value, little endian, encodings) -> typed value.
CONVERTERS: dict[str, Callable[[str, bytes, bool, tuple[str, ...]], Any]] = {
    "str": _text, "float": _float, "int": _int, "float_list": _float_list,
    "date": _date, "time": _time, "datetime": _datetime,
}


def read_row(fp: BinaryIO, item: FileItem, spec: ReadSpec) -> dict[str, Any]:
    """Read one file into a row of the ``instances`` table.

    Parameters
    ----------
    fp : BinaryIO
        The file, opened in binary mode at its start.
    item : FileItem
        Where the file is, for the file columns.
    spec : ReadSpec
        Which columns to fill.

    Returns
    -------
    dict[str, Any]
        Column name -> typed value (None where absent or unparseable).

    Raises
    ------
    HeaderError
        When the file is not a readable DICOM instance (``dicomdir`` and
        ``no_sop_instance_uid`` besides the classes of ``read_header``).
    """
    header = read_header(fp, spec.wanted)
    if header.media_storage_sop_class_uid == MEDIA_STORAGE_DIRECTORY_STORAGE:
        raise HeaderError("dicomdir", "a DICOMDIR (media storage directory), not an image or document")
    elements = header.elements
    little = header.little_endian
    charset = elements.get(_SPECIFIC_CHARACTER_SET)
    encodings = values.python_encodings(charset[1].strip(b" \x00") if charset else None)
    row: dict[str, Any] = {
        "path": item.path,
        "member": item.member,
        "source": item.source,
        "file_size": item.file_size,
        "mtime_ns": item.mtime_ns,
        "part10": header.part10,
        "TransferSyntaxUID": header.transfer_syntax_uid,
    }
    for name, tag, convert in spec.converters:
        element = elements.get(tag)
        if element is not None and element[1]:
            row[name] = convert(element[0], element[1], little, encodings)
        else:
            row[name] = None
    if row["SOPInstanceUID"] is None:
        media = header.meta.get(_MEDIA_STORAGE_SOP_INSTANCE_UID)
        row["SOPInstanceUID"] = values.decode_text(media[1], "UI", ()) if media else None
        if not row["SOPInstanceUID"]:
            raise HeaderError("no_sop_instance_uid", "the data set has no SOP Instance UID")
    if row["SOPClassUID"] is None:
        row["SOPClassUID"] = header.media_storage_sop_class_uid
    if spec.full_header:
        fp.seek(0)
        row["header_json"] = _header_json(fp)
    return row


def _header_json(fp: BinaryIO) -> str:
    import pydicom

    dataset = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
    return json.dumps(
        dataset.to_json_dict(
            bulk_data_threshold=_BULK_DATA_THRESHOLD, bulk_data_element_handler=lambda _: ""
        )
    )


def error_row(item: FileItem, error: str, message: str) -> dict[str, Any]:
    """A row of the ``errors`` table for ``item``."""
    return {
        "path": item.path,
        "member": item.member,
        "source": item.source,
        "file_size": item.file_size,
        "mtime_ns": item.mtime_ns,
        "error": error,
        "message": message,
    }


def _read_one(open_file: Callable[[], BinaryIO], item: FileItem, spec: ReadSpec) -> dict[str, Any]:
    """A row of ``instances``, or (with key ``error``) a row of ``errors``; never raises."""
    try:
        with open_file() as fp:
            return read_row(fp, item, spec)
    except HeaderError as exc:
        return error_row(item, exc.kind, str(exc))
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return error_row(item, "unreadable", f"cannot be read: {reason}")
    except Exception as exc:  # noqa: BLE001 - a crawl records any failure and goes on
        return error_row(item, "unreadable", f"cannot be read: {type(exc).__name__}: {exc}")


def _zip_member(archive: zipfile.ZipFile, member: str) -> BinaryIO:
    return io.BytesIO(archive.read(member))


def read_files(items: list[FileItem], spec: ReadSpec) -> tuple[pa.Table, pa.Table]:
    """Read a batch of files; the unit of work of one crawler process.

    Parameters
    ----------
    items : list[FileItem]
        Files and zip members to read. Members of one archive should be adjacent,
        so each archive is opened once.
    spec : ReadSpec
        Which columns to fill.

    Returns
    -------
    tuple[pyarrow.Table, pyarrow.Table]
        The ``instances`` rows (``sop_class_name`` not yet filled: see
        :func:`with_sop_class_names`) and the ``errors`` rows of the batch.
    """
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    archive: zipfile.ZipFile | None = None
    archive_path = archive_error = None
    try:
        for item in items:
            if item.member is None:
                row = _read_one(partial(open, item.path, "rb"), item, spec)
            else:
                if item.path != archive_path:
                    if archive is not None:
                        archive.close()
                    archive, archive_path = None, item.path
                    try:
                        archive = zipfile.ZipFile(item.path)
                    except (OSError, zipfile.BadZipFile) as exc:
                        archive_error = f"the archive cannot be opened: {exc}"
                if archive is None:
                    row = error_row(item, "unreadable", archive_error)
                else:
                    row = _read_one(partial(_zip_member, archive, item.member), item, spec)
            (errors if "error" in row else rows).append(row)
    finally:
        if archive is not None:
            archive.close()
    return (
        pa.Table.from_pylist(rows, schema=instance_schema(spec.tags, spec.full_header)),
        pa.Table.from_pylist(errors, schema=ERROR_SCHEMA),
    )
