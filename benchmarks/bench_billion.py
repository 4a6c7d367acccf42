"""The billion-pixel pipeline: compute a 32768^2 map into zarr, box-count it, render it.

Run: python benchmarks/bench_billion.py OUT_DIR [--preset liu-multiplicative-2d-billion] [--set KEY=VALUE ...]

Each stage runs as its own `fractalscape` command under /usr/bin/time -v, which
reports wall time and peak resident memory (max RSS) of the process; then the
store's size on disk, in bytes a point.
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
    stages = [
        ("compute into zarr (+ map.png, dimension)", [*cli, "map", args.preset, "--out", args.out, "--no-progress", *sets]),
        ("box count (boxcount)", [*cli, "dimension", args.out, "--method", "boxcount"]),
        ("render 2000x2000 PNG", [*cli, "render", args.out, "--out", os.path.join(args.out, "render.png"),
                                  "--size", "2000x2000"]),
    ]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    total = 0.0
    for name, command in stages:
        seconds, rss_gb, last = timed(command)
        total += seconds
        print(f"{name:42s} {seconds:8.1f} s   peak RSS {rss_gb:5.2f} GB   {last}")
    print(f"{'whole pipeline':42s} {total:8.1f} s")
    store = os.path.join(args.out, "map.zarr")
    stored = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(store) for f in files)
    with open(os.path.join(args.out, "summary.json")) as file:
        points = json.load(file)["points"]
    print(f"{'store on disk (map.zarr, overviews included)':42s} {stored / 1e9:8.2f} GB, {stored / points:.3f} bytes a point")


if __name__ == "__main__":
    main()
