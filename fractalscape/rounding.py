"""How far rounding moves a dimension: its estimate over a cheap rounding ensemble, as an interval.

A trainability boundary is found by iterating a chaotic map, so a change of
one ulp in a coordinate flips labels near it, and a box-count or dyadic
estimate moves with them, often by more than its least-squares error
(Liu's additive landscape at 2**18 + 1 points: 0.74 to 1.10 over shifts of
-2 .. 2 ulp, each with a fit error near 0.08). :func:`rounding_interval`
recomputes the map with every swept coordinate moved ``k`` ulp for
``k = -shifts .. shifts`` (the map itself is ``k = 0``), estimates the
dimension of each member, and combines both sources of error in one 95 %
interval, a prediction interval for the estimate of a run of this map with
other roundings (another precision, another machine's libm, another order
of operations)::

    centre = mean(D_k)
    half   = t(0.975, m - 1) * sqrt(s**2 * (1 + 1/m) + mean(stderr_k**2))

with ``m`` the members, ``s`` their sample standard deviation and ``t``
Student's quantile. Cost: ``2 * shifts`` more maps of the same points.
"""

from __future__ import annotations

import math

import dask
import numpy as np
import xarray as xr

from fractalscape.dimension import DimensionResult, default_method, dimension
from fractalscape.errors import ConfigError

#: Student's t quantiles t(0.975, dof), dof = 1 .. 10.
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)


def _shifted_maps(ds: xr.Dataset, shifts: int) -> list[xr.DataArray]:
    """``diverged`` of the map's configuration with every swept coordinate moved k ulp, k = +-1 .. +-shifts."""
    from fractalscape.config import config_of, load_config

    raw = config_of(ds)
    if len(raw["axis"]) > 2:
        raise ConfigError("a rounding interval is measured on 1-D and 2-D maps; this one has 3 axes")
    if any(a.get("ensemble") for a in raw["axis"]):
        raise ConfigError("a rounding interval is for plain maps: this map already is an ensemble "
                          "(its p_low/p_high say how its labels vary)")
    # two ensembles, k < 0 and k > 0 (integer axes, so k = +-1 alone is the axis -1 .. 1 of 2 points)
    spans = [(-1, 1, 2)] if shifts == 1 else [(-shifts, -1, shifts), (1, shifts, shifts)]
    maps = []
    for start, stop, num in spans:
        members = {"name": "ulp", "start": start, "stop": stop, "num": num, "ensemble": True}
        shifted = load_config({**raw, "axis": [*raw["axis"], members]}).dataset().diverged
        maps += [shifted.isel(ulp=i) for i in range(num)]
    return maps


def rounding_interval(ds: xr.Dataset, method: str = "auto", *, shifts: int = 2, fit_range=None) -> DimensionResult:
    """The boundary dimension of a map with a 95 % interval over rounding (module docstring).

    Parameters
    ----------
    ds : xarray.Dataset
        A trainability map (lazy from :func:`fractalscape.trainability`, or
        stored): its ``attrs["config"]`` rebuilds the shifted maps.
    method : {"auto", "dyadic", "boxcount", "median-slope"}
        The estimator (``"auto"``: :func:`fractalscape.dimension.default_method`).
    shifts : int
        Members ``k = -shifts .. shifts`` ulp, at least 1.
    fit_range : tuple, optional
        As for :func:`fractalscape.dimension`.

    Returns
    -------
    DimensionResult
        The map's own estimate, its counts and fit, with ``interval`` set
        (None when fewer than two members could be measured).

    Examples
    --------
    >>> import fractalscape as fs
    >>> ds = fs.trainability(fs.landscape("quadratic"), fs.Grid([fs.Axis("lr", 0.0, 2.0, 1025)]), steps=2000)
    >>> result = rounding_interval(ds, shifts=1)
    >>> result.dimension, result.interval
    (0.0, (0.0, 0.0))
    """
    if isinstance(shifts, bool) or not isinstance(shifts, int) or not 1 <= shifts <= 5:
        raise ConfigError(f"shifts must be an integer from 1 to 5 (ulp each way), got {shifts!r}")
    if method == "auto":
        method = default_method(ds.diverged)
    labels = [ds.diverged, *_shifted_maps(ds, shifts)]
    computed = dask.compute(*[lab.data for lab in labels])
    results = []
    for array in computed:
        try:
            results.append(dimension(np.asarray(array), method, fit_range=fit_range))
        except ConfigError:
            results.append(None)
    own = results[0]
    if own is None:
        return dimension(computed[0], method, fit_range=fit_range)  # raises its error
    measured = [r for r in results if r is not None]
    interval = None
    if len(measured) >= 2:
        values = np.array([r.dimension for r in measured])
        errors = np.array([0.0 if math.isnan(r.stderr) else r.stderr for r in measured])
        m = len(values)
        spread = values.std(ddof=1)
        half = T975[m - 2] * math.sqrt(spread**2 * (1 + 1 / m) + np.mean(errors**2))
        interval = (float(values.mean() - half), float(values.mean() + half))
    return DimensionResult(own.method, own.dimension, own.stderr, own.sizes, own.counts, own.fit_range,
                           own.slopes, interval)
