"""Window/level: presets, the DICOM LINEAR function, auto windows and the --window parser."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from workbench.volume.window import CT_PRESETS, auto_window, parse_window, resolve_window, window_level


@pytest.mark.parametrize("name", sorted(CT_PRESETS))
def test_presets_map_center_to_mid_grey_and_the_edges_to_black_and_white(name):
    center, width = CT_PRESETS[name]
    low, mid, high, below, above = window_level(
        np.array([center - width / 2, center, center + width / 2, center - width, center + width]), name)
    assert (low, high, below, above) == (0, 255, 0, 255)
    # The LINEAR function puts c at 127.5 + 127.5 / (w - 1): mid grey, a little above for narrow windows.
    assert mid == round(127.5 + 127.5 / (width - 1))
    assert abs(int(mid) - 128) <= 3


def test_preset_values_are_the_published_ones():
    # Radiopaedia "Windowing (CT)": W/L pairs.
    assert CT_PRESETS["brain"] == (40, 80)
    assert CT_PRESETS["lung"] == (-600, 1500)
    assert CT_PRESETS["mediastinum"] == (50, 350)
    assert CT_PRESETS["bone"] == (400, 1800)
    assert CT_PRESETS["liver"] == (30, 150)
    required = {"brain", "subdural", "stroke", "lung", "mediastinum", "abdomen", "liver", "bone"}
    assert set(CT_PRESETS) >= required


def test_linear_function_follows_ps3_3_c_11_2_1_2_1():
    # c = 40, w = 80: 0 at x <= c - 0.5 - (w - 1) / 2 = 0, 255 above c - 0.5 + (w - 1) / 2 = 79.
    x = np.array([-1000, 0.0, 0.01, 20.0, 59.5, 79.0, 79.01, 3000], dtype=np.float64)
    expected = [np.clip(((v - 39.5) / 79 + 0.5) * 255, 0, 255) for v in x]
    got = window_level(x, (40, 80))
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, np.rint(expected).astype(np.uint8))
    assert got[4] == 192  # ((59.5 - 39.5) / 79 + 0.5) * 255 = 192.06


def test_window_level_is_monotonic_and_keeps_the_shape_of_an_int16_image():
    values = np.arange(-1024, 3072, dtype=np.int16).reshape(64, 64)
    image = sitk.GetImageFromArray(values)
    out = window_level(image, "abdomen")
    assert out.shape == (64, 64) and out.dtype == np.uint8
    assert np.all(np.diff(out.reshape(-1).astype(int)) >= 0)


def test_width_one_is_a_threshold_and_narrower_needs_linear_exact():
    np.testing.assert_array_equal(window_level(np.array([9.4, 9.6]), (10, 1)), [0, 255])
    with pytest.raises(ValueError, match="0.5"):
        window_level(np.array([1.0]), (0.0, 0.5))
    exact = window_level(np.array([-0.25, 0.0, 0.25]), (0.0, 0.5), function="linear_exact")
    np.testing.assert_array_equal(exact, [0, 128, 255])


@pytest.mark.parametrize("window, message", [
    ("lungs", "'lungs'"),
    ((40, 0), r"\(40, 0\)"),
    ((40, -5), r"\(40, -5\)"),
    ((40,), r"\(40,\)"),
    ("40,400", "'40,400'"),
])
def test_bad_windows_name_the_offending_value(window, message):
    with pytest.raises(ValueError, match=message):
        window_level(np.zeros(3), window)


def test_unknown_function():
    with pytest.raises(ValueError, match="'sigmoid'"):
        window_level(np.zeros(3), (0, 10), function="sigmoid")


def test_auto_window_ignores_the_background():
    rng = np.random.default_rng(3)
    tissue = rng.uniform(100, 500, size=30_000)
    values = np.concatenate([np.zeros(70_000), tissue]).astype(np.float32)
    center, width = auto_window(values)
    low, high = np.percentile(tissue, [1, 99])
    assert center == pytest.approx((low + high) / 2, rel=1e-3)
    assert width == pytest.approx(high - low, rel=1e-3)
    # Not ignoring the zeros drags the lower end to 0.
    center_all, width_all = auto_window(values, ignore=None)
    assert center_all - width_all / 2 == 0.0
    # An explicit padding value, and a SimpleITK image.
    values = np.concatenate([np.full(999, -2000), np.arange(-100, 101)]).astype(np.int16)
    padded = sitk.GetImageFromArray(values.reshape(30, 40))
    c, w = auto_window(padded, (0, 100), ignore=-2000)
    assert (c, w) == (0.0, 200.0)


def test_auto_window_of_constant_or_huge_data():
    assert auto_window(np.full(100, 7, dtype=np.int16)) == (7.0, 1.0)
    big = np.arange(3_000_000, dtype=np.float32)
    center, width = auto_window(big, (0, 100), ignore=None)
    assert center == pytest.approx(1_500_000, rel=1e-3) and width == pytest.approx(3_000_000, rel=1e-3)
    with pytest.raises(ValueError, match=r"\(50, 10\)"):
        auto_window(big, (50, 10))
    with pytest.raises(ValueError, match="'median'"):
        auto_window(big, ignore="median")
    assert resolve_window("auto", big[:10]) == auto_window(big[:10])


@pytest.mark.parametrize("text, expected", [
    ("lung", "lung"),
    (" Brain ", "brain"),
    ("auto", "auto"),
    ("40,400", (40.0, 400.0)),
    ("-600, 1500", (-600.0, 1500.0)),
    ("0.5,0.25", (0.5, 0.25)),
])
def test_parse_window(text, expected):
    assert parse_window(text) == expected


@pytest.mark.parametrize("text", ["lungs", "40", "40,0", "40,-1", "1,2,3", "a,b", "", "nan,10"])
def test_parse_window_rejects_with_the_text(text):
    with pytest.raises(ValueError, match=repr(text).replace("(", r"\(")):
        parse_window(text)
