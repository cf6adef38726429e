"""SSDE from the images (workbench.dose.ssde): AAPM Report 220 Dw, AAPM Report 204 factors.

Reference values:
- Water-equivalent diameter: a water cylinder of diameter D has Dw = D; a uniform cylinder of
  CT number h has Dw = D * sqrt(1 + h / 1000) (AAPM Report 220, 2014, eqs. 3 and 4).
- Conversion factors: AAPM Report 204 (2011) Table 1D (32 cm PMMA phantom) and Table 2D (16 cm
  PMMA phantom), two decimals, as transcribed in the public repository ckswilliams/medphunc
  (medphunc/misc/ssde.csv); every transcribed row equals the report's exponential fit rounded to
  two decimals.
- The sample CT: data/make_sample.py's body phantom without its table is the ground truth.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from workbench.dose.ssde import (
    SsdeResult,
    conversion_factor,
    effective_diameter,
    localizer_effective_diameter,
    localizer_width,
    series_ssde,
    ssde,
    water_equivalent_diameter,
    water_equivalent_diameters,
)

PIXEL = 0.7  # mm
SIZE = 512


def phantom_slice(
    diameter_mm: float,
    hu: float = 0.0,
    *,
    table_gap_mm: float | None = None,
    table_hu: float = 300.0,
    table_mm: float = 10.0,
    lungs_wall_mm: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """A cylinder in air on a 512 x 512 grid of 0.7 mm pixels, optionally on a dense table slab
    (full image width, ``table_gap_mm`` below the cylinder; 0 = touching) and with two lungs of
    radius 50 mm whose outer wall is ``lungs_wall_mm`` thick. 2 x 2 sub-pixel sampling for partial
    volume at the edges, Gaussian noise of 10 HU, int16 HU."""
    c = (np.arange(SIZE) - (SIZE - 1) / 2) * PIXEL
    total = np.zeros((SIZE, SIZE))
    for oy in (-0.25, 0.25):
        for ox in (-0.25, 0.25):
            y = c[:, None] + oy * PIXEL  # rows: posterior (the table side) is down
            x = c[None, :] + ox * PIXEL
            v = np.full((SIZE, SIZE), -1000.0)
            v[x**2 + y**2 <= (diameter_mm / 2) ** 2] = hu
            if lungs_wall_mm is not None:
                cx = diameter_mm / 2 - lungs_wall_mm - 50.0
                for sign in (-1, 1):
                    v[(x - sign * cx) ** 2 + y**2 <= 50.0**2] = -850.0
            if table_gap_mm is not None:
                top = diameter_mm / 2 + table_gap_mm
                v[np.broadcast_to((y >= top) & (y < top + table_mm), v.shape)] = table_hu
            total += v
    noisy = total / 4 + np.random.default_rng(seed).normal(0.0, 10.0, (SIZE, SIZE))
    return np.round(noisy).astype(np.int16)


def naive_dw(slice_hu: np.ndarray, pixel_mm: float, threshold: float = -260.0) -> float:
    """Dw without table removal: everything above the threshold, holes filled."""
    mask = ndimage.binary_fill_holes(slice_hu > threshold)
    aw = np.maximum(slice_hu[mask] / 1000.0 + 1.0, 0.0).sum() * pixel_mm**2
    return 2.0 * math.sqrt(aw / math.pi)


def volume_of(slices: np.ndarray, spacing=(PIXEL, PIXEL, 5.0), direction=None) -> sitk.Image:
    image = sitk.GetImageFromArray(slices)
    image.SetSpacing(spacing)
    if direction is not None:
        image.SetDirection(direction)
    return image


# --------------------------------------------------------------------------------------
# Water-equivalent diameter on synthetic phantoms
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("diameter", [200.0, 320.0])
@pytest.mark.parametrize("gap", [0.0, 2.0, 5.0])
def test_water_cylinder_on_a_table_gives_its_diameter(diameter: float, gap: float) -> None:
    image = phantom_slice(diameter, table_gap_mm=gap)
    dw = water_equivalent_diameter(image, (PIXEL, PIXEL))
    assert dw == pytest.approx(diameter, rel=0.01)
    # The table matters: without removing it, Dw is 3 % (320 mm) to 7 % (200 mm) too large.
    assert naive_dw(image, PIXEL) > 1.025 * diameter


@pytest.mark.parametrize("diameter", [200.0, 320.0])
def test_water_cylinder_without_table(diameter: float) -> None:
    dw = water_equivalent_diameter(phantom_slice(diameter), (PIXEL, PIXEL))
    assert dw == pytest.approx(diameter, rel=0.005)


def test_fat_cylinder_is_weighted_by_its_attenuation() -> None:
    image = phantom_slice(200.0, hu=-100.0, table_gap_mm=2.0)
    dw = water_equivalent_diameter(image, (PIXEL, PIXEL))
    assert dw == pytest.approx(200.0 * math.sqrt(0.9), rel=0.01)


def test_lungs_behind_a_thin_chest_wall_count_with_their_weight() -> None:
    # A 6 mm wall is thinner than the 12 mm opening; the lungs must still be inside the body.
    image = phantom_slice(300.0, hu=40.0, table_gap_mm=2.0, lungs_wall_mm=6.0)
    aw = math.pi * 150.0**2 * 1.04 - 2 * math.pi * 50.0**2 * (1.04 - 0.15)
    dw = water_equivalent_diameter(image, (PIXEL, PIXEL))
    assert dw == pytest.approx(2.0 * math.sqrt(aw / math.pi), rel=0.01)


def test_volume_gives_one_dw_per_slice_and_nan_where_no_patient() -> None:
    body = phantom_slice(250.0, table_gap_mm=2.0)
    air = np.full_like(body, -1000)
    dw = water_equivalent_diameters(volume_of(np.stack([body, air, body])))
    assert dw.shape == (3,)
    assert dw[0] == pytest.approx(250.0, rel=0.01) and dw[2] == pytest.approx(dw[0], rel=1e-9)
    assert np.isnan(dw[1])


def test_small_gantry_tilt_is_corrected_and_a_large_one_refused() -> None:
    body = phantom_slice(250.0)
    t = math.radians(5.0)
    tilted = (1.0, 0.0, 0.0, 0.0, math.cos(t), math.sin(t), 0.0, -math.sin(t), math.cos(t))
    dw = water_equivalent_diameters(volume_of(body[None], direction=tilted))
    # An oblique cut through a cylinder along z is 1/cos(t) larger; the axial Dw is restored.
    assert dw[0] == pytest.approx(water_equivalent_diameter(body, (PIXEL, PIXEL)) * math.sqrt(math.cos(t)))
    t = math.radians(20.0)
    tilted = (1.0, 0.0, 0.0, 0.0, math.cos(t), math.sin(t), 0.0, -math.sin(t), math.cos(t))
    with pytest.raises(ValueError, match=r"not axial.*20\.0 degrees"):
        water_equivalent_diameters(volume_of(body[None], direction=tilted))


# --------------------------------------------------------------------------------------
# Conversion factors and SSDE (AAPM Report 204)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("diameter_cm", "published"),
    # AAPM Report 204 (2011), Table 1D: 32 cm PMMA phantom, effective diameter -> factor.
    [(8, 2.76), (20, 1.78), (30, 1.23), (32, 1.14), (40, 0.85), (45, 0.71)],
)
def test_conversion_factor_32cm_matches_table_1d(diameter_cm: float, published: float) -> None:
    assert conversion_factor(diameter_cm * 10.0, "32") == pytest.approx(published, abs=0.006)


@pytest.mark.parametrize(
    ("diameter_cm", "published"),
    # AAPM Report 204 (2011), Table 2D: 16 cm PMMA phantom.
    [(6, 1.49), (10, 1.27), (16, 1.01), (30, 0.59), (55, 0.22)],
)
def test_conversion_factor_16cm_matches_table_2d(diameter_cm: float, published: float) -> None:
    assert conversion_factor(diameter_cm * 10.0, "16") == pytest.approx(published, abs=0.006)


def test_conversion_factor_is_about_one_at_the_phantom_size_only_for_the_16cm_phantom() -> None:
    # The phantoms are PMMA, not water: at D = 16 cm the 16 cm factor is 1.01 (Table 2D), while
    # at D = 32 cm the 32 cm factor is 1.14 (Table 1D), not 1.
    assert conversion_factor(160.0, "16") == pytest.approx(1.0, abs=0.02)
    assert conversion_factor(320.0, "32") == pytest.approx(1.14, abs=0.006)


def test_conversion_factor_accepts_arrays_and_phantom_names() -> None:
    f = conversion_factor(np.array([200.0, 300.0]), "32")
    assert isinstance(f, np.ndarray) and f == pytest.approx([1.78, 1.23], abs=0.006)
    for name in ("32", 32, "body", "IEC Body Dosimetry Phantom", "113691", "32 cm"):
        assert conversion_factor(250.0, name) == conversion_factor(250.0, "32")
    for name in ("16", 16, "head", "IEC Head Dosimetry Phantom", "113690"):
        assert conversion_factor(250.0, name) == conversion_factor(250.0, "16")
    with pytest.raises(ValueError, match="'20'"):
        conversion_factor(250.0, "20")


def test_outside_the_tables_raise_by_default_or_as_asked() -> None:
    with pytest.raises(ValueError, match=r"70 mm.*8-45 cm"):
        conversion_factor(70.0, "32")
    with pytest.raises(ValueError, match=r"460 mm"):
        conversion_factor(460.0, "32")
    assert math.isnan(conversion_factor(70.0, "32", out_of_range="nan"))
    assert conversion_factor(70.0, "32", out_of_range="extrapolate") == pytest.approx(
        3.704369 * math.exp(-0.03671937 * 7.0))
    assert conversion_factor(70.0, "16") == pytest.approx(1.43, abs=0.006)  # inside Table 2D
    with pytest.raises(ValueError, match="out_of_range"):
        conversion_factor(200.0, out_of_range="clip")  # type: ignore[arg-type]


def test_ssde_is_factor_times_ctdivol() -> None:
    assert ssde(10.0, 200.0) == pytest.approx(17.8, abs=0.06)  # Table 1D: 20 cm -> 1.78
    assert ssde(10.0, 160.0, "16") == pytest.approx(10.1, abs=0.06)  # Table 2D: 16 cm -> 1.01
    with pytest.raises(ValueError, match="-1"):
        ssde(-1.0, 200.0)


@pytest.mark.parametrize("bad", [-5.0, 0.0, float("nan")])
def test_bad_diameter_is_refused_naming_it(bad: float) -> None:
    with pytest.raises(ValueError, match=f"got {bad!r}"):
        conversion_factor(bad)
    with pytest.raises(ValueError, match=f"got {bad!r}"):
        ssde(10.0, bad)


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


def test_empty_slice_is_refused() -> None:
    with pytest.raises(ValueError, match=r"no patient above -260 HU.*-1000 to -1000 HU"):
        water_equivalent_diameter(np.full((64, 64), -1000, np.int16), (PIXEL, PIXEL))
    with pytest.raises(ValueError, match=r"\(0, 0\)"):
        water_equivalent_diameter(np.zeros((0, 0)), (PIXEL, PIXEL))
    with pytest.raises(ValueError, match=r"\(4, 4, 4\)"):
        water_equivalent_diameter(np.zeros((4, 4, 4)), (PIXEL, PIXEL))


def test_bad_spacing_and_threshold_are_refused() -> None:
    image = phantom_slice(200.0)
    with pytest.raises(ValueError, match=r"\(0\.0, 0\.7\)"):
        water_equivalent_diameter(image, (0.0, 0.7))
    with pytest.raises(ValueError, match="'0.7'"):
        water_equivalent_diameter(image, "0.7")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="-1000.0"):
        water_equivalent_diameter(image, (PIXEL, PIXEL), threshold_hu=-1000.0)


def test_non_axial_volume_is_refused() -> None:
    coronal = (1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0)
    volume = volume_of(np.full((2, 8, 8), -1000, np.int16), direction=coronal)
    with pytest.raises(ValueError, match=r"not axial: its slice normal \(0, 1, 0\)"):
        water_equivalent_diameters(volume)
    with pytest.raises(ValueError, match="not axial"):
        series_ssde(volume, 10.0)
    with pytest.raises(ValueError, match="3-D scalar"):
        water_equivalent_diameters(sitk.Image(8, 8, sitk.sitkInt16))


# --------------------------------------------------------------------------------------
# The sample CT (data/sample, WB-0001): body phantom on a curved table, coronal topogram
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_ct(sample_index) -> sitk.Image:
    from workbench.volume import load_series

    series = sample_index.series
    uid = series[(series.Modality == "CT") & (series.plane == "AXIAL")].SeriesInstanceUID.iloc[0]
    return load_series(sample_index, uid)


@pytest.fixture(scope="module")
def sample_topogram(sample_index) -> sitk.Image:
    from workbench.volume import load_series

    series = sample_index.series
    uid = series[series.SeriesDescription.str.startswith("Topogram")].SeriesInstanceUID.iloc[0]
    return load_series(sample_index, uid)


@pytest.fixture(scope="module")
def generator(sample_dir):
    spec = importlib.util.spec_from_file_location("make_sample", sample_dir.parent / "make_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sample_ct_dw_per_slice_excludes_the_table(sample_ct: sitk.Image) -> None:
    dw = water_equivalent_diameters(sample_ct)
    assert dw.shape == (sample_ct.GetSize()[2],)
    assert np.all((dw > 200.0) & (dw < 400.0))

    # One slice by hand: threshold, fill, and the table pixels masked from its known geometry
    # (data/make_sample.py: a cradle whose top is y = 112 - 0.00035 x^2 mm, |x| <= 180 mm).
    k = 10
    hu = sitk.GetArrayFromImage(sample_ct)[k].astype(float)
    origin, spacing = sample_ct.GetOrigin(), sample_ct.GetSpacing()
    x = origin[0] + spacing[0] * np.arange(hu.shape[1])
    y = origin[1] + spacing[1] * np.arange(hu.shape[0])
    xx, yy = np.meshgrid(x, y)
    table = (yy >= 112.0 - 0.00035 * xx**2 - 1.0) & (np.abs(xx) <= 181.5)
    body = ndimage.binary_fill_holes(hu > -260.0) & ~table
    aw = np.maximum(hu[body] / 1000.0 + 1.0, 0.0).sum() * spacing[0] * spacing[1]
    by_hand = 2.0 * math.sqrt(aw / math.pi)
    assert dw[k] == pytest.approx(by_hand, rel=0.01)
    assert naive_dw(hu, spacing[0]) > 1.01 * dw[k]  # the table would add about 2 %


def test_sample_ct_dw_matches_the_generators_phantom(sample_ct: sitk.Image, generator) -> None:
    dw = water_equivalent_diameters(sample_ct)
    z = sample_ct.GetOrigin()[2] + sample_ct.GetSpacing()[2] * np.arange(sample_ct.GetSize()[2])
    step = 0.375  # mm: the phantom sampled 4x finer than the images
    grid = (np.arange(1024) - 511.5) * step
    xx, yy = np.meshgrid(grid, grid)
    for k in (0, 19, 27):  # abdomen, lung bases, lungs close to the wall
        hu = generator.body_hu(xx, yy, z[k], table=False)
        truth = 2.0 * math.sqrt(np.maximum(hu / 1000.0 + 1.0, 0.0).sum() * step**2 / math.pi)
        assert dw[k] == pytest.approx(truth, rel=0.005), f"slice {k} at z = {z[k]} mm"


def test_sample_series_ssde(sample_ct: sitk.Image) -> None:
    result = series_ssde(sample_ct, 9.81, "IEC Body Dosimetry Phantom")
    assert isinstance(result, SsdeResult)
    assert result.n_slices == sample_ct.GetSize()[2] and not result.truncated.any()
    assert result.dw_mean_mm == pytest.approx(np.mean(result.dw_mm))
    assert result.conversion_factor == pytest.approx(conversion_factor(result.dw_mean_mm))
    assert result.ssde_mgy == pytest.approx(9.81 * result.conversion_factor)
    assert result.method == "Estimated from Water Equivalent Diameter"
    assert 200.0 < result.dw_mean_mm < 400.0

    part = series_ssde(sample_ct, 9.81, z_range=(0.0, -40.0))  # either order
    assert part.n_slices == 9
    assert np.array_equal(part.used, (result.z_mm >= -40.0) & (result.z_mm <= 0.0))
    assert part.dw_mean_mm == pytest.approx(result.dw_mm[part.used].mean())

    per_slice = np.linspace(8.0, 12.0, sample_ct.GetSize()[2])
    modulated = series_ssde(sample_ct, per_slice)
    assert modulated.method == "Arithmetic Average of SSDE(z)"
    assert modulated.ctdivol_mgy == pytest.approx(per_slice.mean())
    assert modulated.ssde_mgy == pytest.approx(np.mean(conversion_factor(result.dw_mm) * per_slice))


def test_sample_series_ssde_bad_input(sample_ct: sitk.Image) -> None:
    with pytest.raises(ValueError, match=r"z_range \(300\.0, 400\.0\).*-95 to 50 mm"):
        series_ssde(sample_ct, 9.81, z_range=(300.0, 400.0))
    with pytest.raises(ValueError, match=r"one per slice \(30\), got shape \(2,\)"):
        series_ssde(sample_ct, [9.81, 9.81])
    with pytest.raises(ValueError, match="-9.81"):
        series_ssde(sample_ct, -9.81)


def test_sample_topogram_width(sample_topogram: sitk.Image) -> None:
    width = localizer_width(sample_topogram)
    assert width.dimension == "LAT"  # a frontal (coronal) localizer shows the lateral width
    # The phantom's lateral width is 2 * (160 - 0.08 z) mm; the table under it is 360 mm wide.
    assert width.width_mm == pytest.approx(2.0 * (160.0 - 0.08 * width.z_mm), rel=0.01)
    assert not width.truncated.any()
    lat = localizer_effective_diameter(sample_topogram, z_range=(-95.0, 50.0))
    assert lat == pytest.approx(2.0 * (160.0 - 0.08 * -22.5), rel=0.01)
    with pytest.raises(ValueError, match="both localizers measure the LAT"):
        localizer_effective_diameter(sample_topogram, other=sample_topogram)


def test_sample_localizer_refusals(sample_ct: sitk.Image) -> None:
    with pytest.raises(ValueError, match="one frame, got 30 slices"):
        localizer_width(sample_ct)
    with pytest.raises(ValueError, match="level_fraction"):
        localizer_width(sample_ct, level_fraction=1.5)


def test_effective_diameter() -> None:
    assert effective_diameter(ap_mm=200.0, lateral_mm=320.0) == pytest.approx(math.sqrt(200.0 * 320.0))
    assert effective_diameter(lateral_mm=320.0) == 320.0  # from the width only
    with pytest.raises(ValueError, match="neither"):
        effective_diameter()
    with pytest.raises(ValueError, match=r"lateral_mm.*-3\.0"):
        effective_diameter(ap_mm=200.0, lateral_mm=-3.0)
