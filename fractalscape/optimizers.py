"""Optimizers: the update rule the lane driver applies to every model's parameters.

Each optimizer is written once, as plain loops over parameters and lanes,
with PyTorch's update rules in PyTorch's operation order (``foreach=False``,
the single-tensor path). With ``g`` the gradient, ``p`` a parameter, ``lr``
its learning rate and ``t`` the step count from 1:

``gd``
    ``p <- p - lr * g``
``momentum``
    heavy ball, ``torch.optim.SGD(momentum=beta, dampening=0)``:
    ``b <- b * momentum + g``, ``p <- p - lr * b`` (``b`` starts at 0, so ``b_1 = g``)
``nesterov``
    ``torch.optim.SGD(momentum, nesterov=True)``: ``b <- b * momentum + g``,
    ``p <- p - lr * (g + momentum * b)``
``adam``
    ``torch.optim.Adam``: ``m <- m + (1 - beta1) * (g - m)`` (``lerp``; for
    ``1 - beta1 >= 0.5``, ``g - (g - m) * (1 - (1 - beta1))``), ``v <- v * beta2 + ((1 - beta2) * g) * g``,
    ``step_size = lr / (1 - beta1**t)``, ``denom = sqrt(v) / sqrt(1 - beta2**t) + eps``,
    ``p <- p + (-step_size * m) / denom``
``adamw``
    ``torch.optim.AdamW``: ``p <- p * (1 - lr * weight_decay)``, then ``adam``'s
    step without the L2 term

``weight_decay`` (every optimizer; default 0) adds ``weight_decay * p`` to
``g`` first (L2, ``torch``'s ``grad.add(p, alpha=weight_decay)``), except
for ``adamw``, whose decay is decoupled. It is compiled in only where it can
be nonzero, so a map without it is bit for bit the map of the rule without
it. Every hyperparameter is a per-point slot: a number in ``[descent]`` or
a grid axis.

State repeats (the driver's early exit, :mod:`fractalscape.gd`) compare the
parameters *and* the optimizer's state rows; Adam's rule depends on ``t``
until ``beta**t`` rounds to 0, so its points exit early only from then on.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
from numba import njit

from fractalscape.errors import ConfigError


@dataclass(frozen=True)
class Layout:
    """Where the driver keeps what an optimizer reads and writes: rows of the lane buffer.

    Row ``r`` of lane ``k`` is element ``r * lanes + k`` of the flat float64
    buffer. ``lr_row[p]`` is the row holding parameter ``p``'s learning rate.
    """

    lanes: int
    params: int  # first parameter row
    grads: int  # first gradient row
    state: int  # first optimizer state row: state ``s`` of parameter ``p`` at ``state + s * n_params + p``
    aux: int  # per-lane scalars of the optimizer (Adam's bias corrections)
    hyper: tuple[int, ...]  # the row of each hyperparameter, in :attr:`Optimizer.hyper` order
    lr_row: tuple[int, ...]  # per parameter
    n_params: int
    decay: bool  # weight decay compiled in


@dataclass(frozen=True, eq=False)
class Optimizer:
    """An update rule: its hyperparameters (per-point slots), state and compiled update.

    ``build(layout)`` returns three numba functions of the lane buffer
    ``real`` (flat float64) and the step counts ``step`` (updates applied
    so far): ``update(real, step)`` applies one update to every lane,
    ``update_lane(real, step, k)`` to lane ``k`` alone, and
    ``stationary(real, step, k) -> int`` is 1 where the rule no longer
    depends on ``t``, so that a repeated state means a cycle.
    """

    name: str
    rule: str
    hyper: tuple[str, ...]
    defaults: Mapping[str, float]
    n_state: int
    n_aux: int
    build: Callable[[Layout], tuple[Callable, Callable]]

    def check(self, values: Mapping[str, float]) -> None:
        """Raise :class:`ConfigError` for a hyperparameter outside its range."""
        for name, value in values.items():
            check_hyper(name, value)


#: Valid ranges of the hyperparameters, checked for values and for axis ranges.
RANGES = {
    "momentum": ("in [0, 1)", lambda v: 0.0 <= v < 1.0),
    "beta1": ("in [0, 1)", lambda v: 0.0 <= v < 1.0),
    "beta2": ("in [0, 1)", lambda v: 0.0 <= v < 1.0),
    "eps": ("> 0", lambda v: v > 0.0),
    "weight_decay": (">= 0", lambda v: v >= 0.0),
}


def check_hyper(name: str, value: float) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a valid ``name``.

    >>> check_hyper("beta2", 1.0)
    Traceback (most recent call last):
    ...
    fractalscape.errors.ConfigError: beta2 must be in [0, 1), got 1.0
    """
    text, ok = RANGES[name]
    if not (math.isfinite(value) and ok(value)):
        raise ConfigError(f"{name} must be {text}, got {value!r}")


@njit(nogil=True, inline="always")
def _always(real, step, k):
    return np.int64(1)


@njit(nogil=True, inline="always")
def _nothing(real, step, k):
    return None


def _drivers(layout: Layout, prepare, element, stationary):
    """``update(real, step)`` over every lane (parameters outer, lanes inner: vectorizes across
    lanes for many parameters) and ``update_lane(real, step, k)`` of one lane (for drivers that
    fuse a model's per-lane gradient with its update), from one rule's ``element(real, p, k, lr_row)``."""
    L, NP = layout.lanes, layout.n_params
    LR = np.array(layout.lr_row, dtype=np.int64)

    @njit(nogil=True, inline="always")
    def update(real, step):
        for k in range(L):
            prepare(real, step, k)
        for p in range(NP):
            lr = LR[p]
            for k in range(L):
                element(real, p, k, lr)

    @njit(nogil=True, inline="always")
    def update_lane(real, step, k):
        prepare(real, step, k)
        for p in range(NP):
            element(real, p, k, LR[p])

    return update, update_lane, stationary


def _decayed(layout: Layout):
    """``g + weight_decay * p`` of parameter ``p``, lane ``k`` (``g`` alone without decay)."""
    L, P, G, decay = layout.lanes, layout.params, layout.grads, layout.decay
    WD = layout.hyper[-1]

    @njit(nogil=True, inline="always")
    def gradient(real, p, k):
        g = real[(G + p) * L + k]
        return g + real[WD * L + k] * real[(P + p) * L + k] if decay else g

    return gradient


def _gd(layout: Layout):
    L, P = layout.lanes, layout.params
    gradient = _decayed(layout)

    @njit(nogil=True, inline="always")
    def element(real, p, k, lr):
        real[(P + p) * L + k] = real[(P + p) * L + k] - real[lr * L + k] * gradient(real, p, k)

    return _drivers(layout, _nothing, element, _always)


def _heavy_ball(nesterov: bool):
    def build(layout: Layout):
        L, P, S = layout.lanes, layout.params, layout.state
        MU = layout.hyper[0]
        gradient = _decayed(layout)

        @njit(nogil=True, inline="always")
        def element(real, p, k, lr):
            g = gradient(real, p, k)
            mu = real[MU * L + k]
            b = real[(S + p) * L + k] * mu + g
            real[(S + p) * L + k] = b
            d = g + mu * b if nesterov else b
            real[(P + p) * L + k] = real[(P + p) * L + k] - real[lr * L + k] * d

        return _drivers(layout, _nothing, element, _always)

    return build


def _adam(decoupled: bool):
    def build(layout: Layout):
        L, P, S, A, NP = layout.lanes, layout.params, layout.state, layout.aux, layout.n_params
        B1, B2, EPS, WD = layout.hyper
        coupled = _decayed(Layout(**{**layout.__dict__, "decay": layout.decay and not decoupled}))
        decay = layout.decay and decoupled

        @njit(nogil=True, inline="always")
        def prepare(real, step, k):
            # 1 - beta1**t and sqrt(1 - beta2**t), as torch computes them in Python floats.
            t = np.float64(step[k] + 1)
            real[A * L + k] = 1.0 - real[B1 * L + k] ** t
            real[(A + 1) * L + k] = math.sqrt(1.0 - real[B2 * L + k] ** t)

        @njit(nogil=True, inline="always")
        def element(real, p, k, lr_row):
            lr = real[lr_row * L + k]
            if decay:
                real[(P + p) * L + k] = real[(P + p) * L + k] * (1.0 - lr * real[WD * L + k])
            g = coupled(real, p, k)
            b1, b2 = real[B1 * L + k], real[B2 * L + k]
            w = 1.0 - b1
            m = real[(S + p) * L + k]
            m = m + w * (g - m) if w < 0.5 else g - (g - m) * (1.0 - w)
            v = real[(S + NP + p) * L + k] * b2 + ((1.0 - b2) * g) * g
            real[(S + p) * L + k] = m
            real[(S + NP + p) * L + k] = v
            step_size = lr / real[A * L + k]
            denom = math.sqrt(v) / real[(A + 1) * L + k] + real[EPS * L + k]
            real[(P + p) * L + k] = real[(P + p) * L + k] + (-step_size * m) / denom

        @njit(nogil=True, inline="always")
        def stationary(real, step, k):
            return np.int64(real[A * L + k] == 1.0) & np.int64(real[(A + 1) * L + k] == 1.0)

        return _drivers(layout, prepare, element, stationary)

    return build


_ADAM_DEFAULTS = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}

OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o
    for o in (
        Optimizer("gd", "p <- p - lr * g", ("weight_decay",), {"weight_decay": 0.0}, 0, 0, _gd),
        Optimizer("momentum", "b <- b * momentum + g;  p <- p - lr * b", ("momentum", "weight_decay"),
                  {"momentum": 0.9, "weight_decay": 0.0}, 1, 0, _heavy_ball(False)),
        Optimizer("nesterov", "b <- b * momentum + g;  p <- p - lr * (g + momentum * b)",
                  ("momentum", "weight_decay"), {"momentum": 0.9, "weight_decay": 0.0}, 1, 0, _heavy_ball(True)),
        Optimizer("adam", "torch.optim.Adam: bias-corrected m, v; p <- p - lr/(1-beta1^t) m / (sqrt(v)/sqrt(1-beta2^t) + eps)",
                  ("beta1", "beta2", "eps", "weight_decay"), {**_ADAM_DEFAULTS, "weight_decay": 0.0}, 2, 2,
                  _adam(False)),
        Optimizer("adamw", "torch.optim.AdamW: p <- p (1 - lr weight_decay), then adam without L2",
                  ("beta1", "beta2", "eps", "weight_decay"), {**_ADAM_DEFAULTS, "weight_decay": 0.01}, 2, 2,
                  _adam(True)),
    )
}

#: Every hyperparameter slot of any optimizer (an axis naming one the chosen optimizer lacks is refused).
HYPERPARAMETERS = tuple(dict.fromkeys(h for o in OPTIMIZERS.values() for h in o.hyper))


def owners(hyperparameter: str) -> list[str]:
    """The optimizers that have ``hyperparameter``.

    >>> owners("beta2")
    ['adam', 'adamw']
    """
    return [o for o, opt in OPTIMIZERS.items() if hyperparameter in opt.hyper]


def get_optimizer(name) -> Optimizer:
    """The optimizer named ``name``.

    >>> get_optimizer("adam").hyper
    ('beta1', 'beta2', 'eps', 'weight_decay')
    """
    if isinstance(name, Optimizer):
        return name
    if name not in OPTIMIZERS:
        close = difflib.get_close_matches(str(name), OPTIMIZERS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown optimizer {name!r}{hint}; valid optimizers: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]
