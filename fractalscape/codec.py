"""How a map's readouts are kept on disk: the compact store format and its inverse.

:data:`STORE_FORMAT` 2 (measured in docs/benchmarks.md): ``final_loss`` is kept
as ``final_loss_log10`` (float32 log10 of its absolute value, rounded to
multiples of :data:`LOSS_LOG10_QUANTUM`, so it compresses) and
``final_loss_negative`` (its sign); ``escape_step`` as int16 when the steps
fit; every variable is compressed with :func:`compressor`'s choice. Format 1
(float64 ``final_loss``, int32 ``escape_step``) is read as well.
:mod:`fractalscape.store` writes and reads the stores.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: Layout of the arrays in map.zarr: 1 (attribute absent) float64 final_loss and int32 escape_step; 2 compact.
STORE_FORMAT = 2
#: Stored log10 |final_loss| values are multiples of this (2**-10 decade: relative error <= 0.113 %).
LOSS_LOG10_QUANTUM = 2.0**-10
#: The compressor of the float variables (the stored losses, the score): zstd level 5 after byte shuffle.
COMPRESSOR = {"name": "blosc", "configuration": {"cname": "zstd", "clevel": 5, "shuffle": "shuffle"}}
#: The compressor of the labels, escape steps, coordinates and overview levels: zstd level 1. On a block
#: of liu-multiplicative-2d-billion, level 5 compressed the labels and escape steps 5x slower for 20-35 %
#: fewer bytes, a small share of the store (``python benchmarks/bench_codecs.py STORE``, docs/benchmarks.md).
FAST_COMPRESSOR = {"name": "blosc", "configuration": {"cname": "zstd", "clevel": 1, "shuffle": "shuffle"}}
#: Variables whose digits are worth the slower level.
_DENSE = ("final_loss_log10", "final_loss", "score")


def compressor(name: str) -> dict:
    """The compressor of variable ``name`` of map.zarr (:data:`COMPRESSOR` or :data:`FAST_COMPRESSOR`).

    >>> compressor("final_loss_log10")["configuration"]["clevel"], compressor("escape_step")["configuration"]["clevel"]
    (5, 1)
    """
    return COMPRESSOR if name in _DENSE else FAST_COMPRESSOR


def log10_abs(loss: np.ndarray) -> np.ndarray:
    """``log10 |loss|`` rounded to :data:`LOSS_LOG10_QUANTUM`, as float32 (0 -> -inf, inf -> inf, nan -> nan)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.log10(np.abs(loss)) / LOSS_LOG10_QUANTUM
    # |log10| < 2**13, so every multiple of 2**-10 is exact in float32
    return (np.round(scaled) * LOSS_LOG10_QUANTUM).astype(np.float32)


def stored_final_loss(loss) -> np.ndarray:
    """What a compact store gives back for ``loss`` (float64): ``sign * 10**log10_abs``.

    Examples
    --------
    >>> stored_final_loss(np.array([0.0, -100.0, 1e300, np.inf, np.nan])).tolist()
    [0.0, -100.0, 1e+300, inf, nan]
    >>> float(abs(stored_final_loss(np.array([0.1234567]))[0] / 0.1234567 - 1)) < 1.13e-3
    True
    """
    loss = np.asarray(loss, dtype=np.float64)
    return decode_loss(log10_abs(loss), loss < 0)


def decode_loss(log10_abs, negative):
    return np.where(negative, -1.0, 1.0) * 10.0 ** np.asarray(log10_abs, dtype=np.float64)


def encoded(ds: xr.Dataset, full_loss: bool, compact: bool) -> xr.Dataset:
    """The variables a store keeps for ``ds``: compact ones unless ``compact`` is False (a format-1 store)."""
    if not compact or "final_loss" not in ds:
        return ds
    loss = ds.final_loss
    kept = {
        "final_loss_log10": xr.apply_ufunc(log10_abs, loss, dask="parallelized", output_dtypes=[np.float32],
                                           keep_attrs=False).assign_attrs(
            description="log10 |loss at the last step taken|, rounded to multiples of "
                        f"{LOSS_LOG10_QUANTUM!r} (-inf: loss 0)"),
        "final_loss_negative": (loss < 0).assign_attrs(description="whether the loss at the last step taken is < 0"),
    }
    out = ds.assign(kept)
    if not full_loss:
        out = out.drop_vars("final_loss")
    if ds.attrs["steps"] < np.iinfo(np.int16).max:
        out["escape_step"] = ds.escape_step.astype(np.int16)
    return out.assign_attrs(store_format=STORE_FORMAT, full_loss=int(full_loss))


def decoded(ds: xr.Dataset) -> xr.Dataset:
    """A stored map's Dataset as :func:`fractalscape.trainability` returns it (any store format)."""
    if "final_loss_log10" in ds:
        if "final_loss" not in ds:
            loss = xr.apply_ufunc(decode_loss, ds.final_loss_log10, ds.final_loss_negative, dask="parallelized",
                                  output_dtypes=[np.float64])
            ds["final_loss"] = loss.assign_attrs(
                description="loss at the last step taken (stored as float32 log10 |loss| rounded to "
                            f"{LOSS_LOG10_QUANTUM!r}: relative error <= 0.113 %)")
        ds = ds.drop_vars(["final_loss_log10", "final_loss_negative"])
    if "escape_step" in ds and ds.escape_step.dtype != np.int32:
        ds["escape_step"] = ds.escape_step.astype(np.int32)
    first = [name for name in ("diverged", "escape_step", "final_loss", "score") if name in ds]
    return ds[first + [name for name in ds.data_vars if name not in first]]
