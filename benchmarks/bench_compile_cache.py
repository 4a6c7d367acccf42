"""A tiny sd-tanh map in a first and a second process: the second loads its kernel from the disk cache.

Each run is a whole ``fractalscape map`` process (imports, compilation or
cache load, the map, its PNG), timed from outside, with a fresh
``NUMBA_CACHE_DIR`` shared by the runs of one repetition. Prints one JSON
line per repetition and one with the medians and their ratio
(target: second / first <= 0.4).

    python benchmarks/bench_compile_cache.py              # sd-tanh 16^2, 100 steps, 3 repetitions
    python benchmarks/bench_compile_cache.py --smoke      # 8^2, 20 steps, 1 repetition
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _map(out: Path, cache: Path, num: int, steps: int) -> float:
    command = [sys.executable, "-m", "fractalscape", "map", "sd-tanh", "--out", str(out), "--no-progress",
               "--set", f"axis.0.num={num}", "--set", f"axis.1.num={num}", "--set", f"descent.steps={steps}"]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "NUMBA_CACHE_DIR": str(cache), "FRACTALSCAPE_KERNEL_CACHE": "1"})
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"fractalscape map failed: {proc.stderr.strip()}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=16, help="points per axis (default 16)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="8^2 points, 20 steps, one repetition")
    args = parser.parse_args()
    if args.smoke:
        args.num, args.steps, args.repeat = 8, 20, 1
    firsts, seconds = [], []
    for rep in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            first = _map(tmp / "first", tmp / "cache", args.num, args.steps)
            second = _map(tmp / "second", tmp / "cache", args.num, args.steps)
        firsts.append(first)
        seconds.append(second)
        print(json.dumps({"repetition": rep, "first_s": round(first, 2), "second_s": round(second, 2)}), flush=True)
    first, second = statistics.median(firsts), statistics.median(seconds)
    print(json.dumps({"preset": "sd-tanh", "points": args.num**2, "steps": args.steps, "first_s": round(first, 2),
                      "second_s": round(second, 2), "ratio": round(second / first, 3)}))


if __name__ == "__main__":
    main()
