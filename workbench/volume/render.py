"""Turn 2D images (e.g. :func:`workbench.volume.reformat.reformat` outputs) into pictures.

:func:`to_display` windows an image to uint8 with square display pixels, so that what is
shown has the true physical aspect; :func:`render_png` writes it as a PNG atomically
(a temporary name in the same folder, then :func:`os.replace`); :func:`montage` tiles
several pictures, with optional titles, into one (no matplotlib needed).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from workbench.volume.window import Window, resolve_window, window_level

Picture = sitk.Image | np.ndarray


def to_display(image2d: Picture, window: Window | None = "auto", *,
               pixel_size: float | None = None) -> np.ndarray:
    """A windowed uint8 picture of a 2D image, with square display pixels.

    Parameters
    ----------
    image2d : SimpleITK.Image or numpy.ndarray
        A 2D scalar or colour (vector) image. A NumPy array has no spacing and is taken to
        have square pixels already.
    window : str, (float, float) or None
        Passed to :func:`workbench.volume.window.window_level` for a scalar image
        (``"auto"`` by default; a width below 1 uses the LINEAR_EXACT function). uint8
        values are shown as stored when ``window`` is None, and also with ``"auto"`` for
        a colour image or a NumPy array (already display values).
    pixel_size : float, optional
        Size in mm of a displayed pixel; by default the finer of the two spacings, so
        the coarser direction is interpolated up (bilinear) and nothing is lost.

    Returns
    -------
    numpy.ndarray
        uint8, (rows, columns) or (rows, columns, 3); row 0 at the top.
    """
    if isinstance(image2d, sitk.Image):
        if image2d.GetDimension() != 2:
            raise ValueError(f"to_display needs a 2D image, got a {image2d.GetDimension()}D image")
        array = sitk.GetArrayViewFromImage(image2d)
        spacing = image2d.GetSpacing()
    elif isinstance(image2d, np.ndarray):
        array, spacing = image2d, (1.0, 1.0)
    else:
        raise TypeError(f"image2d must be a SimpleITK.Image or numpy.ndarray, not {type(image2d).__name__}")
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ValueError(f"to_display needs a 2D grey or colour image, got an array of shape {array.shape}")
    colour = array.ndim == 3
    # Already display values: colour, or a plain uint8 array, unless a window is asked for.
    as_stored = window is None or (isinstance(window, str) and window == "auto"
                                   and (colour or isinstance(image2d, np.ndarray)))
    if array.dtype == np.uint8 and as_stored:
        picture = np.array(array)  # a copy: a view would die with a temporary image
    else:
        if window is None:
            raise ValueError("window=None only fits uint8 images; give a preset, 'auto' or (center, width)")
        picture = _window(array, window)
    if colour:
        picture = picture[:, :, :3] if picture.shape[2] >= 3 else np.repeat(picture, 3, axis=2)
    return _square_pixels(np.ascontiguousarray(picture), spacing, pixel_size)


def render_png(image2d: Picture, path: str | os.PathLike, window: Window | None = "auto", *,
               pixel_size: float | None = None) -> Path:
    """Write :func:`to_display` of ``image2d`` as a PNG file, atomically.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    return write_png(to_display(image2d, window, pixel_size=pixel_size), path)


def write_png(picture: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 (H, W) or (H, W, 3) array as a PNG: a temporary name, then a rename.

    The rename is atomic on POSIX file systems, so ``path`` is either absent, the old
    file or the complete new one, whatever happens to this process.
    """
    from PIL import Image

    picture = np.asarray(picture)
    if not _is_picture(picture):
        raise ValueError(f"write_png needs uint8 (H, W) or (H, W, 3), got {picture.dtype} {picture.shape}")
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            # Level 1: a little larger than the default 6, several times faster.
            Image.fromarray(picture).save(stream, format="PNG", compress_level=1)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def montage(images: Sequence[np.ndarray], titles: Sequence[str] | None = None, columns: int | None = None,
            *, gap: int = 4, background: int = 0) -> np.ndarray:
    """Tile uint8 pictures into one grid, each centred in its cell, with optional titles.

    Parameters
    ----------
    images : sequence of numpy.ndarray
        uint8 pictures, (H, W) or (H, W, 3), e.g. from :func:`to_display`.
    titles : sequence of str, optional
        One caption per picture, drawn above it (PIL's built-in font).
    columns : int, optional
        Cells per row; by default ``ceil(sqrt(n))``.
    gap : int
        Pixels between and around cells.
    background : int
        Grey level of the gaps and of the cells' unused area.

    Returns
    -------
    numpy.ndarray
        uint8 (H, W) when every picture is grey and there are no titles, else (H, W, 3).
    """
    pictures = [np.asarray(p) for p in images]
    if not pictures:
        raise ValueError("montage needs at least one image")
    for number, picture in enumerate(pictures):
        if not _is_picture(picture):
            raise ValueError(f"image {number} must be uint8 (H, W) or (H, W, 3), got {picture.dtype} "
                             f"{picture.shape}")
    if titles is not None and len(titles) != len(pictures):
        raise ValueError(f"{len(titles)} titles for {len(pictures)} images")
    if columns is None:
        columns = math.ceil(math.sqrt(len(pictures)))
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ValueError(f"columns must be a positive integer, got {columns!r}")
    if gap < 0 or not 0 <= background <= 255:
        raise ValueError(f"gap ({gap}) must be >= 0 and background ({background}) within 0..255")
    colour = titles is not None or any(p.ndim == 3 for p in pictures)
    if colour:
        pictures = [np.repeat(p[:, :, None], 3, axis=2) if p.ndim == 2 else p for p in pictures]

    font, title_height = (_font() if titles is not None else (None, 0))
    rows = math.ceil(len(pictures) / columns)
    cell_h = max(p.shape[0] for p in pictures) + title_height
    cell_w = max(p.shape[1] for p in pictures)
    shape = (rows * cell_h + (rows + 1) * gap, columns * cell_w + (columns + 1) * gap)
    grid = np.full(shape + ((3,) if colour else ()), background, dtype=np.uint8)
    for number, picture in enumerate(pictures):
        top = gap + (number // columns) * (cell_h + gap)
        left = gap + (number % columns) * (cell_w + gap)
        y = top + title_height + (cell_h - title_height - picture.shape[0]) // 2
        x = left + (cell_w - picture.shape[1]) // 2
        grid[y:y + picture.shape[0], x:x + picture.shape[1]] = picture
    if titles is not None:
        grid = _draw_titles(grid, titles, font, columns, cell_h, cell_w, gap)
    return grid


def render_montage(images: Sequence[Picture], path: str | os.PathLike, titles: Sequence[str] | None = None,
                   columns: int | None = None, window: Window | None = "auto", **options) -> Path:
    """Write a :func:`montage` of images (2D SimpleITK images or uint8 pictures) as a PNG.

    Each SimpleITK image goes through :func:`to_display` with ``window``; ``options``
    (``gap``, ``background``) go to :func:`montage`.
    """
    pictures = [to_display(image, window) if isinstance(image, sitk.Image) else image for image in images]
    return write_png(montage(pictures, titles, columns, **options), path)


# --- helpers -----------------------------------------------------------------------------------------------


def _is_picture(picture: np.ndarray) -> bool:
    """uint8, (H, W) or (H, W, 3)."""
    return picture.dtype == np.uint8 and (picture.ndim == 2 or (picture.ndim == 3 and picture.shape[2] == 3))


def _window(array: np.ndarray, window: Window) -> np.ndarray:
    center, width = resolve_window(window, array)
    # LINEAR needs width >= 1 (PS3.3 C.11.2.1.2.1); narrower windows of float data use LINEAR_EXACT.
    return window_level(array, (center, width), function="linear" if width >= 1 else "linear_exact")


def _square_pixels(picture: np.ndarray, spacing: Sequence[float], pixel_size: float | None) -> np.ndarray:
    """Resize so that one displayed pixel is ``pixel_size`` mm in both directions."""
    sx, sy = float(spacing[0]), float(spacing[1])
    if pixel_size is None:
        pixel_size = min(sx, sy)
    elif not (isinstance(pixel_size, int | float) and pixel_size > 0):
        raise ValueError(f"pixel_size must be > 0 mm, got {pixel_size!r}")
    height, width = picture.shape[:2]
    # The image spans width * sx by height * sy mm (pixel edges to edges).
    new_w = max(1, round(width * sx / pixel_size))
    new_h = max(1, round(height * sy / pixel_size))
    if (new_w, new_h) == (width, height):
        return picture
    from PIL import Image

    return np.asarray(Image.fromarray(picture).resize((new_w, new_h), Image.Resampling.BILINEAR))


def _font():
    from PIL import ImageFont

    font = ImageFont.load_default()
    box = font.getbbox("Ag")
    return font, int(box[3] - box[1]) + 8


def _draw_titles(grid, titles, font, columns, cell_h, cell_w, gap):
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(grid)
    draw = ImageDraw.Draw(canvas)
    for number, title in enumerate(titles):
        top = gap + (number // columns) * (cell_h + gap)
        left = gap + (number % columns) * (cell_w + gap)
        draw.text((left + 2, top + 2), str(title), fill=(255, 255, 255), font=font)
    return np.asarray(canvas)
