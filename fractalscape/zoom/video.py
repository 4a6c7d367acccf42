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

import numpy as np
import xarray as xr

from fractalscape.errors import ConfigError

#: Frames per second of the MP4 and GIF.
FPS = 24
#: Sohl-Dickstein's cdf_img buffer: each class fills [buffer, 1] of its half of the colormap.
BUFFER = 0.25
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
    return ds.transpose(dims[1], dims[0])


def _readouts(ds: xr.Dataset, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(converged values, diverged values) as whole arrays; nan where the other class is."""
    diverged = ds.diverged.values
    if kind == "network":
        score = np.nan_to_num(ds.score.values, nan=np.inf)
        return np.where(diverged, np.nan, score), np.where(diverged, score, np.nan)
    loss = np.log10(np.abs(ds.final_loss.values) + 1e-300)
    return np.where(diverged, np.nan, loss), np.where(diverged, ds.escape_step.values.astype(np.float64), np.nan)


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
        c, d = _readouts(frame.isel(y=slice(None, None, stride), x=slice(None, None, stride)), kind)
        converged.append(c.ravel())
        diverged.append(d.ravel())
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
    converged, diverged = _readouts(frame, scale.kind)
    is_diverged = frame.diverged.values
    if scale.kind == "network":
        # cdf_img: converged -> -[1, buffer], diverged -> [buffer, 1], then negated; Spectral over -1 .. 1
        signed = np.where(is_diverged, -(BUFFER + (1 - BUFFER) * _rank(diverged, scale.diverged)),
                          BUFFER + (1 - BUFFER) * (1 - _rank(converged, scale.converged)))
        index = np.round((signed + 1) / 2 * 255).astype(np.intp)
        image = _lut("Spectral", 0.0, 1.0)[index]
    else:
        reds, blues = _lut("Reds", 0.35, 1.0), _lut("Blues", 0.35, 1.0)
        red = np.round((1 - np.nan_to_num(_rank(diverged, scale.diverged))) * 255).astype(np.intp)
        blue = np.round((1 - np.nan_to_num(_rank(converged, scale.converged))) * 255).astype(np.intp)
        image = np.where(is_diverged[..., None], reds[red], blues[blue])
    return np.ascontiguousarray(image[::-1])  # row 0 is the top: the largest y


def _axis_sampler(positions: np.ndarray, n: int):
    """Bilinear weights of fractional pixel positions along an axis of ``n`` pixels, and which are inside."""
    inside = (positions >= -0.5) & (positions <= n - 0.5)
    clipped = np.clip(positions, 0, n - 1)
    low = np.minimum(np.floor(clipped).astype(np.intp), n - 2) if n > 1 else np.zeros_like(clipped, np.intp)
    frac = (clipped - low).astype(np.float32)
    return low, frac, inside


def _resample(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image`` (float32 H x W x 3) at fractional (row, col) positions, separable bilinear; and the mask inside."""
    r0, rf, rin = _axis_sampler(rows, image.shape[0])
    c0, cf, cin = _axis_sampler(cols, image.shape[1])
    top, bottom = image[r0], image[r0 + 1]
    rows_mixed = top + (bottom - top) * rf[:, None, None]
    left, right = rows_mixed[:, c0], rows_mixed[:, c0 + 1]
    return left + (right - left) * cf[None, :, None], rin[:, None] & cin[None, :]


def video_frames(images, fixed_point, frames_per_doubling: int, out_shape):
    """Yield the video's RGB frames (uint8, ``out_shape`` = (height, width)) from the keyframe images.

    ``images`` yields keyframe images (float32, rows from the top) in order;
    ``fixed_point`` is the zoom centre's (row, col) position in pixel index
    space, the same in every keyframe.
    """
    images = iter(images)
    current = next(images)
    height, width = current.shape[:2]
    out_h, out_w = out_shape
    base_rows = np.linspace(0, height - 1, out_h)
    base_cols = np.linspace(0, width - 1, out_w)
    fr, fc = fixed_point
    for following in images:
        for j in range(max(frames_per_doubling, 1)):
            t = j / max(frames_per_doubling, 1)
            shrink = 2.0**-t  # window of zoom level i + t, in keyframe i's pixels
            frame, _ = _resample(current, fr + (base_rows - fr) * shrink, fc + (base_cols - fc) * shrink)
            if t > 0:
                grow = 2.0 ** (1 - t)  # the same window in keyframe i + 1's pixels
                sharp, inside = _resample(following, fr + (base_rows - fr) * grow, fc + (base_cols - fc) * grow)
                frame = np.where(inside[..., None], frame + (sharp - frame) * np.float32(t), frame)
            yield np.clip(frame + 0.5, 0, 255).astype(np.uint8)
            if frames_per_doubling == 0:
                break
        current = following
    final, _ = _resample(current, base_rows, base_cols)
    yield np.clip(final + 0.5, 0, 255).astype(np.uint8)


def encode_mp4(frames, shape) -> tuple[bytes, int]:
    """H.264 MP4 (yuv420p, ``FPS`` frames per second) of RGB frames of even ``shape``; bytes and frame count."""
    import av

    buffer = io.BytesIO()
    count = 0
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.height, stream.width = shape
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
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
