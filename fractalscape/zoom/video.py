"""Zoom videos: keyframe colours fixed over the whole stack, exponential zoom with cross-fade, H.264.

Encoding uses PyAV (``av``) rather than imageio-ffmpeg: its wheels carry
FFmpeg with libx264 as libraries, so frames go to the encoder in-process
(no pipe to a subprocess, no binary to locate), the MP4 is muxed into memory
(written through :func:`fractalscape.store.write_file`, so URLs work too),
and the tests decode it back with the same library. The GIF is written
with Pillow (already there through matplotlib).

Between keyframe ``i`` and ``i + 1`` the video shows ``K`` frames of the
exponential zoom ``2**(i + j/K)``: each is keyframe ``i``'s image resampled
(bilinear) to the frame's window, blended inside keyframe ``i + 1``'s window
with that sharper image, whose weight grows linearly from 0 to 1. The
resampling is in pixel index space about the zoom's fixed point, which is
the same for every keyframe, so it loses no precision at any depth.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numba
import numpy as np
import xarray as xr

from fractalscape.errors import ConfigError

#: Frames per second of the MP4 and GIF.
FPS = 24
#: Sohl-Dickstein's cdf_img buffer: each class fills [buffer, 1] of its half of the colormap.
BUFFER = 0.25
#: libx264 constant quality (18: visually lossless) and speed preset. The preset trades file size only, not
#: quality: "ultrafast" encodes a 512^2 frame in ~5 ms on one core against ~20 ms for "veryfast", for files
#: about 1.5x larger (measured by benchmarks/bench_zoom.py's encoding figure).
X264_CRF = 18
X264_PRESET = "ultrafast"
#: Points of the quantile tables that fix the colour scale over the whole stack.
QUANTILES = 1025
#: Pixels sampled per frame for the quantile tables.
SAMPLE_PER_FRAME = 2**18


@dataclass(frozen=True)
class ColorScale:
    """Quantile tables fixing a zoom's colours: one per class, over every keyframe of the stack.

    ``kind`` is ``"network"`` (Sohl-Dickstein's score) or ``"landscape"``
    (escape step of diverged points, log10 final loss of converged ones).
    """

    kind: str
    converged: np.ndarray
    diverged: np.ndarray


def _as_yx(ds: xr.Dataset) -> xr.Dataset:
    """A keyframe with dims (y, x): a stack frame as is, a 2-D map transposed (first axis horizontal)."""
    dims = ds.diverged.dims
    if dims == ("y", "x"):
        return ds
    if len(dims) != 2:
        raise ConfigError(f"colorize takes one 2-D keyframe, got dims {dims}; select one with stack.isel(frame=i)")
    return ds.rename({dims[0]: "x", dims[1]: "y"}).transpose("y", "x")


def _readouts(ds: xr.Dataset, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The diverged mask, and the values that set the intensity of the converged and of the diverged pixels."""
    diverged = ds.diverged.values
    if kind == "network":
        score = np.nan_to_num(ds.score.values, nan=np.inf)
        return diverged, score[~diverged], score[diverged]
    loss = ds.final_loss.values[~diverged]
    return diverged, np.log10(np.abs(loss) + 1e-300), ds.escape_step.values[diverged].astype(np.float64)


def _table(values: np.ndarray) -> np.ndarray:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.zeros(0)
    return np.quantile(values, np.linspace(0.0, 1.0, QUANTILES))


def color_scale(stack: xr.Dataset) -> ColorScale:
    """The colour scale of a whole zoom stack (every keyframe), so colours mean the same in every frame.

    Examples
    --------
    >>> import fractalscape as fs
    >>> ds = fs.trainability(fs.landscape("quadratic"), fs.Grid([fs.Axis("lr", 0.5, 1.5, 8),
    ...                                                          fs.Axis("x0", -1.0, 1.0, 4)]), steps=50)
    >>> scale = color_scale(ds)
    >>> scale.kind, scale.converged.shape
    ('landscape', (1025,))
    """
    kind = "network" if "score" in stack else "landscape"
    frames = [stack.isel(frame=i) for i in range(stack.sizes["frame"])] if "frame" in stack.dims else [stack]
    converged, diverged = [], []
    for frame in frames:
        frame = _as_yx(frame)
        stride = max(1, int(np.sqrt(frame.diverged.size / SAMPLE_PER_FRAME)))
        _, c, d = _readouts(frame.isel(y=slice(None, None, stride), x=slice(None, None, stride)), kind)
        converged.append(c)
        diverged.append(d)
    return ColorScale(kind, _table(np.concatenate(converged)), _table(np.concatenate(diverged)))


def _lut(name: str, low: float, high: float) -> np.ndarray:
    import matplotlib

    return (matplotlib.colormaps[name](np.linspace(low, high, 256))[:, :3] * 255).round().astype(np.uint8)


def _rank(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Position of each value in the class's distribution, 0 .. 1 (nan stays nan)."""
    if table.size == 0:
        return np.full(values.shape, 0.5)
    return np.interp(values, table, np.linspace(0.0, 1.0, table.size))


def colorize(ds_frame: xr.Dataset, scale: ColorScale) -> np.ndarray:
    """RGB image (uint8, rows from the top, first axis horizontal) of one keyframe on a fixed colour scale.

    Networks follow Sohl-Dickstein's convention: his ``cdf_img`` restretch of
    the ``score`` (each class histogram-equalised over the stack into
    ``[0.25, 1]`` of its half) on matplotlib's ``"Spectral"``, converged
    blue and diverged red. Landscapes: diverged points in reds by escape step
    (dark: blew up at once), converged ones in blues by log10 final loss
    (dark: lowest loss); both run from mid to dark tones, so the two hues
    stay apart at every intensity.

    Parameters
    ----------
    ds_frame : xarray.Dataset
        One keyframe: ``stack.isel(frame=i)`` of :func:`open_stack`, or a 2-D map.
    scale : ColorScale
        From :func:`color_scale` of the whole stack.

    Examples
    --------
    >>> import fractalscape as fs
    >>> ds = fs.trainability(fs.landscape("quadratic"), fs.Grid([fs.Axis("lr", 0.5, 1.5, 8),
    ...                                                          fs.Axis("x0", -1.0, 1.0, 4)]), steps=50)
    >>> image = colorize(ds, color_scale(ds))
    >>> image.shape, image.dtype
    ((4, 8, 3), dtype('uint8'))
    >>> bool(image[0, -1, 0] > image[0, -1, 2]), bool(image[0, 0, 2] > image[0, 0, 0])  # diverged red, converged blue
    (True, True)
    """
    frame = _as_yx(ds_frame)
    if (scale.kind == "network") != ("score" in frame):
        raise ConfigError(f"colour scale of a {scale.kind} zoom does not fit this keyframe; build it from its stack")
    is_diverged, converged, diverged = _readouts(frame, scale.kind)
    converged_rank, diverged_rank = _rank(converged, scale.converged), _rank(diverged, scale.diverged)
    index = np.empty(is_diverged.shape, np.intp)
    if scale.kind == "network":
        # cdf_img: converged -> -[1, buffer], diverged -> [buffer, 1], then negated; Spectral over -1 .. 1
        index[~is_diverged] = np.round((1 + BUFFER + (1 - BUFFER) * (1 - converged_rank)) / 2 * 255)
        index[is_diverged] = np.round((1 - BUFFER - (1 - BUFFER) * diverged_rank) / 2 * 255)
        image = _lut("Spectral", 0.0, 1.0)[index]
    else:
        from fractalscape.render import CONVERGED_CMAP, DIVERGED_CMAP, class_lut

        # one table, render's class colours (dark: low values): converged in entries 0..255, diverged 256..511
        index[~is_diverged] = np.round(converged_rank * 255)
        index[is_diverged] = 256 + np.round(diverged_rank * 255)
        image = np.concatenate([class_lut(CONVERGED_CMAP), class_lut(DIVERGED_CMAP)])[index]
    return np.ascontiguousarray(image[::-1])  # row 0 is the top: the largest y


def _taps(positions: np.ndarray, n: int):
    """Bilinear taps along one axis of ``n`` pixels: (low index, high index, weight of high, inside the image)."""
    inside = (positions >= -0.5) & (positions <= n - 0.5)
    clamped = np.clip(positions, 0.0, n - 1.0)
    low = np.minimum(clamped.astype(np.intp), max(n - 2, 0))
    return low, np.minimum(low + 1, n - 1), clamped - low, inside


@numba.njit(nogil=True)
def _blend_kernel(current, following, t, rows, cols, next_rows, next_cols, frame):
    """Separable bilinear samples of keyframe ``i`` cross-faded (weight ``t``) with keyframe ``i + 1`` inside it."""
    r0, r1, rw, _ = rows
    c0, c1, cw, _ = cols
    n0, n1, nw, row_inside = next_rows
    m0, m1, mw, col_inside = next_cols
    for i in range(r0.size):
        for j in range(c0.size):
            blend = t > 0 and row_inside[i] and col_inside[j]
            for k in range(3):
                top = current[r0[i], c0[j], k] * (1 - cw[j]) + current[r0[i], c1[j], k] * cw[j]
                bottom = current[r1[i], c0[j], k] * (1 - cw[j]) + current[r1[i], c1[j], k] * cw[j]
                value = top * (1 - rw[i]) + bottom * rw[i]
                if blend:
                    top = following[n0[i], m0[j], k] * (1 - mw[j]) + following[n0[i], m1[j], k] * mw[j]
                    bottom = following[n1[i], m0[j], k] * (1 - mw[j]) + following[n1[i], m1[j], k] * mw[j]
                    value += (top * (1 - nw[i]) + bottom * nw[i] - value) * t
                frame[i, j, k] = np.uint8(min(value + 0.5, 255.0))


def video_frames(images, fixed_point, frames_per_doubling: int, out_shape):
    """Yield the video's RGB frames (uint8, ``out_shape`` = (height, width)) from the keyframe images.

    ``images`` yields the keyframe images (uint8, rows from the top) in
    order; ``fixed_point`` is the zoom centre's (row, col) in pixel index
    space, the same in every keyframe. Yields ``frames_per_doubling`` frames
    per halving (0: each keyframe once), then the last keyframe. The frame at
    zoom level ``i + t`` samples keyframe ``i`` at the output pixels'
    positions shrunk by ``2**-t`` about the fixed point, and keyframe
    ``i + 1`` (twice as fine) at those positions times 2.
    """
    images = iter(images)
    current = next(images)
    height, width = current.shape[:2]
    rows = np.linspace(0, height - 1, out_shape[0])
    cols = np.linspace(0, width - 1, out_shape[1])
    fixed_row, fixed_col = fixed_point

    def frame(following, t):
        shrink = 2.0**-t
        out = np.empty((*out_shape, 3), np.uint8)
        _blend_kernel(current, following, t,
                      _taps(fixed_row + (rows - fixed_row) * shrink, height),
                      _taps(fixed_col + (cols - fixed_col) * shrink, width),
                      _taps(fixed_row + (rows - fixed_row) * 2 * shrink, height),
                      _taps(fixed_col + (cols - fixed_col) * 2 * shrink, width), out)
        return out

    for following in images:
        for j in range(max(frames_per_doubling, 1)):
            yield frame(following, j / max(frames_per_doubling, 1))
        current = following
    yield frame(current, 0.0)


def encode_mp4(frames, shape) -> tuple[bytes, int]:
    """H.264 MP4 (yuv420p, ``FPS`` frames per second) of RGB frames of even ``shape``; bytes and frame count."""
    import av

    buffer = io.BytesIO()
    count = 0
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.height, stream.width = shape
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(X264_CRF), "preset": X264_PRESET}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
            count += 1
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue(), count


def encode_gif(frames) -> bytes:
    """Looping GIF of RGB frames at ``FPS`` frames per second (Pillow, adaptive palette per frame)."""
    from PIL import Image

    pictures = [Image.fromarray(rgb).quantize(colors=255) for rgb in frames]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:],
                     duration=round(1000 / FPS), loop=0)
    return buffer.getvalue()
