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
        or the step's minibatch), by hand, summed sample by sample
    W0 <- W0 - lr_W0 * dW0,  W1 <- W1 - lr_W1 * dW1

The samples go through in tiles of :data:`TILE` (a forward and a backward
pass per tile, not per sample), so that each entry of the gradient ``dW0``
sums a tile's samples in a register and is loaded and stored once per tile,
and the working set (``W0``, ``dW0`` and the tile's ``u``, ``h``, ``d loss /
d u`` of every lane) stays about the size of the L1 cache. The data of the full batch are
the same for every lane: they are read as scalars, which LLVM broadcasts and
keeps in registers, and the loops over hidden units and lanes then run as one
flat loop. Register blocking does the rest: two samples share each load of
``W0`` in the forward pass, two rows of ``dW0`` each load of ``d loss / d u``
in the backward pass.

Every sum still adds its terms in the order of the one-sample-at-a-time
loop (over the input index, the hidden index, then the samples), tiles and
blocking only interleave independent sums, and no fastmath or FMA
contraction is enabled, so the ``"libm"`` kernel is bit-for-bit the plain
NumPy reference of the tests.
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
    networks so wide that 16 lanes of W0 and its gradient spill out of the L1 cache.

    Measured with the tiled kernel (one core, 100 steps): width 8, 16 lanes 1.03x faster
    than 8; width 16, 8 and 16 lanes within 4% of each other (before tiling, 8 were 1.24x faster).

    >>> lanes(8), lanes(16)
    (16, 8)
    """
    return max(8, min(16, 2048 // (width * width)))


#: Samples per forward and backward pass (a tile): each gradient entry stays in a
#: register over the tile's samples. At widths 8 and 16, tiles of 4 and 8 are within
#: 4% of each other; 2 is 1.3x slower.
TILE = 4

#: Sohl-Dickstein's ``convergence_measure``: normalised losses are clipped here.
CLIP = 1e6
#: ... and training converged if the mean of this many last normalised losses is < 1.
TAIL = 20


def _build(activation, width, n_data, minibatch, lanes, tile):
    """Compile the block kernel for one network shape; see the module docstring."""
    n, L, T = width, lanes, tile
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
    U = G1 + n  # phi's arguments for the tile's samples, then d loss / d u
    H = U + T * n  # post_scale * phi(U)
    C = H + T * n  # d loss / d (h @ W1)
    XS = C + T  # a minibatch tile's inputs and targets, which differ between lanes
    YS = XS + T * n
    (LOSS, LR0, LR1, OFF, VALUE, V0, SUM_V, SUM_INV, SUM_TAIL, STEP, STOPS, ACTIVE, POINT) = range(YS + T, YS + T + 13)
    ROWS = POINT + 1

    @njit(nogil=True, inline="always")
    def input_at(real, x, first, per_lane, t, i, k):
        # Input i of the tile's sample t as lane k sees it: its minibatch's, or the shared data's.
        return real[(XS + t * n + i) * L + k] if per_lane else x[first + t, i]

    def make_tile(m, per_lane, grad, count_loss):
        """Forward and backward pass of the ``m`` samples from ``first``.

        The arguments are compile-time constants: numba drops the branches a
        pass does not take before LLVM sees them, which keeps compilation short.
        """

        # Each loop below writes every element once, from values it loaded first
        # (sums run in registers): the loop over lanes is then vectorizable.
        @njit(nogil=True, error_model="numpy", inline="always")
        def run_tile(real, x, y, first, gradient_batch):
            # Shared inputs are the same scalar for every lane, so the loops over j and
            # lanes fuse into one flat loop over j * L + k, long enough for LLVM to
            # vectorize behind a runtime alias check (the scalar loads come from x, not
            # the buffer). Per-lane inputs index the lane: nested loops over j, then k.
            rows, cols = (n, L) if per_lane else (1, n * L)
            # Forward: u = pre_scale * (x @ W0) / s, two samples per pass so that each
            # load of W0 feeds two independent sums.
            for t in range(0, m, 2):
                t2 = min(t + 1, m - 1)  # an odd tile computes its last sample twice
                for j in range(rows):
                    for k in range(cols):
                        z = 0.0
                        z2 = 0.0
                        for i in range(n):
                            w = real[(W0 + i * n + j) * L + k]
                            z += input_at(real, x, first, per_lane, t, i, k) * w
                            z2 += input_at(real, x, first, per_lane, t2, i, k) * w
                        real[(U + t * n + j) * L + k] = z * in_scale
                        real[(U + t2 * n + j) * L + k] = z2 * in_scale
            # h = post_scale * phi(u) in one flat loop: phi's long dependency chains
            # interleave across all m * n * L values.
            for e in range(m * n * L):
                h = phi(real[U * L + e])
                real[H * L + e] = h * post_scale if post_scale != 1.0 else h
            # out = (h @ W1) / s / s, the loss, and d loss / d out.
            for t in range(m):
                y_shared = 0.0 if per_lane else y[first + t]  # read before the loop: no alias check
                for k in range(L):
                    a = 0.0
                    for j in range(n):
                        a += real[(H + t * n + j) * L + k] * real[(W1 + j) * L + k]
                    r = a * out_scale - (real[(YS + t) * L + k] if per_lane else y_shared)
                    real[LOSS * L + k] += r * r if count_loss else 0.0
                    real[(C + t) * L + k] = 2.0 * r / gradient_batch * out_scale
            if grad:
                # Every gradient entry sums the tile's samples in a register: one load
                # and one store of it per tile, not per sample.
                for j in range(n):
                    for k in range(L):
                        w1 = real[(W1 + j) * L + k]
                        g1 = real[(G1 + j) * L + k]
                        for t in range(m):
                            c = real[(C + t) * L + k]
                            h = real[(H + t * n + j) * L + k]
                            g1 += c * h
                            d = c * w1
                            d = d * post_scale if post_scale != 1.0 else d
                            d = d * dphi(real[(U + t * n + j) * L + k], h)
                            real[(U + t * n + j) * L + k] = d * in_scale
                        real[(G1 + j) * L + k] = g1
                # Two rows of G0 per pass, so that each load of d feeds two independent sums.
                for i in range(0, n, 2):
                    i2 = min(i + 1, n - 1)  # an odd width computes its last row twice
                    for j in range(rows):
                        for k in range(cols):
                            g = real[(G0 + i * n + j) * L + k]
                            g2 = real[(G0 + i2 * n + j) * L + k]
                            for t in range(m):
                                d = real[(U + t * n + j) * L + k]
                                g += input_at(real, x, first, per_lane, t, i, k) * d
                                g2 += input_at(real, x, first, per_lane, t, i2, k) * d
                            real[(G0 + i * n + j) * L + k] = g
                            real[(G0 + i2 * n + j) * L + k] = g2

        return run_tile


    @njit(nogil=True, error_model="numpy", inline="always")
    def load_minibatch(real, x, y, batches, step, steps, first, m):
        # Minibatch samples first .. first + m - 1 of each lane's step.
        for t in range(m):
            for k in range(L):
                b = batches[min(step[k], steps), first + t]  # idle lanes count past steps
                for i in range(n):
                    real[(XS + t * n + i) * L + k] = x[b, i]
                real[(YS + t) * L + k] = y[b]

    def make_samples(per_lane, grad, count_loss):
        """All of a batch's samples in order: whole tiles, then the rest one by one."""
        full_tile, one_sample = make_tile(T, per_lane, grad, count_loss), make_tile(1, per_lane, grad, count_loss)

        @njit(nogil=True, error_model="numpy", inline="always")
        def samples(real, x, y, batches, step, steps, count):
            whole = count - count % T
            for first in range(0, whole, T):
                if per_lane:
                    load_minibatch(real, x, y, batches, step, steps, first, T)
                full_tile(real, x, y, first, count)
            for first in range(whole, count):
                if per_lane:
                    load_minibatch(real, x, y, batches, step, steps, first, 1)
                one_sample(real, x, y, first, count)

        return samples

    # The full batch gives the loss, and the gradient unless a minibatch does.
    full_batch = make_samples(False, not minibatch, True)
    minibatch_gradient = make_samples(True, True, False)

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
            full_batch(real, x, y, batches, step, steps, n_data)
            if minibatch:
                # The loss above is the full batch's; the gradient is the step's minibatch's.
                minibatch_gradient(real, x, y, batches, step, steps, batches.shape[1])
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
    return _build(ACTIVATIONS[nonlinearity, precision], width, n_data, minibatch, lanes(width), TILE)
