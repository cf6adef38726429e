"""The frames of a selection: where each 2D image is, and its pixels.

Single-frame instances take their geometry from the index (or from a header read
when the selection is a list of paths). Enhanced multi-frame instances take it from
their functional groups (PS3.3 Section C.7.6.16): Plane Position, Plane Orientation,
Pixel Measures, Frame Content, MR Echo, MR Image Frame Type and Pixel Value
Transformation, per frame or shared.

Pixels of uncompressed files are read straight from the file at the Pixel Data
offset (no parse of the data set); compressed and colour ones go through pydicom's
pixel handlers (pylibjpeg, openjpeg, RLE, deflate).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.dicom.header import read_header
from workbench.volume.geometry import Frame, SeriesGeometryError

# Transfer syntaxes whose pixel data are stored natively (not encapsulated).
NATIVE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", None}
_PIXEL_TAGS = {
    0x00280002: "US", 0x00280004: "CS", 0x00280008: "IS", 0x00280010: "US", 0x00280011: "US",
    0x00280100: "US", 0x00280101: "US", 0x00280103: "US",
}
_COMPLEX_TYPES = {"M", "P", "R", "I", "MAGNITUDE", "PHASE", "REAL", "IMAGINARY", "FIELD_MAP", "B0"}


def _first(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str) or not hasattr(value, "__len__"):
        return value
    return value[0] if len(value) else None


def _image_type(value: Any) -> str:
    """The image-type component that tells magnitude from phase and the like."""
    if value is None:
        return ""
    parts = [p.strip().upper() for p in (value.split("\\") if isinstance(value, str) else value)]
    for part in parts[2:]:
        if part in _COMPLEX_TYPES or part.endswith(("_FFE", "_SE", "_IR")):
            return part
    return ""


def _number(value: Any, default: float | None = None) -> float | None:
    value = _first(value)
    try:
        return default if value is None else float(value)
    except (TypeError, ValueError):
        return default


def frames_from_rows(rows: Iterable[dict[str, Any]]) -> tuple[list[Frame], list[str]]:
    """Frames of single-frame instances from index rows; the paths of multi-frame ones apart.

    Returns
    -------
    tuple[list[Frame], list[str]]
        The frames, and the (path, member) keys of instances that need their
        functional groups read (enhanced multi-frame).
    """
    frames, multi = [], []
    for row in rows:
        if "MOSAIC" in (row.get("ImageType") or "").upper().split("\\"):
            raise SeriesGeometryError(
                f"{row['path']} is a Siemens MOSAIC (many slices tiled in one image), which is not "
                "supported yet; dcm2niix converts it"
            )
        frames_in_file = int(_number(row.get("NumberOfFrames"), 1) or 1)
        if frames_in_file > 1 or row.get("ImagePositionPatient") is None:
            multi.append((row["path"], row.get("member")))
            continue
        spacing = row.get("PixelSpacing")
        if spacing is None or len(spacing) != 2:
            raise SeriesGeometryError(f"{row['path']} has no Pixel Spacing: its geometry is unknown")
        frames.append(Frame(
            path=row["path"], member=row.get("member") or None, index=0,
            position=np.asarray(row["ImagePositionPatient"], dtype=float),
            orientation=np.asarray(row["ImageOrientationPatient"], dtype=float),
            spacing=(float(spacing[0]), float(spacing[1])),
            rows=int(row["Rows"]), columns=int(row["Columns"]),
            feature=(int(_number(row.get("EchoNumbers"), 1)), _image_type(row.get("ImageType"))),
            order=(_number(row.get("TemporalPositionIdentifier"), 0), _number(row.get("InstanceNumber"), 0),
                   row["path"]),
            slope=_number(row.get("RescaleSlope"), 1.0) or 1.0,
            intercept=_number(row.get("RescaleIntercept"), 0.0) or 0.0,
        ))
    return frames, multi


def open_file(path: str, member: str | None) -> Any:
    """A binary file object for a plain file or a zip member."""
    if member:
        with zipfile.ZipFile(path) as archive:
            return io.BytesIO(archive.read(member))
    return open(path, "rb")


def frames_from_multiframe(path: str, member: str | None) -> list[Frame]:
    """The frames of one enhanced multi-frame instance, from its functional groups.

    Raises
    ------
    SeriesGeometryError
        When a frame lacks a position, orientation or pixel spacing.
    """
    import pydicom

    with open_file(path, member) as fp:
        ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
    if "Rows" not in ds or "Columns" not in ds:
        kind = ds.get("SOPClassUID", "")
        kind = getattr(kind, "name", kind) or "an object"
        raise SeriesGeometryError(f"{path} is not an image ({kind}): it has no Rows and Columns")
    shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence", [])
    count = int(ds.get("NumberOfFrames", 1) or 1)
    instance = _number(ds.get("InstanceNumber"), 0)

    def group(frame_groups, name: str, attribute: str) -> Any:
        for source in (frame_groups, shared):
            if source is not None and name in source and len(source[name].value):
                item = source[name].value[0]
                if attribute in item:
                    return item[attribute].value
        return ds.get(attribute)

    frames = []
    for number in range(count):
        groups = per_frame[number] if number < len(per_frame) else None
        position = group(groups, "PlanePositionSequence", "ImagePositionPatient")
        orientation = group(groups, "PlaneOrientationSequence", "ImageOrientationPatient")
        spacing = group(groups, "PixelMeasuresSequence", "PixelSpacing")
        if position is None and orientation is None and not per_frame:
            # A projection image or a secondary capture: no patient geometry at all (PS3.3
            # C.8.11 for DX has ImagerPixelSpacing only). Frames stack at unit steps.
            spacing = spacing or ds.get("ImagerPixelSpacing") or (1.0, 1.0)
            position, orientation = (0.0, 0.0, float(number)), (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
        if position is None or orientation is None or spacing is None:
            raise SeriesGeometryError(
                f"{path}: frame {number + 1} has no plane position, orientation or pixel spacing"
            )
        frame_type = group(groups, "MRImageFrameTypeSequence", "FrameType") or \
            group(groups, "CTImageFrameTypeSequence", "FrameType")
        echo = group(groups, "MREchoSequence", "EffectiveEchoTime")
        temporal = group(groups, "FrameContentSequence", "TemporalPositionIndex")
        frames.append(Frame(
            path=path, member=member, index=number,
            position=np.asarray(position, dtype=float), orientation=np.asarray(orientation, dtype=float),
            spacing=(float(spacing[0]), float(spacing[1])), rows=int(ds.Rows), columns=int(ds.Columns),
            feature=(_number(echo, 0.0), _image_type(frame_type)),
            order=(_number(temporal, 0), instance, number),
            slope=_number(group(groups, "PixelValueTransformationSequence", "RescaleSlope"), 1.0) or 1.0,
            intercept=_number(group(groups, "PixelValueTransformationSequence", "RescaleIntercept"), 0.0)
            or 0.0,
        ))
    return frames


def read_file_frames(path: str, member: str | None) -> np.ndarray:
    """Every frame of one instance as an array (frames, rows, columns[, samples]), stored values.

    Uncompressed monochrome data are read straight from the file; anything else
    (compressed, colour, packed bits) is decoded by pydicom.
    """
    with open_file(path, member) as fp:
        header = read_header(fp, _PIXEL_TAGS, locate_pixel_data=True)
        native = _native_array(fp, header)
        if native is not None:
            return native
        import pydicom

        fp.seek(0)
        ds = pydicom.dcmread(fp, force=True)
    if "PixelData" not in ds:
        raise SeriesGeometryError(f"{path} has no pixel data")
    if "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2" if header.implicit_vr else "1.2.840.10008.1.2.1"
    pixels = ds.pixel_array
    if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        pixels = apply_color_lut(pixels, ds)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = pixels.shape[-1] if pixels.ndim == (3 if frames == 1 else 4) else 1
    if frames == 1:
        pixels = pixels[np.newaxis]
    return pixels if samples > 1 else pixels.reshape(frames, pixels.shape[-2], pixels.shape[-1])


@dataclass(frozen=True)
class NativeLayout:
    """Where and how uncompressed monochrome pixel data sit in a file (PS3.5 Section 8)."""

    start: int
    frames: int
    rows: int
    columns: int
    dtype: np.dtype
    bits_stored: int
    signed: bool

    @property
    def frame_bytes(self) -> int:
        return self.rows * self.columns * self.dtype.itemsize


def native_layout(header) -> NativeLayout | None:
    """The layout of uncompressed monochrome pixel data, or None when another path is needed."""
    if header.pixel_data is None or header.deflated or header.transfer_syntax_uid not in NATIVE_SYNTAXES:
        return None
    start, length, _ = header.pixel_data
    values = {tag: raw for tag, (_, raw) in header.elements.items()}

    def unsigned(tag: int) -> int | None:
        raw = values.get(tag)
        if raw is None or len(raw) < 2:
            return None
        return int.from_bytes(raw[:2], "little" if header.little_endian else "big")

    samples, bits, stored, signed = (unsigned(t) for t in (0x00280002, 0x00280100, 0x00280101, 0x00280103))
    rows, columns = unsigned(0x00280010), unsigned(0x00280011)
    photometric = values.get(0x00280004, b"").strip(b" \x00").decode("ascii", "replace")
    if samples != 1 or bits not in (8, 16, 32) or not rows or not columns or \
            photometric not in ("MONOCHROME1", "MONOCHROME2") or length == 0xFFFFFFFF:
        return None
    frames_raw = values.get(0x00280008, b"1").strip(b" \x00") or b"1"
    frames = int(frames_raw) if frames_raw.isdigit() else 1
    order = "<" if header.little_endian else ">"
    dtype = np.dtype(f"{'i' if signed else 'u'}{bits // 8}").newbyteorder(order)
    layout = NativeLayout(start, frames, rows, columns, dtype, stored or bits, bool(signed))
    if frames * layout.frame_bytes > length:
        raise SeriesGeometryError(
            f"the pixel data hold {length} bytes, {frames}x{rows}x{columns} {bits}-bit values need "
            f"{frames * layout.frame_bytes}: the file is truncated"
        )
    return layout


def stored_values(data: np.ndarray, layout: NativeLayout) -> np.ndarray:
    """Mask the bits above Bits Stored, sign-extending signed values (PS3.5 Section 8.1.1), in place."""
    bits = data.dtype.itemsize * 8
    if layout.bits_stored < bits:
        shift = bits - layout.bits_stored
        if layout.signed:
            np.left_shift(data, shift, out=data)
            np.right_shift(data, shift, out=data)
        else:
            data &= (1 << layout.bits_stored) - 1
    return data


def _native_array(fp, header) -> np.ndarray | None:
    """Uncompressed monochrome pixel data read at its offset, or None when another path is needed."""
    layout = native_layout(header)
    if layout is None:
        return None
    fp.seek(layout.start)
    count = layout.frames * layout.rows * layout.columns
    raw = fp.read(count * layout.dtype.itemsize)
    if len(raw) < count * layout.dtype.itemsize:
        raise SeriesGeometryError("the file ends inside its pixel data (truncated)")
    data = np.frombuffer(raw, dtype=layout.dtype).astype(layout.dtype.newbyteorder("="))
    return stored_values(data.reshape(layout.frames, layout.rows, layout.columns), layout)


def read_into(path: str, member: str | None, targets: list[tuple[int, int]], out: np.ndarray) -> bool:
    """Read frames of an uncompressed file straight into ``out`` (no intermediate copy).

    Parameters
    ----------
    targets : list of (frame number in the file, index in ``out``)
    out : numpy.ndarray
        (slices, rows, columns), int16 or uint16. The stored values are written masked
        and sign-extended, not yet rescaled.

    Returns
    -------
    bool
        False when the file needs the general path (:func:`read_file_frames`): compressed,
        big endian, another bit depth, or stored values that do not fit ``out``'s type.
    """
    with open_file(path, member) as fp:
        header = read_header(fp, _PIXEL_TAGS, locate_pixel_data=True)
        layout = native_layout(header)
        if layout is None or not header.little_endian or layout.dtype.itemsize != out.dtype.itemsize \
                or (layout.rows, layout.columns) != out.shape[1:] or out.dtype.kind not in "iu":
            return False
        if layout.signed and out.dtype.kind == "u":
            return False
        unsigned_into_signed = not layout.signed and out.dtype.kind == "i"
        for frame, index in targets:
            fp.seek(layout.start + frame * layout.frame_bytes)
            if fp.readinto(memoryview(out[index]).cast("B")) != layout.frame_bytes:
                raise SeriesGeometryError(f"{path}: the file ends inside its pixel data (truncated)")
            stored = stored_values(out[index].view(layout.dtype.newbyteorder("=")), layout)
            if unsigned_into_signed and stored.max() > np.iinfo(out.dtype).max:
                raise ValuesDoNotFit(f"{path}: stored values above {np.iinfo(out.dtype).max}")
    return True


class ValuesDoNotFit(Exception):
    """Values that do not fit the output type chosen for the volume: the loader widens it."""


def rows_for(selection: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Index rows as plain dicts (NaN/NA to None) for :func:`frames_from_rows`."""
    clean = []
    for row in selection:
        clean.append({k: (None if _is_missing(v) else v) for k, v in row.items()})
    return clean


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    return type(value).__name__ in ("NAType", "NaTType")
