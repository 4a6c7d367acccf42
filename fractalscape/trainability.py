"""The public verb: a landscape and a grid in, a lazy labelled trainability map out."""

from __future__ import annotations

import json
import math
from functools import partial

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from fractalscape._version import __version__
from fractalscape.errors import ConfigError
from fractalscape.gd import READOUT_DTYPE, axis_slots, run_block, slot_names
from fractalscape.grid import Grid
from fractalscape.landscapes.base import Landscape, check_finite
from fractalscape.trig import get_trig

#: Axes up to this many points get an in-memory index (``ds.sel`` works);
#: longer ones stay lazy dask coordinates without an index.
INDEXED_AXIS_MAX = 2**22


def _vector(what: str, value, dim: int) -> list[float]:
    values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
    if len(values) == 1:
        values = values * dim
    if len(values) != dim:
        raise ConfigError(f"{what} must be a number or a list of {dim} numbers (dim={dim}), got {value!r}")
    return [check_finite(what, v) for v in values]


def descent_settings(land: Landscape, grid: Grid, *, x0, lr, steps, threshold, precision) -> dict:
    """Checked GD settings, as stored in the map's provenance."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0:
        raise ConfigError(f"steps must be an integer > 0, got {steps!r}")
    if steps > np.iinfo(np.int32).max:
        raise ConfigError(f"steps must be < 2**31 (escape_step is int32), got {steps}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)):
        raise ConfigError(f"threshold must be a positive finite number, got {threshold!r}")
    if not (math.isfinite(threshold) and threshold > 0):
        raise ConfigError(f"threshold must be a positive finite number, got {threshold!r}")
    get_trig(precision)
    settings = {"x0": _vector("x0", x0, land.dim), "steps": int(steps), "threshold": float(threshold)}
    lr_on_axes = axis_slots(land, grid.names)[:, : land.dim].any(axis=0)
    if lr is None:
        if not lr_on_axes.all():
            missing = [n for n, on in zip(slot_names(land), lr_on_axes) if not on]
            raise ConfigError(f"learning rate {missing[0]!r} is not set: pass lr=... or add an 'lr' axis")
        settings["lr"] = None
    else:
        settings["lr"] = _vector("lr", lr, land.dim)
    settings["precision"] = precision
    return settings


def _block(*coords, land, params, slots, steps, threshold, precision):
    return run_block(land, params, slots, list(coords), steps=steps, threshold=threshold, precision=precision)


def trainability(
    land: Landscape,
    grid: Grid,
    *,
    x0=1.0,
    lr=None,
    steps: int = 1000,
    threshold: float = 1e8,
    precision: str = "libm",
) -> xr.Dataset:
    """Where GD on ``land`` converges or diverges, over every point of ``grid``.

    Building the Dataset computes nothing: each readout is a dask array whose
    blocks run the compiled GD kernel (:mod:`fractalscape.gd`) when computed.

    Parameters
    ----------
    land : Landscape
        From :func:`fractalscape.landscape`.
    grid : Grid
        1 to 3 axes; each names a scalar parameter (``lr``, ``x0``, ``lr_1``,
        ``delta``, ...) that it sweeps.
    x0 : float or sequence of float
        Initial point (a number is broadcast to every coordinate).
    lr : float or sequence of float, optional
        Learning rate(s) not swept by an axis.
    steps : int
        Most GD steps per point.
    threshold : float
        A point diverges once its loss exceeds this (or is not finite).
    precision : {"libm"}
        sin/cos implementation, see :mod:`fractalscape.trig`.

    Returns
    -------
    xarray.Dataset
        ``diverged`` (bool), ``escape_step`` (int32, -1 if never diverged),
        ``final_loss`` (float64), with the axes as dimensions and the full
        provenance in ``attrs`` (``attrs["config"]`` is the JSON config).

    Examples
    --------
    >>> import fractalscape as fs
    >>> grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 7, chunk=4)])
    >>> ds = fs.trainability(fs.landscape("quadratic"), grid, x0=1.0, steps=100)
    >>> ds.diverged.values.tolist()
    [False, False, False, False, False, True, True]
    """
    settings = descent_settings(land, grid, x0=x0, lr=lr, steps=steps, threshold=threshold, precision=precision)
    params = np.concatenate(
        [
            np.full(land.dim, np.nan) if settings["lr"] is None else settings["lr"],
            settings["x0"],
            land.theta_vector(),
        ]
    )
    slots = axis_slots(land, grid.names)
    config = {
        "landscape": land.to_dict(),
        "descent": {k: v for k, v in settings.items() if v is not None},
        "axis": [a.to_dict() for a in grid.axes],
    }
    config_json = json.dumps(config, sort_keys=True)
    coords = grid.coords()
    index = "ijk"[: len(grid.axes)]
    args = [arg for name, i in zip(grid.names, index) for arg in (coords[name], i)]
    block = partial(
        _block, land=land, params=params, slots=slots, steps=settings["steps"],
        threshold=settings["threshold"], precision=precision,
    )
    readouts = da.blockwise(
        block, index, *args,
        dtype=READOUT_DTYPE,
        meta=np.empty((0,) * len(index), READOUT_DTYPE),
        align_arrays=False,  # each axis appears once: its chunks are the grid's
        name="trainability-" + tokenize(config_json, __version__),
    )
    escape_step = readouts["escape_step"]
    data_vars = {
        "diverged": (grid.names, escape_step >= 0, {"description": "loss exceeded threshold or became non-finite"}),
        "escape_step": (grid.names, escape_step, {"description": "step at which the point diverged, -1 if never"}),
        "final_loss": (grid.names, readouts["final_loss"], {"description": "loss at the last step taken"}),
    }
    coord_vars = {
        a.name: (a.name, a.values() if a.num <= INDEXED_AXIS_MAX else coords[a.name], {"scale": a.scale})
        for a in grid.axes
    }
    indexed = {a.name for a in grid.axes if a.num <= INDEXED_AXIS_MAX}
    coordinates = xr.Coordinates(
        {k: v for k, v in coord_vars.items() if k not in indexed}, indexes={}
    ).merge(xr.Coordinates({k: v for k, v in coord_vars.items() if k in indexed})).coords
    attrs = {
        "fractalscape_version": __version__,
        "landscape": land.name,
        "landscape_formula": land.family.formula,
        "landscape_params": json.dumps(land.params),
        "dim": land.dim,
        "steps": settings["steps"],
        "threshold": settings["threshold"],
        "precision": precision,
        "config": config_json,
    }
    return xr.Dataset(data_vars, coords=coordinates, attrs=attrs)
