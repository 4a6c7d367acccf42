"""Every dimension estimator on sets of known dimension and on the presets: the table of docs/estimators.md.

Run from the repository root (about 5 minutes on 2 cores, numba compilation included)::

    python examples/compare_estimators.py

Known fractals are the rasterizers of the test suite (tests/fractals.py);
maps are presets at reduced size, said in each row. ``--small`` runs every
row at a toy size (the test suite does, so this cannot rot).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/fractals.py, from anywhere

import fractalscape as fs  # noqa: E402
from fractalscape.config import read_config, with_overrides  # noqa: E402
from tests import fractals  # noqa: E402

ESTIMATORS_1D = ("dyadic", "boxcount", "median-slope")
ESTIMATORS_2D = ("boxcount", "median-slope")


def known_sets(small: bool) -> list[tuple[str, float, object]]:
    """(name, exact dimension, boolean map) of the test suite's fractals."""
    n1 = 2**12 + 1 if small else 2**20 + 1
    koch, carpet, circle = (256, 4, 256) if small else (2048, 7, 2048)
    return [
        (f"Cantor middle thirds, {n1:,} points", math.log(2) / math.log(3), fractals.cantor(n1, 7 if small else 13)),
        (f"Cantor base 4, {n1:,} points", 0.5, fractals.cantor(n1, 6 if small else 10, base=4)),
        (f"Koch snowflake, {koch} px", math.log(4) / math.log(3), fractals.koch_snowflake(koch, 4 if small else 7)),
        (f"Sierpinski carpet, 3^{carpet} px", math.log(8) / math.log(3), fractals.sierpinski_carpet(carpet)),
        (f"circle, {circle} px", 1.0, fractals.disk(circle, 0.4 * circle)),
    ]


def preset_maps(small: bool) -> list[tuple[str, object]]:
    """(description, lazy map) of presets at reduced sizes."""
    n1, n2, sd = (2**10 + 1, 64, 32) if small else (2**16 + 1, 256, 64)
    cases = [
        ("liu-multiplicative", [f"axis.0.num={n1}"], f"{n1:,} lr"),
        ("liu-additive", [f"axis.0.num={n1}"], f"{n1:,} lr"),
        ("liu-multiplicative-2d", [f"axis.{k}.{key}={n2}" for k in (0, 1) for key in ("num", "chunk")],
         f"{n2} x {n2}"),
        ("sd-tanh", [f"axis.{k}.{key}={sd}" for k in (0, 1) for key in ("num", "chunk")], f"{sd} x {sd}"),
    ]
    if small:  # and no network: compiling one takes a minute on 2 cores
        cases = [(name, [*sets, "descent.steps=100"], f"{size}, 100 steps") for name, sets, size in cases[:3]]
    return [(f"{name}, {size}", fs.open_config(with_overrides(read_config(name), sets))) for name, sets, size in cases]


def estimate(labels, method: str, **options) -> str:
    try:
        result = fs.dimension(labels, method, **options)
    except fs.ConfigError as err:
        return f"- ({str(err).split(':')[0]})"
    if result.interval is not None:
        return f"{result.dimension:.3f} [{result.interval[0]:.3f}, {result.interval[1]:.3f}]"
    return f"{result.dimension:.3f} +- {result.stderr:.3f}" if math.isfinite(result.stderr) else f"{result.dimension:.3f}"


def main(small: bool = False, uncertainty_samples: int = 2**16) -> list[list[str]]:
    """Print the two markdown tables and return their rows."""
    start = time.perf_counter()
    rows = [["set", "exact", *ESTIMATORS_1D]]
    for name, exact, labels in known_sets(small):
        methods = ESTIMATORS_1D if labels.ndim == 1 else ESTIMATORS_2D
        cells = {m: estimate(labels, m) for m in methods}
        rows.append([name, f"{exact:.4f}", *(cells.get(m, "") for m in ESTIMATORS_1D)])
    _print(rows)
    print()
    rows_maps = [["map", *ESTIMATORS_1D, "uncertainty exponent"]]
    for name, ds in preset_maps(small):
        ds = ds.compute()
        one_d = ds.diverged.ndim == 1
        methods = ESTIMATORS_1D if one_d else ESTIMATORS_2D
        cells = {m: estimate(ds.diverged, m) for m in methods}
        if one_d:  # the rounding interval of the map's own estimator (4 more maps)
            cells["dyadic"] = estimate(ds, "dyadic", interval=True)
        if ds.attrs.get("model_kind", "landscape") == "landscape" and "score" not in ds:
            cells["uncertainty"] = estimate(ds, "uncertainty", samples=uncertainty_samples, precision="fast")
        else:
            cells["uncertainty"] = "not run (a network: minutes)"
        rows_maps.append([name, *(cells.get(m, "") for m in ESTIMATORS_1D), cells["uncertainty"]])
    _print(rows_maps)
    print(f"\n{time.perf_counter() - start:.0f} s")
    return rows + rows_maps


def _print(rows: list[list[str]]) -> None:
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows[1:]:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="toy sizes (seconds)")
    parser.add_argument("--uncertainty-samples", type=int, default=2**16,
                        help="most pairs per eps of the uncertainty exponent (default: %(default)s)")
    args = parser.parse_args()
    main(args.small, args.uncertainty_samples)
