"""Time the uncertainty exponent of Liu's multiplicative landscape down to eps = 1e-12.

Pairs of learning rates ``eps`` apart are drawn in ``lr`` in [0, 1.5] and run
through 1000 GD steps each (:func:`fractalscape.uncertainty.uncertainty`)
until every ``eps`` has ``--target`` uncertain pairs (or ``--samples``
pairs); ``D = 1 - alpha`` from the slope of the uncertain fraction. Liu
(2024) reports 0.8375 from his 2**32 + 1 point dyadic count.

One warm-up call on a few pairs compiles the kernel first, so the timed run
is the sampling alone; the dask threaded scheduler uses every core.

    python benchmarks/bench_uncertainty.py             # eps 1e-2 .. 1e-12, 4 per decade
    python benchmarks/bench_uncertainty.py --smoke     # seconds: a check that it runs
    python benchmarks/bench_uncertainty.py --precision libm
"""

import argparse
import os
import time

import numpy as np

from fractalscape.uncertainty import uncertainty

LIU_DIMENSION = 0.8375


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="liu-multiplicative", help="preset name or TOML path")
    parser.add_argument("--eps-max", type=float, default=1e-2)
    parser.add_argument("--eps-min", type=float, default=1e-12)
    parser.add_argument("--per-decade", type=int, default=4)
    parser.add_argument("--target", type=int, default=4000, help="uncertain pairs wanted at each eps")
    parser.add_argument("--samples", type=int, default=2**22, help="most pairs at each eps")
    parser.add_argument("--precision", choices=["fast", "libm"], default="fast")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny run: eps 1e-2 .. 1e-6, 50 uncertain pairs each")
    args = parser.parse_args()
    if args.smoke:
        args.eps_min, args.target, args.samples = 1e-6, 50, 2**14
    decades = np.log10(args.eps_max / args.eps_min)
    eps = np.logspace(np.log10(args.eps_max), np.log10(args.eps_min), round(decades * args.per_decade) + 1)

    uncertainty(args.config, eps=eps[:3], samples=2**12, target=20, precision=args.precision)  # compile
    start = time.perf_counter()
    result = uncertainty(args.config, eps=eps, samples=args.samples, target=args.target,
                         precision=args.precision, seed=args.seed)
    seconds = time.perf_counter() - start
    pairs = sum(result.pairs)
    low, high = result.interval
    print(f"{args.config}: precision={args.precision} cores={len(os.sched_getaffinity(0))} "
          f"target={args.target} samples={args.samples}")
    print(f"D = {result.dimension:.4f} (95% interval {low:.4f} .. {high:.4f}, stderr {result.stderr:.4f}); "
          f"Liu {LIU_DIMENSION}")
    print(f"eps {eps[0]:.3g} .. {eps[-1]:.3g} ({len(eps)} values), fitted {result.fit_range[1]:.3g} .. "
          f"{result.fit_range[0]:.3g}; uncertain pairs at the smallest eps: {result.counts[-1]} of "
          f"{result.pairs[-1]}")
    print(f"{seconds:.1f} s for {pairs:,} pairs ({2 * pairs / seconds / 1e6:.2f} M GD runs/s)")


if __name__ == "__main__":
    main()
