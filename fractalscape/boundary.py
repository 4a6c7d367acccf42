"""Where the two classes of a trainability map meet: edge masks and contours.

The input everywhere is a two-class map: a boolean array (numpy, dask, or an
``xarray.DataArray`` wrapping either) whose axes are the hyperparameter grid
axes, ``True`` for one outcome (e.g. converged) and ``False`` for the other.

`boundary` marks grid points that touch the other class; `contours` traces
the sub-pixel lines between the classes with marching squares, tile by tile so
maps larger than memory work.
"""
from __future__ import annotations

from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import xarray as xr
from skimage.measure import find_contours

from fractalscape.errors import ConfigError

__all__ = ["Contours", "boundary", "contours"]


def _check_labels(labels, ndims=(1, 2)):
    """Return the plain (numpy or dask) array of a two-class map, validated."""
    array = labels.data if isinstance(labels, xr.DataArray) else labels
    if not isinstance(array, (np.ndarray, da.Array)):
        array = np.asarray(array)
    if array.dtype != bool:
        raise ConfigError(
            f"labels must be a boolean two-class map, got dtype {array.dtype}; "
            "convert it first, e.g. `labels == 1` or `outcome > 0`"
        )
    if array.ndim not in ndims:
        wanted = " or ".join(f"{n}-D" for n in ndims)
        raise ConfigError(
            f"labels must be {wanted}, got {array.ndim}-D with shape {array.shape}"
        )
    return array


def _edge_kernel(block: np.ndarray, cells: bool) -> np.ndarray:
    """Class-change mask of one in-memory block.

    1-D: a point is marked when it differs from its right neighbour.  2-D
    pixels (``cells=False``): marked when a 4-neighbour differs.  2-D cells
    (``cells=True``): element ``[i, j]`` marks the 2x2 window of pixels
    ``[i:i+2, j:j+2]`` holding both labels, i.e. the marching-squares cell
    the contour passes through; the last row and column stay False.
    """
    edge = np.zeros(block.shape, dtype=bool)
    if block.ndim == 1:
        edge[:-1] = block[:-1] != block[1:]
    elif cells:
        corners = (block[:-1, :-1], block[1:, :-1], block[:-1, 1:], block[1:, 1:])
        edge[:-1, :-1] = np.logical_or.reduce(corners) & ~np.logical_and.reduce(corners)
    else:
        rows = block[:-1, :] != block[1:, :]
        cols = block[:, :-1] != block[:, 1:]
        edge[:-1, :] |= rows
        edge[1:, :] |= rows
        edge[:, :-1] |= cols
        edge[:, 1:] |= cols
    return edge


def _edges(array, cells: bool):
    """`_edge_kernel` over a whole numpy or dask array, lazily for dask."""
    if not isinstance(array, da.Array):
        return _edge_kernel(array, cells)
    # depth 1 gives each block its neighbours' edge rows; 'none' adds no
    # padding at the array's own edges, where the kernel already looks only
    # inside the array, so any chunking matches the numpy result.
    return array.map_overlap(
        _edge_kernel, depth=1, boundary="none", cells=cells,
        dtype=bool, meta=np.empty((0,) * array.ndim, dtype=bool),
    )


def boundary(labels):
    """Boolean mask of the grid points where the two classes meet.

    In 1-D a point is on the boundary when its label differs from its right
    neighbour's; the last point is never on it, so ``boundary(x).sum()`` is
    the number of class changes along the line.  In 2-D a pixel is on the
    boundary when any of its 4 neighbours (up, down, left, right; only those
    inside the array) has the other label, so every class change marks the
    pixels on *both* sides of it and the boundary is a band two pixels wide.

    Parameters
    ----------
    labels : numpy.ndarray, dask.array.Array or xarray.DataArray
        Boolean two-class map, 1-D or 2-D.

    Returns
    -------
    Same type as `labels`
        Boolean mask.  Dask input gives a lazy dask array with the same
        chunks (identical values for any chunking); a DataArray gives a
        DataArray with the same dims and coords.

    Examples
    --------
    >>> import numpy as np
    >>> from fractalscape.boundary import boundary
    >>> boundary(np.array([True, True, False, False]))
    array([False,  True, False, False])
    >>> square = np.zeros((4, 4), dtype=bool)
    >>> square[1:3, 1:3] = True
    >>> boundary(square).astype(int)
    array([[0, 1, 1, 0],
           [1, 1, 1, 1],
           [1, 1, 1, 1],
           [0, 1, 1, 0]])
    """
    edge = _edges(_check_labels(labels), cells=False)
    if isinstance(labels, xr.DataArray):
        return labels.copy(data=edge).rename(
            f"{labels.name}_boundary" if labels.name else "boundary"
        )
    return edge


@dataclass(frozen=True)
class Contours:
    """Boundary polylines of a 2-D two-class map.

    Attributes
    ----------
    lines : tuple of numpy.ndarray
        One ``(N, 2)`` array per polyline, in axis coordinates (the values of
        the first and second grid axis).
    cut : tuple of bool
        ``cut[i]`` is True when ``lines[i]`` ends on an interior tile edge:
        it is a piece of a longer line that continues in the next tile.
    length_px : float
        Total length of all lines in pixel units (grid spacings).
    length : float
        Total Euclidean length in axis coordinates.  Only meaningful when
        both axes share a unit; with pixel coordinates it equals `length_px`.
    """

    lines: tuple
    cut: tuple
    length_px: float
    length: float


def _index_to_coord(line_px: np.ndarray, coords) -> np.ndarray:
    """Map fractional (row, col) indices to axis values by interpolation."""
    return np.column_stack([
        np.interp(line_px[:, axis], np.arange(len(c)), c)
        for axis, c in enumerate(coords)
    ])


def _polyline_length(line: np.ndarray) -> float:
    return float(np.sum(np.hypot(*np.diff(line, axis=0).T)))


def _tile_contours(tile: np.ndarray, origin, interior_edges):
    """Contours of one tile, shifted to global indices, with cut flags.

    `interior_edges` holds, per axis, the global indices of this tile's low
    and high edge rows/columns when those are shared with a neighbouring
    tile (``None`` at the array's own edges).
    """
    lines, cut = [], []
    for line in find_contours(tile.astype(np.float32), level=0.5):
        line = line + origin
        ends = line[[0, -1]]
        is_cut = any(
            edge is not None and np.any(ends[:, axis] == edge)
            for axis, pair in enumerate(interior_edges)
            for edge in pair
        )
        lines.append(line)
        cut.append(bool(is_cut))
    return lines, cut


def contours(labels, coords=None) -> Contours:
    """Sub-pixel polylines separating the two classes of a 2-D map.

    Runs `skimage.measure.find_contours` at ``level=0.5`` on the 0/1 map:
    values sit at pixel centres, and each line passes midway between a
    ``True`` and a ``False`` pixel (marching squares; saddle cells are
    resolved as in scikit-image's default, ``fully_connected='low'``).
    Dask input is traced one block at a time, each block extended by one
    row and column into its high-side neighbours so that every marching
    squares cell belongs to exactly one tile: tiled and untiled total
    lengths agree to rounding, and only a few blocks are in memory at once.
    Lines that leave a tile through an interior tile edge are kept as
    pieces and flagged in `Contours.cut`.

    Parameters
    ----------
    labels : numpy.ndarray, dask.array.Array or xarray.DataArray
        Boolean 2-D two-class map.
    coords : sequence of two 1-D arrays, optional
        Axis values at the pixel centres (e.g. the learning rates of a log
        grid).  Defaults to the DataArray's coords, or to pixel indices.
        Indices are mapped to values by linear interpolation between
        neighbouring grid values, so log-spaced axes come out right.

    Returns
    -------
    Contours

    Examples
    --------
    >>> import numpy as np
    >>> from fractalscape.boundary import contours
    >>> square = np.zeros((8, 8), dtype=bool)
    >>> square[2:6, 2:6] = True
    >>> found = contours(square)
    >>> len(found.lines), found.cut, round(found.length_px, 3)
    (1, (False,), 14.828)
    """
    array = _check_labels(labels, ndims=(2,))
    if coords is None and isinstance(labels, xr.DataArray):
        coords = [labels[dim].values for dim in labels.dims]
    if coords is None:
        coords = [np.arange(n, dtype=float) for n in array.shape]
    coords = [np.asarray(c, dtype=float) for c in coords]
    if len(coords) != 2 or any(len(c) != n for c, n in zip(coords, array.shape)):
        raise ConfigError(
            "coords must be two 1-D arrays matching the map's shape "
            f"{array.shape}, got lengths {[len(c) for c in coords]}"
        )

    if isinstance(array, da.Array):
        # each tile reaches one row/column into its high-side neighbours
        tiles = da.overlap.overlap(
            array, depth={0: (0, 1), 1: (0, 1)}, boundary="none"
        ).to_delayed()
        starts = [np.cumsum((0,) + c) for c in array.chunks]
    else:
        tiles = np.empty((1, 1), dtype=object)
        tiles[0, 0] = array
        starts = [np.array([0, n]) for n in array.shape]
    tasks = []
    for i, j in np.ndindex(tiles.shape):
        r0, r1 = starts[0][i], starts[0][i + 1]
        c0, c1 = starts[1][j], starts[1][j + 1]
        interior = (
            (r0 if r0 > 0 else None, r1 if r1 < array.shape[0] else None),
            (c0 if c0 > 0 else None, c1 if c1 < array.shape[1] else None),
        )
        tasks.append(dask.delayed(_tile_contours)(tiles[i, j], (r0, c0), interior))
    lines_px, cut = [], []
    for tile_lines, tile_cut in dask.compute(*tasks):
        lines_px += tile_lines
        cut += tile_cut
    lines = tuple(_index_to_coord(line, coords) for line in lines_px)
    return Contours(
        lines=lines,
        cut=tuple(cut),
        length_px=sum(map(_polyline_length, lines_px)),
        length=sum(map(_polyline_length, lines)),
    )
