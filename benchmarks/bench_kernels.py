"""GD steps per second: NumPy, the libm kernel, the fast kernel (and JAX if importable).

Run from the repository root::

    python benchmarks/bench_kernels.py                  # kernels, < 2 minutes
    python benchmarks/bench_kernels.py --labels         # fast vs libm on the liu presets (2**20 + 1)
    python benchmarks/bench_kernels.py --full 26        # the liu presets at 2**26 + 1 through trainability()

A GD step is one update of one grid point; a point that escapes at step
``e`` costs ``e`` steps, one that never escapes ``steps`` (the cycle exit
skips steps without changing the map, so it counts the steps it skipped).
Compilation is warmed up before timing; each figure is the median of
``--repeats`` runs, with ratios to NumPy, since the machine may be shared.
Kernel runs are single-threaded, so steps per second of this process's CPU
time (``per CPU s``) is the speed of one core even when other processes
share it; wall-clock figures include the sharing.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import dask
import numpy as np

import fractalscape as fs
from fractalscape.dimension import dimension
from fractalscape.gd import run_block

STEPS = 1000
THRESHOLD = 1e8
CASES = {
    "cosine-additive": (fs.landscape("cosine-additive", delta=0.2, wavelength=0.1), ["lr"]),
    "cosine-multiplicative": (fs.landscape("cosine-multiplicative", delta=0.2, wavelength=0.1), ["lr"]),
    "cosine-additive dim=2": (fs.landscape("cosine-additive", dim=2, delta=0.2, wavelength=0.1), ["lr"]),
}


def machine() -> str:
    model, flags = platform.processor() or "?", set()
    if os.path.exists("/proc/cpuinfo"):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl") if f in flags]
    return f"{model}; {os.cpu_count()} cores; {' '.join(simd)}; numpy {np.__version__}"


def numpy_gd(name: str, lr: np.ndarray, dim: int) -> np.ndarray:
    """Masked vectorized GD over all learning rates at once (``x0 = 1``); returns escape steps."""
    delta, k = 0.2, 2 * np.pi / 0.1
    x = np.ones((dim, lr.size))
    escape = np.full(lr.size, -1)
    alive = np.arange(lr.size)
    for step in range(STEPS + 1):
        xa = x[:, alive]
        s = (xa * xa).sum(axis=0)
        c = np.cos(k * xa).sum(axis=0)
        loss = s + delta * c if name.startswith("cosine-additive") else s * (1 + delta * c)
        out = ~(loss <= THRESHOLD)
        escape[alive[out]] = step
        alive, xa = alive[~out], xa[:, ~out]
        if step == STEPS or alive.size == 0:
            break
        if name.startswith("cosine-additive"):
            g = 2 * xa - delta * k * np.sin(k * xa)
        else:
            g = 2 * xa * (1 + delta * c[~out]) - s[~out] * delta * k * np.sin(k * xa)
        x[:, alive] = xa - lr[alive] * g
    return escape


def steps_taken(escape: np.ndarray) -> int:
    return int(np.where(escape < 0, STEPS, escape).sum())


def timed(fn, repeats: int) -> tuple[float, float, np.ndarray]:
    """Median wall-clock and process CPU seconds of ``fn()``, and its result."""
    fn()  # warm-up: compilation is never timed
    wall, cpu, result = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu), result


def jax_gd():
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    @jax.jit
    def run(lr):
        x = jnp.ones_like(lr)

        def body(step, state):
            x, escape = state
            loss = x * x + 0.2 * jnp.cos(20 * jnp.pi * x)
            escape = jnp.where((escape < 0) & ~(loss <= THRESHOLD), step, escape)
            x = jnp.where(escape < 0, x - lr * (2 * x - 0.2 * 20 * jnp.pi * jnp.sin(20 * jnp.pi * x)), x)
            return x, escape

        return jax.lax.fori_loop(0, STEPS + 1, body, (x, jnp.full(lr.shape, -1)))[1]

    return lambda lr: np.asarray(run(lr))


def bench_kernels(num: int, repeats: int) -> None:
    lr = np.linspace(0.0, 1.5, num)
    print(f"{num} learning rates in [0, 1.5], x0 = 1, {STEPS} steps, one core, median of {repeats}")
    print(f"{'landscape':24s} {'implementation':22s} {'GD steps/s':>12s} {'vs NumPy':>9s} {'per CPU s':>12s}")
    jax = jax_gd()
    for case, (land, names) in CASES.items():
        d = land.dim
        runs = {"numpy (masked)": lambda: numpy_gd(land.name, lr, d)}
        if jax is not None and d == 1 and land.name == "cosine-additive":
            runs["jax (jit, fori_loop)"] = lambda: jax(lr)
        for precision in ("libm", "fast"):
            for cycles in (False, True):
                label = f"{precision}{' + cycle exit' if cycles else ''}"
                runs[label] = lambda p=precision, c=cycles: run_block(
                    land, {"x0": 1.0}, [(name, lr) for name in names], steps=STEPS, threshold=THRESHOLD,
                    precision=p, detect_cycles=c,
                )["escape_step"]
        base = None
        for label, fn in runs.items():
            seconds, cpu_seconds, escape = timed(fn, repeats)
            rate = steps_taken(escape) / seconds
            base = base or rate
            print(f"{case:24s} {label:22s} {rate:12.3e} {rate / base:9.1f} {steps_taken(escape) / cpu_seconds:12.3e}")


def preset_map(name: str, num: int, precision: str, chunk: int = 2**16, dim: int = 1):
    land = fs.load_config(name).model
    if dim > 1:
        land = fs.landscape(land.name, dim=dim, **land.params)
    grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, num, chunk=min(chunk, num))])
    return fs.trainability(land, grid, x0=1.0, steps=STEPS, threshold=THRESHOLD, precision=precision)


def bench_labels(n: int) -> None:
    num = 2**n + 1
    print(f"fast vs libm labels, liu presets, {num} learning rates, 2 threads")
    for name in ("liu-additive", "liu-multiplicative"):
        maps = {}
        for precision in ("libm", "fast"):
            start = time.perf_counter()
            with dask.config.set(scheduler="threads", num_workers=2):
                maps[precision] = preset_map(name, num, precision)[["diverged", "escape_step"]].compute()
            print(f"  {name} {precision}: {time.perf_counter() - start:.1f} s")
        libm, fast = maps["libm"], maps["fast"]
        label_diff = int((libm.diverged != fast.diverged).sum())
        step_diff = int((libm.escape_step != fast.escape_step).sum())
        dims = {p: dimension(m.diverged.values, method="dyadic").dimension for p, m in maps.items()}
        print(
            f"  {name}: diverged differs at {label_diff} ({label_diff / num:.2%}), escape_step at {step_diff} "
            f"({step_diff / num:.2%}); dyadic dimension libm {dims['libm']:.4f}, fast {dims['fast']:.4f}, "
            f"delta {dims['fast'] - dims['libm']:+.4f}"
        )


def bench_full(n: int) -> None:
    """liu-additive at 2**n + 1 points, then its multiplicative and dim = 2 variants at 2**(n-2) + 1."""
    print(f"precision='fast', trainability().compute() on 2 threads, chunks of 2**20; load average "
          f"{os.getloadavg()[0]:.1f} before")
    rates = {}
    for label, name, points, dim in (
        ("liu-additive", "liu-additive", 2**n + 1, 1),
        ("liu-multiplicative", "liu-multiplicative", 2 ** (n - 2) + 1, 1),
        ("liu-additive, dim = 2", "liu-additive", 2 ** (n - 2) + 1, 2),
    ):
        with dask.config.set(scheduler="threads", num_workers=2):
            preset_map(name, 2**16 + 1, "fast", dim=dim).diverged.compute()  # warm-up: compile
            start, start_cpu = time.perf_counter(), time.process_time()
            escape = preset_map(name, points, "fast", chunk=2**20, dim=dim).escape_step.compute()
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
        steps = steps_taken(escape.values)
        rates[label] = steps / seconds
        print(f"{label}: {points} points, {seconds:.1f} s, {steps:.3e} GD steps, {steps / seconds:.3e} steps/s, "
              f"{cpu_seconds / seconds:.2f} cores busy, {steps / cpu_seconds:.3e} steps per CPU s, "
              f"{rates['liu-additive'] / rates[label]:.2f}x the time per step of liu-additive")
        if label == "liu-additive":
            print(f"  Liu's full experiment (2**32 + 1 points) at this rate: about "
                  f"{seconds * (2**32 + 1) / points / 60:.0f} min")
    lr = np.linspace(0.0, 1.5, 2**16 + 1)
    numpy_seconds, _, escape = timed(lambda: numpy_gd("cosine-additive", lr, 1), 1)
    numpy_rate = steps_taken(escape) / numpy_seconds
    print(f"NumPy (masked, one core, 2**16 + 1 points of liu-additive): {numpy_rate:.3e} steps/s; "
          f"liu-additive through trainability() is {rates['liu-additive'] / numpy_rate:.1f}x that")
    print(f"load average {os.getloadavg()[0]:.1f} after")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=2**14 + 1, help="learning rates per kernel run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--labels", action="store_true", help="compare fast and libm maps on the liu presets")
    parser.add_argument(
        "--full", type=int, metavar="N", help="time liu-additive at 2**N + 1 points, its variants at 2**(N-2) + 1"
    )
    args = parser.parse_args()
    print(machine())
    if args.labels:
        bench_labels(20)
    elif args.full:
        bench_full(args.full)
    else:
        bench_kernels(args.num, args.repeats)


if __name__ == "__main__":
    main()
