"""Start-up: ``import fractalscape`` and ``fractalscape --help``, whole processes (targets: under 1.5 s each).

Prints one JSON line per command: the median wall and CPU seconds over
``--repeat`` fresh processes, beside ``python -c pass`` run the same way
(the interpreter's own start-up, for the ratio).

    python benchmarks/bench_startup.py            # 7 repetitions
    python benchmarks/bench_startup.py --smoke    # 2 repetitions
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import fractalscape": [sys.executable, "-c", "import fractalscape"],
    "fractalscape --help": [sys.executable, "-m", "fractalscape", "--help"],
}


def _once(command) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="2 repetitions")
    args = parser.parse_args()
    repeat = 2 if args.smoke else args.repeat
    base = None
    for name, command in COMMANDS.items():
        runs = [_once(command) for _ in range(repeat)]
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        base = base or wall
        print(json.dumps({"command": name, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                          "vs_bare_python": round(wall / base, 2)}), flush=True)


if __name__ == "__main__":
    main()
