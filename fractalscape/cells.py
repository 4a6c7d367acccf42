"""A map's points summed into cells: the reductions behind its overviews (:mod:`fractalscape.overviews`).

A cell of factor ``f`` holds ``f`` points along each axis (fewer at the
map's end). Its five sums are the number of points, of diverged points, the
escape steps of those, the converged points with a finite loss and their
log10 losses floored at :data:`LOSS_FLOOR`. Each coarser factor is reduced
from the one below, two by two along each axis, so a level is a function of
the map alone, whatever the chunking.

:func:`_cell_sums` of :func:`_point_sums` is the reference in NumPy;
:func:`first_cells` and :func:`coarser_cells` run numba kernels that add in
the same order, bit for bit, without the per-point float64 arrays.

Examples
--------
>>> import numpy as np
>>> diverged = np.array([[True, False], [False, False]])
>>> escape = np.array([[3, -1], [-1, -1]], dtype=np.int16)
>>> log10_loss = np.array([[0.0, -2.0], [-4.0, -6.0]], dtype=np.float32)
>>> first_cells(diverged, escape, log10_loss, 2)[:, 0, 0]
array([  4.,   1.,   3.,   3., -12.])
>>> means(first_cells(diverged, escape, log10_loss, 2))["fraction_diverged"]
array([[0.25]], dtype=float32)
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: log10 of a loss of 0 (or below 1e-300), as :func:`fractalscape.render.aggregate` floors it.
LOSS_FLOOR = -300.0


def _cell_sums(sums: np.ndarray, factor: int) -> np.ndarray:
    """Sum ``sums`` (fields x points or cells) over cells of ``factor`` along each axis, axis by axis.

    Zero padding stands for points that do not exist; summing one axis at a
    time fixes the order of the additions whatever the array's size.
    """
    for axis in range(1, sums.ndim):
        n = sums.shape[axis]
        padded = sums
        if n % factor:
            pad = [(0, 0)] * sums.ndim
            pad[axis] = (0, -n % factor)
            padded = np.pad(sums, pad)
        shape = padded.shape[:axis] + (padded.shape[axis] // factor, factor) + padded.shape[axis + 1:]
        sums = padded.reshape(shape).sum(axis=axis + 1)
    return sums


def _point_sums(diverged, escape, log10_loss) -> np.ndarray:
    """Per point: 1, diverged, escape step if diverged, converged with a finite loss, its floored log10 loss."""
    diverged = np.asarray(diverged, dtype=bool)
    loss = np.asarray(log10_loss, dtype=np.float64)
    counted = ~diverged & np.isfinite(loss)
    sums = np.empty((5,) + diverged.shape)
    sums[0] = 1.0
    sums[1] = diverged
    np.multiply(escape, diverged, out=sums[2])
    sums[3] = counted
    np.copyto(sums[4], 0.0)
    np.maximum(loss, LOSS_FLOOR, out=sums[4], where=counted)
    return sums


# The kernels below compute what _cell_sums(_point_sums(...)) and _cell_sums compute, bit for bit, without
# the per-point float64 arrays: the same float64 additions in the same order as NumPy's ``sum`` in
# _cell_sums (which starts from 0.0): along the first axis of a 2-D map one point after the other; along
# the last axis (the only one of a 1-D map) NumPy's pairwise summation of the cell's ``factor`` values,
# padding zeros included. The counts and escape steps are integers, exact in any order.
#: The longest cell NumPy's pairwise summation adds without splitting it (its PW_BLOCKSIZE).
_PAIRWISE_BLOCK = 128


@njit(nogil=True, cache=True)
def _pairwise(values, n):  # pragma: no cover  (compiled)
    """NumPy's pairwise sum of ``values[:n]`` for ``n <= 128``: its order of float64 additions."""
    if n < 8:
        res = -0.0
        for i in range(n):
            res += values[i]
        return res
    r0, r1, r2, r3 = values[0], values[1], values[2], values[3]
    r4, r5, r6, r7 = values[4], values[5], values[6], values[7]
    i = 8
    while i < n - n % 8:
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += values[i]
        i += 1
    return res


@njit(nogil=True, cache=True)
def _points_to_cells(diverged, escape, loss, factor, floor):  # pragma: no cover  (compiled)
    """``_cell_sums(_point_sums(diverged, escape, loss), factor)`` of a 1-D or 2-D block, bit for bit."""
    if diverged.ndim == 1:
        n = diverged.shape[0]
        cells = (n + factor - 1) // factor
        out = np.empty((5, cells))
        values = np.zeros(factor)
        for i in range(cells):
            start, stop = i * factor, min(i * factor + factor, n)
            n_div, esc, n_conv = 0, 0, 0
            for p in range(start, stop):
                value = 0.0
                if diverged[p]:
                    n_div += 1
                    esc += escape[p]
                else:
                    x = np.float64(loss[p])
                    if np.isfinite(x):
                        n_conv += 1
                        value = x if x > floor else floor
                values[p - start] = value
            for p in range(stop - start, factor):
                values[p] = 0.0
            out[0, i] = stop - start
            out[1, i] = n_div
            out[2, i] = esc
            out[3, i] = n_conv
            out[4, i] = 0.0 + _pairwise(values, factor)
        return out
    rows, cols = diverged.shape[0], diverged.shape[-1]
    row_cells, col_cells = (rows + factor - 1) // factor, (cols + factor - 1) // factor
    out = np.empty((5, row_cells, col_cells))
    down = np.zeros(cols)                     # the sums down each column of a row of cells
    n_div = np.zeros(cols, dtype=np.int64)    # and the counts
    esc = np.zeros(cols, dtype=np.int64)
    n_conv = np.zeros(cols, dtype=np.int64)
    values = np.zeros(factor)
    for i in range(row_cells):
        r0, r1 = i * factor, min(i * factor + factor, rows)
        down[:] = 0.0
        n_div[:] = 0
        esc[:] = 0
        n_conv[:] = 0
        for r in range(r0, r1):  # one point after the other down each column (padding rows: nothing to add)
            for c in range(cols):  # without branches, which the fractal boundaries would mispredict
                point_div = diverged[r, c]
                x = np.float64(loss[r, c])
                counted = (not point_div) & np.isfinite(x)  # converged with a finite loss
                n_div[c] += point_div
                esc[c] += escape[r, c] * point_div
                n_conv[c] += counted
                down[c] += (x if x > floor else floor) if counted else 0.0
        if cols == 1:  # NumPy sums down a 1-column block pairwise
            for r in range(r0, r1):
                value = 0.0
                x = np.float64(loss[r, 0])
                if not diverged[r, 0] and np.isfinite(x):
                    value = x if x > floor else floor
                values[r - r0] = value
            for r in range(r1 - r0, factor):
                values[r] = 0.0
            down[0] = 0.0 + _pairwise(values, factor)
        for j in range(col_cells):
            c0, c1 = j * factor, min(j * factor + factor, cols)
            cell_div, cell_esc, cell_conv = 0, 0, 0
            for c in range(c0, c1):
                cell_div += n_div[c]
                cell_esc += esc[c]
                cell_conv += n_conv[c]
                values[c - c0] = down[c]
            for c in range(c1 - c0, factor):
                values[c] = 0.0
            out[0, i, j] = (r1 - r0) * (c1 - c0)
            out[1, i, j] = cell_div
            out[2, i, j] = cell_esc
            out[3, i, j] = cell_conv
            out[4, i, j] = 0.0 + _pairwise(values, factor)
    return out


@njit(nogil=True, cache=True)
def _cells_to_cells(sums, factor):  # pragma: no cover  (compiled)
    """``_cell_sums(sums, factor)`` of float64 sums (fields x cells, 1-D or 2-D), bit for bit."""
    fields = sums.shape[0]
    if sums.ndim == 2:
        n = sums.shape[1]
        cells = (n + factor - 1) // factor
        out = np.empty((fields, cells))
        values = np.zeros(factor)
        for k in range(fields):
            for i in range(cells):
                start, stop = i * factor, min(i * factor + factor, n)
                for p in range(start, stop):
                    values[p - start] = sums[k, p]
                for p in range(stop - start, factor):
                    values[p] = 0.0
                out[k, i] = 0.0 + _pairwise(values, factor)
        return out
    rows, cols = sums.shape[1], sums.shape[-1]
    row_cells, col_cells = (rows + factor - 1) // factor, (cols + factor - 1) // factor
    out = np.empty((fields, row_cells, col_cells))
    down = np.zeros(cols)       # the sums down each column of a row of cells
    values = np.zeros(factor)
    for k in range(fields):
        for i in range(row_cells):
            r0, r1 = i * factor, min(i * factor + factor, rows)
            if cols == 1:
                for r in range(r0, r1):
                    values[r - r0] = sums[k, r, 0]
                for r in range(r1 - r0, factor):
                    values[r] = 0.0
                down[0] = 0.0 + _pairwise(values, factor)
            else:  # the padding rows add 0.0 to sums that start at 0.0: nothing to add
                for c in range(cols):
                    down[c] = 0.0
                for r in range(r0, r1):
                    for c in range(cols):
                        down[c] += sums[k, r, c]
            for j in range(col_cells):
                c0, c1 = j * factor, min(j * factor + factor, cols)
                for c in range(c0, c1):
                    values[c - c0] = down[c]
                for c in range(c1 - c0, factor):
                    values[c] = 0.0
                out[k, i, j] = 0.0 + _pairwise(values, factor)
    return out


def first_cells(diverged, escape, log10_loss, factor: int) -> np.ndarray:
    """``_cell_sums(_point_sums(diverged, escape, log10_loss), factor)``, with the kernel where it applies."""
    diverged, escape, log10_loss = np.asarray(diverged), np.asarray(escape), np.asarray(log10_loss)
    if (diverged.dtype == np.bool_ and escape.dtype.kind in "iu" and escape.dtype.itemsize <= 4
            and log10_loss.dtype in (np.float32, np.float64) and 1 <= diverged.ndim <= 2
            and diverged.shape == escape.shape == log10_loss.shape and diverged.size and factor <= _PAIRWISE_BLOCK):
        return _points_to_cells(diverged, escape, log10_loss, factor, LOSS_FLOOR)
    return _cell_sums(_point_sums(diverged, escape, log10_loss), factor)


def coarser_cells(sums: np.ndarray, factor: int) -> np.ndarray:
    """``_cell_sums(sums, factor)``, with the kernel where it applies."""
    if sums.dtype == np.float64 and 2 <= sums.ndim <= 3 and sums.size and factor <= _PAIRWISE_BLOCK:
        return _cells_to_cells(sums, factor)
    return _cell_sums(sums, factor)


def means(sums: np.ndarray) -> dict[str, np.ndarray]:
    """A level's float32 values from its cells' sums: diverged fraction, mean escape step, mean log10 loss (NaN: none)."""
    points, diverged, escape, converged, loss = sums
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "fraction_diverged": (diverged / points).astype(np.float32),
            "escape_step": np.where(diverged > 0, escape / diverged, np.nan).astype(np.float32),
            "log10_final_loss": np.where(converged > 0, loss / converged, np.nan).astype(np.float32),
        }
