"""The rounding interval: members against the NumPy reference at shifted coordinates, and fast vs libm."""

import math

import numpy as np
import pytest

import fractalscape as fs
from fractalscape.config import read_config, with_overrides
from fractalscape.rounding import T975, rounding_interval
from reference import gradient_descent


def test_interval_is_the_prediction_interval_of_reference_members():
    # 2^12 + 1 learning rates of Liu's multiplicative landscape, 400 steps: every member
    # recomputed by the NumPy reference at learning rates moved k ulp, k = -2 .. 2.
    ds = fs.trainability(fs.landscape("cosine-multiplicative", delta=0.2, wavelength=0.1),
                         fs.Grid([fs.Axis("lr", 0.0, 1.5, 4097, chunk=1000)]), steps=400)
    result = rounding_interval(ds, "dyadic", shifts=2)
    members = []
    for k in (0, -2, -1, 1, 2):
        lr = ds.lr.values
        for _ in range(abs(k)):
            lr = np.nextafter(lr, math.copysign(np.inf, k))
        escape, _ = gradient_descent("cosine-multiplicative", {"delta": 0.2, "wavelength": 0.1},
                                     lr[None, :], np.ones((1, lr.size)), 400, 1e8)
        members.append(fs.dimension(escape >= 0, "dyadic"))
    values = np.array([m.dimension for m in members])
    assert len(set(values.round(12))) > 1, "rounding should move the estimate"
    half = T975[3] * math.sqrt(values.var(ddof=1) * 1.2 + np.mean([m.stderr**2 for m in members]))
    assert result.dimension == members[0].dimension and result.counts == members[0].counts
    assert result.interval == pytest.approx((values.mean() - half, values.mean() + half), abs=1e-12)


@pytest.mark.slow
def test_fast_and_libm_fall_in_each_others_interval():
    # Liu's additive landscape at 2^18 + 1 points: the two roundings disagree by more than
    # either fit error, and each lies inside the other's rounding interval.
    results = {}
    for precision in ("libm", "fast"):
        raw = with_overrides(read_config("liu-additive"),
                             ["axis.0.num=262145", "axis.0.chunk=16384", f"descent.precision='{precision}'"])
        results[precision] = fs.dimension(fs.open_config(raw), "dyadic", interval=True)
    libm, fast = results["libm"], results["fast"]
    assert abs(libm.dimension - fast.dimension) > 2 * max(libm.stderr, fast.stderr)
    assert libm.interval[0] <= fast.dimension <= libm.interval[1]
    assert fast.interval[0] <= libm.dimension <= fast.interval[1]


def test_quadratic_interval_is_a_point_and_bad_requests_are_refused():
    ds = fs.trainability(fs.landscape("quadratic"), fs.Grid([fs.Axis("lr", 0.0, 2.0, 1025)]), steps=2000)
    assert rounding_interval(ds, shifts=1).interval == (0.0, 0.0)
    with pytest.raises(fs.ConfigError, match="shifts must be an integer from 1 to 5"):
        rounding_interval(ds, shifts=0)
    with pytest.raises(fs.ConfigError, match="needs the map's Dataset"):
        fs.dimension(ds.diverged, "dyadic", interval=True)
    ensemble = fs.trainability(fs.landscape("quadratic"),
                               fs.Grid([fs.Axis("lr", 0.0, 2.0, 65), fs.Axis("x0", 0.5, 1.0, 3, ensemble=True)]))
    with pytest.raises(fs.ConfigError, match="already is an ensemble"):
        rounding_interval(ensemble)
