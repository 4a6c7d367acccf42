"""GD orbits of Liu's landscapes in arbitrary precision, with python-flint's ``arb`` balls.

The formulas are evaluated mathematically, not in the kernels' operation
order: ``k = 2 pi / wavelength`` with the exact ``pi``, the grid point's
parameters taken as the exact reals their doubles denote. Two uses:

:func:`high_precision_escape`
    A floating-point orbit in ``bits``-bit arithmetic (106 bits: double-double
    precision): every operation's ball is replaced by its midpoint, so the
    orbit is that of a ``bits``-bit float computation, and each loss is
    compared through its midpoint. A rounding perturbation like the others,
    only a much smaller one; not a proof.

:func:`certified_escape`
    A rigorous enclosure of the exact real orbit. Each step maps the box
    ``X`` (one ball per coordinate) of the state by the mean-value form
    ``F(m) + J(X) (X - m)``, ``m`` the box's midpoint and ``J`` the Jacobian
    ``I - diag(lr) H`` of the GD map over the box (``H`` the Hessian), which
    encloses the image of the box and grows its radius by the orbit's own
    expansion rate instead of ball arithmetic's ``1 + lr |H|`` per step. The
    loss ball of a step is the intersection of the loss evaluated on the box
    and its own mean-value form.

The stopping rule is the kernel's (:mod:`fractalscape.gd`): the point
diverges at the first step ``t`` in ``0 .. steps`` (``t = 0``: the initial
point) whose loss is not ``<= threshold``, and converges if none is. In
exact arithmetic there is no NaN; a loss above the threshold (the kernel:
or NaN, or inf) diverges. A rigorous run decides a step only when the whole
loss ball is above the threshold (diverged at ``t``) or at most the
threshold (go on); a ball straddling it, or one no longer finite, leaves the
point undecided at that precision. It converges, rigorously, once every step
up to ``steps`` was decided below the threshold, or earlier once an inflated
box ``B`` around the state maps into itself with the loss on ``B`` below the
threshold (every later state then stays in ``B``).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import NamedTuple

from flint import arb, ctx

#: Landscape families whose formulas this module knows.
FAMILIES = ("quadratic", "cosine-additive", "cosine-multiplicative")
#: Precision of the high-precision rerun: that of double-double arithmetic.
HIGH_PRECISION_BITS = 106
#: Rising precisions of a certification.
CERTIFY_BITS = (128, 512, 2048, 8192)
#: Steps between tests of whether an inflated box maps into itself.
_SELF_MAP_EVERY = 16


class OrbitPoint(NamedTuple):
    """One grid point of a landscape map: family name, per-coordinate ``lr`` and ``x0``, ``delta``, ``wavelength``."""

    family: str
    lr: tuple[float, ...]
    x0: tuple[float, ...]
    delta: float = 0.0
    wavelength: float = 1.0


class Certificate(NamedTuple):
    """Outcome of :func:`certified_escape`.

    ``escape_step`` is the certified escape step (-1: converges) or None
    if undecided; ``bits`` the precision that decided (or the last tried);
    ``reason`` why it stopped: ``"decided"``, ``"undecided"`` (every
    precision tried), ``"time"`` (the deadline passed).
    """

    escape_step: int | None
    bits: int | None
    reason: str


@contextmanager
def _precision(bits: int):
    saved = ctx.prec
    ctx.prec = bits
    try:
        yield
    finally:
        ctx.prec = saved


def _derivatives(family: str, x: list, delta, k, hessian: bool):
    """Loss, gradient and (if ``hessian``) Hessian of ``family`` at the balls ``x``."""
    dim = len(x)
    squares = arb(0)
    for xi in x:
        squares += xi * xi
    if family == "quadratic":
        grad = [2 * xi for xi in x]
        hess = [[arb(2) if i == j else arb(0) for j in range(dim)] for i in range(dim)] if hessian else None
        return squares, grad, hess
    sin_cos = [(k * xi).sin_cos() for xi in x]
    ripples = arb(0)
    for _, c in sin_cos:
        ripples += c
    if family == "cosine-additive":
        loss = squares + delta * ripples
        grad = [2 * xi - delta * k * s for xi, (s, _) in zip(x, sin_cos)]
        hess = None
        if hessian:
            hess = [[2 - delta * k * k * sin_cos[i][1] if i == j else arb(0) for j in range(dim)] for i in range(dim)]
        return loss, grad, hess
    ripple = 1 + delta * ripples
    loss = squares * ripple
    grad = [2 * xi * ripple - squares * delta * k * s for xi, (s, _) in zip(x, sin_cos)]
    hess = None
    if hessian:
        hess = [
            [
                (2 * ripple - squares * delta * k * k * sin_cos[i][1] if i == j else arb(0))
                - 2 * delta * k * (x[i] * sin_cos[j][0] + x[j] * sin_cos[i][0])
                for j in range(dim)
            ]
            for i in range(dim)
        ]
    return loss, grad, hess


def _constants(point: OrbitPoint):
    if point.family not in FAMILIES:
        raise ValueError(f"no arbitrary-precision formulas for landscape {point.family!r}; known: {FAMILIES}")
    k = 2 * arb.pi() / arb(point.wavelength)
    return [arb(v) for v in point.lr], arb(point.delta), k


def high_precision_escape(point: OrbitPoint, steps: int, threshold: float, bits: int = HIGH_PRECISION_BITS,
                          deadline: float | None = None) -> int | None:
    """Escape step (-1: converged) of ``point`` in ``bits``-bit floating-point arithmetic.

    None if ``time.perf_counter()`` passed ``deadline`` before the orbit ended.

    Examples
    --------
    >>> high_precision_escape(OrbitPoint("quadratic", (0.5,), (1.0,)), 100, 1e8)
    -1
    >>> high_precision_escape(OrbitPoint("quadratic", (1.5,), (1.0,)), 100, 1e8)
    14
    """
    with _precision(bits):
        lr, delta, k = _constants(point)
        limit = arb(threshold)
        x = [arb(v) for v in point.x0]
        deadline = float("inf") if deadline is None else deadline
        for t in range(steps + 1):
            if t % 1024 == 1023 and time.perf_counter() > deadline:
                return None
            loss, grad, _ = _derivatives(point.family, x, delta, k, hessian=False)
            if not loss.mid() <= limit:
                return t
            if t == steps:
                return -1
            x = [(xi - r * g).mid() for xi, r, g in zip(x, lr, grad)]
    raise AssertionError("unreachable")


def _image(point: OrbitPoint, box: list, lr, delta, k):
    """Mean-value enclosure of the GD map's image of ``box``, and the loss ball on ``box``."""
    mid = [b.mid() for b in box]
    loss_mid, grad_mid, _ = _derivatives(point.family, mid, delta, k, hessian=False)
    loss_box, grad_box, hess = _derivatives(point.family, box, delta, k, hessian=True)
    offset = [b - m for b, m in zip(box, mid)]
    mean_loss = loss_mid
    for g, o in zip(grad_box, offset):
        mean_loss += g * o
    loss = loss_box.intersection(mean_loss) if loss_box.overlaps(mean_loss) else mean_loss
    image = []
    for i, (m, r, g) in enumerate(zip(mid, lr, grad_mid)):
        value = m - r * g
        for j, o in enumerate(offset):
            # The Jacobian's entry first, then times the offset: (1 - r h) o, not o - r h o,
            # whose ball would grow by 1 + r |h| however much the map contracts.
            value += ((1 if i == j else 0) - r * hess[i][j]) * o
        image.append(value)
    return image, loss


def _maps_into_itself(point: OrbitPoint, box: list, next_box: list, lr, delta, k, limit, bits: int) -> bool:
    """Whether a box ``B`` holding ``box`` maps into itself with the loss on ``B`` at most ``limit``.

    ``B`` is ``box`` widened by 8 times the step to ``next_box``: wide
    enough to map into itself where the GD map contracts by 7/8 or better.
    """
    wide = [arb(b.mid(), 2 * b.rad() + 8 * abs(n.mid() - b.mid()) + arb(2) ** (-bits)) for b, n in zip(box, next_box)]
    image, loss = _image(point, wide, lr, delta, k)
    inside = all(w.contains(b) and w.contains(i) for w, b, i in zip(wide, box, image))
    return inside and loss <= limit


def _enclosed_escape(point: OrbitPoint, steps: int, threshold: float, bits: int, deadline: float):
    """One rigorous run at ``bits``: escape step, None (undecided) or "time"."""
    with _precision(bits):
        lr, delta, k = _constants(point)
        limit = arb(threshold)
        box = [arb(v) for v in point.x0]
        for t in range(steps + 1):
            if t % 64 == 63 and time.perf_counter() > deadline:
                return "time"
            image, loss = _image(point, box, lr, delta, k)
            if loss > limit:
                return t
            if not (loss <= limit and all(b.is_finite() for b in box)):
                return None
            if t == steps:
                return -1
            if t % _SELF_MAP_EVERY == 0 and _maps_into_itself(point, box, image, lr, delta, k, limit, bits):
                return -1
            box = image
    raise AssertionError("unreachable")


def certified_escape(point: OrbitPoint, steps: int, threshold: float, *, bits=CERTIFY_BITS,
                     deadline: float | None = None) -> Certificate:
    """The exact real orbit's escape step, proved with balls of rising precision, or undecided.

    Parameters
    ----------
    point : OrbitPoint
    steps, threshold
        As in the map (the kernel's stopping rule, module docstring).
    bits : sequence of int
        Precisions to try in turn, until one decides.
    deadline : float, optional
        ``time.perf_counter()`` value after which no more work starts.

    Examples
    --------
    >>> certified_escape(OrbitPoint("cosine-multiplicative", (0.1,), (1.0,), 0.2, 0.1), 1000, 1e8)
    Certificate(escape_step=-1, bits=128, reason='decided')
    >>> certified_escape(OrbitPoint("quadratic", (1.5,), (1.0,)), 100, 1e8).escape_step
    14
    """
    deadline = float("inf") if deadline is None else deadline
    tried = None
    for b in bits:
        if time.perf_counter() > deadline:
            return Certificate(None, tried, "time")
        tried = b
        outcome = _enclosed_escape(point, steps, threshold, b, deadline)
        if outcome == "time":
            return Certificate(None, b, "time")
        if outcome is not None:
            return Certificate(outcome, b, "decided")
    return Certificate(None, tried, "undecided")
