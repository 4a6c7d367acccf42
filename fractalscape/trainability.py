"""The public verb: a landscape (or network) and a grid in, a lazy labelled trainability map out."""

from __future__ import annotations

import json
from functools import partial

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from fractalscape._version import __version__
from fractalscape.ensemble import ensemble_variables, shifted_block, ulp_targets
from fractalscape.errors import ConfigError, check_finite
from fractalscape.gd import READOUT_DTYPE, axis_slots, run_block, slot_names
from fractalscape.grid import Grid
from fractalscape.landscapes.base import Landscape
from fractalscape.networks import DEFAULT_THRESHOLD as NETWORK_THRESHOLD
from fractalscape.networks import READOUT_DTYPE as NETWORK_READOUT_DTYPE
from fractalscape.networks import NetworkModel
from fractalscape.trig import get_trig

#: Axes up to this many points get an in-memory index (``ds.sel`` works);
#: longer ones stay lazy dask coordinates without an index.
INDEXED_AXIS_MAX = 2**22
#: Default divergence threshold of landscapes (Liu 2024).
LANDSCAPE_THRESHOLD = 1e8


def _vector(what: str, value, dim: int) -> list[float]:
    values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
    if len(values) == 1:
        values = values * dim
    if len(values) != dim:
        raise ConfigError(f"{what} must be a number or a list of {dim} numbers (dim={dim}), got {value!r}")
    return [check_finite(what, v) for v in values]


#: What ``diverged`` means: the loss crossed ``threshold`` (or was not finite), or Sohl-Dickstein's
#: measure says the network did not converge (the mean of its last 20 normalised losses is not below 1).
LABELS = ("threshold", "sohl-dickstein")


def _check_label(model, label) -> None:
    if label not in LABELS:
        raise ConfigError(
            f"unknown label {label!r}; valid labels: 'threshold' (the loss crossed threshold or was not finite), "
            "'sohl-dickstein' (networks: not converged by his measure, the sign of the score)"
        )
    if label == "sohl-dickstein" and not isinstance(model, NetworkModel):
        raise ConfigError("label 'sohl-dickstein' reads a network's score; a landscape uses label = 'threshold'")


def _check_run(steps, threshold, precision) -> None:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0:
        raise ConfigError(f"steps must be an integer > 0, got {steps!r}")
    if steps > np.iinfo(np.int32).max:
        raise ConfigError(f"steps must be < 2**31 (escape_step is int32), got {steps}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)):
        raise ConfigError(f"threshold must be a positive number or inf, got {threshold!r}")
    if not threshold > 0:  # inf is allowed: then only a non-finite loss stops a point
        raise ConfigError(f"threshold must be a positive number or inf, got {threshold!r}")
    get_trig(precision)


def _landscape_settings(land: Landscape, names, x0, lr, params) -> dict:
    if params:
        raise ConfigError(
            f"unknown descent setting {sorted(params)[0]!r} for a landscape; valid: x0, lr, steps, threshold, precision"
        )
    settings = {"x0": _vector("x0", 1.0 if x0 is None else x0, land.dim)}
    lr_on_axes = axis_slots(land, names)[:, : land.dim].any(axis=0)
    if lr is None:
        if not lr_on_axes.all():
            missing = [n for n, on in zip(slot_names(land), lr_on_axes) if not on]
            raise ConfigError(f"learning rate {missing[0]!r} is not set: pass lr=... or add an 'lr' axis")
        settings["lr"] = None
    else:
        settings["lr"] = _vector("lr", lr, land.dim)
    return settings


def _network_settings(model: NetworkModel, names, x0, lr, params) -> dict:
    if x0 is not None:
        raise ConfigError("x0 does not apply to a network (its initial weights come from its seed); drop it")
    values = dict(params)
    if lr is not None:
        values["lr"] = lr
    unknown = sorted(set(values) - set(model.slot_names()))
    if unknown:
        raise ConfigError(
            f"unknown descent setting {unknown[0]!r} for a network; valid: {', '.join(model.slot_names())}, "
            "steps, threshold, precision"
        )
    values = {k: check_finite(k, v) for k, v in values.items() if v is not None}
    model.check_settings(values, names)
    return values


def kernel_axes(grid: Grid) -> list[str]:
    """The grid's axes that set model parameters: all but a rounding axis (:mod:`fractalscape.ensemble`)."""
    rounding = ulp_targets(grid.names, grid.ensemble_names)
    return [n for n in grid.names if n not in rounding]


def descent_settings(model, grid: Grid, *, x0=None, lr=None, steps=1000, threshold=None, precision="libm",
                     label="threshold", **params) -> dict:
    """Checked GD settings, as stored in the map's provenance and accepted by :func:`trainability`."""
    if threshold is None:
        threshold = NETWORK_THRESHOLD if isinstance(model, NetworkModel) else LANDSCAPE_THRESHOLD
    _check_run(steps, threshold, precision)
    _check_label(model, label)
    if isinstance(model, NetworkModel):
        settings = _network_settings(model, kernel_axes(grid), x0, lr, params)
    elif isinstance(model, Landscape):
        settings = _landscape_settings(model, kernel_axes(grid), x0, lr, params)
    else:
        raise ConfigError(
            f"trainability needs a Landscape (fractalscape.landscape(...)) or a NetworkModel, got {model!r}"
        )
    # the default label is left out, so maps stored before labels existed keep their configuration
    return {**settings, "steps": int(steps), "threshold": float(threshold), "precision": precision,
            **({"label": label} if label != "threshold" else {})}


def _landscape_block(*coords, land, params, slots, steps, threshold, precision):
    return run_block(land, params, slots, list(coords), steps=steps, threshold=threshold, precision=precision)


def _network_block(*coords, model, names, values, steps, threshold, precision):
    return model.run_block(values, list(zip(names, coords)), steps, threshold, precision)


def _landscape_problem(land: Landscape, names, settings: dict):
    params = np.concatenate(
        [
            np.full(land.dim, np.nan) if settings["lr"] is None else settings["lr"],
            settings["x0"],
            land.theta_vector(),
        ]
    )
    block = partial(
        _landscape_block, land=land, params=params, slots=axis_slots(land, names),
        steps=settings["steps"], threshold=settings["threshold"], precision=settings["precision"],
    )
    attrs = {
        "model": land.name,
        "formula": land.family.formula,
        "landscape": land.name,
        "landscape_params": json.dumps(land.params),
        "dim": land.dim,
    }
    return block, READOUT_DTYPE, {"landscape": land.to_dict()}, attrs


def _network_problem(model: NetworkModel, names, settings: dict):
    values = {k: v for k, v in settings.items() if k in model.slot_names()}
    block = partial(
        _network_block, model=model, names=tuple(names), values=values,
        steps=settings["steps"], threshold=settings["threshold"], precision=settings["precision"],
    )
    attrs = {"model": f"network-{model.nonlinearity}-{model.data}", "formula": model.description(),
             "network": json.dumps(model.to_dict())}
    return block, NETWORK_READOUT_DTYPE, {"network": model.config_dict()}, attrs


def _problem(model, grid: Grid, settings: dict):
    """``(block, readout dtype, model config, model attrs)``: ``block(*coords)`` runs one block of ``grid``."""
    problem = _network_problem if isinstance(model, NetworkModel) else _landscape_problem
    # The kernels stop at a loss that is not <= threshold: inf itself would pass, its
    # predecessor (the largest double) does not, so threshold = inf stops at every non-finite loss.
    settings = {**settings, "threshold": min(settings["threshold"], np.finfo(np.float64).max)}
    block, *rest = problem(model, kernel_axes(grid), settings)
    for axis, targets in ulp_targets(grid.names, grid.ensemble_names).items():
        block = partial(shifted_block, inner=block, rounding=grid.names.index(axis),
                        targets=tuple(grid.names.index(t) for t in targets))
    return (block, *rest)


DESCRIPTIONS = {
    "escape_step": "step at which the point diverged, -1 if never",
    "final_loss": "loss at the last step taken",
    "score": "Sohl-Dickstein's convergence score: -sum of normalised losses if converged, else sum of inverses",
}


def trainability(model, grid: Grid, *, x0=None, lr=None, steps: int = 1000, threshold: float | None = None,
                 precision: str = "libm", **params) -> xr.Dataset:
    """Where GD converges or diverges, over every point of ``grid``.

    Building the Dataset computes nothing: each readout is a dask array whose
    blocks run the compiled GD kernel when computed.

    Parameters
    ----------
    model : Landscape or NetworkModel
        A loss landscape from :func:`fractalscape.landscape`, or a
        Sohl-Dickstein network (:class:`fractalscape.NetworkModel`).
    grid : Grid
        1 to 3 axes; each names a scalar parameter that it sweeps: for
        landscapes ``lr``, ``x0``, ``lr_1``, ``delta``, ...; for networks
        ``lr_W0``, ``lr_W1``, ``lr`` (both) and ``init_offset``.
    x0 : float or sequence of float, optional
        Landscapes: initial point (a number is broadcast to every coordinate;
        default 1.0).
    lr : float or sequence of float, optional
        Learning rate(s) not swept by an axis (networks: both layers').
    steps : int
        Most GD steps per point.
    threshold : float, optional
        A point stops once its loss exceeds this (or is not finite), and
        with ``label="threshold"`` it has then diverged. Default 1e8 for
        landscapes, 1e6 for networks; ``inf`` stops only at a non-finite loss.
    precision : {"libm", "fast"}
        sin/cos (tanh) implementation, see :mod:`fractalscape.trig`:
        ``"libm"`` (the default) is the C library's, bit-comparable with
        NumPy; ``"fast"`` is vectorizable and may label a few chaotic points
        differently (measured in docs/speed.md).
    label : {"threshold", "sohl-dickstein"}
        What ``diverged`` means: the loss crossed ``threshold`` (or was not
        finite), or, for networks, Sohl-Dickstein's label: not converged by
        his measure, i.e. ``not score < 0`` (the mean of the last 20 losses
        normalised by the first is not below 1; non-finite losses count as
        not converged).
    **params
        Networks: ``lr_W0``, ``lr_W1``, ``init_offset`` when not on an axis.

    Returns
    -------
    xarray.Dataset
        ``diverged`` (bool), ``escape_step`` (int32, -1 if never diverged),
        ``final_loss`` (float64), for networks also ``score``, with the axes
        as dimensions and the full provenance in ``attrs``
        (``attrs["config"]`` is the JSON config). With ensemble axes also
        ``p_diverged``, ``p_low``, ``p_high`` and ``n`` over the other axes
        (:mod:`fractalscape.ensemble`).

    Examples
    --------
    >>> import fractalscape as fs
    >>> grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 7, chunk=4)])
    >>> ds = fs.trainability(fs.landscape("quadratic"), grid, x0=1.0, steps=100)
    >>> ds.diverged.values.tolist()
    [False, False, False, False, False, True, True]

    An ensemble over initial points, and the fraction of it that diverged:

    >>> grid = fs.Grid([fs.Axis("lr", 0.9, 1.1, 3), fs.Axis("x0", -1.0, 1.0, 4, ensemble=True)])
    >>> ds = fs.trainability(fs.landscape("quadratic"), grid, steps=100)
    >>> ds.p_diverged.values.tolist(), int(ds.n[0])
    ([0.0, 0.0, 1.0], 4)
    """
    settings = descent_settings(model, grid, x0=x0, lr=lr, steps=steps, threshold=threshold,
                                precision=precision, **params)
    block, dtype, model_config, model_attrs = _problem(model, grid, settings)
    config = {
        **model_config,
        "descent": {k: v for k, v in settings.items() if v is not None},
        "axis": [a.to_dict() for a in grid.axes],
    }
    config_json = json.dumps(config, sort_keys=True)
    coords = grid.coords()
    index = "ijk"[: len(grid.axes)]
    args = [arg for name, i in zip(grid.names, index) for arg in (coords[name], i)]
    readouts = da.blockwise(
        block, index, *args,
        dtype=dtype,
        meta=np.empty((0,) * len(index), dtype),
        align_arrays=False,  # each axis appears once: its chunks are the grid's
        name="trainability-" + tokenize(config_json, __version__),
    )
    escape_step = readouts["escape_step"]
    if settings.get("label") == "sohl-dickstein":
        diverged = (grid.names, ~(readouts["score"] < 0),
                    {"description": "not converged by Sohl-Dickstein's measure (score not < 0)"})
    else:
        diverged = (grid.names, escape_step >= 0, {"description": "loss exceeded threshold or became non-finite"})
    data_vars = {"diverged": diverged}
    data_vars.update({name: (grid.names, readouts[name], {"description": DESCRIPTIONS[name]}) for name in dtype.names})
    # Axes small enough to hold in memory get an index (ds.sel works); longer ones stay lazy.
    indexed = {a.name: (a.name, a.values(), {"scale": a.scale}) for a in grid.axes if a.num <= INDEXED_AXIS_MAX}
    lazy = xr.Coordinates(
        {a.name: (a.name, coords[a.name], {"scale": a.scale}) for a in grid.axes if a.num > INDEXED_AXIS_MAX},
        indexes={},
    )
    attrs = {
        "fractalscape_version": __version__,
        **model_attrs,
        "steps": settings["steps"],
        "threshold": settings["threshold"],
        "precision": precision,
        "config": config_json,
    }
    ds = xr.Dataset(data_vars, coords=indexed, attrs=attrs).assign_coords(lazy)
    if grid.ensemble_names:
        ds = ds.assign(ensemble_variables(ds.diverged, list(grid.ensemble_names)))
    return ds


def run_points(source, coords, *, precision: str | None = None) -> np.ndarray:
    """Readouts of a map's configuration at any coordinates, computed now (no dask, no store).

    Parameters
    ----------
    source : xarray.Dataset, dict, path or str
        A trainability map (its ``attrs["config"]``) or a config (see
        :func:`fractalscape.load_config`).
    coords : sequence of 1-D arrays
        Coordinates along each of the config's axes, in its order; the points
        are their outer product, as in a block of the map.
    precision : {"libm", "fast"}, optional
        Override the configuration's precision.

    Returns
    -------
    ndarray of the model's readout dtype, shape ``tuple(len(c) for c in coords)``

    Examples
    --------
    >>> import fractalscape as fs
    >>> ds = fs.trainability(fs.landscape("quadratic"), fs.Grid([fs.Axis("lr", 0.0, 1.5, 7)]), steps=100)
    >>> run_points(ds, [np.array([0.999, 1.001])])["escape_step"].tolist()
    [-1, -1]
    >>> run_points(ds, [np.array([1.5, 1.25])])["escape_step"].tolist()
    [14, 23]
    """
    from fractalscape.config import config_of, load_config

    cfg = load_config(config_of(source) if isinstance(source, xr.Dataset) else source)
    settings = dict(cfg.descent)
    if precision is not None:
        get_trig(precision)
        settings["precision"] = precision
    if len(coords) != len(cfg.grid.axes):
        raise ConfigError(
            f"run_points needs one coordinate array per axis ({', '.join(cfg.grid.names)}), got {len(coords)}"
        )
    block = _problem(cfg.model, cfg.grid, settings)[0]
    return block(*[np.ascontiguousarray(np.atleast_1d(c), dtype=np.float64) for c in coords])
