"""Rasterizers of two-class maps whose boundary dimension is known.

Each returns a boolean numpy array; the boundary between True and False is
the set whose dimension the tests estimate.
"""
import numpy as np
from skimage.draw import polygon2mask


def cantor(num: int, depth: int, ternary_grid: bool = False) -> np.ndarray:
    """Indicator of the middle-thirds Cantor set, `depth` levels deep.

    With ``ternary_grid`` the samples are the ``num`` cell centres of a grid
    of ``3**depth`` cells (then ``num`` must equal it), so every interval end
    falls between two samples; otherwise the samples are ``i / (num - 1)``,
    a dyadic grid when ``num == 2**n + 1``.  The set of class changes is a
    finite approximation of the Cantor set's interval ends: dimension
    log 2 / log 3 = 0.6309 at scales between 3**-depth and 1.
    """
    if ternary_grid:
        cell = np.arange(num, dtype=np.int64)
    else:
        x = np.arange(num) / (num - 1)
        cell = np.minimum((x * 3**depth).astype(np.int64), 3**depth - 1)
    inside = np.ones(num, dtype=bool)
    for _ in range(depth):
        inside &= cell % 3 != 1
        cell //= 3
    return inside


def koch_snowflake(size: int, iterations: int) -> np.ndarray:
    """Filled Koch snowflake in a ``size x size`` image; dim log 4 / log 3."""
    side = 0.8 * size
    height = side * np.sqrt(3) / 2
    centre = np.array([size / 2, size / 2])
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
    return polygon2mask((size, size), points)


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
