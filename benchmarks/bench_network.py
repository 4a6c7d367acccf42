"""Speed of Sohl-Dickstein's tanh network maps: NumPy, numba libm, numba fast, JAX.

One process, one run, the same grid for every implementation: the
``lr_W0`` x ``lr_W1`` map of a full-batch tanh network, ``--grid`` points a
side over 10**-1..10**3, ``--steps`` steps, width 8 and 16. Each
implementation is warmed up (compiled) on a small grid first; medians of
``--repeats`` runs are printed with grid points per second and the ratio to
JAX (jit + vmap over all CPU devices) when JAX is importable.

Run: ``python benchmarks/bench_network.py [--grid 256] [--steps 100] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import numpy as np

from fractalscape.networks import NetworkModel, network_map


def numpy_map(model, lr, steps, threshold):
    """Plain NumPy: all grid points at once, einsum over points; no early exit."""
    a = model.arrays()
    n = model.width
    lr0, lr1 = (m.ravel() for m in np.meshgrid(lr, lr, indexing="ij"))
    w0 = np.broadcast_to(a["W0"], (len(lr0), n, n)).copy()
    w1 = np.broadcast_to(a["W1"], (len(lr0), n)).copy()
    x, y = a["X"], a["Y"]
    escape = np.full(len(lr0), -1)
    with np.errstate(all="ignore"):
        for k in range(steps + 1):
            h = np.tanh(np.einsum("bi,pij->pbj", x, w0) * (math.sqrt(2.0) / math.sqrt(n)))
            r = np.einsum("pbj,pj->pb", h, w1) / n - y
            loss = np.mean(r * r, axis=1)
            escape[(escape < 0) & ~(loss <= threshold)] = k
            c = 2.0 * r / len(y) / n
            g1 = np.einsum("pb,pbj->pj", c, h)
            d = c[:, :, None] * w1[:, None, :] * (1.0 - h * h) * (math.sqrt(2.0) / math.sqrt(n))
            g0 = np.einsum("bi,pbj->pij", x, d)
            w0 -= lr0[:, None, None] * g0
            w1 -= lr1[:, None] * g1
    return escape.reshape(len(lr), len(lr))


def jax_map_factory(model, steps):
    """JAX jit + vmap over grid points, sharded over the CPU devices, as Sohl-Dickstein's notebook."""
    # One XLA CPU device per core, so pmap shards the grid as the notebook's TPU/GPU runs do.
    os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={len(os.sched_getaffinity(0))}")
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    a = model.arrays()
    n = model.width
    x, y = jnp.asarray(a["X"]), jnp.asarray(a["Y"])[:, None]

    def loss(theta, x, y):
        w0, w1 = theta
        z = jnp.tanh(jnp.dot(x, w0) / jnp.sqrt(n) * jnp.sqrt(2.0))
        return jnp.mean((jnp.dot(z, w1) / jnp.sqrt(n) / jnp.sqrt(n) - y) ** 2)

    def train(lrs):
        def step(theta, _):
            value, grad = jax.value_and_grad(loss)(theta, x, y)
            return (theta[0] - lrs[0] * grad[0], theta[1] - lrs[1] * grad[1]), value

        theta = (jnp.asarray(a["W0"]), jnp.asarray(a["W1"])[:, None])
        _, values = jax.lax.scan(step, theta, None, length=steps + 1)
        return values

    devices = jax.devices()
    run = jax.pmap(jax.vmap(train))

    def jax_map(lr, threshold):
        lr0, lr1 = (m.ravel() for m in np.meshgrid(lr, lr, indexing="ij"))
        pairs = np.stack([lr0, lr1], axis=-1).reshape(len(devices), -1, 2)
        values = np.asarray(run(jnp.asarray(pairs))).reshape(len(lr0), steps + 1)
        crossed = ~(values <= threshold)
        return np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1).reshape(len(lr), len(lr))

    return jax_map


def timed(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--skip-numpy", action="store_true", help="the NumPy baseline takes minutes")
    args = parser.parse_args()
    threads = len(os.sched_getaffinity(0))
    threshold = 1e6
    lr = np.logspace(-1.0, 3.0, args.grid)
    small = lr[:: max(1, args.grid // 8)]
    points = args.grid**2
    print(f"grid {args.grid}x{args.grid}, {args.steps} steps, {threads} cores, medians of {args.repeats}")
    for width in args.widths:
        model = NetworkModel("tanh", width=width)
        rows = {}
        try:
            jax_map = jax_map_factory(model, args.steps)
            jax_map(small, threshold)  # warm-up: compile
            rows["jax jit+vmap+pmap"] = timed(lambda: jax_map(lr, threshold), args.repeats)
        except ImportError:
            print("  (jax not importable: skipped)")
        for precision in ("libm", "fast"):
            network_map(model, [("lr_W0", small), ("lr_W1", small)], steps=3, precision=precision)
            rows[f"numba {precision}, {threads} threads"] = timed(
                lambda p=precision: network_map(
                    model, [("lr_W0", lr), ("lr_W1", lr)], steps=args.steps, precision=p, threads=threads
                )["escape_step"],
                args.repeats,
            )
        if not args.skip_numpy:
            rows["numpy einsum"] = timed(lambda: numpy_map(model, lr, args.steps, threshold), 1)
        reference = rows.get("jax jit+vmap+pmap", (None,))[0]
        libm = rows[f"numba libm, {threads} threads"][1]
        print(f"width {width}:")
        for name, (seconds, escape) in rows.items():
            ratio = f"{reference / seconds:6.2f}x jax" if reference else ""
            differ = np.mean((escape >= 0) != (libm >= 0))
            print(f"  {name:28s} {seconds:8.2f} s {points / seconds:10.0f} points/s {ratio}  labels != libm: {differ:.4%}")


if __name__ == "__main__":
    main()
