"""Boundary dimension against one config parameter: one stored map per value.

A sweep directory holds one map directory per value, named
``<index>-<value>`` (``0-0.0002``, ``1-0.0004``, ...), each laid out as
``fractalscape map`` writes it (``map.zarr`` and ``summary.json``; no
``map.png``), then ``sweep.json`` (the table) and ``sweep.png`` (the
dimension with its 95 % interval against the value).

A value whose ``summary.json`` exists is finished and is read back, not
recomputed, so an interrupted sweep reruns only the unfinished values (and
those resume block by block, see :mod:`fractalscape.store`). A value
directory that holds a map of another configuration is refused, as
``fractalscape map`` refuses it.

For the additive cosine landscape ``x**2 + delta * cos(2 pi x / wavelength)``
a sweep of ``landscape.delta`` or ``landscape.wavelength`` is plotted
against the roughness ``delta / wavelength**2``, with Liu's critical
roughness ``1 / (2 pi**2)`` (Liu 2024, arXiv 2406.13971): below it the
learning-rate boundary is a single point (dimension 0), above it fractal.
"""

from __future__ import annotations

import io
import json
import math
import re
import time
from collections.abc import Sequence
from typing import Literal

import numpy as np

from fractalscape.config import AXIS_KEYS, MODEL_TABLES, descent_keys, load_config, read_config, with_overrides
from fractalscape.dimension import default_method, dimension
from fractalscape.errors import ConfigError
from fractalscape.landscapes import Landscape, get_family
from fractalscape.networks import NetworkModel
from fractalscape.store import (
    MAP_NAME,
    SUMMARY_NAME,
    Location,
    is_complete,
    open_map,
    prepare_output,
    write_file,
    write_map,
    write_summary,
)

__all__ = ["CRITICAL_ROUGHNESS", "sweep"]

Method = Literal["auto", "boxcount", "dyadic", "median-slope"]
METHODS = ("auto", "boxcount", "dyadic", "median-slope")

#: Liu (2024)'s threshold on delta / wavelength**2 for the additive cosine loss.
CRITICAL_ROUGHNESS = 1 / (2 * math.pi**2)
#: The swept parameters that change the roughness of ``cosine-additive``.
ROUGHNESS_PARAMS = ("landscape.delta", "landscape.wavelength")
SWEEP_NAME = "sweep.json"
PLOT_NAME = "sweep.png"


def _schema_keys(raw: dict, path: tuple) -> set[str]:
    """Keys the config schema accepts in the table at ``path``, beyond those present (defaults)."""
    if path == ("landscape",):
        try:
            return {"name", "dim", *get_family(raw["landscape"].get("name")).defaults}
        except ConfigError:
            return {"name", "dim"}
    if path == ("network",):
        return set(NetworkModel.__dataclass_fields__)
    if path == ("descent",):
        kind = "network" if "network" in raw else "landscape"
        try:
            return set(descent_keys(MODEL_TABLES[kind](dict(raw.get(kind, {})))))
        except (ConfigError, TypeError):
            return set(descent_keys(MODEL_TABLES[kind]({"name": "quadratic"} if kind == "landscape" else {})))
    if len(path) == 2 and path[0] == "axis":
        return set(AXIS_KEYS)
    return set()


def _check_param(raw: dict, param: str) -> None:
    """Refuse a dotted key that names no value of the config ``raw``."""
    if not isinstance(param, str) or not param:
        raise ConfigError(f"param must be a dotted config key such as landscape.delta or axis.0.num, got {param!r}")
    *parents, leaf = param.split(".")
    if not parents:
        raise ConfigError(f"param {param!r} names a table; name a key inside it, e.g. {param}.steps "
                          "or landscape.delta")
    node, path = raw, ()
    for part in parents:
        if isinstance(node, list):
            if not (part.isdigit() and int(part) < len(node)):
                raise ConfigError(f"param {param!r}: the config has {len(node)} {'.'.join(path)} entries; "
                                  f"use an index 0 to {len(node) - 1}")
            node = node[int(part)]
        elif isinstance(node, dict) and isinstance(node.get(part), (dict, list)):
            node = node[part]
        elif path == () and part == "descent" and part not in node:
            node = {}  # an optional table: its keys have defaults
        else:
            tables = sorted(k for k, v in node.items() if isinstance(v, (dict, list)))
            where = f"[{'.'.join(path)}]" if path else "the config"
            raise ConfigError(f"param {param!r}: {where} has no table {part!r}; its tables: "
                              f"{', '.join(tables) or 'none'}")
        path += (int(part) if part.isdigit() else part,)
    if isinstance(node, list):
        raise ConfigError(f"param {param!r} names a list; name a key inside one entry, e.g. {param}.0.num")
    valid = set(node) | _schema_keys(raw, path)
    if leaf not in valid:
        raise ConfigError(f"param {param!r}: [{'.'.join(map(str, path))}] has no key {leaf!r}; "
                          f"valid keys: {', '.join(sorted(valid))}")


def _value_text(value) -> str:
    """``value`` as the right-hand side of a ``--set`` assignment."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return repr(value.item() if isinstance(value, np.generic) else value)
    return str(value)


def _get(raw: dict, param: str):
    node = raw
    for part in param.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _dir_name(index: int, value) -> str:
    return f"{index}-{re.sub(r'[^A-Za-z0-9._+-]', '_', _value_text(value))}"


def _roughness(model) -> float | None:
    """``delta / wavelength**2`` of an additive cosine landscape, else None."""
    if not (isinstance(model, Landscape) and model.name == "cosine-additive"):
        return None
    return model.params["delta"] / model.params["wavelength"] ** 2


def _read_summary(location: Location) -> dict:
    return json.loads(location.fs.cat_file(location.path(SUMMARY_NAME)))


def _measure(stored, method: str) -> dict:
    """The dimension as summary.json holds it; a map it cannot measure records why."""
    try:
        return dimension(stored.diverged, method).to_dict()
    except ConfigError as err:
        return {"method": method, "skipped": str(err)}


def _run_value(ds, location: Location, method: str, progress: bool) -> tuple[dict, int]:
    """The summary of one value's map (computed or read back) and the blocks this call computed."""
    if is_complete(str(location)):
        summary = _read_summary(location)
        if summary.get("dimension", {}).get("method") != method:
            summary["dimension"] = _measure(open_map(str(location)), method)
            write_summary(str(location), summary)
        return summary, 0
    start = time.perf_counter()
    info = write_map(ds, str(location), progress=progress)
    dimension_start = time.perf_counter()
    measured = _measure(open_map(str(location)), method)
    summary = {
        "config": json.loads(ds.attrs["config"]),
        "formula": ds.attrs["formula"],
        "fractalscape_version": ds.attrs["fractalscape_version"],
        "store": MAP_NAME,
        **info,
        "dimension": measured,
        "dimension_seconds": time.perf_counter() - dimension_start,
        "total_seconds": time.perf_counter() - start,
    }
    write_summary(str(location), summary)
    return summary, info["blocks_computed"]


def _row(value, name: str, summary: dict, blocks_computed: int, roughness) -> dict:
    measured = summary["dimension"]
    row = {
        "value": value,
        "method": measured.get("method"),
        "dimension": measured.get("dimension"),
        "interval": measured.get("interval"),
        "stderr": measured.get("stderr"),
        "counts": measured.get("counts"),
        "sizes": measured.get("sizes"),
        "fit_range": measured.get("fit_range"),
        "points": summary["points"],
        "fraction_diverged": summary["fraction_diverged"],
        "blocks_computed": blocks_computed,
        "dir": name,
    }
    if "skipped" in measured:
        row["skipped"] = measured["skipped"]
    if roughness is not None:
        row["roughness"] = roughness
    return row


def _error_bars(rows: list[dict]) -> np.ndarray:
    """(2, n) distances below and above each dimension: the interval, else 1.96 stderr, else 0."""
    bars = []
    for row in rows:
        if row["interval"] is not None:
            low, high = row["interval"]
            bars.append((row["dimension"] - low, high - row["dimension"]))
        else:
            half = 1.96 * row["stderr"] if row["stderr"] is not None else 0.0
            bars.append((half, half))
    return np.array(bars, dtype=float).T.reshape(2, len(rows))


def _plot(param: str, rows: list[dict], against_roughness: bool, fixed: float | None) -> bytes:
    """sweep.png: the dimension with its error bars against the value (or the roughness)."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no backend switch

    measured = [row for row in rows if row["dimension"] is not None]
    fig = Figure(figsize=(7, 4.5), dpi=120)
    ax = fig.add_subplot()
    x = [row["roughness"] if against_roughness else row["value"] for row in measured]
    ax.errorbar(x, [row["dimension"] for row in measured], yerr=_error_bars(measured), fmt="o-", capsize=3,
                label="boundary dimension, 95 % error bars")
    if against_roughness:
        ax.axvline(CRITICAL_ROUGHNESS, ls="--", color="tab:red",
                   label=rf"critical roughness $1/(2\pi^2)$ = {CRITICAL_ROUGHNESS:.4f}")
        ax.set_xlabel("roughness delta / wavelength$^2$")
        # the swept value on the top axis, from the roughness and the parameter held fixed
        if param == "landscape.delta":
            top = ax.secondary_xaxis("top", functions=(lambda r: r * fixed**2, lambda d: d / fixed**2))
            ax.set_title(f"cosine-additive, wavelength = {fixed:g}")
        else:
            def to_value(r):
                with np.errstate(all="ignore"):
                    return np.sqrt(fixed / np.asarray(r, dtype=float))

            def to_roughness(w):
                with np.errstate(all="ignore"):
                    return fixed / np.asarray(w, dtype=float) ** 2

            top = ax.secondary_xaxis("top", functions=(to_value, to_roughness))
            # automatic ticks crowd where the wavelength grows without bound (roughness -> 0)
            top.set_xticks([row["value"] for row in measured], [f"{row['value']:g}" for row in measured],
                           rotation=90)
            ax.set_title(f"cosine-additive, delta = {fixed:g}")
        top.set_xlabel(param)
    else:
        ax.set_xlabel(param)
    ax.set_ylabel(f"boundary dimension ({rows[0]['method']})")
    ax.legend(loc="best")
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png")
    return png.getvalue()


def sweep(config, param: str, values: Sequence, out_dir, *, overrides: Sequence[str] = (),
          method: Method = "auto", progress: bool = False) -> dict:
    """Measure the boundary dimension of one map per value of a config parameter.

    Parameters
    ----------
    config : dict, path or str
        A config (see :mod:`fractalscape.config`): dict, TOML path or preset name.
    param : str
        The dotted key to sweep, as ``--set`` takes it: ``landscape.delta``,
        ``descent.steps``, ``axis.0.num``. It must name a key of the config
        (after ``overrides``) or one the schema gives a default.
    values : sequence
        At least two distinct values; each is applied as ``--set param=value``
        and the resulting config is checked before anything is computed.
    out_dir : path or fsspec URL
        The sweep directory (module docstring). Rerunning the same sweep
        computes only the values not yet finished.
    overrides : sequence of str
        ``KEY=VALUE`` assignments applied to ``config`` first.
    method : {"auto", "dyadic", "boxcount", "median-slope"}
        The estimator, see :func:`fractalscape.dimension`; ``"auto"`` takes
        ``"dyadic"`` for 1-D maps of ``2**n + 1`` points, else ``"boxcount"``.
    progress : bool
        Show each map's block progress on stderr.

    Returns
    -------
    dict
        What ``sweep.json`` holds: ``param``, ``values``, ``rows`` and
        ``config`` (the config after ``overrides``). Each row has ``value``,
        ``method``, ``dimension``, ``interval`` (95 %, or None), ``stderr``,
        ``counts``, ``sizes``, ``fit_range``, ``points``,
        ``fraction_diverged``, ``blocks_computed`` (0 for a value read
        back), ``dir`` (relative to ``out_dir``), ``roughness`` for the
        additive cosine landscape, and ``skipped`` (why) when the map had
        no measurable boundary (``dimension`` is then None).

    Examples
    --------
    >>> import tempfile
    >>> config = {"landscape": {"name": "cosine-additive", "delta": 0.0002, "wavelength": 0.1},
    ...           "descent": {"x0": 1.0, "steps": 1000},
    ...           "axis": [{"name": "lr", "start": 0.5, "stop": 1.5, "num": 4097}]}
    >>> out = tempfile.mkdtemp()
    >>> table = sweep(config, "landscape.delta", [0.0002, 0.001], out)
    >>> [(round(row["roughness"], 3), round(row["dimension"], 2)) for row in table["rows"]]
    [(0.02, 0.0), (0.1, 0.83)]
    >>> [row["blocks_computed"] for row in sweep(config, "landscape.delta", [0.0002, 0.001], out)["rows"]]
    [0, 0]
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | np.ndarray) or len(values) < 2:
        raise ConfigError(f"a sweep needs a list of at least 2 values for {param!r}, got {values!r}")
    raw = with_overrides(read_config(config), overrides)
    _check_param(raw, param)
    runs = []  # (value, dir name, dataset, model)
    for index, given in enumerate(values):
        value_raw = with_overrides(raw, [f"{param}={_value_text(given)}"])
        value = _get(value_raw, param)
        if any(value == seen for seen, *_ in runs):
            raise ConfigError(f"{param} = {value!r} is listed twice in the sweep values; give distinct values")
        cfg = load_config(value_raw)
        if len(cfg.grid.shape) > 2:
            raise ConfigError(f"a sweep measures 1-D or 2-D maps, the config has {len(cfg.grid.shape)} axes; "
                              "drop an [[axis]]")
        runs.append((value, _dir_name(index, value), cfg.dataset(), cfg.model))
    # one estimator for the whole sweep: "auto" takes dyadic only if every map allows it
    dyadic = [default_method(ds.diverged) == "dyadic" for _, _, ds, _ in runs]
    resolved = ("dyadic" if all(dyadic) else "boxcount") if method == "auto" else method
    if resolved == "dyadic" and not all(dyadic):
        shape = runs[dyadic.index(False)][2].diverged.shape
        raise ConfigError(f"method='dyadic' needs 1-D maps of 2**n + 1 points, one of the sweep's maps has shape "
                          f"{shape}; set axis.0.num to e.g. 4097 or use method='boxcount'")
    out = Location(out_dir)
    if out.fs.exists(out.root) and not out.fs.isdir(out.root):
        raise ConfigError(f"sweep output {str(out)!r} is a file; give a directory")
    # refuse a foreign value directory before computing anything
    locations = [prepare_output(out.join(name), ds.attrs["config"]) for _, name, ds, _ in runs]
    rows = [
        _row(value, name, *_run_value(ds, location, resolved, progress), _roughness(model))
        for (value, name, ds, model), location in zip(runs, locations)
    ]
    table = {"param": param, "values": [value for value, *_ in runs], "overrides": list(overrides),
             "rows": rows, "config": raw}
    write_file(out_dir, SWEEP_NAME, json.dumps(table, indent=2).encode())
    model = runs[0][3]
    against_roughness = param in ROUGHNESS_PARAMS and _roughness(model) is not None
    # the other of delta and wavelength, fixed along the sweep: it maps roughness to the swept value
    fixed = model.params["wavelength" if param == "landscape.delta" else "delta"] if against_roughness else None
    if any(row["dimension"] is not None for row in rows):
        write_file(out_dir, PLOT_NAME, _plot(param, rows, against_roughness, fixed))
    return table
