"""An independent plain-NumPy gradient descent, the reference the numba kernels must match.

It shares no code with fractalscape: the losses are written again from their
formulas in the order of floating-point operations of Liu's own code
(``exp-0.jl``/``exp-1.jl`` in liuyz0/FractalBoundary: ``2*pi*x/wl`` is
``(2*pi*x)/wl``, the ripple gradient ``2*pi*delta*sin(...)/wl`` left to right),
the order of ``precision="libm"``, so orbits agree bit for bit. NumPy's float64 sin/cos are
the C library's on this platform (checked in ``test_numpy_trig_is_libm``).
"""

from __future__ import annotations

import math

import numpy as np

TWO_PI = 2.0 * math.pi


def _phase(x, wl):
    return TWO_PI * x / wl


def _sums(x, wl):
    s = np.zeros(x.shape[1:])
    c = np.zeros(x.shape[1:])
    for i in range(x.shape[0]):
        s = s + x[i] * x[i]
        c = c + np.cos(_phase(x[i], wl))
    return s, c


def loss_and_grad(name, x, theta):
    """Loss (shape: points) and gradient (shape of x) of landscape ``name``.

    ``x`` has shape ``(dim, points)``; ``theta`` maps parameter names to
    scalars or arrays over points.
    """
    if name == "quadratic":
        s = np.zeros(x.shape[1:])
        for i in range(x.shape[0]):
            s = s + x[i] * x[i]
        return s, 2.0 * x
    if name == "cosine-additive":
        delta, wl = theta["delta"], theta["wavelength"]
        s, c = _sums(x, wl)
        return s + delta * c, 2.0 * x - TWO_PI * delta * np.sin(_phase(x, wl)) / wl
    if name == "cosine-multiplicative":
        delta, wl = theta["delta"], theta["wavelength"]
        s, c = _sums(x, wl)
        ripple = 1.0 + delta * c
        return s * ripple, 2.0 * x * ripple - TWO_PI * s * delta * np.sin(_phase(x, wl)) / wl
    if name == "cosine-multi":
        m = len([key for key in theta if key.startswith("delta_")])
        s = np.zeros(x.shape[1:])
        for i in range(x.shape[0]):
            s = s + x[i] * x[i]
        g = 2.0 * x
        for t in range(m):
            wl = theta[f"wavelength_{t}"]
            c = np.zeros(x.shape[1:])
            for i in range(x.shape[0]):
                c = c + np.cos(_phase(x[i], wl))
            s = s + theta[f"delta_{t}"] * c
            g = g - TWO_PI * theta[f"delta_{t}"] * np.sin(_phase(x, wl)) / wl
        return s, g
    raise ValueError(name)


def gradient_descent(name, theta, lr, x0, steps, threshold):
    """Masked vectorized GD over points; returns (escape_step, final_loss).

    ``lr`` and ``x0`` have shape ``(dim, points)``; theta values broadcast over points.
    """
    x = np.array(x0, dtype=np.float64, copy=True)
    npoints = x.shape[1]
    escape = np.full(npoints, -1, dtype=np.int32)
    loss, _ = loss_and_grad(name, x, theta)
    final = loss.copy()
    active = loss <= threshold
    escape[~active] = 0
    for step in range(1, steps + 1):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        sub_theta = {k: (v[idx] if np.ndim(v) else v) for k, v in theta.items()}
        _, g = loss_and_grad(name, x[:, idx], sub_theta)
        x[:, idx] = x[:, idx] - lr[:, idx] * g
        loss, _ = loss_and_grad(name, x[:, idx], sub_theta)
        final[idx] = loss
        gone = ~(loss <= threshold)
        escape[idx[gone]] = step
        active[idx[gone]] = False
    return escape, final
