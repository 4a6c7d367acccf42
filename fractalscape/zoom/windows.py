"""The windows of a zoom: each keyframe halves both axes' widths about a fixed centre.

Keyframe ``i`` of a zoom into ``center`` is the config's window scaled by
``2**-i`` about the centre, in each axis' own scale (log10 for log axes)::

    start_i = c + (start_0 - c) * 2**-i        stop_i = c + (stop_0 - c) * 2**-i

so every window holds the centre at the same place on screen (the fixed
point of the zoom), the windows are nested, and keyframe 0 is the config's
window itself. Windows stop where the float64 grid runs out: a pixel spacing
below :data:`ULP_FLOOR` ulp of the coordinates would label rounding noise.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from fractalscape.errors import ConfigError, check_finite

#: Least pixel spacing, in ulp of the window's coordinates (and of their log10 on log axes).
ULP_FLOOR = 8
#: Largest keyframe side in pixels.
MAX_SIDE = 8192
#: Halvings tried when looking for the deepest zoom (float64 has 1074 binades below 1).
MAX_HALVINGS = 1100


def halvings(depth: float) -> int:
    """Number of keyframe halvings for a zoom of ``depth`` decades, ``ceil(depth * log2(10))``.

    Examples
    --------
    >>> halvings(3), halvings(1), halvings(0.3)
    (10, 4, 1)
    """
    return math.ceil(depth * math.log2(10))


def _to_u(value: float, scale: str) -> float:
    return math.log10(value) if scale == "log" else value


def _from_u(value: float, scale: str) -> float:
    return 10.0**value if scale == "log" else value


def axis_window(axis: dict, center: float, level: int) -> tuple[float, float]:
    """``(start, stop)`` of ``axis`` (a config ``[[axis]]`` table) at keyframe ``level``, in its units.

    Examples
    --------
    >>> axis_window({"start": 0.0, "stop": 2.0, "scale": "linear"}, 0.5, 1)
    (0.25, 1.25)
    >>> axis_window({"start": 1e-2, "stop": 1e2, "scale": "log"}, 1.0, 2)
    (0.31622776601683794, 3.1622776601683795)
    """
    if level == 0:
        return float(axis["start"]), float(axis["stop"])
    scale = axis.get("scale", "linear")
    c = _to_u(center, scale)
    factor = 2.0**-level
    lo = c + (_to_u(axis["start"], scale) - c) * factor
    hi = c + (_to_u(axis["stop"], scale) - c) * factor
    return _from_u(lo, scale), _from_u(hi, scale)


def _resolved(axis: dict, center: float, level: int, num: int) -> tuple[bool, float, float]:
    """Whether keyframe ``level`` of ``axis`` has its pixels ``ULP_FLOOR`` ulp apart, with (spacing, floor)."""
    scale = axis.get("scale", "linear")
    start, stop = axis_window(axis, center, level)
    checks = []
    if scale == "log":
        lo, hi = math.log10(start), math.log10(stop)
        du = abs(hi - lo) / (num - 1)
        checks.append((du, ULP_FLOOR * float(np.spacing(max(abs(lo), abs(hi))))))
        # neighbouring values differ by about value * ln(10) * du
        low, high = sorted((start, stop))
        checks.append((low * math.log(10) * du, ULP_FLOOR * float(np.spacing(high))))
    else:
        checks.append((abs(stop - start) / (num - 1), ULP_FLOOR * float(np.spacing(max(abs(start), abs(stop))))))
    spacing, floor = min(checks, key=lambda sf: sf[0] / sf[1] if sf[1] else math.inf)
    ok = all(s >= f for s, f in checks) and start != stop and math.isfinite(start) and math.isfinite(stop)
    return ok, spacing, floor


def deepest_halvings(axes: list[dict], center, size) -> int:
    """The most halvings for which every axis keeps its pixels :data:`ULP_FLOOR` ulp apart.

    Examples
    --------
    >>> deepest_halvings([{"start": 0.0, "stop": 1.5}, {"start": -2.0, "stop": 2.0}], (0.75, 1.0), (256, 256))
    42
    """
    deepest = MAX_HALVINGS
    for axis, c, num in zip(axes, center, size):
        level = 0
        while level < deepest and _resolved(axis, c, level + 1, num)[0]:
            level += 1
        deepest = level
    return deepest


#: Keyframe points of a 1-D zoom when no size is given: 2**12 + 1, so Liu's dyadic count applies.
DEFAULT_POINTS_1D = 2**12 + 1
#: Keyframe pixels of a 2-D zoom when no size is given.
DEFAULT_SIZE_2D = (256, 256)
#: Most points of a 1-D keyframe.
MAX_POINTS_1D = 2**24 + 1


def _numbers(what: str, value, count: int, names) -> tuple:
    """``value`` as a tuple of ``count`` entries (a bare number for one axis)."""
    if count == 1 and isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != count:
        per = f"two numbers (one per axis: {', '.join(names)})" if count > 1 else f"one number (axis {names[0]!r})"
        raise ConfigError(f"{what} must be {per}, got {value!r}")
    return tuple(value)


def check_zoom(raw: dict, grid, center, depth, size, frames_per_doubling) -> tuple[tuple, tuple, int]:
    """Refuse a zoom that cannot be computed, before computing anything; returns (center, size, halvings).

    A 1-D config zooms its one axis (Liu's strips); a 2-D config both axes.
    """
    names = grid.names
    if len(names) not in (1, 2) or grid.ensemble_names:
        raise ConfigError(
            f"zoom takes a config with one or two swept axes, this one has {', '.join(names)}"
            f"{' (ensemble: ' + ', '.join(grid.ensemble_names) + ')' if grid.ensemble_names else ''}; "
            "remove the others or fix them with --set"
        )
    ndim = len(names)
    if center is None:
        center = window_centre(raw["axis"])
    center = _numbers("center", center, ndim, names)
    center = tuple(check_finite(f"center on axis {n!r}", c) for n, c in zip(names, center))
    for name, c, axis in zip(names, center, raw["axis"]):
        low, high = sorted((float(axis["start"]), float(axis["stop"])))
        if not low <= c <= high:
            raise ConfigError(f"center {c} lies outside axis {name!r} ({low} .. {high}); pick a centre inside it")
    if size is None:
        size = (DEFAULT_POINTS_1D,) if ndim == 1 else DEFAULT_SIZE_2D
    if ndim == 1:
        size = _numbers("size", size, 1, names)
    elif isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2:
        raise ConfigError(f"size must be two pixel counts (width along {names[0]!r}, height along {names[1]!r}), "
                          f"got {size!r}")
    most = MAX_POINTS_1D if ndim == 1 else MAX_SIDE
    for side in size:
        if isinstance(side, bool) or not isinstance(side, (int, np.integer)) or not 2 <= side <= most:
            unit = "points" if ndim == 1 else "pixels"
            raise ConfigError(f"size {tuple(size)!r}: each side must be an integer from 2 to {most} {unit}, "
                              f"got {side!r}")
    size = tuple(int(s) for s in size)
    depth = check_finite("depth", depth)
    if depth <= 0:
        raise ConfigError(f"depth must be > 0 decades of zoom, got {depth}; e.g. depth=3 zooms 1000x")
    if isinstance(frames_per_doubling, bool) or not isinstance(frames_per_doubling, (int, np.integer)) \
            or frames_per_doubling < 0:
        raise ConfigError(f"frames_per_doubling must be an integer >= 0, got {frames_per_doubling!r}")
    n = halvings(depth)
    deepest = deepest_halvings(raw["axis"], center, size)
    if n > deepest:
        bad = next(k for k, (a, c, s) in enumerate(zip(raw["axis"], center, size))
                   if not _resolved(a, c, deepest + 1, s)[0])
        _, spacing, floor = _resolved(raw["axis"][bad], center[bad], n, size[bad]) if n <= MAX_HALVINGS \
            else (False, 0.0, 0.0)
        most = math.floor(deepest / math.log2(10) * 100) / 100
        raise ConfigError(
            f"depth {depth} decades ({n} halvings) is past the float64 floor on axis {names[bad]!r}: its pixel "
            f"spacing ({spacing:.3g}) falls below {ULP_FLOOR} ulp of the coordinates ({floor:.3g}); the deepest "
            f"zoom at center {center} and size {size} is depth={most} decades"
        )
    return center, size, n


def keyframe_config(raw: dict, center, size, level: int) -> dict:
    """The config of keyframe ``level``: both axes' start/stop/num replaced, everything else kept.

    Examples
    --------
    >>> raw = {"axis": [{"name": "lr", "start": 0.0, "stop": 2.0, "num": 9, "chunk": 4},
    ...                 {"name": "x0", "start": -1.0, "stop": 1.0, "num": 9}]}
    >>> [(a["start"], a["stop"], a["num"]) for a in keyframe_config(raw, (1.0, 0.0), (5, 3), 1)["axis"]]
    [(0.5, 1.5, 5), (-0.5, 0.5, 3)]
    """
    raw = copy.deepcopy(raw)
    for axis, c, num in zip(raw["axis"], center, size):
        axis["start"], axis["stop"] = axis_window(axis, c, level)
        axis["num"] = num
        if axis.get("chunk", 0) > num:
            del axis["chunk"]
    return raw


def window_centre(axes: list[dict]) -> tuple[float, ...]:
    """The centre of a window in each axis' scale (log axes: the geometric mean).

    Examples
    --------
    >>> window_centre([{"start": 0.0, "stop": 2.0}, {"start": 1.0, "stop": 100.0, "scale": "log"}])
    (1.0, 10.0)
    """
    return tuple(_from_u((_to_u(a["start"], a.get("scale", "linear")) + _to_u(a["stop"], a.get("scale", "linear")))
                         / 2, a.get("scale", "linear")) for a in axes)


def widened(raw: dict, center, depth: float) -> tuple[dict, tuple[float, float]]:
    """The config whose window, zoomed ``depth`` decades into ``center``, ends at ``raw``'s window.

    ``center`` defaults to the window's centre in each axis' scale. Widening
    in a linear axis may cross zero (a learning rate below 0): zoom out of
    a log axis (``--set axis.0.scale='log'``) to stay positive.

    Examples
    --------
    >>> raw = {"axis": [{"name": "lr", "start": 1.0, "stop": 1.5}, {"name": "x0", "start": 2.0, "stop": 4.0}]}
    >>> wide, center = widened(raw, None, 0.3)
    >>> center, [(a["start"], a["stop"]) for a in wide["axis"]]
    ((1.25, 3.0), [(0.75, 1.75), (1.0, 5.0)])
    """
    if isinstance(depth, bool) or not isinstance(depth, (int, float)) or not math.isfinite(depth) or depth <= 0:
        raise ConfigError(f"depth must be > 0 decades of zoom, got {depth!r}; e.g. depth=6 as in his protocol")
    axes = raw["axis"]
    if center is None:
        center = window_centre(axes)
    wide = copy.deepcopy(raw)
    n = halvings(depth)
    for axis, c in zip(wide["axis"], center):
        axis["start"], axis["stop"] = axis_window(axis, c, -n)
    return wide, tuple(center)
