"""The numba GD kernels against the independent NumPy reference (tests/reference.py)."""

import math

import numpy as np
import pytest

import fractalscape as fs
from reference import gradient_descent

from fractalscape.gd import run_block


def test_numpy_trig_is_libm():
    # The reference is bit-comparable only if NumPy's float64 sin/cos are the C library's.
    x = np.random.default_rng(0).uniform(-1e3, 1e3, 20_000)
    assert np.array_equal(np.cos(x), [math.cos(v) for v in x])
    assert np.array_equal(np.sin(x), [math.sin(v) for v in x])


def _reference_map(land, grid, *, x0, lr, steps, threshold):
    """The same map from the NumPy reference, point by point in grid order."""
    mesh = np.meshgrid(*[a.values() for a in grid.axes], indexing="ij")
    values = {name: m.ravel() for name, m in zip(grid.names, mesh)}
    npoints = mesh[0].size
    d = land.dim

    def per_coordinate(kind, default):
        rows = []
        for i in range(d):
            own = f"{kind}_{i}" if d > 1 else kind
            value = values.get(own, values.get(kind, default[i] if default is not None else np.nan))
            rows.append(np.broadcast_to(value, (npoints,)))
        return np.array(rows, dtype=np.float64)

    theta = {k: values.get(k, v) for k, v in land.params.items()}
    x0_vec = [x0] * d if np.ndim(x0) == 0 else list(x0)
    lr_vec = None if lr is None else ([lr] * d if np.ndim(lr) == 0 else list(lr))
    escape, final = gradient_descent(
        land.name, theta, per_coordinate("lr", lr_vec), per_coordinate("x0", x0_vec), steps, threshold
    )
    return escape.reshape(grid.shape), final.reshape(grid.shape)


CASES = [
    pytest.param(fs.landscape("quadratic"), [fs.Axis("lr", 0.0, 1.5, 301)], {}, id="quadratic-lr"),
    pytest.param(
        fs.landscape("cosine-additive", delta=0.2, wavelength=0.1),
        [fs.Axis("lr", 0.0, 1.5, 2001, chunk=300)], {}, id="additive-lr",
    ),
    pytest.param(
        fs.landscape("cosine-multiplicative", delta=0.2, wavelength=0.1),
        [fs.Axis("lr", 0.0, 1.5, 2001, chunk=700)], {}, id="multiplicative-lr",
    ),
    pytest.param(
        fs.landscape("cosine-multiplicative", delta=0.2, wavelength=0.1),
        [fs.Axis("lr", 0.01, 1.5, 41, scale="log", chunk=16), fs.Axis("x0", -2.0, 2.0, 37, chunk=10)],
        {}, id="multiplicative-lr-x0",
    ),
    pytest.param(
        fs.landscape("cosine-additive", dim=2, delta=0.2, wavelength=0.1),
        [fs.Axis("lr_0", 0.0, 1.5, 33, chunk=8), fs.Axis("lr_1", 0.0, 1.5, 29, chunk=9)],
        {"x0": [1.0, -0.7]}, id="additive-2d-lr0-lr1",
    ),
    pytest.param(
        fs.landscape("cosine-multiplicative", dim=3, delta=0.1, wavelength=0.3),
        [fs.Axis("lr", 0.0, 1.2, 97, chunk=25)], {"x0": [0.9, -0.4, 0.3]}, id="multiplicative-3d",
    ),
    pytest.param(
        fs.landscape("cosine-additive", delta=0.2, wavelength=0.1),
        [fs.Axis("delta", 0.0, 0.3, 23, chunk=7), fs.Axis("lr", 0.0, 1.5, 31, chunk=11)],
        {}, id="additive-delta-lr",
    ),
    pytest.param(
        fs.landscape("cosine-additive", delta=0.2, wavelength=0.1),
        [fs.Axis("wavelength", 0.05, 1.0, 17, chunk=5), fs.Axis("lr", 0.5, 1.5, 13), fs.Axis("x0", 0.5, 1.5, 3)],
        {}, id="additive-3-axes",
    ),
    pytest.param(
        fs.landscape("cosine-multi", deltas=[0.2, 0.05], wavelengths=[0.1, 0.37]),
        [fs.Axis("lr", 0.0, 1.5, 501, chunk=128)], {}, id="multi-lr",
    ),
    pytest.param(
        fs.landscape("cosine-multi", deltas=[0.2, 0.05], wavelengths=[0.1, 0.37]),
        [fs.Axis("delta_1", 0.0, 0.5, 21, chunk=6), fs.Axis("lr", 0.5, 1.5, 19)], {}, id="multi-delta1-lr",
    ),
    # Thresholds among the losses the orbits visit: the kernels' cheap bound
    # (sum of squares against a level below the threshold) is inconclusive
    # on many steps, and the exact loss must decide each of them.
    pytest.param(
        fs.landscape("cosine-additive", delta=0.2, wavelength=0.1),
        [fs.Axis("lr", 0.0, 1.5, 61, chunk=17), fs.Axis("x0", 0.6, 1.3, 43, chunk=10)],
        {"threshold": 1.1}, id="additive-threshold-among-losses",
    ),
    pytest.param(
        fs.landscape("cosine-multi", dim=2, deltas=[0.3, 0.05], wavelengths=[0.1, 0.37]),
        [fs.Axis("lr", 0.0, 1.5, 45, chunk=16), fs.Axis("x0", 0.3, 1.0, 31, chunk=8)],
        {"threshold": 1.3}, id="multi-2d-threshold-among-losses",
    ),
]


@pytest.mark.parametrize("land, axes, extra", CASES)
def test_kernel_matches_numpy_reference(land, axes, extra):
    grid = fs.Grid(axes)
    settings = {"x0": 1.0, "lr": None, "steps": 400, "threshold": 1e8, **extra}
    ds = fs.trainability(land, grid, **settings).compute()
    escape, final = _reference_map(land, grid, **settings)
    assert (escape >= 0).any() and (escape < 0).any(), "grid should hold both classes"
    np.testing.assert_array_equal(ds.escape_step.values, escape)
    np.testing.assert_array_equal(ds.final_loss.values, final)
    np.testing.assert_array_equal(ds.diverged.values, escape >= 0)


def test_fixed_learning_rate_with_x0_axis():
    land = fs.landscape("cosine-additive", delta=0.2, wavelength=0.1)
    grid = fs.Grid([fs.Axis("x0", -2.0, 2.0, 401, chunk=64)])
    ds = fs.trainability(land, grid, lr=0.9, steps=300).compute()
    escape, final = _reference_map(land, grid, x0=1.0, lr=0.9, steps=300, threshold=1e8)
    np.testing.assert_array_equal(ds.escape_step.values, escape)
    np.testing.assert_array_equal(ds.final_loss.values, final)


def test_quadratic_boundary_is_lr_one():
    # x <- (1 - 2 lr) x: |1 - 2 lr| > 1 diverges, i.e. lr > 1 (for lr > 0); the slowest
    # escape on this grid (lr = 1.001) takes ~2300 steps.
    grid = fs.Grid([fs.Axis("lr", 0.0, 2.0, 2001)])
    ds = fs.trainability(fs.landscape("quadratic"), grid, x0=1.0, steps=5000, threshold=1e8).compute()
    lr = ds.lr.values
    np.testing.assert_array_equal(ds.diverged.values, lr > 1.0)
    # escape step: 4**t * x0**2 > threshold first at t = floor(log(1e8)/log(|1-2lr|^2)) + 1
    above = lr > 1.0
    rate = (1 - 2 * lr[above]) ** 2
    expected = np.floor(np.log(1e8) / np.log(rate)).astype(int) + 1
    assert np.abs(ds.escape_step.values[above] - expected).max() <= 1


def test_initial_point_above_threshold_escapes_at_step_zero():
    # x0 = 0, 5e3, 1e4, 1.5e4, 2e4: loss 1e8 equals the threshold, which is not divergence.
    grid = fs.Grid([fs.Axis("x0", 0.0, 2e4, 5)])
    ds = fs.trainability(fs.landscape("quadratic"), grid, lr=0.1, steps=10, threshold=1e8).compute()
    assert ds.escape_step.values.tolist() == [-1, -1, -1, 0, 0]


def test_non_finite_loss_counts_as_divergence():
    # An enormous threshold never triggers; the orbit overflows to inf and then NaN.
    grid = fs.Grid([fs.Axis("lr", 1.5, 2.0, 3)])
    ds = fs.trainability(fs.landscape("quadratic"), grid, x0=1.0, steps=5000, threshold=1.7e308).compute()
    assert (ds.escape_step.values > 0).all()
    assert not np.isfinite(ds.final_loss.values).any() or (ds.final_loss.values > 1.7e308).all()


def test_three_axis_block_equals_its_points_one_by_one():
    # The lane refill steps the three axis indices with a carry (slots.next_index):
    # odd lengths on every axis make each carry happen mid-block.
    land = fs.landscape("cosine-multiplicative", delta=0.2, wavelength=0.1)
    lrs, x0s, deltas = np.linspace(0.1, 1.4, 5), np.linspace(-2.0, 2.0, 3), np.array([0.1, 0.2, 0.3, 0.4])
    settings = {"steps": 200, "threshold": 1e8, "precision": "libm"}
    block = run_block(land, {}, [("lr", lrs), ("x0", x0s), ("delta", deltas)], **settings)
    assert (block["escape_step"] >= 0).any() and (block["escape_step"] < 0).any()
    for i, j, k in np.ndindex(block.shape):
        one = run_block(land, {"x0": x0s[j], "delta": deltas[k]}, [("lr", lrs[i:i + 1])], **settings)[0]
        assert one["escape_step"] == block[i, j, k]["escape_step"]
        np.testing.assert_array_equal(one["final_loss"], block[i, j, k]["final_loss"])
