"""How the frames of a series form volumes: stacks, slice order, spacing and tilt.

A series is a set of 2D frames (one per single-frame file, several per multi-frame
file), each with its Image Position and Orientation (Patient) (PS3.3 Section
C.7.6.2.1.1). This module decides, from geometry and a few acquisition attributes
only, which frames make which volume and whether the volume is regular:

- frames whose orientation differs from the series' dominant one (a localizer in
  the series) are kept out and reported;
- frames that differ in echo, image type (magnitude/phase/...), or diffusion b-value
  go to separate stacks; frames repeated at the same positions (time points,
  diffusion directions) go to successive volumes of a stack;
- within a volume, frames are sorted by their position along the slice normal;
  spacing comes from those positions, never from SliceThickness;
- gaps (a missing slice), uneven spacing and gantry tilt (positions that move in
  the image plane from slice to slice) are measured for the loader to act on.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

# Positions closer than this (mm) are the same position; orientations closer than this are equal.
POSITION_TOLERANCE = 0.01
ORIENTATION_TOLERANCE = 1e-4
# Slices are evenly spaced when every gap is within this fraction (or 0.01 mm) of the median.
SPACING_TOLERANCE = 0.01


class SeriesGeometryError(ValueError):
    """A selection of frames that cannot be made into one regular volume, and why."""


@dataclass
class Frame:
    """One 2D image plane of a series and where it is.

    Attributes
    ----------
    path, member : str, str or None
        The file (and zip member) holding the frame.
    index : int
        The frame's number within its file (0 for single-frame files).
    position : numpy.ndarray
        ImagePositionPatient (mm, LPS) of the frame's first pixel.
    orientation : numpy.ndarray
        ImageOrientationPatient: row direction then column direction cosines.
    spacing : tuple[float, float]
        PixelSpacing: (between rows, between columns) in mm.
    rows, columns : int
        Frame size.
    feature : tuple
        What makes frames at one position different images: echo, image type, b-value.
    order : tuple
        Acquisition order among frames repeated at one position (time, instance number).
    slope, intercept : float
        Rescale slope and intercept of the frame (PS3.3 C.11.1.1.2).
    """

    path: str
    member: str | None
    index: int
    position: np.ndarray
    orientation: np.ndarray
    spacing: tuple[float, float]
    rows: int
    columns: int
    feature: tuple = ()
    order: tuple = ()
    slope: float = 1.0
    intercept: float = 0.0

    @property
    def normal(self) -> np.ndarray:
        """The unit normal of the frame's plane: row direction x column direction."""
        normal = np.cross(self.orientation[:3], self.orientation[3:6])
        return normal / np.linalg.norm(normal)


@dataclass
class Stack:
    """Frames that form one volume: sorted along the normal, with measured geometry.

    Attributes
    ----------
    label : str
        What distinguishes this stack from the others in the series ("" when alone).
    frames : list[Frame]
        Sorted by position along the slice normal.
    offsets : numpy.ndarray
        Each frame's position along the normal relative to the first frame (mm).
    spacing : float
        Median gap between consecutive frames along the normal (mm).
    gaps : list[tuple[float, float]]
        (position along the normal, gap) where a gap is not the median spacing.
    shear : numpy.ndarray
        Each frame's in-plane displacement from the first frame's plane origin, in mm
        along (row direction, column direction): non-zero for a tilted gantry.
    """

    label: str
    frames: list[Frame]
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(0))
    spacing: float = 0.0
    gaps: list[tuple[float, float]] = field(default_factory=list)
    shear: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    @property
    def tilted(self) -> bool:
        """Whether the slices move in the image plane along the stack (gantry tilt)."""
        return bool(len(self.shear) and np.abs(self.shear).max() > POSITION_TOLERANCE)

    @property
    def tilt_degrees(self) -> float:
        """The angle between the stacking direction and the slice normal, in degrees."""
        if len(self.frames) < 2 or not self.tilted:
            return 0.0
        along = self.offsets[-1]
        across = float(np.linalg.norm(self.shear[-1]))
        return float(np.degrees(np.arctan2(across, along)))


@dataclass
class SeriesPlan:
    """How a selection of frames divides into volumes, and what was kept out.

    Attributes
    ----------
    stacks : list[list[Stack]]
        One entry per distinct image (echo, type, b-value); each holds one or more
        volumes of that image at successive times/repeats.
    excluded : list[tuple[Frame, str]]
        Frames kept out of every volume, with the reason.
    """

    stacks: list[list[Stack]]
    excluded: list[tuple[Frame, str]]

    @property
    def volumes(self) -> list[Stack]:
        """Every volume, in order: stack by stack, repeat by repeat."""
        return [volume for stack in self.stacks for volume in stack]

    def describe(self) -> str:
        """A few lines a user reads to see how the series divides."""
        lines = []
        for number, volume in enumerate(self.volumes):
            lines.append(
                f"volume {number}: {volume.label or 'the series'}: {len(volume.frames)} slices, "
                f"spacing {volume.spacing:g} mm" + (f", tilt {volume.tilt_degrees:.1f} degrees"
                                                    if volume.tilted else "")
                + (f", {len(volume.gaps)} uneven gaps" if volume.gaps else "")
            )
        if self.excluded:
            reasons = Counter(reason for _, reason in self.excluded)
            lines += [f"kept out: {count} frame(s): {reason}" for reason, count in reasons.items()]
        return "\n".join(lines)


def _same_orientation(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(np.abs(a - b) < ORIENTATION_TOLERANCE * 10))


def plan_series(frames: list[Frame]) -> SeriesPlan:
    """Divide frames into volumes as described in the module docstring.

    Parameters
    ----------
    frames : list[Frame]
        Every frame of the selection.

    Returns
    -------
    SeriesPlan

    Raises
    ------
    SeriesGeometryError
        When there are no frames with a position and orientation, or frames of one
        volume differ in size or pixel spacing.
    """
    if not frames:
        raise SeriesGeometryError("the selection holds no image frames with a position and orientation")
    excluded: list[tuple[Frame, str]] = []
    rounded = Counter(tuple(np.round(f.orientation, 3)) for f in frames)
    main = np.array(rounded.most_common(1)[0][0])
    kept = []
    for frame in frames:
        if _same_orientation(np.round(frame.orientation, 3), main):
            kept.append(frame)
        else:
            excluded.append((frame, "another orientation than the series (e.g. a localizer)"))
    by_feature: dict[tuple, list[Frame]] = defaultdict(list)
    for frame in kept:
        by_feature[frame.feature].append(frame)
    stacks = []
    for feature in sorted(by_feature, key=_sort_key):
        volumes = _split_repeats(by_feature[feature])
        label = _feature_label(feature) if len(by_feature) > 1 else ""
        stack = []
        for number, volume_frames in enumerate(volumes):
            repeat = f"repeat {number + 1} of {len(volumes)}" if len(volumes) > 1 else ""
            stack.append(measure_stack(", ".join(p for p in (label, repeat) if p), volume_frames))
        stacks.append(stack)
    return SeriesPlan(stacks, excluded)


def _sort_key(feature: tuple) -> tuple:
    return tuple((0, v) if isinstance(v, (int, float)) else (1, str(v)) for v in feature)


def _feature_label(feature: tuple) -> str:
    names = ("echo", "type", "b-value")
    return ", ".join(f"{name} {value}" for name, value in zip(names, feature) if value not in (None, ""))


def _split_repeats(frames: list[Frame]) -> list[list[Frame]]:
    """Frames repeated at one position go to successive volumes, in acquisition order."""
    normal = frames[0].normal
    at_position: dict[float, list[Frame]] = defaultdict(list)
    for frame in frames:
        key = round(float(frame.position @ normal) / POSITION_TOLERANCE) * POSITION_TOLERANCE
        at_position[key].append(frame)
    repeats = Counter(len(group) for group in at_position.values())
    if len(repeats) > 1:
        counts = ", ".join(f"{n} position(s) x {k}" for k, n in sorted(repeats.items()))
        raise SeriesGeometryError(
            f"positions repeat unevenly ({counts}): the frames do not form whole volumes"
        )
    count = next(iter(repeats))
    volumes: list[list[Frame]] = [[] for _ in range(count)]
    for group in at_position.values():
        for number, frame in enumerate(sorted(group, key=lambda f: f.order)):
            volumes[number].append(frame)
    return volumes


def measure_stack(label: str, frames: list[Frame]) -> Stack:
    """Sort one volume's frames along the normal and measure spacing, gaps and tilt.

    Raises
    ------
    SeriesGeometryError
        When the frames differ in size or pixel spacing.
    """
    sizes = {(f.rows, f.columns) for f in frames}
    if len(sizes) > 1:
        raise SeriesGeometryError(f"frames of different sizes (rows, columns) {sorted(sizes)} in one volume")
    spacings = {tuple(np.round(f.spacing, 4)) for f in frames}
    if len(spacings) > 1:
        raise SeriesGeometryError(f"frames with different pixel spacing {sorted(spacings)} in one volume")
    normal = frames[0].normal
    frames = sorted(frames, key=lambda f: float(f.position @ normal))
    origin = frames[0].position
    relative = np.array([f.position - origin for f in frames])
    offsets = relative @ normal
    row, column = frames[0].orientation[:3], frames[0].orientation[3:6]
    shear = np.column_stack([relative @ row, relative @ column])
    stack = Stack(label, frames, offsets, 0.0, [], shear)
    if len(frames) >= 2:
        steps = np.diff(offsets)
        stack.spacing = float(np.median(steps))
        tolerance = max(SPACING_TOLERANCE * stack.spacing, POSITION_TOLERANCE)
        stack.gaps = [
            (float(offsets[i] + float(origin @ normal)), float(step))
            for i, step in enumerate(steps) if abs(step - stack.spacing) > tolerance
        ]
    return stack
