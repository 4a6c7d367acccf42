"""Fractal dimension of the boundary of a two-class map.

One verb, `dimension`, with three estimators that share one counting
machinery:

- ``"boxcount"``: boxes of side 1, 2, 4, ... that hold a boundary pixel,
  least-squares slope over an automatic (or given) range of sizes.
- ``"dyadic"``: Liu (2024), 1-D only: class changes between neighbouring
  samples of the dyadic sub-grids of a ``2**n + 1`` point line.
- ``"median-slope"``: Sohl-Dickstein (2024): porespy's box sizes and
  "boxes spanning both phases" counts, median of the local slopes.

The box counts come from `fractalscape.boxes`, block by block on dask
arrays, so only a few chunks are in memory at once and every chunking gives
the numpy counts exactly; this module holds the estimators and their fits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import dask.array as da
import numpy as np
import xarray as xr

from fractalscape.boundary import _check_labels, _edges
from fractalscape.boxes import PARTIAL, _box_states, _compute_counts, boundary_box_counts, box_counts
from fractalscape.errors import ConfigError

__all__ = ["DimensionResult", "default_method", "dimension"]

Method = Literal["boxcount", "dyadic", "median-slope"]

# The automatic boxcount fit range.  Below MIN_BOX_SIZE pixels the counts
# see the sampling grid (staircase of the raster) rather than the set; with
# fewer than MIN_BOXES_PER_AXIS boxes along the shortest axis they see the
# map's finite extent.  Tuned on rasterized Koch, Sierpinski, circle, line
# and square boundaries (all within 0.02 of the exact dimension at 1-2k px).
MIN_BOX_SIZE = 4
MIN_BOXES_PER_AXIS = 32


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of y on x and its standard error (nan for 2 points)."""
    slope, intercept = np.polyfit(x, y, 1)
    if len(x) < 3:
        return float(slope), math.nan
    residuals = y - (slope * x + intercept)
    variance = residuals @ residuals / (len(x) - 2)
    return float(slope), float(np.sqrt(variance / np.sum((x - x.mean()) ** 2)))


def axes(ax=None):
    """``ax``, or new matplotlib Axes on a Figure of their own (no pyplot: no global state, no backend switch)."""
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure().add_subplot()


@dataclass(frozen=True)
class DimensionResult:
    """A fractal dimension estimate and the counts it came from.

    Attributes
    ----------
    method : str
        ``"boxcount"``, ``"dyadic"`` or ``"median-slope"``.
    dimension : float
        The estimate.
    stderr : float
        Its standard error (nan when it cannot be estimated).
    sizes : tuple of int
        Box sizes in pixels, or for ``"dyadic"`` the levels ``k``.
    counts : tuple of int
        Count at each size or level.
    fit_range : tuple of int
        Smallest and largest size (or level) used by the fit.
    slopes : tuple of float
        For ``"median-slope"``, the local slopes whose median is the
        estimate; empty otherwise.
    interval : tuple of float or None
        A 95 % interval ``(low, high)`` for the dimension when one was
        estimated (see docs/dimension.md), else None.
    """

    method: str
    dimension: float
    stderr: float
    sizes: tuple
    counts: tuple
    fit_range: tuple
    slopes: tuple = ()
    interval: tuple | None = None

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict (nan becomes None).

        Examples
        --------
        >>> import json, numpy as np
        >>> from fractalscape.dimension import dimension
        >>> json.dumps(dimension(np.arange(9) < 3, "dyadic").to_dict())[:40]
        '{"method": "dyadic", "dimension": 0.0, "'
        """
        def plain(value):
            if isinstance(value, tuple):
                return [plain(v) for v in value]
            if isinstance(value, float) and math.isnan(value):
                return None
            return value

        return {name: plain(getattr(self, name)) for name in self.__dataclass_fields__}

    def plot(self, ax=None):
        """Log-log plot of the counts against scale, with the fitted line.

        Returns the matplotlib Axes.

        Examples
        --------
        >>> import io
        >>> import numpy as np
        >>> from fractalscape.dimension import dimension
        >>> y, x = np.indices((64, 64))
        >>> disk = (x - 32) ** 2 + (y - 32) ** 2 < 400
        >>> ax = dimension(disk, fit_range=(1, 16)).plot()
        >>> ax.figure.savefig(io.BytesIO(), format="png")
        """
        ax = axes(ax)
        sizes = np.array(self.sizes, dtype=float)
        counts = np.array(self.counts, dtype=float)
        if self.method == "dyadic":
            scale, xlabel = 2.0**sizes, "samples per unit length, 2**k"
        else:
            scale, xlabel = 1 / sizes, "1 / box size (pixels)"
        shown = counts > 0
        ax.loglog(scale[shown], counts[shown], "o", label="counts")
        lo, hi = self.fit_range
        fitted = (sizes >= lo) & (sizes <= hi) & shown
        if fitted.any():
            anchor = np.exp(np.mean(np.log(counts[fitted]) - self.dimension
                                    * np.log(scale[fitted])))
            ax.loglog(scale[fitted], anchor * scale[fitted] ** self.dimension, "-",
                      label=f"{self.method}: D = {self.dimension:.3f}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("count")
        ax.legend()
        return ax


def _dyadic(array, fit_range) -> DimensionResult:
    """Liu's dyadic count on a 1-D map of 2**n + 1 points."""
    n = (array.shape[0] - 1).bit_length() - 1
    if array.ndim != 1 or array.shape[0] < 3 or array.shape[0] != 2**n + 1:
        raise ConfigError(
            "method='dyadic' needs a 1-D map of 2**n + 1 points (3, 5, 9, 17, "
            f"..., 1025, ...), got shape {array.shape}; resample the grid or use "
            "method='boxcount'"
        )
    levels = np.arange(n + 1)
    counts = []
    for k in levels:
        sub = array[:: 2 ** (n - k)]
        counts.append((sub[1:] != sub[:-1]).sum())
    counts = _compute_counts(counts)
    if fit_range is None:
        used = counts > 1  # Liu's rule: levels where the count exceeds 1
    else:
        used = (levels >= fit_range[0]) & (levels <= fit_range[1]) & (counts > 0)
    if used.sum() < 2:
        slope, stderr, span = 0.0, math.nan, (0, n)
    else:
        slope, stderr = _ols(levels[used].astype(float), np.log2(counts[used]))
        span = (int(levels[used][0]), int(levels[used][-1]))
    return DimensionResult("dyadic", slope, stderr, tuple(levels.tolist()),
                           tuple(counts.tolist()), span)


def _boxcount(shape, sizes, counts, fit_range) -> DimensionResult:
    """The boxcount fit to the `counts` of boxes of `sizes` on a mask of `shape`."""
    if counts[0] == 0:
        raise ConfigError("labels hold a single class: there is no boundary to "
                          "measure")
    if fit_range is None:
        boxes = np.array([math.prod(-(-n // s) for n in shape) for s in sizes])
        per_axis = -(-min(shape) // sizes)
        used = ((counts < boxes) & (sizes >= MIN_BOX_SIZE)
                & (per_axis >= MIN_BOXES_PER_AXIS))
    else:
        used = (sizes >= fit_range[0]) & (sizes <= fit_range[1]) & (counts > 0)
    if used.sum() < 2:
        raise ConfigError(
            f"boxcount: only {int(used.sum())} box size(s) of {sizes.tolist()} "
            f"qualify for the fit on a map of shape {shape} (counts "
            f"{counts.tolist()}); pass fit_range=(min_size, max_size) spanning "
            "at least two sizes, or use a finer grid"
        )
    slope, stderr = _ols(-np.log(sizes[used]), np.log(counts[used]))
    return DimensionResult("boxcount", slope, stderr, tuple(sizes.tolist()),
                           tuple(counts.tolist()),
                           (int(sizes[used][0]), int(sizes[used][-1])))


def _porespy_sizes(shape) -> np.ndarray:
    """porespy.metrics.boxcount's default sizes: 10 log-spaced from 10 px."""
    return np.unique(np.logspace(1, np.log10(min(shape)), 10).astype(int))


def _median_slope(edge, fit_range) -> DimensionResult:
    sizes = _porespy_sizes(edge.shape)
    if fit_range is not None:
        sizes = sizes[(sizes >= fit_range[0]) & (sizes <= fit_range[1])]
    if min(edge.shape) < 10 or len(sizes) < 2:
        raise ConfigError(
            f"median-slope needs at least two of porespy's box sizes, got "
            f"{sizes.tolist()} for shape {edge.shape} and fit_range={fit_range}; "
            "use a map at least 11 pixels on its shortest side or widen fit_range"
        )
    states = _box_states(edge, list(sizes))
    counts = _compute_counts([(s == PARTIAL).sum() for s in states])
    if not counts.all():
        raise ConfigError(
            f"median-slope: no box holds both boundary and non-boundary pixels "
            f"at sizes {sizes[counts == 0].tolist()} (counts {counts.tolist()}); "
            "the map has no boundary, or use method='boxcount'"
        )
    slopes = -np.gradient(np.log(counts), np.log(sizes))
    median = float(np.median(slopes))
    # large-sample standard error of a median, from the MAD as a robust sigma
    mad_sigma = 1.4826 * np.median(np.abs(slopes - median))
    stderr = float(np.sqrt(np.pi / 2) * mad_sigma / np.sqrt(len(slopes)))
    return DimensionResult("median-slope", median, stderr, tuple(sizes.tolist()),
                           tuple(counts.tolist()),
                           (int(sizes[0]), int(sizes[-1])), tuple(slopes.tolist()))


def dimension(labels, method: Method = "boxcount", *, fit_range=None, level=0.5,
              interval: bool = False, **options) -> DimensionResult:
    """Fractal dimension of the boundary between the two classes of a map.

    Parameters
    ----------
    labels : numpy.ndarray, dask.array.Array, xarray.DataArray or xarray.Dataset
        Boolean two-class map (e.g. converged vs diverged), 1-D or 2-D, or a
        map of probabilities in [0, 1] (an ensemble's ``p_diverged``, see
        ``level``), or a trainability Dataset (its ``p_diverged`` if it has
        one, else ``diverged``; needed for ``interval`` and
        ``"uncertainty"``). Dask input is counted block by block; the graph
        is built lazily and evaluated once.
    method : {"boxcount", "dyadic", "median-slope", "uncertainty", "auto"}
        ``"boxcount"`` (1-D or 2-D): count the boxes of side
        ``s = 1, 2, 4, ...`` cells, aligned at index 0 (partial boxes at the
        far edges count), that contain a boundary cell: a cell is the 2x2
        (1-D: 2) window of neighbouring pixels, on the boundary when it holds
        both labels (the cells ``skimage.measure.find_contours`` draws
        through, and Sohl-Dickstein's ``extract_edges`` mask). The
        dimension is the least-squares slope of ``log count`` against
        ``log(1/s)``. Automatic fit range: sizes of at least
        ``MIN_BOX_SIZE`` (4) cells, leaving at least ``MIN_BOXES_PER_AXIS``
        (32) boxes along the shortest axis, and not saturated (count below
        the number of boxes). ``stderr`` is the OLS standard error of the
        slope.

        ``"dyadic"`` (Liu 2024; 1-D maps of ``2**n + 1`` points): at each
        level ``k = 0..n`` take the ``2**k + 1`` samples at stride
        ``2**(n-k)`` and count neighbouring pairs with different labels.  The
        dimension is the OLS slope of ``log2 count`` against ``k`` over the
        levels whose count exceeds 1 (Liu's rule), 0.0 if fewer than two
        levels do (e.g. a single class change counts 1 at every level).

        ``"median-slope"`` (Sohl-Dickstein 2024, which called porespy's
        ``metrics.boxcount`` on an edge mask and reported the median of its
        slopes).  Matches porespy exactly on the boundary mask: box sizes
        ``unique(int(logspace(1, log10(min(shape)), 10)))``, boxes tiled from
        index 0 with partial boxes at the edges, a box counted when it holds
        both boundary and non-boundary pixels (porespy's ``any - all``),
        local slopes ``-numpy.gradient(log count, log size)`` (central
        differences, one-sided at the ends), estimate = their median.
        ``stderr`` is ``sqrt(pi/2) * 1.4826 * MAD / sqrt(len(slopes))``, the
        large-sample error of a median.  The mask is the boundary cells
        described under ``"boxcount"``, as Sohl-Dickstein's edge mask.
        ``"uncertainty"`` (Grebogi, McDonald, Ott, Yorke 1983): from the
        model and window of a Dataset, no map needed; see
        :func:`fractalscape.uncertainty.uncertainty`, which takes
        ``**options``.

        ``"auto"``: ``"dyadic"`` for 1-D maps of ``2**n + 1`` points, else
        ``"boxcount"`` (:func:`default_method`).
    fit_range : tuple (min, max), optional
        Restrict the fit to box sizes (levels for ``"dyadic"``) in
        ``[min, max]``, inclusive, replacing the automatic choice.  For
        ``"median-slope"`` it filters porespy's sizes before the slopes.
    level : float or "uncertain"
        For probability maps: the boundary of the level set ``p >= level``
        (default 0.5), or ``"uncertain"``, the box-count dimension of the
        set ``0 < p < 1`` itself (points whose ensemble is split).
    interval : bool
        Also estimate a 95 % interval over a rounding ensemble of the map
        (:func:`fractalscape.rounding.rounding_interval`; ``labels`` must be
        its Dataset, and the map is recomputed 4 times).

    Returns
    -------
    DimensionResult

    Examples
    --------
    >>> import numpy as np
    >>> from fractalscape.dimension import dimension
    >>> y, x = np.indices((256, 256))
    >>> disk = (x - 128) ** 2 + (y - 128) ** 2 < 100**2
    >>> round(dimension(disk).dimension, 1)
    1.0
    >>> dimension(np.arange(1025) < 300, method="dyadic").dimension
    0.0

    A probability map, its p = 0.5 level set and its uncertain set:

    >>> p = np.clip((x - 64) / 128, 0, 1)   # a ramp from 0 to 1 across x = 64 .. 192
    >>> round(dimension(p).dimension, 1), round(dimension(p, level="uncertain").dimension, 1)
    (1.0, 2.0)
    """
    if method == "uncertainty":
        from fractalscape.uncertainty import uncertainty

        return uncertainty(labels, **options)
    if options:
        raise ConfigError(f"unknown option {sorted(options)[0]!r} for method {method!r}")
    if isinstance(labels, xr.Dataset):
        if interval:
            from fractalscape.rounding import rounding_interval

            return rounding_interval(labels, method, fit_range=fit_range)
        labels = labels.p_diverged if "p_diverged" in labels else labels.diverged
    elif interval:
        raise ConfigError("interval=True needs the map's Dataset (its config rebuilds the rounding ensemble), "
                          "not its labels: pass ds instead of ds.diverged")
    labels = _probability_level(labels, level)
    if method == "auto":
        method = default_method(labels)
    if isinstance(labels, _Uncertain):
        if method != "boxcount":
            raise ConfigError(f"level='uncertain' measures a set, with method='boxcount'; got method={method!r}")
        return _boxcount(labels.mask.shape, *box_counts(labels.mask), fit_range)
    array = _check_labels(labels)
    if fit_range is not None and (len(fit_range) != 2 or fit_range[0] > fit_range[1]):
        raise ConfigError(f"fit_range must be (min, max) with min <= max, got "
                          f"{fit_range!r}")
    if method == "dyadic":
        return _dyadic(array, fit_range)
    # the cells between pixel centres that the boundary passes through: one
    # fewer than the pixels along each axis
    cells_shape = tuple(max(n - 1, 0) for n in array.shape)
    if method == "boxcount" and array.ndim == 2:
        # counted straight from the labels, one fused pass per block, without
        # writing the cell mask
        return _boxcount(cells_shape, *boundary_box_counts(array), fit_range)
    cells = _edges(array, cells=True)[(slice(None, -1),) * array.ndim]
    if method == "boxcount":
        return _boxcount(cells_shape, *box_counts(cells), fit_range)
    if method == "median-slope":
        return _median_slope(cells, fit_range)
    raise ConfigError(f"method must be 'boxcount', 'dyadic' or 'median-slope', got "
                      f"{method!r}")


@dataclass(frozen=True)
class _Uncertain:
    mask: object  # points whose probability is strictly between 0 and 1


def _probability_level(labels, level):
    """Boolean labels as given; a probability map thresholded at ``level``, or its uncertain set."""
    array = labels.data if isinstance(labels, xr.DataArray) else labels
    if not isinstance(array, (np.ndarray, da.Array)):
        array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        return labels
    if level == "uncertain":
        return _Uncertain((array > 0) & (array < 1))
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level <= 1:
        raise ConfigError(f"level must be a probability in (0, 1] or 'uncertain', got {level!r}")
    return array >= level


def default_method(diverged) -> str:
    """``dyadic`` for 1-D maps of 2**n + 1 points (Liu's count), else ``boxcount``.

    Examples
    --------
    >>> default_method(np.zeros(1025, bool)), default_method(np.zeros(1000, bool))
    ('dyadic', 'boxcount')
    """
    n = diverged.shape[0] - 1
    return "dyadic" if diverged.ndim == 1 and n >= 2 and n & (n - 1) == 0 else "boxcount"
