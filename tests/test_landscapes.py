"""Each landscape's gradient against central finite differences, and user landscapes."""

import numba
import numpy as np
import pytest

import fractalscape as fs
from fractalscape.trig import LIBM

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


@pytest.mark.parametrize("land", LANDSCAPES, ids=repr)
def test_gradient_matches_finite_differences(land):
    loss, grad = land.functions(LIBM)
    rng = np.random.default_rng(1)
    theta = land.theta_vector().reshape(-1, 1)
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
    theta = add.theta_vector().reshape(-1, 1)
    assert add.functions(LIBM)[0](x, theta, 0) == pytest.approx(s + 0.3 * c, rel=1e-14)
    assert mul.functions(LIBM)[0](x, theta, 0) == pytest.approx(s * (1 + 0.3 * c), rel=1e-14)


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
        ("cosine-additive", {"wavelength": 0.0}, "wavelength must be non-zero"),
        ("cosine-additive", {"delta": float("nan")}, "delta must be finite"),
        ("cosine-additive", {"dim": 0}, "dim must be an integer >= 1"),
        ("cosine-multi", {"deltas": [0.1]}, "needs lists 'deltas' and 'wavelengths'"),
        ("cosine-multi", {"deltas": [0.1], "wavelengths": [0.2]}, "same length >= 2"),
    ],
)
def test_bad_landscape(name, params, message):
    with pytest.raises(fs.ConfigError, match=message):
        fs.landscape(name, **params)
