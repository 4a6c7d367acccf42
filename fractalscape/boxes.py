"""Box counts of a mask, or of a map's boundary cells, block by block.

A box of side ``s`` (aligned at index 0; partial boxes at the far edges
count) is in one of three states: it holds no marked cell, some, or only
marked cells.  `box_counts` builds the pyramid of these states from a mask;
`boundary_box_counts` gets the same counts for the boundary cells of a 2-D
two-class map from one fused kernel per block, without writing the mask.
Both work on numpy or dask input, and every chunking gives the numpy counts
exactly: the counts are integers, summed over blocks that no box straddles.
"""
from __future__ import annotations

import dask
import dask.array as da
import numba
import numpy as np

from fractalscape.boundary import _check_labels

__all__ = ["boundary_box_counts", "box_counts"]

# box states: no marked cell, some, all.  With these values a box's state is
# ``occupied + full``, which keeps the fused kernel's inner loop branch-free.
EMPTY, PARTIAL, FULL = 0, 1, 2

# Dask blocks of the labels are rechunked when their chunks do not let each
# block count at least this many levels on its own (a box straddling two
# blocks would need both); the new chunks are powers of two near the old
# ones, and at least MIN_BLOCK_SIDE pixels, below which a block costs more
# in scheduling than in counting.
MIN_BLOCK_LEVELS = 4
MIN_BLOCK_SIDE = 256


@numba.njit(nogil=True, cache=True)
def _coarsen_kernel(state, factor):
    """Merge ``factor x factor`` boxes of a 2-D state map (partial at edges)."""
    rows = -(-state.shape[0] // factor)
    cols = -(-state.shape[1] // factor)
    occupied = np.zeros((rows, cols), dtype=np.bool_)
    full = np.ones((rows, cols), dtype=np.bool_)
    for i in range(state.shape[0]):
        for j in range(state.shape[1]):
            value = state[i, j]
            if value != EMPTY:
                occupied[i // factor, j // factor] = True
            if value != FULL:
                full[i // factor, j // factor] = False
    out = np.empty((rows, cols), dtype=np.uint8)
    for i in range(rows):
        for j in range(cols):
            out[i, j] = FULL if full[i, j] else (PARTIAL if occupied[i, j] else EMPTY)
    return out


def _coarsen(state, factor: int):
    """Box states at `factor` times the box size of `state` (numpy or dask).

    Dask blocks are first rechunked so that every block but the last along
    each axis is a multiple of `factor`: then no box straddles two blocks
    and each block coarsens on its own.
    """
    if not isinstance(state, da.Array):
        return _coarsen_kernel(state, factor)
    aligned = {
        axis: max(factor, max(chunks) // factor * factor)
        for axis, chunks in enumerate(state.chunks)
        if any(c % factor for c in chunks[:-1])
    }
    if aligned:
        state = state.rechunk(aligned)
    return state.map_blocks(
        _coarsen_kernel, factor, dtype=np.uint8,
        chunks=tuple(tuple(-(-c // factor) for c in chunks) for chunks in state.chunks),
        meta=np.empty((0, 0), dtype=np.uint8),
    )


def _box_states(edge, sizes):
    """State maps of the boxes of each size; sizes must be powers of two
    (built as a pyramid) or any sizes (each coarsened from the pixels)."""
    pixels = (edge[:, None] if edge.ndim == 1 else edge).astype(np.uint8) * FULL
    if all(size == 2**k for k, size in enumerate(sizes)):
        states = [pixels]
        for _ in sizes[1:]:
            states.append(_coarsen(states[-1], 2))
        return states
    return [_coarsen(pixels, int(size)) for size in sizes]


def _compute_counts(counts) -> np.ndarray:
    """Evaluate a list of (possibly lazy) counts in one pass."""
    return np.array(dask.compute(*counts), dtype=np.int64)


def _power_sizes(shape) -> list[int]:
    """1, 2, 4, ... up to the first size that covers the map with one box."""
    return [2**k for k in range(max(max(shape) - 1, 1).bit_length() + 1)]


def box_counts(mask) -> tuple[np.ndarray, np.ndarray]:
    """Box sizes 1, 2, 4, ... and the number of boxes holding a marked cell.

    Parameters
    ----------
    mask : numpy.ndarray or dask.array.Array
        Boolean 1-D or 2-D mask (a 1-D mask is a column of cells).

    Returns
    -------
    sizes, counts : numpy.ndarray of int64
        Box sides up to the first that covers the mask with one box, and
        the occupied boxes of each side.

    Examples
    --------
    >>> import numpy as np
    >>> from fractalscape.boxes import box_counts
    >>> box_counts(np.eye(4, dtype=bool))
    (array([1, 2, 4]), array([4, 2, 1]))
    """
    sizes = np.array(_power_sizes(mask.shape))
    states = _box_states(mask, list(sizes))
    return sizes, _compute_counts([(s != EMPTY).sum() for s in states])


@numba.njit(nogil=True, cache=True)
def _cell_row(pixels, row, out):
    """Boundary cells between pixel rows ``row`` and ``row + 1`` into `out`.

    A cell is on the boundary when its 2x2 pixels hold both labels.  When
    `out` is one longer than the cells, the last cell is repeated there: a
    copy changes neither "any" nor "all" of the box it falls in.  Returns
    the number of boundary cells.
    """
    cols = pixels.shape[1] - 1
    total = 0
    for j in range(cols):
        a, b = pixels[row, j], pixels[row, j + 1]
        c, d = pixels[row + 1, j], pixels[row + 1, j + 1]
        cell = (a | b | c | d) ^ (a & b & c & d)
        out[j] = cell
        total += cell
    if out.shape[0] > cols:
        out[cols] = out[cols - 1]
    return total


@numba.njit(nogil=True, cache=True)
def _boundary_boxes_kernel(pixels, levels):
    """Counts of one block's boundary cells and boxes of sides 2 .. 2**levels.

    `pixels` is a 0/1 uint8 block with its trailing row and column where the
    map has them, so its cells are one fewer than its pixels along each
    axis.  Returns the counts of occupied boxes of sides 1, 2, ...,
    ``2**levels`` (int64, ``levels + 1``; ``levels >= 1``) and the state map
    of the boxes of side ``2**levels``.
    """
    rows = max(pixels.shape[0] - 1, 0)
    cols = max(pixels.shape[1] - 1, 0)
    box_rows, box_cols = (rows + 1) // 2, (cols + 1) // 2
    counts = np.zeros(levels + 1, dtype=np.int64)
    state = np.empty((box_rows, box_cols), dtype=np.uint8)
    upper = np.empty(2 * box_cols, dtype=np.uint8)
    lower = np.empty(2 * box_cols, dtype=np.uint8)
    for box_row in range(box_rows):
        counts[0] += _cell_row(pixels, 2 * box_row, upper)
        if 2 * box_row + 1 < rows:
            counts[0] += _cell_row(pixels, 2 * box_row + 1, lower)
        else:
            lower[:] = upper  # a repeated row, neutral like a repeated cell
        occupied_boxes = 0
        for box_col in range(box_cols):
            a, b = upper[2 * box_col], upper[2 * box_col + 1]
            c, d = lower[2 * box_col], lower[2 * box_col + 1]
            occupied = a | b | c | d
            state[box_row, box_col] = occupied + (a & b & c & d)
            occupied_boxes += occupied
        counts[1] += occupied_boxes
    for level in range(2, levels + 1):
        state = _coarsen_kernel(state, 2)
        counts[level] = np.count_nonzero(state)
    return counts, state


def _block_boxes(block: np.ndarray, levels: int):
    """`_boundary_boxes_kernel` on a boolean block, as a 1x1 object array
    (one element of the grid of per-block results)."""
    pixels = np.ascontiguousarray(block).view(np.uint8)
    out = np.empty((1, 1), dtype=object)
    out[0, 0] = _boundary_boxes_kernel(pixels, levels)
    return out


def _aligned_levels(chunks) -> int:
    """Largest k such that every chunk but the last is a multiple of 2**k
    (-1 when a chunk is empty; unbounded, as a large k, for one chunk)."""
    if 0 in chunks:
        return -1
    return min(((c & -c).bit_length() - 1 for c in chunks[:-1]), default=64)


def _block_labels(labels: da.Array, levels: int):
    """`labels`, rechunked if needed, and the levels each block counts alone."""
    wanted = min(MIN_BLOCK_LEVELS, levels)
    misaligned = {
        axis: max(2 ** round(np.log2(max(chunks))), MIN_BLOCK_SIDE)
        for axis, chunks in enumerate(labels.chunks)
        if _aligned_levels(chunks) < wanted
    }
    if misaligned:
        labels = labels.rechunk(misaligned)
    return labels, min(levels, *(_aligned_levels(chunks) for chunks in labels.chunks))


def boundary_box_counts(labels) -> tuple[np.ndarray, np.ndarray]:
    """Box counts of the boundary cells of a 2-D two-class map.

    The cells lie between pixel centres, one fewer than the pixels along
    each axis; a cell is on the boundary when its 2x2 pixels hold both
    labels.  The result equals ``box_counts`` of that cell mask, but each
    block of the map is counted by one fused kernel: the boxes up to the
    largest side that the chunks align with, whose state maps (one small
    array per block) then give the larger sides.  Dask chunks that align
    with fewer than ``MIN_BLOCK_LEVELS`` levels are rechunked first.

    Parameters
    ----------
    labels : numpy.ndarray, dask.array.Array or xarray.DataArray
        Boolean 2-D two-class map.  Dask input is computed once, block by
        block.

    Returns
    -------
    sizes, counts : numpy.ndarray of int64
        Box sides 1, 2, 4, ... up to the first that covers the cells with
        one box, and the boxes of each side holding a boundary cell.

    Examples
    --------
    >>> import numpy as np
    >>> from fractalscape.boxes import boundary_box_counts
    >>> y, x = np.indices((16, 16))
    >>> disk = (x - 7.5) ** 2 + (y - 7.5) ** 2 < 36
    >>> boundary_box_counts(disk)
    (array([ 1,  2,  4,  8, 16]), array([48, 24, 12,  4,  1]))
    """
    array = _check_labels(labels, ndims=(2,))
    sizes = np.array(_power_sizes(tuple(max(n - 1, 0) for n in array.shape)))
    levels = len(sizes) - 1
    if isinstance(array, da.Array) and 0 in array.shape:
        array = np.zeros(array.shape, dtype=bool)  # nothing to read, and overlap refuses empty axes
    if not isinstance(array, da.Array):
        return sizes, _boundary_boxes_kernel(np.ascontiguousarray(array).view(np.uint8), levels)[0]
    array, block_levels = _block_labels(array, levels)
    # each block reaches one row and column into its high-side neighbours,
    # so that every cell, and every box, belongs to exactly one block
    padded = da.overlap.overlap(array, depth={0: (0, 1), 1: (0, 1)}, boundary="none")
    results = padded.map_blocks(
        _block_boxes, block_levels, dtype=object,
        chunks=tuple((1,) * len(chunks) for chunks in padded.chunks),
        meta=np.empty((0, 0), dtype=object),
    ).compute()
    counts = list(sum(result[0] for result in results.flat))
    state = np.block([[result[1] for result in row] for row in results])
    for _ in range(block_levels, levels):
        state = _coarsen_kernel(state, 2)
        counts.append(np.count_nonzero(state))
    return sizes, np.array(counts, dtype=np.int64)
