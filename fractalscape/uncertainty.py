"""Uncertainty exponent: the boundary dimension from pairs of nearby points, with no stored map.

Grebogi, McDonald, Ott & Yorke ("Final state sensitivity: an obstruction to
predictability", Phys. Lett. A 99, 1983; "Fractal basin boundaries",
Physica D 17, 1985): draw a point uniformly in the window and a partner at
distance ``eps`` from it along one axis. The pair is *uncertain* when GD
labels the two differently (one converges, one diverges). The fraction of
uncertain pairs scales as ``f(eps) ~ eps**alpha`` for small ``eps``, and the
box-counting dimension of the boundary is ``D = d - alpha`` in a
``d``-dimensional window. A smooth boundary gives ``alpha = 1``.

Unlike box counting, nothing is stored: pairs are drawn and run through the
GD kernel (:func:`fractalscape.trainability.run_points`) until each ``eps``
has enough uncertain pairs, so ``eps`` can go down to 1e-12 of the window
where a map of that resolution would need 1e12 points per axis.

Sampling is adaptive. Pairs are drawn in rows of :data:`ROW` pairs, in
rounds: an ``eps`` stops drawing once it has ``target`` uncertain pairs,
once it has drawn ``samples`` pairs, or once even an optimistic (95 %
upper) bound on its fraction would leave it below :data:`MIN_UNCERTAIN`
uncertain pairs at ``samples`` pairs; every smaller ``eps`` then stops too,
since ``f`` shrinks with ``eps``. For the same reason an ``eps`` draws only
once the next larger one has seen an uncertain pair, so a boundary too thin
to see at small ``eps`` costs the budget of one ``eps``, not of all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import dask
import numpy as np
import xarray as xr
from scipy import stats

from fractalscape.config import config_of, load_config, read_config
from fractalscape.dimension import DimensionResult, axes
from fractalscape.errors import ConfigError
from fractalscape.trainability import run_points
from fractalscape.trig import get_trig

__all__ = ["UncertaintyResult", "uncertainty"]

#: Pairs per row. In 2-D the pairs of a row share the coordinate of the
#: other axis, so one kernel call runs ``2 * ROW`` points.
ROW = 256
#: Rows per dask task.
ROWS_PER_TASK = 64
#: Pairs each ``eps`` draws in the first round; later rounds double it until
#: the fraction is known well enough to aim at ``target``.
FIRST_BATCH = 16 * ROW
#: Smallest ``samples``.
MIN_SAMPLES = FIRST_BATCH
#: Fewest uncertain pairs for an ``eps`` to enter the fit (f known to ~22 %).
MIN_UNCERTAIN = 20
#: Above this fraction of uncertain pairs, ``eps`` is beyond the small-eps regime.
SATURATED = 0.25
#: Default ``eps``: from this fraction of the window's width ...
DEFAULT_TOP = 1e-2
#: ... down to this many ulps of its largest coordinate, 4 values per decade.
DEFAULT_FLOOR_ULPS = 1e4
DEFAULT_PER_DECADE = 4
#: No ``eps`` may be below this many ulps: rounding ``base + eps`` would
#: change the offset by more than 1/128 of itself.
MIN_ULPS = 64
#: Fewest usable ``eps`` values for a fit.
MIN_FIT_POINTS = 3


@dataclass(frozen=True)
class UncertaintyResult(DimensionResult):
    """A :class:`~fractalscape.dimension.DimensionResult` of the uncertainty method.

    ``sizes`` are the perturbations ``eps`` (in units of the perturbed
    axis' coordinate, log10 units on a log axis), ``counts`` the uncertain
    pairs at each, ``fit_range`` the smallest and largest ``eps`` in the fit.

    Attributes
    ----------
    pairs : tuple of int
        Pairs drawn at each ``eps``: ``counts[i] / pairs[i]`` is ``f(eps[i])``.
    axis : str
        Name of the perturbed axis.
    ndim : int
        Number of axes of the window, ``d`` in ``D = d - alpha``.
    """

    pairs: tuple = ()
    axis: str = ""
    ndim: int = 1

    @property
    def exponent(self) -> float:
        """The uncertainty exponent ``alpha = ndim - dimension``."""
        return self.ndim - self.dimension

    def plot(self, ax=None):
        """Log-log plot of the uncertain fraction against ``eps``, with the fitted line.

        Returns the matplotlib Axes.

        Examples
        --------
        >>> result = UncertaintyResult("uncertainty", 0.0, 0.01, (1e-3, 1e-2, 1e-1), (10, 100, 1000),
        ...                            (1e-3, 1e-1), pairs=(10**4,) * 3, axis="lr")
        >>> ax = result.plot()
        """
        ax = axes(ax)
        eps = np.array(self.sizes, dtype=float)
        counts = np.array(self.counts, dtype=float)
        fraction = counts / np.array(self.pairs, dtype=float)
        shown = counts > 0
        ax.loglog(eps[shown], fraction[shown], "o", label="uncertain fraction")
        lo, hi = self.fit_range
        fitted = (eps >= lo) & (eps <= hi) & shown
        anchor = np.exp(np.mean(np.log(fraction[fitted]) - self.exponent * np.log(eps[fitted])))
        ax.loglog(eps[fitted], anchor * eps[fitted] ** self.exponent, "-",
                  label=f"alpha = {self.exponent:.3f}, D = {self.dimension:.3f}")
        ax.set_xlabel(f"eps (perturbation of {self.axis})")
        ax.set_ylabel("f(eps), fraction of uncertain pairs")
        ax.legend()
        return ax


@dataclass(frozen=True)
class _Side:
    """One axis of the window, in the space where points are drawn uniformly (log10 on a log axis)."""

    name: str
    lo: float
    hi: float
    log: bool

    @classmethod
    def of(cls, axis) -> _Side:
        ends = sorted((axis.start, axis.stop))
        if axis.scale == "log":
            return cls(axis.name, math.log10(ends[0]), math.log10(ends[1]), True)
        return cls(axis.name, ends[0], ends[1], False)

    @property
    def width(self) -> float:
        return self.hi - self.lo

    @property
    def ulp(self) -> float:
        """Spacing of doubles at the window's largest |value| (for a log axis, also of the coordinate itself)."""
        spacing = float(np.spacing(max(abs(self.lo), abs(self.hi))))
        return max(spacing, np.finfo(np.float64).eps / math.log(10)) if self.log else spacing

    def coordinate(self, u: np.ndarray) -> np.ndarray:
        return np.power(10.0, u) if self.log else u

    def describe(self) -> str:
        what = "log10 " if self.log else ""
        return f"{what}{self.name} in [{self.lo:g}, {self.hi:g}]"


def _uncertain_rows(config: dict, precision, axis: int, fixed, moving: np.ndarray) -> tuple[np.ndarray, int]:
    """Uncertain pairs per row and diverged base points, for rows of ``moving`` coordinates.

    ``moving[r]`` holds a row's ``ROW`` base points then their partners
    along ``axis``; ``fixed[r]`` the other axis' coordinate (None in 1-D).
    """
    if fixed is None:
        labels = run_points(config, [moving.ravel()], precision=precision)["escape_step"] >= 0
        labels = labels.reshape(moving.shape)
    else:
        labels = np.empty(moving.shape, dtype=bool)
        for r, (other, row) in enumerate(zip(fixed, moving)):
            coords = [row, np.array([other])] if axis == 0 else [np.array([other]), row]
            labels[r] = run_points(config, coords, precision=precision)["escape_step"].ravel() >= 0
    base, partner = labels[:, :ROW], labels[:, ROW:]
    return (base != partner).sum(axis=1), int(base.sum())


@dataclass
class _Tally:
    """What the pairs at one ``eps`` have shown so far."""

    pairs: int = 0
    uncertain: int = 0
    rows: int = 0
    uncertain_sq: int = 0  # sum over rows of (uncertain pairs in the row)**2
    done: bool = False

    def variance(self, clustered: bool) -> float:
        """Variance of the uncertain count: binomial, or between rows when the rows' pairs are correlated."""
        f = self.uncertain / self.pairs
        binomial = self.pairs * f * (1 - f)
        if not clustered:
            return binomial
        spread = self.uncertain_sq - 2 * f * ROW * self.uncertain + f * f * ROW * ROW * self.rows
        return max(binomial, spread * self.rows / (self.rows - 1))

    def next_batch(self, samples: int, target: int) -> int:
        """Pairs to draw in the next round: aim at ``target`` once the fraction is known, else double."""
        left = samples - self.pairs
        if self.uncertain >= MIN_UNCERTAIN:
            wanted = math.ceil(1.1 * target * self.pairs / self.uncertain) - self.pairs
            batch = min(max(wanted, ROW), 4 * self.pairs)
        else:
            batch = max(FIRST_BATCH, self.pairs)
        return min(batch, left)

    def hopeless(self, samples: int) -> bool:
        """Even a 95 % upper bound on the fraction gives fewer than MIN_UNCERTAIN pairs at ``samples``."""
        k = self.uncertain
        return self.pairs > 0 and (k + 2 * math.sqrt(k) + 3) / self.pairs * samples < MIN_UNCERTAIN


def _config_dict(source) -> dict:
    if isinstance(source, xr.DataArray):
        raise ConfigError(f"pass the map's Dataset, not its variable {source.name!r}: the config the pairs are run "
                          "with is in the Dataset's attrs['config']")
    if isinstance(source, xr.Dataset):
        return config_of(source)
    return read_config(source)


def _perturbed_axis(axis, names) -> int:
    if axis is None:
        return 0
    if isinstance(axis, str) and axis in names:
        return names.index(axis)
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) and 0 <= axis < len(names):
        return int(axis)
    raise ConfigError(f"axis must be one of the window's axes {list(names)} (a name or 0..{len(names) - 1}), "
                      f"got {axis!r}")


def _check_count(what: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _eps_values(eps, side: _Side) -> np.ndarray:
    """Checked perturbations, largest first."""
    floor = MIN_ULPS * side.ulp
    if eps is None:
        top, bottom = DEFAULT_TOP * side.width, DEFAULT_FLOOR_ULPS * side.ulp
        decades = math.log10(top / bottom)
        if decades < 2:
            raise ConfigError(
                f"the window {side.describe()} is too narrow for the uncertainty exponent: eps from "
                f"{top:.3g} (width/100) to {bottom:.3g} ({DEFAULT_FLOOR_ULPS:g} ulps) spans {decades:.1f} "
                "decades, fewer than 2; widen the window or pass eps=..."
            )
        return np.logspace(math.log10(top), math.log10(bottom), math.ceil(decades * DEFAULT_PER_DECADE) + 1)
    try:
        values = np.array(eps, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"eps must be a 1-D array of positive numbers, got {eps!r}") from None
    if values.ndim != 1 or len(values) < MIN_FIT_POINTS:
        raise ConfigError(f"eps must be a 1-D array of at least {MIN_FIT_POINTS} sizes, got {eps!r}")
    if not np.all(np.isfinite(values)) or len(np.unique(values)) != len(values):
        raise ConfigError(f"eps must hold distinct finite numbers, got {eps!r}")
    bad = values[(values < floor) | (values > side.width / 2)]
    if len(bad):
        raise ConfigError(
            f"eps = {bad[0]:g} is outside [{floor:.3g}, {side.width / 2:.3g}] for {side.describe()}: below "
            f"{MIN_ULPS} ulps the partner's offset is rounding, above half the width no pair fits; "
            "pick eps in that range"
        )
    return np.sort(values)[::-1]


def _draw_round(rng, tallies, eps, sides, axis, samples, target):
    """The rows of one round: (eps index, fixed coordinates or None, moving coordinates) per active eps."""
    perturbed = sides[axis]
    other = sides[1 - axis] if len(sides) == 2 else None
    batches = []
    for i, tally in enumerate(tallies):
        # f shrinks with eps: a smaller eps waits until the next larger one has seen the boundary
        if tally.done or (i and not tallies[i - 1].uncertain):
            continue
        rows = -(-tally.next_batch(samples, target) // ROW)
        base = perturbed.lo + rng.random((rows, ROW)) * (perturbed.width - eps[i])
        moving = perturbed.coordinate(np.concatenate([base, base + eps[i]], axis=1))
        fixed = None if other is None else other.coordinate(other.lo + rng.random(rows) * other.width)
        batches.append((i, fixed, moving))
    return batches


def _run_round(config, precision, axis, batches):
    """Uncertain pairs per row and diverged base points of each batch, the kernels run as dask tasks."""
    tasks, owners = [], []
    for b, (_, fixed, moving) in enumerate(batches):
        for start in range(0, len(moving), ROWS_PER_TASK):
            part = slice(start, start + ROWS_PER_TASK)
            tasks.append(dask.delayed(_uncertain_rows)(
                config, precision, axis, None if fixed is None else fixed[part], moving[part]))
            owners.append(b)
    rows = [[] for _ in batches]
    diverged = [0] * len(batches)
    for b, (task_rows, task_diverged) in zip(owners, dask.compute(*tasks)):
        rows[b].append(task_rows)
        diverged[b] += task_diverged
    return [(np.concatenate(r), d) for r, d in zip(rows, diverged)]


def _fit(eps, tallies, clustered):
    """Weighted least squares of log f on log eps over the usable eps: alpha, its stderr, 95 % half-width, used."""
    pairs = np.array([t.pairs for t in tallies])
    uncertain = np.array([t.uncertain for t in tallies])
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = uncertain / pairs
    usable = (uncertain >= MIN_UNCERTAIN) & (fraction <= SATURATED)
    if usable.sum() < MIN_FIT_POINTS:
        return None, usable
    x = np.log(eps[usable])
    y = np.log(fraction[usable])
    # var(log f) = var(k) / k**2 (delta method)
    weight = np.array([t.uncertain**2 / t.variance(clustered) for t, u in zip(tallies, usable) if u])
    x_mean = weight @ x / weight.sum()
    y_mean = weight @ y / weight.sum()
    sxx = weight @ (x - x_mean) ** 2
    alpha = float(weight @ ((x - x_mean) * (y - y_mean)) / sxx)
    residuals = y - y_mean - alpha * (x - x_mean)
    dof = len(x) - 2
    reduced_chi2 = float(weight @ residuals**2) / dof if dof else 0.0
    stderr = 1 / math.sqrt(sxx)
    if reduced_chi2 > 1:
        # The points scatter more than their counting errors allow (the power law is only
        # approximate over the range): scale the error by the Birge ratio, Student t quantile.
        stderr *= math.sqrt(reduced_chi2)
        half = float(stats.t.ppf(0.975, dof)) * stderr
    else:
        half = 1.959963984540054 * stderr
    return (alpha, stderr, half), usable


def uncertainty(source, *, samples: int = 2**20, target: int = 1000, eps=None, seed=0,
                precision: str | None = None, axis=None) -> UncertaintyResult:
    """Boundary dimension of a configuration's map from its uncertainty exponent.

    Pairs of points at distance ``eps`` along one axis are drawn uniformly
    in the window (the config's axes, ``start .. stop``; uniform in log10 on
    a log axis, where ``eps`` is then in log10 units) and both run through
    GD. The fraction ``f(eps)`` of pairs with different labels (converged vs
    diverged) scales as ``eps**alpha``; the boundary dimension is
    ``D = d - alpha`` for a window of ``d`` axes (Grebogi, McDonald, Ott &
    Yorke 1983, 1985). A smooth boundary (a point in 1-D, a curve in 2-D)
    gives ``alpha = 1``.

    Parameters
    ----------
    source : xarray.Dataset, dict, path or str
        A trainability map (lazy or stored: only its ``attrs["config"]`` is
        read) or a config (dict, TOML path or preset name); 1 or 2 axes.
    samples : int
        Most pairs drawn at each ``eps`` (rounded up to a multiple of
        :data:`ROW`), at least :data:`MIN_SAMPLES`. The work is at most
        ``2 * samples * len(eps)`` GD runs, usually far less.
    target : int
        An ``eps`` stops drawing once it has this many uncertain pairs
        (relative error of ``f`` about ``1 / sqrt(target)``).
    eps : array of float, optional
        Perturbations, at least 3, each between :data:`MIN_ULPS` ulps of the
        window's largest coordinate and half its width. Default:
        log-spaced, 4 per decade, from 1/100 of the window's width down to
        1e4 ulps (``2.2e-12`` on ``lr`` in ``[0, 1.5]``).
    seed : int or numpy.random.SeedSequence
        Seed of the draws: a seed gives the same result on any scheduler.
    precision : {"libm", "fast"}, optional
        Override the config's sin/cos implementation; ``"fast"`` is
        vectorized, several times faster, and labels the same boundary up
        to a few chaotic points (docs/speed.md).
    axis : int or str, optional
        The axis along which partners are perturbed (2-D; default the first).
        In 2-D the pairs of a row share the other axis' coordinate, drawn
        uniformly per row.

    Returns
    -------
    UncertaintyResult
        A :class:`~fractalscape.dimension.DimensionResult` with
        ``method="uncertainty"``, ``sizes`` the ``eps`` (largest first),
        ``counts`` the uncertain pairs and ``pairs`` the pairs drawn at each,
        ``fit_range`` the smallest and largest ``eps`` fitted. The fit
        uses every ``eps`` with at least :data:`MIN_UNCERTAIN` uncertain
        pairs and ``f <= SATURATED``: weighted least squares of ``log f`` on
        ``log eps``, with counting errors (binomial; in 2-D between rows, at
        least binomial). ``interval`` is the 95 % interval of ``D``: normal
        from the counting errors, or, where the points scatter about the
        line by more than those allow, the error scaled by the Birge ratio
        ``sqrt(chi2 / dof)`` with a Student t quantile.

    Raises
    ------
    ConfigError
        More than 2 axes; bad ``samples``, ``target``, ``eps`` or ``axis``;
        a window too narrow for the default ``eps``; no boundary in the
        window (every sampled point has the same label); fewer than 3
        usable ``eps``.

    Examples
    --------
    The quadratic loss diverges for ``lr`` above 1 (a little above, at
    1000 steps): one boundary point, dimension 0.

    >>> import numpy as np
    >>> cfg = {"landscape": {"name": "quadratic"}, "descent": {"x0": 1.0, "steps": 1000},
    ...        "axis": [{"name": "lr", "start": 0.5, "stop": 1.5, "num": 3}]}
    >>> result = uncertainty(cfg, eps=np.logspace(-2, -4, 5), samples=2**16, target=200)
    >>> low, high = result.interval
    >>> bool(low < 0 < high), result.method
    (True, 'uncertainty')
    """
    config = _config_dict(source)
    grid = load_config(config).grid
    if len(grid.axes) > 2:
        raise ConfigError(
            f"the uncertainty exponent needs a 1-D or 2-D window, the config has {len(grid.axes)} axes "
            f"({', '.join(grid.names)}); fix all but two in [descent]"
        )
    samples = -(-_check_count("samples", samples, MIN_SAMPLES) // ROW) * ROW
    target = _check_count("target", target, MIN_UNCERTAIN)
    if precision is not None:
        get_trig(precision)
    axis = _perturbed_axis(axis, grid.names)
    sides = [_Side.of(a) for a in grid.axes]
    eps = _eps_values(eps, sides[axis])
    rng = np.random.default_rng(seed)
    clustered = len(sides) == 2
    tallies = [_Tally() for _ in eps]
    diverged = drawn = 0
    while not all(t.done for t in tallies):
        batches = _draw_round(rng, tallies, eps, sides, axis, samples, target)
        for (i, _, moving), (rows, diverged_bases) in zip(batches, _run_round(config, precision, axis, batches)):
            tally = tallies[i]
            tally.pairs += rows.size * ROW
            tally.uncertain += int(rows.sum())
            tally.rows += rows.size
            tally.uncertain_sq += int(rows @ rows)
            drawn += moving.size // 2
            diverged += diverged_bases
        for i, tally in enumerate(tallies):
            if not tally.done and tally.hopeless(samples):
                for smaller in tallies[i:]:  # f shrinks with eps
                    smaller.done = True
            tally.done = tally.done or tally.uncertain >= target or tally.pairs >= samples
    counts = tuple(t.uncertain for t in tallies)
    if diverged in (0, drawn):
        outcome = "diverged" if diverged else "converged"
        raise ConfigError(
            f"all {drawn:,} sampled points {outcome}: the map has no boundary in the window "
            f"{', '.join(s.describe() for s in sides)}; widen the window or move it onto the boundary"
        )
    fit, usable = _fit(eps, tallies, clustered)
    if fit is None:
        raise ConfigError(
            f"only {int(usable.sum())} of the {len(eps)} eps values have >= {MIN_UNCERTAIN} uncertain pairs "
            f"and a fraction f <= {SATURATED} (most uncertain pairs at one eps: {max(counts)}), the fit needs "
            f"{MIN_FIT_POINTS}: raise samples, or pass eps where the boundary is seen but f is small"
        )
    alpha, stderr, half = fit
    dim = len(sides) - alpha
    return UncertaintyResult(
        method="uncertainty",
        dimension=dim,
        stderr=stderr,
        sizes=tuple(eps.tolist()),
        counts=counts,
        fit_range=(float(eps[usable].min()), float(eps[usable].max())),
        interval=(dim - half, dim + half),
        pairs=tuple(t.pairs for t in tallies),
        axis=sides[axis].name,
        ndim=len(sides),
    )
