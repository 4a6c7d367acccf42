"""Liu 2024's numbers reproduced: dyadic dimensions at random x0, and at his x0 = 1.

    python benchmarks/bench_reproduction.py random-x0 [--log2 20] [--members 100]
    python benchmarks/bench_reproduction.py fresh-x0 --log2 16
    python benchmarks/bench_reproduction.py --smoke random-x0 fresh-x0

random-x0: Liu's random-initialisation experiment: x0 ~ U[-5, 5] (100 draws,
seed 0 of NumPy's default_rng), lr in [0, 1.5] on 2**log2 + 1 points, 1000
steps, threshold 1e8, delta 0.2, wavelength 0.1; the mean and standard
deviation of the dyadic dimension over the draws, per landscape (his
values: multiplicative 1.0004 +- 0.011, additive 0.983 +- 0.079). One JSON
line per landscape.

fresh-x0: the same as his exp-6.jl computes it: a new set of 100 random x0
at every learning rate (``rand`` inside the loop over learning rates), so
each of the 100 "maps" labels an independent x0 at every point.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import fractalscape as fs


def random_x0(log2: int, members: int, precision: str) -> None:
    draws = np.random.default_rng(0).uniform(-5.0, 5.0, members)
    grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 2**log2 + 1, chunk=min(2**log2 + 1, 2**16))])
    for name in ("cosine-multiplicative", "cosine-additive"):
        start = time.perf_counter()
        land = fs.landscape(name, delta=0.2, wavelength=0.1)
        dims = [fs.dimension(fs.trainability(land, grid, x0=float(x0), steps=1000, precision=precision).diverged,
                             "dyadic").dimension for x0 in draws]
        print(json.dumps({"landscape": name, "points": 2**log2 + 1, "members": members, "precision": precision,
                          "mean": float(np.mean(dims)), "std": float(np.std(dims, ddof=1)),
                          "min": float(np.min(dims)), "max": float(np.max(dims)),
                          "seconds": round(time.perf_counter() - start, 1)}), flush=True)


def fresh_x0(log2: int, members: int, precision: str) -> None:
    """His exp-6.jl as written: ``x0s = -5 .+ 10*rand(100)`` is drawn afresh inside the loop over learning
    rates, so member i's "map" has a new random x0 at every learning rate."""
    from fractalscape.gd import run_block

    rng = np.random.default_rng(0)
    lr = fs.Axis("lr", 0.0, 1.5, 2**log2 + 1).values()
    for name in ("cosine-multiplicative", "cosine-additive"):
        start = time.perf_counter()
        land = fs.landscape(name, delta=0.2, wavelength=0.1)
        labels = np.empty((lr.size, members), bool)
        for i, rate in enumerate(lr):
            x0s = rng.uniform(-5.0, 5.0, members)
            out = run_block(land, {}, [("lr", lr[i:i + 1]), ("x0", x0s)], steps=1000, threshold=1e8,
                            precision=precision)
            labels[i] = out["escape_step"][0] >= 0
        dims = [fs.dimension(labels[:, m], "dyadic").dimension for m in range(members)]
        print(json.dumps({"landscape": name, "protocol": "fresh x0 at every learning rate (exp-6.jl)",
                          "points": lr.size, "members": members, "precision": precision,
                          "mean": float(np.mean(dims)), "std": float(np.std(dims, ddof=1)),
                          "seconds": round(time.perf_counter() - start, 1)}), flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="+", choices=["random-x0", "fresh-x0"])
    parser.add_argument("--log2", type=int, default=20)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--precision", choices=["libm", "fast"], default="fast")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite")
    args = parser.parse_args(argv)
    if args.smoke:
        args.log2, args.members = 10, 3
    for part in args.parts:
        {"random-x0": random_x0, "fresh-x0": fresh_x0}[part](args.log2, args.members, args.precision)


if __name__ == "__main__":
    main()
