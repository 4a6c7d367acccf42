"""A plain-NumPy trainer of Sohl-Dickstein's networks, the reference for fractalscape.networks.

It shares no code with fractalscape. It trains all points at once (arrays
over points), runs every trajectory to the end without a threshold, and
applies the notebook's ``convergence_measure`` to the whole trajectory
afterwards. Sums run in the kernel's order (input index, hidden index, then
samples, each from 0.0), and tanh is ``math.tanh`` per element (NumPy's own
``np.tanh`` is not the C library's), so the ``"libm"`` kernel must agree bit
for bit.
"""

from __future__ import annotations

import math

import numpy as np

SQRT2 = math.sqrt(2.0)
_tanh = np.vectorize(math.tanh, otypes=[np.float64])


def data(width, n_data, seed):
    """W0 (n, n), W1 (n,), X (B, n), Y (B,): N(0, 1) from default_rng(seed), in that order."""
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((width, width)),
        rng.standard_normal(width),
        rng.standard_normal((n_data, width)),
        rng.standard_normal(n_data),
    )


def n_data(nonlinearity, width, kind):
    if kind == "single":
        return 1
    return width if nonlinearity == "identity" else width * width + width


def scales(nonlinearity, width):
    """(factor on x @ W0, factor on phi, factor on h @ W1) of the mean-field network."""
    pre = SQRT2 if nonlinearity == "tanh" else 1.0
    post = SQRT2 if nonlinearity == "relu" else 1.0
    return pre / math.sqrt(width), post, 1.0 / width


def forward(nonlinearity, w0, w1, x):
    """u (P, B, n), h (P, B, n) and the network output (P, B) for weights over P points."""
    n = w0.shape[1]
    in_scale, post, out_scale = scales(nonlinearity, n)
    z = np.zeros((w0.shape[0], x.shape[0], n))
    for i in range(n):
        z = z + x[None, :, i, None] * w0[:, None, i, :]
    u = z * in_scale
    if nonlinearity == "tanh":
        h = _tanh(u)
    elif nonlinearity == "relu":
        h = np.where(u > 0.0, u, 0.0) * post
    else:
        h = u
    a = np.zeros(u.shape[:2])
    for j in range(n):
        a = a + h[:, :, j] * w1[:, None, j]
    return u, h, a * out_scale


def loss(nonlinearity, w0, w1, x, y):
    """mean((out - y)**2) over the samples, summed in sample order."""
    _, _, out = forward(nonlinearity, w0, w1, x)
    r = out - y[None, :]
    total = np.zeros(r.shape[0])
    for b in range(r.shape[1]):
        total = total + r[:, b] * r[:, b]
    return total / r.shape[1]


def gradient(nonlinearity, w0, w1, x, y):
    """(dL/dW0, dL/dW1) of the loss over the samples of x, y, accumulated sample by sample."""
    n = w0.shape[1]
    in_scale, post, out_scale = scales(nonlinearity, n)
    u, h, out = forward(nonlinearity, w0, w1, x)
    c = 2.0 * (out - y[None, :]) / x.shape[0] * out_scale
    if nonlinearity == "tanh":
        dphi = 1.0 - h * h
    elif nonlinearity == "relu":
        dphi = np.where(u > 0.0, 1.0, 0.0)
    else:
        dphi = np.ones_like(u)
    g0 = np.zeros_like(w0)
    g1 = np.zeros_like(w1)
    for b in range(x.shape[0]):
        g1 = g1 + c[:, b, None] * h[:, b, :]
        d = c[:, b, None] * w1
        if post != 1.0:
            d = d * post
        d = d * dphi[:, b, :] * in_scale
        g0 = g0 + x[None, b, :, None] * d[:, None, :]
    return g0, g1


def convergence_measure(v, max_val=1e6):
    """Sohl-Dickstein's score of loss trajectories ``v`` (P, steps), written as in his notebook."""
    fin = np.isfinite(v)
    v = v * fin + max_val * (1 - fin)  # inf * 0 is NaN: non-finite losses stay NaN, as in JAX
    v = v / v[:, :1]
    exceeds = v > max_val
    v = v * (1 - exceeds) + max_val * exceeds
    tail = v[:, -20:]
    mean = np.zeros(len(v))
    for k in range(tail.shape[1]):
        mean = mean + tail[:, k]
    converged = mean / tail.shape[1] < 1
    total = np.zeros(len(v))
    inverse = np.zeros(len(v))
    for k in range(v.shape[1]):
        total = total + v[:, k]
        inverse = inverse + 1 / v[:, k]
    return np.where(converged, -total, inverse)


def train(nonlinearity, width, kind, *, lr_w0, lr_w1, offset, steps, threshold, seed=0, batch_size=16):
    """Train P points; returns escape_step, final_loss (at escape or at the end), score, losses.

    ``lr_w0``, ``lr_w1``, ``offset`` are arrays over points. ``losses`` has
    shape (P, steps + 1): the loss before each update and after the last.
    """
    w0_init, w1_init, x, y = data(width, n_data(nonlinearity, width, kind), seed)
    points = len(lr_w0)
    w0 = np.broadcast_to(w0_init, (points, width, width)).copy()
    w1 = np.broadcast_to(w1_init, (points, width)).copy()
    losses = np.empty((points, steps + 1))
    with np.errstate(all="ignore"):
        for k in range(steps + 1):
            w0 = w0 + offset[:, None, None]
            losses[:, k] = loss(nonlinearity, w0, w1, x, y)
            if kind == "minibatch":
                idx = np.random.default_rng([seed, 1, k]).integers(0, len(x), batch_size)
                g0, g1 = gradient(nonlinearity, w0, w1, x[idx], y[idx])
            else:
                g0, g1 = gradient(nonlinearity, w0, w1, x, y)
            w0 = w0 - lr_w0[:, None, None] * g0
            w1 = w1 - lr_w1[:, None] * g1
        score = convergence_measure(losses[:, :steps])
    crossed = ~(losses <= threshold)
    escape = np.where(crossed.any(axis=1), np.argmax(crossed, axis=1), -1)
    final = losses[np.arange(points), np.where(escape >= 0, escape, steps)]
    return escape, final, score, losses
