"""Time the box count of a 16384**2 map and the dyadic count of 2**24 + 1 points.

The maps are level sets of Weierstrass sums, built lazily block by block so
the full map is never in memory:  W(x) = sum_k 2**(-k H) cos(2**k x + phase_k)
with H = 0.5; the 2-D map is ``W1(x) + W2(y) > 0`` (boundary dimension about
2 - H = 1.5), the 1-D map ``W(x) > 0`` (about 1 - H = 0.5).

Each case runs in a fresh subprocess so its peak RSS is its own; wall time
is the median of 3 runs after one warm-up run (numba compilation).

    python benchmarks/bench_dimension.py            # both cases, full size
    python benchmarks/bench_dimension.py --size 2048 --log2-points 16  # quick
"""
import argparse
import functools
import json
import resource
import statistics
import subprocess
import sys
import time

import dask.array as da
import numpy as np

from fractalscape.dimension import dimension

HOLDER = 0.5


def weierstrass(num: int, seed: int) -> np.ndarray:
    """W at ``num`` points of [0, 2 pi), octaves up to the sampling limit."""
    x = np.linspace(0, 2 * np.pi, num, endpoint=False)
    phases = np.random.default_rng(seed).uniform(0, 2 * np.pi, 64)
    total = np.zeros(num)
    for k in range(int(np.log2(num)) - 1):
        total += 2.0 ** (-k * HOLDER) * np.cos(2.0**k * x + phases[k])
    return total


def lazy_map_2d(size: int, chunk: int) -> da.Array:
    rows = da.from_array(weierstrass(size, seed=1), chunks=chunk)
    cols = da.from_array(weierstrass(size, seed=2), chunks=chunk)
    return rows[:, None] + cols[None, :] > 0


def lazy_map_1d(log2_points: int, chunk: int) -> da.Array:
    values = weierstrass(2**log2_points, seed=3)
    return da.from_array(np.append(values, values[0]) > 0, chunks=chunk)


def run_case(case: str, size: int, log2_points: int) -> dict:
    if case == "boxcount-2d":
        labels = lazy_map_2d(size, chunk=2048)
        measure = functools.partial(dimension, labels, "boxcount")
    else:
        labels = lazy_map_1d(log2_points, chunk=2**20)
        measure = functools.partial(dimension, labels, "dyadic")
    measure()  # warm-up: numba compilation is not timed
    times = []
    for _ in range(3):
        start = time.perf_counter()
        result = measure()
        times.append(time.perf_counter() - start)
    return {
        "case": case,
        "shape": list(labels.shape),
        "chunks": [c[0] for c in labels.chunks],
        "median_s": statistics.median(times),
        "times_s": times,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "dimension": result.dimension,
        "stderr": result.stderr,
        "fit_range": result.fit_range,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--log2-points", type=int, default=24)
    parser.add_argument("--case", choices=["boxcount-2d", "dyadic-1d"])
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.size, args.log2_points)))
        return
    for case in ("boxcount-2d", "dyadic-1d"):
        out = subprocess.run(
            [sys.executable, __file__, "--case", case, "--size", str(args.size),
             "--log2-points", str(args.log2_points)],
            check=True, capture_output=True, text=True,
        ).stdout
        row = json.loads(out)
        print(f"{case:12s} shape={row['shape']} chunks={row['chunks']} "
              f"median={row['median_s']:.2f}s peak_rss={row['peak_rss_mib']:.0f}MiB "
              f"D={row['dimension']:.3f}±{row['stderr']:.3f} fit={row['fit_range']}")


if __name__ == "__main__":
    main()
