"""Multiscale overviews of a stored map, so a picture reads about as many values as it has pixels.

A finished 1-D or 2-D map gets coarser copies of itself in
``map.zarr/overviews``, laid out in the zarr multiscales convention (as
ndpyramid and OME-NGFF write it)::

    map.zarr/overviews/              attrs["multiscales"]: one entry, listing each level's path
    map.zarr/overviews/4/            level of factor 4: cell i holds points 4i .. 4i + 3 along each axis
        fraction_diverged            float32, mean of ``diverged`` over the cell
        escape_step                  float32, mean escape step over the cell's diverged points (NaN: none)
        log10_final_loss             float32, mean log10 |final_loss| over its converged points (NaN: none)
        lr, x0                       float64, the cells' centres, evenly spaced in the axis' scale
    map.zarr/overviews/8/ ...        factors double up to the coarsest level with >= 16 cells along an axis

Each entry of ``datasets`` carries the level's ``coordinateTransformations``
(``scale``: the factor, ``translation``: the centre of cell 0, both in
full-resolution point indices). The last cell along an axis holds the points
left over (fewer); its centre is where a full cell's would be. The losses are
floored at :data:`LOSS_FLOOR` (a loss of 0) and non-finite ones are left out.
The finest level has factor 4 in 2-D (16 points a cell) and 32 in 1-D
(:data:`FINEST_FACTOR`), so the overviews add a small share to the store.

Levels are reduced from float64 sums of each cell (counts, escape steps,
losses), each level's from the previous one's, in an order fixed by the
map's shape alone: the overviews are a function of the stored map, whatever
its chunking or the scheduler (:mod:`fractalscape.cells`: numba kernels
that add in the order of the NumPy reductions they replace, bit for bit).
One task a block of the map reads its points and sums them. The levels are
written once every block of the map is stored
(:func:`fractalscape.store.write_map` calls :func:`write_overviews`), the
``multiscales`` attribute last, so an interrupted build leaves no
overviews, which the next run (or ``fractalscape overviews STORE``) builds.
Every level chunk carries a CRC-32C checksum: a level that is missing, of
the wrong shape, lacks chunk files or fails its checksum is reported by
:func:`check_overviews` and rebuilt from the full-resolution map
(:func:`overview_for` does so before drawing), never drawn.
"""

from __future__ import annotations

import math

import dask
import numpy as np
import xarray as xr
import zarr

from fractalscape.cells import LOSS_FLOOR, coarser_cells, first_cells, means
from fractalscape.codec import FAST_COMPRESSOR
from fractalscape.errors import ConfigError
from fractalscape.store import MAP_NAME, Location, _damage, _out_dir, check_complete

GROUP = "overviews"
VARIABLES = ("fraction_diverged", "escape_step", "log10_final_loss")
#: Version of the overview layout and reductions, in the multiscales metadata.
OVERVIEW_VERSION = 1
#: Factor of the finest level, by the map's number of axes: 16 points a cell in 2-D, 32 in 1-D (a 1-D
#: map's picture shows far fewer points than it has), so the overviews add little to the store.
FINEST_FACTOR = {1: 32, 2: 4}
#: The coarsest level has at least this many cells along its longest axis (the smallest sensible picture).
SMALLEST = 16
#: Points a build task reads at most (the levels coarser than its block are reduced from its sums).
BLOCK_POINTS = 2**22
#: Cells of a level chunk a build task writes at least; coarser levels are written whole at the end.
CHUNK_CELLS = 4096
_CHECKSUM = {"name": "crc32c"}


def level_factors(shape) -> list[int]:
    """The factors of a map's overview levels, finest first (none for 3-D maps).

    Examples
    --------
    >>> level_factors((257, 263)), level_factors((4097,))
    ([4, 8, 16], [32, 64, 128, 256])
    >>> level_factors((20, 20)), level_factors((4, 5, 6))
    ([], [])
    """
    if len(shape) not in FINEST_FACTOR:
        return []
    factor = FINEST_FACTOR[len(shape)]
    factors = []
    while math.ceil(max(shape) / factor) >= SMALLEST:
        factors.append(factor)
        factor *= 2
    return factors


def _point_arrays(group) -> tuple:
    """diverged, escape_step and the stored log10 |final_loss| (compact stores) or float64 losses (older ones)."""
    loss = group["final_loss_log10"] if "final_loss_log10" in group else group["final_loss"]
    return group["diverged"], group["escape_step"], loss


def _read_points(points: tuple, region: tuple) -> tuple:
    """diverged, escape step and log10 |final_loss| of the points in ``region``, from :func:`_point_arrays`."""
    diverged, escape, loss = (array[region] for array in points)
    if points[2].basename == "final_loss":  # an older store's losses
        loss = np.log10(np.abs(loss), where=loss != 0, out=np.full(loss.shape, -np.inf))
    return diverged, escape, loss


def _write_levels(arrays: dict, start: tuple, levels: dict) -> None:
    """Write the means of each level's sums (``levels``: factor -> sums) from ``start`` (in points)."""
    for factor, sums in levels.items():
        region = tuple(slice(s // factor, s // factor + n) for s, n in zip(start, sums.shape[1:]))
        for name, values in means(sums).items():
            arrays[factor][name][region] = values


def _build_block(points, start, side, first, written, returned, arrays):
    """One block's cells: writes the ``written`` levels' parts, returns the sums at factor ``returned``.

    The block is the map's points (``points``: :func:`_point_arrays`) from
    ``start``, ``side`` along each axis (fewer at its end), read straight
    from the store; ``arrays`` (factor -> name -> array) are the levels.
    Factor ``first`` is summed from the points, each next one from the one
    before, two by two along each axis, as the coarser levels are.
    """
    region = tuple(slice(s, min(s + side, n)) for s, n in zip(start, points[0].shape))
    sums, factor = first_cells(*_read_points(points, region), first), first
    levels, result = {}, None
    top = max([*written, returned or 0])
    while True:
        if factor in written:
            levels[factor] = sums
        if factor == returned:
            result = sums
        if factor >= top:
            break
        sums, factor = coarser_cells(sums, 2), factor * 2
    _write_levels(arrays, start, levels)
    return result


def _plan(shape, factors) -> tuple[int, list[int], int | None]:
    """Block side, the levels build tasks write, and the factor of the sums they return (None: none needed)."""
    ndim = len(shape)
    side = factors[-1]
    while (2 * side) ** ndim <= BLOCK_POINTS // 4 and side < max(shape):
        side *= 2
    while side**ndim > BLOCK_POINTS and side > factors[0]:
        side //= 2
    written = [f for f in factors if f <= side and (side // f) ** ndim >= CHUNK_CELLS]
    rest = [f for f in factors if f not in written]
    returned = min(rest[0], side) if rest else None
    return side, written, returned


def _centres(first: float, last: float, n: int, factor: int, scale: str) -> np.ndarray:
    """Cell centres of a level: evenly spaced in the axis' own scale (log10 on log axes)."""
    cells = math.ceil(n / factor)
    u0, u1 = (math.log10(first), math.log10(last)) if scale == "log" else (first, last)
    step = (u1 - u0) / (n - 1) if n > 1 else 0.0
    u = u0 + step * (np.arange(cells) * factor + (factor - 1) / 2)
    return 10.0**u if scale == "log" else u


def _map_group(where) -> tuple[Location, Location]:
    """(output directory, map.zarr) of a map given as either."""
    out = _out_dir(Location(where))
    return out, Location(out.join(MAP_NAME))


def _full_arrays(group) -> tuple[list[str], tuple[int, ...]]:
    dims = list(group["diverged"].metadata.dimension_names)
    return dims, tuple(group["diverged"].shape)


def write_overviews(where, *, notes: list | None = None) -> list[int]:
    """(Re)build the overviews of the finished map at ``where`` (its directory or ``map.zarr``); their factors.

    Maps with 3 axes, ensemble maps and maps too small for a level get none
    (returns ``[]``). ``notes``, a list, receives a line saying why not.

    Examples
    --------
    >>> import tempfile, fractalscape as fs
    >>> ds = fs.trainability(fs.landscape("quadratic"), fs.Grid([fs.Axis("lr", 0.0, 1.5, 1025, chunk=300)]),
    ...                      steps=50)
    >>> out = tempfile.mkdtemp()
    >>> _ = fs.write_map(ds, out)
    >>> write_overviews(out)
    [32, 64]
    """
    out, store = _map_group(where)
    damage = _damage(check_complete(out.where))
    if damage:
        raise ConfigError(f"cannot build overviews of {str(out)!r}: the map is {damage}; finish it first")
    options = store.zarr_options()
    root = zarr.open_group(store.where, mode="r+", **options)
    dims, shape = _full_arrays(root)
    factors = level_factors(shape)
    why_not = ("an ensemble map (drawn from p_diverged)" if "p_diverged" in root else
               f"{len(shape)} axes (overviews are for 1-D and 2-D maps)" if len(shape) > 2 else
               f"fewer than {SMALLEST * 4} points along every axis" if not factors else None)
    if GROUP in root:
        del root[GROUP]
    if why_not:
        if notes is not None:
            notes.append(f"note: no overviews for {str(out)!r}: {why_not}")
        return []
    group = root.create_group(GROUP)
    side, written, returned = _plan(shape, factors)
    arrays = {}
    for factor in factors:
        level = group.create_group(str(factor))
        cells = tuple(math.ceil(n / factor) for n in shape)
        chunks = tuple(min(c, side // factor) for c in cells) if factor in written else cells
        arrays[factor] = {name: level.create_array(name, shape=cells, chunks=chunks, dtype=np.float32,
                                                   fill_value=np.nan, compressors=[FAST_COMPRESSOR, _CHECKSUM],
                                                   dimension_names=dims).with_config({"write_empty_chunks": True})
                          for name in VARIABLES}
    # one task a block, which reads its points itself (no task a chunk, no copies to rechunk them)
    points, block_arrays = _point_arrays(root), {factor: arrays[factor] for factor in written}
    tasks, starts = [], []
    for index in np.ndindex(*(math.ceil(n / side) for n in shape)):
        start = tuple(i * side for i in index)
        starts.append(start)
        tasks.append(dask.delayed(_build_block)(points, start, side, factors[0], written, returned, block_arrays))
    results = dask.compute(*tasks)
    if returned is not None:
        cells = tuple(math.ceil(n / returned) for n in shape)
        sums = np.zeros((5,) + cells)
        for start, block in zip(starts, results):
            sums[(slice(None),) + tuple(slice(s // returned, s // returned + n) for s, n in
                                        zip(start, block.shape[1:]))] = block
        factor = returned
        while factor <= factors[-1]:
            if factor in factors and factor not in written:
                _write_levels(arrays, (0,) * len(shape), {factor: sums})
            sums, factor = coarser_cells(sums, 2), factor * 2
    scales = {dim: root[dim].attrs.get("scale", "linear") for dim in dims}
    ends = {dim: (float(root[dim][0]), float(root[dim][-1])) for dim in dims}
    for factor in factors:
        for dim, n in zip(dims, shape):
            centres = _centres(*ends[dim], n, factor, scales[dim])
            coord = group[str(factor)].create_array(dim, shape=centres.shape, dtype=np.float64,
                                                    dimension_names=[dim])
            coord[:] = centres
            coord.attrs["scale"] = scales[dim]
    group.attrs["multiscales"] = [{
        "version": "0.4",
        "name": "fractalscape overviews",
        "type": "mean",
        "axes": [{"name": dim, "type": "space"} for dim in dims],
        "datasets": [{"path": str(f), "coordinateTransformations": [
            {"type": "scale", "scale": [float(f)] * len(shape)},
            {"type": "translation", "translation": [(f - 1) / 2] * len(shape)}]} for f in factors],
        "metadata": {
            "method": "fractalscape.overviews.write_overviews",
            "version": OVERVIEW_VERSION,
            "shape": list(shape),
            "extent": {dim: list(ends[dim]) for dim in dims},
            "reductions": {
                "fraction_diverged": "mean of diverged over the cell's points",
                "escape_step": "mean escape_step over the cell's diverged points (NaN: none)",
                "log10_final_loss": f"mean of max(log10 |final_loss|, {LOSS_FLOOR}) over the cell's converged "
                                    "points with a finite loss (NaN: none)",
            },
        },
    }]
    return factors


def _multiscales(store: Location):
    try:
        group = zarr.open_group(store.where, mode="r", **store.zarr_options())
        return group, group[GROUP].attrs["multiscales"][0]
    except (KeyError, IndexError, FileNotFoundError, zarr.errors.GroupNotFoundError):
        return None, None


def _level_problem(group, meta: dict, factor: int, store: Location) -> str:
    """'' for an intact level (its shape, dtype and chunk files), else what is wrong."""
    shape = meta["metadata"]["shape"]
    cells = tuple(math.ceil(n / factor) for n in shape)
    for name in VARIABLES:
        try:
            array = group[f"{GROUP}/{factor}/{name}"]
        except KeyError:
            return f"level {factor}: {name!r} is missing"
        if array.shape != cells or array.dtype != np.float32:
            return f"level {factor}: {name!r} has shape {array.shape} {array.dtype}, expected {cells} float32"
        root = store.path(GROUP, str(factor), name, "c")
        found = len(store.fs.find(root)) if store.fs.isdir(root) else 0
        if found != math.prod(array.cdata_shape):
            return f"level {factor}: {name!r} has {found} of {math.prod(array.cdata_shape)} chunk files"
    for dim, n in zip(meta["axes"], cells):
        if f"{GROUP}/{factor}/{dim['name']}" not in group or group[f"{GROUP}/{factor}/{dim['name']}"].shape != (n,):
            return f"level {factor}: its coordinate {dim['name']!r} is missing or of the wrong length"
    return ""


def check_overviews(where, *, read: bool = True) -> str:
    """'' if the overviews of the map at ``where`` are whole, else what is wrong, in words.

    Checks the ``multiscales`` attribute against the map, each level's
    arrays, shapes and chunk files, and with ``read`` every chunk's checksum.

    Examples
    --------
    >>> import tempfile, fractalscape as fs
    >>> ds = fs.trainability(fs.landscape("quadratic"), fs.Grid([fs.Axis("lr", 0.0, 1.5, 1025)]), steps=50)
    >>> out = tempfile.mkdtemp()
    >>> _ = fs.write_map(ds, out)
    >>> check_overviews(out)
    ''
    """
    _, store = _map_group(where)
    group, meta = _multiscales(store)
    if meta is None:
        return "no overviews (written before they existed, or their build was interrupted)"
    _, shape = _full_arrays(group)
    factors = level_factors(shape)
    listed = [int(d["path"]) for d in meta["datasets"]]
    if listed != factors or tuple(meta["metadata"]["shape"]) != shape:
        return f"the multiscales attribute lists levels {listed} of shape {meta['metadata']['shape']}, " \
               f"the map needs {factors} of {list(shape)}"
    for factor in factors:
        problem = _level_problem(group, meta, factor, store)
        if not problem and read:
            problem = _read_problem(group, factor)
        if problem:
            return problem
    return ""


def _read_problem(group, factor: int) -> str:
    try:
        for name in VARIABLES:
            group[f"{GROUP}/{factor}/{name}"][...]
    except Exception as err:  # noqa: BLE001  (a checksum mismatch, or bytes the codec cannot decode)
        return f"level {factor}: its chunks do not read back ({type(err).__name__}: {err})"
    return ""


def _note(notes, text: str) -> None:
    if notes is not None:
        notes.append(text)


def overview_for(ds: xr.Dataset, sizes, windows, notes: list | None = None, *,
                 _rebuilt: bool = False) -> xr.Dataset | None:
    """The coarsest overview level of ``ds`` with at least ``sizes`` cells inside ``windows``, read in memory.

    ``ds`` is a whole map from :func:`fractalscape.open_map` (its
    ``attrs["store"]``); ``sizes`` and ``windows`` (``(lo, hi)`` or None)
    go with its axes, in their units. Returns the level's cells inside the
    windows, one more on each side. None when the map has no overviews
    (``notes`` gets a line: how to add them), when ``ds`` is not the whole
    stored map, or when no level is fine enough. A damaged level is
    rebuilt from the full-resolution map first (``notes`` says so).
    """
    where = ds.attrs.get("store")
    if not where or "escape_step" not in ds or "p_diverged" in ds or not level_factors(ds.escape_step.shape):
        return None
    store = Location(where)
    group, meta = _multiscales(store)
    dims = list(ds.escape_step.dims)
    out = _out_dir(store)
    if meta is None:
        _note(notes, f"note: {str(out)!r} has no overviews (written before they existed, or their build was "
                     "interrupted): drawing from the full-resolution map; add them with: "
                     f"fractalscape overviews {out}")
        return None
    extent = meta["metadata"].get("extent", {})
    if [a["name"] for a in meta["axes"]] != dims or list(ds.escape_step.shape) != meta["metadata"]["shape"] \
            or any(extent.get(d) != [float(ds[d][0]), float(ds[d][-1])] for d in dims):
        return None  # a part of the map, or another map: its overviews do not apply
    for entry in reversed(meta["datasets"]):
        factor = int(entry["path"])
        problem = _level_problem(group, meta, factor, store)
        if problem:
            return _rebuild(out, problem, notes, _rebuilt) and overview_for(ds, sizes, windows, notes, _rebuilt=True)
        coords = {d: group[f"{GROUP}/{factor}/{d}"][...] for d in dims}
        inside = [_inside(coords[d], w) for d, w in zip(dims, windows)]
        if any(stop - start < s for (start, stop), s in zip(inside, sizes)):
            continue
        region = tuple(slice(max(start - 1, 0), stop + 1) for start, stop in inside)
        try:
            data = {name: (dims, group[f"{GROUP}/{factor}/{name}"][region]) for name in VARIABLES}
        except Exception as err:  # noqa: BLE001  (a checksum mismatch, or bytes the codec cannot decode)
            problem = f"level {factor} does not read back: {type(err).__name__}: {err}"
            return _rebuild(out, problem, notes, _rebuilt) and overview_for(ds, sizes, windows, notes, _rebuilt=True)
        level_coords = {d: (d, coords[d][r], {"scale": ds[d].attrs.get("scale", "linear")})
                        for d, r in zip(dims, region)}
        return xr.Dataset(data, coords=level_coords, attrs={**ds.attrs, "overview_factor": factor})
    return None


def _inside(values: np.ndarray, window) -> tuple[int, int]:
    """The index range of the (sorted) ``values`` inside ``window`` (``(lo, hi)`` or None: all)."""
    if window is None:
        return 0, values.size
    lo, hi = sorted(window)
    inside = np.flatnonzero((values >= lo) & (values <= hi))
    return (int(inside[0]), int(inside[-1]) + 1) if inside.size else (0, 0)


def _rebuild(out: Location, problem: str, notes, again: bool) -> bool:
    """Rebuild damaged overviews once; whether they were (else the picture is drawn from full resolution)."""
    if not again:
        try:
            write_overviews(out.where)
        except (OSError, ConfigError) as err:
            problem += f"; rebuilding them failed ({err})"
        else:
            _note(notes, f"note: the overviews of {str(out)!r} were damaged ({problem}): rebuilt from the "
                         "full-resolution map")
            return True
    _note(notes, f"note: the overviews of {str(out)!r} are damaged ({problem}): drawing from the full-resolution "
                 f"map; rebuild them with: fractalscape overviews {out}")
    return False
