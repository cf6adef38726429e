"""Window/level: map stored intensities (e.g. Hounsfield units) to 8-bit display values.

The mapping is the VOI LUT function of DICOM PS3.3 C.11.2.1.2: "LINEAR"
(C.11.2.1.2.1, the default, for a width >= 1) or "LINEAR_EXACT" (C.11.2.1.3.2, any
width > 0, for float data such as parametric maps), with output range 0..255.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import SimpleITK as sitk

#: CT windows as (center, width) in HU. Values from Radiopaedia, "Windowing (CT)"
#: (https://radiopaedia.org/articles/windowing-ct); where it gives a range, the middle
#: (subdural W130-300 L50-100) or its second option (stroke W40 L40) is used.
CT_PRESETS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "stroke": (40.0, 40.0),
    "temporal_bone": (600.0, 2800.0),
    "soft_tissue": (50.0, 400.0),
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "abdomen": (50.0, 400.0),
    "liver": (30.0, 150.0),
    "bone": (400.0, 1800.0),
}
FUNCTIONS = ("linear", "linear_exact")
# Percentiles of a large volume are taken on an evenly strided sample of about this many values.
_SAMPLE = 1_000_000

Window = str | tuple[float, float]


def window_level(values: np.ndarray | sitk.Image, window: Window = "auto", *,
                 function: str = "linear") -> np.ndarray:
    """Map intensities to uint8 display values through a window.

    Parameters
    ----------
    values : numpy.ndarray or SimpleITK.Image
        Intensities (any shape; a colour image's components are mapped alike).
    window : str or (float, float)
        A name of :data:`CT_PRESETS`, ``"auto"`` (:func:`auto_window` of ``values``)
        or ``(center, width)``.
    function : str
        ``"linear"``: PS3.3 C.11.2.1.2.1, for ``width >= 1``::

            x <= c - 0.5 - (w - 1) / 2        -> 0
            x >  c - 0.5 + (w - 1) / 2        -> 255
            else ((x - (c - 0.5)) / (w - 1) + 0.5) * 255

        ``"linear_exact"``: PS3.3 C.11.2.1.3.2, for ``width > 0``:
        ``((x - c) / w + 0.5) * 255`` clipped to 0..255.

    Returns
    -------
    numpy.ndarray
        uint8 array of the shape of ``values`` (rounded to the nearest integer).

    Raises
    ------
    ValueError
        For an unknown preset or function, or a width out of range for the function.
    """
    array = sitk.GetArrayViewFromImage(values) if isinstance(values, sitk.Image) else np.asarray(values)
    if function not in FUNCTIONS:
        raise ValueError(f"unknown VOI LUT function {function!r}; expected one of {', '.join(FUNCTIONS)}")
    center, width = resolve_window(window, array)
    if function == "linear":
        if width < 1:
            raise ValueError(f"window width {width} is < 1, which the LINEAR function does not allow "
                             "(PS3.3 C.11.2.1.2.1); use function='linear_exact'")
        if width == 1:  # the formula's limit: a threshold at c - 0.5
            return np.where(array > center - 0.5, 255, 0).astype(np.uint8)
        low, scale = center - 0.5 - (width - 1) / 2, 255.0 / (width - 1)
    else:
        low, scale = center - width / 2, 255.0 / width
    # float32 arithmetic in place: quick, and exact enough for 256 output levels.
    out = np.subtract(array, low, dtype=np.float32)
    out *= np.float32(scale)
    np.clip(out, 0, 255, out=out)
    np.rint(out, out=out)
    return out.astype(np.uint8)


def resolve_window(window: Window, values: Any = None) -> tuple[float, float]:
    """``(center, width)`` of a preset name, ``"auto"`` (needs ``values``) or a pair.

    Raises
    ------
    ValueError
        For an unknown name, a malformed pair or a width that is not > 0.
    """
    if isinstance(window, str):
        name = window.strip().lower()
        if name == "auto":
            if values is None:
                raise ValueError("window 'auto' needs the values to compute it from")
            return auto_window(values)
        if name not in CT_PRESETS:
            raise ValueError(f"unknown window preset {window!r}; expected 'auto' or one of "
                             f"{', '.join(CT_PRESETS)}")
        return CT_PRESETS[name]
    try:
        center, width = (float(x) for x in window)
    except (TypeError, ValueError):
        raise ValueError(f"window must be a preset name or (center, width), got {window!r}") from None
    if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
        raise ValueError(f"window {window!r} needs a finite center and a width > 0")
    return center, width


def auto_window(values: np.ndarray | sitk.Image, percentiles: tuple[float, float] = (1.0, 99.0), *,
                ignore: float | str | None = "min") -> tuple[float, float]:
    """A window spanning two percentiles of the values, for MR and other uncalibrated data.

    Parameters
    ----------
    values : numpy.ndarray or SimpleITK.Image
        The intensities. NaN and infinite values are always ignored.
    percentiles : (float, float)
        Lower and upper percentile (0..100) that become ``center -+ width / 2``.
    ignore : float, "min" or None
        Values left out before taking percentiles, so that a large background does not
        drag the window down: ``"min"`` (default) drops the voxels equal to the minimum
        (MR background zeros, CT padding outside the field of view), a number drops that
        exact value, None drops nothing. If nothing is left, all values are used.

    Returns
    -------
    (float, float)
        ``(center, width)``; the width is at least 1 when the data are integers (as the
        LINEAR function needs) and otherwise > 0.
    """
    array = sitk.GetArrayViewFromImage(values) if isinstance(values, sitk.Image) else np.asarray(values)
    low_p, high_p = (float(p) for p in percentiles)
    if not 0 <= low_p < high_p <= 100:
        raise ValueError(f"percentiles {percentiles!r} must satisfy 0 <= low < high <= 100")
    flat = array.reshape(-1)
    if flat.size > _SAMPLE:
        flat = flat[:: flat.size // _SAMPLE]  # an even stride keeps the estimate deterministic
    flat = flat[np.isfinite(flat)] if flat.dtype.kind == "f" else flat
    if flat.size == 0:
        raise ValueError("auto_window needs at least one finite value")
    if ignore is not None:
        if isinstance(ignore, str):
            if ignore != "min":
                raise ValueError(f"ignore must be 'min', a number or None, got {ignore!r}")
            ignore = flat.min()
        kept = flat[flat != ignore]
        flat = kept if kept.size else flat
    low, high = np.percentile(flat, [low_p, high_p])
    width = float(high - low)
    minimum = 1.0 if flat.dtype.kind in "iub" else max(abs(float(high)), 1.0) * 1e-6
    if width < minimum:
        width = minimum
    return float(low + high) / 2, width


def parse_window(text: str) -> Window:
    """Parse a ``--window`` argument: a preset name, ``auto``, or ``C,W`` (center, width).

    Raises
    ------
    ValueError
        Naming ``text`` when it is neither.
    """
    if not isinstance(text, str):
        raise ValueError(f"window must be text, got {text!r}")
    name = text.strip().lower()
    if name == "auto" or name in CT_PRESETS:
        return name
    parts = name.split(",")
    if len(parts) == 2:
        try:
            return resolve_window((float(parts[0]), float(parts[1])))
        except ValueError:
            pass
    raise ValueError(f"window {text!r} is not a preset ({', '.join(CT_PRESETS)}), 'auto', "
                     "or CENTER,WIDTH with a width > 0")
