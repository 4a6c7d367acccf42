"""A plain-NumPy trainer of fully connected networks, the reference for fractalscape.networks.

It shares no code with fractalscape. It trains all points at once (arrays
over points, the point index first), runs every trajectory to the end
without a threshold, and reads the escape step, the final loss and the score
off the whole trajectory afterwards. Sums run in the kernel's order (the
input index, the hidden index, then the samples, each from 0.0), and tanh,
erf, exp and log1p are the C library's, called per element through
``math`` (NumPy's own ``np.tanh`` and ``np.exp`` are SIMD implementations
that differ from libm in the last bit), so the ``"libm"`` kernel must agree
bit for bit.

The network (see ``NetworkModel``): ``depth`` weight layers, ``(n, n)``
each and the last ``(n,)``; with the layer scales ``hidden``, ``out`` of
the parameterization (mean-field ``1/sqrt(n)``, ``1/n``; ntk ``1/sqrt(n)``,
``1/sqrt(n)``; standard ``1``, ``1`` and initial weights times
``1/sqrt(n)``) and ``in_scale = pre_scale * hidden``::

    u_l = (h_{l-1} @ W_l) * in_scale,   h_l = post_scale * phi(u_l)     (h_{-1} = x)
    out = (h @ W_last) * out
    mse: (out - y)**2;  logistic: softplus(-y out), y = +-1

:func:`train_network` is the general trainer (any depth, parameterization,
loss, nonlinearity, ``init_scale``, ``init_offset`` and optimizer, full
batch or minibatches); :func:`train` and the two-layer :func:`forward`,
:func:`loss`, :func:`gradient` are the original mean-field MSE API.
The optimizers' update rules are ``tests/reference_optimizers.py``'s.
"""

from __future__ import annotations

import math

import numpy as np

SQRT2 = math.sqrt(2.0)
INV_SQRT2 = 1.0 / SQRT2
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
#: convergence_measure's clip and the number of last losses it averages.
CLIP = 1e6
TAIL = 20

NONLINEARITIES = ("tanh", "relu", "identity", "gelu")
PARAMETERIZATIONS = ("mean-field", "standard", "ntk")
LOSSES = ("mse", "logistic")


def _libm_exp(v):
    """``math.exp`` with C's overflow to inf instead of Python's OverflowError."""
    try:
        return math.exp(v)
    except OverflowError:
        return math.inf


_tanh = np.vectorize(math.tanh, otypes=[np.float64])
_erf = np.vectorize(math.erf, otypes=[np.float64])
_exp = np.vectorize(_libm_exp, otypes=[np.float64])
_log1p = np.vectorize(math.log1p, otypes=[np.float64])


# -- the network ------------------------------------------------------------------------------


def layer_factors(parameterization, width):
    """``(hidden, out, init)``: factors on ``h @ W`` of a hidden and of the output layer, and on N(0, 1) weights."""
    inv_root = 1.0 / math.sqrt(width)
    return {
        "mean-field": (inv_root, 1.0 / width, 1.0),
        "ntk": (inv_root, inv_root, 1.0),
        "standard": (1.0, 1.0, inv_root),
    }[parameterization]


def pre_post(nonlinearity):
    """``(pre_scale, post_scale)``: ``tanh(sqrt(2) z)``, ``sqrt(2) relu(z)``, ``z``, ``gelu(z)``."""
    return (SQRT2 if nonlinearity == "tanh" else 1.0), (SQRT2 if nonlinearity == "relu" else 1.0)


def phi(nonlinearity, u):
    if nonlinearity == "tanh":
        return _tanh(u)
    if nonlinearity == "relu":
        return np.where(u > 0.0, u, 0.0)
    if nonlinearity == "gelu":
        return u * (0.5 * (1.0 + _erf(u * INV_SQRT2)))
    return u


def dphi(nonlinearity, u, h):
    """``d phi / d u`` at ``u``, given ``h = phi(u)``."""
    if nonlinearity == "tanh":
        return 1.0 - h * h
    if nonlinearity == "relu":
        return np.where(u > 0.0, 1.0, 0.0)
    if nonlinearity == "gelu":
        return 0.5 * (1.0 + _erf(u * INV_SQRT2)) + u * (INV_SQRT_2PI * _exp(-0.5 * (u * u)))
    return np.ones_like(u)


class Net:
    """A network's shape: nonlinearity, width, depth, parameterization and loss."""

    def __init__(self, nonlinearity="tanh", width=3, depth=2, parameterization="mean-field", loss="mse"):
        assert nonlinearity in NONLINEARITIES and parameterization in PARAMETERIZATIONS and loss in LOSSES
        assert depth >= 1
        self.nonlinearity, self.width, self.depth = nonlinearity, width, depth
        self.parameterization, self.loss_kind = parameterization, loss
        self.hidden, self.out_scale, self.init = layer_factors(parameterization, width)
        self.pre, self.post = pre_post(nonlinearity)
        self.in_scale = self.pre * self.hidden  # the kernel multiplies by this product

    def forward(self, weights, x):
        """``us``, ``hs`` (each ``(P, B, n)`` per hidden layer) and the output ``(P, B)``.

        ``weights[l]`` is ``(P, n, n)``, the last ``(P, n)``; ``x`` is ``(B, n)``.
        """
        n = self.width
        points = weights[0].shape[0]
        h = x[None]
        us, hs = [], []
        for w in weights[:-1]:
            z = np.zeros((points, x.shape[0], n))
            for i in range(n):
                z = z + h[:, :, i, None] * w[:, None, i, :]
            u = z * self.in_scale
            h = phi(self.nonlinearity, u)
            if self.post != 1.0:
                h = h * self.post
            us.append(u)
            hs.append(h)
        w = weights[-1]
        a = np.zeros((points, x.shape[0]))
        for j in range(n):
            a = a + h[:, :, j] * w[:, None, j]
        return us, hs, a * self.out_scale

    def terms(self, out, y):
        """Per-sample losses ``(P, B)`` and ``d loss_b / d out_b``."""
        if self.loss_kind == "logistic":
            margin = y[None, :] * out
            z = -margin
            return np.where(z > 0.0, z, 0.0) + _log1p(_exp(-np.abs(z))), -y[None, :] / (1.0 + _exp(margin))
        r = out - y[None, :]
        return r * r, 2.0 * r

    def loss(self, weights, x, y):
        """The mean loss over the samples, summed in sample order."""
        _, _, out = self.forward(weights, x)
        terms, _ = self.terms(out, y)
        total = np.zeros(terms.shape[0])
        for b in range(terms.shape[1]):
            total = total + terms[:, b]
        return total / terms.shape[1]

    def gradient(self, weights, x, y):
        """The gradients of the mean loss over the samples of ``x``, ``y``, accumulated sample by sample."""
        us, hs, out = self.forward(weights, x)
        _, dout = self.terms(out, y)
        batch = x.shape[0]
        c = dout / batch * self.out_scale  # mse: (2.0 * r) / B * out, as the kernel groups it
        inputs = [np.broadcast_to(x[None], (out.shape[0], *x.shape)), *hs]
        grads = [np.zeros_like(w) for w in weights]
        last = self.depth - 1
        for b in range(batch):
            grads[last] = grads[last] + c[:, b, None] * inputs[last][:, b, :]
        if last == 0:
            return grads
        d = c[:, :, None] * weights[last][:, None, :]
        d = self._back(d, us[last - 1], hs[last - 1])
        for layer in range(last - 1, -1, -1):
            for b in range(batch):
                grads[layer] = grads[layer] + inputs[layer][:, b, :, None] * d[:, b, None, :]
            if layer > 0:
                w = weights[layer]
                s = np.zeros_like(d)
                for j in range(self.width):
                    s = s + w[:, None, :, j] * d[:, :, None, j]
                d = self._back(s, us[layer - 1], hs[layer - 1])
        return grads

    def _back(self, s, u, h):
        """``d loss / d (h @ W)`` of a hidden layer from ``s = d loss / d h`` (before ``post_scale``)."""
        if self.post != 1.0:
            s = s * self.post
        return s * dphi(self.nonlinearity, u, h) * self.in_scale


def default_n_data(nonlinearity, width, kind, depth=2):
    """His dataset size: 1 for one datapoint, ``width`` for identity, else the number of weights."""
    if kind == "single":
        return 1
    return width if nonlinearity == "identity" else (depth - 1) * width * width + width


def network_data(width, n_data, seed, depth=2, parameterization="mean-field", loss="mse"):
    """``[W0 .. W{depth-1}]``, X (B, n), Y (B,): N(0, 1) from default_rng(seed), in that order.

    Hidden weights ``(n, n)``, the last ``(n,)``; ``standard`` scales the
    weights by ``1/sqrt(n)``; ``logistic`` takes the sign of Y (+1 for 0).
    """
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((width, width)) for _ in range(depth - 1)] + [rng.standard_normal(width)]
    x = rng.standard_normal((n_data, width))
    y = rng.standard_normal(n_data)
    init = layer_factors(parameterization, width)[2]
    if init != 1.0:
        weights = [w * init for w in weights]
    if loss == "logistic":
        y = np.where(y >= 0.0, 1.0, -1.0)
    return weights, x, y


def minibatch_indices(n_data, batch_size, seed, step):
    """The indices of step ``step``'s minibatch (``rng="numpy"``)."""
    return np.random.default_rng([seed, 1, step]).integers(0, n_data, batch_size)


# -- the score ----------------------------------------------------------------------------------


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


def escape_and_final(losses, threshold):
    """``escape_step`` (first loss not ``<= threshold``, -1 if none) and the loss there (or at the end)."""
    crossed = ~(losses <= threshold)
    escape = np.where(crossed.any(axis=1), np.argmax(crossed, axis=1), -1)
    steps = losses.shape[1] - 1
    final = losses[np.arange(len(losses)), np.where(escape >= 0, escape, steps)]
    return escape, final


def stopped_score(losses, threshold):
    """The ``score`` readout of trajectories ``losses`` (P, steps + 1) that stop at the threshold.

    As documented in ``NetworkModel``: the losses before each of the ``steps``
    updates, normalised by the first (NaN unless finite, clipped at 1e6),
    summed in step order; a point that crosses the threshold at step ``t``
    stops, and its ``unseen = steps - 1 - t`` remaining normalised losses
    count as the clip, added as the one term ``unseen * 1e6`` (``unseen / 1e6``
    to the inverses, ``min(unseen, tail) * 1e6`` to the tail). With
    ``threshold = inf`` this is :func:`convergence_measure` of the trajectory.
    """
    points, steps = losses.shape[0], losses.shape[1] - 1
    escape, _ = escape_and_final(losses, threshold)
    tail = min(TAIL, steps)
    with np.errstate(all="ignore"):
        v0 = losses[:, 0]
        total, inverse, tail_sum = np.zeros(points), np.zeros(points), np.zeros(points)
        for k in range(steps):
            seen = (escape < 0) | (k <= escape)
            v = losses[:, k] / v0
            v = np.where(np.isfinite(v) & np.isfinite(v0), v, np.nan)
            v = np.where(v > CLIP, CLIP, v)
            total = np.where(seen, total + v, total)
            inverse = np.where(seen, inverse + 1.0 / v, inverse)
            if k >= steps - tail:
                tail_sum = np.where(seen, tail_sum + v, tail_sum)
        unseen = np.where((escape >= 0) & (escape < steps - 1), steps - 1 - escape, 0)
        early = unseen > 0
        total = np.where(early, total + unseen * CLIP, total)
        inverse = np.where(early, inverse + unseen / CLIP, inverse)
        tail_sum = np.where(early, tail_sum + np.minimum(unseen, tail) * CLIP, tail_sum)
        return np.where(tail_sum / tail < 1.0, -total, inverse)


# -- training -----------------------------------------------------------------------------------


def _per_point(value, points):
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (points,)).copy()


def _column(a, ndim):
    """A per-point array shaped to broadcast against an ``ndim``-dimensional parameter ``(P, ...)``."""
    return a.reshape((-1,) + (1,) * (ndim - 1))


def _update(optimizer, p, g, state, t, lr, hyper):
    """Update ``t`` (from 1) of a layer ``p`` (P, ...) by ``tests/reference_optimizers.py``.

    ``lr`` and ``hyper``'s values are arrays over the P points; that module's
    arrays are ``(dim, points)``, so the point axis moves last and back.
    """
    if optimizer == "gd" and not hyper:
        return p - _column(lr, p.ndim) * g, state
    import reference_optimizers

    last = lambda a: np.moveaxis(a, 0, -1)  # noqa: E731
    first = lambda a: np.moveaxis(a, -1, 0)  # noqa: E731
    p, state = reference_optimizers.update(optimizer, last(p), last(g), {k: last(v) for k, v in state.items()}, t,
                                           lr, hyper)
    return first(p), {k: first(v) for k, v in state.items()}


def _init_state(optimizer, p):
    if optimizer == "gd":
        return {}
    import reference_optimizers

    return reference_optimizers.init_state(optimizer, p)


def train_network(nonlinearity="tanh", width=3, kind="full", *, lrs, steps, threshold, depth=2,
                  parameterization="mean-field", loss="mse", offset=0.0, init_scale=1.0, seed=0, batch_size=16,
                  n_data=None, optimizer="gd", hyper=None, arrays=None):
    """Train P points; returns ``escape_step``, ``final_loss``, ``score`` and the losses.

    ``lrs``: one learning rate array over points per layer (a single array
    sets every layer); ``offset`` (init_offset) and ``init_scale`` are arrays
    over points or scalars; ``hyper`` the optimizer's hyperparameters
    (scalars or arrays over points; weight decay only when nonzero, as the
    kernels compile it). ``kind`` is ``"full"``, ``"single"`` or
    ``"minibatch"`` (indices from ``default_rng([seed, 1, k])``, the loss
    still the full batch's). ``arrays`` replaces the drawn
    ``(weights, x, y)``. ``losses`` has shape (P, steps + 1): the loss
    before each update and after the last. ``score`` is
    :func:`stopped_score` at ``threshold``.
    """
    net = Net(nonlinearity, width, depth, parameterization, loss)
    if n_data is None:
        n_data = default_n_data(nonlinearity, width, kind, depth)
    weights0, x, y = arrays if arrays is not None else network_data(width, n_data, seed, depth, parameterization, loss)
    if isinstance(lrs, np.ndarray) and lrs.ndim == 1:
        lrs = [lrs] * depth
    points = len(lrs[0])
    lrs = [_per_point(lr, points) for lr in lrs]
    assert len(lrs) == depth
    offset, init_scale = _per_point(offset, points), _per_point(init_scale, points)
    hyper = {k: _per_point(v, points) for k, v in (hyper or {}).items()}
    weights = [np.broadcast_to(w, (points, *w.shape)) * _column(init_scale, w.ndim + 1) for w in weights0]
    state = [_init_state(optimizer, w) for w in weights]
    losses = np.empty((points, steps + 1))
    with np.errstate(all="ignore"):
        for k in range(steps + 1):
            weights[0] = weights[0] + _column(offset, weights[0].ndim)
            losses[:, k] = net.loss(weights, x, y)
            if kind == "minibatch":
                idx = minibatch_indices(len(x), batch_size, seed, k)
                grads = net.gradient(weights, x[idx], y[idx])
            else:
                grads = net.gradient(weights, x, y)
            for layer, (w, g) in enumerate(zip(weights, grads)):
                weights[layer], state[layer] = _update(optimizer, w, g, state[layer], k + 1, lrs[layer], hyper)
    escape, final = escape_and_final(losses, threshold)
    return escape, final, stopped_score(losses, threshold), losses


# -- the original two-layer mean-field MSE API ----------------------------------------------------


def data(width, n_data, seed):
    """W0 (n, n), W1 (n,), X (B, n), Y (B,): N(0, 1) from default_rng(seed), in that order."""
    (w0, w1), x, y = network_data(width, n_data, seed)
    return w0, w1, x, y


def n_data(nonlinearity, width, kind):
    return default_n_data(nonlinearity, width, kind)


def scales(nonlinearity, width):
    """(factor on x @ W0, factor on phi, factor on h @ W1) of the mean-field network."""
    net = Net(nonlinearity, width)
    return net.in_scale, net.post, net.out_scale


def forward(nonlinearity, w0, w1, x):
    """u (P, B, n), h (P, B, n) and the network output (P, B) for weights over P points."""
    us, hs, out = Net(nonlinearity, w0.shape[1]).forward([w0, w1], x)
    return us[0], hs[0], out


def loss(nonlinearity, w0, w1, x, y):
    """mean((out - y)**2) over the samples, summed in sample order."""
    return Net(nonlinearity, w0.shape[1]).loss([w0, w1], x, y)


def gradient(nonlinearity, w0, w1, x, y):
    """(dL/dW0, dL/dW1) of the loss over the samples of x, y, accumulated sample by sample."""
    g0, g1 = Net(nonlinearity, w0.shape[1]).gradient([w0, w1], x, y)
    return g0, g1


def train(nonlinearity, width, kind, *, lr_w0, lr_w1, offset, steps, threshold, seed=0, batch_size=16):
    """Train P points; returns escape_step, final_loss (at escape or at the end), score, losses.

    ``lr_w0``, ``lr_w1``, ``offset`` are arrays over points. ``losses`` has
    shape (P, steps + 1): the loss before each update and after the last;
    ``score`` is the notebook's :func:`convergence_measure` of the whole
    trajectory (the kernel's with ``threshold = inf``).
    """
    escape, final, _, losses = train_network(nonlinearity, width, kind, lrs=[lr_w0, lr_w1], offset=offset,
                                             steps=steps, threshold=threshold, seed=seed, batch_size=batch_size)
    with np.errstate(all="ignore"):
        score = convergence_measure(losses[:, :steps])
    return escape, final, score, losses
