"""Liu 2024's numbers, measured end to end: GD kernels, then the dyadic dimension."""

import math

import numpy as np
import pytest

import fractalscape as fs
from reference import gradient_descent

#: Liu's published dyadic boundary counts of the multiplicative landscape
#: (delta 0.2, wavelength 0.1, x0 1, 1000 steps, threshold 1e8, lr in [0, 1.5]),
#: levels 0..10: ``numB`` of ``exp-0-numB.mat`` in liuyz0/FractalBoundary
#: (written by ``exp-0-analyze.py`` from the labels of ``exp-0.jl``).
LIU_MULTIPLICATIVE_COUNTS = (1, 1, 1, 1, 3, 5, 7, 13, 21, 27, 57)


def _lr_map(land, num, lo=0.0, hi=1.5, steps=1000):
    grid = fs.Grid([fs.Axis("lr", lo, hi, num, chunk=min(num, 2**15))])
    return fs.trainability(land, grid, x0=1.0, steps=steps, threshold=1e8)


def test_quadratic_has_one_boundary_point_and_dimension_zero():
    # x^2 diverges exactly for lr > 1: one class change, seen once at every dyadic level.
    ds = _lr_map(fs.landscape("quadratic"), 2**14 + 1, 0.0, 2.0, steps=3000)
    result = fs.dimension(ds.diverged, "dyadic")
    assert result.counts == (1,) * 15
    assert result.dimension == 0.0


@pytest.fixture(scope="module")
def liu_multiplicative():
    return fs.open_config("liu-multiplicative").compute()


def test_libm_reproduces_liu_published_counts(liu_multiplicative):
    # 2^20 + 1 learning rates: levels k <= 20 sample it at stride 2^(20 - k), the
    # same learning rates as Liu's 2^k + 1 grids (all exact in binary).
    counts = fs.dimension(liu_multiplicative.diverged, "dyadic").counts
    assert counts[: len(LIU_MULTIPLICATIVE_COUNTS)] == LIU_MULTIPLICATIVE_COUNTS


def test_libm_levels_to_14_are_the_paper_order_numpy_loop(liu_multiplicative):
    # Levels past the published ones: the plain NumPy GD in Liu's operation order
    # (tests/reference.py) on the 2^14 + 1 learning rates of level 14.
    lr = liu_multiplicative.lr.values[:: 2**6]
    escape, _ = gradient_descent("cosine-multiplicative", {"delta": 0.2, "wavelength": 0.1}, lr[None, :],
                                 np.ones((1, lr.size)), 1000, 1e8)
    np.testing.assert_array_equal(liu_multiplicative.diverged.values[:: 2**6], escape >= 0)
    reference = fs.dimension(escape >= 0, "dyadic").counts
    assert fs.dimension(liu_multiplicative.diverged, "dyadic").counts[:15] == reference


def test_fast_order_is_not_the_paper_order(liu_multiplicative):
    # The fast path multiplies by k = 2 pi / wavelength: chaotic points label differently.
    fast = fs.open_config({**_liu_mult_config(), "descent": {"x0": 1.0, "steps": 1000, "precision": "fast"}})
    differ = int((fast.diverged.values != liu_multiplicative.diverged.values).sum())
    assert 0 < differ < 0.01 * fast.diverged.size


def _liu_mult_config():
    from fractalscape.config import read_config

    return read_config("liu-multiplicative")


def test_liu_multiplicative_dimension_at_2_to_the_20(liu_multiplicative):
    # Liu reports ~0.83 at 2^20 + 1 learning rates (0.837 +- 0.004 at 2^32 + 1).
    result = fs.dimension(liu_multiplicative.diverged, "dyadic")
    assert result.dimension == pytest.approx(0.83, abs=0.03)
    assert result.stderr < 0.03


CRITICAL_ROUGHNESS = 1 / (2 * math.pi**2)  # ~0.0507: Liu's threshold for the additive loss


@pytest.mark.parametrize("roughness", [0.02, 0.04, 0.1, 0.3])
def test_additive_transition_at_critical_roughness(roughness):
    wavelength = 0.1
    land = fs.landscape("cosine-additive", delta=roughness * wavelength**2, wavelength=wavelength)
    result = fs.dimension(_lr_map(land, 2**16 + 1, 0.5, 1.5).diverged, "dyadic")
    if roughness < CRITICAL_ROUGHNESS:
        assert result.dimension == 0.0 and max(result.counts) == 1
    else:
        assert result.dimension > 0.5
