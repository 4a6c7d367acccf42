"""Rasterizers of two-class maps whose boundary dimension is known.

Each returns a boolean numpy array; the boundary between True and False is
the set whose dimension the tests estimate.
"""
import numpy as np


def cantor(num: int, depth: int, base: int = 3, cell_centres: bool = False
           ) -> np.ndarray:
    """Indicator of a Cantor set: keep the first and last of `base` parts.

    Each of `depth` levels splits every kept interval into `base` parts and
    keeps the outer two, so the class changes (interval ends) have dimension
    log 2 / log base (0.6309 for the middle-thirds set, 0.5 for base 4) at
    scales between ``base**-depth`` and 1.  Samples are ``i / (num - 1)``, a
    dyadic grid when ``num == 2**n + 1``; with `cell_centres` they are the
    centres of ``num == base**depth`` equal cells instead, so that every
    interval end falls between two samples.
    """
    if cell_centres:
        cell = np.arange(num, dtype=np.int64)
    else:
        x = np.arange(num) / (num - 1)
        cell = np.minimum((x * base**depth).astype(np.int64), base**depth - 1)
    inside = np.ones(num, dtype=bool)
    for _ in range(depth):
        digit = cell % base
        inside &= (digit == 0) | (digit == base - 1)
        cell //= base
    return inside


def fill_polygon(shape, points: np.ndarray) -> np.ndarray:
    """Even-odd scanline fill of a closed polygon given as (row, col) points.

    Pixel ``(r, c)`` is inside when the horizontal ray from its centre to the
    right crosses the polygon an odd number of times.  Linear in the number
    of crossings, unlike point-in-polygon tests per pixel.
    """
    start, end = points, np.roll(points, -1, axis=0)
    low, high = np.minimum(start[:, 0], end[:, 0]), np.maximum(start[:, 0], end[:, 0])
    first = np.ceil(low).astype(np.int64)
    rows_per_edge = np.maximum(np.ceil(high).astype(np.int64) - first, 0)
    edge = np.repeat(np.arange(len(points)), rows_per_edge)
    row = first[edge] + np.arange(len(edge)) - np.repeat(
        np.cumsum(rows_per_edge) - rows_per_edge, rows_per_edge)
    (r0, c0), (r1, c1) = start[edge].T, end[edge].T
    col = c0 + (row - r0) * (c1 - c0) / (r1 - r0)
    keep = (row >= 0) & (row < shape[0])
    toggles = np.zeros((shape[0], shape[1] + 1), dtype=np.int64)
    np.add.at(toggles, (row[keep], np.clip(np.ceil(col[keep]).astype(np.int64),
                                           0, shape[1])), 1)
    return (np.cumsum(toggles, axis=1)[:, :-1] % 2).astype(bool)


def koch_snowflake(size: int, iterations: int) -> np.ndarray:
    """Filled Koch snowflake in a ``size x size`` image; dim log 4 / log 3."""
    side = 0.8 * size
    height = side * np.sqrt(3) / 2
    centre = np.array([size / 2 + 0.1, size / 2 - 0.2])
    points = np.array([
        [-height / 3, -side / 2], [2 * height / 3, 0.0], [-height / 3, side / 2],
    ]) + centre
    for _ in range(iterations):
        start, end = points, np.roll(points, -1, axis=0)
        step = (end - start) / 3
        # the outward bump: the middle third rotated by -60 degrees
        c, s = 0.5, -np.sqrt(3) / 2
        bump = np.column_stack([c * step[:, 0] - s * step[:, 1],
                                s * step[:, 0] + c * step[:, 1]])
        new = np.stack([start, start + step, start + step + bump, start + 2 * step],
                       axis=1)
        points = new.reshape(-1, 2)
    return fill_polygon((size, size), points)


def sierpinski_carpet(depth: int) -> np.ndarray:
    """Sierpinski carpet on a ``3**depth`` square grid; True where kept.

    The boundary is the union of all hole edges: at scale 3**-k there are
    ~8**k boxes touching it, so its dimension is log 8 / log 3 = 1.8928.
    """
    i, j = np.indices((3**depth, 3**depth))
    keep = np.ones(i.shape, dtype=bool)
    for _ in range(depth):
        keep &= ~((i % 3 == 1) & (j % 3 == 1))
        i //= 3
        j //= 3
    return keep


def disk(size: int, radius: float, centre=None) -> np.ndarray:
    """Filled disk; its boundary is a circle (dimension 1)."""
    cy, cx = centre if centre is not None else (size / 2 + 0.3, size / 2 - 0.4)
    y, x = np.indices((size, size))
    return (y - cy) ** 2 + (x - cx) ** 2 < radius**2


def half_plane(size: int, slope: float = 0.37, offset: float = 0.2) -> np.ndarray:
    """Pixels above a slanted straight line (dimension 1)."""
    y, x = np.indices((size, size))
    return y > slope * x + offset * size


def square(size: int, margin: int) -> np.ndarray:
    """Filled axis-aligned square; its edge has dimension 1."""
    filled = np.zeros((size, size), dtype=bool)
    filled[margin:size - margin, margin:size - margin] = True
    return filled
