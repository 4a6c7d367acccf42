"""Liu 2024's landscapes: a quadratic made non-convex by cosine ripples.

All act on a state ``x`` of dimension ``d`` (``d = 1`` is Liu's 1-D case); with
``k = 2*pi / wavelength`` and sums over coordinates ``i``:

==========================  ===========================================================
``quadratic``               ``sum_i x_i**2``
``cosine-additive``         ``sum_i x_i**2 + delta * sum_i cos(k x_i)``
``cosine-multiplicative``   ``(sum_i x_i**2) * (1 + delta * sum_i cos(k x_i))``
``cosine-multi``            ``sum_i x_i**2 + sum_j delta_j * sum_i cos(k_j x_i)``
==========================  ===========================================================

Liu, "Complex fractal trainability boundary can arise from trivial
non-convexity" (arXiv 2406.13971): the additive boundary turns fractal when
the roughness ``delta / wavelength**2`` passes ``1 / (2 pi**2)``.

The arithmetic below is the definition the NumPy reference in the tests
mirrors operation for operation, so both give bit-identical orbits. Each
point's ``k = 2*pi / wavelength`` is computed once (``prepare`` stores it in
place of the wavelength), the same double the reference computes.

Divergence tests need only a bound on the loss: every ``cos`` lies in
``[-1, 1]``, so an additive loss is at most ``sum_i x_i**2 + r`` with
``r = sum_j |delta_j| * d``, and it is below the threshold wherever
``sum_i x_i**2`` is below ``threshold - r`` less a few ulp of the threshold
(the slack covers the roundings of the loss's own sums: rounding is
monotone, so they cannot cross it). The additive gradient needs ``sin``
alone, so a GD step there costs no ``cos``. The multiplicative gradient
needs the ``cos`` sum anyway, and its loss comes with it.
"""

from __future__ import annotations

import math
from functools import partial

from numba import njit

from fractalscape.errors import ConfigError, check_finite
from fractalscape.landscapes.base import Family, lane_kernels, register, scalar_theta

TWO_PI = 2.0 * math.pi
#: Ripple amplitude bound: a little over 1 per cosine, in case a cos rounds a few ulp past 1.
_COS_BOUND = 1.0 + 2.0**-40
#: Relative slack of a level below the threshold: 16 ulp, for the roundings of up to ~14 ripple terms.
_SLACK = 2.0**-48


def _quadratic(trig):
    @njit(nogil=True, inline="always")
    def loss(x, theta, j):
        return _squares(x, j)

    @njit(nogil=True, inline="always")
    def grad(x, theta, j, out):
        for i in range(x.shape[0]):
            out[i, j] = 2.0 * x[i, j]

    return lane_kernels(loss, grad)


@njit(nogil=True, inline="always")
def _wavenumber(theta, j):
    """theta rows ``delta, wavelength`` -> ``delta, k``."""
    theta[1, j] = TWO_PI / theta[1, j]


@njit(nogil=True, inline="always")
def _squares(x, j):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i, j] * x[i, j]
    return s


@njit(nogil=True, inline="always")
def _level(threshold, amplitude, dim):
    """Where ``sum_i x_i**2`` below it guarantees a loss below ``threshold`` (ripples ``amplitude * cos``)."""
    radius = amplitude * (dim * _COS_BOUND)
    return (threshold - radius) - (abs(threshold) + radius) * _SLACK


@njit(nogil=True, inline="always")
def _nan_where_ripples_are(sin, x, j, k):
    """0, or NaN where a ``cos(k x_i)`` is NaN (fast trig: ``|k x_i| >= 2**50``), so the loss is.

    It takes the ``sin`` of the arguments the gradient takes it of: the
    compiler computes it once, and ``sin`` is NaN exactly where ``cos`` is.
    """
    nan = 0.0
    for i in range(x.shape[0]):
        nan += 0.0 * sin(k * x[i, j])
    return nan


def _squares_and_ripples(cos):
    """``(sum_i x_i^2, sum_i cos(k x_i))`` of lane ``j``, summed in coordinate order."""

    @njit(nogil=True, inline="always")
    def sums(x, j, k):
        s = 0.0
        c = 0.0
        for i in range(x.shape[0]):
            s += x[i, j] * x[i, j]
            c += cos(k * x[i, j])
        return s, c

    return sums


def _additive(trig):
    sin, sums = trig.sin, _squares_and_ripples(trig.cos)

    @njit(nogil=True, inline="always")
    def loss(x, theta, j):
        delta, k = theta[0, j], theta[1, j]
        s, c = sums(x, j, k)
        return s + delta * c

    @njit(nogil=True, inline="always")
    def grad(x, theta, j, out):
        delta, k = theta[0, j], theta[1, j]
        for i in range(x.shape[0]):
            out[i, j] = 2.0 * x[i, j] - delta * k * sin(k * x[i, j])

    @njit(nogil=True, inline="always")
    def bound(x, theta, j):
        return _squares(x, j) + _nan_where_ripples_are(sin, x, j, theta[1, j])

    @njit(nogil=True, inline="always")
    def level(x, theta, j, threshold):
        return _level(threshold, abs(theta[0, j]), x.shape[0])

    return lane_kernels(loss, grad, _wavenumber, bound, level)


def _multiplicative(trig):
    # The gradient needs sin and cos of the same arguments: both from sincos.
    sincos = trig.sincos

    @njit(nogil=True, inline="always")
    def cos(x):
        return sincos(x)[1]

    @njit(nogil=True, inline="always")
    def sin(x):
        return sincos(x)[0]

    sums = _squares_and_ripples(cos)

    @njit(nogil=True, inline="always")
    def loss(x, theta, j):
        delta, k = theta[0, j], theta[1, j]
        s, c = sums(x, j, k)
        return s * (1.0 + delta * c)

    @njit(nogil=True, inline="always")
    def grad(x, theta, j, out):
        delta, k = theta[0, j], theta[1, j]
        s, c = sums(x, j, k)
        ripple = 1.0 + delta * c
        for i in range(x.shape[0]):
            out[i, j] = 2.0 * x[i, j] * ripple - s * delta * k * sin(k * x[i, j])

    return lane_kernels(loss, grad, _wavenumber)


def _multi(trig):
    cos, sin = trig.cos, trig.sin

    # theta rows: delta_0, ..., delta_{m-1}, wavelength_0, ..., wavelength_{m-1} (k_0, ... once prepared)
    @njit(nogil=True, inline="always")
    def prepare(theta, j):
        m = theta.shape[0] // 2
        for t in range(m, 2 * m):
            theta[t, j] = TWO_PI / theta[t, j]

    @njit(nogil=True, inline="always")
    def loss(x, theta, j):
        m = theta.shape[0] // 2
        s = _squares(x, j)
        for t in range(m):
            k = theta[m + t, j]
            c = 0.0
            for i in range(x.shape[0]):
                c += cos(k * x[i, j])
            s += theta[t, j] * c
        return s

    @njit(nogil=True, inline="always")
    def grad(x, theta, j, out):
        m = theta.shape[0] // 2
        for i in range(x.shape[0]):
            out[i, j] = 2.0 * x[i, j]
        for t in range(m):
            k = theta[m + t, j]
            for i in range(x.shape[0]):
                out[i, j] -= theta[t, j] * k * sin(k * x[i, j])

    @njit(nogil=True, inline="always")
    def bound(x, theta, j):
        m = theta.shape[0] // 2
        s = _squares(x, j)
        for t in range(m):
            s += _nan_where_ripples_are(sin, x, j, theta[m + t, j])
        return s

    @njit(nogil=True, inline="always")
    def level(x, theta, j, threshold):
        m = theta.shape[0] // 2
        amplitude = 0.0
        for t in range(m):
            amplitude += abs(theta[t, j])
        return _level(threshold, amplitude, x.shape[0])

    return lane_kernels(loss, grad, prepare, bound, level)


RIPPLE_DEFAULTS = {"delta": 0.2, "wavelength": 0.1}


def _check_wavelengths(name, theta):
    for key, value in theta.items():
        if key.startswith("wavelength") and value == 0:
            raise ConfigError(f"landscape {name!r}: {key} must be non-zero, got 0")
    return theta


def _parse_ripple(name, params):
    return _check_wavelengths(name, scalar_theta(name, RIPPLE_DEFAULTS, params))


def _ripple_family(name, formula, build):
    return register(Family(name, formula, build, RIPPLE_DEFAULTS, partial(_parse_ripple, name)))


def _parse_multi(params):
    name = "cosine-multi"
    deltas = params.pop("deltas", None)
    wavelengths = params.pop("wavelengths", None)
    if params:
        raise ConfigError(
            f"landscape {name!r} has no parameter {sorted(params)[0]!r}; "
            "its parameters are: deltas (list), wavelengths (list)"
        )
    if not isinstance(deltas, (list, tuple)) or not isinstance(wavelengths, (list, tuple)):
        raise ConfigError(
            f"landscape {name!r} needs lists 'deltas' and 'wavelengths' of equal length >= 2, "
            f"got deltas={deltas!r}, wavelengths={wavelengths!r}"
        )
    if len(deltas) != len(wavelengths) or len(deltas) < 2:
        raise ConfigError(
            f"landscape {name!r}: 'deltas' and 'wavelengths' must have the same length >= 2, "
            f"got {len(deltas)} and {len(wavelengths)}"
        )
    theta = {f"delta_{j}": check_finite(f"landscape {name!r}: deltas[{j}]", d) for j, d in enumerate(deltas)}
    theta.update(
        {f"wavelength_{j}": check_finite(f"landscape {name!r}: wavelengths[{j}]", w) for j, w in enumerate(wavelengths)}
    )
    return _check_wavelengths(name, theta)


QUADRATIC = register(Family("quadratic", "sum_i x_i^2", _quadratic))
COSINE_ADDITIVE = _ripple_family(
    "cosine-additive", "sum_i x_i^2 + delta * sum_i cos(2 pi x_i / wavelength)", _additive
)
COSINE_MULTIPLICATIVE = _ripple_family(
    "cosine-multiplicative", "(sum_i x_i^2) * (1 + delta * sum_i cos(2 pi x_i / wavelength))", _multiplicative
)
COSINE_MULTI = register(
    Family(
        "cosine-multi",
        "sum_i x_i^2 + sum_j delta_j * sum_i cos(2 pi x_i / wavelength_j)",
        _multi,
        parse=_parse_multi,
    )
)
