"""The public verb: a landscape (or network) and a grid in, a lazy labelled trainability map out."""

from __future__ import annotations

import itertools
import json
from functools import partial

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from fractalscape import accessor  # noqa: F401  (registers ds.fractalscape on every map's Dataset)
from fractalscape._version import __version__
from fractalscape.ensemble import ensemble_variables, shifted_block, ulp_targets
from fractalscape.errors import ConfigError, check_finite
from fractalscape.gd import KERNEL_VERSION, axis_slots, run_block, slot_vector
from fractalscape.grid import Grid
from fractalscape.model import READOUT_DTYPE, Model
from fractalscape.optimizers import HYPERPARAMETERS, get_optimizer, owners
from fractalscape.trig import get_trig

#: Axes up to this many points get an in-memory index (``ds.sel`` works);
#: longer ones stay lazy dask coordinates without an index.
INDEXED_AXIS_MAX = 2**22

#: What ``diverged`` means: the loss crossed ``threshold`` (or was not finite), or Sohl-Dickstein's
#: measure says the network did not converge (the mean of its last 20 normalised losses is not below 1).
LABELS = ("threshold", "sohl-dickstein")


def _check_model(model) -> None:
    if not isinstance(model, Model):
        raise ConfigError(f"trainability needs a model (fractalscape.landscape(...), fractalscape.NetworkModel(...) "
                          f"or a fractalscape.model.Model), got {model!r}")


def _check_label(model: Model, label) -> None:
    if label not in LABELS:
        raise ConfigError(
            f"unknown label {label!r}; valid labels: 'threshold' (the loss crossed threshold or was not finite), "
            "'sohl-dickstein' (networks: not converged by his measure, the sign of the score)"
        )
    if label == "sohl-dickstein" and "score" not in model.readouts:
        raise ConfigError(f"label 'sohl-dickstein' reads a score, which {model.owner()} has no readout for; "
                          "use label = 'threshold'")


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


def kernel_axes(grid: Grid) -> list[str]:
    """The grid's axes that set model parameters: all but a rounding axis (:mod:`fractalscape.ensemble`)."""
    rounding = ulp_targets(grid.names, grid.ensemble_names)
    return [n for n in grid.names if n not in rounding]


def _check_axes(model: Model, optimizer, grid: Grid, names) -> None:
    """Structural axes hold integers (``width``: one per block); hyperparameter axes stay in range."""
    from fractalscape.optimizers import RANGES, check_hyper

    for axis in grid.axes:
        if axis.name not in names:
            continue
        if axis.name in model.structural():
            values = axis.values()
            if not np.all(values == np.round(values)):
                raise ConfigError(f"axis {axis.name!r} is structural: its values must be integers, got "
                                  f"{float(values[values != np.round(values)][0])!r} (use num = stop - start + 1)")
            if axis.name == "width" and axis.chunk != 1:
                raise ConfigError(f"axis 'width' changes the network's shape: it needs chunk = 1 (one width "
                                  f"per block), got chunk = {axis.chunk}")
        if axis.name in RANGES:
            for end in (axis.start, axis.stop):
                check_hyper(axis.name, float(end))


def _check_structures(model: Model, grid: Grid, names, values: dict) -> None:
    """Every combination of the structural axes' end values is a valid structure (batch_size <= n_data, ...)."""
    ends = {a.name: (a.start, a.stop) for a in grid.axes if a.name in names and a.name in model.structural()}
    base = {**model.defaults(), **model.slot_values(values)}
    for combo in itertools.product(*ends.values()):
        structure = {**base, **dict(zip(ends, combo))}
        model.check_structure({s: int(structure[s]) for s in model.structural()})


def descent_settings(model, grid: Grid, *, steps=1000, threshold=None, precision="libm", label="threshold",
                     optimizer="gd", **values) -> dict:
    """Checked settings, as stored in the map's provenance and accepted by :func:`trainability`.

    ``values`` are the model's slots and groups not on an axis (``x0``, ``lr``
    for landscapes; ``lr_W0``, ``init_offset``, ... for networks) and the
    optimizer's hyperparameters.
    """
    _check_model(model)
    if threshold is None:
        threshold = model.default_threshold
    _check_run(steps, threshold, precision)
    _check_label(model, label)
    opt = get_optimizer(optimizer)
    names = kernel_axes(grid)
    hyper = {k: values.pop(k) for k in list(values) if k in opt.hyper and values[k] is not None}
    for k in list(values):
        if k in HYPERPARAMETERS and k not in opt.hyper:
            raise ConfigError(f"[descent] {k} is a hyperparameter of {', '.join(owners(k))}, not of optimizer "
                              f"{opt.name!r}; set optimizer = ... or drop {k}")
    hyper = {k: check_finite(k, v) for k, v in hyper.items()}
    opt.check(hyper)
    if opt.name != "gd":  # stored in full, so the map keeps its meaning if a default ever changes
        hyper = {k: hyper.get(k, v) for k, v in opt.defaults.items() if k not in names}
    settings = model.settings(values)
    table = axis_slots(model, names, opt)
    _check_axes(model, opt, grid, names)
    _check_structures(model, grid, names, settings)
    slot_vector(model, opt, {**settings, **hyper}, table.any(axis=0))  # every slot is set
    # defaults are left out, so maps stored before optimizers and labels existed keep their configuration
    return {**settings, **hyper, "steps": int(steps), "threshold": float(threshold), "precision": precision,
            **({"label": label} if label != "threshold" else {}),
            **({"optimizer": opt.name} if opt.name != "gd" else {})}


def _block(*coords, model, names, values, steps, threshold, precision, optimizer):
    return run_block(model, values, list(zip(names, coords)), steps=steps, threshold=threshold,
                     precision=precision, optimizer=optimizer)


#: Keys of the stored settings that are not slot values.
RUN_KEYS = ("steps", "threshold", "precision", "label", "optimizer")


def _problem(model: Model, grid: Grid, settings: dict):
    """``block(*coords)``: one block of ``grid``'s readouts, rounding axes applied."""
    # The kernels stop at a loss that is not <= threshold: inf itself would pass, its
    # predecessor (the largest double) does not, so threshold = inf stops at every non-finite loss.
    threshold = min(settings["threshold"], np.finfo(np.float64).max)
    block = partial(
        _block, model=model, names=tuple(kernel_axes(grid)),
        values={k: v for k, v in settings.items() if k not in RUN_KEYS and v is not None},
        steps=settings["steps"], threshold=threshold, precision=settings["precision"],
        optimizer=settings.get("optimizer", "gd"),
    )
    for axis, targets in ulp_targets(grid.names, grid.ensemble_names).items():
        block = partial(shifted_block, inner=block, rounding=grid.names.index(axis),
                        targets=tuple(grid.names.index(t) for t in targets))
    return block


DESCRIPTIONS = {
    "escape_step": "step at which the point diverged, -1 if never",
    "final_loss": "loss at the last step taken",
    "score": "Sohl-Dickstein's convergence score: -sum of normalised losses if converged, else sum of inverses",
}


def trainability(model, grid: Grid, *, x0=None, lr=None, steps: int = 1000, threshold: float | None = None,
                 precision: str = "libm", **params) -> xr.Dataset:
    """Where GD (or another optimizer) converges or diverges, over every point of ``grid``.

    Building the Dataset computes nothing: each readout is a dask array whose
    blocks run the compiled lane driver (:mod:`fractalscape.gd`) when computed.

    Parameters
    ----------
    model : Model
        Any :class:`fractalscape.model.Model`: a loss landscape from
        :func:`fractalscape.landscape`, a network
        (:class:`fractalscape.NetworkModel`), or a user model.
    grid : Grid
        1 to 3 axes; each names a slot (a scalar per-point parameter) that it
        sweeps: for landscapes ``lr``, ``x0``, ``lr_1``, ``delta``, ...; for
        networks ``lr_W0`` .. ``lr_W{depth-1}``, ``lr`` (all), ``init_offset``,
        ``init_scale``, ``seed``, ``n_data``, ``batch_size``, ``width``
        (chunk 1); for the optimizer its hyperparameters (``momentum``,
        ``beta1``, ``beta2``, ``eps``, ``weight_decay``).
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
    optimizer : {"gd", "momentum", "nesterov", "adam", "adamw"}
        The update rule, PyTorch's (:mod:`fractalscape.optimizers`).
    **params
        Slots not on an axis: networks' ``lr_W0``, ``init_offset``,
        ``init_scale``, ...; the optimizer's ``momentum``, ``beta1``,
        ``beta2``, ``eps``, ``weight_decay`` (defaults as in PyTorch, momentum 0.9).

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

    Heavy-ball momentum, its coefficient as a second axis:

    >>> grid = fs.Grid([fs.Axis("lr", 1.0, 3.5, 6), fs.Axis("momentum", 0.0, 0.9, 4)])
    >>> ds = fs.trainability(fs.landscape("quadratic"), grid, steps=200, optimizer="momentum")
    >>> ds.diverged.values.astype(int).tolist()
    [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]
    """
    settings = descent_settings(model, grid, steps=steps, threshold=threshold, precision=precision,
                                **{"x0": x0, "lr": lr, **params})
    block = _problem(model, grid, settings)
    dtype = READOUT_DTYPE
    table, table_values = model.config_table()
    config = {
        table: table_values,
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
    data_vars.update({name: (grid.names, readouts[name], {"description": DESCRIPTIONS[name]})
                      for name in model.readouts})
    # Axes small enough to hold in memory get an index (ds.sel works); longer ones stay lazy.
    indexed = {a.name: (a.name, a.values(), {"scale": a.scale}) for a in grid.axes if a.num <= INDEXED_AXIS_MAX}
    lazy = xr.Coordinates(
        {a.name: (a.name, coords[a.name], {"scale": a.scale}) for a in grid.axes if a.num > INDEXED_AXIS_MAX},
        indexes={},
    )
    attrs = {
        "fractalscape_version": __version__,
        "kernel_version": KERNEL_VERSION,
        **model.attrs(),
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
    block = _problem(cfg.model, cfg.grid, settings)
    return block(*[np.ascontiguousarray(np.atleast_1d(c), dtype=np.float64) for c in coords])
