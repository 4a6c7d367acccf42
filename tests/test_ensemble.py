"""Ensemble axes: members equal their separate maps, p_diverged and its Wilson interval, rounding shifts."""

import math

import numpy as np
import pytest

import fractalscape as fs
from fractalscape.codec import stored_final_loss
from fractalscape.store import DONE_DIR
from reference import gradient_descent

MULT = fs.landscape("cosine-multiplicative", delta=0.2, wavelength=0.1)


def test_x0_ensemble_members_are_the_fixed_x0_maps_and_p_is_their_mean():
    x0 = fs.Axis("x0", 0.5, 1.5, 7, ensemble=True)
    grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 301, chunk=77), x0])
    ds = fs.trainability(MULT, grid, steps=300).compute()
    separate = np.array([fs.trainability(MULT, fs.Grid([fs.Axis("lr", 0.0, 1.5, 301)]), x0=v, steps=300)
                         .diverged.values for v in x0.values()]).T
    np.testing.assert_array_equal(ds.diverged.values, separate)
    np.testing.assert_array_equal(ds.p_diverged.values, separate.sum(axis=1) / 7)
    assert (ds.n.values == 7).all() and ds.p_diverged.dims == ("lr",)
    assert 0 < ds.p_diverged.values.mean() < 1 and ((ds.p_diverged > 0) & (ds.p_diverged < 1)).any()


def test_wilson_bounds_solve_the_score_equation():
    # Wilson's interval: the p with |p_hat - p| = z sqrt(p (1 - p) / n), found here by bisection.
    z, n = 1.959963984540054, 13
    grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 101), fs.Axis("x0", -1.5, 1.5, n, ensemble=True)])
    ds = fs.trainability(MULT, grid, steps=200).compute()
    for p_hat, low, high in zip(ds.p_diverged.values, ds.p_low.values, ds.p_high.values):
        def score(p):
            return abs(p_hat - p) - z * math.sqrt(p * (1 - p) / n)

        def root(a, b):
            for _ in range(200):
                mid = (a + b) / 2
                a, b = (mid, b) if (score(mid) > 0) == (score(a) > 0) else (a, mid)
            return (a + b) / 2

        assert low == pytest.approx(0.0 if p_hat == 0 else root(0.0, p_hat), abs=1e-12)
        assert high == pytest.approx(1.0 if p_hat == 1 else root(p_hat, 1.0), abs=1e-12)
        assert low <= p_hat <= high


def test_lr_ulp_members_are_the_reference_at_shifted_learning_rates():
    lr = fs.Axis("lr", 0.0, 1.5, 257, chunk=50)
    grid = fs.Grid([lr, fs.Axis("lr_ulp", -2, 2, 5, ensemble=True)])
    ds = fs.trainability(MULT, grid, steps=400).compute()
    for member, k in enumerate(range(-2, 3)):
        shifted = lr.values()
        for _ in range(abs(k)):
            shifted = np.nextafter(shifted, np.inf if k > 0 else -np.inf)
        escape, final = gradient_descent("cosine-multiplicative", {"delta": 0.2, "wavelength": 0.1},
                                         shifted[None, :], np.ones((1, shifted.size)), 400, 1e8)
        np.testing.assert_array_equal(ds.escape_step.values[:, member], escape)
        np.testing.assert_array_equal(ds.final_loss.values[:, member], final)
    # rounding moves some chaotic labels, and only some
    flips = (ds.p_diverged > 0) & (ds.p_diverged < 1)
    assert 0 < int(flips.sum()) < 0.2 * lr.num


def test_ulp_axis_shifts_every_swept_axis():
    grid = fs.Grid([fs.Axis("lr", 0.2, 1.4, 13), fs.Axis("x0", 0.5, 1.5, 11), fs.Axis("ulp", -1, 1, 3, ensemble=True)])
    ds = fs.trainability(MULT, grid, steps=200).compute()
    up = fs.trainability(MULT, fs.Grid([fs.Axis("lr", 0.2, 1.4, 13), fs.Axis("x0", 0.5, 1.5, 11)]), steps=200)
    from fractalscape.trainability import run_points

    lr, x0 = (np.nextafter(a.values(), np.inf) for a in fs.Grid([fs.Axis("lr", 0.2, 1.4, 13),
                                                                  fs.Axis("x0", 0.5, 1.5, 11)]).axes)
    np.testing.assert_array_equal(ds.escape_step.values[..., 2], run_points(up, [lr, x0])["escape_step"])
    np.testing.assert_array_equal(ds.escape_step.values[..., 1], up.escape_step.values)


@pytest.mark.parametrize("chunks", [(5, 5, 6), (1, 15)])
def test_ensemble_maps_do_not_depend_on_chunks(chunks):
    def grid(chunk):
        return fs.Grid([fs.Axis("lr", 0.1, 1.5, 16, chunk=chunk), fs.Axis("x0", -2.0, 2.0, 9, ensemble=True)])

    whole = fs.trainability(MULT, grid(16), steps=300).compute()
    ds = fs.trainability(MULT, grid(chunks[0]), steps=300)
    ds = ds.chunk({"lr": chunks}).compute()
    for name in ("diverged", "escape_step", "final_loss", "p_diverged", "p_low", "p_high", "n"):
        np.testing.assert_array_equal(ds[name].values, whole[name].values, err_msg=name)


def test_ensemble_map_is_stored_and_resumed(tmp_path):
    grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 40, chunk=9), fs.Axis("x0", 0.5, 1.5, 6, ensemble=True)])
    ds = fs.trainability(MULT, grid, steps=200)
    info = fs.write_map(ds, tmp_path)
    assert info["blocks_total"] == 5
    for marker in sorted((tmp_path / DONE_DIR).iterdir())[:2]:
        marker.unlink()
    assert fs.write_map(ds, tmp_path)["blocks_computed"] == 2
    stored, expected = fs.open_map(tmp_path), ds.compute()
    for name in expected.data_vars:
        want = stored_final_loss(expected[name].values) if name == "final_loss" else expected[name].values
        np.testing.assert_array_equal(stored[name].values, want, err_msg=name)


@pytest.mark.parametrize("axes, match", [
    ([fs.Axis("lr", 0.0, 1.5, 5, ensemble=True)], "every axis"),
    ([fs.Axis("lr", 0.0, 1.5, 5), fs.Axis("x0_ulp", -1, 1, 3, ensemble=True)], "sweeps no 'x0'"),
    ([fs.Axis("lr", 0.0, 1.5, 5), fs.Axis("ulp", -1, 1, 3, ensemble=True), fs.Axis("lr_ulp", 0, 1, 2, ensemble=True)],
     "both shift by ulp"),
])
def test_bad_ensembles_are_refused(axes, match):
    with pytest.raises(fs.ConfigError, match=match):
        fs.trainability(MULT, fs.Grid(axes), steps=10)


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "lr_ulp", "start": -1.5, "stop": 1.5, "num": 3, "ensemble": True}, "integer start, stop"),
    ({"name": "lr_ulp", "start": -1, "stop": 1, "num": 5, "ensemble": True}, "integer start, stop and spacing"),
    ({"name": "lr_ulp", "start": -1, "stop": 1, "num": 3}, "set ensemble = true"),
    ({"name": "x0", "start": -1, "stop": 1, "num": 8, "chunk": 4, "ensemble": True}, "one block"),
    ({"name": "x0", "start": -1, "stop": 1, "num": 1, "ensemble": True}, "an ensemble needs at least 2 members"),
    ({"name": "x0", "start": -1, "stop": 1, "num": 3, "ensemble": "yes"}, "true or false"),
])
def test_bad_ensemble_axes_are_refused(kwargs, match):
    with pytest.raises(fs.ConfigError, match=match):
        fs.Axis(**kwargs)


def test_ensemble_axis_from_a_config():
    ds = fs.open_config({"landscape": {"name": "quadratic"}, "descent": {"steps": 50},
                         "axis": [{"name": "lr", "start": 0.5, "stop": 1.5, "num": 3},
                                  {"name": "x0", "start": -1.0, "stop": 1.0, "num": 4, "ensemble": True}]})
    assert ds.p_diverged.values.tolist() == [0.0, 0.0, 1.0]


def test_building_an_ensemble_map_computes_nothing():
    from helpers import raise_if_dask_computes

    grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 40, chunk=9), fs.Axis("x0", 0.5, 1.5, 6, ensemble=True)])
    with raise_if_dask_computes():
        ds = fs.trainability(MULT, grid, steps=200)
    assert all(hasattr(ds[name].data, "dask") for name in ("p_diverged", "p_low", "p_high", "n"))
