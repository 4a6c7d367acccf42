"""Hyperparameter grids: axes of named scalar parameters, as lazy dask coordinates.

An :class:`Axis` is ``(name, start, stop, num, scale, chunk)``; a :class:`Grid`
is 1 to 3 axes. Coordinates are dask arrays computed element by element from
the global index, so a value never depends on how the axis is chunked, and
describing a 2**32 + 1 point axis allocates nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import dask.array as da
import numpy as np

from fractalscape.errors import ConfigError, check_finite

Scale = Literal["linear", "log"]

#: Default number of grid points per dask block (split evenly over the axes).
DEFAULT_BLOCK_POINTS = 2**16
#: Largest block a kernel call may take: 2**26 points is ~0.8 GB of readouts.
MAX_BLOCK_POINTS = 2**26
#: Most blocks in a grid: dask's graph holds a few kB per block.
MAX_BLOCKS = 2**18
#: Largest grid: 2**40 points of 1000 GD steps is ~10 days of a 2-core machine at 1e9 steps/s.
MAX_GRID_POINTS = 2**40


def _positive_int(name: str, key: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"axis {name!r}: {key} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"axis {name!r}: {key} must be >= {minimum}, got {value}")
    return int(value)


@dataclass(frozen=True)
class Axis:
    """One swept parameter.

    Parameters
    ----------
    name : str
        The parameter the axis sweeps, e.g. ``"lr"``, ``"x0"``, ``"delta"``, ``"lr_1"``.
    start, stop : float
        First and last coordinate (both included). ``start < stop`` is not
        required, but they must differ.
    num : int
        Number of points, at least 2.
    scale : {"linear", "log"}
        ``"log"`` spaces points evenly in log10 between ``start`` and ``stop``,
        which must then both be > 0.
    chunk : int, optional
        Points per dask block along this axis; chosen automatically if omitted.
    ensemble : bool
        Repeats, not a direction of the map (:mod:`fractalscape.ensemble`):
        the map adds the fraction of them that diverged over the other axes.
        An ensemble axis is one block (``chunk`` is ``num``). The rounding
        axes ``ulp`` and ``<axis>_ulp`` take integer coordinates.

    Examples
    --------
    >>> Axis("lr", 0.0, 1.5, 5)
    Axis('lr', 0.0 .. 1.5, num=5, linear)
    >>> Axis("lr", 1e-3, 1e1, 5, scale="log").values()
    array([1.e-03, 1.e-02, 1.e-01, 1.e+00, 1.e+01])
    >>> Axis("lr_ulp", -2, 2, 5, ensemble=True).values()
    array([-2., -1.,  0.,  1.,  2.])
    """

    name: str
    start: float
    stop: float
    num: int
    scale: Scale = "linear"
    chunk: int | None = None
    ensemble: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ConfigError(f"axis name must be an identifier such as 'lr', got {self.name!r}")
        set_ = object.__setattr__
        if self.ensemble is True and isinstance(self.num, (int, np.integer)) and self.num < 2:
            raise ConfigError(f"axis {self.name!r}: an ensemble needs at least 2 members, got num={self.num}")
        set_(self, "start", check_finite(f"axis {self.name!r}: start", self.start))
        set_(self, "stop", check_finite(f"axis {self.name!r}: stop", self.stop))
        set_(self, "num", _positive_int(self.name, "num", self.num, 2))
        if self.scale not in ("linear", "log"):
            raise ConfigError(f"axis {self.name!r}: scale must be 'linear' or 'log', got {self.scale!r}")
        if self.start == self.stop:
            raise ConfigError(f"axis {self.name!r}: start and stop must differ, both are {self.start}")
        if self.scale == "linear" and not math.isfinite(float(self.stop) - float(self.start)):
            raise ConfigError(f"axis {self.name!r}: the span {self.start} .. {self.stop} overflows float64 (its "
                              "points would be inf); keep stop - start below 1.7e308")
        if self.scale == "log" and (self.start <= 0 or self.stop <= 0):
            raise ConfigError(
                f"axis {self.name!r}: a log axis needs start > 0 and stop > 0, "
                f"got start={self.start}, stop={self.stop}; use scale='linear' or positive bounds"
            )
        if self.chunk is not None:
            chunk = _positive_int(self.name, "chunk", self.chunk, 1)
            if chunk > self.num:
                raise ConfigError(
                    f"axis {self.name!r}: chunk must be at most num={self.num}, got {chunk}"
                )
            set_(self, "chunk", chunk)
        self._check_ensemble()

    def _check_ensemble(self) -> None:
        if not isinstance(self.ensemble, bool):
            raise ConfigError(f"axis {self.name!r}: ensemble must be true or false, got {self.ensemble!r}")
        rounding = self.name == "ulp" or self.name.endswith("_ulp")
        if rounding:
            steps = (self.stop - self.start) / (self.num - 1)
            if self.scale != "linear" or not all(float(v).is_integer() for v in (self.start, self.stop, steps)):
                raise ConfigError(
                    f"axis {self.name!r} counts ulp shifts: it needs integer start, stop and spacing on a linear "
                    f"scale, got {self.start} .. {self.stop} in {self.num} points ({self.scale}); e.g. start = -2, "
                    "stop = 2, num = 5"
                )
            if not self.ensemble:
                raise ConfigError(f"axis {self.name!r} is a rounding ensemble: set ensemble = true on it")
        if self.ensemble and self.chunk not in (None, self.num):
            raise ConfigError(
                f"axis {self.name!r}: an ensemble axis is one block, so chunk must be num={self.num} "
                f"(or omitted), got {self.chunk}"
            )

    @property
    def block(self) -> int | None:
        """The chunk along this axis: the whole axis for an ensemble, else ``chunk``."""
        return self.num if self.ensemble else self.chunk

    def __repr__(self) -> str:
        chunk = "" if self.chunk is None else f", chunk={self.chunk}"
        ensemble = ", ensemble" if self.ensemble else ""
        return f"Axis({self.name!r}, {self.start!r} .. {self.stop!r}, num={self.num}, {self.scale}{chunk}{ensemble})"

    def _lo_hi_step(self) -> tuple[float, float, float]:
        if self.scale == "log":
            lo, hi = math.log10(self.start), math.log10(self.stop)
        else:
            lo, hi = self.start, self.stop
        return lo, hi, (hi - lo) / (self.num - 1)

    def _coordinate_block(self, index: np.ndarray) -> np.ndarray:
        # Elementwise in the global index (as np.linspace computes it), so the
        # value at an index is the same whatever block it falls in.
        lo, _, step = self._lo_hi_step()
        values = index * step + lo
        if self.scale == "log":
            values = np.power(10.0, values)
        values[index == 0] = self.start
        values[index == self.num - 1] = self.stop
        return values

    def values(self) -> np.ndarray:
        """All coordinates as a NumPy array (use :meth:`coords` for big axes)."""
        return self._coordinate_block(np.arange(self.num, dtype=np.float64))

    def coords(self, chunk: int) -> da.Array:
        """Coordinates as a lazy dask array with blocks of ``chunk`` points."""
        index = da.arange(self.num, chunks=chunk, dtype=np.float64)
        return index.map_blocks(self._coordinate_block, dtype=np.float64, meta=np.array((), np.float64))

    def to_dict(self) -> dict:
        out = {"name": self.name, "start": self.start, "stop": self.stop, "num": self.num, "scale": self.scale}
        if self.chunk is not None:
            out["chunk"] = self.chunk
        if self.ensemble:
            out["ensemble"] = True
        return out


@dataclass(frozen=True)
class Grid:
    """1 to 3 axes with distinct names; points are their outer product.

    Examples
    --------
    >>> g = Grid([Axis("lr", 0.0, 1.5, 2**20 + 1), Axis("x0", -2.0, 2.0, 3)])
    >>> g.shape
    (1048577, 3)
    >>> g.chunks()[0][:2]
    (256, 256)
    """

    axes: tuple[Axis, ...]

    def __init__(self, axes):
        axes = tuple(axes)
        if not 1 <= len(axes) <= 3:
            raise ConfigError(f"a grid needs 1 to 3 axes, got {len(axes)}")
        for axis in axes:
            if not isinstance(axis, Axis):
                raise ConfigError(f"grid axes must be Axis objects, got {axis!r}")
        names = [a.name for a in axes]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ConfigError(f"axis names must be unique, {duplicated[0]!r} appears more than once")
        object.__setattr__(self, "axes", axes)
        if all(a.ensemble for a in axes):
            raise ConfigError(
                f"every axis ({', '.join(names)}) is an ensemble: a map needs at least one swept axis; "
                "set ensemble = false on one of them"
            )
        if self.size > MAX_GRID_POINTS:
            raise ConfigError(
                f"the grid has {self.size:.3g} points ({' x '.join(map(str, self.shape))}), more than the "
                f"{MAX_GRID_POINTS:.3g} fractalscape computes; reduce num or zoom into a window"
            )
        size = math.prod(self.block_shape)
        blocks = math.prod(math.ceil(n / c) for n, c in zip(self.shape, self.block_shape))
        if blocks > MAX_BLOCKS:
            raise ConfigError(
                f"chunks {self.block_shape} cut the grid into {blocks:,} blocks, more than {MAX_BLOCKS:,}; "
                "set larger 'chunk' values on the axes"
            )
        if size > MAX_BLOCK_POINTS:
            raise ConfigError(
                f"one block would hold {size:,} grid points (chunks {self.block_shape}); "
                f"the limit is {MAX_BLOCK_POINTS:,}: set smaller 'chunk' values on the axes"
            )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.num for a in self.axes)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def block_shape(self) -> tuple[int, ...]:
        """Points per block along each axis (the axis' ``chunk`` or an automatic one).

        Automatic blocks hold about :data:`DEFAULT_BLOCK_POINTS` points, more
        on grids so large that the block count would pass :data:`MAX_BLOCKS` / 4;
        an ensemble axis is always one block.
        """
        target = max(DEFAULT_BLOCK_POINTS, math.ceil(self.size / (MAX_BLOCKS // 4)))
        members = math.prod(a.num for a in self.axes if a.ensemble)  # an ensemble is one block
        swept = sum(not a.ensemble for a in self.axes)
        per_axis = max(1, math.ceil((target / members) ** (1 / swept)))
        return tuple(a.block if a.block is not None else min(a.num, per_axis) for a in self.axes)

    @property
    def ensemble_names(self) -> tuple[str, ...]:
        """Names of the ensemble axes."""
        return tuple(a.name for a in self.axes if a.ensemble)

    def chunks(self) -> tuple[tuple[int, ...], ...]:
        """Dask chunks of the grid, axis by axis."""
        return da.core.normalize_chunks(self.block_shape, self.shape)

    def coords(self) -> dict[str, da.Array]:
        """Lazy coordinates of every axis, keyed by axis name."""
        return {a.name: a.coords(c) for a, c in zip(self.axes, self.block_shape)}

    def __repr__(self) -> str:
        inner = ", ".join(repr(a) for a in self.axes)
        return f"Grid([{inner}])  # {' x '.join(map(str, self.shape))} = {self.size:,} points"
