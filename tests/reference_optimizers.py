"""An independent plain-NumPy reference of the optimizers, for the numba kernels to match bit for bit.

It shares no code with fractalscape: each rule is written again from
``torch.optim``'s single-tensor path (``foreach=False``), in its order of
floating-point operations, as :mod:`fractalscape.optimizers` documents it.
With ``g`` the gradient, ``p`` a parameter and ``t`` the step count from 1:

``gd``
    ``p - lr * g``
``momentum``, ``nesterov``
    ``b = b * momentum + g``; ``p - lr * b``, or ``p - lr * (g + momentum * b)``
``adam``, ``adamw``
    ``m = lerp(m, g, 1 - beta1)`` (torch's two branches), ``v = v * beta2 + ((1 - beta2) * g) * g``,
    ``p + (-(lr / (1 - beta1**t)) * m) / (sqrt(v) / sqrt(1 - beta2**t) + eps)``; ``adamw``
    first decays ``p * (1 - lr * weight_decay)``.

``weight_decay`` (L2: ``g + weight_decay * p``; for ``adamw`` the decoupled
decay) is applied only when given, as the kernels compile it in only where
it can be nonzero. ``beta**t`` is a Python float power, as in torch.
Arrays are ``(dim, points)``; hyperparameters are scalars or arrays over points.
"""

from __future__ import annotations


import numpy as np

from reference import loss_and_grad

#: Optimizer state arrays, each shaped like the parameters and starting at 0.
STATE = {"gd": (), "momentum": ("b",), "nesterov": ("b",), "adam": ("m", "v"), "adamw": ("m", "v")}


def _one_minus_pow(beta, t):
    """``1 - beta**t`` per point, in Python floats."""
    return np.array([1.0 - b**t for b in np.atleast_1d(beta).tolist()]).reshape(np.shape(beta))


def init_state(optimizer, x):
    """The optimizer's initial state for parameters ``x``."""
    return {name: np.zeros_like(x) for name in STATE[optimizer]}


def update(optimizer, p, g, state, t, lr, hyper):
    """Update ``t`` (from 1) of ``p`` with gradient ``g``: returns the new ``(p, state)``.

    ``hyper`` holds the optimizer's hyperparameters (``momentum``; ``beta1``,
    ``beta2``, ``eps``) and optionally ``weight_decay``.
    """
    wd = hyper.get("weight_decay")
    if wd is not None and optimizer != "adamw":
        g = g + wd * p
    if optimizer == "gd":
        return p - lr * g, state
    if optimizer in ("momentum", "nesterov"):
        mu = hyper["momentum"]
        b = state["b"] * mu + g
        return p - lr * (g + mu * b if optimizer == "nesterov" else b), {"b": b}
    if optimizer not in ("adam", "adamw"):
        raise ValueError(optimizer)
    beta1, beta2, eps = hyper["beta1"], hyper["beta2"], hyper["eps"]
    if optimizer == "adamw":
        p = p * (1.0 - lr * wd)
    w = 1.0 - np.asarray(beta1, dtype=np.float64)
    m = state["m"]
    m = np.where(w < 0.5, m + w * (g - m), g - (g - m) * (1.0 - w))
    v = state["v"] * beta2 + ((1.0 - beta2) * g) * g
    step_size = lr / _one_minus_pow(beta1, float(t))
    denom = np.sqrt(v) / np.sqrt(_one_minus_pow(beta2, float(t))) + eps
    return p + (-step_size * m) / denom, {"m": m, "v": v}


def descend(name, theta, lr, x0, steps, threshold, optimizer, **hyper):
    """Masked vectorised descent over points; returns ``(escape_step, final_loss)`` as the kernels do.

    Before each of the ``steps`` updates, and after the last, a point whose
    loss is not ``<= threshold`` stops: ``escape_step`` is the number of
    updates applied (-1 if it never stops), ``final_loss`` its last loss.
    ``lr`` and ``x0`` have shape ``(dim, points)`` (or broadcast to it).
    """
    x = np.array(x0, dtype=np.float64, copy=True)
    n = x.shape[1]
    lr = np.broadcast_to(np.asarray(lr, dtype=np.float64), x.shape)
    hyper = {k: np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)) for k, v in hyper.items() if v is not None}
    theta = {k: np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)) for k, v in theta.items()}
    state = init_state(optimizer, x)
    escape = np.full(n, -1, dtype=np.int32)
    final = np.full(n, np.nan)
    active = np.ones(n, dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps + 1):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            loss, g = loss_and_grad(name, x[:, idx], {k: v[idx] for k, v in theta.items()})
            final[idx] = loss
            gone = ~(loss <= threshold)
            escape[idx[gone]] = t
            active[idx[gone]] = False
            if t == steps:
                break
            keep = idx[~gone]
            p, new = update(optimizer, x[:, keep], g[:, ~gone], {k: s[:, keep] for k, s in state.items()},
                            t + 1, lr[:, keep], {k: v[keep] for k, v in hyper.items()})
            x[:, keep] = p
            for k, s in new.items():
                state[k][:, keep] = s
    return escape, final
