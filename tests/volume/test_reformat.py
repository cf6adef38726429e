"""reformat(): planes, positions, slabs, radiological orientation and geometry, on synthetic volumes.

Every volume is built from a function of the LPS point of each voxel, so the expected
output is computed independently of the code under test: f(x, y, z) = x + 2y + 3z is
reproduced exactly by linear interpolation, and balls or single voxels mark known points.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from workbench.volume.reformat import (
    META_COLUMN,
    META_NORMAL,
    META_ORIGIN,
    META_POSITION,
    META_ROW,
    pixel_to_patient,
    plane_axes,
    reformat,
)


def _rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


# Direction matrices: columns are the directions of the index axes in LPS.
IDENTITY = np.eye(3)
SAGITTAL_ACQUISITION = np.column_stack([(0, 1, 0), (0, 0, -1), (-1, 0, 0)]).astype(float)
CORONAL_ACQUISITION = np.column_stack([(1, 0, 0), (0, 0, -1), (0, 1, 0)]).astype(float)
FEET_FIRST = np.diag([-1.0, 1.0, -1.0])
OBLIQUE = _rotation(2, 10) @ _rotation(0, 20)
DIRECTIONS = {
    "identity": IDENTITY,
    "sagittal_acquisition": SAGITTAL_ACQUISITION,
    "coronal_acquisition": CORONAL_ACQUISITION,
    "feet_first": FEET_FIRST,
    "oblique": OBLIQUE,
    "tilted_0.2_degrees": _rotation(0, 0.2),  # too tilted to be treated as axis-aligned
}


def _geometry(size, spacing, direction, centre=(0.0, 0.0, 0.0)):
    size, spacing, direction = np.array(size), np.array(spacing, float), np.asarray(direction, float)
    origin = np.asarray(centre, float) - direction @ (spacing * (size - 1) / 2)
    return size, spacing, direction, origin


def volume(function, size=(40, 36, 30), spacing=(0.8, 0.9, 2.0), direction=IDENTITY, centre=(0.0, 0.0, 0.0),
           dtype=np.float32, vector=False):
    """A SimpleITK volume whose voxel at LPS point p holds function(p) (arrays of shape (..., 3))."""
    size, spacing, direction, origin = _geometry(size, spacing, direction, centre)
    k, j, i = np.meshgrid(*(np.arange(n) for n in size[::-1]), indexing="ij")
    index = np.stack([i, j, k], axis=-1).astype(float)
    points = origin + (index * spacing) @ direction.T
    image = sitk.GetImageFromArray(np.asarray(function(points)).astype(dtype), isVector=vector)
    image.SetOrigin(tuple(origin))
    image.SetSpacing(tuple(spacing))
    image.SetDirection(tuple(direction.ravel()))
    return image


def linear(points):
    return points[..., 0] + 2 * points[..., 1] + 3 * points[..., 2]


def ball(centre, radius=4.0, value=1000.0):
    return lambda points: np.where(np.linalg.norm(points - np.asarray(centre), axis=-1) <= radius, value, 0.0)


def inside(image: sitk.Image, points: np.ndarray) -> np.ndarray:
    """Points whose continuous index is within the voxel-centre box (where interpolation is exact)."""
    origin = np.array(image.GetOrigin())
    direction = np.array(image.GetDirection()).reshape(3, 3)
    index = ((points - origin) @ direction) / np.array(image.GetSpacing())
    return np.all((index >= -1e-6) & (index <= np.array(image.GetSize()) - 1 + 1e-6), axis=-1)


def patient_points(image2d: sitk.Image) -> np.ndarray:
    """LPS point of every pixel, shape (rows, columns, 3)."""
    width, height = image2d.GetSize()
    j, i = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return pixel_to_patient(image2d, np.stack([i, j], axis=-1))


def array(image2d: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image2d)


def bright_centroid(image2d: sitk.Image) -> tuple[float, float]:
    """(row, column) of the centre of the pixels above half the maximum."""
    values = array(image2d)
    rows, columns = np.nonzero(values > values.max() / 2)
    assert rows.size, "the marker is not in the image"
    return float(rows.mean()), float(columns.mean())


def vector(image2d: sitk.Image, key: str) -> np.ndarray:
    return np.array([float(x) for x in image2d.GetMetaData(key).split()])


# --- position ----------------------------------------------------------------------------------------------


def test_axial_plane_passes_through_the_requested_position():
    size, spacing, direction, origin = _geometry((40, 36, 30), (0.8, 0.9, 2.0), IDENTITY)
    marker = origin + np.array([10, 20, 16]) * spacing  # a single voxel, at z = origin_z + 32
    image = volume(ball(marker, radius=0.1, value=500.0))
    z = float(marker[2])

    at = reformat(image, "axial", position=z)
    assert array(at).max() == 500.0
    row, column = np.unravel_index(np.argmax(array(at)), array(at).shape)
    np.testing.assert_allclose(pixel_to_patient(at, (column, row)), marker, atol=1e-9)
    assert float(at.GetMetaData(META_POSITION)) == pytest.approx(z)

    for off_by in (spacing[2], -spacing[2]):  # the neighbouring slices do not show it
        assert array(reformat(image, "axial", position=z + off_by)).max() == 0.0
    # Between two slices, linear interpolation weighs the two neighbours (0.6 from 0.8 mm away).
    between = reformat(image, "axial", position=z + 0.8)
    assert array(between).max() == pytest.approx(500.0 * 0.6)
    assert pixel_to_patient(between, (3, 4))[2] == pytest.approx(z + 0.8)
    assert array(reformat(image, "axial", position=z + 0.8, interpolator="nearest")).max() == 500.0
    assert array(reformat(image, "axial", position=z + 1.2, interpolator="nearest")).max() == 0.0


@pytest.mark.parametrize("plane, axis", [("axial", 2), ("coronal", 1), ("sagittal", 0)])
@pytest.mark.parametrize("name", DIRECTIONS)
def test_every_pixel_is_where_the_metadata_says(name, plane, axis):
    """f = x + 2y + 3z sampled on the plane equals f at pixel_to_patient of every pixel."""
    image = volume(linear, direction=DIRECTIONS[name])
    tilted = name in ("oblique", "tilted_0.2_degrees")
    position = 3.7 if tilted else float(image.GetOrigin()[axis])  # a slice of the aligned volumes
    out = reformat(image, plane, position=position)
    points = patient_points(out)
    np.testing.assert_allclose(points @ vector(out, META_NORMAL), position, atol=1e-6)
    keep = inside(image, points)
    assert keep.mean() > 0.3
    np.testing.assert_allclose(array(out)[keep], linear(points)[keep], atol=2e-3)


def test_index_counts_slices_from_the_lowest_position_also_for_a_flipped_volume():
    image = volume(linear, size=(8, 8, 10), spacing=(1.0, 1.0, 2.5), direction=FEET_FIRST, centre=(0, 0, 5))
    z = [float(reformat(image, "axial", index=i).GetMetaData(META_POSITION)) for i in range(10)]
    np.testing.assert_allclose(z, np.arange(10) * 2.5 + 5 - 11.25)
    default = reformat(image, "axial")  # the middle slice
    assert float(default.GetMetaData(META_POSITION)) == pytest.approx(z[4])


# --- slabs -------------------------------------------------------------------------------------------------


def _marked_slab_volume(background: float, values: dict[int, float]):
    """A volume with one voxel per z offset (in slices of 2 mm from z = 0) at its own (x, y)."""
    spacing = (1.0, 1.0, 2.0)
    size, spacing_, direction, origin = _geometry((31, 31, 21), spacing, IDENTITY)  # x, y, z on integers

    def function(points):
        out = np.full(points.shape[:-1], background)
        for offset, value in values.items():
            marker = np.array([-10.0 + offset, 4.0, 2.0 * offset])
            out[np.linalg.norm(points - marker, axis=-1) < 0.1] = value
        return out

    return volume(function, size=size, spacing=spacing, direction=direction), origin


def _value_at(image2d: sitk.Image, point) -> float:
    points = patient_points(image2d)
    distance = np.linalg.norm(points - np.asarray(point, float), axis=-1)
    assert distance.min() < 1e-6
    return float(array(image2d)[np.unravel_index(np.argmin(distance), distance.shape)])


def test_mip_takes_the_maximum_within_half_the_slab_and_nothing_outside():
    # slab 8 mm around z = 0: slices at -4, -2, 0, 2, 4 mm are in (both ends included), +-6 mm out.
    offsets = {-3: 30.0, -2: 40.0, 2: 50.0, 3: 60.0}
    image, _ = _marked_slab_volume(0.0, offsets)
    mip = reformat(image, "axial", position=0.0, slab=8.0, mode="mip")
    for offset, value in offsets.items():
        seen = _value_at(mip, (-10.0 + offset, 4.0, 0.0))
        assert seen == (value if abs(offset) <= 2 else 0.0), offset
    assert array(mip).dtype == np.float32 and mip.GetSize() == (31, 31)


def test_minip_and_mean_over_the_slab():
    offsets = {-3: -30.0, -2: -40.0, 0: -10.0, 2: -50.0, 3: -60.0}
    image, _ = _marked_slab_volume(100.0, offsets)
    minip = reformat(image, "axial", position=0.0, slab=8.0, mode="minip")
    mean = reformat(image, "axial", position=0.0, slab=8.0, mode="mean")
    for offset, value in offsets.items():
        point = (-10.0 + offset, 4.0, 0.0)
        assert _value_at(minip, point) == (value if abs(offset) <= 2 else 100.0)
        # 5 slices in the slab: one holds the marker, four hold the background.
        assert _value_at(mean, point) == pytest.approx((value + 400.0) / 5 if abs(offset) <= 2 else 100.0)


def test_mip_of_a_sagittal_acquisition_in_every_plane_matches_the_identity_volume():
    """The numpy fast path on a permuted volume agrees with the same data stored axis-aligned."""
    rng = np.random.default_rng(1)
    field = rng.normal(size=(33, 34, 35))

    def function(points):  # a random field on a 1 mm LPS grid from -16
        index = np.rint(points + 16).astype(int)
        return field[index[..., 2], index[..., 1], index[..., 0]]

    reference = volume(function, size=(35, 34, 33), spacing=(1, 1, 1), direction=IDENTITY, centre=(1, 0.5, 0))
    # The sagittal acquisition's axes: index (i, j, k) -> LPS (y, -z, -x); sizes permuted to match.
    sagittal = volume(function, size=(34, 33, 35), spacing=(1, 1, 1), direction=SAGITTAL_ACQUISITION,
                      centre=(1, 0.5, 0))
    for plane in ("axial", "coronal", "sagittal"):
        for mode in ("mip", "minip", "mean"):
            a = reformat(reference, plane, position=2.0, slab=7.0, mode=mode)
            b = reformat(sagittal, plane, position=2.0, slab=7.0, mode=mode)
            assert a.GetSize() == b.GetSize()
            np.testing.assert_allclose(array(a), array(b), rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(vector(a, META_ORIGIN), vector(b, META_ORIGIN), atol=1e-9)


def test_oblique_slab_reduces_samples_along_the_normal():
    image = volume(linear, spacing=(1.0, 1.0, 1.0), size=(40, 40, 40), direction=OBLIQUE)
    normal = np.array([0.2, -0.3, 1.0])
    normal = normal / np.linalg.norm(normal)
    gradient = float(normal @ (1, 2, 3))  # f changes by this much per mm along the normal
    centre = reformat(image, normal, position=1.5)
    mip = reformat(image, normal, position=1.5, slab=6.0, mode="mip")
    minip = reformat(image, normal, position=1.5, slab=6.0, mode="minip")
    points = patient_points(centre)
    # Samples every 1 mm (the output spacing) from -3 to +3 mm: the far ones must be inside too.
    keep = inside(image, points + 3 * normal) & inside(image, points - 3 * normal)
    assert keep.mean() > 0.2
    np.testing.assert_allclose(array(mip)[keep], linear(points)[keep] + 3 * abs(gradient), atol=2e-3)
    np.testing.assert_allclose(array(minip)[keep], linear(points)[keep] - 3 * abs(gradient), atol=2e-3)


# --- orientation -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DIRECTIONS)
def test_radiological_orientation(name):
    """Left on the image right (axial, coronal); anterior up (axial) or left (sagittal); superior up."""
    direction = DIRECTIONS[name]
    kwargs = dict(size=(48, 48, 48), spacing=(1.5, 1.5, 1.5), direction=direction)
    left = volume(ball((25.0, 0.0, 0.0)), **kwargs)
    anterior = volume(ball((0.0, -25.0, 0.0)), **kwargs)
    superior = volume(ball((0.0, 0.0, 25.0)), **kwargs)

    def where(image, plane, position):
        out = reformat(image, plane, position=position)
        rows, columns = array(out).shape
        row, column = bright_centroid(out)
        return row / rows, column / columns  # as fractions of the height and width

    assert where(left, "axial", 0.0)[1] > 0.65
    assert where(anterior, "axial", 0.0)[0] < 0.35
    assert where(left, "coronal", 0.0)[1] > 0.65
    assert where(superior, "coronal", 0.0)[0] < 0.35
    assert where(superior, "sagittal", 0.0)[0] < 0.35
    assert where(anterior, "sagittal", 0.0)[1] < 0.35


def test_named_planes_follow_the_dicom_orientations():
    expected = {
        "axial": ((0, 0, 1), (1, 0, 0), (0, 1, 0)),
        "coronal": ((0, 1, 0), (1, 0, 0), (0, 0, -1)),
        "sagittal": ((1, 0, 0), (0, 1, 0), (0, 0, -1)),
    }
    image = volume(linear, size=(8, 8, 8))
    for plane, (normal, row, column) in expected.items():
        out = reformat(image, plane)
        for key, value in ((META_NORMAL, normal), (META_ROW, row), (META_COLUMN, column)):
            np.testing.assert_array_equal(vector(out, key), value)
        np.testing.assert_array_equal(np.stack(plane_axes(plane)), [normal, row, column])


def test_oblique_in_plane_orientation_is_deterministic():
    anterior, superior = (0, -1, 0), (0, 0, 1)
    cases = [((0.1, 0.2, 1.0), anterior), ((0.0, -1.0, 0.4), superior), ((-1.0, 0.3, 0.5), superior)]
    for normal, up in cases:
        n, row, column = plane_axes(normal)
        np.testing.assert_allclose([row @ row, column @ column, row @ column, row @ n, column @ n],
                                   [1, 1, 0, 0, 0], atol=1e-12)
        assert -column @ up > 0.8  # "up" on screen is the projected reference (anterior or superior)
        # The same plane, normal flipped, is displayed the same way.
        _, row2, column2 = plane_axes(-np.asarray(normal))
        np.testing.assert_allclose([row2, column2], [row, column], atol=1e-12)
    # Nearly axial: viewed from the feet (left on the right); nearly sagittal: anterior on the left.
    assert plane_axes((0.05, 0.1, 1.0))[1][0] > 0.9
    assert plane_axes((1.0, 0.1, 0.05))[1][1] > 0.9


# --- oblique planes ----------------------------------------------------------------------------------------


def test_oblique_plane_by_normal_and_by_three_points_agree_with_analytic_sampling():
    image = volume(linear, size=(40, 44, 36), spacing=(0.9, 0.8, 1.1))
    normal = np.array([0.3, 0.4, 0.866])
    normal = normal / np.linalg.norm(normal)
    by_normal = reformat(image, tuple(normal), position=2.0)

    # Three points on the plane normal . x = 2, in a different order of construction.
    _, row, column = plane_axes(normal)
    base = 2.0 * normal + np.array([1.0, -2.0, 0.5]) - (np.array([1.0, -2.0, 0.5]) @ normal) * normal
    points3 = [base, base + 7 * row + 1 * column, base - 3 * row + 5 * column]
    by_points = reformat(image, points3)
    assert by_points.GetSize() == by_normal.GetSize()
    np.testing.assert_allclose(array(by_points), array(by_normal), atol=1e-4)
    assert float(by_points.GetMetaData(META_POSITION)) == pytest.approx(2.0)

    points = patient_points(by_normal)
    keep = inside(image, points)
    assert keep.mean() > 0.3
    np.testing.assert_allclose(array(by_normal)[keep], linear(points)[keep], atol=2e-3)


def test_oblique_plane_agrees_with_sitk_resample():
    rng = np.random.default_rng(7)
    image = volume(lambda p: rng.normal(size=p.shape[:-1]), size=(30, 32, 28), spacing=(1.0, 1.1, 1.3),
                   direction=OBLIQUE)
    out = reformat(image, (0.5, -0.2, 0.8), position=-1.0, interpolator="linear")
    points = patient_points(out)
    identity = tuple(np.eye(3).ravel())
    expected = np.array([  # one-voxel resamples at each pixel's patient point
        sitk.Resample(image, [1, 1, 1], sitk.Transform(), sitk.sitkLinear, tuple(p), (1, 1, 1), identity,
                      np.nan, sitk.sitkFloat64)[0, 0, 0]
        for p in points.reshape(-1, 3)[::37]
    ])
    got = array(out).reshape(-1)[::37]
    keep = inside(image, points.reshape(-1, 3)[::37])
    assert keep.sum() > 20
    np.testing.assert_allclose(got[keep], expected[keep], atol=1e-4)


# --- spacing, types, colour --------------------------------------------------------------------------------


def test_output_has_true_physical_spacing():
    image = volume(linear, size=(40, 36, 30), spacing=(0.7, 0.8, 5.0))
    assert reformat(image, "axial").GetSpacing() == (0.7, 0.8)
    assert reformat(image, "coronal").GetSpacing() == (0.7, 5.0)
    assert reformat(image, "coronal").GetSize() == (40, 30)
    assert reformat(image, "sagittal").GetSpacing() == (0.8, 5.0)
    assert reformat(image, (0.2, 0.1, 1.0)).GetSpacing() == (0.7, 0.7)  # finest in-plane spacing

    square = reformat(image, "coronal", spacing=0.5)
    assert square.GetSpacing() == (0.5, 0.5)
    assert square.GetSize() == (int(39 * 0.7 / 0.5) + 1, int(29 * 5.0 / 0.5) + 1)
    points = patient_points(square)
    np.testing.assert_allclose(array(square), linear(points), atol=2e-3)


def test_integer_volume_keeps_its_type_where_no_value_is_interpolated():
    image = volume(linear, dtype=np.int16)
    assert array(reformat(image, "axial")).dtype == np.int16
    assert array(reformat(image, "coronal", slab=6.0, mode="mip")).dtype == np.int16
    assert array(reformat(image, "coronal", slab=6.0, mode="mean")).dtype == np.float32
    assert array(reformat(image, (0.1, 0.2, 1.0))).dtype == np.float32
    assert array(reformat(image, (0.1, 0.2, 1.0), interpolator="nearest")).dtype == np.int16


@pytest.mark.parametrize("plane", ["axial", "coronal", (0.3, 0.1, 1.0)])
def test_colour_volume_in_slice_mode(plane):
    def rgb(points):
        return np.stack([points[..., 0] + 100, points[..., 1] + 100, points[..., 2] + 100], axis=-1)

    image = volume(rgb, size=(21, 21, 21), spacing=(1, 1, 1), dtype=np.uint8, vector=True)
    out = reformat(image, plane, position=0.0 if isinstance(plane, str) else None)
    assert out.GetNumberOfComponentsPerPixel() == 3
    assert array(out).dtype == np.uint8
    points = patient_points(out)
    keep = inside(image, points)
    # Red follows x (patient left): larger on the right of an axial or coronal image.
    np.testing.assert_allclose(array(out)[keep][:, 0], np.rint(points[keep][:, 0] + 100), atol=1)
    with pytest.raises(ValueError, match="'mip'"):
        reformat(image, plane, slab=4.0, mode="mip")


# --- errors ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    return volume(linear, size=(10, 10, 10), spacing=(1.0, 1.0, 2.0))


@pytest.mark.parametrize("kwargs, message", [
    (dict(plane="transverse"), "'transverse'"),
    (dict(plane=(0, 0, 0)), r"\(0.0, 0.0, 0.0\)"),
    (dict(plane=((0, 0, 0), (1, 1, 1), (2, 2, 2))), "collinear"),
    (dict(plane=((0, 0, 0), (0, 0, 0), (1, 0, 0))), "collinear"),
    (dict(plane=(1, 2)), "shape"),
    (dict(mode="max"), "'max'"),
    (dict(interpolator="cubic"), "'cubic'"),
    (dict(position=999.0), "999.0"),
    (dict(position=-10.5), "-10.5"),  # z runs from -9 to 9 (voxel edges -10 to 10)
    (dict(plane=(0.2, 0.1, 1.0), position=50.0), "50.0"),
    (dict(index=10), "index 10"),
    (dict(index=-1), "index -1"),
    (dict(slab=-1.0, mode="mip"), "-1.0"),
    (dict(slab=4.0), "slab=4.0"),
    (dict(position=1.0, index=2), "not both"),
    (dict(plane=((0, 0, 0), (1, 0, 0), (0, 1, 0)), position=0.0), "three points"),
    (dict(spacing=0.0), "spacing"),
    (dict(position=float("nan")), "nan"),
])
def test_errors_name_the_offending_value(small, kwargs, message):
    with pytest.raises(ValueError, match=message):
        reformat(small, **kwargs)


def test_position_on_the_last_voxel_edge_is_accepted(small):
    assert array(reformat(small, "axial", position=-10.0)).shape == (10, 10)
    assert array(reformat(small, "axial", position=10.0)).shape == (10, 10)


def test_type_errors():
    with pytest.raises(TypeError, match="ndarray"):
        reformat(np.zeros((4, 4, 4)))
    with pytest.raises(TypeError, match="2D"):
        reformat(sitk.Image(4, 4, sitk.sitkFloat32))
    with pytest.raises(ValueError, match="reformat"):
        pixel_to_patient(sitk.Image(4, 4, sitk.sitkFloat32), (0, 0))
