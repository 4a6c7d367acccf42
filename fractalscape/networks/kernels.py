"""The lock-step GD kernel of a one-hidden-layer network over a block of grid points.

:func:`lanes` grid points train side by side. Every quantity of a point is a row
of one buffer with the lane index innermost, so each
line of arithmetic below is a loop over lanes that LLVM turns into SIMD
instructions: the 8 doubles of an AVX-512 register are 8 grid points doing
the same multiply. A lane whose point stops (diverged, or ran all its steps)
is refilled with the next point of the block in a scalar pass; points never
interact, so a point's result does not depend on its lane or its block.

The buffer is flat (row ``r`` of lane ``k`` at ``r * lanes + k``) so that
every address is a constant offset from one pointer and LLVM can see that
rows never overlap; a 2-D array's runtime row stride hides that and stops
vectorization.

One training step of a lane, in the order of Sohl-Dickstein's ``train_step``
(``n`` the width, ``s = sqrt(n)``, ``c`` the lane's ``init_offset``)::

    W0 <- W0 + c                                  # every entry, every step
    for each sample b:   u = pre_scale * (x_b @ W0) / s
                         h = post_scale * phi(u)
                         out = (h @ W1) / s / s
                         loss += (out - y_b)**2
    loss = loss / B                               # the loss of this step
    gradient of mean((out - y)**2) over the gradient batch (the full batch,
        or the step's minibatch), by hand, sample by sample
    W0 <- W0 - lr_W0 * dW0,  W1 <- W1 - lr_W1 * dW1

Sums run in a fixed order (over the input index, the hidden index, then the
samples) and no fastmath or FMA contraction is enabled, so the ``"libm"``
kernel is bit-for-bit the plain NumPy reference of the tests.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit

from fractalscape.networks.activations import ACTIVATIONS
from fractalscape.slots import point_value

def lanes(width: int) -> int:
    """Grid points trained side by side: 16 (two AVX-512 registers of doubles), or 8 for
    networks so wide that 16 lanes of W0 and its gradient spill out of the L1 cache
    (width 16: 8 lanes measured 1.24x faster than 16; width 8: 16 lanes 1.33x faster than 8).

    >>> lanes(8), lanes(16)
    (16, 8)
    """
    return max(8, min(16, 2048 // (width * width)))

#: Sohl-Dickstein's ``convergence_measure``: normalised losses are clipped here.
CLIP = 1e6
#: ... and training converged if the mean of this many last normalised losses is < 1.
TAIL = 20


def _build(activation, width, n_data, minibatch, lanes):
    """Compile the block kernel for one network shape; see the module docstring."""
    n, L = width, lanes
    phi, dphi = activation.phi, activation.dphi
    pre_scale, post_scale = activation.pre_scale, activation.post_scale
    s = math.sqrt(n)
    # Multiplying by the reciprocal instead of dividing by sqrt(n): vdivpd is slow.
    in_scale = pre_scale / s
    out_scale = 1.0 / n
    # Rows of the lane buffer.
    W0 = 0
    W1 = W0 + n * n
    G0 = W1 + n
    G1 = G0 + n * n
    XS = G1 + n  # the current sample's inputs, per lane
    U = XS + n  # phi's arguments
    H = U + n  # post_scale * phi(U)
    (YS, OUT, LOSS, LR0, LR1, OFF, VALUE, V0, SUM_V, SUM_INV, SUM_TAIL, STEP, STOPS, ACTIVE, POINT) = range(
        H + n, H + n + 15
    )
    ROWS = POINT + 1

    # Each loop below writes every element once, from values it loaded first
    # (sums run in a register): the loop over lanes is then vectorizable.
    @njit(nogil=True, error_model="numpy")
    def sample(real, grad, count_loss, gradient_batch):
        # Forward: u = pre_scale * (x @ W0) / s, h = post_scale * phi(u), out = (h @ W1) / s / s.
        for j in range(n):
            for k in range(L):
                z = 0.0
                for i in range(n):
                    z += real[(XS + i) * L + k] * real[(W0 + i * n + j) * L + k]
                real[(U + j) * L + k] = z * in_scale
        # phi in one flat loop: its long dependency chains interleave across all n * L values.
        for e in range(n * L):
            h = phi(real[U * L + e])
            real[H * L + e] = h * post_scale if post_scale != 1.0 else h
        for k in range(L):
            a = 0.0
            for j in range(n):
                a += real[(H + j) * L + k] * real[(W1 + j) * L + k]
            r = a * out_scale - real[YS * L + k]
            real[LOSS * L + k] += r * r if count_loss else 0.0
            # d loss / d (h @ W1), kept in OUT for the backward pass.
            real[OUT * L + k] = 2.0 * r / gradient_batch * out_scale
        if grad:
            for j in range(n):
                for k in range(L):
                    c = real[OUT * L + k]
                    h = real[(H + j) * L + k]
                    real[(G1 + j) * L + k] += c * h
                    d = c * real[(W1 + j) * L + k]
                    d = d * post_scale if post_scale != 1.0 else d
                    d = d * dphi(real[(U + j) * L + k], h)
                    d = d * in_scale
                    for i in range(n):
                        real[(G0 + i * n + j) * L + k] += real[(XS + i) * L + k] * d

    @njit(nogil=True, error_model="numpy")
    def run_block(
        params, slots, c0, c1, c2, w0, w1, x, y, batches, steps, threshold, escape_step, final_loss, score
    ):
        n_points = c0.shape[0] * c1.shape[0] * c2.shape[0]
        tail = min(TAIL, steps)
        buf = np.zeros(ROWS * L, np.int64)
        real = buf.view(np.float64)
        step = buf[STEP * L : (STEP + 1) * L]  # the step whose loss the lane computes next
        stops = buf[STOPS * L : (STOPS + 1) * L]
        active = buf[ACTIVE * L : (ACTIVE + 1) * L]
        point = buf[POINT * L : (POINT + 1) * L]
        next_point = 0
        events = L  # the first scalar pass fills every lane
        while True:
            if events:
                for k in range(L):
                    if active[k] and stops[k]:
                        p = point[k]
                        last = step[k] - 1
                        value = real[VALUE * L + k]
                        diverged = not value <= threshold
                        escape_step[p] = last if diverged else -1
                        final_loss[p] = value
                        sum_v, sum_inv, sum_tail = real[SUM_V * L + k], real[SUM_INV * L + k], real[SUM_TAIL * L + k]
                        if diverged and last < steps - 1:
                            # The rest of the trajectory is taken to stay at the clip.
                            unseen = steps - 1 - last
                            sum_v += unseen * CLIP
                            sum_inv += unseen / CLIP
                            sum_tail += min(unseen, tail) * CLIP
                        score[p] = -sum_v if sum_tail / tail < 1.0 else sum_inv
                        active[k] = 0
                    if not active[k] and next_point < n_points:
                        p = next_point
                        next_point += 1
                        for slot in range(3):
                            real[(LR0 + slot) * L + k] = point_value(params, slots, c0, c1, c2, p, slot)
                        for i in range(n):
                            for j in range(n):
                                real[(W0 + i * n + j) * L + k] = w0[i, j]
                            real[(W1 + i) * L + k] = w1[i]
                        for row in (SUM_V, SUM_INV, SUM_TAIL):
                            real[row * L + k] = 0.0
                        point[k] = p
                        active[k] = 1
                        step[k] = 0
                        stops[k] = 0
                if not active.any():
                    return
            # Vector pass: one training step of every lane.
            for i in range(n * n):
                for k in range(L):
                    real[(W0 + i) * L + k] += real[OFF * L + k]
            for row in range(G0, G1 + n):
                for k in range(L):
                    real[row * L + k] = 0.0
            for k in range(L):
                real[LOSS * L + k] = 0.0
            for b in range(n_data):
                for i in range(n):
                    for k in range(L):
                        real[(XS + i) * L + k] = x[b, i]
                for k in range(L):
                    real[YS * L + k] = y[b]
                sample(real, not minibatch, True, n_data)
            if minibatch:
                # The loss above is the full batch's; the gradient is the step's minibatch's.
                for m in range(batches.shape[1]):
                    for k in range(L):
                        b = batches[min(step[k], steps), m]  # idle lanes count past steps
                        for i in range(n):
                            real[(XS + i) * L + k] = x[b, i]
                        real[YS * L + k] = y[b]
                    sample(real, True, False, batches.shape[1])
            for i in range(n * n):
                for k in range(L):
                    real[(W0 + i) * L + k] -= real[LR0 * L + k] * real[(G0 + i) * L + k]
            for i in range(n):
                for k in range(L):
                    real[(W1 + i) * L + k] -= real[LR1 * L + k] * real[(G1 + i) * L + k]
            events = 0
            for k in range(L):
                value = real[LOSS * L + k] / n_data
                real[VALUE * L + k] = value
                t = step[k]
                real[V0 * L + k] = value if t == 0 else real[V0 * L + k]
                # convergence_measure's normalised loss: NaN unless finite, clipped at CLIP.
                v0 = real[V0 * L + k]
                v = value / v0
                v = v if (v - v == 0.0) & (v0 - v0 == 0.0) else math.nan
                v = CLIP if v > CLIP else v
                scored = t < steps
                real[SUM_V * L + k] += v if scored else 0.0
                real[SUM_INV * L + k] += 1.0 / v if scored else 0.0
                real[SUM_TAIL * L + k] += v if scored and t >= steps - tail else 0.0
                stop = (not value <= threshold) | (t == steps)
                stops[k] = stop
                step[k] = t + 1
                events += stop & active[k]

    return run_block


@lru_cache(maxsize=None)
def block_kernel(nonlinearity: str, precision: str, width: int, n_data: int, minibatch: bool):
    """The compiled kernel for a network shape and precision, built once per process."""
    return _build(ACTIVATIONS[nonlinearity, precision], width, n_data, minibatch, lanes(width))
