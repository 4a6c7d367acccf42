"""Loss landscapes: a family of numba loss/gradient pairs, and a registry of families.

A landscape family is a *builder*: given a :class:`~fractalscape.trig.Trig`,
it returns :class:`LaneKernels`, numba-compiled functions that evaluate one
grid point, *lane* ``j``, of a batch of points held side by side::

    loss(x, theta, j) -> float             # x: (dim, lanes), theta: (n_params, lanes)
    grad(x, theta, j, out) -> None         # writes d loss / d x[:, j] into out[:, j]
    prepare(theta, j) -> None              # once per point: parameters -> per-point constants
    bound(x, theta, j) -> float            # cheap: the loss is <= threshold where ...
    level(x, theta, j, threshold) -> float # ... bound(x, theta, j) <= level (x only for its shape)

Coordinate ``i`` of point ``j`` is ``x[i, j]``; its parameter ``p`` is
``theta[p, j]``. All but ``prepare`` see ``theta`` after ``prepare`` (the
cosine families turn a wavelength into ``2*pi / wavelength`` there, so no GD
step divides). The GD kernel (:mod:`fractalscape.gd`) inlines them into one
loop over many points in lock-step, which the compiler vectorizes. A step
tests ``bound(x) <= level`` (``level`` is computed once per point); only
where that fails, a point that diverges or one whose loss is near the
threshold, and at a point's last step does the kernel evaluate ``loss``. So
a landscape whose gradient does not need its loss (Liu's additive one: the
gradient needs ``sin``, the loss ``cos``) skips the loss on almost every
step, and the labels are still exactly those of testing the loss at every
step. ``prepare``, ``bound`` and ``level`` are optional (:func:`lane_kernels`:
the default bound is the loss, the default level the threshold). A
:class:`Landscape` is a family with concrete parameter values and a
dimension.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Mapping, NamedTuple

import numpy as np
from numba import njit

from fractalscape.errors import ConfigError, check_finite
from fractalscape.trig import Trig


class LaneKernels(NamedTuple):
    """A landscape's numba functions over lanes (see the module docstring); build with :func:`lane_kernels`."""

    loss: Callable
    grad: Callable
    prepare: Callable
    bound: Callable
    level: Callable


@njit(nogil=True, inline="always")
def _no_constants(theta, j):
    return None


@njit(nogil=True, inline="always")
def _the_threshold(x, theta, j, threshold):
    return threshold


def lane_kernels(loss, grad, prepare=None, bound=None, level=None) -> LaneKernels:
    """:class:`LaneKernels` from ``loss`` and ``grad``; by default ``prepare`` does nothing
    (``theta`` as given), ``bound`` is the loss and ``level`` the threshold.

    Examples
    --------
    >>> import numba
    >>> @numba.njit
    ... def loss(x, theta, j):
    ...     return x[0, j] ** 2
    >>> @numba.njit
    ... def grad(x, theta, j, out):
    ...     out[0, j] = 2.0 * x[0, j]
    >>> functions = lane_kernels(loss, grad)
    >>> functions.bound(np.array([[3.0]]), np.zeros((0, 1)), 0), functions.level(np.zeros((1, 1)), np.zeros((0, 1)), 0, 1e8)
    (9.0, 100000000.0)
    """
    if (bound is None) != (level is None):
        raise TypeError("lane_kernels: give both bound and level, or neither")
    return LaneKernels(loss, grad, prepare or _no_constants, bound or loss, level or _the_threshold)


Builder = Callable[[Trig], LaneKernels]


@dataclass(frozen=True, eq=False)
class Family:
    """A named family of landscapes sharing one loss formula.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"cosine-additive"``.
    formula : str
        The loss in plain text, shown in reprs and docs.
    build : callable
        ``build(trig) -> LaneKernels``: numba functions, see the module docstring.
    defaults : mapping
        Scalar parameters (the entries of ``theta``, in order) and their default values.
    parse : callable, optional
        Turns user keyword parameters into the ordered ``theta`` mapping, for
        families whose parameters are not a fixed set of scalars.
    max_dim : int or None
        Largest supported dimension (None: any).
    """

    name: str
    formula: str
    build: Builder
    defaults: Mapping[str, float] = field(default_factory=dict)
    parse: Callable[[dict], dict[str, float]] | None = None
    max_dim: int | None = None

    def theta(self, params: dict) -> dict[str, float]:
        if self.parse is not None:
            return self.parse(dict(params))
        return scalar_theta(self.name, self.defaults, params)

    def __reduce__(self):
        # One Family object per name and process, so each process compiles its
        # kernels once (they are cached per Family object).
        fields = (self.formula, self.build, dict(self.defaults), self.parse, self.max_dim)
        return (_unpickle_family, (self.name, *fields))


def _unpickle_family(name: str, *fields) -> Family:
    """The family registered under ``name`` in this process, else this one, registered."""
    return REGISTRY.get(name) or register(Family(name, *fields))


@lru_cache(maxsize=None)
def kernels(family: Family, trig: Trig) -> LaneKernels:
    """The family's :class:`LaneKernels` for one trig implementation, built once per process."""
    return family.build(trig)


def scalar_theta(name: str, defaults: Mapping[str, float], params: Mapping) -> dict[str, float]:
    """``defaults`` updated from ``params``, each checked to be a finite number."""
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        valid = ", ".join(defaults) or "none"
        raise ConfigError(f"landscape {name!r} has no parameter {unknown[0]!r}; its parameters are: {valid}")
    return {k: check_finite(f"landscape {name!r}: {k}", params.get(k, v)) for k, v in defaults.items()}


@dataclass(frozen=True)
class Landscape:
    """A loss family with concrete parameters and dimension.

    Build one with :func:`landscape`.

    Examples
    --------
    >>> landscape("cosine-additive", delta=0.2, wavelength=0.1)
    Landscape('cosine-additive', dim=1, delta=0.2, wavelength=0.1)
    """

    family: Family
    theta: tuple[tuple[str, float], ...]
    dim: int = 1

    @property
    def name(self) -> str:
        return self.family.name

    @property
    def params(self) -> dict[str, float]:
        return dict(self.theta)

    def theta_vector(self) -> np.ndarray:
        return np.array([v for _, v in self.theta], dtype=np.float64)

    def functions(self, trig: Trig) -> LaneKernels:
        """The compiled :class:`LaneKernels` for ``trig``."""
        return kernels(self.family, trig)

    def to_dict(self) -> dict:
        return {"name": self.name, "dim": self.dim, **self.params}

    def __repr__(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self.theta)
        return f"Landscape({self.name!r}, dim={self.dim}{params})"


REGISTRY: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add a family to the registry so configs and :func:`landscape` can name it."""
    if family.name in REGISTRY:
        raise ConfigError(f"a landscape named {family.name!r} is already registered")
    REGISTRY[family.name] = family
    return family


def get_family(name: str) -> Family:
    try:
        return REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), REGISTRY, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown landscape {name!r}{hint}; known landscapes: {', '.join(sorted(REGISTRY))}"
        ) from None


def landscape(name: str, *, dim: int = 1, **params) -> Landscape:
    """A registered landscape with its parameters.

    Parameters
    ----------
    name : str
        A registered family, see ``fractalscape.landscapes.REGISTRY``.
    dim : int
        Dimension of the GD state ``x``.
    **params
        The family's scalar parameters (defaults fill the rest).

    Examples
    --------
    >>> landscape("cosine-multiplicative", delta=0.2, wavelength=0.1, dim=2)
    Landscape('cosine-multiplicative', dim=2, delta=0.2, wavelength=0.1)
    """
    family = get_family(name)
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ConfigError(f"landscape {name!r}: dim must be an integer >= 1, got {dim!r}")
    if family.max_dim is not None and dim > family.max_dim:
        raise ConfigError(f"landscape {name!r} supports dim <= {family.max_dim}, got {dim}")
    return Landscape(family, tuple(family.theta(params).items()), int(dim))


def define_landscape(
    name: str,
    loss,
    grad,
    *,
    params: Mapping[str, float] = (),
    formula: str = "",
    prepare=None,
    bound=None,
    level=None,
) -> Family:
    """Register a user landscape from numba-compiled ``loss`` and ``grad``.

    Parameters
    ----------
    name : str
        Name to use in configs and :func:`landscape`.
    loss : numba function ``loss(x, theta, j) -> float``
        The loss of point ``j`` whose coordinates are ``x[:, j]`` (``x`` is a
        2-D float64 array ``(dim, lanes)``) and whose parameters are
        ``theta[:, j]``, in the order of ``params``.
    grad : numba function ``grad(x, theta, j, out) -> None``
        Writes the gradient of ``loss`` at point ``j`` into ``out[:, j]``.
    params : mapping of str to float
        Parameter names (each can become a grid axis) and defaults.
    formula : str
        The loss in words, for reprs and provenance.
    prepare, bound, level : numba functions, optional
        Speed-ups, see the module docstring: ``prepare(theta, j)`` turns a
        point's parameters into constants once; ``bound(x, theta, j) <=
        level(x, theta, j, threshold)`` must imply ``loss <= threshold``, so
        that the kernel can skip ``loss`` on most steps (give both or
        neither).

    Examples
    --------
    >>> import numba
    >>> @numba.njit
    ... def quartic_loss(x, theta, j):
    ...     return theta[0, j] * x[0, j] ** 4
    >>> @numba.njit
    ... def quartic_grad(x, theta, j, out):
    ...     out[0, j] = 4.0 * theta[0, j] * x[0, j] ** 3
    >>> fam = define_landscape("doc-quartic", quartic_loss, quartic_grad, params={"a": 1.0})
    >>> landscape("doc-quartic", a=2.0)
    Landscape('doc-quartic', dim=1, a=2.0)
    """
    functions = lane_kernels(loss, grad, prepare, bound, level)
    return register(Family(name, formula or f"user landscape {name}", lambda trig: functions, dict(params)))
