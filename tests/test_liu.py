"""Liu 2024's numbers, measured end to end: GD kernels, then the dyadic dimension."""

import math

import pytest

import fractalscape as fs


def _lr_map(land, num, lo=0.0, hi=1.5, steps=1000):
    grid = fs.Grid([fs.Axis("lr", lo, hi, num, chunk=min(num, 2**15))])
    return fs.trainability(land, grid, x0=1.0, steps=steps, threshold=1e8)


def test_quadratic_has_one_boundary_point_and_dimension_zero():
    # x^2 diverges exactly for lr > 1: one class change, seen once at every dyadic level.
    ds = _lr_map(fs.landscape("quadratic"), 2**14 + 1, 0.0, 2.0, steps=3000)
    result = fs.dimension(ds.diverged, "dyadic")
    assert result.counts == (1,) * 15
    assert result.dimension == 0.0


@pytest.mark.slow
def test_liu_multiplicative_dimension_at_2_to_the_20():
    # Liu reports ~0.83 at 2^20 + 1 learning rates (0.837 +- 0.004 at 2^32 + 1).
    ds = fs.open_config("liu-multiplicative")
    result = fs.dimension(ds.diverged, "dyadic")
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
