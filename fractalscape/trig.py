"""The one place the GD kernels get sin and cos from.

Landscapes never call ``math.sin``/``math.cos`` directly: their builders take
a :class:`Trig` and close over its functions, so a kernel can swap the libm
functions for vectorizable ones without touching any landscape.

Two implementations:

``"libm"`` (the default)
    The C library's ``sin``/``cos``, the functions NumPy's ``np.sin``/``np.cos``
    call: maps are comparable with any other implementation of the same GD.
``"fast"``
    Plain floating-point arithmetic that LLVM vectorizes across the lanes of
    the lock-step kernel (:mod:`fractalscape.gd`): fdlibm's medium-range
    Cody-Waite reduction by pi/2 (``__ieee754_rem_pio2``: three 33-bit parts
    of pi/2, the reduced argument kept as a double-double ``y0 + y1``) and
    fdlibm's minimax kernels ``__kernel_sin``/``__kernel_cos`` (FreeBSD msun
    ``k_sin.c``/``k_cos.c``, error < 1 ulp on ``[-pi/4, pi/4]``). Within 1 ulp
    of libm for ``|x| < 2**20 * pi/2`` (about 1.6e6; the tests check a
    million random arguments); up to ``2**50`` the reduction error grows to
    about ``|x| * 2**-52`` radians, the size of the rounding error the
    argument itself carries; beyond ``2**50``, where that rounding exceeds a
    quarter turn, and for inf and NaN arguments the result is NaN, so a GD
    state that blows up still reads as diverged.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

from numba import njit


class Trig(NamedTuple):
    """sin and cos as numba-compiled scalar functions, with the name of the implementation."""

    name: str
    sin: Callable[[float], float]
    cos: Callable[[float], float]


@njit(nogil=True, inline="always")
def _libm_sin(x):
    return math.sin(x)


@njit(nogil=True, inline="always")
def _libm_cos(x):
    return math.cos(x)


# fdlibm e_rem_pio2.c: 2/pi and pi/2 split in 33-bit parts (pio2_1 * n is exact for |n| < 2**20).
_INVPIO2 = 6.36619772367581382433e-01
_PIO2_1 = 1.57079632673412561417e00
_PIO2_2 = 6.07710050630396597660e-11
_PIO2_3 = 2.02226624871116645580e-21
_PIO2_3T = 8.47842766036889956997e-32
# Adding and subtracting 1.5 * 2**52 rounds a double below 2**51 to the nearest integer.
_ROUND = 6755399441055744.0
# Largest |x| reduced: beyond it the argument's own rounding exceeds a quarter turn.
_LARGEST = 2.0**50
# fdlibm k_sin.c: sin(x) ~ x + S1 x^3 + ... + S6 x^13 on [-pi/4, pi/4].
_S1 = -1.66666666666666324348e-01
_S2 = 8.33333333332248946124e-03
_S3 = -1.98412698298579493134e-04
_S4 = 2.75573137070700676789e-06
_S5 = -2.50507602534068634195e-08
_S6 = 1.58969099521155010221e-10
# fdlibm k_cos.c: cos(x) ~ 1 - x^2/2 + C1 x^4 + ... + C6 x^14 on [-pi/4, pi/4].
_C1 = 4.16666666666666019037e-02
_C2 = -1.38888888888741095749e-03
_C3 = 2.48015872894767294178e-05
_C4 = -2.75573143513906633035e-07
_C5 = 2.08757232129817482790e-09
_C6 = -1.13596475577881948265e-11


@njit(nogil=True, inline="always")
def _sincos(x):
    """``(sin x, cos x)`` without a branch, so a loop over lanes vectorizes.

    Every lane computes both kernels and selects; when a loop body asks for
    the sin and the cos of the same argument LLVM computes them once.
    """
    reducible = abs(x) < _LARGEST  # False for inf and NaN
    xr = x if reducible else 0.0  # keeps the float -> int conversion below in range
    n = (xr * _INVPIO2 + _ROUND) - _ROUND
    # Cody-Waite: x - n*pi/2 in three steps, the last one keeping the tail y1.
    r = xr - n * _PIO2_1
    t = r
    w = n * _PIO2_2
    r = t - w
    t = r
    w = n * _PIO2_3
    r = t - w
    w = n * _PIO2_3T - ((t - r) - w)
    y0 = r - w
    y1 = (r - y0) - w
    z = y0 * y0
    v = z * y0
    p = _S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * _S6)))
    sin_r = y0 - ((z * (0.5 * y1 - v * p) - y1) - v * _S1)
    zz = z * z
    q = z * (_C1 + z * (_C2 + z * _C3)) + zz * zz * (_C4 + z * (_C5 + z * _C6))
    hz = 0.5 * z
    one_minus = 1.0 - hz
    cos_r = one_minus + (((1.0 - one_minus) - hz) + (z * q - y0 * y1))
    quadrant = int(n) & 3
    s = cos_r if quadrant & 1 else sin_r
    c = sin_r if quadrant & 1 else cos_r
    s = -s if quadrant & 2 else s
    c = -c if (quadrant + 1) & 2 else c
    nan = math.nan
    return (s if reducible else nan), (c if reducible else nan)


@njit(nogil=True, inline="always")
def _fast_sin(x):
    return _sincos(x)[0]


@njit(nogil=True, inline="always")
def _fast_cos(x):
    return _sincos(x)[1]


#: The C library's correctly rounded-in-practice sin/cos, as NumPy's np.sin/np.cos use.
LIBM = Trig("libm", _libm_sin, _libm_cos)

#: Branch-free fdlibm polynomials: within 1 ulp of libm, vectorizable across lanes.
FAST = Trig("fast", _fast_sin, _fast_cos)

TRIGS = {"libm": LIBM, "fast": FAST}


def get_trig(precision: str) -> Trig:
    """The :class:`Trig` for a ``precision`` name (``"libm"`` or ``"fast"``).

    Examples
    --------
    >>> get_trig("fast").name
    'fast'
    """
    from fractalscape.errors import ConfigError

    try:
        return TRIGS[precision]
    except KeyError:
        raise ConfigError(
            f"precision must be one of {sorted(TRIGS)}, got {precision!r}: "
            "'libm' for maps comparable with other implementations, 'fast' for speed"
        ) from None
