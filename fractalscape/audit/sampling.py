"""Which points an audit re-runs: half near the boundary, half uniform, with each point's distance to it.

The distance of a grid point to the boundary is the Chebyshev distance, in
grid cells, to the nearest point of the other label: 1 for a point with a
neighbour (diagonals included in 2-D and 3-D) of the other label. It is
exact up to :data:`RADIUS` and clipped to ``RADIUS + 1`` beyond (or where the
map has no point of the other label at all). It is computed block by block
with a halo of ``RADIUS`` cells, so maps larger than memory work. Ensemble
axes (:mod:`fractalscape.ensemble`) are not directions: each member's map
has its own distances.
"""

from __future__ import annotations

from typing import NamedTuple

import dask
import dask.array as da
import numpy as np
from scipy.ndimage import distance_transform_cdt

#: Distances are exact up to this many cells; farther points get ``RADIUS + 1``.
RADIUS = 16
#: Distance buckets of the report: (name, smallest, largest distance).
BUCKETS = (("1", 1, 1), ("2-3", 2, 3), ("4-7", 4, 7), ("8-15", 8, 15), ("16+", 16, RADIUS + 1))


class Sample(NamedTuple):
    """The sampled points, in the order drawn: all near-boundary points, then the uniform ones."""

    index: np.ndarray  # (n, ndim) int64 grid indices
    diverged: np.ndarray  # (n,) bool, the stored label
    distance: np.ndarray  # (n,) int, cells to the nearest point of the other label (RADIUS + 1: farther)
    near_boundary: np.ndarray  # (n,) bool: drawn from the points with distance 1
    boundary_points: int  # points of the whole map with distance 1


def _distance_block(labels: np.ndarray, members: tuple[int, ...] = ()) -> np.ndarray:
    """Chebyshev distance of every point of ``labels`` to the nearest point of the other label, clipped.

    Along the axes ``members`` (ensemble axes) points are not neighbours:
    each member's map gets its own distances.
    """
    if members:
        distance = np.empty(labels.shape, dtype=np.uint8)
        for member in np.ndindex(*(labels.shape[a] for a in members)):
            where = [slice(None)] * labels.ndim
            for a, i in zip(members, member):
                where[a] = i
            distance[tuple(where)] = _distance_block(labels[tuple(where)])
        return distance
    distance = np.full(labels.shape, RADIUS + 1, dtype=np.uint8)
    for label in (True, False):
        mask = labels == label
        if mask.all() or not mask.any():
            continue
        inside = distance_transform_cdt(mask, metric="chessboard")
        distance[mask] = np.minimum(inside[mask], RADIUS + 1)
    return distance


def _count_ones(block: np.ndarray) -> np.ndarray:
    return np.array(np.count_nonzero(block == 1), dtype=np.int64).reshape((1,) * block.ndim)


def _block_of(index: np.ndarray, chunks) -> np.ndarray:
    """Block index ``(n, ndim)`` of each grid index ``(n, ndim)``."""
    edges = [np.cumsum(c) for c in chunks]
    return np.stack([np.searchsorted(e, index[:, a], side="right") for a, e in enumerate(edges)], axis=1)


def _offset(chunks, block) -> np.ndarray:
    """Grid index of the first point of ``block``."""
    return np.array([sum(c[:b]) for c, b in zip(chunks, block)], dtype=np.int64)


def draw(diverged: da.Array, samples: int, rng: np.random.Generator, members: tuple[int, ...] = ()) -> Sample:
    """Draw ``samples`` distinct points of a map: half near the boundary (distance 1), the rest uniform.

    Fewer near-boundary points than half the sample leaves more to the
    uniform draw; a map without boundary is sampled uniformly. ``samples``
    above the map's size samples every point. ``members`` are the positions
    of ensemble axes, along which distances are not measured.

    Examples
    --------
    >>> s = draw(da.from_array(np.arange(40) >= 25, chunks=16), 6, np.random.default_rng(0))
    >>> len(s.index), s.boundary_points, s.distance[s.near_boundary].tolist()
    (6, 2, [1, 1])
    >>> bool((s.distance == np.minimum(np.abs(s.index[:, 0] - 24.5) + 0.5, RADIUS + 1)).all())
    True
    """
    depth = {a: 0 if a in members else min(RADIUS, n - 1) for a, n in enumerate(diverged.shape)}
    distance = diverged.map_overlap(
        lambda block: _distance_block(block, tuple(members)), depth=depth, boundary="none", dtype=np.uint8,
        meta=np.empty((0,) * diverged.ndim, np.uint8),
    )
    diverged = diverged.rechunk(distance.chunks)  # map_overlap may have rechunked small blocks
    counts = distance.map_blocks(_count_ones, chunks=(1,) * distance.ndim, dtype=np.int64).compute()
    size, shape = diverged.size, diverged.shape
    n = min(samples, size)
    n_near = min(n // 2 + n % 2, int(counts.sum()))
    near_per_block = rng.multivariate_hypergeometric(counts.ravel(), n_near).reshape(counts.shape)
    near = []
    for block in map(tuple, np.argwhere(near_per_block)):
        ones = np.flatnonzero(distance.blocks[block].compute() == 1)
        local = np.unravel_index(rng.choice(ones, near_per_block[block], replace=False), distance.blocks[block].shape)
        near.append(np.stack(local, axis=1) + _offset(distance.chunks, block))
    near = np.concatenate(near) if near else np.empty((0, len(shape)), np.int64)
    # Uniform among the other points: n_near more than needed, so enough remain once the near ones are dropped.
    flat = rng.choice(size, min(size, n), replace=False)
    flat = flat[~np.isin(flat, np.ravel_multi_index(tuple(near.T), shape))][: n - n_near]
    uniform = np.stack(np.unravel_index(flat, shape), axis=1).reshape(-1, len(shape))
    index = np.concatenate([near, uniform]).astype(np.int64)
    blocks = _block_of(index, distance.chunks)
    label_out = np.empty(len(index), bool)
    dist_out = np.empty(len(index), np.int64)
    for block in sorted({tuple(b) for b in blocks.tolist()}):
        here = np.all(blocks == block, axis=1)
        dist_block, label_block = dask.compute(distance.blocks[block], diverged.blocks[block])
        local = tuple((index[here] - _offset(distance.chunks, block)).T)
        label_out[here] = label_block[local]
        dist_out[here] = dist_block[local]
    return Sample(index, label_out, dist_out, np.arange(len(index)) < len(near), int(counts.sum()))


def bucket_names(distance: np.ndarray) -> np.ndarray:
    """The :data:`BUCKETS` name of each distance."""
    names = np.empty(len(distance), dtype=object)
    for name, low, high in BUCKETS:
        names[(distance >= low) & (distance <= high)] = name
    return names
