import json
import math

import dask
import dask.array as da
import matplotlib
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import fractals
from fractalscape.dimension import _porespy_sizes, dimension
from helpers import raise_if_dask_computes
from test_boundary import chunkings

matplotlib.use("Agg")

# Tolerances.  Box counting on a finite raster sees the set only between the
# pixel scale and the map size; the automatic fit range keeps 3-4 octaves in
# between.  Over those octaves the rasterized fractals below land within
# 0.02 of the exact dimension (power-of-two boxes on triadic sets add a
# log-periodic wobble of about that size), so 0.03 leaves a margin while a
# wrong count (e.g. counting both sides of every edge, or missing partial
# boxes) moves the estimate by more than 0.05.
TOL = 0.03


@pytest.mark.parametrize(
    ("make_labels", "exact"),
    [
        pytest.param(lambda: fractals.koch_snowflake(2048, 8), math.log(4) / math.log(3),
                     id="koch"),
        pytest.param(lambda: fractals.sierpinski_carpet(7), math.log(8) / math.log(3),
                     id="sierpinski-carpet"),
        pytest.param(lambda: fractals.disk(1024, 400), 1.0, id="circle"),
        pytest.param(lambda: fractals.half_plane(1024), 1.0, id="line"),
        pytest.param(lambda: fractals.square(1000, 123), 1.0, id="square-edge"),
        # the Cantor set is triadic: box sizes 4..4096 on a 3**11 grid of
        # cell centres span 10 octaves, enough to average the wobble of
        # power-of-two boxes out (0.645 here)
        pytest.param(lambda: fractals.cantor(3**11, 11, cell_centres=True),
                     math.log(2) / math.log(3), id="cantor-1d"),
    ],
)
def test_boxcount_known_fractals(make_labels, exact):
    result = dimension(make_labels(), "boxcount")
    assert result.dimension == pytest.approx(exact, abs=TOL)
    assert 0 < result.stderr < 0.05


def test_dyadic_quaternary_cantor():
    # Liu's dyadic sub-grids only line up with dyadic structure: the middle-
    # thirds Cantor set puts its ends at triadic points, which coarse dyadic
    # samples miss (counts plateau for many levels; 0.60 at 2**20 + 1
    # points).  The base-4 Cantor set (keep quarters 1 and 4; dimension 0.5)
    # is resolved exactly on 2**20 + 1 points; it gives 0.522.
    result = dimension(fractals.cantor(2**20 + 1, 10, base=4), "dyadic")
    assert result.dimension == pytest.approx(0.5, abs=TOL)
    assert result.sizes == tuple(range(21))
    assert result.fit_range == (1, 20)


def test_dyadic_counts_by_hand():
    labels = np.array([0, 0, 1, 1, 0, 1, 1, 1, 0], dtype=bool)
    # level 0 samples 0, 0; level 1: 0, 0, 0; level 2 (every other point):
    # 0, 1, 0, 1, 0; level 3: all points, four changes
    assert dimension(labels, "dyadic").counts == (0, 0, 4, 4)


def test_dyadic_single_change_has_dimension_zero():
    result = dimension(np.arange(2**12 + 1) < 1000, "dyadic")
    assert result.counts == (1,) * 13
    assert result.dimension == 0.0


def test_dyadic_rejects_wrong_length():
    with pytest.raises(ValueError, match=r"2\*\*n \+ 1 points.*got shape \(1000,\)"):
        dimension(np.zeros(1000, dtype=bool), "dyadic")


def test_boxcount_counts_by_hand():
    labels = np.zeros((6, 6), dtype=bool)
    labels[:, 3:] = True  # class change between columns 2 and 3
    result = dimension(labels, fit_range=(1, 2))
    # cells between pixel centres: a 5x5 grid whose column 2 is crossed
    assert result.sizes == (1, 2, 4, 8)
    assert result.counts == (5, 3, 2, 1)


def test_median_slope_matches_porespy_recipe():
    labels = fractals.koch_snowflake(600, 6)
    result = dimension(labels, "median-slope")
    # porespy.metrics.boxcount on the cell mask, written out literally
    y = labels.astype(int)
    cells = (np.maximum.reduce([y[1:, 1:], y[:-1, 1:], y[1:, :-1], y[:-1, :-1]])
             != np.minimum.reduce([y[1:, 1:], y[:-1, 1:], y[1:, :-1], y[:-1, :-1]]))
    sizes = np.unique(np.logspace(1, np.log10(min(cells.shape)), 10).astype(int))
    counts = []
    for d in sizes:
        n = 0
        for i in range(0, cells.shape[0], d):
            for j in range(0, cells.shape[1], d):
                box = cells[i:i + d, j:j + d]
                n += int(np.any(box)) - int(np.all(box))
        counts.append(n)
    slopes = -np.gradient(np.log(counts), np.log(sizes))
    assert result.sizes == tuple(sizes.tolist()) == tuple(_porespy_sizes(cells.shape))
    assert result.counts == tuple(counts)
    assert result.dimension == pytest.approx(np.median(slopes), rel=1e-12)
    assert result.dimension == pytest.approx(math.log(4) / math.log(3), abs=0.1)


@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_dask_counts_equal_numpy_counts(data):
    labels = fractals.koch_snowflake(60, 4)[:, :47]
    chunks = (data.draw(chunkings(60)), data.draw(chunkings(47)))
    lazy = da.from_array(labels, chunks=chunks)
    # thousands of tiny tasks: the synchronous scheduler runs them fastest
    with dask.config.set(scheduler="synchronous"):
        for method in ("boxcount", "median-slope"):
            expected = dimension(labels, method, fit_range=(1, 64))
            assert dimension(lazy, method, fit_range=(1, 64)) == expected


@pytest.mark.parametrize("chunks", [(5, 5, 7), (1, 16), (17,)])
def test_dask_odd_chunks_1d(chunks):
    labels = fractals.cantor(17, 2)
    lazy = da.from_array(labels, chunks=(chunks,))
    assert dimension(lazy, "dyadic") == dimension(labels, "dyadic")
    assert dimension(lazy, fit_range=(1, 16)) == dimension(labels, fit_range=(1, 16))


def test_dask_odd_chunks_2d_exactly():
    labels = fractals.sierpinski_carpet(3)[:16, :16]
    lazy = da.from_array(labels, chunks=((5, 5, 6), (5, 5, 6)))
    assert dimension(lazy, fit_range=(1, 8)) == dimension(labels, fit_range=(1, 8))


def test_building_graphs_computes_only_once_asked():
    labels = da.from_array(fractals.disk(64, 20), chunks=(10, 13))
    line = da.from_array(fractals.cantor(257, 4), chunks=50)
    with raise_if_dask_computes(max_computes=1):
        dimension(labels, fit_range=(2, 16))
    with raise_if_dask_computes(max_computes=1):
        dimension(labels, "median-slope")
    with raise_if_dask_computes(max_computes=1):
        dimension(line, "dyadic")


def test_dataarray_input():
    values = fractals.disk(256, 100)
    labels = xr.DataArray(values, dims=("lr_a", "lr_b"))
    assert dimension(labels) == dimension(values)


def test_result_to_dict_is_json_and_plot_returns_axes():
    for method, labels in [("boxcount", fractals.disk(256, 100)),
                           ("median-slope", fractals.disk(256, 100)),
                           ("dyadic", fractals.cantor(2**10 + 1, 5, base=4))]:
        result = dimension(labels, method)
        record = json.loads(json.dumps(result.to_dict(), allow_nan=False))
        assert record["method"] == method
        assert record["dimension"] == result.dimension
        assert record["counts"] == list(result.counts)
        ax = result.plot()
        assert isinstance(ax, matplotlib.axes.Axes)
        assert len(ax.lines) == 2  # on a Figure of its own: nothing for pyplot to close


def test_stderr_nan_becomes_none():
    result = dimension(np.arange(2**6 + 1) < 20, "dyadic", fit_range=(3, 4))
    assert math.isnan(result.stderr)
    assert result.to_dict()["stderr"] is None


def test_bad_inputs_name_the_fix():
    with pytest.raises(ValueError, match="method must be .*got 'box'"):
        dimension(fractals.disk(64, 20), "box")
    with pytest.raises(ValueError, match="single class"):
        dimension(np.zeros((64, 64), dtype=bool))
    with pytest.raises(ValueError, match="pass fit_range"):
        dimension(fractals.disk(32, 10))
    with pytest.raises(ValueError, match="min <= max"):
        dimension(fractals.disk(64, 20), fit_range=(8, 2))
