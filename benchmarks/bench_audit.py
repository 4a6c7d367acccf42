"""Time ``audit(store, samples=N)`` on Liu's multiplicative map of 2**k + 1 learning rates.

The map (preset ``liu-multiplicative``, its axis resized) is written once into
``--out`` with ``fractalscape map``, unless ``--out`` already holds it
complete. The audit then runs in a fresh Python process, so its wall time
includes the imports and numba compilation, as a ``fractalscape audit``
command's would; the audit's own stage times are printed too.

    python benchmarks/bench_audit.py                  # 2**20 + 1 points, 1000 samples
    python benchmarks/bench_audit.py --smoke          # 2**12 + 1 points, 100 samples
    python benchmarks/bench_audit.py --log2-points 16 --samples 400 --certify-seconds 5
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fractalscape.store import is_complete

AUDIT = """
import json, sys
from fractalscape.audit import audit
report = audit(sys.argv[1], samples=int(sys.argv[2]), certify_seconds=float(sys.argv[3]))
report.pop("config"); report.pop("claims"); report.pop("flipped_points")
print(json.dumps(report))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log2-points", type=int, default=20, help="the map has 2**k + 1 points (default 20)")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--certify-seconds", type=float, default=10.0)
    parser.add_argument("--out", help="map directory (reused when it holds this map, complete)")
    parser.add_argument("--smoke", action="store_true", help="tiny: 2**12 + 1 points, 100 samples")
    args = parser.parse_args()
    if args.smoke:
        args.log2_points, args.samples, args.certify_seconds = 12, 100, 2.0
    num = 2**args.log2_points + 1
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-audit-"))
    if not is_complete(out):
        start = time.perf_counter()
        subprocess.run(["fractalscape", "map", "liu-multiplicative", "--out", str(out),
                        "--set", f"axis.0.num={num}", "--set", f"axis.0.chunk={min(num, 65536)}"], check=True,
                       stdout=subprocess.DEVNULL)
        print(f"map: {num} points in {time.perf_counter() - start:.1f} s -> {out}")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", AUDIT, str(out), str(args.samples), str(args.certify_seconds)],
                          check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    report = json.loads(done.stdout)
    print(f"audit: {num} points, samples={args.samples}, certify_seconds={args.certify_seconds}: "
          f"{wall:.1f} s wall in a fresh process")
    print("stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in report["seconds_by_stage"].items()))
    print(f"sampled {report['sampled']} ({report['sampling']}): stable {report['stable']}, "
          f"flipped {report['flipped']}, certified {report['certified']} "
          f"(agree with the stored label: {report['certified_agree']})")
    print("perturbations: " + ", ".join(f"{k} {v['flipped']}/{v['run']}" for k, v in report["perturbations"].items()))
    print("flipped by distance: " + ", ".join(f"{k}: {v['flipped']}/{v['sampled']}"
                                              for k, v in report["by_distance"].items()))


if __name__ == "__main__":
    main()
