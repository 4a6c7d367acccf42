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

Two operation orders, one per precision (the NumPy reference in the tests
mirrors both operation for operation, so orbits agree bit for bit):

``precision="libm"``: the paper's
    Liu's code (``exp-0.jl``, ``exp-1.jl``, ``gpuexp-*.py`` in
    liuyz0/FractalBoundary), with ``wl`` the wavelength::

        phase    = (2*pi * x) / wl
        additive:        loss = x*x + delta * cos(phase)
                         grad = 2*x - ((2*pi * delta) * sin(phase)) / wl
        multiplicative:  loss = (x*x) * (1 + delta * cos(phase))
                         grad = (2*x) * (1 + delta * cos(phase))
                                - (((2*pi * (x*x)) * delta) * sin(phase)) / wl

    Near the boundary an orbit expands some 27x per step, so a single
    rounding difference flips labels: this order, and only this one,
    reproduces Liu's published dyadic counts (``tests/test_liu.py``). In
    ``d`` dimensions ``x*x`` is ``sum_i x_i**2`` and the ripple sums run in
    coordinate order.
``precision="fast"``: one division less per step
    Each point's ``k = 2*pi / wavelength`` is computed once (``prepare``
    stores it in place of the wavelength); ``phase = k * x`` and the ripple
    gradient is ``delta * k * sin(phase)`` (multiplicative: ``s * delta * k *
    sin(phase)``).

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
import sys
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
def _paper_phase(x, wavelength):
    """``2 pi x / wavelength`` as Liu's code evaluates it: ``(2*pi * x) / wavelength``."""
    return (TWO_PI * x) / wavelength


@njit(nogil=True, inline="always")
def _fast_phase(x, k):
    """``2 pi x / wavelength`` from the prepared ``k = 2*pi / wavelength``."""
    return k * x


@njit(nogil=True, inline="always")
def _nan_where_ripples_are(sin, phase, x, j, wave):
    """0, or NaN where a ``cos`` of the ripples is NaN (fast trig: ``|phase| >= 2**50``), so the loss is.

    It takes the ``sin`` of the arguments the gradient takes it of: the
    compiler computes it once, and ``sin`` is NaN exactly where ``cos`` is.
    """
    nan = 0.0
    for i in range(x.shape[0]):
        nan += 0.0 * sin(phase(x[i, j], wave))
    return nan


def _squares_and_ripples(cos, phase):
    """``(sum_i x_i^2, sum_i cos(phase(x_i)))`` of lane ``j``, summed in coordinate order."""

    @njit(nogil=True, inline="always")
    def sums(x, j, wave):
        s = 0.0
        c = 0.0
        for i in range(x.shape[0]):
            s += x[i, j] * x[i, j]
            c += cos(phase(x[i, j], wave))
        return s, c

    return sums


def _additive(trig):
    sin = trig.sin
    if trig.name == "libm":
        phase, sums = _paper_phase, _squares_and_ripples(trig.cos, _paper_phase)

        @njit(nogil=True, inline="always")
        def grad(x, theta, j, out):
            delta, wavelength = theta[0, j], theta[1, j]
            for i in range(x.shape[0]):
                out[i, j] = 2.0 * x[i, j] - ((TWO_PI * delta) * sin(phase(x[i, j], wavelength))) / wavelength

        prepare = None
    else:
        phase, sums = _fast_phase, _squares_and_ripples(trig.cos, _fast_phase)

        @njit(nogil=True, inline="always")
        def grad(x, theta, j, out):
            delta, k = theta[0, j], theta[1, j]
            for i in range(x.shape[0]):
                out[i, j] = 2.0 * x[i, j] - delta * k * sin(k * x[i, j])

        prepare = _wavenumber

    @njit(nogil=True, inline="always")
    def loss(x, theta, j):
        s, c = sums(x, j, theta[1, j])
        return s + theta[0, j] * c

    @njit(nogil=True, inline="always")
    def bound(x, theta, j):
        return _squares(x, j) + _nan_where_ripples_are(sin, phase, x, j, theta[1, j])

    @njit(nogil=True, inline="always")
    def level(x, theta, j, threshold):
        return _level(threshold, abs(theta[0, j]), x.shape[0])

    return lane_kernels(loss, grad, prepare, bound, level)


def _multiplicative(trig):
    # The gradient needs sin and cos of the same arguments: both from sincos.
    sincos = trig.sincos

    @njit(nogil=True, inline="always")
    def cos(x):
        return sincos(x)[1]

    @njit(nogil=True, inline="always")
    def sin(x):
        return sincos(x)[0]

    if trig.name == "libm":
        phase, prepare = _paper_phase, None

        @njit(nogil=True, inline="always")
        def ripple_grad(s, delta, wavelength, phase_value):
            return (((TWO_PI * s) * delta) * sin(phase_value)) / wavelength
    else:
        phase, prepare = _fast_phase, _wavenumber

        @njit(nogil=True, inline="always")
        def ripple_grad(s, delta, k, phase_value):
            return s * delta * k * sin(phase_value)

    sums = _squares_and_ripples(cos, phase)

    @njit(nogil=True, inline="always")
    def loss(x, theta, j):
        s, c = sums(x, j, theta[1, j])
        return s * (1.0 + theta[0, j] * c)

    @njit(nogil=True, inline="always")
    def grad(x, theta, j, out):
        delta, wave = theta[0, j], theta[1, j]
        s, c = sums(x, j, wave)
        ripple = 1.0 + delta * c
        for i in range(x.shape[0]):
            out[i, j] = (2.0 * x[i, j]) * ripple - ripple_grad(s, delta, wave, phase(x[i, j], wave))

    return lane_kernels(loss, grad, prepare)


def _multi(trig):
    cos, sin = trig.cos, trig.sin
    # theta rows: delta_0, ..., delta_{m-1}, wavelength_0, ..., wavelength_{m-1} (fast: k_0, ... once prepared)
    if trig.name == "libm":
        phase, prepare = _paper_phase, None

        @njit(nogil=True, inline="always")
        def ripple_grad(delta, wavelength, phase_value):
            return ((TWO_PI * delta) * sin(phase_value)) / wavelength
    else:
        phase = _fast_phase

        @njit(nogil=True, inline="always")
        def prepare(theta, j):
            m = theta.shape[0] // 2
            for t in range(m, 2 * m):
                theta[t, j] = TWO_PI / theta[t, j]

        @njit(nogil=True, inline="always")
        def ripple_grad(delta, k, phase_value):
            return delta * k * sin(phase_value)

    @njit(nogil=True, inline="always")
    def loss(x, theta, j):
        m = theta.shape[0] // 2
        s = _squares(x, j)
        for t in range(m):
            wave = theta[m + t, j]
            c = 0.0
            for i in range(x.shape[0]):
                c += cos(phase(x[i, j], wave))
            s += theta[t, j] * c
        return s

    @njit(nogil=True, inline="always")
    def grad(x, theta, j, out):
        m = theta.shape[0] // 2
        for i in range(x.shape[0]):
            out[i, j] = 2.0 * x[i, j]
        for t in range(m):
            wave = theta[m + t, j]
            for i in range(x.shape[0]):
                out[i, j] -= ripple_grad(theta[t, j], wave, phase(x[i, j], wave))

    @njit(nogil=True, inline="always")
    def bound(x, theta, j):
        m = theta.shape[0] // 2
        s = _squares(x, j)
        for t in range(m):
            s += _nan_where_ripples_are(sin, phase, x, j, theta[m + t, j])
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
    # A subnormal wavelength (or one whose 2 pi / wavelength overflows) would label every point
    # diverged at step 0: refuse it rather than compute a map of rounding.
    for key, value in theta.items():
        if key.startswith("wavelength") and (abs(value) < sys.float_info.min or not math.isfinite(TWO_PI / value)):
            raise ConfigError(f"landscape {name!r}: {key} must be a normal non-zero number whose wavenumber "
                              f"2*pi/{key} is finite (|{key}| > {TWO_PI / sys.float_info.max:.3g}), got {value!r}")
    return theta


def _parse_ripple(name, params):
    return _check_wavelengths(name, scalar_theta(name, RIPPLE_DEFAULTS, params))


def _ripple_family(name, formula, build):
    return register(Family(name, formula, build, RIPPLE_DEFAULTS, partial(_parse_ripple, name), builtin=True))


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


QUADRATIC = register(Family("quadratic", "sum_i x_i^2", _quadratic, builtin=True))
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
        builtin=True,
    )
)
