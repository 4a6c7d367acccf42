"""Keyframes of a zoom on disk: one resumable map per keyframe, stacked once all are finished.

Layout of a zoom directory::

    zoom.json               what is zoomed (config, centre, size): written first
    keyframes/000/ ...      keyframe i as an ordinary map directory (map.zarr, summary.json)
    zoom.zarr               every keyframe stacked: variables (frame, y, x), windows per frame
    summary.json            per-frame dimensions and the pooled estimate: written last

Each keyframe is written by :func:`fractalscape.store.write_map`, so it is
resumable block by block and its ``summary.json`` is the marker that it is
finished: a rerun skips finished keyframes and finishes a half-written one
from its stored blocks. This reuses the store's tested resume and damage
checks instead of a second marker scheme, and every keyframe stays a map that
``fractalscape render``/``dimension`` open directly. The stack duplicates the
keyframes (about 21 bytes a pixel) but is a plain copy, written frame by
frame at the end; x is the config's first axis, y its second.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import xarray as xr
import zarr

from fractalscape.config import open_config
from fractalscape.dimension import DimensionResult, dimension
from fractalscape.errors import ConfigError
from fractalscape.store import Location, is_complete, open_map, write_file, write_map, write_summary
from fractalscape.zoom.windows import keyframe_config

SPEC_NAME = "zoom.json"
STACK_NAME = "zoom.zarr"
KEYFRAMES_DIR = "keyframes"
VARIABLES = ("diverged", "escape_step", "final_loss", "score")


def keyframe_dir(out: Location, level: int) -> str:
    """Location of keyframe ``level``'s map directory."""
    return out.join(KEYFRAMES_DIR, f"{level:03d}")


def claim(out_dir, spec: dict) -> Location:
    """``out_dir`` ready for the zoom ``spec``: created, and refused if it holds another zoom."""
    out = Location(out_dir)
    if out.fs.exists(out.root) and not out.fs.isdir(out.root):
        raise ConfigError(f"output path {str(out)!r} is a file; give a directory for the zoom")
    spec_path = out.path(SPEC_NAME)
    if out.fs.exists(spec_path):
        stored = json.loads(out.fs.cat_file(spec_path))
        if stored != spec:
            changed = sorted(k for k in spec if stored.get(k) != spec[k])
            raise ConfigError(
                f"{str(out)!r} already holds a zoom with another {', '.join(changed) or 'layout'}; "
                "choose another out_dir or delete that directory"
            )
    else:
        try:
            write_file(out_dir, SPEC_NAME, json.dumps(spec, indent=2, sort_keys=True).encode())
        except OSError as err:
            raise ConfigError(f"cannot write the zoom into {str(out)!r}: {err.strerror or err}") from None
    if out.fs.exists(out.path("summary.json")):
        out.fs.rm(out.path("summary.json"))
    return out


def compute_keyframes(out: Location, raw: dict, center, size, n: int, *, progress: bool = False) -> list[dict]:
    """Compute keyframes ``0..n`` that are not finished yet; one record per keyframe (its window and timing)."""
    records = []
    for level in range(n + 1):
        where = keyframe_dir(out, level)
        config = keyframe_config(raw, center, size, level)
        start = time.perf_counter()
        if is_complete(where):
            info, computed = json.loads(Location(where).fs.cat_file(Location(where).path("summary.json"))), False
        else:
            if progress:
                print(f"keyframe {level}/{n}", file=sys.stderr, flush=True)
            info = write_map(open_config(config), where, progress=progress)
            write_summary(where, info)
            computed = True
        records.append({
            "frame": level,
            "window": {a["name"]: [a["start"], a["stop"]] for a in config["axis"]},
            "fraction_diverged": info["fraction_diverged"],
            "computed": computed,
            "seconds": time.perf_counter() - start if computed else None,
            "compute_seconds": info.get("compute_seconds"),  # when it was computed, in this run or before
        })
    return records


def write_stack(out: Location, raw: dict, center, size, n: int) -> xr.Dataset:
    """Stack keyframes ``0..n`` into ``zoom.zarr`` (frame by frame) and return it, opened lazily.

    Dims ``(frame, y, x)`` for a 2-D zoom, ``(frame, x)`` for a 1-D one.
    """
    names = [a["name"] for a in raw["axis"]]
    dims = "xy"[: len(names)]
    store = out.join(STACK_NAME)
    options = out.zarr_options()
    for level in range(n + 1):
        frame = open_map(keyframe_dir(out, level))
        config = json.loads(frame.attrs["config"])
        window = {f"{d}_{end}": ("frame", [float(config["axis"][k][end])])
                  for k, d in enumerate(dims) for end in ("start", "stop")}
        layer = (frame[[v for v in VARIABLES if v in frame]]
                 .rename(dict(zip(names, dims))).transpose(*reversed(dims))
                 .drop_vars(list(dims)).expand_dims(frame=[level])
                 .assign_coords(window)
                 .assign_coords({name: (("frame", d), frame[name].values[None]) for name, d in zip(names, dims)}))
        layer = layer.load()
        layer.attrs = {"zoom": json.dumps({"config": raw, "center": list(center), "size": list(size)}),
                       **{f"{d}_axis": name for name, d in zip(names, dims)},
                       **{f"{d}_scale": axis.get("scale", "linear") for axis, d in zip(raw["axis"], dims)},
                       "model": frame.attrs.get("model", ""), "steps": frame.attrs.get("steps", 0)}
        if level == 0:
            encoding = {v: {"chunks": (1, *layer[v].shape[1:])} for v in layer.data_vars}
            layer.to_zarr(store, mode="w", consolidated=False, encoding=encoding, **options)
        else:
            layer.to_zarr(store, append_dim="frame", consolidated=False, **options)
    zarr.open_group(store, mode="r+", **options).attrs["frames_complete"] = n + 1
    return open_stack(str(out))


def open_stack(zoom_dir) -> xr.Dataset:
    """The finished keyframe stack of a zoom directory (dims frame, y, x), opened lazily.

    Examples
    --------
    >>> open_stack("/nonexistent")
    Traceback (most recent call last):
    ...
    fractalscape.errors.ConfigError: no finished zoom at '/nonexistent': expected a directory written by zoom()
    """
    out = Location(zoom_dir)
    try:
        group = zarr.open_group(out.join(STACK_NAME), mode="r", **out.zarr_options())
        complete = group.attrs.get("frames_complete")
    except Exception:  # noqa: BLE001  (no store, or not zarr: no zoom either way)
        complete = None
    if complete is None:
        raise ConfigError(f"no finished zoom at {str(out)!r}: expected a directory written by zoom()")
    stack = xr.open_zarr(out.join(STACK_NAME), consolidated=False, **out.zarr_options())
    return stack.isel(frame=slice(0, complete))


def _measure(labels, method: str) -> tuple[DimensionResult | None, dict]:
    try:
        result = dimension(labels, method)
    except ConfigError as err:
        return None, {"skipped": str(err)}
    return result, result.to_dict()


def _pool(results: list[DimensionResult]) -> DimensionResult:
    """Sohl-Dickstein's estimate: the median of the local slopes of every frame's median-slope count."""
    if not results:
        raise ConfigError("no keyframe of this zoom has a boundary that median-slope can measure; "
                          "zoom into the boundary (move center onto it) or use a larger size")
    slopes = np.concatenate([r.slopes for r in results])
    median = float(np.median(slopes))
    mad_sigma = 1.4826 * np.median(np.abs(slopes - median))
    stderr = float(np.sqrt(np.pi / 2) * mad_sigma / np.sqrt(len(slopes)))
    sizes = results[0].sizes
    counts = tuple(int(sum(r.counts[k] for r in results if r.sizes == sizes)) for k in range(len(sizes)))
    return DimensionResult("sohl-dickstein", median, stderr, sizes, counts, results[0].fit_range,
                           tuple(float(s) for s in slopes))


def measure_frames(stack: xr.Dataset, records: list[dict]) -> tuple[DimensionResult | None, dict]:
    """Add each keyframe's dimensions to ``records``; return the pooled estimate.

    2-D keyframes: box count and median slope, pooled as Sohl-Dickstein
    pools them. 1-D keyframes (Liu's strips): dyadic count (keyframes of
    ``2**k + 1`` points) and box count; the pooled record then holds the
    median of the frames' dyadic dimensions.
    """
    if stack.diverged.ndim == 2:
        return None, _measure_strips(stack, records)
    measured = []
    for record in records:
        labels = stack.diverged.isel(frame=record["frame"]).values
        record["boxcount"] = _measure(labels, "boxcount")[1]
        result, record["median_slope"] = _measure(labels, "median-slope")
        if result is not None:
            measured.append(result)
    try:
        pooled = _pool(measured)
    except ConfigError as err:
        return None, {"skipped": str(err)}
    return pooled, {"method": "sohl-dickstein", "dimension": pooled.dimension, "stderr": pooled.stderr,
                    "slopes": len(pooled.slopes), "frames": len(measured)}


def _measure_strips(stack: xr.Dataset, records: list[dict]) -> dict:
    """1-D keyframes: each one's dyadic and box-count dimension; the median and spread of the dyadic ones."""
    values = []
    for record in records:
        labels = stack.diverged.isel(frame=record["frame"]).values
        result, record["dyadic"] = _measure(labels, "dyadic")
        record["boxcount"] = _measure(labels, "boxcount")[1]
        if result is not None and np.isfinite(result.dimension):
            values.append(result.dimension)
    if not values:
        return {"skipped": "no keyframe of this 1-D zoom has a boundary the dyadic count can measure (keyframes "
                           "need 2**k + 1 points and both labels): zoom into the boundary or use --size 4097"}
    return {"method": "dyadic", "dimension": float(np.median(values)), "min": float(min(values)),
            "max": float(max(values)), "frames": len(values)}


def pooled_median_slope(zoom_dir) -> DimensionResult:
    """Sohl-Dickstein's dimension of a zoom: the median of the local box-count slopes pooled over its keyframes.

    Each keyframe's boundary is measured with ``dimension(frame, "median-slope")``
    (porespy's box sizes, local slopes ``-d log count / d log size``) and the
    slopes of all keyframes are pooled, as his ``estimate_fractal_dimension``
    pools porespy's slopes over the frames of his zoom videos. Keyframes
    without a measurable boundary are left out.

    Parameters
    ----------
    zoom_dir : str or path
        A directory written by :func:`fractalscape.zoom.zoom`.

    Returns
    -------
    DimensionResult
        ``method="sohl-dickstein"``; ``slopes`` holds every pooled slope,
        ``counts`` the box counts summed over the measured keyframes, and
        ``stderr`` the large-sample error of the median.

    Examples
    --------
    >>> import tempfile
    >>> from fractalscape.zoom import zoom
    >>> out = tempfile.mkdtemp()
    >>> _ = zoom("liu-multiplicative-2d", out, center=(0.75, 1.0), depth=0.3, size=(64, 64),
    ...          overrides=["descent.steps=100"], video=False)
    >>> result = pooled_median_slope(out)
    >>> result.method, len(result.slopes), 1.0 < result.dimension < 2.0
    ('sohl-dickstein', 20, True)
    """
    stack = open_stack(zoom_dir)
    measured = [_measure(stack.diverged.isel(frame=i).values, "median-slope")[0] for i in range(stack.sizes["frame"])]
    return _pool([r for r in measured if r is not None])
