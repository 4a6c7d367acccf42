"""Zoom benchmark: keyframe time against a plain map of the same pixels, and encoding against compute.

A ``--depth``-decade zoom at ``--size`` pixels of each preset, into a boundary
point near the middle of its window (the boundary pixel of a 128 x 128 preview
closest to the window's centre). Targets: each keyframe costs at most 1.1x a
plain ``fs.open_config(window).compute()`` of the same window (summed over
keyframes, since deeper keyframes hold more boundary and cost more), and
colouring plus H.264 encoding take at most 10 % of the keyframes' compute.

    python benchmarks/bench_zoom.py                       # 3 decades, 512^2, liu-multiplicative-2d and sd-tanh
    python benchmarks/bench_zoom.py --preset liu-multiplicative-2d --size 256
    python benchmarks/bench_zoom.py --smoke               # seconds: checks the benchmark runs
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

import fractalscape as fs
from fractalscape.boundary import _edges
from fractalscape.config import read_config, with_overrides
from fractalscape.zoom import keyframe_config, zoom
from fractalscape.zoom.video import encode_mp4, video_frames

PRESETS = ("liu-multiplicative-2d", "sd-tanh")


def boundary_center(raw: dict, preview: int = 128) -> tuple[float, float]:
    """The boundary point of a ``preview``-pixel map of ``raw`` closest to its window's centre (in pixels)."""
    small = with_overrides(raw, [f"axis.{k}.{key}={preview}" for k in (0, 1) for key in ("num", "chunk")])
    ds = fs.open_config(small).compute()
    edge = _edges(ds.diverged.values, cells=True)[:-1, :-1]
    rows, cols = np.nonzero(edge)
    if rows.size == 0:
        raise SystemExit(f"the preview of {raw['axis'][0]['name']} x {raw['axis'][1]['name']} has no boundary")
    nearest = np.argmin((rows - preview / 2) ** 2 + (cols - preview / 2) ** 2)
    names = [a["name"] for a in raw["axis"]]
    return float(ds[names[0]].values[rows[nearest]]), float(ds[names[1]].values[cols[nearest]])


def run(preset: str, size: int, depth: float, steps: int | None, frames_per_doubling: int) -> dict:
    raw = read_config(preset)
    if steps is not None:
        raw = with_overrides(raw, [f"descent.steps={steps}"])
    center = boundary_center(raw)  # also compiles the GD kernels, so no keyframe times the JIT
    tiny = np.zeros((4, 4, 3), np.uint8)  # and the video's resampling kernel and encoder imports
    encode_mp4(video_frames(iter([tiny, tiny]), (1.0, 1.0), 1, (2, 2)), (2, 2))
    with tempfile.TemporaryDirectory() as out:
        summary = zoom(raw, out, center=center, depth=depth, size=(size, size),
                       frames_per_doubling=frames_per_doubling)
    keyframe_seconds = sum(r["seconds"] for r in summary["frames"])
    plain_seconds = 0.0
    for record in summary["frames"]:
        ds = fs.open_config(keyframe_config(raw, center, (size, size), record["frame"]))
        start = time.perf_counter()
        ds.compute()
        plain_seconds += time.perf_counter() - start
    pooled = summary["sohl_dickstein"]
    return {
        "preset": preset, "center": center, "keyframes": len(summary["frames"]),
        "keyframe_seconds": keyframe_seconds, "plain_seconds": plain_seconds,
        "ratio": keyframe_seconds / plain_seconds,
        "measure_seconds": summary["measure_seconds"],
        "encode_seconds": summary["encode_seconds"], "video_frames": summary["video_frames"],
        "encode_fraction": summary["encode_seconds"] / summary["compute_seconds"],
        "dimension": pooled.get("dimension"), "slopes": pooled.get("slopes"),
    }


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", choices=PRESETS, help="default: both")
    parser.add_argument("--size", type=int, default=512, help="keyframe side in pixels (default 512)")
    parser.add_argument("--depth", type=float, default=3.0, help="decades of zoom (default 3)")
    parser.add_argument("--steps", type=int, default=None,
                        help="GD steps (default: liu-multiplicative-2d 1000, sd-tanh its preset's 100)")
    parser.add_argument("--frames-per-doubling", type=int, default=12, help="video frames per halving (default 12)")
    parser.add_argument("--smoke", action="store_true", help="64 pixels, 0.6 decades, 50 steps: seconds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.size, args.depth, args.steps, args.frames_per_doubling = 64, 0.6, 50, 4
    results = []
    for preset in args.preset or PRESETS:
        result = run(preset, args.size, args.depth, args.steps, args.frames_per_doubling)
        results.append(result)
        print(f"{preset}: {args.depth} decades at {args.size}^2, centre {result['center']}, "
              f"{result['keyframes']} keyframes")
        print(f"  keyframes {result['keyframe_seconds']:.2f} s vs plain maps {result['plain_seconds']:.2f} s: "
              f"ratio {result['ratio']:.3f} (target <= 1.1)")
        print(f"  colour + H.264 encoding of {result['video_frames']} frames {result['encode_seconds']:.2f} s = "
              f"{100 * result['encode_fraction']:.1f} % of compute (target <= 10 %); "
              f"per-frame dimensions {result['measure_seconds']:.2f} s")
        print(f"  pooled median-slope dimension {result['dimension']} from {result['slopes']} slopes")
    return results


if __name__ == "__main__":
    main()
