"""Maps on disk, written block by block and resumable.

An output directory holds ``map.zarr``, ``map.png`` and ``summary.json``.
The zarr store is created up front from the lazy Dataset (a template: metadata
and small coordinates only). Then each dask block is computed and written
into its region, and only after the write returns is a marker file
``blocks-done/<i>.<j>`` created beside the store. A killed run leaves at worst a
block without marker, which the next run of the same configuration
recomputes; blocks with markers are never recomputed. The markers, not the
chunk files, say what is done: zarr skips writing chunks equal to the fill
value, so a missing chunk file proves nothing.

``summary.json`` is written last, so a directory without it holds no
complete map. A directory holding a map of another configuration is never
touched.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import dask
import numpy as np
import xarray as xr
import zarr

from fractalscape.cluster import active_client
from fractalscape.errors import ConfigError
from fractalscape.progress import BlockProgress
from fractalscape.trainability import INDEXED_AXIS_MAX

MAP_NAME = "map.zarr"
SUMMARY_NAME = "summary.json"
DONE_DIR = "blocks-done"


def _stored_config(store: Path) -> str | None:
    try:
        return zarr.open_group(store, mode="r").attrs.get("config")
    except Exception:  # noqa: BLE001  (any unreadable store is foreign to us)
        return None


def prepare_output(out_dir, config_json: str) -> Path:
    """Check ``out_dir`` can take the map of ``config_json``; create it.

    Refuses a path that is a file, an unwritable directory, a foreign zarr
    store, and a directory holding a map (complete or not) of another
    configuration.
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
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"output directory {str(out)!r} is not writable; choose another --out")
    return out


def is_complete(out_dir) -> bool:
    """Whether ``out_dir`` holds a finished map (its summary was written)."""
    return (Path(out_dir) / SUMMARY_NAME).is_file()


def _marker(out: Path, kind: str, index: tuple[int, ...]) -> Path:
    return out / DONE_DIR / f"{kind}{'.'.join(map(str, index))}"


def _write_block(arrays: dict, store: str, region: tuple, marker: str) -> int:
    group = zarr.open_group(store, mode="r+")
    for name, block in arrays.items():
        group[name][region] = block
    Path(marker).touch()
    return 1


def _block_tasks(ds: xr.Dataset, out: Path) -> list:
    """One delayed write per block not yet marked done (data variables, then lazy coordinates)."""
    tasks = []
    variables = list(ds.data_vars)
    first = ds[variables[0]].data
    delayed = {name: ds[name].data.to_delayed() for name in variables}
    offsets = [np.concatenate([[0], np.cumsum(c)]) for c in first.chunks]
    for index in np.ndindex(*first.numblocks):
        marker = _marker(out, "", index)
        if marker.exists():
            continue
        region = tuple(slice(int(o[i]), int(o[i + 1])) for o, i in zip(offsets, index))
        blocks = {name: delayed[name][index] for name in variables}
        tasks.append(dask.delayed(_write_block)(blocks, str(out / MAP_NAME), region, str(marker)))
    for name, coord in ds.coords.items():
        if not isinstance(coord.data, dask.array.Array):
            continue  # in-memory coordinates were written with the template
        edges = np.concatenate([[0], np.cumsum(coord.data.chunks[0])])
        for i, block in enumerate(coord.data.to_delayed()):
            marker = _marker(out, f"coord-{name}-", (i,))
            if not marker.exists():
                region = (slice(int(edges[i]), int(edges[i + 1])),)
                tasks.append(dask.delayed(_write_block)({name: block}, str(out / MAP_NAME), region, str(marker)))
    return tasks


def write_map(ds: xr.Dataset, out_dir, *, progress: bool = False) -> dict:
    """Compute ``ds`` block by block into ``out_dir/map.zarr``, resuming a partial run.

    Memory stays bounded by a few blocks whatever the grid size. Blocks
    already stored by an interrupted run of the same configuration are not
    recomputed; the finished store is bit-identical to an uninterrupted run.

    Returns
    -------
    dict
        ``points``, ``diverged_points``, ``fraction_diverged``, ``gd_steps``
        (GD steps actually taken), ``blocks_computed``, ``blocks_total``,
        ``compute_seconds``, ``gd_steps_per_second``.

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
    store = out / MAP_NAME
    if not store.exists():
        encoding = {name: {"chunks": [c[0] for c in var.chunks]} for name, var in ds.variables.items()
                    if var.chunks}
        shutil.rmtree(out / DONE_DIR, ignore_errors=True)  # markers of a deleted store
        ds.to_zarr(store, mode="w-", compute=False, consolidated=False, encoding=encoding)
        (out / DONE_DIR).mkdir()
    tasks = _block_tasks(ds, out)
    blocks_total = int(np.prod(ds[list(ds.data_vars)[0]].data.numblocks))
    client = active_client()
    if client is None:
        with BlockProgress(len(tasks), enabled=progress) as bar:
            dask.compute(*tasks)
        seconds = bar.elapsed
    else:
        start = time.perf_counter()
        futures = client.compute(tasks)
        if progress:
            from distributed import progress as distributed_progress

            distributed_progress(futures)
        client.gather(futures)
        seconds = time.perf_counter() - start
    stored = open_map(store)
    escape = stored.escape_step
    steps = stored.attrs["steps"]
    diverged, useful = (int(n) for n in dask.compute(
        (escape >= 0).sum(), xr.where(escape >= 0, escape, steps).sum(dtype=np.int64)
    ))
    return {
        "points": int(escape.size),
        "diverged_points": diverged,
        "fraction_diverged": diverged / escape.size,
        "gd_steps": useful,
        "blocks_total": blocks_total,
        "blocks_computed": sum(1 for _ in tasks),
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
    """Open a stored map lazily, from its output directory or its ``map.zarr``.

    Examples
    --------
    >>> open_map("/nonexistent")
    Traceback (most recent call last):
    ...
    fractalscape.errors.ConfigError: no map at '/nonexistent': expected a directory written by 'fractalscape map'
    """
    path = Path(out_dir_or_store)
    store = path / MAP_NAME if (path / MAP_NAME).exists() else path
    if not store.exists():
        raise ConfigError(f"no map at {str(path)!r}: expected a directory written by 'fractalscape map'")
    try:
        attrs = zarr.open_group(store, mode="r").attrs
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"{str(store)!r} is not a readable zarr store: {err}") from None
    if "config" not in attrs:
        raise ConfigError(f"{str(store)!r} is a zarr store but not a fractalscape map (no config in attrs)")
    ds = xr.open_zarr(store, consolidated=False, create_default_indexes=False)
    # As trainability() does: an index for axes small enough to hold in memory.
    for dim in ds.dims:
        if dim in ds.coords and ds.sizes[dim] <= INDEXED_AXIS_MAX:
            ds = ds.set_xindex(dim)
    return ds
