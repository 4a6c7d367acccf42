"""Sohl-Dickstein's protocol on one of his six tiles: zoom out of it, pool the local slopes, compare.

His dimensions (arXiv 2402.06184, Fig. 3) are not measured on one window:
each comes from a zoom video into the boundary of one network, and the
local box-count slopes of every frame are pooled (his
``estimate_fractal_dimension`` over porespy's box counts). The tile
presets ``sd-tile-*`` hold the last window of each of his zooms, so
:func:`reproduce` runs his protocol backwards from it: keyframes zooming
*out* of the tile by doubling for ``depth`` decades, in log10 of both
learning rates about the tile's centre (his windows are log-spaced), each
recomputed at ``size`` pixels, and the median of the median-slope local
slopes over all of them (:func:`fractalscape.zoom.pooled_median_slope`).
"""

from __future__ import annotations

from fractalscape.errors import ConfigError

#: His box-counting dimensions, per tile preset (arXiv 2402.06184, Fig. 3).
PUBLISHED = {
    "sd-tile-identity": 1.17,
    "sd-tile-relu": 1.20,
    "sd-tile-single-point": 1.41,
    "sd-tile-minibatch": 1.55,
    "sd-tile-tanh": 1.66,
    "sd-tile-init-offset": 1.98,
}
#: His zoom depth, in decades (his videos zoom over 6 and more).
DEPTH = 6.0
#: Keyframe pixels per side: at 64 x 64 five of the six pooled estimates fall within 0.15 of his
#: (docs/reproduction.md); they still rise with the size.
SIZE = 64


def protocol_overrides(raw: dict) -> list[str]:
    """``--set`` assignments that put both axes of a tile in log10, as his windows are spaced.

    Examples
    --------
    >>> protocol_overrides({"axis": [{"name": "lr_W0"}, {"name": "lr_W1"}]})
    ["axis.0.scale='log'", "axis.1.scale='log'"]
    """
    return [f"axis.{k}.scale='log'" for k in range(len(raw["axis"]))]


def reproduce(tile: str, out_dir, *, depth: float = DEPTH, size: int = SIZE, overrides=(),
              progress: bool = False, video: bool = False, frames_per_doubling: int = 4,
              video_scale: int = 4) -> dict:
    """Sohl-Dickstein's dimension of ``tile`` by his protocol, beside his published value.

    Parameters
    ----------
    tile : str
        A tile preset: one of :data:`PUBLISHED` (``fractalscape presets``).
    out_dir : str or path
        The zoom directory (resumable: a rerun computes only missing keyframes).
    depth : float
        Decades zoomed out of the tile (his protocol: 6).
    size : int
        Keyframe pixels per side (64: about 1-15 minutes per tile on 2
        cores; the estimate still rises with the size).
    overrides : sequence of str
        ``KEY=VALUE`` assignments applied to the tile's config first.
    video : bool
        Also write ``zoom.mp4``: his zoom video, from the widest keyframe
        into the tile (a rerun with ``video=True`` encodes it from the
        finished keyframes, recomputing nothing).
    frames_per_doubling, video_scale : int
        The video's frames per halving, and its pixels per keyframe pixel
        (see :func:`fractalscape.zoom`).

    Returns
    -------
    dict
        ``tile``, ``published``, ``dimension`` and ``stderr`` (the pooled
        estimate), ``slopes``, ``keyframes``, ``difference`` (estimate minus
        his value), ``depth``, ``size`` and the zoom's ``summary``.

    Examples
    --------
    A run takes minutes (``tests/test_reproduce.py`` runs a small one);
    what it accepts:

    >>> sorted(PUBLISHED)[:2]
    ['sd-tile-identity', 'sd-tile-init-offset']
    >>> reproduce("sd-tanh", "/tmp/unused")
    Traceback (most recent call last):
    ...
    fractalscape.errors.ConfigError: unknown tile 'sd-tanh'; his six tiles are: sd-tile-identity, sd-tile-relu, sd-tile-single-point, sd-tile-minibatch, sd-tile-tanh, sd-tile-init-offset
    """
    from fractalscape.config import read_config
    from fractalscape.zoom import pooled_median_slope, zoom

    if tile not in PUBLISHED:
        raise ConfigError(f"unknown tile {tile!r}; his six tiles are: {', '.join(PUBLISHED)}")
    raw = read_config(tile)
    overrides = [*protocol_overrides(raw), *overrides]
    summary = zoom(tile, out_dir, depth=depth, size=(size, size), overrides=overrides, outward=True, video=video,
                   progress=progress, frames_per_doubling=frames_per_doubling if video else 0,
                   video_scale=video_scale)
    result = pooled_median_slope(out_dir)
    return {
        "tile": tile, "published": PUBLISHED[tile], "dimension": result.dimension, "stderr": result.stderr,
        "slopes": len(result.slopes), "keyframes": len(summary["frames"]),
        "difference": result.dimension - PUBLISHED[tile], "depth": depth, "size": size, "summary": summary,
    }
