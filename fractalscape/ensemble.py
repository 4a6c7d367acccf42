"""Ensembles: many runs per map point, and the fraction of them that diverged.

An axis marked ``ensemble`` (``fs.Axis(..., ensemble=True)``, ``ensemble =
true`` in a config) is not a direction of the map but a set of repeats: x0
drawn over an interval, seeds, or rounding. The map keeps every member's
labels and adds, over the remaining axes,

``p_diverged``
    the fraction of members that diverged, ``k / n``;
``p_low``, ``p_high``
    the Wilson score interval at 95 % (Wilson 1927), which stays inside
    [0, 1] and is honest at k = 0 or k = n, where the normal interval is empty;
``n``
    the number of members.

Rounding ensembles sweep an integer axis ``ulp`` (every swept coordinate) or
``<axis>_ulp`` (one axis, e.g. ``lr_ulp``): member ``k`` runs the map with
those coordinates moved ``k`` representable doubles (:func:`shift_ulp`), so
the spread of its labels is the map's sensitivity to rounding.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from fractalscape.errors import ConfigError

#: z of a two-sided 95 % interval.
Z95 = 1.959963984540054
#: The name of an axis that shifts every swept coordinate by k ulp; ``<axis>_ulp`` shifts one.
ULP = "ulp"


def shift_ulp(values, k: int) -> np.ndarray:
    """``values`` moved ``k`` representable doubles up (``k < 0``: down).

    Examples
    --------
    >>> shift_ulp(np.array([1.0, 0.0]), 1) - np.array([1.0, 0.0])
    array([2.22044605e-016, 4.94065646e-324])
    >>> float(shift_ulp(shift_ulp(np.array([0.3]), -2), 2)[0]) == 0.3
    True
    """
    out = np.array(values, dtype=np.float64, copy=True)
    toward = math.inf if k > 0 else -math.inf
    for _ in range(abs(int(k))):
        out = np.nextafter(out, toward)
    return out


def wilson_interval(k, n, z: float = Z95):
    """Wilson score interval ``(low, high)`` of a binomial fraction ``k / n`` (arrays broadcast).

    Examples
    --------
    >>> low, high = wilson_interval(np.array([0, 5, 10]), 10)
    >>> np.round(low, 3).tolist(), np.round(high, 3).tolist()
    ([0.0, 0.237, 0.722], [0.278, 0.763, 1.0])
    """
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # ufuncs, not np.clip: they keep xarray and dask inputs lazy
    return np.maximum(centre - half, 0.0), np.minimum(centre + half, 1.0)


def ulp_targets(names, ensemble_names) -> dict[str, tuple[str, ...]]:
    """For each rounding axis among ``names``, the swept axes whose coordinates it shifts.

    Examples
    --------
    >>> ulp_targets(["lr", "x0", "ulp"], ["ulp"])
    {'ulp': ('lr', 'x0')}
    >>> ulp_targets(["lr", "lr_ulp"], ["lr_ulp"])
    {'lr_ulp': ('lr',)}
    """
    rounding = [n for n in names if n == ULP or n.endswith("_" + ULP)]
    if len(rounding) > 1:
        raise ConfigError(f"axes {rounding[0]!r} and {rounding[1]!r} both shift by ulp: keep one rounding axis")
    out = {}
    for name in rounding:
        swept = [n for n in names if n != name and n not in ensemble_names]
        if name == ULP:
            out[name] = tuple(swept)
            continue
        target = name[: -len(ULP) - 1]
        if target not in names or target in ensemble_names:
            valid = ", ".join(f"{n}_{ULP}" for n in swept) or "none"
            raise ConfigError(
                f"axis {name!r} shifts the coordinates of axis {target!r} by k ulp, but the grid sweeps no "
                f"{target!r}; add that axis, or use one of: {ULP}, {valid}"
            )
        out[name] = (target,)
    return out


def shifted_block(*coords, inner, rounding: int, targets: tuple[int, ...]):
    """``inner`` over the coordinates without axis ``rounding``, once per ulp shift it holds, stacked there.

    ``targets`` are the positions (among all coordinates) of the axes the
    shifts move.
    """
    kept = [c for i, c in enumerate(coords) if i != rounding]
    moved = [i - (i > rounding) for i in targets]
    members = []
    for k in coords[rounding]:
        shifted = [shift_ulp(c, round(k)) if i in moved else c for i, c in enumerate(kept)]
        members.append(inner(*shifted))
    return np.stack(members, axis=rounding)


#: One block of an ensemble's summaries over the other axes.
SUMMARY_DTYPE = np.dtype([("p_diverged", np.float64), ("p_low", np.float64), ("p_high", np.float64),
                          ("n", np.int32)])
DESCRIPTIONS = {
    "p_diverged": "fraction of the ensemble that diverged",
    "p_low": "Wilson 95 % score interval of p_diverged: low end",
    "p_high": "Wilson 95 % score interval of p_diverged: high end",
    "n": "ensemble members per point",
}


def _summaries(block: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """:data:`SUMMARY_DTYPE` of one block of labels over its ensemble ``axes`` (each whole in the block)."""
    n = math.prod(block.shape[a] for a in axes)
    k = block.sum(axis=axes, dtype=np.int64)
    out = np.empty(k.shape, SUMMARY_DTYPE)
    out["p_diverged"] = k / n
    out["p_low"], out["p_high"] = wilson_interval(k, n)
    out["n"] = n
    return out


def ensemble_variables(diverged: xr.DataArray, members: list[str]) -> dict[str, xr.DataArray]:
    """``p_diverged``, ``p_low``, ``p_high`` and ``n`` of a map's labels over its ensemble axes ``members``.

    One task per block computes all four (an ensemble axis is one block).
    """
    import dask.array as da

    axes = tuple(diverged.dims.index(d) for d in members)
    kept = [d for d in diverged.dims if d not in members]
    data = diverged.data
    if isinstance(data, da.Array):
        summary = data.map_blocks(_summaries, axes, drop_axis=axes, dtype=SUMMARY_DTYPE,
                                  meta=np.empty((0,) * len(kept), SUMMARY_DTYPE))
    else:
        summary = _summaries(np.asarray(data), axes)
    coords = {name: c for name, c in diverged.coords.items() if set(c.dims) <= set(kept)}
    return {
        name: xr.DataArray(summary[name], dims=kept, coords=coords,
                           attrs={"description": text, "ensemble": " ".join(members)})
        for name, text in DESCRIPTIONS.items()
    }
