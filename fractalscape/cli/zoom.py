"""``fractalscape zoom`` and ``fractalscape reproduce``: keyframe sequences into (or out of) a boundary."""

from __future__ import annotations

import json
import sys

import click

from fractalscape.cli import _size, main
from fractalscape.errors import ConfigError


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _CenterCommand(click.Command):
    """Takes ``--center X Y`` (2-D) or ``--center X`` (1-D): the two numbers are joined into one value."""

    def parse_args(self, ctx, args):
        args = list(args)
        for i in range(len(args) - 2):
            if args[i] == "--center" and _is_number(args[i + 1]) and _is_number(args[i + 2]):
                args[i + 1:i + 3] = [f"{args[i + 1]} {args[i + 2]}"]
        return super().parse_args(ctx, args)


def _center(text: str | None):
    if text is None:
        return None
    parts = text.replace(",", " ").split()
    if not 1 <= len(parts) <= 2 or not all(_is_number(p) for p in parts):
        raise ConfigError(f"--center takes X Y (a 2-D config) or X (a 1-D config), got {text!r}")
    return tuple(float(p) for p in parts) if len(parts) == 2 else float(parts[0])


def _zoom_size(text: str | None):
    if text is None:
        return None
    if text.isdigit():
        return int(text)  # a 1-D keyframe's points
    return _size(text)


@main.command("zoom", cls=_CenterCommand)
@click.argument("config")
@click.option("--out", "out_dir", required=True, help="Zoom directory: keyframes, zoom.zarr, zoom.mp4, summary.json.")
@click.option("--center", default=None, metavar="X [Y]",
              help="The point zoomed into (with --outward: out of; default the window's centre); "
                   "one number for a 1-D config.")
@click.option("--outward", is_flag=True,
              help="Sohl-Dickstein's protocol: CONFIG's window is the last keyframe; start DEPTH decades out.")
@click.option("--depth", type=float, required=True, help="Decades of zoom (keyframes halve the window).")
@click.option("--frames-per-doubling", type=int, default=0, show_default=True,
              help="Video frames per halving, by exponential zoom and cross-fade (0: keyframes only).")
@click.option("--size", default=None,
              help="Keyframe pixels, WIDTHxHEIGHT (default 256x256); a 1-D keyframe's points (default 4097).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value.")
@click.option("--gif", is_flag=True, help="Also write zoom.gif.")
@click.option("--no-video", is_flag=True, help="Keyframes and dimensions only.")
@click.option("--video-scale", type=int, default=1, show_default=True,
              help="Video pixels per keyframe pixel along each side (1 .. 16, bilinear).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
def zoom_command(config, out_dir, center, outward, depth, frames_per_doubling, size, overrides, gif, no_video,
                 video_scale, progress):
    """Zoom DEPTH decades into CENTER of a 1-D or 2-D CONFIG: recomputed keyframes, their dimensions, a video (resumable).

    A 1-D CONFIG gives Liu's strips (strips/NNN.png) and per-keyframe dyadic dimensions.
    """
    from fractalscape.zoom import zoom

    if progress is None:
        progress = sys.stderr.isatty()
    try:
        summary = zoom(config, out_dir, center=_center(center), depth=depth, frames_per_doubling=frames_per_doubling,
                       size=_zoom_size(size), overrides=overrides, video=not no_video, gif=gif, progress=progress,
                       outward=outward, video_scale=video_scale)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: finished keyframes are kept; run the same command to resume", err=True)
        sys.exit(130)
    if "dyadic" in summary:
        pooled = summary["dyadic"]
        estimate = (f"dyadic dimension median {pooled['dimension']:.4f} over {pooled['frames']} keyframes "
                    f"({pooled['min']:.4f} .. {pooled['max']:.4f})" if "dimension" in pooled else "no dimension")
    else:
        pooled = summary["sohl_dickstein"]
        estimate = (f"pooled median-slope dimension {pooled['dimension']:.4f} +- {pooled['stderr']:.4f} "
                    f"({pooled['slopes']} slopes)" if pooled.get("dimension") is not None else "no pooled dimension")
    click.echo(f"{len(summary['frames'])} keyframes ({summary['keyframes_computed']} computed), {estimate}, "
               f"compute {summary['compute_seconds']:.1f} s (keyframes {summary['keyframes_compute_seconds']:.1f} s in "
               f"all), encode {summary['encode_seconds']:.1f} s -> {out_dir}")


@main.command("reproduce")
@click.argument("tile")
@click.option("--out", "out_dir", required=True, help="Zoom directory (resumable).")
@click.option("--depth", type=float, default=6.0, show_default=True, help="Decades zoomed out of the tile.")
@click.option("--size", type=int, default=64, show_default=True, help="Keyframe pixels per side.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (without the zoom's summary).")
@click.option("--video", is_flag=True,
              help="Also write zoom.mp4, his zoom into the tile (from finished keyframes: nothing recomputed).")
@click.option("--frames-per-doubling", type=int, default=4, show_default=True, help="Video frames per halving.")
@click.option("--video-scale", type=int, default=4, show_default=True,
              help="Video pixels per keyframe pixel along each side (1 .. 16).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
def reproduce_command(tile, out_dir, depth, size, overrides, as_json, video, frames_per_doubling, video_scale,
                      progress):
    """Sohl-Dickstein's dimension of TILE (an sd-tile-* preset) by his protocol, beside his value.

    Keyframes zoom out of the tile by doubling over DEPTH decades (log axes); the
    local box-count slopes of all of them are pooled, as his estimate pools them.
    """
    from fractalscape.reproduce import reproduce

    if progress is None:
        progress = sys.stderr.isatty()
    try:
        result = reproduce(tile, out_dir, depth=depth, size=size, overrides=overrides, progress=progress,
                           video=video, frames_per_doubling=frames_per_doubling, video_scale=video_scale)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: finished keyframes are kept; run the same command to resume", err=True)
        sys.exit(130)
    if as_json:
        click.echo(json.dumps({k: v for k, v in result.items() if k != "summary"}, indent=2))
        return
    click.echo(f"{tile}: pooled median-slope dimension {result['dimension']:.4f} +- {result['stderr']:.4f} "
               f"({result['slopes']} slopes over {result['keyframes']} keyframes of {size}x{size}, {depth:g} "
               f"decades, computed in {result['summary']['keyframes_compute_seconds']:.0f} s); "
               f"Sohl-Dickstein 2024: {result['published']:.2f} -> {out_dir}")
