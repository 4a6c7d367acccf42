"""Maps on disk, written block by block and resumable.

An output directory holds ``map.zarr``, ``map.png`` and ``summary.json``.
The zarr store is created up front from the lazy Dataset (a template: metadata
and small coordinates only). Then each dask block is computed and written
into its region, and only after the write returns is a marker file
``blocks-done/<i>.<j>`` created beside the store. A killed run leaves at worst a
block without marker, which the next run of the same configuration
recomputes; blocks with markers are never recomputed. Every chunk is
written, also one equal to zarr's fill value (``write_empty_chunks``), so a
marked block whose chunk file is missing is a damaged map.

The store is compact (:mod:`fractalscape.codec`: ``final_loss`` as float32
log10 of its absolute value plus its sign, ``escape_step`` as int16 when the
steps fit, blosc-zstd with byte shuffle); ``write_map(..., full_loss=True)``
keeps the float64 ``final_loss`` as well. :func:`open_map` decodes either
layout, and stores written before, into the Dataset
:func:`fractalscape.trainability` returns. Multiscale overviews are written
into ``map.zarr/overviews`` once every block is done
(:mod:`fractalscape.overviews`).

Readers (:func:`open_map`, hence ``dimension``, ``render``, ``serve``) check
both, every marker and every chunk, and refuse an incomplete or damaged map
unless asked to read it anyway (``allow_incomplete``, and then the Dataset
says so in ``attrs["incomplete"]``). ``summary.json`` is written last, so a
directory without it holds no finished run. A directory holding a map of
another configuration is never touched.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time

import dask
import fsspec
import numpy as np
import xarray as xr
import zarr

from fractalscape.cluster import active_client
from fractalscape.codec import compressor, decoded, encoded
from fractalscape.errors import ConfigError
from fractalscape.gd import KERNEL_VERSION
from fractalscape.progress import BlockProgress
from fractalscape.trainability import INDEXED_AXIS_MAX

MAP_NAME = "map.zarr"
SUMMARY_NAME = "summary.json"
DONE_DIR = "blocks-done"
class Location:
    """An output directory: a local path, or an fsspec URL (``s3://bucket/run``, ``file:///data/run``).

    Examples
    --------
    >>> Location("runs/x").join(MAP_NAME)
    'runs/x/map.zarr'
    """

    def __init__(self, where):
        self.where = str(where).rstrip("/")
        self.is_url = "://" in self.where
        self.protocol = self.where.split("://")[0] if self.is_url else "file"
        #: a path on this machine's filesystem (a plain path or a file:// URL): locks and free space apply
        self.is_local = self.protocol in ("file", "local")
        # Local files need their directories made; object stores have none.
        self.storage_options = {"auto_mkdir": True} if self.is_local else {}
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.where, **self.storage_options)
        except (ValueError, ImportError) as err:  # unknown protocol, or its package is not installed
            raise ConfigError(f"cannot open {self.where!r}: {err}; give a local path or a known fsspec URL "
                              "(file://, s3://, gs://, ...)") from None

    def join(self, *parts: str) -> str:
        """A location inside this one, in the form zarr and xarray take (path or URL)."""
        return "/".join([self.where, *parts])

    def path(self, *parts: str) -> str:
        """The filesystem path of a location inside this one."""
        return "/".join([self.root, *parts])

    def zarr_options(self) -> dict:
        return {"storage_options": self.storage_options} if self.is_url else {}

    def __str__(self) -> str:
        return self.where


def _stored_attrs(location: Location) -> dict | None:
    try:
        return dict(zarr.open_group(location.join(MAP_NAME), mode="r", **location.zarr_options()).attrs)
    except Exception:  # noqa: BLE001  (any unreadable store is foreign to us)
        return None


def _stored_config(location: Location) -> str | None:
    return (_stored_attrs(location) or {}).get("config")


def prepare_output(out_dir, config_json: str) -> Location:
    """Check ``out_dir`` (a path or an fsspec URL) can take the map of ``config_json``; create it.

    Refuses a path that is a file, an unwritable directory, a foreign zarr
    store, and a directory holding a map (complete or not) of another
    configuration.
    """
    out = Location(out_dir)
    fs = out.fs
    if fs.exists(out.root) and not fs.isdir(out.root):
        raise ConfigError(f"output path {str(out)!r} is a file; give a directory for --out")
    if fs.exists(out.path(MAP_NAME)):
        stored = _stored_config(out)
        if stored is None:
            raise ConfigError(
                f"{out.join(MAP_NAME)!r} exists but is not a fractalscape map; choose another --out or delete it"
            )
        if json.loads(stored) != json.loads(config_json):
            raise ConfigError(
                f"{str(out)!r} already holds a map of a different configuration; "
                "choose another --out or delete that directory"
            )
        attrs = _stored_attrs(out)
        kernels = attrs.get("kernel_version", 1)
        if kernels != KERNEL_VERSION and _damage(check_complete(out_dir)):
            raise ConfigError(
                f"{str(out)!r} holds an unfinished map computed by kernel version {kernels} (fractalscape "
                f"{attrs.get('fractalscape_version', '?')}); these are version {KERNEL_VERSION}, and "
                "resuming would mix blocks of both: delete that directory (or choose another --out) to start afresh"
            )
    try:
        fs.makedirs(out.path(DONE_DIR), exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create output directory {str(out)!r}: {err.strerror or err}") from None
    if not out.is_url and not os.access(out.root, os.W_OK | os.X_OK):
        raise ConfigError(f"output directory {str(out)!r} is not writable; choose another --out")
    return out


def is_complete(out_dir) -> bool:
    """Whether ``out_dir`` holds a finished map: its summary was written and every block is intact."""
    out = Location(out_dir)
    return out.fs.isfile(out.path(SUMMARY_NAME)) and not _damage(check_complete(out_dir))


def _marker_name(kind: str, index: tuple[int, ...]) -> str:
    return f"{kind}{'.'.join(map(str, index))}"


def _write_block(arrays: dict, store: str, options: dict, regions: dict, marker: str, steps: int) -> tuple:
    """Write one block and its marker; returns the GD steps the block took and its diverged points.

    Both are 0 for a coordinate block. A map computed in one run sums them
    rather than reading the whole store back.
    """
    group = zarr.open_group(store, mode="r+", **options)
    for name, block in arrays.items():
        # every chunk on disk, fill-valued or not: a missing one is then damage
        group[name].with_config({"write_empty_chunks": True})[regions[name]] = block
    fs, path = fsspec.core.url_to_fs(marker, **options.get("storage_options", {}))
    fs.touch(path)
    escape, diverged = arrays.get("escape_step"), arrays.get("diverged")
    return (0 if escape is None else int(np.where(escape >= 0, escape, steps).sum(dtype=np.int64)),
            0 if diverged is None else int(np.count_nonzero(diverged)))


def _block_tasks(ds: xr.Dataset, out: Location) -> tuple[list, bool]:
    """One delayed write per block not yet marked done (data variables, then lazy coordinates).

    Also says whether that is every block (none was done before).
    """
    done = _block_state(out)[1]
    store, options = out.join(MAP_NAME), out.zarr_options()
    pending = []  # (block name, {variable: delayed block}, {variable: region})
    variables = list(ds.data_vars)
    full = ds[max(variables, key=lambda name: ds[name].ndim)]
    # optimize_graph=False: optimized one by one, each variable's graph would fuse
    # the shared GD kernel into its own chain, and every block would run it once per variable.
    delayed = {name: ds[name].data.to_delayed(optimize_graph=False) for name in variables}
    # Ensemble summaries lack the ensemble axes, which are one block: each of their
    # blocks belongs to the full-grid block at the same place along the other axes.
    kept = {name: [full.dims.index(d) for d in ds[name].dims] for name in variables}
    offsets = [np.concatenate([[0], np.cumsum(c)]) for c in full.data.chunks]
    for index in np.ndindex(*full.data.numblocks):
        region = tuple(slice(int(o[i]), int(o[i + 1])) for o, i in zip(offsets, index))
        blocks = {name: delayed[name][tuple(index[k] for k in kept[name])] for name in variables}
        regions = {name: tuple(region[k] for k in kept[name]) for name in variables}
        pending.append((_marker_name("", index), blocks, regions))
    for name, coord in ds.coords.items():
        if not isinstance(coord.data, dask.array.Array):
            continue  # in-memory coordinates were written with the template
        edges = np.concatenate([[0], np.cumsum(coord.data.chunks[0])])
        for i, block in enumerate(coord.data.to_delayed()):
            region = (slice(int(edges[i]), int(edges[i + 1])),)
            pending.append((_marker_name(f"coord-{name}-", (i,)), {name: block}, {name: region}))
    tasks = [
        dask.delayed(_write_block)(blocks, store, options, regions, out.join(DONE_DIR, marker), ds.attrs["steps"])
        for marker, blocks, regions in pending
        if marker not in done
    ]
    return tasks, len(tasks) == len(pending)


def write_map(ds: xr.Dataset, out_dir, *, progress: bool = False, full_loss: bool = False) -> dict:
    """Compute ``ds`` block by block into ``out_dir/map.zarr``, resuming a partial run.

    ``out_dir`` is a local directory or an fsspec URL that every dask worker
    can reach. Memory stays bounded by a few blocks whatever the grid size.
    Blocks already stored by an interrupted run of the same configuration
    are not recomputed; the finished store is bit-identical to an
    uninterrupted run, whatever the chunking or scheduler. Once every block
    is stored, the multiscale overviews are written
    (:func:`fractalscape.overviews.write_overviews`).

    The store is compact (module docstring); ``full_loss=True`` keeps a
    float64 copy of ``final_loss`` too. A resumed run keeps the layout the
    store was started with.

    Returns
    -------
    dict
        ``points``, ``diverged_points``, ``fraction_diverged``, ``gd_steps``
        (GD steps the whole map took), ``blocks_computed``, ``blocks_total``,
        ``compute_seconds``, ``gd_steps_computed`` (steps of the blocks
        computed in this call) and ``gd_steps_per_second`` (those over
        ``compute_seconds``; None when no block was computed, as after a
        resume that found every block done).

    Examples
    --------
    >>> import tempfile, fractalscape as fs
    >>> ds = fs.open_config({"landscape": {"name": "quadratic"},
    ...                      "axis": [{"name": "lr", "start": 0.0, "stop": 1.5, "num": 7}]})
    >>> info = write_map(ds, tempfile.mkdtemp())
    >>> info["points"], info["diverged_points"]
    (7, 2)
    """
    if any(var.chunks is None for var in ds.data_vars.values()):
        ds = ds.chunk()  # an in-memory map (already computed) is written as one block
    out = prepare_output(out_dir, ds.attrs["config"])
    fs = out.fs
    if fs.exists(out.path(SUMMARY_NAME)):
        fs.rm(out.path(SUMMARY_NAME))
    if fs.exists(out.path(MAP_NAME)):
        attrs = _stored_attrs(out)
        ds = encoded(ds, bool(attrs.get("full_loss")), compact="store_format" in attrs)
    else:
        ds = encoded(ds, full_loss, compact=True)
        encoding = {name: {"chunks": [c[0] for c in var.chunks]} for name, var in ds.variables.items()
                    if var.chunks}
        for name, var in ds.variables.items():  # coordinates too: shuffled, a linspace compresses 30-fold
            if var.ndim:
                encoding.setdefault(name, {})["compressors"] = [compressor(name)]
        for stale in fs.ls(out.path(DONE_DIR), detail=False):  # markers of a deleted store
            fs.rm(stale)
        command = shlex.join(["fractalscape", *sys.argv[1:]]) if _is_cli() else None
        template = ds.assign_attrs(every_chunk_written=1, **({"command": command} if command else {}))
        template.to_zarr(out.join(MAP_NAME), mode="w-", compute=False, consolidated=False, encoding=encoding,
                         **out.zarr_options())
    tasks, every_block = _block_tasks(ds, out)
    blocks_total = max(int(np.prod(ds[name].data.numblocks)) for name in ds.data_vars)
    client = active_client()
    if client is None:
        with BlockProgress(len(tasks), enabled=progress) as bar:
            computed = dask.compute(*tasks)
        seconds = bar.elapsed
    else:
        start = time.perf_counter()
        futures = client.compute(tasks)
        if progress:
            from distributed import progress as distributed_progress

            distributed_progress(futures)
        computed = client.gather(futures)
        seconds = time.perf_counter() - start
    stored = open_map(out_dir)
    from fractalscape.overviews import check_overviews, write_overviews

    if tasks or check_overviews(out_dir, read=False):  # blocks changed, or overviews missing or damaged
        write_overviews(out_dir)
    escape = stored.escape_step
    steps_computed = sum(steps for steps, _ in computed)
    if every_block:  # every block computed here: their sums are the map's
        useful, diverged = steps_computed, sum(count for _, count in computed)
    else:  # a resumed map: read back what earlier runs stored
        useful, diverged = (int(n) for n in dask.compute(
            xr.where(escape >= 0, escape, stored.attrs["steps"]).sum(dtype=np.int64),
            stored.diverged.sum(),  # the map's own label
        ))
    return {
        "points": int(escape.size),
        "diverged_points": diverged,
        "fraction_diverged": diverged / escape.size,
        "gd_steps": useful,
        "blocks_total": blocks_total,
        "blocks_computed": len(tasks),
        "compute_seconds": seconds,
        "gd_steps_computed": steps_computed,
        "gd_steps_per_second": steps_computed / seconds if tasks and seconds > 0 else None,
    }


def _is_cli() -> bool:
    return os.path.basename(sys.argv[0]) in ("fractalscape", "__main__.py")


def _blocked_arrays(group) -> tuple[list[str], list[str]]:
    """Names of a stored map's data variables and of its coordinates written block by block (lazy ones)."""
    arrays = dict(group.arrays())
    dims = {d for array in arrays.values() for d in array.metadata.dimension_names or ()}
    variables = sorted(name for name, array in arrays.items() if name not in dims and array.ndim)
    lazy = sorted(name for name in dims if name in arrays and arrays[name].shape[0] > INDEXED_AXIS_MAX)
    return variables, lazy


def _chunk_files(out: Location, name: str) -> set[str]:
    """Marker-style names (``i.j``) of the chunk files of variable ``name`` on disk."""
    root = out.path(MAP_NAME, name, "c")
    if not out.fs.isdir(root):
        return set()
    return {p[len(root) + 1:].replace("/", ".") for p in out.fs.find(root)}


def _block_state(out: Location) -> tuple[list[str], set[str], dict]:
    """Every block's marker name, those finished and intact, and chunk files lost per variable."""
    group = zarr.open_group(out.join(MAP_NAME), mode="r", **out.zarr_options())
    variables, lazy = _blocked_arrays(group)
    full = max(variables, key=lambda name: group[name].ndim)
    expected = [_marker_name("", index) for index in np.ndindex(*group[full].cdata_shape)]
    expected += [_marker_name(f"coord-{name}-", (i,)) for name in lazy for i in range(group[name].cdata_shape[0])]
    done = set()
    if out.fs.isdir(out.path(DONE_DIR)):
        done = {p.rsplit("/", 1)[-1] for p in out.fs.ls(out.path(DONE_DIR), detail=False)}
    lost = {}
    if group.attrs.get("every_chunk_written"):
        full_dims = list(group[full].metadata.dimension_names)
        for name in variables + lazy:
            files = _chunk_files(out, name)
            if name in lazy:
                gone = {m for m in done if m.startswith(f"coord-{name}-") and m.rsplit("-", 1)[1] not in files}
            else:
                kept = [full_dims.index(d) for d in group[name].metadata.dimension_names]
                gone = {m for m in done if not m.startswith("coord-")
                        and ".".join(m.split(".")[k] for k in kept) not in files}
            if gone:
                lost[name] = len(gone)
                done -= gone
    return expected, done, lost


def check_complete(where) -> dict:
    """What a stored map lacks: blocks never finished, or whose chunk files were lost after they were.

    Returns
    -------
    dict
        ``blocks_total`` (data blocks), ``blocks_missing`` (blocks, data or
        lazy coordinates, not finished or damaged: rerunning the map
        computes them), ``chunks_missing`` (variable -> chunk files absent
        although their blocks were marked done; checked on stores that
        write every chunk, attribute ``every_chunk_written``).

    Examples
    --------
    >>> import tempfile, fractalscape as fs
    >>> ds = fs.trainability(fs.landscape("quadratic"), fs.Grid([fs.Axis("lr", 0.0, 1.5, 9, chunk=4)]), steps=9)
    >>> out = tempfile.mkdtemp()
    >>> _ = write_map(ds, out)
    >>> check_complete(out)
    {'blocks_total': 3, 'blocks_missing': 0, 'chunks_missing': {}}
    """
    expected, done, lost = _block_state(_out_dir(Location(where)))
    return {
        "blocks_total": sum(not m.startswith("coord-") for m in expected),
        "blocks_missing": sum(m not in done for m in expected),
        "chunks_missing": lost,
    }


def _out_dir(where: Location) -> Location:
    """The output directory of a map given as that directory or as its ``map.zarr``."""
    if where.where.endswith("/" + MAP_NAME) or where.where == MAP_NAME:
        return Location(where.where[: -len(MAP_NAME)].rstrip("/") or ".")
    return where


def _finish_hint(attrs, out: Location) -> str:
    command = attrs.get("command")
    if command:
        return f"finish it with: {command}"
    return f"finish it by running the same 'fractalscape map CONFIG --out {out}' (or write_map) again"


def _damage(state: dict) -> str:
    """'' for a whole map, else what is missing, in words."""
    if state["chunks_missing"]:
        lost = ", ".join(f"{n} chunk(s) of {name!r}" for name, n in state["chunks_missing"].items())
        return f"damaged: {lost} are missing from disk"
    if state["blocks_missing"]:
        return f"incomplete: {state['blocks_missing']} of {state['blocks_total']} blocks are not computed"
    return ""


def write_file(out_dir, name: str, data: bytes) -> str:
    """Write ``data`` to ``out_dir/name`` (a path or URL) in one piece; returns its location."""
    out = Location(out_dir)
    out.fs.pipe_file(out.path(name), data)
    return out.join(name)


def write_summary(out_dir, summary: dict) -> str:
    """Write ``summary.json``: the marker that the map in ``out_dir`` is complete."""
    return write_file(out_dir, SUMMARY_NAME, json.dumps(summary, indent=2, sort_keys=True).encode())


def open_map(out_dir_or_store, *, allow_incomplete: bool = False) -> xr.Dataset:
    """Open a stored map lazily, from its output directory or its ``map.zarr``.

    The Dataset has the variables and dtypes :func:`fractalscape.trainability`
    gives (``escape_step`` int32, ``final_loss`` float64, decoded from a
    compact store: :func:`fractalscape.codec.stored_final_loss`), whatever the store's format,
    and ``attrs["store"]``, the ``map.zarr`` it was read from.

    A map with blocks never computed (an interrupted run) or chunk files lost
    is refused (:func:`check_complete`), unless ``allow_incomplete``: then
    unfinished points read as zarr's fill values (converged, escape step 0)
    and ``attrs["incomplete"]`` says how many blocks are missing.

    Examples
    --------
    >>> open_map("/nonexistent")
    Traceback (most recent call last):
    ...
    fractalscape.errors.ConfigError: no map at '/nonexistent': expected a directory written by 'fractalscape map'
    """
    where = Location(out_dir_or_store)
    store = Location(where.join(MAP_NAME)) if where.fs.exists(where.path(MAP_NAME)) else where
    if not store.fs.exists(store.root):
        raise ConfigError(f"no map at {str(where)!r}: expected a directory written by 'fractalscape map'")
    try:
        attrs = zarr.open_group(str(store), mode="r", **store.zarr_options()).attrs
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"{str(store)!r} is not a readable zarr store: {err}") from None
    if "config" not in attrs:
        raise ConfigError(f"{str(store)!r} is a zarr store but not a fractalscape map (no config in attrs)")
    state = check_complete(store.where)
    damage = _damage(state)
    if damage and not allow_incomplete:
        out = _out_dir(store)
        raise ConfigError(f"the map at {str(out)!r} is {damage}; {_finish_hint(attrs, out)} "
                          "(or pass --allow-incomplete to use the finished part)")
    ds = decoded(xr.open_zarr(str(store), consolidated=False, create_default_indexes=False,
                               **store.zarr_options()))
    ds.attrs.pop("store_format", None)
    ds.attrs.pop("full_loss", None)
    #: where the map's overviews are read from (:mod:`fractalscape.overviews`)
    ds.attrs["store"] = store.where
    if damage:
        ds.attrs["incomplete"] = damage
    # As trainability() does: an index for axes small enough to hold in memory.
    for dim in ds.dims:
        if dim in ds.coords and ds.sizes[dim] <= INDEXED_AXIS_MAX:
            ds = ds.set_xindex(dim)
    return ds
