"""The uncertainty exponent: uncertain-pair counts against exact expectations, dimensions, bad input."""

import json
import math

import dask
import numpy as np
import pytest

import fractalscape as fs
from fractalscape.dimension import DimensionResult
from fractalscape.uncertainty import MIN_ULPS, ROW, uncertainty

LIU_DIMENSION = 0.8375  # Liu 2024, dyadic count at 2**32 + 1 learning rates


def quadratic(*axes, steps=1000):
    """f(x) = x**2 from x0 = 1 (unless x0 is an axis): GD diverges for lr above lr_c, a little above 1."""
    descent = {"steps": steps} if any(a["name"] == "x0" for a in axes) else {"x0": 1.0, "steps": steps}
    return {"landscape": {"name": "quadratic"}, "descent": descent, "axis": list(axes)}


def lr_axis(start=0.5, stop=1.5, scale="linear"):
    return {"name": "lr", "start": start, "stop": stop, "num": 3, "scale": scale}


def binomial_z(count, pairs, p):
    return (count - pairs * p) / math.sqrt(pairs * p * (1 - p))


@pytest.mark.parametrize("scale", ["linear", "log"])
def test_quadratic_counts_match_the_exact_straddling_probability(scale):
    # One boundary point lr_c in the window: a pair (u, u + eps), u uniform on [lo, hi - eps] (log10 units
    # on a log axis), is uncertain exactly when u is in (u_c - eps, u_c]: probability eps / (width - eps).
    eps = np.logspace(-1, -3, 5)
    samples = 2**15
    result = uncertainty(quadratic(lr_axis(scale=scale), steps=100), eps=eps, samples=samples, target=samples,
                         precision="fast")
    width = math.log10(3) if scale == "log" else 1.0
    assert result.sizes == tuple(eps.tolist())
    assert result.pairs == (samples,) * len(eps)
    for e, count, pairs in zip(result.sizes, result.counts, result.pairs):
        assert abs(binomial_z(count, pairs, e / (width - e))) < 4, (e, count)


def test_quadratic_boundary_point_has_dimension_zero():
    result = uncertainty(quadratic(lr_axis()), eps=np.logspace(-1.5, -4, 6), samples=2**18, target=400,
                         precision="fast")
    low, high = result.interval
    assert low < 0 < high
    assert abs(result.dimension) < 0.05
    assert result.exponent == pytest.approx(1, abs=0.05)
    assert result.fit_range == (1e-4, 10**-1.5)


WINDOW_2D = quadratic(lr_axis(1.03, 1.07), {"name": "x0", "start": 0.1, "stop": 10.0, "num": 3, "scale": "log"},
                      steps=100)


@pytest.mark.parametrize("axis, eps", [("lr", np.logspace(-3, -5, 5)), ("x0", np.logspace(-1.5, -3, 4))])
def test_2d_smooth_boundary_curve_has_dimension_one(axis, eps):
    # At 100 steps GD diverges where x0 * |1 - 2 lr|**100 > 1e4: a smooth curve across the window.
    result = uncertainty(WINDOW_2D, eps=eps, samples=2**18, target=300, axis=axis, precision="fast")
    assert (result.axis, result.ndim) == (axis, 2)
    low, high = result.interval
    assert low < 1 < high
    assert abs(result.dimension - 1) < 0.05


def test_2d_counts_along_lr_match_the_exact_straddling_probability():
    # Every row (a fixed x0 in 0.1..10) crosses the boundary once, at lr_c(x0) in 1.036..1.061.
    eps = np.logspace(-3, -4, 3)
    samples = 2**14
    result = uncertainty(WINDOW_2D, eps=eps, samples=samples, target=samples, axis=0, precision="fast")
    for e, count, pairs in zip(result.sizes, result.counts, result.pairs):
        assert abs(binomial_z(count, pairs, e / (0.04 - e))) < 4, (e, count)


@pytest.mark.parametrize("window, axis, eps, truth", [
    # 1-D: f = eps / (1 - eps) exactly, whose log-log slope over 1e-2..1e-3 is 1.0039: D = -0.0039
    (quadratic(lr_axis(), steps=100), 0, np.logspace(-2, -3, 3), -0.0039),
    # 2-D along x0: rows of a fixed lr cross the curve or not, so the rows' pairs are correlated
    (WINDOW_2D, 1, np.logspace(-1.5, -3, 4), 1.0),
])
def test_interval_covers_the_true_dimension_in_most_seeds(window, axis, eps, truth):
    covered = 0
    for seed in range(20):
        low, high = uncertainty(window, eps=eps, samples=2**17, target=50, axis=axis, seed=seed,
                                precision="fast").interval
        covered += low < truth < high
    assert covered >= 16, covered  # 95 % intervals: P(fewer than 16 of 20) = 0.3 %


def test_result_is_a_dimension_result_and_serialises():
    result = uncertainty(quadratic(lr_axis()), eps=np.logspace(-1, -2.5, 4), samples=2**14, target=100)
    assert isinstance(result, DimensionResult)
    assert result.method == "uncertainty"
    assert all(p % ROW == 0 for p in result.pairs)
    row = json.loads(json.dumps(result.to_dict()))
    assert row["pairs"] == list(result.pairs) and row["axis"] == "lr"


def test_same_seed_same_result_on_any_scheduler():
    def run(seed):
        return uncertainty(quadratic(lr_axis()), eps=np.logspace(-1, -2.5, 4), samples=2**14, target=100,
                           seed=seed, precision="fast")

    threaded = run(3)
    with dask.config.set(scheduler="synchronous"):
        assert run(3) == threaded
    assert run(4).counts != threaded.counts


def test_lazy_dataset_and_preset_name_are_the_same_source():
    ds = fs.open_config("liu-multiplicative")
    kwargs = dict(eps=np.logspace(-2, -4, 3), samples=2**12, target=50, precision="fast")
    assert uncertainty(ds, **kwargs) == uncertainty("liu-multiplicative", **kwargs)


def test_liu_multiplicative_dimension_with_a_modest_budget():
    result = uncertainty("liu-multiplicative", samples=2**18, target=300, precision="fast")
    assert result.dimension == pytest.approx(LIU_DIMENSION, abs=0.05)
    low, high = result.interval
    assert low < result.dimension < high and high - low < 0.05
    assert result.fit_range[0] < 1e-11  # the default eps reach 1e4 ulps of lr = 1.5


@pytest.mark.slow
def test_liu_multiplicative_dimension_libm():
    result = uncertainty("liu-multiplicative", samples=2**20, target=1000)
    assert result.dimension == pytest.approx(LIU_DIMENSION, abs=0.03)


GOOD = quadratic(lr_axis())


@pytest.mark.parametrize(
    "source, kwargs, message",
    [
        (GOOD, {"samples": 100}, "samples must be an integer >= 4096, got 100"),
        (GOOD, {"samples": 2.0**20}, "samples must be an integer"),
        (GOOD, {"target": 5}, "target must be an integer >= 20, got 5"),
        (GOOD, {"eps": [1e-2, 1e-3]}, "at least 3 sizes"),
        (GOOD, {"eps": [1e-2, 1e-3, float("nan")]}, "distinct finite numbers"),
        (GOOD, {"eps": [1e-2, 1e-3, 1e-3]}, "distinct finite numbers"),
        (GOOD, {"eps": [1e-2, 1e-3, 1e-15]}, "eps = 1e-15 is outside"),
        (GOOD, {"eps": [0.9, 1e-2, 1e-3]}, "eps = 0.9 is outside"),
        (GOOD, {"eps": "small"}, "eps must"),
        (GOOD, {"axis": "x0"}, "axis must be one of the window's axes ['lr']"),
        (GOOD, {"axis": 1}, "axis must be one of"),
        (GOOD, {"precision": "exact"}, "precision"),
        (quadratic(lr_axis(1.0, 1.0 + 1e-9)), {}, "too narrow for the uncertainty exponent"),
        (quadratic(lr_axis(0.1, 0.9)), {"eps": [1e-2, 1e-3, 1e-4]}, "points converged: the map has no boundary"),
        (quadratic(lr_axis(1.1, 1.5)), {"eps": [1e-2, 1e-3, 1e-4]}, "points diverged: the map has no boundary"),
        (GOOD, {"eps": [1e-6, 1e-7, 1e-8], "samples": 2**12}, "only 0 of the 3 eps values"),
        (GOOD, {"eps": [0.4, 0.3, 0.2]}, "only 0 of the 3 eps values"),
        (42, {}, "a config must be a table"),
    ],
)
def test_bad_input_is_refused_with_one_line(source, kwargs, message):
    with pytest.raises(fs.ConfigError) as info:
        uncertainty(source, **kwargs)
    text = str(info.value)
    assert "\n" not in text
    assert message in text, text


def test_a_map_variable_is_refused_for_its_dataset():
    with pytest.raises(fs.ConfigError, match="pass the map's Dataset, not its variable 'diverged'"):
        uncertainty(fs.open_config("liu-multiplicative").diverged)


def test_three_axes_are_refused():
    cfg = {"landscape": {"name": "cosine-multiplicative", "delta": 0.2, "wavelength": 0.1},
           "descent": {"steps": 10},
           "axis": [lr_axis(), {"name": "x0", "start": 0.5, "stop": 2, "num": 3},
                    {"name": "delta", "start": 0.1, "stop": 0.3, "num": 3}]}
    with pytest.raises(fs.ConfigError, match=r"needs a 1-D or 2-D window, the config has 3 axes \(lr, x0, delta\)"):
        uncertainty(cfg)


def test_eps_floor_is_min_ulps_of_the_largest_coordinate():
    floor = MIN_ULPS * np.spacing(1.5)
    with pytest.raises(fs.ConfigError, match="only 2 of the 3 eps values"):  # accepted, too few pairs there
        uncertainty(quadratic(lr_axis()), eps=[1e-1, 1e-2, floor], samples=2**12, target=20, precision="fast")
    with pytest.raises(fs.ConfigError, match="is outside"):
        uncertainty(quadratic(lr_axis()), eps=[1e-1, 1e-2, floor * 0.99], samples=2**12, precision="fast")
