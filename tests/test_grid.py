import time

import dask.array as da
import numpy as np
import pytest

import fractalscape as fs
from helpers import raise_if_dask_computes


def test_linear_axis_matches_numpy_linspace():
    axis = fs.Axis("lr", 0.0, 1.5, 2**12 + 1)
    np.testing.assert_array_equal(axis.values(), np.linspace(0.0, 1.5, 2**12 + 1))


def test_log_axis_endpoints_and_spacing():
    axis = fs.Axis("lr", 1e-4, 10.0, 101, scale="log")
    values = axis.values()
    assert values[0] == 1e-4 and values[-1] == 10.0
    np.testing.assert_allclose(np.diff(np.log10(values)), 0.05, rtol=1e-9)


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_coordinates_do_not_depend_on_chunking(chunk):
    axis = fs.Axis("x0", -2.0, 3.0, 1000, scale="linear")
    np.testing.assert_array_equal(axis.coords(chunk).compute(), axis.values())
    log_axis = fs.Axis("lr", 1e-3, 2.0, 1000, scale="log")
    np.testing.assert_array_equal(log_axis.coords(chunk).compute(), log_axis.values())


def test_huge_grid_is_described_instantly_without_compute():
    start = time.perf_counter()
    with raise_if_dask_computes():
        grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 2**32 + 1, chunk=2**24)])
        coords = grid.coords()["lr"]
        big = fs.Grid([fs.Axis("lr", 0.0, 1.5, 32768, chunk=1024), fs.Axis("x0", -1.0, 1.0, 32768, chunk=1024)])
        big.coords()
    assert time.perf_counter() - start < 5
    assert isinstance(coords, da.Array) and coords.shape == (2**32 + 1,)
    assert big.size == 2**30


def test_automatic_chunks_cover_the_axes():
    grid = fs.Grid([fs.Axis("lr", 0.0, 1.0, 1000), fs.Axis("x0", 0.0, 1.0, 3)])
    chunks = grid.chunks()
    assert [sum(c) for c in chunks] == [1000, 3]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num": 1}, "num must be >= 2, got 1"),
        ({"num": 2.5}, "num must be an integer"),
        ({"start": 1.0, "stop": 1.0}, "start and stop must differ"),
        ({"start": 0.0, "scale": "log"}, "a log axis needs start > 0"),
        ({"stop": -1.0, "start": 1.0, "scale": "log"}, "a log axis needs start > 0"),
        ({"scale": "cubic"}, "scale must be 'linear' or 'log'"),
        ({"start": float("nan")}, "start must be finite"),
        ({"stop": float("inf")}, "stop must be finite"),
        ({"start": "zero"}, "start must be a number"),
        ({"chunk": 0}, "chunk must be >= 1"),
        ({"chunk": 11}, "chunk must be at most num=10"),
        ({"name": "learning rate"}, "axis name must be an identifier"),
    ],
)
def test_bad_axis(kwargs, message):
    args = {"name": "lr", "start": 0.1, "stop": 1.0, "num": 10, **kwargs}
    with pytest.raises(fs.ConfigError, match=message):
        fs.Axis(**args)


def test_bad_grid():
    with pytest.raises(fs.ConfigError, match="axis names must be unique, 'lr'"):
        fs.Grid([fs.Axis("lr", 0.0, 1.0, 3), fs.Axis("lr", 0.0, 1.0, 3)])
    with pytest.raises(fs.ConfigError, match="a grid needs 1 to 3 axes, got 4"):
        fs.Grid([fs.Axis(n, 0.0, 1.0, 3) for n in ("a", "b", "c", "d")])
    with pytest.raises(fs.ConfigError, match="one block would hold"):
        fs.Grid([fs.Axis("lr", 0.0, 1.0, 10**5, chunk=10**5), fs.Axis("x0", 0.0, 1.0, 10**5, chunk=10**5)])


def test_repr_is_readable():
    grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 5, chunk=2)])
    assert repr(grid) == "Grid([Axis('lr', 0.0 .. 1.5, num=5, linear, chunk=2)])  # 5 = 5 points"


def test_a_span_that_overflows_float64_is_refused():
    with pytest.raises(fs.ConfigError, match="overflows float64"):
        fs.Axis("lr", -1.7e308, 1.7e308, 5)
    assert np.isfinite(fs.Axis("lr", -8e307, 8e307, 5).values()).all()
