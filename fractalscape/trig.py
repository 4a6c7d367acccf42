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
    the lock-step kernel (:mod:`fractalscape.gd`), two algorithms:

    ``sincos`` and ``cos``
        A Cody-Waite reduction by pi/2 with fused multiply-adds (pi/2 as
        three doubles; the first step is exact, the reduced argument is kept
        as a double-double ``y0 + y1``) and fdlibm's minimax kernels
        ``__kernel_sin``/``__kernel_cos`` (FreeBSD msun ``k_sin.c``/``k_cos.c``,
        error < 1 ulp on ``[-pi/4, pi/4]``), evaluated with FMAs; both
        polynomials run and the quadrant selects. Within 1 ulp of the exact
        value (faithful) for ``|x| < 2**20 * pi/2``, about 1.6e6; 3 % of
        results differ from libm's, by that ulp.
    ``sin`` alone
        Half the work, for gradients that need no cosine (Liu's additive
        landscape): the same reduction by pi instead of pi/2, into
        ``[-pi/2, pi/2]``, where one odd polynomial of degree 19 (SLEEF's
        minimax ``xsin`` coefficients, Shibata's SLEEF library) covers the
        whole interval; the parity of the multiple of pi flips the sign.
        Within 2 ulp of the exact value (the polynomial's ``y z u`` term is up
        to a third of the result, so its roundings add up to a second ulp),
        measured against 130-bit mpmath over random arguments at every scale
        up to 1e6: at most 1 ulp for ``|x| < 0.5``, more than 1 ulp for about
        3 in 10,000 arguments beyond; about 12 % of results differ from
        libm's, by 1 or 2 ulp.

    Up to ``2**50`` the error grows to about ``|x| * 2**-52`` radians, the
    size of the rounding error the argument itself carries; beyond ``2**50``,
    where that rounding exceeds a quarter turn, and for inf and NaN arguments
    the result is NaN (for both algorithms: ``sin`` is NaN exactly where
    ``cos`` is), so a GD state that blows up still reads as diverged.
    ``llvm.fma`` rounds once on every CPU (an FMA instruction, or the C
    library's ``fma``), so fast maps do not depend on the machine either,
    only on this code.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


class Trig(NamedTuple):
    """sin, cos and both at once as numba-compiled scalar functions, with the name of the implementation.

    A landscape that needs the sine and the cosine of the same argument calls
    ``sincos``: the compiler then shares their work.
    """

    name: str
    sin: Callable[[float], float]
    cos: Callable[[float], float]
    sincos: Callable[[float], tuple[float, float]]


@njit(nogil=True, inline="always")
def _libm_sin(x):
    return math.sin(x)


@njit(nogil=True, inline="always")
def _libm_cos(x):
    return math.cos(x)


@njit(nogil=True, inline="always")
def _libm_sincos(x):
    return math.sin(x), math.cos(x)


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (IEEE fused multiply-add).

    LLVM's ``llvm.fma`` is exact on every target: a vector FMA instruction
    where the CPU has one, the C library's ``fma`` otherwise, so results do
    not depend on the machine.
    """
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


@intrinsic
def _flip_sign_if_odd(typingctx, value, rounded):
    """``value``, negated where the integer in the last mantissa bit of ``rounded`` is odd.

    ``rounded`` is ``n + 1.5 * 2**52`` for an integer ``n``: its last bit is
    ``n``'s. A sign-bit XOR, so ``-0.0`` and NaN pass through as negation does.
    """
    sig = types.float64(types.float64, types.float64)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        bits = builder.bitcast(args[0], i64)
        odd = builder.shl(builder.bitcast(args[1], i64), i64(63))
        return builder.bitcast(builder.xor(bits, odd), ir.DoubleType())

    return sig, codegen


_INVPIO2 = 6.36619772367581382433e-01
# pi/2 as a sum of three doubles (53 bits each).
_PIO2_HI = 1.5707963267948966
_PIO2_MID = 6.123233995736766e-17
_PIO2_LO = -1.4973849048591698e-33
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
def _reduce(x, m, hi, mid, lo):
    """``x + m * c`` as the double-double ``(y0, y1)``, for ``c = hi + mid + lo`` (pi/2 or pi as three doubles).

    ``m`` is minus the nearest multiple; the first step is exact: both terms are
    multiples of ``ulp(hi)`` (or finer) and the difference is below 2.
    """
    r = _fma(m, hi, x)
    y0 = _fma(m, mid, r)
    y1 = _fma(m, lo, _fma(m, mid, r - y0))
    return y0, y1


@njit(nogil=True, inline="always")
def _sincos(x):
    """``(sin x, cos x)`` without a branch, so a loop over lanes vectorizes.

    Every lane computes both kernels and selects; when a loop body asks for
    the sin and the cos of the same argument LLVM computes them once.
    """
    reducible = abs(x) < _LARGEST  # False for inf and NaN
    xr = x if reducible else 0.0  # keeps the float -> int conversion below in range
    n = _fma(xr, _INVPIO2, _ROUND) - _ROUND
    y0, y1 = _reduce(xr, -n, _PIO2_HI, _PIO2_MID, _PIO2_LO)  # x - n*pi/2
    z = y0 * y0
    v = z * y0
    p = _fma(z, _fma(z, _fma(z, _fma(z, _S6, _S5), _S4), _S3), _S2)
    sin_r = y0 - _fma(-v, _S1, _fma(z, _fma(-v, p, 0.5 * y1), -y1))
    q = _fma(z, _fma(z, _fma(z, _fma(z, _fma(z, _C6, _C5), _C4), _C3), _C2), _C1)
    hz = 0.5 * z
    one_minus = 1.0 - hz
    cos_r = one_minus + (((1.0 - one_minus) - hz) + _fma(z, z * q, -y0 * y1))
    quadrant = int(n) & 3
    s = cos_r if quadrant & 1 else sin_r
    c = sin_r if quadrant & 1 else cos_r
    s = -s if quadrant & 2 else s
    c = -c if (quadrant + 1) & 2 else c
    nan = math.nan
    return (s if reducible else nan), (c if reducible else nan)


_INVPI = 3.18309886183790671538e-01
# pi as a sum of three doubles.
_PI_HI = 3.141592653589793
_PI_MID = 1.2246467991473532e-16
_PI_LO = -2.9947698097183397e-33
# SLEEF's xsin: sin(y) ~ y + y z (U1 + U2 z + ... + U9 z^8), z = y*y, on [-pi/2, pi/2].
_U1 = -0.166666666666666657414808
_U2 = 0.00833333333333332974823815
_U3 = -0.000198412698412696162806809
_U4 = 2.75573192239198747630416e-06
_U5 = -2.50521083763502045810755e-08
_U6 = 1.60590430605664501629054e-10
_U7 = -7.64712219118158833288484e-13
_U8 = 2.81009972710863200091251e-15
_U9 = -7.97255955009037868891952e-18


@njit(nogil=True, inline="always")
def _fast_sin(x):
    """sin x alone: one reduction by pi and one polynomial, branch-free (see the module docstring)."""
    rounded = _fma(x, _INVPI, _ROUND)  # n + 1.5 * 2**52, n the multiple of pi nearest x
    # x - n*pi; -n is -0.0 for n = 0, so that sin(-0.0) stays -0.0
    y0, y1 = _reduce(x, -(rounded - _ROUND), _PI_HI, _PI_MID, _PI_LO)
    z = y0 * y0
    u = _fma(z, _fma(z, _fma(z, _fma(z, _fma(z, _fma(z, _fma(z, _fma(z, _U9, _U8), _U7), _U6), _U5), _U4), _U3), _U2), _U1)
    # sin(y0 + y1) = sin(y0) + y1 cos(y0), with cos(y0) ~ 1 - z/2.
    sin_y = y0 + _fma(y0 * z, u, _fma(z, -0.5 * y1, y1))
    s = _flip_sign_if_odd(math.copysign(sin_y, y0), rounded)  # copysign: sin(-0.0) is -0.0
    return s if abs(x) < _LARGEST else math.nan  # False for inf and NaN


@njit(nogil=True, inline="always")
def _fast_cos(x):
    return _sincos(x)[1]


#: The C library's correctly rounded-in-practice sin/cos, as NumPy's np.sin/np.cos use.
LIBM = Trig("libm", _libm_sin, _libm_cos, _libm_sincos)

#: Branch-free FMA reductions and minimax polynomials, vectorizable across lanes: within 1 ulp of the
#: exact value (sincos, cos), 2 ulp (sin alone).
FAST = Trig("fast", _fast_sin, _fast_cos, _sincos)

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
