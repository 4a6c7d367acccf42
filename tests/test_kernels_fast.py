"""The fast kernel path: polynomial sin/cos, lock-step lanes, exact cycle exit."""

import math

import dask
import numpy as np
import pytest
from numba import njit

import fractalscape as fs
from fractalscape.gd import model_kernel, run_block
from fractalscape.trig import FAST

ADDITIVE = fs.landscape("cosine-additive", delta=0.2, wavelength=0.1)


@njit
def _fast_sincos(x):
    s = np.empty_like(x)
    c = np.empty_like(x)
    for j in range(x.shape[0]):
        s[j] = FAST.sin(x[j])
        c[j] = FAST.cos(x[j])
    return s, c


def _ulps(got, want):
    return np.abs(got - want) / np.spacing(np.abs(want))


@pytest.mark.parametrize("scale", [1.0, 10.0, 1e3, 1e5, 2.0**20 * math.pi / 2])
def test_fast_sin_cos_within_2_ulp_of_libm(scale):
    x = np.random.default_rng(int(scale)).uniform(-scale, scale, 200_000)
    s, c = _fast_sincos(x)
    assert _ulps(s, np.sin(x)).max() <= 2
    assert _ulps(c, np.cos(x)).max() <= 2


@njit
def _fast_pair(x):
    s = np.empty_like(x)
    c = np.empty_like(x)
    for j in range(x.shape[0]):
        s[j], c[j] = FAST.sincos(x[j])
    return s, c


def test_fast_trig_against_the_exact_values():
    # docs/speed.md and trig.py: sincos and cos within 1 ulp of the exact value (faithful), sin alone
    # within 2 ulp, beyond 1 ulp for a few in 10,000 arguments. Exact: 130-bit mpmath, rounded.
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 130
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-scale, scale, 2_000) for scale in (0.1, 1.6, 4.0, 100.0, 1e4, 1e6)])
    exact_sin = np.array([float(mpmath.sin(mpmath.mpf(v))) for v in x])
    exact_cos = np.array([float(mpmath.cos(mpmath.mpf(v))) for v in x])
    pair_sin, pair_cos = _fast_pair(x)
    alone_sin, alone_cos = _fast_sincos(x)
    assert _ulps(pair_sin, exact_sin).max() <= 1 and _ulps(pair_cos, exact_cos).max() <= 1
    np.testing.assert_array_equal(alone_cos, pair_cos)
    err = _ulps(alone_sin, exact_sin)
    assert err.max() <= 2 and np.mean(err > 1) < 2e-3


def test_fast_sin_cos_beyond_the_exact_range_err_like_the_argument():
    # Up to 2**50 the error is about the rounding error the argument carries.
    x = np.random.default_rng(1).uniform(2.0**21, 2.0**50, 100_000) * np.random.default_rng(2).choice([-1, 1], 100_000)
    s, c = _fast_sincos(x)
    assert np.all(np.abs(s - np.sin(x)) <= np.abs(x) * 2.0**-51)
    assert np.all(np.abs(c - np.cos(x)) <= np.abs(x) * 2.0**-51)


def test_fast_sin_cos_nan_inf_and_huge_give_nan():
    x = np.array([np.nan, np.inf, -np.inf, 2.0**50, -1e300, np.finfo(float).max])
    s, c = _fast_sincos(x)
    assert np.isnan(s).all() and np.isnan(c).all()
    s, c = _fast_sincos(np.array([0.0, -0.0, 1e-300]))
    assert s.tolist() == [0.0, -0.0, 1e-300] and math.copysign(1, s[1]) == -1
    assert c.tolist() == [1.0, 1.0, 1.0]


def _run(land, names, coords, *, x0=1.0, lr=None, steps=1000, precision="fast", detect_cycles=True):
    return run_block(
        land, {"x0": [x0] * land.dim, "lr": None if lr is None else [lr] * land.dim}, list(zip(names, coords)),
        steps=steps, threshold=1e8, precision=precision, detect_cycles=detect_cycles,
    )


def test_non_finite_states_diverge_in_both_paths():
    lr = np.array([0.1, 1e300, 1e200, 3.0])
    for precision in ("libm", "fast"):
        out = _run(ADDITIVE, ["lr"], [lr], precision=precision)
        assert out["escape_step"].tolist()[0] == -1
        assert (out["escape_step"][1:] >= 1).all()
        assert not (out["final_loss"][1:] <= 1e8).any()


def test_fast_labels_equal_libm_on_non_chaotic_landscapes():
    lr = np.linspace(0.0, 1.5, 4097)
    for land in (fs.landscape("quadratic"), fs.landscape("cosine-additive", delta=0.001, wavelength=1.0)):
        fast = _run(land, ["lr"], [lr])
        libm = _run(land, ["lr"], [lr], precision="libm")
        np.testing.assert_array_equal(fast["escape_step"], libm["escape_step"])
        np.testing.assert_allclose(fast["final_loss"], libm["final_loss"], rtol=1e-12, atol=1e-300)


def test_fast_labels_differ_from_libm_only_in_the_chaotic_band():
    # Liu's additive landscape, roughness 20: a 1-ulp difference in sin/cos, or
    # in the order of operations (libm follows Liu's code, fast its own), grows
    # by the orbit's Lyapunov factor, so a point in the chaotic band may
    # escape at another step or, rarely, not at all. On the 2**20 + 1 preset
    # 0.04 % of `diverged` and 15.6 % of `escape_step` values differ
    # (docs/speed.md); allow 10x and 1.6x that here. Where GD contracts
    # (lr < 0.1) nothing may differ; where every point escapes (lr > 1.05)
    # the escape step may move, the label may not.
    lr = np.linspace(0.0, 1.5, 8193)
    fast = _run(ADDITIVE, ["lr"], [lr])["escape_step"]
    libm = _run(ADDITIVE, ["lr"], [lr], precision="libm")["escape_step"]
    label_differs = (fast >= 0) != (libm >= 0)
    assert label_differs.mean() <= 0.004
    assert (fast != libm).mean() <= 0.25
    assert not (fast != libm)[lr < 0.1].any()
    assert not label_differs[(lr < 0.1) | (lr > 1.05)].any()


CYCLE_CASES = [
    pytest.param(ADDITIVE, ["lr"], [np.linspace(0.0, 1.5, 1537)], {}, id="additive"),
    pytest.param(
        fs.landscape("cosine-multiplicative", delta=0.2, wavelength=0.1), ["lr"], [np.linspace(0.0, 1.5, 1537)], {},
        id="multiplicative",
    ),
    pytest.param(
        fs.landscape("cosine-additive", dim=2, delta=0.2, wavelength=0.1), ["lr_0", "lr_1"],
        [np.linspace(0.0, 1.2, 37), np.linspace(0.0, 1.2, 29)], {}, id="additive-2d",
    ),
    pytest.param(fs.landscape("quadratic"), ["lr"], [np.linspace(0.0, 1.5, 301)], {"steps": 3001}, id="quadratic"),
]


@pytest.mark.parametrize("precision", ["libm", "fast"])
@pytest.mark.parametrize(("land", "names", "coords", "kw"), CYCLE_CASES)
def test_cycle_exit_is_bit_identical_to_running_every_step(land, names, coords, kw, precision):
    early = _run(land, names, coords, precision=precision, **kw)
    every = _run(land, names, coords, precision=precision, detect_cycles=False, **kw)
    np.testing.assert_array_equal(early["escape_step"], every["escape_step"])
    assert early["final_loss"].tobytes() == every["final_loss"].tobytes()


@pytest.mark.parametrize(
    "land",
    [
        fs.landscape("quadratic"),
        ADDITIVE,
        fs.landscape("cosine-multiplicative", delta=0.2, wavelength=0.1),
        fs.landscape("cosine-additive", dim=2, delta=0.2, wavelength=0.1),
        fs.landscape("cosine-multiplicative", dim=3, delta=0.1, wavelength=0.3),
        fs.landscape("cosine-multi", deltas=[0.2, 0.05], wavelengths=[0.1, 0.37]),
    ],
    ids=repr,
)
def test_fast_lane_loop_is_vectorized(land):
    # A branch left in the lane loop (an `if`, `or` or ternary in numba's IR)
    # or a coordinate loop LLVM cannot unroll in time keeps the kernel scalar,
    # 6x slower for dim=2; only the lane loop can produce a vector body.
    _run(land, ["lr"], [np.linspace(0.0, 1.5, 65)], steps=10)
    assert "vector.body" in "".join(model_kernel(land, "fast", disk_cache=False).compiled.inspect_llvm().values())


def test_cycle_exit_final_loss_follows_the_cycle_phase():
    # lr = 1 on x^2 flips x <-> -x, a 2-cycle; lr = 0 is a fixed point. An odd
    # loss would expose a wrong phase; x^2 cannot, so use both step parities.
    for steps in (999, 1000):
        out = _run(fs.landscape("quadratic"), ["lr"], [np.array([0.0, 1.0])], x0=0.75, steps=steps)
        assert out["escape_step"].tolist() == [-1, -1]
        assert out["final_loss"].tolist() == [0.5625, 0.5625]


def _fast_map(chunks):
    grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 301, chunk=chunks[0]), fs.Axis("x0", -1.5, 1.5, 17, chunk=chunks[1])])
    return fs.trainability(ADDITIVE, grid, steps=300, precision="fast")


def test_fast_dask_odd_chunks_equal_one_block():
    whole = _fast_map((301, 17)).compute(scheduler="sync")
    odd = _fast_map((37, 5)).compute(scheduler="sync")
    np.testing.assert_array_equal(odd.escape_step.values, whole.escape_step.values)
    assert odd.final_loss.values.tobytes() == whole.final_loss.values.tobytes()


def test_fast_runs_under_the_threaded_scheduler():
    sync = _fast_map((37, 5)).compute(scheduler="sync")
    with dask.config.set(scheduler="threads", num_workers=2):
        threaded = _fast_map((37, 5)).compute()
    np.testing.assert_array_equal(threaded.escape_step.values, sync.escape_step.values)
    assert threaded.attrs["precision"] == "fast"


def test_fma_rounds_once():
    # (1 + e)(1 - e) - 1 = -e**2 exactly; a separate multiply would round the product to 1.
    from fractalscape.trig import _fma

    e = 2.0**-30
    assert njit(lambda a, b, c: _fma(a, b, c))(1 + e, 1 - e, -1.0) == -(e**2)
