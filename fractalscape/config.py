"""Run configurations: TOML files, dicts and bundled presets, checked into typed objects.

Schema (``[landscape]`` or ``[network]``, and ``[[axis]]``, are required;
``[descent]`` keys have defaults)::

    [landscape]
    name = "cosine-multiplicative"     # a registered landscape
    delta = 0.2                        # ... and its parameters
    wavelength = 0.1
    dim = 1                            # optional, default 1

    [descent]
    x0 = 1.0                           # number or list of dim numbers
    lr = 0.5                           # only if no axis sweeps the learning rate
    steps = 1000
    threshold = 1e8                    # or inf: stop only at a non-finite loss
    precision = "libm"
    label = "threshold"                # networks also "sohl-dickstein"
    optimizer = "gd"                   # momentum | nesterov | adam | adamw (fractalscape.optimizers)
    beta2 = 0.999                      # ... and its hyperparameters, when not on an axis

    [[axis]]                           # 1 to 3 of these
    name = "lr"
    start = 0.0
    stop = 1.5
    num = 1048577
    scale = "linear"                   # or "log"
    chunk = 65536                      # optional
    ensemble = false                   # optional: repeats, not a direction (fractalscape.ensemble)

A Sohl-Dickstein network replaces ``[landscape]`` with::

    [network]
    nonlinearity = "tanh"              # tanh | relu | identity | gelu
    width = 16
    depth = 2                          # weight layers, 1 to 6
    parameterization = "mean-field"    # mean-field | ntk | standard
    loss = "mse"                       # mse | logistic
    data = "full"                      # full | single | minibatch
    batch_size = 16                    # minibatch size
    seed = 0

and its ``[descent]`` takes ``lr``, ``lr_W0`` .., ``init_offset``,
``init_scale`` (when not on an axis), ``steps``, ``threshold`` (default
1e6), ``precision``, ``label``, ``optimizer`` and its hyperparameters. The
model tables are :data:`MODEL_TABLES`; everything else reads the model
protocol (:mod:`fractalscape.model`).
"""

from __future__ import annotations

import copy
import difflib
import os
import json
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import xarray as xr

from fractalscape.errors import ConfigError
from fractalscape.grid import Axis, Grid
from fractalscape.landscapes import landscape
from fractalscape.model import Model
from fractalscape.networks import NetworkModel
from fractalscape.optimizers import HYPERPARAMETERS
from fractalscape.trainability import RUN_KEYS, descent_settings, trainability


def _landscape_table(table: dict) -> Model:
    if "name" not in table:
        raise ConfigError("[landscape] is missing the key 'name' (e.g. name = \"cosine-additive\")")
    if not isinstance(table["name"], str):
        raise ConfigError(f"[landscape] name must be a string (e.g. name = \"cosine-additive\"), got {table['name']!r}")
    return landscape(table.pop("name"), **table)


def _network_table(table: dict) -> Model:
    unknown = sorted(set(table) - set(NetworkModel.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"[network] has unknown key {unknown[0]!r}; valid keys: "
                          f"{', '.join(NetworkModel.__dataclass_fields__)}")
    return NetworkModel(**table)


#: The config tables that describe a model, and how each builds one (:mod:`fractalscape.model`).
MODEL_TABLES = {"landscape": _landscape_table, "network": _network_table}


def descent_keys(model: Model) -> tuple[str, ...]:
    """The keys ``[descent]`` accepts for ``model``.

    >>> descent_keys(landscape("quadratic"))[:4]
    ('lr', 'x0', 'steps', 'threshold')
    """
    return (*model.descent_slots(), *RUN_KEYS, *HYPERPARAMETERS)
AXIS_KEYS = {"name", "start", "stop", "num", "scale", "chunk", "ensemble"}
AXIS_REQUIRED = ("name", "start", "stop", "num")


@dataclass(frozen=True)
class Config:
    """A checked run configuration: what :func:`open_config` and ``fractalscape map`` compute."""

    model: Model
    grid: Grid
    descent: dict

    def dataset(self) -> xr.Dataset:
        """The lazy trainability map of this configuration."""
        return trainability(self.model, self.grid, **self.descent)


def preset_names() -> list[str]:
    """Names of the bundled presets."""
    return sorted(p.name.removesuffix(".toml") for p in resources.files("fractalscape.presets").iterdir()
                  if p.name.endswith(".toml"))


def preset_text(name: str) -> str:
    """The TOML text of the bundled preset ``name``.

    Examples
    --------
    >>> print(preset_text("liu-additive").splitlines()[2])
    [landscape]
    """
    if name not in preset_names():
        close = difflib.get_close_matches(name, preset_names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"no preset {name!r}{hint}; presets: {', '.join(preset_names())}")
    return resources.files("fractalscape.presets").joinpath(name + ".toml").read_text(encoding="utf-8")


def _read_toml(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source} is not valid TOML: {err}") from None


def read_config(source) -> dict:
    """The raw config dict from a dict, a TOML path, or a preset name."""
    if isinstance(source, dict):
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(
            f"a config must be a table (dict), a TOML path or a preset name, got {type(source).__name__}"
        )
    source = str(source)
    path = Path(source)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file {source!r} does not exist (or is not a file)")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ConfigError(f"config file {source!r} is not UTF-8 text (TOML must be): byte {err.start} is "
                              f"{err.object[err.start:err.start + 1]!r}") from None
        except OSError as err:
            raise ConfigError(f"cannot read config file {source!r}: {err.strerror or err}") from None
        return _read_toml(text, f"config file {source!r}")
    if source in preset_names():
        return _read_toml(preset_text(source), source)
    close = difflib.get_close_matches(source, preset_names(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(
        f"{source!r} is neither a config file nor a preset{hint}; presets: {', '.join(preset_names())}"
    )


def _apply_override(raw: dict, assignment: str) -> None:
    key, sep, text = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set takes KEY=VALUE (e.g. descent.steps=100 or axis.0.num=4097), got {assignment!r}")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        node = node[int(part)] if isinstance(node, list) and part.isdigit() else node.setdefault(part, {})
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"--set {key}: {part!r} is not a table")
    if isinstance(node, list):
        raise ConfigError(f"--set {key}: name a key inside the list entry, e.g. axis.0.num")
    node[leaf] = value


def with_overrides(raw: dict, assignments, *, notes: list | None = None) -> dict:
    """A deep copy of the raw config ``raw`` with ``KEY=VALUE`` assignments applied (``--set``).

    An axis whose ``num`` is set below its ``chunk`` (and whose chunk is not
    set too) gets ``chunk = num``; ``notes``, a list, receives a line saying so.

    Examples
    --------
    >>> raw = {"descent": {"steps": 10}, "axis": [{"name": "lr", "num": 3}]}
    >>> with_overrides(raw, ["descent.steps=20", "axis.0.num=5"])
    {'descent': {'steps': 20}, 'axis': [{'name': 'lr', 'num': 5}]}
    >>> raw["descent"]["steps"]
    10
    """
    raw = copy.deepcopy(raw)
    for assignment in assignments:
        try:
            _apply_override(raw, assignment)
        except (IndexError, ValueError, TypeError, AttributeError) as err:
            raise ConfigError(f"--set {assignment!r} does not fit the config: {err}") from None
    _fit_chunks(raw, assignments, notes)
    return raw


def _fit_chunks(raw: dict, assignments, notes: list | None) -> None:
    """Shrink the chunk of each axis whose ``num`` an assignment set below it (unless one set its chunk too)."""
    keys = [assignment.partition("=")[0].split(".") for assignment in assignments]
    set_chunk = {key[1] for key in keys if len(key) == 3 and key[0] == "axis" and key[2] == "chunk"}
    axes = raw.get("axis")
    for key in keys:
        if len(key) != 3 or key[0] != "axis" or key[2] != "num" or key[1] in set_chunk or not key[1].isdigit():
            continue
        entry = axes[int(key[1])] if isinstance(axes, list) and int(key[1]) < len(axes) else None
        if not isinstance(entry, dict):
            continue
        num, chunk = entry.get("num"), entry.get("chunk")
        if all(isinstance(v, int) and not isinstance(v, bool) for v in (num, chunk)) and 1 <= num < chunk:
            entry["chunk"] = num
            if notes is not None:
                notes.append(f"note: axis {entry.get('name', key[1])!r}: chunk {chunk} exceeds num={num}; "
                             f"using chunk = {num}")


def _table(raw: dict, key: str, kind: type):
    if key not in raw:
        raise ConfigError(f"config is missing the [{key}] table" if kind is dict else
                          f"config is missing [[{key}]] entries (1 to 3 axes)")
    value = raw[key]
    if not isinstance(value, kind):
        raise ConfigError(f"config key {key!r} must be a {'table' if kind is dict else 'list of tables'}, got {value!r}")
    return value


def _axis(entry, position: int) -> Axis:
    if not isinstance(entry, dict):
        raise ConfigError(f"axis #{position + 1} must be a table, got {entry!r}")
    label = entry.get("name", f"#{position + 1}")
    for key in AXIS_REQUIRED:
        if key not in entry:
            raise ConfigError(f"axis {label!r} is missing the key {key!r} (needs {', '.join(AXIS_REQUIRED)})")
    unknown = sorted(set(entry) - AXIS_KEYS)
    if unknown:
        raise ConfigError(f"axis {label!r} has unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(AXIS_KEYS))}")
    return Axis(**entry)


def load_config(source) -> Config:
    """Check a configuration and build its typed objects.

    Parameters
    ----------
    source : dict, path or str
        A dict in the TOML schema (module docstring), a ``.toml`` path, or a
        preset name (see ``fractalscape presets``).

    Examples
    --------
    >>> cfg = load_config("liu-multiplicative")
    >>> cfg.grid.shape, cfg.descent["steps"]
    ((1048577,), 1000)
    """
    raw = read_config(source)
    unknown = sorted(set(raw) - {"landscape", "network", "descent", "axis"})
    if unknown:
        raise ConfigError(f"unknown config table {unknown[0]!r}; valid tables: landscape or network, descent, axis")
    kinds = [kind for kind in MODEL_TABLES if kind in raw]
    if len(kinds) != 1:
        raise ConfigError("a config needs exactly one of the tables [landscape] and [network], "
                          f"got {' and '.join(kinds) or 'neither'}")
    model = MODEL_TABLES[kinds[0]](dict(_table(raw, kinds[0], dict)))
    grid = Grid([_axis(e, i) for i, e in enumerate(_table(raw, "axis", list))])
    descent_raw = dict(_table(raw, "descent", dict)) if "descent" in raw else {}
    for key in ("precision", "label", "optimizer"):
        if key in descent_raw and not isinstance(descent_raw[key], str):
            raise ConfigError(f"[descent] {key} must be a string, got {descent_raw[key]!r}")
    unknown = sorted(set(descent_raw) - set(descent_keys(model)))
    if unknown:
        close = difflib.get_close_matches(unknown[0], descent_keys(model), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"[descent] has unknown key {unknown[0]!r}{hint}; valid keys for {model.owner()}: "
                          f"{', '.join(descent_keys(model))}")
    descent = descent_settings(model, grid, **descent_raw)
    return Config(model, grid, descent)


def open_config(source) -> xr.Dataset:
    """The lazy trainability map a config describes (what ``fractalscape map`` computes).

    Examples
    --------
    >>> ds = open_config({"landscape": {"name": "quadratic"},
    ...                   "descent": {"x0": 1.0, "steps": 50},
    ...                   "axis": [{"name": "lr", "start": 0.5, "stop": 1.5, "num": 3}]})
    >>> ds.escape_step.values.tolist()
    [-1, -1, 14]
    """
    return load_config(source).dataset()


def config_of(ds: xr.Dataset) -> dict:
    """The config dict stored in a map's provenance."""
    try:
        return json.loads(ds.attrs["config"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError("this dataset carries no fractalscape config in attrs['config']") from None
