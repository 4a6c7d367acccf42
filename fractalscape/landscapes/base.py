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
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Mapping, NamedTuple

import numpy as np
from numba import njit

from fractalscape.errors import ConfigError, check_finite
from fractalscape.model import Layout, Model, Program
from fractalscape.trig import Trig, get_trig

#: Landscape points run side by side in one kernel: eight AVX-512 registers of
#: doubles. LLVM then keeps the loop over lanes a loop (32 lanes it unrolls
#: whole, and one round's four dependency chains through sin, each some 150
#: cycles long, leave the core idle): out-of-order execution overlaps its
#: iterations. Measured on Liu's additive landscape: 64 lanes 1.18x faster
#: than 32, and 128 slower again.
LANES = 64


class LaneKernels(NamedTuple):
    """A landscape's numba functions over lanes (see the module docstring); build with :func:`lane_kernels`."""

    loss: Callable
    grad: Callable
    prepare: Callable
    bound: Callable
    level: Callable


#: Most coordinates of a landscape (compile-time constants of its kernel).
MAX_DIM = 4096


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
    builtin : bool
        Defined by fractalscape itself: its name identifies its code in any
        process, so its compiled kernels are kept on disk
        (:mod:`fractalscape.kernelcache`). User families are compiled in each process.
    """

    name: str
    formula: str
    build: Builder
    defaults: Mapping[str, float] = field(default_factory=dict)
    parse: Callable[[dict], dict[str, float]] | None = None
    max_dim: int | None = None
    builtin: bool = False

    def theta(self, params: dict) -> dict[str, float]:
        if self.parse is not None:
            return self.parse(dict(params))
        return scalar_theta(self.name, self.defaults, params)

    def __reduce__(self):
        # One Family object per name and process, so each process compiles its
        # kernels once (they are cached per Family object).
        fields = (self.formula, self.build, dict(self.defaults), self.parse, self.max_dim, self.builtin)
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
class Landscape(Model):
    """A loss family with concrete parameters and dimension: a :class:`~fractalscape.model.Model`.

    Its slots are the learning rates ``lr_i`` and initial point ``x0_i`` of
    each coordinate (``lr`` and ``x0`` for ``dim=1``), then the family's
    parameters. Build one with :func:`landscape`.

    Examples
    --------
    >>> land = landscape("cosine-additive", delta=0.2, wavelength=0.1)
    >>> land
    Landscape('cosine-additive', dim=1, delta=0.2, wavelength=0.1)
    >>> land.slots()
    ('lr', 'x0', 'delta', 'wavelength')
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

    def lr_slots(self) -> tuple[str, ...]:
        return ("lr",) if self.dim == 1 else tuple(f"lr_{i}" for i in range(self.dim))

    def x0_slots(self) -> tuple[str, ...]:
        return ("x0",) if self.dim == 1 else tuple(f"x0_{i}" for i in range(self.dim))

    def slots(self) -> tuple[str, ...]:
        return (*self.lr_slots(), *self.x0_slots(), *self.params)

    def groups(self) -> dict[str, tuple[str, ...]]:
        return {"lr": self.lr_slots(), "x0": self.x0_slots()} if self.dim > 1 else {}

    def defaults(self) -> dict[str, float]:
        return dict(self.theta)

    def descent_slots(self) -> tuple[str, ...]:
        return ("lr", "x0")

    def settings(self, values) -> dict:
        """``x0`` (default 1.0) and ``lr`` as lists of ``dim`` numbers (a number is broadcast)."""
        unknown = sorted(set(values) - {"x0", "lr"})
        if unknown:
            raise ConfigError(f"unknown descent setting {unknown[0]!r} for a landscape; valid: x0, lr, steps, "
                              "threshold, precision, label, optimizer and its hyperparameters")
        x0, lr = values.get("x0"), values.get("lr")
        return {"x0": _vector("x0", 1.0 if x0 is None else x0, self.dim),
                "lr": None if lr is None else _vector("lr", lr, self.dim)}

    def slot_values(self, settings) -> dict[str, float]:
        """``lr`` and ``x0`` (numbers or lists) over their coordinates' slots; other slots as given."""
        out = {}
        for key, value in settings.items():
            if value is None:
                continue
            if key in ("lr", "x0"):
                slots = self.lr_slots() if key == "lr" else self.x0_slots()
                out.update(zip(slots, value if isinstance(value, (list, tuple)) else [value] * self.dim))
            else:
                out[key] = float(value)
        return out

    def owner(self) -> str:
        return f"landscape {self.name!r} (dim={self.dim})"

    def program(self, structure, precision: str) -> Program:
        return _program(self.family, get_trig(precision), self.dim, len(self.theta))

    def config_table(self) -> tuple[str, dict]:
        return "landscape", self.to_dict()

    def description(self) -> str:
        return self.family.formula

    def attrs(self) -> dict:
        return {"model": self.name, "formula": self.family.formula, "landscape": self.name,
                "landscape_params": json.dumps(self.params), "dim": self.dim}

    def to_dict(self) -> dict:
        return {"name": self.name, "dim": self.dim, **self.params}

    def __repr__(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self.theta)
        return f"Landscape({self.name!r}, dim={self.dim}{params})"


def _vector(what: str, value, dim: int) -> list[float]:
    values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
    if len(values) == 1:
        values = values * dim
    if len(values) != dim:
        raise ConfigError(f"{what} must be a number or a list of {dim} numbers (dim={dim}), got {value!r}")
    return [check_finite(what, v) for v in values]


@lru_cache(maxsize=None)
def _program(family: Family, trig: Trig, dim: int, n_theta: int) -> Program:
    """The lane program of a landscape: ``x`` are the parameters, one learning rate per coordinate.

    ``dim`` and ``n_theta`` are compile-time constants (closure values), so
    the lane arrays have constant shapes: the coordinate loops unroll, the
    loop over lanes is innermost and LLVM vectorizes it.
    """
    from fractalscape.gd import rows  # the lane-buffer views live with the driver

    functions = kernels(family, trig)

    def build(layout: Layout):
        loss, grad, prepare, bound, level = functions
        L, X, G, PREV, BELOW = layout.lanes, layout.params, layout.grads, layout.scratch, layout.scratch + dim
        X0, THETA = layout.theta + dim, layout.theta + 2 * dim

        @njit(nogil=True, inline="always")
        def init(buf, data, k, threshold):
            real = rows(buf, X0, dim, L, np.float64)
            x = rows(buf, X, dim, L, np.float64)
            theta = rows(buf, THETA, n_theta, L, np.float64)
            for i in range(dim):
                x[i, k] = real[i, k]
            prepare(theta, k)
            rows(buf, BELOW, 1, L, np.float64)[0, k] = level(x, theta, k, threshold)

        # Lane j only: the driver fuses it with the update in its loop over lanes.
        @njit(nogil=True, inline="always")
        def gradient(buf, data, j, threshold):
            x = rows(buf, X, dim, L, np.float64)
            g = rows(buf, G, dim, L, np.float64)
            prev = rows(buf, PREV, dim, L, np.float64)
            theta = rows(buf, THETA, n_theta, L, np.float64)
            below = rows(buf, BELOW, 1, L, np.float64)[0]
            need = np.int64(not bound(x, theta, j) <= below[j])
            grad(x, theta, j, g)
            for i in range(dim):
                prev[i, j] = x[i, j]
            return need

        @njit(nogil=True, inline="always")
        def lane_loss(buf, data, k):
            return loss(rows(buf, PREV, dim, L, np.float64), rows(buf, THETA, n_theta, L, np.float64), k)

        return init, gradient, lane_loss

    key = ("landscape", family.name, trig.name, dim, n_theta)
    return Program(key, LANES, dim, tuple(range(dim)), dim + 1, False, True, build,
                   cache_key=key if family.builtin else None)


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
    if dim > MAX_DIM:
        raise ConfigError(f"landscape {name!r}: dim {dim} is more than {MAX_DIM}, the most a compiled kernel holds "
                          f"(its coordinate loops are unrolled); use dim <= {MAX_DIM}")
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
