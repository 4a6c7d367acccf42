"""Maps on disk: an output directory holding ``map.zarr``, ``map.png`` and ``summary.json``.

``summary.json`` is written last, so a directory without it holds no complete
map, whatever ``map.zarr`` contains. A directory already holding a map of a
different configuration is never overwritten.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import xarray as xr

from fractalscape.errors import ConfigError

MAP_NAME = "map.zarr"
SUMMARY_NAME = "summary.json"


def _stored_config(store: Path) -> str | None:
    try:
        return xr.open_zarr(store, consolidated=False).attrs.get("config")
    except Exception:  # noqa: BLE001  (any unreadable store is foreign to us)
        return None


def prepare_output(out_dir, config_json: str) -> Path:
    """Check ``out_dir`` can take the map of ``config_json``; create it.

    Refuses a path that is a file, and a directory holding a map (complete or
    not) of another configuration.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {str(out)!r} is a file; give a directory for --out")
    store = out / MAP_NAME
    if store.exists():
        stored = _stored_config(store)
        if stored is None:
            raise ConfigError(
                f"{str(store)!r} exists but is not a fractalscape map; choose another --out or delete it"
            )
        if json.loads(stored) != json.loads(config_json):
            raise ConfigError(
                f"{str(out)!r} already holds a map of a different configuration; "
                "choose another --out or delete that directory"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create output directory {str(out)!r}: {err.strerror}") from None
    return out


def is_complete(out_dir) -> bool:
    """Whether ``out_dir`` holds a finished map (its summary was written)."""
    return (Path(out_dir) / SUMMARY_NAME).is_file()


def write_map(ds: xr.Dataset, out_dir) -> dict:
    """Compute ``ds`` block by block into ``out_dir/map.zarr``; returns timing and counts.

    Memory stays bounded by a few blocks: dask streams each computed block to
    its zarr chunk.

    Examples
    --------
    >>> import tempfile, fractalscape as fs
    >>> ds = fs.open_config({"landscape": {"name": "quadratic"},
    ...                      "axis": [{"name": "lr", "start": 0.0, "stop": 1.5, "num": 7}]})
    >>> info = write_map(ds, tempfile.mkdtemp())
    >>> info["points"], info["diverged_points"]
    (7, 2)
    """
    out = prepare_output(out_dir, ds.attrs["config"])
    (out / SUMMARY_NAME).unlink(missing_ok=True)
    encoding = {name: {"chunks": [c[0] for c in var.chunks]} for name, var in ds.data_vars.items()}
    start = time.perf_counter()
    ds.to_zarr(out / MAP_NAME, mode="w", consolidated=False, encoding=encoding)
    seconds = time.perf_counter() - start
    stored = xr.open_zarr(out / MAP_NAME, consolidated=False)
    escape = stored.escape_step
    steps = stored.attrs["steps"]
    diverged = int((escape >= 0).sum().compute())
    useful = int(xr.where(escape >= 0, escape, steps).sum(dtype=np.int64).compute())
    return {
        "points": int(escape.size),
        "diverged_points": diverged,
        "fraction_diverged": diverged / escape.size,
        "gd_steps": useful,
        "compute_seconds": seconds,
        "gd_steps_per_second": useful / seconds if seconds > 0 else None,
    }


def write_summary(out_dir, summary: dict) -> Path:
    """Write ``summary.json``: the marker that the map in ``out_dir`` is complete."""
    path = Path(out_dir) / SUMMARY_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True))
    tmp.replace(path)
    return path


def open_map(out_dir_or_store) -> xr.Dataset:
    """Open a stored map lazily, from its output directory or its ``map.zarr``."""
    path = Path(out_dir_or_store)
    store = path / MAP_NAME if (path / MAP_NAME).exists() else path
    if not store.exists():
        raise ConfigError(f"no map at {str(path)!r}: expected a directory written by 'fractalscape map'")
    try:
        ds = xr.open_zarr(store, consolidated=False)
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"{str(store)!r} is not a readable zarr store: {err}") from None
    if "config" not in ds.attrs:
        raise ConfigError(f"{str(store)!r} is a zarr store but not a fractalscape map (no config in attrs)")
    return ds
