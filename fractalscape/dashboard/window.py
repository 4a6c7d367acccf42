"""The window a dashboard shows: where its points come from, and the config that reproduces it.

A *view* is the plot's visible window, one ``(lo, hi)`` pair per axis in plot
coordinates: an axis' values, or their log10 on a log axis (as
:func:`fractalscape.render.aggregate` draws them). A view is read from the
stored map while the map holds at least one point per screen pixel inside
it; otherwise (zoomed past the stored resolution, outside the stored map, no
store, or other landscape or descent settings) it is recomputed on a new
grid whose axes span the view with one point per pixel.

A recomputed view is loaded in bands of a few rows (:func:`load_in_blocks`),
so a caller can show progress and cancel between two bands: a newer view
replaces the running one within a band's time. Requests are bounded before
anything runs (:func:`check_view_request`): at most :data:`MAX_STEPS` steps
and :data:`MAX_VIEW_POINTS` points per view.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import dask
import numpy as np
import xarray as xr

from fractalscape.config import config_of, load_config
from fractalscape.dimension import DimensionResult, dimension
from fractalscape.errors import ConfigError
from fractalscape.grid import Axis, Grid
from fractalscape.store import open_map
from fractalscape.zoom.windows import ULP_FLOOR, deepest_halvings, halvings

#: A 1-D view shows at most this many stored points per screen pixel.
POINTS_PER_PIXEL_1D = 4
#: Most GD steps per point of a view: 50x the presets' largest (2000), so ``steps = 2**31 - 1`` is refused.
MAX_STEPS = 100_000
#: Most points of a view (plot width x height): a 1920 x 1080 plot fits.
MAX_VIEW_POINTS = 2**21
#: Points per band of a recomputed view: cancelling waits for at most one batch of bands.
BAND_POINTS = 2**13
#: Threads that compute a view's bands (one batch of bands at a time), whatever the number of sessions.
WORKERS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
#: The coarse first picture of a recomputed view has 1/COARSE of its points along each axis.
COARSE = 4


class ViewCancelled(Exception):
    """A view stopped between two bands because a newer one was asked for."""


@dataclass(frozen=True)
class Source:
    """What a dashboard opens: a canonical config, and the stored map if there is one."""

    config: dict
    stored: xr.Dataset | None = None

    @property
    def axes(self) -> tuple[Axis, ...]:
        return tuple(Axis(**a) for a in self.config["axis"])

    @property
    def model_table(self) -> str:
        """The config table of the model: ``"landscape"`` or ``"network"``."""
        return "network" if "network" in self.config else "landscape"

    @property
    def has_score(self) -> bool:
        """Whether maps of this source carry Sohl-Dickstein's ``score`` (networks do)."""
        return self.model_table == "network"


def open_source(target) -> Source:
    """The :class:`Source` of a store directory, a config (dict, TOML path or preset) or a Dataset.

    Examples
    --------
    >>> source = open_source("liu-multiplicative-2d")
    >>> [a.name for a in source.axes], source.stored is None
    (['lr', 'x0'], True)
    """
    if isinstance(target, xr.Dataset):
        source = Source(config_of(target), target)
    elif isinstance(target, (str, Path)) and Path(target).is_dir():
        stored = open_map(target)
        source = Source(config_of(stored), stored)
    else:
        # the provenance trainability() writes: every default filled in
        source = Source(json.loads(load_config(target).dataset().attrs["config"]))
    if len(source.axes) > 2:
        names = [a.name for a in source.axes]
        raise ConfigError(
            f"the dashboard shows 1-D and 2-D maps, this one has axes {names}; "
            "serve a config with one or two of them"
        )
    return source


def to_plot(axis: Axis, value: float) -> float:
    """A parameter value in plot coordinates (log10 on a log axis)."""
    return math.log10(value) if axis.scale == "log" else float(value)


def to_param(axis: Axis, value: float) -> float:
    """A plot coordinate in parameter units (the inverse of :func:`to_plot`)."""
    return 10.0**value if axis.scale == "log" else float(value)


def full_view(axes) -> tuple[tuple[float, float], ...]:
    """The view of the whole of each axis, in plot coordinates.

    Examples
    --------
    >>> full_view([Axis("lr", 1.5, 0.0, 9), Axis("x0", 1e-2, 1e2, 5, scale="log")])
    ((0.0, 1.5), (-2.0, 2.0))
    """
    return tuple(tuple(sorted((to_plot(a, a.start), to_plot(a, a.stop)))) for a in axes)


def view_grid(axes, view, pixels) -> Grid:
    """The grid that recomputes ``view``: the same axes spanning it, one point per pixel.

    Examples
    --------
    >>> axes = [Axis("lr", 0.0, 1.5, 1024), Axis("x0", -2.0, 2.0, 1024)]
    >>> view_grid(axes, [(0.5, 0.75), (0.0, 0.1)], (200, 150))
    Grid([Axis('lr', 0.5 .. 0.75, num=200, linear), Axis('x0', 0.0 .. 0.1, num=150, linear)])  # 200 x 150 = 30,000 points
    """
    return Grid([Axis(a.name, to_param(a, lo), to_param(a, hi), int(n), a.scale)
                 for a, (lo, hi), n in zip(axes, view, pixels)])


def window_config(config: dict, view, num) -> dict:
    """``config`` with its axes replaced by the view's window, ``num`` points each.

    The result is what ``fractalscape map`` takes (write it with ``tomli_w``):
    a view found on screen becomes a full-resolution run.

    Examples
    --------
    >>> import fractalscape as fs
    >>> config = open_source("liu-multiplicative-2d").config
    >>> window = window_config(config, [(0.5, 0.75), (0.0, 0.1)], (4097, 2049))
    >>> fs.load_config(window).grid
    Grid([Axis('lr', 0.5 .. 0.75, num=4097, linear), Axis('x0', 0.0 .. 0.1, num=2049, linear)])  # 4097 x 2049 = 8,394,753 points
    """
    window = copy.deepcopy(config)
    window["axis"] = [axis.to_dict() for axis in view_grid(
        [Axis(**a) for a in config["axis"]], view, num).axes]
    return window


def export_num(axes, pixels, along_first: int) -> tuple[int, ...]:
    """Points per axis of an exported window: ``along_first`` on the first axis, the screen's aspect after.

    Examples
    --------
    >>> export_num([Axis("lr", 0.0, 1.0, 9), Axis("x0", 0.0, 1.0, 9)], (200, 150), 4096)
    (4096, 3072)
    """
    return tuple(max(2, round(along_first * n / pixels[0])) for n in pixels)


def stored_points(axis: Axis, lo: float, hi: float) -> tuple[int, int]:
    """Indices ``[i0, i1)`` of the stored points of ``axis`` inside the plot interval ``[lo, hi]``.

    Computed from the axis' arithmetic, so no coordinate is read.

    Examples
    --------
    >>> stored_points(Axis("lr", 0.0, 1.0, 11), 0.25, 0.5)
    (3, 6)
    >>> stored_points(Axis("lr", 1.0, 0.0, 11), 0.25, 0.5)
    (5, 8)
    """
    first, last = to_plot(axis, axis.start), to_plot(axis, axis.stop)
    step = (last - first) / (axis.num - 1)
    a, b = (lo - first) / step, (hi - first) / step
    i0, i1 = math.ceil(min(a, b) - 1e-9), math.floor(max(a, b) + 1e-9) + 1
    return max(i0, 0), min(i1, axis.num)


def needs_compute(axes, view, pixels) -> bool:
    """Whether a stored map cannot show ``view`` at ``pixels``: the view leaves it,
    or holds fewer stored points than pixels along an axis.

    Examples
    --------
    >>> axes = [Axis("lr", 0.0, 1.5, 1024), Axis("x0", -2.0, 2.0, 1024)]
    >>> needs_compute(axes, full_view(axes), (600, 450))
    False
    >>> needs_compute(axes, [(0.0, 0.5), (-2.0, 2.0)], (600, 450))  # 342 points on 600 pixels
    True
    >>> needs_compute(axes, [(-0.5, 1.5), (-2.0, 2.0)], (200, 150))  # left of the map
    True
    """
    for axis, (lo, hi), n in zip(axes, view, pixels):
        a_lo, a_hi = sorted((to_plot(axis, axis.start), to_plot(axis, axis.stop)))
        half_step = (a_hi - a_lo) / (axis.num - 1) / 2
        if lo < a_lo - half_step or hi > a_hi + half_step:
            return True
        i0, i1 = stored_points(axis, lo, hi)
        if i1 - i0 < n:
            return True
    return False


def screen_fit_range(shape) -> tuple[int, int]:
    """Box sizes the dimension of a screen-sized view is fitted over: 2 pixels up to
    an eighth of the shortest side (at least 4).

    The automatic fit of :func:`fractalscape.dimension.dimension` needs maps
    of a few hundred pixels or more.

    Examples
    --------
    >>> screen_fit_range((150, 200)), screen_fit_range((450, 600))
    ((2, 16), (2, 32))
    """
    return 2, 2 ** max(2, int(math.log2(min(shape) / 8)))


@dataclass(frozen=True)
class ViewResult:
    """What the dashboard draws for one view.

    ``picture`` is an :func:`fractalscape.render.aggregate` result (2-D) or
    the in-memory Dataset of the points shown (1-D); ``labels`` is the
    diverged class per pixel or point; ``dimension`` the box-counting result,
    or the message of why it could not be fitted.
    """

    view: tuple
    computed: bool
    shape: tuple[int, ...]
    picture: xr.Dataset
    labels: np.ndarray
    dimension: DimensionResult | str

    @property
    def fraction_diverged(self) -> float:
        return float(self.labels.mean())


def settings_config(source: Source, settings: dict) -> dict:
    """The source's config with the ``model`` parameters and ``descent`` settings of ``settings``."""
    config = copy.deepcopy(source.config)
    config[source.model_table].update(settings.get("model", {}))
    config["descent"].update(settings.get("descent", {}))
    return config


def _score_raster(ds: xr.Dataset, pixels, window: dict) -> xr.DataArray:
    """Mean ``score`` per pixel, on the pixels of :func:`fractalscape.render.aggregate`."""
    import datashader as dsh

    from fractalscape.render import plane  # the same window and log10 axes as aggregate()

    windowed, _ = plane(ds, window.get("x_range"), window.get("y_range"))
    xdim, ydim = windowed.score.dims
    layer = windowed.score.transpose(ydim, xdim).rename({xdim: "x", ydim: "y"})
    return dsh.Canvas(*pixels).raster(layer, agg="mean").compute()


def check_view_request(settings: dict, pixels) -> None:
    """Refuse a view past the bounds (:data:`MAX_STEPS` steps, :data:`MAX_VIEW_POINTS` points) before it runs.

    Examples
    --------
    >>> check_view_request({"descent": {"steps": 2**31 - 1}}, (600, 450))
    Traceback (most recent call last):
    ...
    fractalscape.errors.ConfigError: steps must be an integer from 1 to 100000 in the dashboard, got 2147483647; for more, export the window and run `fractalscape map` on it
    """
    steps = settings.get("descent", {}).get("steps", 1)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"steps must be an integer from 1 to {MAX_STEPS} in the dashboard, got {steps!r}; "
                          "for more, export the window and run `fractalscape map` on it")
    points = math.prod(pixels)
    if not all(isinstance(n, (int, np.integer)) and n >= 2 for n in pixels) or points > MAX_VIEW_POINTS:
        raise ConfigError(f"a view of {' x '.join(map(str, pixels))} pixels is outside the dashboard's bounds: "
                          f"each side at least 2, at most {MAX_VIEW_POINTS:,} points in all; pick a smaller "
                          "width and height")


def floor_warning(axes, view, pixels) -> str | None:
    """A warning when less than a decade of zoom is left before the float64 floor of ``fractalscape zoom``.

    The floor is :mod:`fractalscape.zoom.windows`' (pixel spacing at least
    :data:`~fractalscape.zoom.windows.ULP_FLOOR` ulp of the coordinates): the
    warning comes when fewer than ``halvings(1)`` (4) halvings of the view
    about its centre stay above it, i.e. within about 10x of the floor.

    Examples
    --------
    >>> axes = [Axis("lr", 0.0, 1.5, 9), Axis("x0", -2.0, 2.0, 9)]
    >>> floor_warning(axes, [(0.5, 0.75), (0.0, 0.1)], (600, 450)) is None
    True
    >>> print(floor_warning(axes, [(0.75, 0.75 + 4e-12), (0.0, 0.1)], (600, 450)))
    near the float64 floor: 2 more halvings (0.6 decades) of zoom at this centre before the pixel spacing falls below 8 ulp of the coordinates
    """
    windows = [{"start": to_param(a, lo), "stop": to_param(a, hi), "scale": a.scale}
               for a, (lo, hi) in zip(axes, view)]
    center = [to_param(a, (lo + hi) / 2) for a, (lo, hi) in zip(axes, view)]
    left = deepest_halvings(windows, center, pixels)
    if left >= halvings(1.0):
        return None
    return (f"near the float64 floor: {left} more halvings ({left / math.log2(10):.1f} decades) of zoom at this "
            f"centre before the pixel spacing falls below {ULP_FLOOR} ulp of the coordinates")


def recomputes(source: Source, view, pixels, settings: dict | None = None) -> bool:
    """Whether :func:`compute_view` recomputes ``view`` (rather than reading the stored map)."""
    config = settings_config(source, settings or {})
    return source.stored is None or config != source.config or needs_compute(source.axes, view, pixels)


def coarse_pixels(pixels) -> tuple[int, ...]:
    """The pixels of a view's coarse first picture: 1/:data:`COARSE` along each axis (at least 2).

    Examples
    --------
    >>> coarse_pixels((600, 450))
    (150, 112)
    """
    return tuple(max(2, n // COARSE) for n in pixels)


def band_rows(pixels) -> int:
    """Rows (points along the last axis) per band of a recomputed view: at most :data:`BAND_POINTS`
    points, and at least four batches of :data:`WORKERS` bands on a view of more than one band."""
    across = math.prod(pixels[:-1])
    return max(1, min(BAND_POINTS // across, math.ceil(pixels[-1] / (4 * WORKERS))))


def load_in_blocks(ds: xr.Dataset, *, cancelled=None, on_block=None) -> xr.Dataset:
    """Load a lazy map band by band along its last dimension's chunks, :data:`WORKERS` bands at a time.

    ``cancelled()`` is asked before each batch: when it is true the load
    stops with :class:`ViewCancelled` (a numba kernel cannot be interrupted,
    so a cancel waits for the running batch). ``on_block(done, total)`` is
    called after each batch with the bands done so far.

    Examples
    --------
    >>> import fractalscape as fs
    >>> grid = fs.Grid([fs.Axis("lr", 0.5, 1.5, 8), fs.Axis("x0", -1.0, 1.0, 10, chunk=3)])
    >>> lazy = fs.trainability(fs.landscape("cosine-additive"), grid, steps=20)
    >>> seen = []
    >>> ds = load_in_blocks(lazy, on_block=lambda done, total: seen.append((done, total)))
    >>> bool(ds.escape_step.equals(lazy.escape_step.compute())), seen[-1]
    (True, (4, 4))
    """
    dim = list(ds.sizes)[-1]
    edges = np.cumsum((0,) + ds.chunks[dim])
    bands = [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
    parts = []
    for first in range(0, len(bands), WORKERS):
        if cancelled is not None and cancelled():
            raise ViewCancelled(f"cancelled after {len(parts)} of {len(bands)} bands")
        batch = [ds.isel({dim: band}) for band in bands[first:first + WORKERS]]
        parts.extend(dask.compute(*batch, scheduler="threads", num_workers=WORKERS))
        if on_block is not None:
            on_block(len(parts), len(bands))
    if len(parts) == 1:
        return parts[0]
    return xr.concat(parts, dim, data_vars="minimal", coords="minimal", compat="override", join="override",
                     combine_attrs="override")


def compute_view(source: Source, view, pixels, settings: dict | None = None, *, cancelled=None, on_block=None,
                 measure: bool = True) -> ViewResult:
    """Read or recompute ``view`` at ``pixels`` (width, or width and height).

    ``settings`` may hold ``model`` parameters (of the landscape or network)
    and ``descent`` settings
    (``steps``, ``threshold``) to change; any change from a stored map's
    config recomputes. The map is never computed beyond the view at screen
    resolution (a stored map is aggregated block by block). A recomputed
    view is loaded by :func:`load_in_blocks` (``cancelled`` and ``on_block``
    are its); ``measure=False`` skips the box-counting dimension (a coarse
    picture's ``dimension`` says so).

    Examples
    --------
    >>> source = open_source({"landscape": {"name": "cosine-multiplicative"},
    ...                       "descent": {"steps": 100},
    ...                       "axis": [{"name": "lr", "start": 0.0, "stop": 1.5, "num": 9},
    ...                                {"name": "x0", "start": -2.0, "stop": 2.0, "num": 9}]})
    >>> result = compute_view(source, [(1.0, 1.25), (0.0, 0.5)], (64, 48))
    >>> result.computed, result.shape, result.picture.fraction_diverged.shape
    (True, (64, 48), (48, 64))
    """
    from fractalscape.render import aggregate

    settings = settings or {}
    axes = source.axes
    view = tuple((float(lo), float(hi)) for lo, hi in view)
    check_view_request(settings, pixels)
    config = settings_config(source, settings)
    computed = recomputes(source, view, pixels, settings)
    if computed:  # a screen of points: computed once, band by band, read by every layer
        grid_config = window_config(config, view, pixels)
        chunks = [*pixels[:-1], band_rows(pixels)]
        for entry, original, chunk in zip(grid_config["axis"], config["axis"], chunks):
            # an axis whose config fixes smaller blocks keeps them (a network's width: one per block)
            entry["chunk"] = min(chunk, original.get("chunk") or chunk)
        ds = load_in_blocks(load_config(grid_config).dataset(), cancelled=cancelled, on_block=on_block)
    else:
        ds = source.stored
    if len(axes) == 2:
        window = {} if computed else {
            "x_range": tuple(to_param(axes[0], v) for v in view[0]),
            "y_range": tuple(to_param(axes[1], v) for v in view[1]),
        }
        picture = aggregate(ds, *pixels, **window)
        if "score" in ds:
            picture["score"] = _score_raster(ds, pixels, window)
        labels = picture.fraction_diverged.values >= 0.5
    else:
        if not computed:
            i0, i1 = stored_points(axes[0], *view[0])
            stride = max(1, math.ceil((i1 - i0) / (POINTS_PER_PIXEL_1D * pixels[0])))
            ds = ds.isel({axes[0].name: slice(i0, i1, stride)})
        picture = ds.load()
        labels = picture.escape_step.values >= 0
    try:
        result = dimension(labels, "boxcount", fit_range=screen_fit_range(labels.shape)) if measure \
            else "not measured on the coarse first picture"
    except ConfigError as err:
        result = str(err)
    return ViewResult(view, computed, tuple(labels.shape[::-1]), picture, labels, result)
