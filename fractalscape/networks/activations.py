"""Hidden-layer nonlinearities of the networks (Sohl-Dickstein's three, and GELU), and a vectorizable tanh.

Each nonlinearity is a pair of numba scalar functions the kernels inline::

    phi(u)           # the activation applied to u = sqrt(2) * z ("tanh") or z
    dphi(u, h)       # d phi / d u, given h = phi(u)

``tanh`` comes in two precisions, as sin/cos do in :mod:`fractalscape.trig`:

``"libm"``
    ``math.tanh``, the C library's function (NumPy's ``np.tanh`` is a
    different, SIMD implementation that differs from libm in the last bit for
    about a quarter of arguments, so the test reference calls ``math.tanh``).
``"fast"``
    :func:`fast_tanh`: plain arithmetic without branches that LLVM vectorizes
    across lanes, with a single division (vector division is slow; an exp
    with fdlibm's kernel would need a second one). For ``|x| < 0.625``
    Cephes' rational minimax ``x + x z P(z)/Q(z)`` (``z = x*x``); above it
    ``1 - 2/(exp(2|x|) + 1)``, with fdlibm's reduction ``2|x| = k ln2 + r``,
    a polynomial for ``exp(r)`` (a degree-11 Chebyshev fit, relative error
    below 4e-17, evaluated by Estrin's scheme with :mod:`fractalscape.trig`'s
    fused multiply-adds, which round once on every CPU),
    ``2**k`` built from the bits of ``k``, and ``|x|`` clamped at 22, where
    tanh rounds to 1. Within 2 ulp of libm, equal to it for 79% of arguments
    and within 1 ulp for 99.2% (over 3.3 million arguments; the tests measure
    both), and within 1.31 ulp of the exact value, where glibc's own tanh
    is off by up to 2.08 ulp on ``[0, 1.2]``; NaN stays NaN, +-inf gives
    +-1 and -0.0 gives -0.0.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

from numba import njit, types
from numba.extending import intrinsic

from fractalscape.trig import _ROUND, _fma

SQRT2 = math.sqrt(2.0)

# Cephes tanh.c: tanh(x) = x + x z P(z) / Q(z), z = x*x, for |x| < 0.625.
_P0, _P1, _P2 = -9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3
_Q0, _Q1, _Q2 = 1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3
_SMALL = 0.625
# Beyond 22, 2 / (exp(2x) + 1) < 2**-60: tanh rounds to 1 (glibc uses the same cut).
_LARGE = 22.0
# fdlibm e_exp.c's reduction 2a = k ln2 + r, |r| <= ln2 / 2, with ln2 split so that k * LN2_HI is exact.
_INVLN2 = 1.44269504088896338700e00
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
# exp(r) = 1 + r + r**2 (1/2 + r E(r)) on |r| <= ln2 / 2: Chebyshev fit (mpmath.chebyfit, degree 8)
# of (expm1(r) - r - r**2 / 2) / r**3; relative error below 4e-17, a third of an ulp.
_E = (
    0.16666666666666666, 0.041666666666651364, 0.008333333333332157, 0.0013888888905871347,
    0.0001984126985433077, 2.4801536409064087e-05, 2.7557280082684685e-06, 2.761379555451986e-07,
    2.509554598170022e-08,
)  # fmt: skip
# Adding _ROUND (1.5 * 2**52) rounds a double below 2**51 to the nearest integer k, which is
# then the low bits of the sum's bit pattern: adding _EXP_BIAS and shifting them into the
# exponent field gives the bits of 2**k.
_EXP_BIAS = 1023 - 0x4338000000000000


@intrinsic
def _bits(typingctx, x):
    """The bit pattern of a float64 as an int64 (a no-op that LLVM vectorizes)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return types.int64(types.float64), codegen


@intrinsic
def _from_bits(typingctx, i):
    """The float64 with the bit pattern of an int64."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


@njit(nogil=True, inline="always")
def fast_tanh(x):
    """tanh without branches or library calls, so a loop over lanes vectorizes.

    Every lane evaluates both formulas and selects one (see the module docstring).

    Examples
    --------
    >>> import math
    >>> abs(fast_tanh(0.3) - math.tanh(0.3)) <= 2 * math.ulp(math.tanh(0.3))
    True
    >>> fast_tanh(float("-inf")), fast_tanh(-0.0), math.isnan(fast_tanh(float("nan")))
    (-1.0, -0.0, True)
    """
    a = abs(x)
    a = _LARGE if a > _LARGE else a  # NaN stays NaN, and so does every value below
    small = a < _SMALL
    # Small arguments: Cephes' rational function, a + a z P(z) / Q(z).
    z = a * a
    p = _fma(_fma(_P0, z, _P1), z, _P2)
    q = _fma(_fma(z + _Q0, z, _Q1), z, _Q2)
    # Large arguments: 1 - 2 / (exp(2a) + 1), exp(2a) = 2**k exp(r) with a polynomial
    # exp(r) (no division) and 2**k built from k's bits; 2a in [1.25, 44], 2 <= k <= 64.
    y = a + a
    kf = _fma(a, 2.0 * _INVLN2, _ROUND)  # the integer k in the low bits of kf
    k = kf - _ROUND
    r = _fma(k, -_LN2_LO, _fma(k, -_LN2_HI, y))
    r2 = r * r
    r4 = r2 * r2
    # Estrin's scheme: a shorter dependency chain than Horner's.
    poly = _fma(
        _fma(_E[8], r4, _fma(_fma(_E[7], r, _E[6]), r2, _fma(_E[5], r, _E[4]))),
        r4,
        _fma(_fma(_E[3], r, _E[2]), r2, _fma(_E[1], r, _E[0])),
    )
    exp_r_minus_1 = _fma(r2, _fma(r, poly, 0.5), r)
    scale = _from_bits((_bits(kf) + _EXP_BIAS) << 52)
    exp_2a = _fma(scale, exp_r_minus_1, scale)
    # The one division serves both branches: select its operands first.
    ratio = (a * (z * p) if small else 2.0) / (q if small else exp_2a + 1.0)
    t = math.copysign(a + ratio if small else 1.0 - ratio, x)
    return t


@njit(nogil=True, inline="always")
def _libm_tanh(u):
    return math.tanh(u)


@njit(nogil=True, inline="always")
def _dtanh(u, h):
    return 1.0 - h * h


@njit(nogil=True, inline="always")
def _relu(u):
    return u if u > 0.0 else 0.0


@njit(nogil=True, inline="always")
def _drelu(u, h):
    return 1.0 if u > 0.0 else 0.0


@njit(nogil=True, inline="always")
def _identity(u):
    return u


@njit(nogil=True, inline="always")
def _didentity(u, h):
    return 1.0


_INV_SQRT2 = 1.0 / SQRT2
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@njit(nogil=True, inline="always")
def _gelu(u):
    return u * (0.5 * (1.0 + math.erf(u * _INV_SQRT2)))


@njit(nogil=True, inline="always")
def _dgelu(u, h):
    return 0.5 * (1.0 + math.erf(u * _INV_SQRT2)) + u * (_INV_SQRT_2PI * math.exp(-0.5 * (u * u)))


class Activation(NamedTuple):
    """A nonlinearity as the kernels see it.

    ``pre_scale`` multiplies the layer's pre-activation before ``phi`` and
    ``post_scale`` multiplies ``phi``'s value (Sohl-Dickstein's ``net``:
    ``tanh(sqrt(2) z)``, ``relu(z) * sqrt(2)``, ``z``); 1.0 is skipped.
    """

    name: str
    phi: Callable[[float], float]
    dphi: Callable[[float, float], float]
    pre_scale: float
    post_scale: float


ACTIVATIONS = {
    ("tanh", "libm"): Activation("tanh", _libm_tanh, _dtanh, SQRT2, 1.0),
    ("tanh", "fast"): Activation("tanh", fast_tanh, _dtanh, SQRT2, 1.0),
    ("relu", "libm"): Activation("relu", _relu, _drelu, 1.0, SQRT2),
    ("relu", "fast"): Activation("relu", _relu, _drelu, 1.0, SQRT2),
    ("identity", "libm"): Activation("identity", _identity, _didentity, 1.0, 1.0),
    ("identity", "fast"): Activation("identity", _identity, _didentity, 1.0, 1.0),
    # The exact (erf) GELU, torch.nn.GELU()'s default; erf has no vectorized variant here,
    # so "fast" is libm's too.
    ("gelu", "libm"): Activation("gelu", _gelu, _dgelu, 1.0, 1.0),
    ("gelu", "fast"): Activation("gelu", _gelu, _dgelu, 1.0, 1.0),
}
