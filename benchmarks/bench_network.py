"""Speed of Sohl-Dickstein's tanh network maps: NumPy, numba libm, numba fast, JAX.

One process, one run, the same grid for every implementation: the
``lr_W0`` x ``lr_W1`` map of a full-batch tanh network, ``--grid`` points a
side over 10**-1..10**3, ``--steps`` steps, width 8 and 16. Each
implementation is warmed up (compiled) on a small grid first; medians of
``--repeats`` runs are printed with grid points per second and the ratio to
JAX (jit + vmap over all CPU devices) when JAX is importable.

Run: ``python benchmarks/bench_network.py [--grid 256] [--steps 100] [--repeats 3] [--depth 3]
[--optimizer adam]``: ``--depth`` weight layers (layers past the second train at learning
rate 1), ``--optimizer adam`` trains with torch's Adam (JAX: the same update written out).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import numpy as np

from fractalscape.networks import NetworkModel, network_map

#: Learning rate of the layers after the first two (depth > 2), whose rates are the map's axes.
FIXED_LR = 1.0


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


def jax_map_factory(model, steps, optimizer="gd"):
    """JAX jit + vmap over grid points, sharded over the CPU devices, as Sohl-Dickstein's notebook.

    His ``net`` for any depth (mean-field tanh, ``Z = X @ W / sqrt(n)``, the last ``Z / sqrt(n)``),
    ``jax.value_and_grad`` of the MSE, and the update written out: GD, or Adam in torch's form
    (``m + (1 - b1)(g - m)``, ``v b2 + (1 - b2) g g``, bias corrections, ``eps`` after the root).
    """
    # One XLA CPU device per core, so pmap shards the grid as the notebook's TPU/GPU runs do.
    os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={len(os.sched_getaffinity(0))}")
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    a = model.arrays()
    n = model.width
    x, y = jnp.asarray(a["X"]), jnp.asarray(a["Y"])[:, None]
    weights = [jnp.asarray(a[f"W{i}"]) for i in range(model.depth)]
    weights[-1] = weights[-1][:, None]
    b1, b2, eps = 0.9, 0.999, 1e-8

    def loss(theta, x, y):
        h = x
        for w in theta[:-1]:
            h = jnp.tanh(jnp.dot(h, w) / jnp.sqrt(n) * jnp.sqrt(2.0))
        return jnp.mean((jnp.dot(h, theta[-1]) / jnp.sqrt(n) / jnp.sqrt(n) - y) ** 2)

    def lr_of(lrs, layer):
        return lrs[layer] if layer < 2 else FIXED_LR  # the map's axes are lr_W0 x lr_W1

    def train(lrs):
        def gd_step(state, _):
            theta = state
            value, grad = jax.value_and_grad(loss)(theta, x, y)
            return tuple(w - lr_of(lrs, i) * g for i, (w, g) in enumerate(zip(theta, grad))), value

        def adam_step(state, _):
            theta, m, v, t = state
            value, grad = jax.value_and_grad(loss)(theta, x, y)
            t = t + 1.0
            m = tuple(mi + (1.0 - b1) * (g - mi) for mi, g in zip(m, grad))
            v = tuple(vi * b2 + ((1.0 - b2) * g) * g for vi, g in zip(v, grad))
            step_size = [lr_of(lrs, i) / (1.0 - b1**t) for i in range(len(theta))]
            root = jnp.sqrt(1.0 - b2**t)
            theta = tuple(w + (-step_size[i] * mi) / (jnp.sqrt(vi) / root + eps)
                          for i, (w, mi, vi) in enumerate(zip(theta, m, v)))
            return (theta, m, v, t), value

        theta = tuple(weights)
        if optimizer == "adam":
            zeros = tuple(jnp.zeros_like(w) for w in theta)
            _, values = jax.lax.scan(adam_step, (theta, zeros, zeros, 0.0), None, length=steps + 1)
        else:
            _, values = jax.lax.scan(gd_step, theta, None, length=steps + 1)
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
    parser.add_argument("--depth", type=int, default=2, help="weight layers (2: his one hidden layer)")
    parser.add_argument("--optimizer", choices=["gd", "adam"], default="gd")
    args = parser.parse_args()
    threads = len(os.sched_getaffinity(0))
    threshold = 1e6
    lr = np.logspace(-1.0, 3.0, args.grid) if args.optimizer == "gd" else np.logspace(-4.0, 1.0, args.grid)
    small = lr[:: max(1, args.grid // 8)]
    points = args.grid**2
    print(f"grid {args.grid}x{args.grid}, {args.steps} steps, depth {args.depth}, {args.optimizer}, "
          f"{threads} cores, medians of {args.repeats}")
    lr_axes = ("lr_W0", "lr_W1")
    fixed = {f"lr_W{layer}": FIXED_LR for layer in range(2, args.depth)}
    for width in args.widths:
        model = NetworkModel("tanh", width=width, depth=args.depth)
        rows = {}
        try:
            jax_map = jax_map_factory(model, args.steps, args.optimizer)
            jax_map(small, threshold)  # warm-up: compile
            rows["jax jit+vmap+pmap"] = timed(lambda: jax_map(lr, threshold), args.repeats)
        except ImportError:
            print("  (jax not importable: skipped)")
        for precision in ("libm", "fast"):
            network_map(model, [(lr_axes[0], small), (lr_axes[1], small)], steps=3, precision=precision,
                        optimizer=args.optimizer, params=fixed)
            rows[f"numba {precision}, {threads} threads"] = timed(
                lambda p=precision: network_map(
                    model, [(lr_axes[0], lr), (lr_axes[1], lr)], steps=args.steps, precision=p, threads=threads,
                    optimizer=args.optimizer, params=fixed,
                )["escape_step"],
                args.repeats,
            )
        if not args.skip_numpy and args.depth == 2 and args.optimizer == "gd":
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
