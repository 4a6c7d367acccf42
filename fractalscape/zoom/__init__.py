"""Zooms into the trainability boundary: keyframes recomputed at every halving, and a video of them.

Sohl-Dickstein (2024) showed the boundary stays fractal over ten decades by
zooming: each keyframe is a new map of a window half as wide, computed at
full resolution (never resampled). :func:`zoom` does that for a 2-D config,
stores the keyframes resumably (:mod:`fractalscape.zoom.keyframes`), measures
each keyframe's boundary and pools the median-slope estimates
(:func:`pooled_median_slope`), and renders an MP4 between the keyframes
(:mod:`fractalscape.zoom.video`).
"""

from __future__ import annotations

import io
import json
import sys
import time

import numpy as np

from fractalscape.config import load_config, read_config, with_overrides
from fractalscape.errors import ConfigError
from fractalscape.store import write_file
from fractalscape.zoom.keyframes import (claim, compute_keyframes, measure_frames, open_stack, pooled_median_slope,
                                         write_stack)
from fractalscape.zoom.strips import strip_image
from fractalscape.zoom.video import (ColorScale, color_scale, colorize, encode_gif, encode_mp4, video_frames)
from fractalscape.zoom.windows import MAX_SIDE, check_zoom, deepest_halvings, halvings, keyframe_config, widened

__all__ = ["ColorScale", "color_scale", "colorize", "deepest_halvings", "halvings", "keyframe_config", "widened",
           "open_stack", "pooled_median_slope", "zoom"]

SUMMARY_NAME = "summary.json"
VIDEO_NAME = "zoom.mp4"
GIF_NAME = "zoom.gif"
STRIPS_DIR = "strips"


def _fixed_point(raw: dict, center, size) -> tuple[float, float]:
    """The centre's (row, col) in pixel index space of every keyframe image (rows from the top)."""
    position = []
    for axis, c, num in zip(raw["axis"], center, size):
        scale = axis.get("scale", "linear")
        u = (lambda v: np.log10(v)) if scale == "log" else (lambda v: v)
        position.append((u(c) - u(axis["start"])) / (u(axis["stop"]) - u(axis["start"])) * (num - 1))
    col, row_from_bottom = position
    return size[1] - 1 - row_from_bottom, col


def zoom(config, out_dir, *, center=None, depth, frames_per_doubling: int = 0, size=None, overrides=(),
         video: bool = True, gif: bool = False, progress: bool = False, outward: bool = False,
         video_scale: int = 1) -> dict:
    """Zoom ``depth`` decades into ``center`` of a 1-D or 2-D map: keyframes at every halving, their dimensions, a video.

    Keyframe ``i`` (``i = 0 .. n``, ``n = ceil(depth * log2(10))``) is the
    config's window scaled by ``2**-i`` about ``center`` in each axis' scale
    (log axes in log10), computed anew at ``size`` pixels through
    :func:`fractalscape.open_config`. Everything is checked before anything is
    computed, and an interrupted zoom resumes without recomputing finished
    keyframes (layout: :mod:`fractalscape.zoom.keyframes`).

    Parameters
    ----------
    config : dict, path or str
        A config with one or two swept axes (see :func:`fractalscape.load_config`).
        A 1-D zoom draws Liu's strips: per keyframe ``strips/NNN.png``, the
        swept value against the label and the escape step.
    out_dir : str or path
        The zoom directory (local path or fsspec URL).
    center : (float, float) or float
        The zoom's fixed point, in the axes' units, inside the config's window
        (one number for a 1-D config); default: the window's centre, in each
        axis' scale.
    depth : float
        Decades of zoom, > 0; refused past the float64 floor (pixel spacing
        below 8 ulp of the coordinates), with the deepest depth possible.
    frames_per_doubling : int
        Video frames per halving (exponential zoom with cross-fade); 0 shows
        only the keyframes.
    size : (int, int) or int, optional
        Keyframe pixels along the first and second axis (2 .. 8192; default
        256 x 256), or a 1-D keyframe's points (default ``2**12 + 1``, so that
        Liu's dyadic count applies).
    overrides : sequence of str
        ``KEY=VALUE`` assignments applied to the config first (``--set``).
    video, gif : bool
        Write ``zoom.mp4`` (H.264, sides cut to even) and ``zoom.gif``.
    video_scale : int
        The video's pixels per keyframe pixel along each side (1 .. 16;
        bilinear), so that a small keyframe makes a watchable video. The
        keyframes and every number are the same whatever it is.
    outward : bool
        Sohl-Dickstein's protocol: the config's window is the *last*
        keyframe (his tile), and the zoom starts ``depth`` decades out from
        it, widened by doubling about ``center`` (default: the window's
        centre, in each axis' scale).
    progress : bool
        Print a line per keyframe and each keyframe's block progress.

    Returns
    -------
    dict
        What ``summary.json`` holds: ``frames`` (per keyframe: ``window``,
        ``fraction_diverged``, ``boxcount`` and ``median_slope`` (1-D:
        ``dyadic``) dimensions or why they were skipped, ``computed``,
        ``seconds`` in this run, ``compute_seconds`` whenever it was computed), ``sohl_dickstein`` (pooled median of the median-slope
        local slopes and their number; 1-D: ``dyadic``, the median of the
        keyframes' dyadic dimensions),
        ``keyframes_computed``, ``compute_seconds`` (this run),
        ``keyframes_compute_seconds`` (every keyframe's, resumed ones included), ``encode_seconds``,
        ``video_frames`` and the written files.

    Examples
    --------
    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> summary = zoom("liu-multiplicative-2d", out, center=(0.75, 1.0), depth=0.3, size=(32, 32),
    ...                overrides=["descent.steps=50"], frames_per_doubling=2)
    >>> len(summary["frames"]), summary["frames"][1]["window"]
    (2, {'lr': [0.375, 1.125], 'x0': [-0.5, 1.5]})
    >>> summary["video_frames"], summary["files"]
    (3, ['zoom.mp4'])
    """
    raw = with_overrides(read_config(config), list(overrides))
    grid = load_config(raw).grid
    if outward:
        raw, center = widened(raw, center, depth)
        grid = load_config(raw).grid
    center, size, n = check_zoom(raw, grid, center, depth, size, frames_per_doubling)
    video_scale = _check_video_scale(video_scale, size)
    out = claim(out_dir, {"config": raw, "center": list(center), "size": list(size)})
    start = time.perf_counter()
    records = compute_keyframes(out, raw, center, size, n, progress=progress)
    compute_seconds = time.perf_counter() - start
    stack = write_stack(out, raw, center, size, n)
    start = time.perf_counter()
    _, pooled = measure_frames(stack, records)
    measure_seconds = time.perf_counter() - start
    summary = {
        "config": raw, "center": list(center), "depth": depth, "halvings": n, "size": list(size),
        "frames": records, ("sohl_dickstein" if len(size) == 2 else "dyadic"): pooled,
        "keyframes_computed": sum(r["computed"] for r in records), "keyframes_total": n + 1,
        "compute_seconds": compute_seconds,
        "keyframes_compute_seconds": sum(r["compute_seconds"] or 0.0 for r in records), "measure_seconds": measure_seconds,
        "frames_per_doubling": frames_per_doubling, "files": [],
    }
    summary.update(_render(out_dir, stack, raw, center, size, frames_per_doubling, video, gif, progress,
                           video_scale))
    write_file(out_dir, SUMMARY_NAME, json.dumps(summary, indent=2, sort_keys=True).encode())
    return summary


def _strips(out_dir, stack, raw) -> tuple[list[np.ndarray], list[str]]:
    """A 1-D zoom's strip pictures (one per keyframe), written as ``strips/NNN.png``."""
    from PIL import Image

    axis = raw["axis"][0]
    steps = int(stack.attrs.get("steps", 0)) or int(raw.get("descent", {}).get("steps", 1000))
    images, names = [], []
    for i in range(stack.sizes["frame"]):
        image = strip_image(stack.isel(frame=i), steps=steps, axis_name=axis["name"],
                            scale=axis.get("scale", "linear"))
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        names.append(f"{STRIPS_DIR}/{i:03d}.png")
        write_file(out_dir, names[-1], buffer.getvalue())
        images.append(image)
    return images, names


def _check_video_scale(video_scale, size) -> int:
    """``video_scale`` as an int, refused unless 1 .. 16 and the video stays within 8192 x 8192 pixels."""
    if isinstance(video_scale, bool) or not isinstance(video_scale, (int, np.integer)) or not 1 <= video_scale <= 16:
        raise ConfigError(f"video scale must be an integer from 1 to 16, got {video_scale!r}")
    if len(size) == 2 and max(size) * video_scale > MAX_SIDE:
        raise ConfigError(f"video scale {video_scale} makes a {size[0] * video_scale} x {size[1] * video_scale} "
                          f"video; keep each side within {MAX_SIDE} pixels (a smaller --video-scale)")
    return int(video_scale)


def _render(out_dir, stack, raw, center, size, frames_per_doubling, video, gif, progress, video_scale=1) -> dict:
    """Encode the video(s); their file names, frame count and encoding time (colouring included).

    1-D zooms write one strip picture per keyframe, and the video holds each
    strip for ``max(1, frames_per_doubling)`` frames.
    """
    start = time.perf_counter()
    if stack.diverged.ndim == 2:
        strips, files = _strips(out_dir, stack, raw)
        shape = strips[0].shape[:2]
        frames = (image for image in strips for _ in range(max(1, frames_per_doubling)))
    elif not (video or gif):
        return {"encode_seconds": 0.0, "video_frames": 0}
    else:
        scale = color_scale(stack)
        images = (colorize(stack.isel(frame=i), scale) for i in range(stack.sizes["frame"]))
        height, width = size[1] * video_scale, size[0] * video_scale
        shape = (height - height % 2, width - width % 2)
        frames = video_frames(images, _fixed_point(raw, center, size), frames_per_doubling, shape)
        files = []
    if not (video or gif):
        return {"encode_seconds": time.perf_counter() - start, "video_frames": 0, "files": files}
    count = 0
    if gif:
        frames = list(frames)
        write_file(out_dir, GIF_NAME, encode_gif(frames))
        files.insert(0, GIF_NAME)
    if video:
        data, count = encode_mp4(frames, shape)
        write_file(out_dir, VIDEO_NAME, data)
        files.insert(0, VIDEO_NAME)
    count = count or len(frames)
    seconds = time.perf_counter() - start
    if progress:
        print(f"encoded {count} frames in {seconds:.1f} s", file=sys.stderr)
    return {"encode_seconds": seconds, "video_frames": count, "files": files}
