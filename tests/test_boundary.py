import dask.array as da
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import fractals
from fractalscape.boundary import boundary, contours
from helpers import raise_if_dask_computes


def chunkings(length):
    """Hypothesis strategy: a random split of `length` into chunk sizes."""
    return st.lists(st.integers(1, length), min_size=1, max_size=6).map(
        lambda cuts: tuple(np.diff([0, *sorted({c for c in cuts if c < length}),
                                    length]).tolist())
    )


def brute_force_boundary(labels):
    """Reference: the documented neighbourhood rule, one pixel at a time."""
    edge = np.zeros(labels.shape, dtype=bool)
    if labels.ndim == 1:
        edge[:-1] = labels[:-1] != labels[1:]
        return edge
    rows, cols = labels.shape
    for i in range(rows):
        for j in range(cols):
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                if 0 <= i + di < rows and 0 <= j + dj < cols:
                    edge[i, j] |= labels[i, j] != labels[i + di, j + dj]
    return edge


@pytest.mark.parametrize("shape", [(17,), (12, 9), (1, 7)])
def test_boundary_matches_neighbourhood_rule(shape):
    labels = np.random.default_rng(1).random(shape) < 0.4
    np.testing.assert_array_equal(boundary(labels), brute_force_boundary(labels))


def test_boundary_1d_marks_left_of_each_change():
    labels = np.array([True, True, False, False, True])
    assert boundary(labels).tolist() == [False, True, False, True, False]


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_boundary_dask_matches_numpy_for_any_chunking(data):
    labels = fractals.disk(23, 7) ^ (np.arange(23) % 5 == 0)
    chunks = (data.draw(chunkings(23)), data.draw(chunkings(23)))
    lazy = boundary(da.from_array(labels, chunks=chunks))
    assert lazy.chunks == chunks
    assert lazy.dtype == bool and lazy._meta.dtype == bool
    np.testing.assert_array_equal(lazy.compute(), boundary(labels))


def test_boundary_dask_odd_chunks_1d():
    labels = np.random.default_rng(2).random(16) < 0.5
    lazy = boundary(da.from_array(labels, chunks=(5, 5, 6)))
    np.testing.assert_array_equal(lazy.compute(), boundary(labels))


def test_boundary_builds_without_computing():
    labels = da.from_array(fractals.disk(40, 12), chunks=(7, 9))
    with raise_if_dask_computes():
        boundary(labels)


def test_boundary_dataarray_keeps_dims_and_coords():
    labels = xr.DataArray(
        fractals.disk(8, 3), dims=("lr_a", "lr_b"),
        coords={"lr_a": np.logspace(-2, 0, 8), "lr_b": np.linspace(0, 1, 8)},
        name="converged",
    )
    edge = boundary(labels)
    assert isinstance(edge, xr.DataArray)
    assert edge.dims == labels.dims
    xr.testing.assert_equal(edge.coords.to_dataset(), labels.coords.to_dataset())
    np.testing.assert_array_equal(edge.values, boundary(labels.values))


def test_boundary_rejects_non_boolean_and_3d():
    with pytest.raises(ValueError, match="dtype int64"):
        boundary(np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match="got 3-D"):
        boundary(np.zeros((2, 2, 2), dtype=bool))


def test_contour_length_of_circle():
    radius = 150
    found = contours(fractals.disk(400, radius))
    assert len(found.lines) == 1 and found.cut == (False,)
    # marching squares through edge midpoints of a binary map draws a chain of
    # 0/45/90 degree steps: over all directions its length is 8(sqrt2-1)/pi =
    # 1.0548 times the true length (within 1%), so 2 pi r within 6%.
    ratio = found.length_px / (2 * np.pi * radius)
    assert ratio == pytest.approx(8 * (np.sqrt(2) - 1) / np.pi, rel=0.01)
    assert ratio == pytest.approx(1, rel=0.06)


@pytest.mark.parametrize("chunks", [(77, 130), (5, 400), ((100, 1, 299), (200, 200))])
def test_tiled_contours_add_up_to_untiled(chunks):
    labels = fractals.koch_snowflake(400, 5)
    whole = contours(labels)
    tiled = contours(da.from_array(labels, chunks=chunks))
    assert tiled.length_px == pytest.approx(whole.length_px, rel=1e-12)
    assert any(tiled.cut) and not any(whole.cut)
    # a piece is cut exactly when one of its ends lies on an interior tile edge
    edges = [np.cumsum(c)[:-1] for c in da.from_array(labels, chunks=chunks).chunks]
    for line, cut in zip(tiled.lines, tiled.cut):
        ends = line[[0, -1]]
        on_edge = any(np.isin(ends[:, axis], edges[axis]).any() for axis in (0, 1))
        assert cut == on_edge


def test_contours_in_axis_coordinates():
    labels = xr.DataArray(
        fractals.square(10, 3), dims=("a", "b"),
        coords={"a": np.logspace(0, 1, 10), "b": 2.0 * np.arange(10)},
    )
    found = contours(labels)
    line = found.lines[0]
    assert line[:, 0].min() == pytest.approx(np.interp(2.5, np.arange(10), labels.a))
    assert line[:, 1].max() == pytest.approx(13.0)  # index 6.5 on a step-2 axis
    assert found.length != pytest.approx(found.length_px)
    plain = contours(labels.values, coords=(labels.a.values, labels.b.values))
    assert plain.length == pytest.approx(found.length)


def test_contours_reject_bad_coords():
    with pytest.raises(ValueError, match="coords must be two 1-D arrays"):
        contours(fractals.square(10, 3), coords=(np.arange(10), np.arange(9)))
