"""Liu 2024's transition: where the learning-rate boundary of GD turns fractal.

GD from x0 = 1 on the additive ripples ``f(x) = x**2 + delta * cos(2 pi x / wavelength)``
either converges or diverges for each learning rate. Liu (2024, arXiv
2406.13971) shows that the boundary between the two is a single point
(dimension 0) while the roughness ``delta / wavelength**2`` is below
``1 / (2 pi**2) ~ 0.0507``, and fractal above it. This sweeps the roughness
through that value, one map of ``--num`` learning rates in [0.5, 1.5] per
roughness, measures the dyadic dimension of each boundary and prints the
table; ``OUT/sweep.png`` plots it with the critical roughness marked.

Run (10 to 20 s on 2 cores at the default size, numba compilation included)::

    python examples/liu_transition.py --out runs/liu-transition

Rerunning the same command reads the finished maps back instead of
recomputing them; change ``--out`` to start afresh.
"""

from __future__ import annotations

import argparse
import time

from fractalscape.sweep import CRITICAL_ROUGHNESS, sweep

ROUGHNESS = (0.02, 0.03, 0.04, 0.045, 0.05, 0.055, 0.06, 0.065, 0.07, 0.08, 0.1, 0.15, 0.2, 0.3)


def liu_config(wavelength: float = 0.1, num: int = 2**16 + 1, steps: int = 1000) -> dict:
    """The additive landscape on a dyadic grid of learning rates, as tests/test_liu.py runs it."""
    return {
        "landscape": {"name": "cosine-additive", "delta": 0.0, "wavelength": wavelength},
        "descent": {"x0": 1.0, "steps": steps, "threshold": 1e8},
        "axis": [{"name": "lr", "start": 0.5, "stop": 1.5, "num": num, "chunk": min(num, 2**16)}],
    }


def main(out: str = "runs/liu-transition", roughness=ROUGHNESS, wavelength: float = 0.1,
         num: int = 2**16 + 1, steps: int = 1000, progress: bool = False) -> dict:
    """Sweep ``landscape.delta`` over ``roughness * wavelength**2``, print the table, return it."""
    # 12 significant digits: 0.065 * 0.1**2 is 0.00065, not 0.0006500000000000001
    deltas = [float(f"{r * wavelength**2:.12g}") for r in roughness]
    start = time.perf_counter()
    table = sweep(liu_config(wavelength, num, steps), "landscape.delta", deltas, out, progress=progress)
    seconds = time.perf_counter() - start
    print(f"cosine-additive, wavelength {wavelength}, {num} learning rates in [0.5, 1.5], {steps} steps; "
          f"critical roughness 1/(2 pi^2) = {CRITICAL_ROUGHNESS:.4f}")
    print(f"{'roughness':>9s} {'delta':>10s} {'D':>7s} {'95% interval':>17s} {'levels':>7s} "
          f"{'max count':>9s} {'diverged':>8s}")
    for row in table["rows"]:
        if row["interval"] is not None:
            low, high = row["interval"]
        elif row["stderr"] is not None:
            low, high = row["dimension"] - 1.96 * row["stderr"], row["dimension"] + 1.96 * row["stderr"]
        else:
            low = high = None
        interval = "" if low is None else f"[{low:.3f}, {high:.3f}]"
        levels = f"{row['fit_range'][0]}-{row['fit_range'][1]}"
        print(f"{row['roughness']:9.4f} {row['value']:10.3g} {row['dimension']:7.3f} {interval:>17s} "
              f"{levels:>7s} {max(row['counts']):9d} {row['fraction_diverged']:8.3f}")
    fractal = [row["roughness"] for row in table["rows"] if row["dimension"] > 0]
    onset = f"{min(fractal):.4f}" if fractal else "none of these"
    print(f"first roughness with a fractal boundary (D > 0): {onset}; {seconds:.1f} s -> {out}/sweep.png")
    return table


def _arguments(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/liu-transition", help="sweep directory (default: %(default)s)")
    parser.add_argument("--roughness", type=float, nargs="+", default=ROUGHNESS,
                        help="roughness values delta / wavelength**2 (default: 0.02 .. 0.3)")
    parser.add_argument("--wavelength", type=float, default=0.1, help="ripple wavelength (default: %(default)s)")
    parser.add_argument("--num", type=int, default=2**16 + 1,
                        help="learning rates per map, 2**n + 1 for the dyadic count (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=1000, help="GD steps (default: %(default)s)")
    parser.add_argument("--progress", action="store_true", help="show block progress on stderr")
    return vars(parser.parse_args(argv))


if __name__ == "__main__":
    main(**_arguments())
