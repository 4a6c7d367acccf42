"""Each landscape's gradient against central finite differences, and user landscapes."""

import math

import numba
import numpy as np
import pytest

import fractalscape as fs
from fractalscape.trig import LIBM, get_trig

LANDSCAPES = [
    fs.landscape("quadratic"),
    fs.landscape("quadratic", dim=3),
    fs.landscape("cosine-additive", delta=0.2, wavelength=0.1),
    fs.landscape("cosine-additive", dim=3, delta=0.2, wavelength=0.1),
    fs.landscape("cosine-multiplicative", delta=0.2, wavelength=0.1),
    fs.landscape("cosine-multiplicative", dim=2, delta=0.3, wavelength=0.7),
    fs.landscape("cosine-multi", deltas=[0.2, 0.05, 0.1], wavelengths=[0.1, 0.37, 1.3]),
    fs.landscape("cosine-multi", dim=2, deltas=[0.2, 0.05], wavelengths=[0.1, 0.37]),
]


def _prepared_theta(land, functions, lanes=1):
    theta = np.repeat(land.theta_vector().reshape(-1, 1), lanes, axis=1)
    for j in range(lanes):
        functions.prepare(theta, j)
    return theta


@pytest.mark.parametrize("land", LANDSCAPES, ids=repr)
def test_gradient_matches_finite_differences(land):
    functions = land.functions(LIBM)
    loss, grad = functions.loss, functions.grad
    rng = np.random.default_rng(1)
    theta = _prepared_theta(land, functions)
    h = 1e-6
    for _ in range(20):
        x = rng.uniform(-1.5, 1.5, (land.dim, 1))
        g = np.empty_like(x)
        grad(x, theta, 0, g)
        for i in range(land.dim):
            up, down = x.copy(), x.copy()
            up[i, 0] += h
            down[i, 0] -= h
            numeric = (loss(up, theta, 0) - loss(down, theta, 0)) / (2 * h)
            # Central differences err by ~h^2 f''' + eps f / h; the ripples make f''' ~ k^3 ~ 2.5e5.
            assert numeric == pytest.approx(g[i, 0], rel=1e-5, abs=1e-3)


def test_loss_values_match_their_formulas():
    x = np.array([[0.3], [-1.1]])
    k = 2 * np.pi / 0.7
    s, c = 0.3**2 + 1.1**2, np.cos(k * 0.3) + np.cos(k * -1.1)
    add = fs.landscape("cosine-additive", dim=2, delta=0.3, wavelength=0.7)
    mul = fs.landscape("cosine-multiplicative", dim=2, delta=0.3, wavelength=0.7)
    theta = _prepared_theta(add, add.functions(LIBM))
    assert add.functions(LIBM).loss(x, theta, 0) == pytest.approx(s + 0.3 * c, rel=1e-14)
    assert mul.functions(LIBM).loss(x, theta, 0) == pytest.approx(s * (1 + 0.3 * c), rel=1e-14)


@pytest.mark.parametrize("precision", ["libm", "fast"])
@pytest.mark.parametrize("land", LANDSCAPES, ids=repr)
def test_bound_below_level_guarantees_loss_below_threshold(land, precision):
    # The kernels skip the loss wherever bound(x) <= level: that must imply loss(x) <= threshold,
    # here on states whose loss lies within a few ulp to a few ripples of the threshold.
    functions = land.functions(get_trig(precision))
    rng = np.random.default_rng(2)
    lanes = 20_000
    theta = _prepared_theta(land, functions, lanes)
    x = np.empty((land.dim, lanes))
    level, bound, loss = np.empty(lanes), np.empty(lanes), np.empty(lanes)
    ripples = land.dim * sum(abs(v) for k, v in land.params.items() if k.startswith("delta"))
    for threshold in (1.0, 37.5, 1e8, 3e15):
        # Sums of squares around threshold - ripples (where the bound starts to decide), give or
        # take a few ulp to a few percent of the threshold.
        direction = rng.normal(size=(land.dim, lanes))
        direction /= np.sqrt((direction**2).sum(axis=0))
        eps = rng.choice([1e-16, 1e-12, 1e-6, 1e-3, 0.05], lanes) * rng.uniform(-1, 1, lanes)
        if land.name == "cosine-multiplicative":  # its ripples scale with the loss
            squares = threshold * (1 + eps) * (1 + ripples * rng.uniform(-1, 1, lanes))
        else:
            squares = threshold * (1 + eps) - ripples * rng.uniform(0.5, 1.5, lanes)
        x[:] = direction * np.sqrt(np.maximum(squares, 0.0))
        for j in range(lanes):
            level[j] = functions.level(x, theta, j, threshold)
            bound[j] = functions.bound(x, theta, j)
            loss[j] = functions.loss(x, theta, j)
        skipped = bound <= level
        # The bound is not so loose that it decides nothing near the threshold.
        assert 0.2 < skipped.mean() < 0.8
        assert (loss[skipped] <= threshold).all()


def test_bound_is_nan_where_the_loss_is():
    land = fs.landscape("cosine-additive", delta=0.2, wavelength=0.1)
    functions = land.functions(get_trig("fast"))
    theta = _prepared_theta(land, functions)
    for value in (2.0**50, np.inf, np.nan):  # the fast trig is NaN beyond 2**50 / k
        x = np.array([[value]])
        assert math.isnan(functions.loss(x, theta, 0)) and math.isnan(functions.bound(x, theta, 0))


@numba.njit
def _quartic_loss(x, theta, j):
    s = 0.0
    for i in range(x.shape[0]):
        s += theta[0, j] * x[i, j] ** 4
    return s


@numba.njit
def _quartic_grad(x, theta, j, out):
    for i in range(x.shape[0]):
        out[i, j] = 4.0 * theta[0, j] * x[i, j] ** 3


def test_user_defined_landscape_runs_through_the_public_path():
    fs.define_landscape("test-quartic", _quartic_loss, _quartic_grad, params={"a": 1.0}, formula="a * x^4")
    land = fs.landscape("test-quartic", a=0.5)
    grid = fs.Grid([fs.Axis("lr", 0.0, 2.0, 201, chunk=50)])
    ds = fs.trainability(land, grid, x0=1.0, steps=200).compute()
    # Plain-Python GD on a x^4 with a = 0.5 (gradient 2 x^3).
    expected = []
    for lr in grid.axes[0].values():
        x, escape = 1.0, -1
        for step in range(1, 201):
            x = x - lr * (4.0 * 0.5 * x**3)
            if not 0.5 * x**4 <= 1e8:
                escape = step
                break
        expected.append(escape)
    np.testing.assert_array_equal(ds.escape_step.values, expected)
    assert ds.attrs["landscape"] == "test-quartic"
    with pytest.raises(fs.ConfigError, match="already registered"):
        fs.define_landscape("test-quartic", _quartic_loss, _quartic_grad)


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("cosine-addtive", {}, "unknown landscape 'cosine-addtive' \\(did you mean 'cosine-additive'\\?\\)"),
        ("cosine-additive", {"amplitude": 1.0}, "has no parameter 'amplitude'"),
        ("cosine-additive", {"wavelength": 0.0}, "wavelength must be a normal non-zero number"),
        ("cosine-additive", {"wavelength": 1e-320}, "wavelength must be a normal non-zero number"),
        ("cosine-multiplicative", {"wavelength": -2e-308}, "wavenumber 2\\*pi/wavelength is finite"),
        ("cosine-multi", {"deltas": [0.1, 0.2], "wavelengths": [0.1, 5e-324]}, "wavelength_1 must be a normal"),
        ("cosine-additive", {"delta": float("nan")}, "delta must be finite"),
        ("cosine-additive", {"dim": 0}, "dim must be an integer >= 1"),
        ("cosine-multi", {"deltas": [0.1]}, "needs lists 'deltas' and 'wavelengths'"),
        ("cosine-multi", {"deltas": [0.1], "wavelengths": [0.2]}, "same length >= 2"),
    ],
)
def test_bad_landscape(name, params, message):
    with pytest.raises(fs.ConfigError, match=message):
        fs.landscape(name, **params)
