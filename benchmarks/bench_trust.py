"""Trust figures for docs/trust.md: rounding sensitivity per preset, averaging over x0, ensemble cost.

    python benchmarks/bench_trust.py table      # per preset: +-1 ulp flips, fast vs libm, dimension spread
    python benchmarks/bench_trust.py average    # Liu's maps averaged over 512 x0 in [-5, 5]
    python benchmarks/bench_trust.py cost       # an ensemble map vs the plain map of the same points
    python benchmarks/bench_trust.py label      # sd-tanh with Sohl-Dickstein's label vs the threshold label
    python benchmarks/bench_trust.py --smoke table average cost label   # tiny sizes (the test suite runs this)

Prints one JSON object per line. Medians of 3 runs after a warm-up where timed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

import fractalscape as fs
from fractalscape.config import read_config, with_overrides

#: (preset, overrides at full size, overrides at smoke size)
PRESETS = [
    ("liu-multiplicative", ["axis.0.num=262145", "axis.0.chunk=16384"], ["axis.0.num=4097", "axis.0.chunk=1024"]),
    ("liu-additive", ["axis.0.num=262145", "axis.0.chunk=16384"], ["axis.0.num=4097", "axis.0.chunk=1024"]),
    ("liu-multiplicative-2d", ["axis.0.num=512", "axis.1.num=512", "axis.0.chunk=128", "axis.1.chunk=128"],
     ["axis.0.num=64", "axis.1.num=64", "axis.0.chunk=32", "axis.1.chunk=32"]),
    ("liu-additive-2d-lr", ["axis.0.num=512", "axis.1.num=512", "axis.0.chunk=128", "axis.1.chunk=128"],
     ["axis.0.num=64", "axis.1.num=64", "axis.0.chunk=32", "axis.1.chunk=32"]),
]


def _raw(preset: str, overrides, precision: str) -> dict:
    return with_overrides(read_config(preset), [*overrides, f"descent.precision='{precision}'"])


def table(smoke: bool) -> None:
    for preset, full, small in PRESETS:
        overrides = small if smoke else full
        start = time.perf_counter()
        libm_raw = _raw(preset, overrides, "libm")
        rounding = {**libm_raw, "axis": [*libm_raw["axis"],
                                         {"name": "ulp", "start": -1, "stop": 1, "num": 3, "ensemble": True}]}
        members = fs.open_config(rounding).diverged.values  # [..., ulp]: -1, 0, +1
        libm = members[..., 1]
        fast = fs.open_config(_raw(preset, overrides, "fast")).diverged.values
        method = fs.dimension(libm, "auto").method if libm.ndim == 1 else "boxcount"
        row = {
            "preset": preset, "shape": list(libm.shape), "points": int(libm.size),
            "flipped_by_1ulp": int((members.min(axis=-1) != members.max(axis=-1)).sum()),
            "fast_vs_libm": int((fast != libm).sum()),
            "boundary_cells": int(fs.boundary(libm).sum()),
        }
        try:
            own = fs.dimension(fs.open_config(libm_raw), method, interval=True)
            row.update(method=own.method, libm=own.dimension, stderr=own.stderr, interval=own.interval,
                       fast=fs.dimension(fast, method).dimension)
        except fs.ConfigError as err:
            row["dimension"] = f"skipped: {err}"
        row["seconds"] = round(time.perf_counter() - start, 1)
        print(json.dumps(row), flush=True)


def average(smoke: bool) -> None:
    log2 = 10 if smoke else 14
    for name in ("cosine-multiplicative", "cosine-additive"):
        for members in ((8, 32) if smoke else (32, 128, 512)):
            start = time.perf_counter()
            grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 2**log2 + 1, chunk=2**(log2 - 3)),
                            fs.Axis("x0", -5.0, 5.0, members, ensemble=True)])
            ds = fs.trainability(fs.landscape(name, delta=0.2, wavelength=0.1), grid, steps=1000,
                                 precision="fast").compute()
            p = ds.p_diverged.values
            level = fs.dimension(p, "dyadic")
            uncertain = fs.dimension(p, "boxcount", level="uncertain")
            one = fs.trainability(fs.landscape(name, delta=0.2, wavelength=0.1), fs.Grid([grid.axes[0]]), x0=1.0,
                                  steps=1000, precision="fast")
            single = fs.dimension(one.diverged.values, "dyadic")
            # what neighbouring p would differ by if the members were independent coin flips
            noise = float((np.sqrt(2 * p * (1 - p) / members) * np.sqrt(2 / np.pi)).mean())
            print(json.dumps({
                "landscape": name, "lr_points": p.size, "x0_members": members,
                "p_half_dimension": level.dimension, "p_half_crossings_finest": level.counts[-1],
                "uncertain_fraction": float(((p > 0) & (p < 1)).mean()),
                "uncertain_set_dimension": uncertain.dimension,
                "x0_1_dimension": single.dimension, "x0_1_crossings_finest": single.counts[-1],
                "mean_abs_p_step": float(np.abs(np.diff(p)).mean()), "coin_flip_abs_p_step": noise,
                "seconds": round(time.perf_counter() - start, 1),
            }), flush=True)


def cost(smoke: bool) -> None:
    lr, x0 = (2049, 64) if smoke else (2**15 + 1, 256)
    land = fs.landscape("cosine-multiplicative", delta=0.2, wavelength=0.1)

    def grid(ensemble: bool):
        return fs.Grid([fs.Axis("lr", 0.0, 1.5, lr, chunk=max(1, 2**16 // x0)),
                        fs.Axis("x0", -5.0, 5.0, x0, ensemble=ensemble)])

    def run(ensemble: bool) -> float:
        start = time.perf_counter()
        ds = fs.trainability(land, grid(ensemble), steps=1000, precision="fast")
        names = ["diverged", "escape_step", "final_loss"] + (["p_diverged", "p_low", "p_high", "n"] if ensemble else [])
        ds[names].compute()
        return time.perf_counter() - start

    run(False), run(True)  # warm-up: compilation
    plain, ensemble = [], []
    for _ in range(1 if smoke else 3):
        plain.append(run(False))
        ensemble.append(run(True))
    print(json.dumps({"points": lr * x0, "plain_s": statistics.median(plain), "ensemble_s": statistics.median(ensemble),
                      "ratio": statistics.median(ensemble) / statistics.median(plain),
                      "runs_plain": plain, "runs_ensemble": ensemble}), flush=True)


def label(smoke: bool) -> None:
    """sd-tanh at width 16 with his label (threshold inf) against the threshold label (1e6)."""
    size, steps = (16, 50) if smoke else (64, 500)
    base = with_overrides(read_config("sd-tanh"), [f"axis.0.num={size}", f"axis.1.num={size}", "axis.0.chunk=16",
                                                  "axis.1.chunk=16", "network.width=16", f"descent.steps={steps}"])
    variants = {"threshold 1e6": ["descent.label='threshold'", "descent.threshold=1e6"],
                "sohl-dickstein, threshold 1e6": ["descent.label='sohl-dickstein'", "descent.threshold=1e6"],
                "sohl-dickstein, threshold inf": ["descent.label='sohl-dickstein'", "descent.threshold=inf"]}
    times, labels = {}, {}
    for name, overrides in variants.items():
        raw = with_overrides(base, overrides)
        fs.open_config(raw).diverged.compute()  # warm-up: compilation
        runs = []
        for _ in range(1 if smoke else 3):
            start = time.perf_counter()
            labels[name] = fs.open_config(raw).diverged.values
            runs.append(time.perf_counter() - start)
        times[name] = statistics.median(runs)
    names = list(variants)
    print(json.dumps({"map": f"sd-tanh width 16, {size}x{size}, {steps} steps", "seconds": times,
                      "ratio_to_threshold_label": {n: times[n] / times[names[0]] for n in names[1:]},
                      "agree_with_his_exact_label": {n: float((labels[n] == labels[names[2]]).mean())
                                                     for n in names[:2]}}), flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="+", choices=["table", "average", "cost", "label"])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite")
    args = parser.parse_args(argv)
    for part in args.parts:
        {"table": table, "average": average, "cost": cost, "label": label}[part](args.smoke)


if __name__ == "__main__":
    main()
