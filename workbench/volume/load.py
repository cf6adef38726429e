"""Load a series into a SimpleITK image in DICOM patient space (LPS).

``load_series`` takes a selection from the index, works out how its frames form
volumes (:mod:`workbench.volume.geometry`), reads the pixels in parallel
(:mod:`workbench.volume.frames`) and returns an image whose origin, spacing and
direction come from the data: slices sorted along the normal, spacing from the
positions, rescale slope and intercept applied (PS3.3 C.11.1.1.2). What it cannot
do right, it refuses with a message that says why and what to ask for instead.
"""

from __future__ import annotations

import ctypes
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import SimpleITK as sitk

from workbench.volume.frames import (
    ValuesDoNotFit,
    frames_from_multiframe,
    frames_from_rows,
    read_file_frames,
    read_into,
    rows_for,
)
from workbench.volume.geometry import Frame, SeriesGeometryError, SeriesPlan, Stack, plan_series

if TYPE_CHECKING:
    import pandas as pd

    from workbench.index import Index

ON_IRREGULAR = ("raise", "resample")
TILT = ("correct", "keep")


class SeriesWarning(UserWarning):
    """Frames of a series were kept out of the volume (they are listed)."""


def _selection_rows(selection: Any, series_uid: str | None) -> list[dict[str, Any]]:
    """The ``instances`` rows of a selection: an Index and a UID, a DataFrame, or paths."""
    from workbench.index import Index

    if isinstance(selection, Index):
        if not series_uid:
            raise TypeError("load_series(index, ...) needs the SeriesInstanceUID to load")
        import pyarrow as pa
        import pyarrow.parquet as pq

        # Row-group statistics let Parquet skip what is not this series: faster than a SQL engine.
        parts = [pq.read_table(path, filters=[("SeriesInstanceUID", "==", series_uid)])
                 for _, path in selection.store.parts("instances")]
        table = pa.concat_tables(parts, promote_options="default") if parts else None
        if table is None or not table.num_rows:
            raise SeriesGeometryError(f"the index {selection.directory} has no series {series_uid}")
        return table.to_pylist()
    if hasattr(selection, "to_dict") and hasattr(selection, "columns"):
        rows = rows_for(selection.to_dict("records"))
    elif isinstance(selection, (str, os.PathLike)) or (
        isinstance(selection, Sequence) and all(isinstance(p, (str, os.PathLike)) for p in selection)
    ):
        rows = _rows_from_paths([selection] if isinstance(selection, (str, os.PathLike)) else selection)
    else:
        raise TypeError(
            f"a selection is an Index with a SeriesInstanceUID, a DataFrame of instances or a list of "
            f"paths, not {type(selection).__name__}"
        )
    if series_uid:
        rows = [r for r in rows if r.get("SeriesInstanceUID") == series_uid]
    if not rows:
        raise SeriesGeometryError("the selection is empty")
    return rows


def _rows_from_paths(paths: Sequence[str | os.PathLike]) -> list[dict[str, Any]]:
    from workbench.dicom.header import HeaderError
    from workbench.index.reader import FileItem, ReadSpec, read_row

    spec = ReadSpec()
    rows = []
    for path in paths:
        path = os.path.abspath(os.fspath(path))
        try:
            with open(path, "rb") as fp:
                rows.append(read_row(fp, FileItem(path, None, path, None, None), spec))
        except (OSError, HeaderError) as exc:
            raise SeriesGeometryError(f"{path} cannot be read as DICOM: {exc}") from None
    return rows


def _check_one_series(rows: list[dict[str, Any]]) -> None:
    series = {r.get("SeriesInstanceUID") for r in rows}
    if len(series) > 1:
        raise SeriesGeometryError(
            f"the selection holds {len(series)} series; select one SeriesInstanceUID"
        )
    classes = {r.get("sop_class_name") or r.get("SOPClassUID") for r in rows}
    multi = {bool((r.get("NumberOfFrames") or 1) > 1) for r in rows}
    if len(classes) > 1 and len(multi) > 1:
        raise SeriesGeometryError(
            f"the series holds both multi-frame and single-frame objects ({', '.join(map(str, classes))}), "
            "e.g. the same series exported twice; select one kind (filter instances on sop_class_name)"
        )


def inspect_series(selection: Any, series_uid: str | None = None) -> SeriesPlan:
    """How a selection's frames divide into volumes, without reading pixels.

    Parameters
    ----------
    selection : Index, pandas.DataFrame or list of paths
        An :class:`~workbench.index.Index` with ``series_uid``, a slice of its
        ``instances`` table, or DICOM file paths.
    series_uid : str, optional
        The SeriesInstanceUID, required with an Index.

    Returns
    -------
    SeriesPlan
        The volumes (``plan.volumes``), frames kept out and why; ``plan.describe()``
        says it in words.

    Raises
    ------
    SeriesGeometryError
        When the selection is empty, mixes series, or its frames cannot form volumes.
    """
    rows = _selection_rows(selection, series_uid)
    _check_one_series(rows)
    frames, multi = frames_from_rows(rows)
    for path, member in multi:
        frames.extend(frames_from_multiframe(path, member))
    return plan_series(frames)


def load_series(
    selection: Index | pd.DataFrame | Sequence[str | os.PathLike],
    series_uid: str | None = None,
    *,
    volume: int | None = None,
    as_4d: bool = False,
    on_irregular: str = "raise",
    tilt: str = "correct",
    workers: int | None = None,
) -> sitk.Image:
    """A series as a SimpleITK image in DICOM patient space (LPS).

    Parameters
    ----------
    selection : Index, pandas.DataFrame or list of paths
        An Index with ``series_uid``, a slice of its ``instances`` table, or paths.
    series_uid : str, optional
        The SeriesInstanceUID (required with an Index).
    volume : int, optional
        Which volume to load when the series holds several (echoes, magnitude and
        phase, time points, diffusion directions): see :func:`inspect_series`.
    as_4d : bool
        Load every volume, joined along a fourth axis (they must share a geometry).
    on_irregular : {"raise", "resample"}
        What to do when slices are not evenly spaced (a missing slice): refuse and
        list the gaps, or resample linearly onto a uniform grid at the median spacing.
    tilt : {"correct", "keep"}
        For a tilted gantry (slices shifted in-plane along the stack): shift each slice
        back so the volume is orthogonal, as dcm2niix does, or keep the sheared stack
        with a non-orthogonal direction matrix.
    workers : int, optional
        Threads reading files (default: twice the CPU count, at most 16).

    Returns
    -------
    SimpleITK.Image
        3D (or 4D with ``as_4d``); int16 when the rescaled values are integers that fit,
        int32 when they need it, float32 otherwise; a vector image for colour. Frames
        kept out (a localizer in the series) are reported with a :class:`SeriesWarning`.

    Raises
    ------
    SeriesGeometryError
        With the reason: several volumes and none chosen, uneven spacing, frames of
        different sizes or pixel spacing, no geometry, unreadable pixel data.
    ValueError
        When ``on_irregular`` or ``tilt`` is not one of the values above.
    """
    if on_irregular not in ON_IRREGULAR:
        raise ValueError(f"on_irregular must be one of {ON_IRREGULAR}, not {on_irregular!r}")
    if tilt not in TILT:
        raise ValueError(f"tilt must be one of {TILT}, not {tilt!r}")
    plan = inspect_series(selection, series_uid)
    if plan.excluded:
        warnings.warn(
            f"{len(plan.excluded)} frame(s) kept out of the volume: "
            + "; ".join(sorted({reason for _, reason in plan.excluded})),
            SeriesWarning, stacklevel=2,
        )
    volumes = plan.volumes
    if as_4d:
        chosen = volumes
    elif volume is not None:
        if not 0 <= volume < len(volumes):
            raise SeriesGeometryError(f"volume {volume} does not exist; the series holds:\n{plan.describe()}")
        chosen = [volumes[volume]]
    elif len(volumes) > 1:
        raise SeriesGeometryError(
            f"the series holds {len(volumes)} volumes; pass volume=N (or as_4d=True):\n{plan.describe()}"
        )
    else:
        chosen = volumes
    if on_irregular == "raise":
        for stack in chosen:
            _refuse_gaps(stack)
    workers = workers or min(16, 2 * (os.cpu_count() or 1))
    images = [_build(stack, tilt, workers) for stack in chosen]
    if len(images) == 1:
        image = images[0]
    else:
        shapes = {(im.GetSize(), im.GetOrigin(), im.GetDirection()) for im in images}
        if len(shapes) > 1:
            raise SeriesGeometryError(
                f"the volumes differ in geometry; load them one by one:\n{plan.describe()}"
            )
        image = sitk.JoinSeries([sitk.Cast(im, images[0].GetPixelID()) for im in images])
    image.SetMetaData("workbench:volumes", str(len(chosen)))
    image.SetMetaData("workbench:excluded_frames", str(len(plan.excluded)))
    return image


def _decoded(path: str, member: str | None) -> np.ndarray:
    """Every frame of a file, stored values, decoded by whatever path it needs."""
    try:
        return read_file_frames(path, member)
    except SeriesGeometryError:
        raise
    except Exception as exc:  # noqa: BLE001 - one sentence naming the file, whatever the decoder raised
        where = f"{path}!{member}" if member else path
        raise SeriesGeometryError(f"{where}: the pixel data cannot be decoded: {exc}") from None


def _refuse_gaps(stack: Stack) -> None:
    if stack.gaps:
        listed = ", ".join(f"{gap:g} mm at {where:g} mm" for where, gap in stack.gaps[:5])
        raise SeriesGeometryError(
            f"slices are not evenly spaced (median {stack.spacing:g} mm; {listed}"
            f"{', ...' if len(stack.gaps) > 5 else ''}): a missing slice or an uneven stack; "
            "pass on_irregular='resample' to resample onto a uniform grid"
        )


_SITK_TYPES = {
    np.dtype(np.int16): sitk.sitkInt16, np.dtype(np.uint16): sitk.sitkUInt16,
    np.dtype(np.int32): sitk.sitkInt32, np.dtype(np.float32): sitk.sitkFloat32,
}
# When values do not fit a type, the next one is tried.
_WIDER = {np.dtype(np.int16): np.dtype(np.int32), np.dtype(np.int32): np.dtype(np.float32)}


def _allocate(shape: tuple[int, int, int], dtype: np.dtype) -> tuple[sitk.Image, np.ndarray]:
    """A new SimpleITK volume and a writable NumPy array over its own pixel buffer.

    SimpleITK offers only a read-only view of an image's buffer; writing through the same
    memory fills the volume without a second copy. The array must not outlive the image.
    """
    image = sitk.Image([shape[2], shape[1], shape[0]], _SITK_TYPES[dtype])
    view = sitk.GetArrayViewFromImage(image)  # makes the buffer the image's own (MakeUnique)
    address = view.__array_interface__["data"][0]
    memory = (ctypes.c_char * view.nbytes).from_address(address)
    return image, np.frombuffer(memory, dtype=view.dtype).reshape(view.shape)


def _rescale_in_place(values: np.ndarray, frame: Frame) -> None:
    """Apply an integral slope and intercept to stored values already in ``values``, or raise."""
    if frame.slope == 1 and frame.intercept == 0:
        return
    info = np.iinfo(values.dtype)
    ends = [int(v) * int(frame.slope) + int(frame.intercept) for v in (values.min(), values.max())]
    if min(ends) < info.min or max(ends) > info.max:
        raise ValuesDoNotFit(f"rescaled values {min(ends)}..{max(ends)} do not fit {values.dtype}")
    if frame.slope != 1:
        np.multiply(values, int(frame.slope), out=values)
    values += values.dtype.type(int(frame.intercept))


def _rescale_into(out: np.ndarray, stored: np.ndarray, frame: Frame) -> None:
    """Write rescaled values (PS3.3 C.11.1.1.2) into ``out``, or raise when they do not fit it."""
    if out.dtype.kind == "f":
        np.multiply(stored, frame.slope, out=out, casting="unsafe")
        out += np.float32(frame.intercept)
        return
    values = stored.astype(np.int64) * int(frame.slope) + int(frame.intercept)
    info = np.iinfo(out.dtype)
    if values.size and (values.min() < info.min or values.max() > info.max):
        raise ValuesDoNotFit(f"rescaled values do not fit {out.dtype}")
    out[...] = values


def _fill(frames: list[Frame], out: np.ndarray, workers: int) -> None:
    """Read every frame into ``out``, rescaled, file by file in threads."""
    by_file: dict[tuple, list[tuple[int, int]]] = {}
    for index, frame in enumerate(frames):
        by_file.setdefault((frame.path, frame.member), []).append((frame.index, index))

    def one_file(key: tuple) -> None:
        targets = by_file[key]
        if out.dtype.kind in "iu" and read_into(key[0], key[1], targets, out):
            for _, index in targets:
                _rescale_in_place(out[index], frames[index])
            return
        decoded = _decoded(*key)
        for number, index in targets:
            _rescale_into(out[index], decoded[number], frames[index])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one_file, sorted(by_file, key=lambda k: (k[0], k[1] or ""))))


def _volume(frames: list[Frame], workers: int) -> sitk.Image:
    """The frames as one rescaled volume: int16 when the values are integers that fit, wider if not."""
    first = _decoded(frames[0].path, frames[0].member)
    if first.ndim == 4:  # colour: decoded per file, stacked, no rescale (PS3.3 C.7.6.3.1.2)
        decoded = {(f.path, f.member): None for f in frames}
        for key in decoded:
            decoded[key] = first if key == (frames[0].path, frames[0].member) else _decoded(*key)
        values = np.stack([decoded[(f.path, f.member)][f.index] for f in frames])
        return sitk.GetImageFromArray(values, isVector=True)
    integral = all(f.slope == round(f.slope) and f.intercept == round(f.intercept) for f in frames)
    integral = integral and first.dtype.kind in "iu"
    dtype = np.dtype(np.int16) if integral and first.dtype.itemsize <= 2 else \
        np.dtype(np.int32) if integral else np.dtype(np.float32)
    shape = (len(frames), first.shape[1], first.shape[2])
    while True:
        image, out = _allocate(shape, dtype)
        try:
            _fill(frames, out, workers)
            return image
        except ValuesDoNotFit:
            del out, image
            dtype = _WIDER[dtype]


def _build(stack: Stack, tilt: str, workers: int) -> sitk.Image:
    frames = stack.frames
    image = _volume(frames, workers)
    first = frames[0]
    row_dir, column_dir = first.orientation[:3], first.orientation[3:6]
    spacing_z = stack.spacing or 1.0
    third = first.normal
    if stack.gaps or stack.tilted:
        values = sitk.GetArrayFromImage(image)
        if stack.gaps:
            values = _resample_uniform(values, stack.offsets, stack.spacing)
        if stack.tilted and tilt == "correct":
            values = _unshear(values, stack.shear, first.spacing)
        image = sitk.GetImageFromArray(values, isVector=values.ndim == 4)
        if stack.tilted and tilt == "keep":
            step = (frames[-1].position - first.position) / (len(frames) - 1)
            spacing_z = float(np.linalg.norm(step))
            third = step / spacing_z
    image.SetOrigin(tuple(float(v) for v in first.position))
    image.SetSpacing((first.spacing[1], first.spacing[0], spacing_z))
    image.SetDirection(tuple(float(v) for v in np.column_stack([row_dir, column_dir, third]).ravel()))
    image.SetMetaData("workbench:volume", stack.label)
    if stack.tilted:
        image.SetMetaData("workbench:tilt_degrees", f"{stack.tilt_degrees:.4f}")
        image.SetMetaData("workbench:tilt", tilt)
    return image


def _resample_uniform(values: np.ndarray, offsets: np.ndarray, spacing: float) -> np.ndarray:
    """Linear interpolation along the stack onto offsets 0, spacing, 2*spacing, ..."""
    count = int(round(offsets[-1] / spacing)) + 1
    targets = np.arange(count) * spacing
    upper = np.clip(np.searchsorted(offsets, targets, side="right"), 1, len(offsets) - 1)
    lower = upper - 1
    weight = ((targets - offsets[lower]) / (offsets[upper] - offsets[lower])).astype(np.float32)
    weight = weight.reshape((-1,) + (1,) * (values.ndim - 1))
    return (values[lower] * (1 - weight) + values[upper] * weight).astype(np.float32)


def _unshear(values: np.ndarray, shear: np.ndarray, pixel_spacing: tuple[float, float]) -> np.ndarray:
    """Shift each slice in-plane by its tilt displacement so the stack stands orthogonal."""
    from scipy.ndimage import shift

    out = np.empty(values.shape, dtype=np.float32)
    background = float(values.min())
    for k, (along_row, along_column) in enumerate(shear):
        # Array axes are (row index, column index): column index runs along the row direction.
        offset = (along_column / pixel_spacing[0], along_row / pixel_spacing[1])
        out[k] = shift(values[k].astype(np.float32), offset, order=1, mode="constant", cval=background)
    return out


def save_volume(image: sitk.Image, path: str | os.PathLike) -> Path:
    """Write an image as .nii/.nii.gz/.nrrd/.mha atomically (temporary name, then rename).

    Raises
    ------
    ValueError
        When the extension is not one of those.
    """
    path = Path(path)
    name = path.name.lower()
    suffix = next((s for s in (".nii.gz", ".nii", ".nrrd", ".mha") if name.endswith(s)), None)
    if suffix is None:
        raise ValueError(f"{path}: the output must end in .nii.gz, .nii, .nrrd or .mha")
    tmp = path.with_name(f".{path.name[: -len(suffix)]}.{os.getpid()}.tmp{suffix}")
    try:
        sitk.WriteImage(image, str(tmp), useCompression=suffix in (".nii.gz", ".nrrd", ".mha"))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
