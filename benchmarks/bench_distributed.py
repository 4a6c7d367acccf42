"""Throughput of a map on a 2-worker LocalCluster against dask's threaded scheduler, same process.

Run: python benchmarks/bench_distributed.py [--num 512] [--repeats 3]
Both write the map into zarr through fractalscape.store.write_map (what `fractalscape map` does).
Kernels are compiled (warm-up) on the driver and on every worker before timing.
"""

import argparse
import os
import platform
import statistics
import tempfile
import time

from distributed import Client, LocalCluster

import fractalscape as fs
from fractalscape.store import write_map


def config(num, chunk, steps):
    return {
        "landscape": {"name": "cosine-multiplicative", "delta": 0.2, "wavelength": 0.1},
        "descent": {"steps": steps},
        "axis": [
            {"name": "lr", "start": 0.0, "stop": 1.5, "num": num, "chunk": chunk},
            {"name": "x0", "start": -2.0, "stop": 2.0, "num": num, "chunk": chunk},
        ],
    }


def timed(ds):
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        info = write_map(ds, out)
        return time.perf_counter() - start, info["gd_steps"]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num", type=int, default=512)
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ds = fs.open_config(config(args.num, args.chunk, args.steps))
    warm = fs.open_config(config(16, 8, 10))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"map {args.num}x{args.num}, chunk {args.chunk}, {args.steps} steps")
    timed(warm)
    threads = [timed(ds) for _ in range(args.repeats)]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        with Client(lc):
            timed(warm)
            cluster = [timed(ds) for _ in range(args.repeats)]
    steps = threads[0][1]
    t_threads = statistics.median(t for t, _ in threads)
    t_cluster = statistics.median(t for t, _ in cluster)
    print(f"threaded scheduler (2 threads): median {t_threads:.2f} s, {steps / t_threads:.3g} GD steps/s")
    print(f"LocalCluster (2 workers x 1 thread): median {t_cluster:.2f} s, {steps / t_cluster:.3g} GD steps/s")
    print(f"cluster / threads time ratio: {t_cluster / t_threads:.2f} (overhead {100 * (t_cluster / t_threads - 1):+.0f}%)")


if __name__ == "__main__":
    main()
