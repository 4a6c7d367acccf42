"""The billion-pixel pipeline: compute a 32768^2 map into zarr, box-count it, draw map.png, render it.

Run: python benchmarks/bench_billion.py OUT_DIR [--preset liu-multiplicative-2d-billion] [--set KEY=VALUE ...]

The pipeline is two `fractalscape` commands: `map` (compute into zarr, the
overviews, map.png and the box count, each timed in summary.json) and
`render --size 2000x2000`. Each runs under /usr/bin/time -v, which reports
wall time and peak resident memory (max RSS) of the process. A standalone
`fractalscape dimension` follows (the count once more, as a user would rerun
it; not part of the pipeline's total), then the store's size on disk, in
bytes a point.
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys


def timed(command):
    proc = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time .*: (\S+)", proc.stderr).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return seconds, rss_kb / 1024**2, proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--preset", default="liu-multiplicative-2d-billion")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    cli = [sys.executable, "-m", "fractalscape"]
    sets = [a for kv in args.overrides for a in ("--set", kv)]
    pipeline = [
        ("fractalscape map (compute, count, map.png)", [*cli, "map", args.preset, "--out", args.out, "--no-progress",
                                                        *sets]),
        ("render 2000x2000 PNG", [*cli, "render", args.out, "--out", os.path.join(args.out, "render.png"),
                                  "--size", "2000x2000"]),
    ]
    again = ("box count again (fractalscape dimension)", [*cli, "dimension", args.out, "--method", "boxcount"])
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    total, peak = 0.0, 0.0
    for name, command in pipeline:
        seconds, rss_gb, last = timed(command)
        total, peak = total + seconds, max(peak, rss_gb)
        print(f"{name:42s} {seconds:8.1f} s   peak RSS {rss_gb:5.2f} GB   {last}")
    with open(os.path.join(args.out, "summary.json")) as file:  # the map's parts, as it timed them
        summary = json.load(file)
    parts = {"compute into zarr": summary["compute_seconds"], "map.png": summary["plot_seconds"],
             "box count": summary["dimension_seconds"]}
    parts["overviews and the map's totals"] = summary["total_seconds"] - sum(parts.values())
    for part in ("compute into zarr", "overviews and the map's totals", "map.png", "box count"):
        print(f"  of which {part:33s} {parts[part]:8.1f} s")
    print(f"{'the pipeline (map + render)':42s} {total:8.1f} s   peak RSS {peak:5.2f} GB")
    seconds, rss_gb, last = timed(again[1])
    print(f"{again[0]:42s} {seconds:8.1f} s   peak RSS {rss_gb:5.2f} GB   {last}")
    store = os.path.join(args.out, "map.zarr")
    stored = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(store) for f in files)
    points = summary["points"]
    print(f"{'store on disk (map.zarr, overviews included)':42s} {stored / 1e9:8.2f} GB, {stored / points:.3f} bytes a point")


if __name__ == "__main__":
    main()
