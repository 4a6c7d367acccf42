"""Hidden-layer nonlinearities of Sohl-Dickstein's networks, and a vectorizable tanh.

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
    across lanes. For ``|x| < 0.625`` Cephes' rational minimax
    ``x + x z P(z)/Q(z)`` (``z = x*x``); above it ``1 - 2/(exp(2|x|) + 1)``
    with fdlibm's ``__ieee754_exp`` reduction and kernel (branch-free; the
    power of two is built by exact multiplications) and ``|x|`` clamped at 22,
    where tanh rounds to 1. Within 2 ulp of libm, equal to it for most
    arguments (the tests measure both over a million arguments); NaN stays
    NaN and +-inf gives +-1.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

from numba import njit

SQRT2 = math.sqrt(2.0)

# Cephes tanh.c: tanh(x) = x + x z P(z) / Q(z), z = x*x, for |x| < 0.625.
_P0, _P1, _P2 = -9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3
_Q0, _Q1, _Q2 = 1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3
_SMALL = 0.625
# Beyond 22, 2 / (exp(2x) + 1) < 2**-60: tanh rounds to 1 (glibc uses the same cut).
_LARGE = 22.0
# fdlibm e_exp.c: ln2 split so that k * LN2_HI is exact, and the minimax kernel of exp(r).
_INVLN2 = 1.44269504088896338700e00
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_E1 = 1.66666666666666019037e-01
_E2 = -2.77777777770155933842e-03
_E3 = 6.61375632143793436117e-05
_E4 = -1.65339022054652515390e-06
_E5 = 4.13813679705723846039e-08
# Adding and subtracting 1.5 * 2**52 rounds a double below 2**51 to the nearest integer.
_ROUND = 6755399441055744.0


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
    a = min(abs(x), _LARGE)  # min(nan, 22) is 22 here: NaN is restored at the end
    small = a < _SMALL
    # Small arguments: Cephes' rational function, a + a z P(z) / Q(z).
    z = a * a
    p = (_P0 * z + _P1) * z + _P2
    q = ((z + _Q0) * z + _Q1) * z + _Q2
    # Large arguments: 1 - 2 / (exp(2a) + 1), exp by fdlibm with 2a in [1.25, 44].
    y = 2.0 * a
    k = (y * _INVLN2 + _ROUND) - _ROUND  # 2 <= k <= 64
    hi = y - k * _LN2_HI
    lo = k * _LN2_LO
    r = hi - lo
    rr = r * r
    c = r - rr * (_E1 + rr * (_E2 + rr * (_E3 + rr * (_E4 + rr * _E5))))
    exp_r = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    n = int(k)
    scale = 2.0 if n & 1 else 1.0
    scale *= 4.0 if n & 2 else 1.0
    scale *= 16.0 if n & 4 else 1.0
    scale *= 256.0 if n & 8 else 1.0
    scale *= 65536.0 if n & 16 else 1.0
    scale *= 4294967296.0 if n & 32 else 1.0
    scale *= 18446744073709551616.0 if n & 64 else 1.0
    # One division serves both branches: select its operands first.
    ratio = (a * (z * p) if small else 2.0) / (q if small else exp_r * scale + 1.0)
    t = math.copysign(a + ratio if small else 1.0 - ratio, x)
    return t if x == x else x


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
}
