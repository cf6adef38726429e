"""Multi-planar reformatting (MPR) and slab projections (MIP, MinIP, mean) of a volume.

A volume is a 3D SimpleITK image in DICOM patient space (LPS: +x towards the patient's
left, +y posterior, +z superior; PS3.3 C.7.6.2.1.1). :func:`reformat` cuts it along a
plane and returns a 2D image with true physical spacing, oriented for display by the
radiological convention:

========  ==================  =========================  ==================  ============
plane     normal (position)   image right (``row``)      image down          viewed from
========  ==================  =========================  ==================  ============
axial     +z, position = z    patient left (+x)          posterior (+y)      the feet
coronal   +y, position = y    patient left (+x)          inferior (-z)       the front
sagittal  +x, position = x    posterior (+y)             inferior (-z)       the left
========  ==================  =========================  ==================  ============

These are the orientations of DICOM's own axial (1\\0\\0\\0\\1\\0), coronal
(1\\0\\0\\0\\0\\-1) and sagittal (0\\1\\0\\0\\0\\-1) Image Orientation (Patient).

An oblique plane (a normal vector, or three points) is oriented by the same rule, so
that an oblique normal close to a named plane is displayed like it: the plane is
*axial-like*, *coronal-like* or *sagittal-like* by the largest component of its normal
(ties go to sagittal, then coronal); "up" on the screen is the patient's anterior (-y)
for an axial-like plane and superior (+z) otherwise, projected onto the plane; and the
image is viewed along +z, +y or -x respectively (``row x column`` = the viewing
direction). The named planes are exactly this rule applied to their normals.

Every output image carries its 3D geometry as metadata (numbers separated by spaces), so
that pixel ``(i, j)`` (column ``i``, row ``j``, SimpleITK index order) is at the patient
point ``origin + i * spacing[0] * row + j * spacing[1] * column`` (see
:func:`pixel_to_patient`):

- ``workbench:plane_origin``: the LPS point (mm) of the centre of pixel (0, 0), top left
- ``workbench:plane_row``: unit vector of increasing column index (image right)
- ``workbench:plane_column``: unit vector of increasing row index (image down)
- ``workbench:plane_normal``: unit normal along which ``position`` is measured
- ``workbench:plane_position``: ``normal . x`` (mm) of the (centre) plane
- ``workbench:slab``, ``workbench:mode``: the slab thickness (mm) and the reduction

The 2D image itself has origin (0, 0) and an identity direction: its physical
coordinates are millimetres along ``row`` and ``column`` from pixel (0, 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import SimpleITK as sitk

PLANES = ("axial", "coronal", "sagittal")
MODES = ("slice", "mip", "minip", "mean")
INTERPOLATORS = {"nearest": sitk.sitkNearestNeighbor, "linear": sitk.sitkLinear}

META_ORIGIN = "workbench:plane_origin"
META_ROW = "workbench:plane_row"
META_COLUMN = "workbench:plane_column"
META_NORMAL = "workbench:plane_normal"
META_POSITION = "workbench:plane_position"
META_SLAB = "workbench:slab"
META_MODE = "workbench:mode"

_NAMED_NORMALS = {"axial": (0.0, 0.0, 1.0), "coronal": (0.0, 1.0, 0.0), "sagittal": (1.0, 0.0, 0.0)}
# Viewing direction (into the screen) and "up" reference per plane family (module docstring).
_SAGITTAL, _CORONAL, _AXIAL = 0, 1, 2
_VIEW = {_SAGITTAL: (-1.0, 0.0, 0.0), _CORONAL: (0.0, 1.0, 0.0), _AXIAL: (0.0, 0.0, 1.0)}
_UP = {_SAGITTAL: (0.0, 0.0, 1.0), _CORONAL: (0.0, 0.0, 1.0), _AXIAL: (0.0, -1.0, 0.0)}
# A direction cosine this close to 1 counts as parallel: within 0.008 degrees, 0.05 mm over 400 mm,
# so rounding in the headers does not matter and a real small tilt goes to the resampling path.
_ALIGNED = 1.0 - 1e-8
# Positions within this many mm of a voxel centre need no interpolation.
_ON_SLICE_MM = 1e-3


def plane_axes(plane: str | Sequence[float] | Sequence[Sequence[float]]) -> tuple[np.ndarray, ...]:
    """The unit normal and the display axes of a plane, by the rule of the module docstring.

    Parameters
    ----------
    plane : str or array_like
        ``"axial"``, ``"coronal"``, ``"sagittal"``, a normal ``(nx, ny, nz)`` in LPS, or
        three points ``((x, y, z), (x, y, z), (x, y, z))`` in mm.

    Returns
    -------
    normal, row, column : numpy.ndarray
        Unit vectors in LPS: the normal along which positions are measured, the
        direction of image right and the direction of image down.
    """
    normal, _ = _parse_plane(plane)
    row, column = _display_axes(normal)
    return normal, row, column


def reformat(
    image: sitk.Image,
    plane: str | Sequence[float] | Sequence[Sequence[float]] = "axial",
    *,
    position: float | None = None,
    index: int | None = None,
    slab: float = 0.0,
    mode: str = "slice",
    spacing: float | None = None,
    interpolator: str = "linear",
) -> sitk.Image:
    """Cut a volume along a plane, optionally reducing a slab around it (MPR, MIP, MinIP).

    Parameters
    ----------
    image : SimpleITK.Image
        A 3D volume in LPS with origin, spacing and direction set (scalar, or a vector
        image such as RGB for ``mode="slice"``).
    plane : str or array_like
        ``"axial"``, ``"coronal"``, ``"sagittal"``, an oblique normal ``(nx, ny, nz)``
        in LPS, or three non-collinear points in mm defining the plane.
    position : float, optional
        Where the plane is: ``normal . x`` in mm (for the named planes the patient
        coordinate: z for axial, y for coronal, x for sagittal). Not with three points.
    index : int, optional
        Instead of ``position``: the slice number along the normal, 0 at the lowest
        position. It counts the volume's slices when the plane is aligned with the
        volume's axes, and steps of the output spacing otherwise.
    slab : float
        Slab thickness in mm for ``mode`` "mip", "minip" or "mean": every sample whose
        centre lies within ``position +- slab / 2`` is reduced.
    mode : str
        "slice" (a single plane, ``slab`` must be 0), "mip" (maximum intensity
        projection), "minip" (minimum) or "mean" (average) over the slab.
    spacing : float, optional
        Output pixel spacing in mm, the same in both directions. By default an
        axis-aligned plane keeps the volume's own sampling (true, possibly non-square,
        pixels) and an oblique one uses the volume's finest in-plane spacing.
    interpolator : str
        "linear" or "nearest".

    Returns
    -------
    SimpleITK.Image
        A 2D image, pixel (0, 0) at the top left in radiological display orientation,
        carrying its 3D geometry as metadata (module docstring). Its pixel type is the
        input's when every value is a voxel value (axis-aligned planes on a slice,
        nearest neighbour, MIP or MinIP of aligned slices, and colour images) and
        float32 otherwise.

    Raises
    ------
    TypeError
        If ``image`` is not a 3D SimpleITK image.
    ValueError
        For an unknown plane, mode or interpolator, a zero normal, collinear points, a
        position or index outside the volume, a negative slab, a slab in "slice" mode,
        a slab reduction of a colour image, or a non-positive spacing.
    """
    if not isinstance(image, sitk.Image):
        raise TypeError(f"image must be a SimpleITK.Image, not {type(image).__name__}")
    if image.GetDimension() != 3:
        raise TypeError(f"image must be 3D, got a {image.GetDimension()}D image")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if interpolator not in INTERPOLATORS:
        raise ValueError(f"unknown interpolator {interpolator!r}; expected one of {', '.join(INTERPOLATORS)}")
    slab = _real("slab", slab)
    if slab < 0:
        raise ValueError(f"slab must be >= 0 mm, got {slab}")
    if mode == "slice" and slab > 0:
        raise ValueError(f"slab={slab} needs mode 'mip', 'minip' or 'mean', not 'slice'")
    if spacing is not None:
        spacing = _real("spacing", spacing)
        if spacing <= 0:
            raise ValueError(f"spacing must be > 0 mm, got {spacing}")
    vector = image.GetNumberOfComponentsPerPixel() > 1
    if vector and mode != "slice":
        raise ValueError(f"mode {mode!r} is not supported for a colour (vector) image; use mode 'slice'")

    normal, point_position = _parse_plane(plane)
    if point_position is not None and (position is not None or index is not None):
        raise ValueError("a plane given by three points fixes its position: pass neither position nor index")
    if position is not None and index is not None:
        raise ValueError(f"pass position ({position}) or index ({index}), not both")
    if position is None:
        position = point_position
    if position is not None:
        position = _real("position", position)
    if index is not None and (isinstance(index, bool) or not isinstance(index, Integral)):
        raise ValueError(f"index must be an integer, got {index!r}")
    row, column = _display_axes(normal)

    geometry = _Geometry(image)
    aligned = geometry.aligned_axes(normal, row, column)
    if aligned is not None:
        out = _reformat_aligned(image, geometry, aligned, normal, row, column, position, index, slab, mode,
                                interpolator)
        if spacing is not None:
            out = _resample_2d(out, spacing, interpolator)
    else:
        out = _reformat_general(image, geometry, normal, row, column, position, index, slab, mode,
                                spacing, interpolator, vector)
    out.SetMetaData(META_NORMAL, _numbers(normal))
    out.SetMetaData(META_ROW, _numbers(row))
    out.SetMetaData(META_COLUMN, _numbers(column))
    out.SetMetaData(META_SLAB, repr(float(slab)))
    out.SetMetaData(META_MODE, mode)
    return out


def pixel_to_patient(image2d: sitk.Image, index: Any) -> np.ndarray:
    """LPS points (mm) of pixels of a :func:`reformat` output.

    Parameters
    ----------
    image2d : SimpleITK.Image
        An image returned by :func:`reformat` (it carries the plane metadata).
    index : array_like, shape (..., 2)
        Pixel indices ``(i, j)`` = (column, row) in SimpleITK order; may be fractional.

    Returns
    -------
    numpy.ndarray, shape (..., 3)
        ``origin + i * spacing[0] * row + j * spacing[1] * column``.
    """
    origin, row, column = (_metadata_vector(image2d, key) for key in (META_ORIGIN, META_ROW, META_COLUMN))
    ij = np.asarray(index, dtype=float)
    if ij.shape[-1:] != (2,):
        raise ValueError(f"index must have shape (..., 2), got {ij.shape}")
    sx, sy = image2d.GetSpacing()
    return origin + (ij[..., :1] * sx) * row + (ij[..., 1:] * sy) * column


# --- planes ------------------------------------------------------------------------------------------------


def _parse_plane(plane: Any) -> tuple[np.ndarray, float | None]:
    """Unit normal, and the position when the plane is given by three points."""
    if isinstance(plane, str):
        name = plane.strip().lower()
        if name not in _NAMED_NORMALS:
            raise ValueError(f"unknown plane {plane!r}; expected one of {', '.join(PLANES)}, "
                             "a normal (nx, ny, nz) or three points")
        return np.array(_NAMED_NORMALS[name]), None
    try:
        values = np.asarray(plane, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"unknown plane {plane!r}; expected one of {', '.join(PLANES)}, "
                         "a normal (nx, ny, nz) or three points") from None
    if not np.all(np.isfinite(values)):
        raise ValueError(f"plane {plane!r} has non-finite values")
    if values.shape == (3,):
        length = float(np.linalg.norm(values))
        if length < 1e-9:
            raise ValueError(f"plane normal {tuple(values.tolist())} is zero")
        return values / length, None
    if values.shape == (3, 3):
        edge1, edge2 = values[1] - values[0], values[2] - values[0]
        cross = np.cross(edge1, edge2)
        # Relative test: |e1 x e2| = |e1| |e2| sin(angle); coincident points give 0 <= 0.
        if np.linalg.norm(cross) <= 1e-9 * np.linalg.norm(edge1) * np.linalg.norm(edge2):
            raise ValueError(f"the three points {values.tolist()} are collinear and define no plane")
        normal = cross / np.linalg.norm(cross)
        return normal, float(normal @ values[0])
    raise ValueError(f"unknown plane {plane!r}: a name, a normal of 3 numbers or 3 points of 3 numbers "
                     f"(got shape {values.shape})")


def _display_axes(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``row`` (image right) and ``column`` (image down) of the plane (module docstring)."""
    family = int(np.argmax(np.abs(normal)))  # first maximum: ties go to sagittal, then coronal
    view = normal if normal @ _VIEW[family] > 0 else -normal
    up = np.array(_UP[family])
    up = up - (up @ view) * view
    column = -up / np.linalg.norm(up)
    row = np.cross(column, view)
    # Snap exact axis directions so that -0.0 and 1e-17 do not leak into metadata.
    return _clean(row), _clean(column)


def _clean(vector: np.ndarray) -> np.ndarray:
    vector = np.where(np.abs(vector) < 1e-12, 0.0, vector)
    return vector / np.linalg.norm(vector)


# --- the volume --------------------------------------------------------------------------------------------


class _Geometry:
    """Origin, spacing, direction and size of a 3D image, as arrays."""

    def __init__(self, image: sitk.Image) -> None:
        self.origin = np.array(image.GetOrigin())
        self.spacing = np.array(image.GetSpacing())
        self.direction = np.array(image.GetDirection()).reshape(3, 3)  # columns: the index axes in LPS
        self.size = np.array(image.GetSize())

    def point(self, index: np.ndarray) -> np.ndarray:
        """LPS point of a (continuous) index; rows of ``index`` are points."""
        return self.origin + (np.asarray(index, dtype=float) * self.spacing) @ self.direction.T

    def corners(self, margin: float = 0.0) -> np.ndarray:
        """The 8 corners of the voxel-centre box, grown by ``margin`` voxels (0.5: voxel edges)."""
        lo, hi = -margin, self.size - 1 + margin
        grid = np.array([[(hi[a] if bit else lo) for a, bit in enumerate(bits)]
                         for bits in np.ndindex(2, 2, 2)], dtype=float)
        return self.point(grid)

    def aligned_axes(self, *vectors: np.ndarray) -> list[tuple[int, float]] | None:
        """Per vector: the index axis parallel to it and the cosine (+-1), or None if any is not."""
        found = []
        for vector in vectors:
            cosines = self.direction.T @ vector
            axis = int(np.argmax(np.abs(cosines)))
            if abs(cosines[axis]) < _ALIGNED:
                return None
            found.append((axis, float(cosines[axis])))
        if len({axis for axis, _ in found}) != len(found):
            return None
        return found


# --- axis-aligned planes: numpy on the voxel array ------------------------------------------------------


def _reformat_aligned(image, geometry, aligned, normal, row, column, position, index, slab, mode,
                      interpolator):
    (k, cos_k), (a, cos_a), (b, cos_b) = aligned
    n_slices = int(geometry.size[k])
    step = cos_k * geometry.spacing[k]  # change of normal . x per slice (+ or -)
    base = float(normal @ geometry.origin)
    if index is not None:
        if not 0 <= index < n_slices:
            raise ValueError(f"index {index} is outside the volume: 0 <= index < {n_slices} along the normal")
        t = float(index if step > 0 else n_slices - 1 - index)
    elif position is None:
        middle = (n_slices - 1) // 2
        t = float(middle if step > 0 else n_slices - 1 - middle)
    else:
        t = (position - base) / step
        if not -0.5 - 1e-9 <= t <= n_slices - 0.5 + 1e-9:
            ends = sorted((base - 0.5 * step, base + (n_slices - 0.5) * step))
            raise ValueError(f"position {position} mm is outside the volume along the normal "
                             f"({ends[0]:.6g} to {ends[1]:.6g} mm)")

    array = sitk.GetArrayViewFromImage(image)  # axes (z, y, x[, component]): index axis i is array axis 2 - i
    axis_k = 2 - k
    nearest = min(max(round(t), 0), n_slices - 1)
    if mode == "slice":
        if interpolator == "nearest" or abs(t - round(t)) * abs(step) <= _ON_SLICE_MM or n_slices == 1:
            t = float(nearest)
            plane = np.take(array, nearest, axis=axis_k)
        else:
            # Linear between the two neighbouring slices, clamped at the ends like ITK's interpolator.
            t0 = min(max(math.floor(t), 0), n_slices - 2)
            weight = min(max(t - t0, 0.0), 1.0)
            s0 = np.take(array, t0, axis=axis_k).astype(np.float32)
            s1 = np.take(array, t0 + 1, axis=axis_k).astype(np.float32)
            plane = s0 + np.float32(weight) * (s1 - s0)
            if image.GetNumberOfComponentsPerPixel() > 1:
                plane = np.rint(plane).astype(array.dtype)  # colour stays colour
    else:
        centre = base + t * step
        ends = sorted(((centre - slab / 2 - base) / step, (centre + slab / 2 - base) / step))
        j0 = max(math.ceil(ends[0] - 1e-6), 0)
        j1 = min(math.floor(ends[1] + 1e-6), n_slices - 1)
        if j0 > j1:  # a slab thinner than the slice gap, between two slices: the nearest one
            j0 = j1 = nearest
        block = array[(slice(None),) * axis_k + (slice(j0, j1 + 1),)]
        if mode == "mip":
            plane = block.max(axis=axis_k)
        elif mode == "minip":
            plane = block.min(axis=axis_k)
        else:
            plane = block.mean(axis=axis_k, dtype=np.float64).astype(np.float32)

    # The remaining array axes are the index axes in decreasing order; the display wants (b, a).
    if 2 - b > 2 - a:
        plane = np.swapaxes(plane, 0, 1)
    if cos_a < 0:
        plane = plane[:, ::-1]
    if cos_b < 0:
        plane = plane[::-1, :]
    out = sitk.GetImageFromArray(np.ascontiguousarray(plane), isVector=plane.ndim == 3)
    out.SetSpacing((float(geometry.spacing[a]), float(geometry.spacing[b])))
    first = np.zeros(3)
    first[a] = 0 if cos_a > 0 else geometry.size[a] - 1
    first[b] = 0 if cos_b > 0 else geometry.size[b] - 1
    first[k] = t
    origin = geometry.point(first)
    out.SetMetaData(META_ORIGIN, _numbers(origin))
    out.SetMetaData(META_POSITION, repr(float(normal @ origin)))
    return out


def _resample_2d(image2d: sitk.Image, spacing: float, interpolator: str) -> sitk.Image:
    """Resample a 2D reformat onto square pixels of ``spacing`` mm over the same extent."""
    old_spacing = np.array(image2d.GetSpacing())
    extent = (np.array(image2d.GetSize()) - 1) * old_spacing
    size = [int(math.floor(e / spacing + 1e-9)) + 1 for e in extent]
    out = sitk.Resample(image2d, size, sitk.Transform(), INTERPOLATORS[interpolator], (0.0, 0.0),
                        (spacing, spacing), (1.0, 0.0, 0.0, 1.0), 0.0, image2d.GetPixelID())
    for key in image2d.GetMetaDataKeys():
        out.SetMetaData(key, image2d.GetMetaData(key))
    return out


# --- any plane: resampling ---------------------------------------------------------------------------------


def _reformat_general(image, geometry, normal, row, column, position, index, slab, mode, spacing,
                      interpolator, vector):
    if spacing is None:
        spacing = float(min(geometry.spacing[0], geometry.spacing[1]))
    centres = geometry.corners()
    along = centres @ normal
    p_lo, p_hi = float(along.min()), float(along.max())
    n_positions = int(math.floor((p_hi - p_lo) / spacing + 1e-9)) + 1
    if index is not None:
        if not 0 <= index < n_positions:
            raise ValueError(f"index {index} is outside the volume: 0 <= index < {n_positions} "
                             "along the normal")
        position = p_lo + index * spacing
    elif position is None:
        position = p_lo + ((n_positions - 1) // 2) * spacing
    else:
        edges = geometry.corners(0.5) @ normal
        if not edges.min() - 1e-6 <= position <= edges.max() + 1e-6:
            raise ValueError(f"position {position} mm is outside the volume along the normal "
                             f"({edges.min():.6g} to {edges.max():.6g} mm)")

    # A fixed in-plane grid (the volume's projection) for every position: scrolling keeps pixels aligned.
    u, v = centres @ row, centres @ column
    size = [int(math.floor((u.max() - u.min()) / spacing + 1e-9)) + 1,
            int(math.floor((v.max() - v.min()) / spacing + 1e-9)) + 1]
    half = int(math.floor(slab / 2 / spacing + 1e-9))
    origin = position * normal + u.min() * row + v.min() * column

    resampler = sitk.ResampleImageFilter()
    resampler.SetSize(size + [2 * half + 1])
    resampler.SetOutputSpacing((spacing, spacing, spacing))
    resampler.SetOutputOrigin(tuple(float(x) for x in origin - half * spacing * normal))
    resampler.SetOutputDirection(tuple(float(x) for x in np.column_stack([row, column, normal]).ravel()))
    resampler.SetInterpolator(INTERPOLATORS[interpolator])
    if vector:
        resampler.SetDefaultPixelValue(0.0)
        resampled = resampler.Execute(image)  # kept referenced while its array view is in use
        block = sitk.GetArrayViewFromImage(resampled)
        out = sitk.GetImageFromArray(np.ascontiguousarray(block[0]), isVector=True)
    else:
        # float32 with NaN outside the volume, so that outside samples never win a reduction.
        resampler.SetOutputPixelType(sitk.sitkFloat32)
        resampler.SetDefaultPixelValue(float("nan"))
        resampled = resampler.Execute(image)
        block = sitk.GetArrayViewFromImage(resampled)
        if mode == "slice":
            plane = np.array(block[0])
        elif mode == "mip":
            plane = np.fmax.reduce(block, axis=0)
        elif mode == "minip":
            plane = np.fmin.reduce(block, axis=0)
        else:
            counts = np.sum(~np.isnan(block), axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                plane = (np.nansum(block, axis=0) / counts).astype(np.float32)
        outside = np.isnan(plane)
        if outside.any():
            # Outside the volume shows as its darkest value (air for CT, background for MR).
            plane[outside] = float(sitk.GetArrayViewFromImage(image).min())
        if interpolator == "nearest" and mode != "mean":
            plane = plane.astype(sitk.GetArrayViewFromImage(image).dtype)
        out = sitk.GetImageFromArray(plane)
    out.SetSpacing((spacing, spacing))
    out.SetMetaData(META_ORIGIN, _numbers(origin))
    out.SetMetaData(META_POSITION, repr(float(position)))
    return out


# --- small helpers -----------------------------------------------------------------------------------------


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _numbers(vector: np.ndarray) -> str:
    return " ".join(repr(float(x)) for x in vector)


def _metadata_vector(image: sitk.Image, key: str) -> np.ndarray:
    if not image.HasMetaDataKey(key):
        raise ValueError(f"the image has no {key!r} metadata: it is not an output of reformat()")
    return np.array([float(x) for x in image.GetMetaData(key).split()])
