"""Display pictures: square display pixels, atomic PNG files, montages."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from workbench.volume.reformat import reformat
from workbench.volume.render import montage, render_montage, render_png, to_display, write_png


def image2d(values: np.ndarray, spacing=(1.0, 1.0), vector=False) -> sitk.Image:
    image = sitk.GetImageFromArray(values, isVector=vector)
    image.SetSpacing(spacing)
    return image


def test_square_display_pixels_for_an_anisotropic_image():
    # 20 columns of 1 mm by 10 rows of 2 mm: 20 x 20 mm, so 20 x 20 display pixels of 1 mm.
    values = np.zeros((10, 20), dtype=np.int16)
    values[:5] = 100  # the top 10 mm
    picture = to_display(image2d(values, (1.0, 2.0)), (50, 100))
    assert picture.shape == (20, 20) and picture.dtype == np.uint8
    assert np.all(picture[:9] == 255) and np.all(picture[11:] == 0)  # the edge stays at 10 mm
    assert to_display(image2d(values, (1.0, 2.0)), (50, 100), pixel_size=2.0).shape == (10, 10)
    assert to_display(image2d(values, (1.0, 1.0)), (50, 100)).shape == (10, 20)
    assert to_display(image2d(values.T.copy(), (3.0, 1.0)), (50, 100)).shape == (20, 30)


def test_coronal_reformat_of_thick_slices_is_not_squashed():
    volume = sitk.Image(64, 64, 30, sitk.sitkInt16)
    volume.SetSpacing((0.7, 0.7, 5.0))
    coronal = reformat(volume, "coronal")
    assert coronal.GetSize() == (64, 30)
    picture = to_display(coronal, "brain")
    height_mm, width_mm = 30 * 5.0, 64 * 0.7
    assert picture.shape[1] == 64
    assert picture.shape[0] == round(height_mm / 0.7)
    assert picture.shape[0] / picture.shape[1] == pytest.approx(height_mm / width_mm, rel=0.02)


def test_colour_images_are_shown_as_stored():
    rgb = np.random.default_rng(0).integers(0, 256, size=(8, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_display(image2d(rgb, vector=True)), rgb)
    np.testing.assert_array_equal(to_display(rgb), rgb)
    assert to_display(image2d(rgb, (1.0, 2.0), vector=True)).shape == (16, 6, 3)


def test_auto_window_and_errors():
    values = np.linspace(0, 1000, 400, dtype=np.float32).reshape(20, 20)
    picture = to_display(image2d(values))
    assert picture.min() == 0 and picture.max() == 255
    with pytest.raises(ValueError, match="3D"):
        to_display(sitk.Image(4, 4, 4, sitk.sitkInt16))
    with pytest.raises(ValueError, match="-1"):
        to_display(image2d(values), pixel_size=-1)
    with pytest.raises(TypeError, match="list"):
        to_display([[1, 2], [3, 4]])


def test_render_png_writes_a_readable_png_and_no_temporary_file(tmp_path):
    values = np.arange(512 * 512, dtype=np.float32).reshape(512, 512) % 3000 - 1000
    image = image2d(values, (0.7, 0.7))
    target = tmp_path / "slice.png"
    assert render_png(image, target, "lung") == target
    with Image.open(target) as png:
        assert png.format == "PNG" and png.size == (512, 512) and png.mode == "L"
        np.testing.assert_array_equal(np.asarray(png), to_display(image, "lung"))
    assert [p.name for p in tmp_path.iterdir()] == ["slice.png"]
    # Overwriting replaces the file whole.
    render_png(image2d(values[:100, :50]), target, "bone")
    with Image.open(target) as png:
        assert png.size == (50, 100)
    assert [p.name for p in tmp_path.iterdir()] == ["slice.png"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = write_png(np.zeros((4, 4), dtype=np.uint8), tmp_path / "out.png")
    before = target.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        write_png(np.full((4, 4), 255, dtype=np.uint8), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    with pytest.raises(ValueError, match="float64"):
        write_png(np.zeros((4, 4)), target)


def test_montage_places_each_picture_in_its_cell():
    a = np.full((10, 20), 50, dtype=np.uint8)
    b = np.full((6, 4), 100, dtype=np.uint8)
    c = np.full((10, 20), 150, dtype=np.uint8)
    grid = montage([a, b, c], columns=2, gap=2)
    # 2 rows x 2 columns of 10 x 20 cells, 2-pixel gaps around and between.
    assert grid.shape == (2 * 10 + 3 * 2, 2 * 20 + 3 * 2) and grid.dtype == np.uint8
    np.testing.assert_array_equal(grid[2:12, 2:22], a)
    np.testing.assert_array_equal(grid[2 + 2:2 + 8, 24 + 8:24 + 12], b)  # centred in its cell
    np.testing.assert_array_equal(grid[14:24, 2:22], c)
    assert np.all(grid[14:24, 24:44] == 0)  # the empty fourth cell
    assert montage([a, b, c], gap=2).shape == grid.shape  # ceil(sqrt(3)) = 2 columns by default


def test_montage_with_titles_and_colour(tmp_path):
    grey = np.full((40, 60), 80, dtype=np.uint8)
    rgb = np.zeros((40, 60, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    grid = montage([grey, rgb], titles=["axial MPR", "MIP 20 mm"], columns=2, gap=0)
    assert grid.ndim == 3 and grid.shape[1] == 120 and grid.shape[0] > 40
    title_band = grid[: grid.shape[0] - 40]
    assert title_band[:, :60].max() > 0 and title_band[:, 60:].max() > 0  # text in both title bands
    np.testing.assert_array_equal(grid[-40:, 60:], rgb)
    with pytest.raises(ValueError, match="2 titles for 1"):
        montage([grey], titles=["a", "b"])
    with pytest.raises(ValueError, match="image 1"):
        montage([grey, grey.astype(np.float32)])
    with pytest.raises(ValueError, match="0"):
        montage([grey], columns=0)

    volume = sitk.Image(32, 32, 16, sitk.sitkInt16)
    volume.SetSpacing((1.0, 1.0, 2.0))
    images = [reformat(volume, plane) for plane in ("axial", "coronal", "sagittal")]
    path = render_montage(images + [reformat(volume, "axial", slab=8.0, mode="mip")], tmp_path / "m.png",
                          titles=["axial", "coronal", "sagittal", "MIP"], window="brain")
    with Image.open(path) as png:
        assert png.mode == "RGB" and png.size[0] > 64
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]
