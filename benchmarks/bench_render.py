"""Render cost against map size, and the store's bytes per point (issue 17).

Run: python benchmarks/bench_render.py [--dir /tmp/fractalscape-bench-render] [--sizes 512 4096 8192]
     [--steps 50] [--repeat 3] [--presets liu-multiplicative-2d liu-additive] [--smoke]

Maps of Liu's multiplicative landscape (liu-multiplicative-2d's axes, N x N
points, chunks of at most 1024) are computed once into --dir with
``write_map`` (kept for later runs). Each is then drawn by a whole
``fractalscape render STORE --size 1000x1000`` process (and 2000x2000), timed
from outside, the median of --repeat runs: what a user waits for, imports and
compilation included. The ratio of the largest map's time to the smallest's
is printed in the same process, so machine load affects both alike. Each
preset's map is computed as ``fractalscape map`` would (all of its points and
steps) and its store measured: bytes on disk per point, by array.

Prints one JSON object per line.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _store_bytes(out: Path) -> dict:
    parts = {}
    for path in (out / "map.zarr").rglob("*"):
        if path.is_file():
            key = path.relative_to(out / "map.zarr").parts[0]
            parts[key] = parts.get(key, 0) + path.stat().st_size
    return parts


def _map(out: Path, config: dict) -> float:
    """Compute ``config`` into ``out`` unless it is there; the seconds it took (0 if it was there)."""
    import fractalscape as fs
    from fractalscape.store import is_complete, write_map, write_summary

    if is_complete(out):
        return 0.0
    start = time.perf_counter()
    write_summary(out, write_map(fs.open_config(config), out))
    return time.perf_counter() - start


def _square(n: int, steps: int) -> dict:
    from fractalscape.config import read_config

    raw = read_config("liu-multiplicative-2d")
    chunk = min(n, 1024)
    return {**raw, "descent": {**raw["descent"], "steps": steps},
            "axis": [{**a, "num": n, "chunk": chunk} for a in raw["axis"]]}


def _render_seconds(out: Path, size: str, repeat: int) -> tuple[float, str]:
    times, line = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "fractalscape", "render", str(out), "--out",
                               str(out / f"render-{size}.png"), "--size", size], capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            sys.exit(f"render of {out} failed: {proc.stderr[-2000:]}")
        line = (proc.stderr.strip() + " " + proc.stdout.strip()).strip()
    return statistics.median(times), line


def _level(out: Path, width: int, height: int) -> dict:
    """Which overview level a picture of ``width x height`` reads, and how many cells that is."""
    import fractalscape as fs
    from fractalscape.overviews import overview_for

    stored = fs.open_map(out)
    start = time.perf_counter()
    level = overview_for(stored, (width, height), (None, None))
    seconds = time.perf_counter() - start
    if level is None:
        return {"factor": 1, "cells_read": int(stored.diverged.size)}
    return {"factor": level.attrs["overview_factor"], "cells_read": int(level.fraction_diverged.size),
            "level_read_seconds": round(seconds, 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default="/tmp/fractalscape-bench-render")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 4096, 8192])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--presets", nargs="*", default=["liu-multiplicative-2d", "liu-additive"])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: checks that it runs")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.steps, args.repeat = [64, 128], 20, 1
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    print(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cores",
                      "load_average": round(os.getloadavg()[0], 1)}), flush=True)
    pictures = [(1000, 1000), (2000, 2000)] if not args.smoke else [(40, 40)]
    renders = {}
    for n in args.sizes:
        out = root / f"square-{n}-steps-{args.steps}"
        compute = _map(out, _square(n, args.steps))
        parts = _store_bytes(out)
        for width, height in pictures:
            size = f"{width}x{height}"
            seconds, line = _render_seconds(out, size, args.repeat)
            renders[(n, size)] = seconds
            print(json.dumps({"map": f"{n}x{n}", "steps": args.steps, "compute_seconds": round(compute, 1),
                              "bytes_per_point": round(sum(parts.values()) / n**2, 3), "render": size,
                              "render_seconds": round(seconds, 2), **_level(out, width, height),
                              "cli": line}), flush=True)
    smallest = min(args.sizes)
    for n in sorted(args.sizes)[1:]:
        for width, height in pictures:
            size = f"{width}x{height}"
            print(json.dumps({"ratio": f"{n}^2 / {smallest}^2 at {size}",
                              "render_time_ratio": round(renders[(n, size)] / renders[(smallest, size)], 3),
                              "load_average": round(os.getloadavg()[0], 1)}), flush=True)
    for preset in args.presets:
        from fractalscape.config import read_config

        raw = read_config(preset)
        if args.smoke:
            raw = {**raw, "descent": {**raw["descent"], "steps": 20},
                   "axis": [{**a, "num": 257, "chunk": 100} for a in raw["axis"]]}
        out = root / f"preset-{preset}{'-smoke' if args.smoke else ''}"
        compute = _map(out, raw)
        parts = _store_bytes(out)
        points = 1
        for axis in raw["axis"]:
            points *= axis["num"]
        print(json.dumps({"preset": preset, "points": points, "compute_seconds": round(compute, 1),
                          "bytes_per_point": round(sum(parts.values()) / points, 3),
                          "by_array": {k: round(v / points, 3) for k, v in sorted(parts.items())}}), flush=True)


if __name__ == "__main__":
    main()
