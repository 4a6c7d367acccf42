"""The public verb: laziness, chunk and scheduler invariance, provenance."""

import json

import dask
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fractalscape as fs
from helpers import raise_if_dask_computes

LAND = fs.landscape("cosine-multiplicative", delta=0.2, wavelength=0.1)


def _map(shape, chunks, **kw):
    axes = [
        fs.Axis("lr", 0.0, 1.5, shape[0], chunk=chunks[0]),
        fs.Axis("x0", -1.5, 1.5, shape[1], chunk=chunks[1]),
    ]
    return fs.trainability(LAND, fs.Grid(axes), steps=kw.pop("steps", 200), **kw)


def test_building_the_dataset_computes_nothing():
    with raise_if_dask_computes():
        ds = fs.trainability(LAND, fs.Grid([fs.Axis("lr", 0.0, 1.5, 2**32 + 1, chunk=2**24)]), x0=1.0)
        big = _map((32768, 32768), (1024, 1024))
    assert ds.diverged.shape == (2**32 + 1,)
    assert big.escape_step.dtype == np.int32 and big.final_loss.dtype == np.float64
    assert big.diverged.dtype == bool


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c0=st.integers(1, 37), c1=st.integers(1, 23))
def test_any_chunking_is_bit_identical_to_one_block(c0, c1):
    whole = _map((37, 23), (37, 23)).compute(scheduler="sync")
    chunked = _map((37, 23), (c0, c1)).compute(scheduler="sync")
    for name in ("diverged", "escape_step", "final_loss"):
        np.testing.assert_array_equal(chunked[name].values, whole[name].values)


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_schedulers_agree_with_synchronous(scheduler):
    ds = _map((64, 48), (10, 13))
    expected = ds.compute(scheduler="sync")
    got = ds.compute(scheduler=scheduler, num_workers=2)
    for name in ("escape_step", "final_loss"):
        np.testing.assert_array_equal(got[name].values, expected[name].values)
    assert expected.diverged.values.any() and not expected.diverged.values.all()


def test_provenance_attrs_describe_the_run():
    ds = _map((8, 8), (4, 4), steps=123, threshold=1e6)
    attrs = ds.attrs
    assert attrs["landscape"] == "cosine-multiplicative"
    assert json.loads(attrs["landscape_params"]) == {"delta": 0.2, "wavelength": 0.1}
    assert attrs["steps"] == 123 and attrs["threshold"] == 1e6
    assert attrs["fractalscape_version"] == fs.__version__
    config = json.loads(attrs["config"])
    assert [a["name"] for a in config["axis"]] == ["lr", "x0"]
    assert ds.lr.attrs["scale"] == "linear"


def test_dataset_supports_selection_by_coordinate():
    ds = _map((16, 16), (4, 4))
    point = ds.sel(lr=0.1, x0=1.5, method="nearest").compute()
    assert point.escape_step.dims == ()


def test_same_map_gives_the_same_dask_keys():
    # Deterministic graph names let dask (and caches) recognise identical maps.
    assert _map((8, 8), (4, 4)).escape_step.data.name == _map((8, 8), (4, 4)).escape_step.data.name
    assert _map((8, 8), (4, 4)).escape_step.data.name != _map((8, 8), (4, 4), steps=7).escape_step.data.name


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"steps": 0}, "steps must be an integer > 0, got 0"),
        ({"steps": 1.5}, "steps must be an integer > 0"),
        ({"threshold": 0.0}, "threshold must be a positive number or inf, got 0.0"),
        ({"threshold": float("nan")}, "threshold must be a positive number or inf"),
        ({"label": "loss"}, "unknown label 'loss'; valid labels: 'threshold'"),
        ({"label": "sohl-dickstein"}, "reads a score, which landscape .* has no readout for; use label = 'threshold'"),
        ({"x0": [1.0, 2.0]}, "x0 must be a number or a list of 1 numbers"),
        ({"precision": "quad"}, "precision must be one of"),
    ],
)
def test_bad_descent_settings(kwargs, message):
    grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 5)])
    with pytest.raises(fs.ConfigError, match=message):
        fs.trainability(LAND, grid, **kwargs)


def test_missing_learning_rate_and_bad_axes():
    with pytest.raises(fs.ConfigError, match="learning rate 'lr' is not set"):
        fs.trainability(LAND, fs.Grid([fs.Axis("x0", 0.0, 1.5, 5)]))
    with pytest.raises(fs.ConfigError, match="unknown axis 'dropout'"):
        fs.trainability(LAND, fs.Grid([fs.Axis("dropout", 0.0, 1.5, 5)]))
    with pytest.raises(fs.ConfigError, match="axis 'momentum' is a hyperparameter of momentum, nesterov, not of "
                                             "optimizer 'gd'"):
        fs.trainability(LAND, fs.Grid([fs.Axis("momentum", 0.0, 0.5, 5)]), lr=0.1)
    land2 = fs.landscape("cosine-additive", dim=2)
    with pytest.raises(fs.ConfigError, match="axes 'lr' and 'lr_1' both set 'lr_1'"):
        fs.trainability(land2, fs.Grid([fs.Axis("lr", 0.0, 1.5, 5), fs.Axis("lr_1", 0.0, 1.5, 5)]))
    with pytest.raises(fs.ConfigError, match="learning rate 'lr_1' is not set"):
        fs.trainability(land2, fs.Grid([fs.Axis("lr_0", 0.0, 1.5, 5)]))


def test_threaded_compute_is_the_default_and_safe():
    # Many blocks on dask's default threaded scheduler: numba kernels run concurrently.
    ds = _map((200, 40), (7, 5))
    with dask.config.set(scheduler="threads"):
        a = ds.escape_step.values
    np.testing.assert_array_equal(a, ds.escape_step.compute(scheduler="sync").values)


def test_threshold_inf_stops_only_at_non_finite_losses():
    # x <- (1 - 2 lr) x on x^2: lr = 1.5 doubles |x| each step, so the loss 4**t overflows to inf
    # at t = 512 (4**512 = 2**1024); the reference is that count, not a threshold crossing.
    grid = fs.Grid([fs.Axis("lr", 0.5, 1.5, 3)])
    ds = fs.trainability(fs.landscape("quadratic"), grid, x0=1.0, steps=2000, threshold=float("inf")).compute()
    assert ds.escape_step.values[:2].tolist() == [-1, -1]
    assert int(ds.escape_step.values[2]) == 512 and ds.final_loss.values[2] == np.inf
