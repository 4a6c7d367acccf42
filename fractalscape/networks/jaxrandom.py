"""JAX's random numbers in plain NumPy, bit for bit: ``PRNGKey``, ``split``, ``normal``, ``randint``.

Sohl-Dickstein's notebook draws its weights, data and minibatches with
``jax.random`` in float64 (``jax_enable_x64``). This module reproduces those
draws without JAX, so that ``NetworkModel(..., rng="jax")`` trains his
networks exactly. What is matched, and checked against JAX itself by
``tests/test_jaxrandom.py``:

* the default PRNG, ``threefry2x32``: the 20-round Threefry-2x32 hash of
  Salmon et al. (2011), "Parallel random numbers: as easy as 1, 2, 3", as
  ``jax._src.random.threefry2x32`` writes it;
* ``jax_threefry_partitionable=True`` (JAX's default since 0.5.0): the
  counter of element ``i`` of a draw is the 64-bit ``i`` itself, so
  ``split(key, n)[i]`` does not depend on ``n``. ``partitionable=False``
  gives the older scheme, JAX's default before 0.5.0 (January 2025), the
  one the paper's figures (February 2024) were drawn with: its windows lie
  on the boundary of ``NetworkModel(rng="jax-2024")``'s networks only
  (``benchmarks/bench_sd_tiles.py``);
* ``normal`` and ``uniform`` in float64, ``randint`` in int64, the dtypes of
  the notebook's ``jax_enable_x64``: 64 random bits per value, the top 52
  as the mantissa of a float in ``[1, 2)``, and ``sqrt(2) * erf_inv(u)``
  for ``u`` uniform in ``(-1, 1)``;
* XLA's CPU code for ``erf_inv`` (Giles' float64 polynomials, with its
  ``log1p``, a Cephes rational function below ``sqrt(2) - 1``): XLA's CPU
  backend contracts each ``a * b + c`` into a fused multiply-add, so
  :func:`fma` emulates one exactly in NumPy, and ``log`` is the C
  library's (``math.log``), as XLA calls it.

Matched: JAX/jaxlib 0.10.2 on x86-64 CPUs with FMA (:data:`JAX_VERSION`).
Integer streams (keys, bits, ``randint``) are exact integer arithmetic and
do not depend on the backend; ``normal`` on a CPU without FMA, or on a GPU
or TPU (other ``log1p`` and ``erf_inv`` code), may differ in the last bits
(not checked).

Keys are ``uint32`` arrays of shape ``(..., 2)``: leading axes are a batch of
keys, as under ``jax.vmap``, and every draw gets them as leading axes.

Examples
--------
>>> key = prng_key(0)
>>> key.tolist()
[0, 0]
>>> key, sub = split(key)
>>> normal(sub, (3,)).round(6).tolist()
[-1.400884, 1.432145, 0.624811]
>>> randint(key, (5,), 0, 72).tolist()
[32, 4, 20, 6, 65]
"""

from __future__ import annotations

import math

import numpy as np

#: The JAX release these streams are checked against (CPU, x86-64 with FMA).
JAX_VERSION = "0.10.2"
#: JAX's default of ``jax_threefry_partitionable`` in that release.
THREEFRY_PARTITIONABLE = True

_U32 = np.uint32
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_KS_PARITY = 0x1BD11BDA


def _rotate_left(x, d):
    return (x << _U32(d)) | (x >> _U32(32 - d))


def threefry2x32(key: np.ndarray, x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Threefry-2x32 hash (20 rounds) of the counter words ``(x0, x1)`` under ``key``.

    Parameters
    ----------
    key : uint32 array, shape ``(..., 2)``
        The key words; leading axes broadcast against ``x0`` and ``x1``.
    x0, x1 : uint32 arrays
        The two words of each counter.

    Returns
    -------
    (uint32 array, uint32 array)
        The two words of each hash, broadcast to a common shape.

    Examples
    --------
    The known-answer test of Salmon et al. (2011), also in JAX's tests:

    >>> key = np.array([0x13198A2E, 0x03707344], np.uint32)
    >>> y0, y1 = threefry2x32(key, np.uint32(0x243F6A88), np.uint32(0x85A308D3))
    >>> hex(int(y0)), hex(int(y1))
    ('0xc4923a9c', '0x483df7a0')
    """
    key, x0, x1 = np.asarray(key, _U32), np.asarray(x0, _U32), np.asarray(x1, _U32)
    shape = np.broadcast_shapes(key.shape[:-1], x0.shape, x1.shape)
    # Flat 1-D arrays throughout: NumPy's scalar arithmetic would warn when a sum wraps.
    key = np.broadcast_to(key, shape + (2,)).reshape(-1, 2)
    k0, k1 = key[:, 0], key[:, 1]
    ks = (k0, k1, k0 ^ k1 ^ _U32(_KS_PARITY))
    a = np.broadcast_to(x0, shape).ravel() + ks[0]
    b = np.broadcast_to(x1, shape).ravel() + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            a += b
            b = _rotate_left(b, r) ^ a
        a += ks[(i + 1) % 3]
        b += ks[(i + 2) % 3] + _U32(i + 1)
    return a.reshape(shape), b.reshape(shape)


def prng_key(seed: int) -> np.ndarray:
    """``jax.random.PRNGKey(seed)`` under ``jax_enable_x64``: the 64-bit seed's high and low words.

    Examples
    --------
    >>> prng_key(42).tolist(), prng_key(2**32 + 7).tolist()
    ([0, 42], [1, 7])
    """
    seed = int(seed)
    if not -(2**63) <= seed < 2**63:
        raise ValueError(f"a PRNG seed must fit in int64, got {seed}")
    seed %= 2**64
    return np.array([seed >> 32, seed & 0xFFFFFFFF], _U32)


def _counters(size: int) -> tuple[np.ndarray, np.ndarray]:
    """High and low words of the 64-bit counters ``0 .. size - 1``."""
    index = np.arange(size, dtype=np.uint64)
    return (index >> np.uint64(32)).astype(_U32), (index & np.uint64(0xFFFFFFFF)).astype(_U32)


def _hash_counts(key: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """JAX's ``threefry_2x32(key, counts)`` (the unpartitionable scheme): hash the two halves."""
    odd = len(counts) % 2
    if odd:
        counts = np.concatenate([counts, np.zeros(1, _U32)])
    half = len(counts) // 2
    y0, y1 = threefry2x32(key[..., None, :], counts[:half], counts[half:])
    out = np.concatenate([y0, y1], axis=-1)
    return out[..., : out.shape[-1] - odd]


def split(key: np.ndarray, num: int = 2, *, partitionable: bool = THREEFRY_PARTITIONABLE) -> np.ndarray:
    """``jax.random.split(key, num)``: ``num`` new keys, shape ``key.shape[:-1] + (num, 2)``.

    Examples
    --------
    >>> split(prng_key(0)).tolist()
    [[1797259609, 2579123966], [928981903, 3453687069]]
    >>> bool((split(prng_key(0), 5)[:2] == split(prng_key(0), 2)).all())
    True
    """
    key = np.asarray(key, _U32)
    if partitionable:
        hi, lo = _counters(num)
        y0, y1 = threefry2x32(key[..., None, :], hi, lo)
        return np.stack([y0, y1], axis=-1)
    words = _hash_counts(key, np.arange(2 * num, dtype=_U32))
    return words.reshape(key.shape[:-1] + (num, 2))


def random_bits(key: np.ndarray, bit_width: int, shape: tuple[int, ...], *,
                partitionable: bool = THREEFRY_PARTITIONABLE) -> np.ndarray:
    """``jax.random.bits``: uniform ``uint32`` or ``uint64`` words, shape ``key.shape[:-1] + shape``.

    Examples
    --------
    >>> random_bits(prng_key(0), 32, (2,)).tolist()
    [4070199207, 4202968722]
    """
    key = np.asarray(key, _U32)
    shape = tuple(int(n) for n in shape)
    size = math.prod(shape)
    if bit_width not in (32, 64):
        raise ValueError(f"bit_width must be 32 or 64, got {bit_width}")
    if partitionable:
        hi, lo = _counters(size)
        y0, y1 = threefry2x32(key[..., None, :], hi, lo)
        if bit_width == 32:
            bits = y0 ^ y1
        else:
            bits = (y0.astype(np.uint64) << np.uint64(32)) | y1.astype(np.uint64)
    else:
        count = size * bit_width // 32
        if count >= 2**32 - 1:
            raise ValueError(f"draws of {size} values need more than 2**32 - 1 counters; not implemented")
        words = _hash_counts(key, np.arange(count, dtype=_U32))
        if bit_width == 32:
            bits = words
        else:
            bits = (words[..., :size].astype(np.uint64) << np.uint64(32)) | words[..., size:].astype(np.uint64)
    return bits.reshape(key.shape[:-1] + shape)


def _two_sum(a, b):
    """``s = a + b`` rounded and its exact error (Knuth)."""
    s = a + b
    bv = s - a
    return s, (a - (s - bv)) + (b - bv)


def _two_product(a, b):
    """``p = a * b`` rounded and its exact error (Dekker, Veltkamp's split)."""
    p = a * b
    ca, cb = 134217729.0 * a, 134217729.0 * b  # 2**27 + 1
    ah, bh = ca - (ca - a), cb - (cb - b)
    al, bl = a - ah, b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def fma(a, b, c) -> np.ndarray:
    """``a * b + c`` rounded once, in float64, as a fused multiply-add instruction computes it.

    The product and the sum are split into exact parts, the two small parts
    are added with rounding to odd, then the sum is rounded to nearest: this
    is correctly rounded (Boldo and Melquiond 2008, "Emulation of FMA and
    correctly rounded sums: proved algorithms using rounding to odd").
    Exact for finite arguments whose product neither overflows nor comes
    within 2**-969 of underflow.

    Examples
    --------
    >>> a = 1.0 + 2.0**-30
    >>> float(fma(a, a, -1.0)) == 2.0**-29 + 2.0**-60, float(a * a - 1.0) == 2.0**-29
    (True, True)
    """
    a, b, c = (np.asarray(v, np.float64) for v in (a, b, c))
    p, p_err = _two_product(a, b)
    s, s_err = _two_sum(c, p)
    tail, tail_err = _two_sum(s_err, p_err)
    # Round tail to odd: when inexact and even, step one ulp towards the exact value.
    inexact_even = (tail_err != 0.0) & ((tail.view(np.int64) & 1) == 0)
    tail = np.where(inexact_even, np.nextafter(tail, np.copysign(np.inf, tail_err)), tail)
    return np.where(tail == 0.0, s, s + tail)  # s has the sign of an exact zero


def _horner_fma(coefficients, x):
    """``c[0] x^n + ... + c[n]`` by Horner's rule, one fused multiply-add per step, as XLA emits it."""
    p = np.full_like(x, coefficients[0])
    for c in coefficients[1:]:
        p = fma(p, x, c)
    return p


# XLA's log1p (xla/codegen, CPU): a Cephes rational function where |x| < sqrt(2) - 1.
_LOG1P_NUMERATOR = (
    4.5270000862445199635215e-5, 4.9854102823193375972212e-1, 6.5787325942061044846969e0,
    2.9911919328553073277375e1, 6.0949667980987787057556e1, 5.7112963590585538103336e1,
    2.0039553499201281259648e1,
)  # fmt: skip
_LOG1P_DENOMINATOR = (
    1.0, 1.5062909083469192043167e1, 8.3047565967967209469434e1, 2.2176239823732856465394e2,
    3.0909872225312059774938e2, 2.1642788614495947685003e2, 6.0118660497603843919306e1,
)  # fmt: skip
_LOG1P_SMALL = 0.41421356237309504880


def xla_log1p(x) -> np.ndarray:
    """``log(1 + x)`` as XLA's CPU backend computes it for float64, bit for bit.

    Below ``sqrt(2) - 1`` in magnitude,
    ``x + fma(x**2, -0.5, (x * x**2) * P(x) / Q(x))`` with Cephes' ``P`` and
    ``Q`` (each by Horner's rule with fused multiply-adds); elsewhere
    ``log(x + 1)`` with the C library's ``log``.

    Examples
    --------
    >>> float(xla_log1p(-0.5)) == math.log(0.5), abs(float(xla_log1p(1e-3)) - math.log1p(1e-3)) < 1e-18
    (True, True)
    """
    x = np.asarray(x, np.float64)
    out = np.empty_like(x)
    is_small = np.abs(x) < _LOG1P_SMALL
    s = x[is_small]
    s2 = s * s
    ratio = _horner_fma(_LOG1P_NUMERATOR, s) / _horner_fma(_LOG1P_DENOMINATOR, s)
    out[is_small] = s + fma(s2, -0.5, (s * s2) * ratio)
    out[~is_small] = [_log(v) for v in x[~is_small] + 1.0]
    return out


def _log(v: float) -> float:
    """The C library's ``log``, with IEEE results where ``math.log`` raises."""
    return math.log(v) if v > 0.0 else (-math.inf if v == 0.0 else math.nan)


# Giles (2010), "Approximating the erfinv function", float64: as in XLA and StableHLO's chlo.erf_inv.
_ERF_INV_BELOW_6_25 = (
    -3.6444120640178196996e-21, -1.685059138182016589e-19, 1.2858480715256400167e-18,
    1.115787767802518096e-17, -1.333171662854620906e-16, 2.0972767875968561637e-17,
    6.6376381343583238325e-15, -4.0545662729752068639e-14, -8.1519341976054721522e-14,
    2.6335093153082322977e-12, -1.2975133253453532498e-11, -5.4154120542946279317e-11,
    1.051212273321532285e-09, -4.1126339803469836976e-09, -2.9070369957882005086e-08,
    4.2347877827932403518e-07, -1.3654692000834678645e-06, -1.3882523362786468719e-05,
    0.0001867342080340571352, -0.00074070253416626697512, -0.0060336708714301490533,
    0.24015818242558961693, 1.6536545626831027356,
)  # fmt: skip
_ERF_INV_BELOW_16 = (
    2.2137376921775787049e-09, 9.0756561938885390979e-08, -2.7517406297064545428e-07,
    1.8239629214389227755e-08, 1.5027403968909827627e-06, -4.013867526981545969e-06,
    2.9234449089955446044e-06, 1.2475304481671778723e-05, -4.7318229009055733981e-05,
    6.8284851459573175448e-05, 2.4031110387097893999e-05, -0.0003550375203628474796,
    0.00095328937973738049703, -0.0016882755560235047313, 0.0024914420961078508066,
    -0.0037512085075692412107, 0.005370914553590063617, 1.0052589676941592334,
    3.0838856104922207635,
)  # fmt: skip
_ERF_INV_ABOVE_16 = (
    -2.7109920616438573243e-11, -2.5556418169965252055e-10, 1.5076572693500548083e-09,
    -3.7894654401267369937e-09, 7.6157012080783393804e-09, -1.4960026627149240478e-08,
    2.9147953450901080826e-08, -6.7711997758452339498e-08, 2.2900482228026654717e-07,
    -9.9298272942317002539e-07, 4.5260625972231537039e-06, -1.9681778105531670567e-05,
    7.5995277030017761139e-05, -0.00021503011930044477347, -0.00013871931833623122026,
    1.0103004648645343977, 4.8499064014085844221,
)  # fmt: skip


def erf_inv(x) -> np.ndarray:
    """``jax.lax.erf_inv`` in float64 on CPU, bit for bit: Giles' three polynomials in ``w = -log1p(-x*x)``.

    Examples
    --------
    >>> from math import erf
    >>> y = erf_inv(np.array([-0.5, 0.0, 0.9, 1.0]))
    >>> [round(erf(v), 12) for v in y[:3]], float(y[3])
    ([-0.5, 0.0, 0.9], inf)
    """
    x = np.asarray(x, np.float64)
    with np.errstate(all="ignore"):
        w = -xla_log1p(x * -x)
        root = np.sqrt(np.maximum(w, 0.0))
        below_6_25, below_16 = w < 6.25, w < 16.0
        p = np.where(below_16, _horner_fma(_ERF_INV_BELOW_16, root - 3.25), _horner_fma(_ERF_INV_ABOVE_16, root - 5.0))
        p = np.where(below_6_25, _horner_fma(_ERF_INV_BELOW_6_25, w - 3.125), p)
        return np.where(np.abs(x) == 1.0, x * np.inf, p * x)


def uniform(key: np.ndarray, shape: tuple[int, ...], minval: float = 0.0, maxval: float = 1.0, *,
            partitionable: bool = THREEFRY_PARTITIONABLE) -> np.ndarray:
    """``jax.random.uniform(key, shape, float64, minval, maxval)``: in ``[minval, maxval)``.

    Examples
    --------
    >>> u = uniform(prng_key(0), (1000,))
    >>> bool((0.0 <= u).all() and (u < 1.0).all())
    True
    """
    bits = random_bits(key, 64, shape, partitionable=partitionable)
    one = np.float64(1.0).view(np.uint64)
    floats = ((bits >> np.uint64(12)) | one).view(np.float64) - 1.0
    lo, hi = np.float64(minval), np.float64(maxval)
    return np.maximum(lo, fma(floats, hi - lo, lo))


def normal(key: np.ndarray, shape: tuple[int, ...], *, partitionable: bool = THREEFRY_PARTITIONABLE) -> np.ndarray:
    """``jax.random.normal(key, shape, float64)``: ``sqrt(2) * erf_inv(u)``, ``u`` uniform in ``(-1, 1)``.

    Examples
    --------
    >>> normal(prng_key(0), (2, 2)).shape
    (2, 2)
    """
    lo = np.nextafter(-1.0, 0.0)
    u = uniform(key, shape, lo, 1.0, partitionable=partitionable)
    return np.float64(np.sqrt(2.0)) * erf_inv(u)


def randint(key: np.ndarray, shape: tuple[int, ...], minval: int, maxval: int, *,
            partitionable: bool = THREEFRY_PARTITIONABLE) -> np.ndarray:
    """``jax.random.randint(key, shape, minval, maxval)`` in int64: in ``[minval, maxval)``.

    JAX's modulus method: two 64-bit words per value, combined modulo the span.

    Examples
    --------
    >>> r = randint(prng_key(1), (1000,), -3, 4)
    >>> int(r.min()), int(r.max())
    (-3, 3)
    """
    lo, hi = int(minval), int(maxval)
    if not -(2**63) <= lo < 2**63 or not -(2**63) <= hi < 2**63:
        raise ValueError(f"randint bounds must fit in int64, got [{lo}, {hi})")
    key = np.asarray(key, _U32)
    shape = tuple(int(n) for n in shape)
    keys = split(key, partitionable=partitionable)
    higher = random_bits(keys[..., 0, :], 64, shape, partitionable=partitionable).ravel()
    lower = random_bits(keys[..., 1, :], 64, shape, partitionable=partitionable).ravel()
    span = np.array([(hi - lo) % 2**64 if hi > lo else 1], np.uint64)
    multiplier = np.array([2**32], np.uint64) % span
    multiplier = (multiplier * multiplier) % span
    offset = ((higher % span) * multiplier + lower % span) % span
    return (np.int64(lo) + offset.astype(np.int64)).reshape(key.shape[:-1] + shape)
