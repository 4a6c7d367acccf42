"""The lane program of a fully connected network: forward and backward passes over lanes.

:func:`lanes` grid points train side by side in the lane driver
(:mod:`fractalscape.gd`). Every quantity of a point is a row of one buffer
with the lane index innermost, so each line of arithmetic below is a loop
over lanes that LLVM turns into SIMD instructions: the 8 doubles of an
AVX-512 register are 8 grid points doing the same multiply. The buffer is
flat (row ``r`` of lane ``k`` at ``r * lanes + k``) so that every address is
a constant offset from one pointer and LLVM can see that rows never
overlap; a 2-D array's runtime row stride hides that and stops
vectorization.

The network has ``depth`` weight layers ``W_0 .. W_{D-1}``: ``(n, n)`` each,
the last ``(n,)`` (a scalar output), ``n`` the width. One gradient of a lane,
in the order of Sohl-Dickstein's ``train_step`` (``c`` the lane's
``init_offset``, ``a_l`` the layer scales of the parameterization, see
docs/networks.md)::

    W_0 <- W_0 + c                                # every entry, every step
    for each sample b:   h = x_b
                         for each hidden layer l:  u = (h @ W_l) * (pre_scale * a_l),
                                                   h = post_scale * phi(u)
                         out = (h @ W_{D-1}) * a_out
                         loss += mse: (out - y_b)**2;  logistic: softplus(-y_b out)
    loss = loss / B                               # the loss of this step
    gradient of the loss over the gradient batch (the full batch, or the
        step's minibatch), by hand, summed sample by sample

and the optimizer updates every ``W_l`` with its layer's learning rate.

The samples go through in tiles of :data:`TILE` (a forward and a backward
pass per tile, not per sample), so that each entry of a gradient sums a
tile's samples in a register and is loaded and stored once per tile, and
the working set stays about the size of the L1 cache. The data of the full
batch are the same for every lane: they are read as scalars, which LLVM
broadcasts and keeps in registers, and the loops over hidden units and
lanes of the first layer run as one flat loop. Register blocking does the
rest: two samples share each load of ``W_0`` in the forward pass, two rows
of a gradient each load of ``d loss / d u`` in the backward pass. Rows that
differ between lanes (the hidden layers', a minibatch's inputs) keep the
loop over lanes innermost: 4 x 4 blocks of sums in registers, a few terms
at a time, each added to its partial sum in the buffer (see ``CH`` below).

Every sum still adds its terms in the order of the one-sample-at-a-time
loop (over the input index, the hidden index, then the samples, each from
0.0), tiles and blocking only interleave independent sums, and no fastmath
or FMA contraction is enabled, so the ``"libm"`` program is bit for bit the
plain NumPy reference of the tests (``tests/network_reference.py``).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit

from fractalscape.model import Layout, Program
from fractalscape.networks.activations import ACTIVATIONS


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

PARAMETERIZATIONS = ("mean-field", "standard", "ntk")
LOSSES = ("mse", "logistic")


def layer_scales(parameterization: str, width: int) -> tuple[float, float, float]:
    """``(hidden, output, init)``: the factors on ``h @ W`` of a hidden and of the output layer,
    and on the N(0, 1) initial weights.

    >>> layer_scales("mean-field", 16), layer_scales("ntk", 16), layer_scales("standard", 16)
    ((0.25, 0.0625, 1.0), (0.25, 0.25, 1.0), (1.0, 1.0, 0.25))
    """
    root = math.sqrt(width)
    return {"mean-field": (1.0 / root, 1.0 / width, 1.0), "ntk": (1.0 / root, 1.0 / root, 1.0),
            "standard": (1.0, 1.0, 1.0 / root)}[parameterization]


def n_params(depth: int, width: int) -> int:
    """Weights of a depth-``depth`` network of width ``width`` with a scalar output."""
    return (depth - 1) * width * width + width


@njit(nogil=True, inline="always")
def _softplus(z):
    """log(1 + exp(z)) without overflow."""
    return (z if z > 0.0 else 0.0) + math.log1p(math.exp(-abs(z)))


@lru_cache(maxsize=None)
def program(nonlinearity: str, precision: str, parameterization: str, loss: str, depth: int, width: int,
            minibatch: bool) -> Program:
    """The network's lane program (:class:`fractalscape.model.Program`), built once per process.

    The width is compiled in; the dataset and minibatch sizes are read from the data arrays.
    """
    L = lanes(width)
    T = TILE
    n_scratch = (depth - 1) * 2 * T * width + T + T * width + T + 1
    group = tuple(layer for layer in range(depth) for _ in range(width * width if layer < depth - 1 else width))
    key = ("network", nonlinearity, precision, parameterization, loss, depth, width, minibatch)
    activation = ACTIVATIONS[nonlinearity, precision]

    def build(layout: Layout):
        return _build(activation, parameterization, loss, depth, width, minibatch, layout, T)

    return Program(key, L, n_params(depth, width), group, n_scratch, True, False, build, cache_key=key)


def _build(activation, parameterization, loss_kind, depth, width, minibatch, layout: Layout, T):
    """Compile-time constants, then the tile passes, then ``init``, ``gradient`` and ``loss``."""
    from fractalscape.gd import flat

    n, D, L = width, depth, layout.lanes
    phi, dphi = activation.phi, activation.dphi
    pre_scale, post_scale = activation.pre_scale, activation.post_scale
    hidden, out_scale, _ = layer_scales(parameterization, n)
    # Multiplying by the reciprocal instead of dividing by sqrt(n): vdivpd is slow.
    in_scale = pre_scale * hidden
    logistic = loss_kind == "logistic"
    NP = n_params(D, n)
    P, G, SC, NEED, SIZE = layout.params, layout.grads, layout.scratch, layout.need, layout.size * L
    OFF, SCALE = layout.theta + D, layout.theta + D + 1  # init_offset, init_scale
    W = [P + layer * n * n for layer in range(D)]  # W[D-1]: the output layer's n weights
    GW = [G + layer * n * n for layer in range(D)]
    C = SC + (D - 1) * 2 * T * n  # d loss / d (h @ W_out)
    XS = C + T  # a minibatch tile's inputs and targets, which differ between lanes
    YS = XS + T * n
    LOSS = YS + T
    W0, U0, H0 = W[0], SC, SC + T * n  # the first layer's rows (U0, H0: depth > 1)

    STRIDE = 2 * T * n  # rows between one hidden layer's U (or H) and the next's

    def make_tile(m, per_lane, grad, count_loss):
        """Forward and backward pass of the ``m`` samples from ``first``.

        The arguments are compile-time constants: numba drops the branches a
        pass does not take before LLVM sees them, which keeps compilation short.
        The first hidden layer reads the data; the others (all ``(n, n)``, at a
        constant stride) run as one loop over layers through the same three
        building blocks, so the compiled code does not grow with the depth.
        """

        def make_input(shared):
            # Input i of the tile's sample t as lane k sees it: the shared data's, or rows from IN
            # (a minibatch tile's inputs, or the previous layer's activations).
            if shared:
                @njit(nogil=True, inline="always")
                def input_at(real, x, IN, first, t, i, k):
                    return x[first + t, i]
            else:
                @njit(nogil=True, inline="always")
                def input_at(real, x, IN, first, t, i, k):
                    return real[(IN + t * n + i) * L + k]
            return input_at

        # Per-lane inputs (a hidden layer's, a minibatch's) differ between lanes, so the lane
        # loop cannot fuse with another one; it is the innermost loop once LLVM unrolls the
        # constant-length loops inside it, which are kept short: each sum takes CH terms at a
        # time, added in order to its partial sum in the buffer, for blocks of 4 samples x 4
        # outputs (a repeat past the end recomputes the last one), 16 independent sums in
        # registers per vector of lanes, each load feeding 4 of them. A reduction loop
        # innermost instead (over all n terms, one or two sums) ran 2-4x slower.
        CH = 4 if n % 4 == 0 else (2 if n % 2 == 0 else 1)

        def make_block(rows_max, left_transposed, right_transposed):
            """acc[r, c] += sum over s0 <= s < s1 of left[r, s] * right[s, c], for a 4 x 4 block of (r, c).

            Each operand is rows of n values a lane at a base row of the buffer
            (``left[a, b]`` is row ``base + a * n + b``, or ``base + b * n + a``
            when transposed). The block is rows r .. r + 3 (at most
            ``rows_max``) and columns c .. c + 3 (at most n - 1): a repeat past
            the end recomputes the last one and stores it again, unchanged.
            Each sum is loaded from ``acc``, adds its terms in order and is
            stored back; the 16 sums stay in registers while the lane loop runs
            innermost, each load feeding 4 of them.
            """
            def index_of(transposed):
                if transposed:
                    @njit(nogil=True, inline="always")
                    def index(base, a, b, k):
                        return (base + b * n + a) * L + k
                else:
                    @njit(nogil=True, inline="always")
                    def index(base, a, b, k):
                        return (base + a * n + b) * L + k
                return index

            at, left, right = index_of(False), index_of(left_transposed), index_of(right_transposed)

            @njit(nogil=True, error_model="numpy", inline="always")
            def block(real, ACC, LEFT, RIGHT, r, c, s0, s1):
                r0, r1, r2, r3 = r, min(r + 1, rows_max), min(r + 2, rows_max), min(r + 3, rows_max)
                c0, c1, c2, c3 = c, min(c + 1, n - 1), min(c + 2, n - 1), min(c + 3, n - 1)
                for k in range(L):
                    z00 = real[at(ACC, r0, c0, k)]
                    z01 = real[at(ACC, r0, c1, k)]
                    z02 = real[at(ACC, r0, c2, k)]
                    z03 = real[at(ACC, r0, c3, k)]
                    z10 = real[at(ACC, r1, c0, k)]
                    z11 = real[at(ACC, r1, c1, k)]
                    z12 = real[at(ACC, r1, c2, k)]
                    z13 = real[at(ACC, r1, c3, k)]
                    z20 = real[at(ACC, r2, c0, k)]
                    z21 = real[at(ACC, r2, c1, k)]
                    z22 = real[at(ACC, r2, c2, k)]
                    z23 = real[at(ACC, r2, c3, k)]
                    z30 = real[at(ACC, r3, c0, k)]
                    z31 = real[at(ACC, r3, c1, k)]
                    z32 = real[at(ACC, r3, c2, k)]
                    z33 = real[at(ACC, r3, c3, k)]
                    for s in range(s0, s1):
                        a0 = real[left(LEFT, r0, s, k)]
                        a1 = real[left(LEFT, r1, s, k)]
                        a2 = real[left(LEFT, r2, s, k)]
                        a3 = real[left(LEFT, r3, s, k)]
                        b0 = real[right(RIGHT, s, c0, k)]
                        b1 = real[right(RIGHT, s, c1, k)]
                        b2 = real[right(RIGHT, s, c2, k)]
                        b3 = real[right(RIGHT, s, c3, k)]
                        z00 += a0 * b0
                        z01 += a0 * b1
                        z02 += a0 * b2
                        z03 += a0 * b3
                        z10 += a1 * b0
                        z11 += a1 * b1
                        z12 += a1 * b2
                        z13 += a1 * b3
                        z20 += a2 * b0
                        z21 += a2 * b1
                        z22 += a2 * b2
                        z23 += a2 * b3
                        z30 += a3 * b0
                        z31 += a3 * b1
                        z32 += a3 * b2
                        z33 += a3 * b3
                    real[at(ACC, r0, c0, k)] = z00
                    real[at(ACC, r0, c1, k)] = z01
                    real[at(ACC, r0, c2, k)] = z02
                    real[at(ACC, r0, c3, k)] = z03
                    real[at(ACC, r1, c0, k)] = z10
                    real[at(ACC, r1, c1, k)] = z11
                    real[at(ACC, r1, c2, k)] = z12
                    real[at(ACC, r1, c3, k)] = z13
                    real[at(ACC, r2, c0, k)] = z20
                    real[at(ACC, r2, c1, k)] = z21
                    real[at(ACC, r2, c2, k)] = z22
                    real[at(ACC, r2, c3, k)] = z23
                    real[at(ACC, r3, c0, k)] = z30
                    real[at(ACC, r3, c1, k)] = z31
                    real[at(ACC, r3, c2, k)] = z32
                    real[at(ACC, r3, c3, k)] = z33

            return block

        # u[t, j] += h[t, i] W[i, j]; G[i, j] += h[t, i] d[t, j]; d_below[t, i] += d[t, j] W[i, j]
        # (an IEEE product does not depend on its operands' order, so neither do the sums).
        samples_by_weights = make_block(m - 1, False, False)
        inputs_by_deltas = make_block(n - 1, True, False)
        deltas_by_weights = make_block(m - 1, False, True)

        def make_forward(shared):
            if shared:
                input_at = make_input(shared)
                # Shared inputs are the same scalar for every lane, so the loops over j and
                # lanes fuse into one flat loop over j * L + k, long enough for LLVM to
                # vectorize behind a runtime alias check (the scalar loads come from x, not
                # the buffer). Each loop writes every element once, from values it loaded
                # first (sums run in registers).
                rows, cols = 1, n * L

                @njit(nogil=True, error_model="numpy", inline="always")
                def forward(real, x, first, IN, WL, UL, HL):
                    # u = (h @ W) * in_scale, two samples per pass so that each load of W feeds
                    # two independent sums.
                    for t in range(0, m, 2):
                        t2 = min(t + 1, m - 1)  # an odd tile computes its last sample twice
                        for j in range(rows):
                            for k in range(cols):
                                z = 0.0
                                z2 = 0.0
                                for i in range(n):
                                    w = real[(WL + i * n + j) * L + k]
                                    z += input_at(real, x, IN, first, t, i, k) * w
                                    z2 += input_at(real, x, IN, first, t2, i, k) * w
                                real[(UL + t * n + j) * L + k] = z * in_scale
                                real[(UL + t2 * n + j) * L + k] = z2 * in_scale
                    # h = post_scale * phi(u) in one flat loop: phi's long dependency chains
                    # interleave across all m * n * L values.
                    for e in range(m * n * L):
                        h = phi(real[UL * L + e])
                        real[HL * L + e] = h * post_scale if post_scale != 1.0 else h

                return forward

            @njit(nogil=True, error_model="numpy", inline="always")
            def forward(real, x, first, IN, WL, UL, HL):
                # u = h @ W: samples t .. t + 3, outputs j .. j + 3, inputs ib .. ib + CH - 1 per pass.
                for e in range(m * n * L):
                    real[UL * L + e] = 0.0
                for t in range(0, m, 4):
                    for ib in range(0, n, CH):
                        for j in range(0, n, 4):
                            samples_by_weights(real, UL, IN, WL, t, j, ib, ib + CH)
                # u = (h @ W) * in_scale and h = post_scale * phi(u) in one flat loop.
                for e in range(m * n * L):
                    u = real[UL * L + e] * in_scale
                    real[UL * L + e] = u
                    h = phi(u)
                    real[HL * L + e] = h * post_scale if post_scale != 1.0 else h

            return forward

        def make_weight_gradient(shared):
            if shared:
                input_at = make_input(shared)
                rows, cols = 1, n * L  # columns and lanes as one flat loop

                @njit(nogil=True, error_model="numpy", inline="always")
                def weight_gradient(real, x, first, IN, GL, UL):
                    # G += input^T d, two rows per pass so that each load of d feeds two sums.
                    for i in range(0, n, 2):
                        i2 = min(i + 1, n - 1)  # an odd width computes its last row twice
                        for j in range(rows):
                            for k in range(cols):
                                g = real[(GL + i * n + j) * L + k]
                                g2 = real[(GL + i2 * n + j) * L + k]
                                for t in range(m):
                                    d = real[(UL + t * n + j) * L + k]
                                    g += input_at(real, x, IN, first, t, i, k) * d
                                    g2 += input_at(real, x, IN, first, t, i2, k) * d
                                real[(GL + i * n + j) * L + k] = g
                                real[(GL + i2 * n + j) * L + k] = g2

                return weight_gradient

            @njit(nogil=True, error_model="numpy", inline="always")
            def weight_gradient(real, x, first, IN, GL, UL):
                # G += input^T d over the tile's samples: rows i .. i + 3 and columns j .. j + 3 per pass.
                for i in range(0, n, 4):
                    for j in range(0, n, 4):
                        inputs_by_deltas(real, GL, IN, UL, i, j, 0, m)

            return weight_gradient

        @njit(nogil=True, error_model="numpy", inline="always")
        def back_through(real, WL, UL, UB, HB):
            # d loss / d (h @ W) of the layer below: back through W and phi. Its h (HB) is dead
            # once this layer's weight gradient has read it, so HB takes phi'(u) and UB the sums
            # over j: samples t .. t + 3, rows i .. i + 3, terms jb .. jb + CH - 1 per pass.
            for e in range(m * n * L):
                real[HB * L + e] = dphi(real[UB * L + e], real[HB * L + e])
                real[UB * L + e] = 0.0
            for t in range(0, m, 4):
                for jb in range(0, n, CH):
                    for i in range(0, n, 4):
                        deltas_by_weights(real, UB, UL, WL, t, i, jb, jb + CH)
            for e in range(m * n * L):
                d = real[UB * L + e]
                d = d * post_scale if post_scale != 1.0 else d
                real[UB * L + e] = (d * real[HB * L + e]) * in_scale

        data_shared = not per_lane
        first_forward, hidden_forward = make_forward(data_shared), make_forward(False)
        first_gradient, hidden_gradient = make_weight_gradient(data_shared), make_weight_gradient(False)
        out_input = make_input(data_shared if D == 1 else False)
        OUT_IN = XS if D == 1 else H0 + (D - 2) * STRIDE  # rows feeding the output layer
        WO, GO = W[D - 1], GW[D - 1]
        UO = U0 + (D - 2) * STRIDE  # the last hidden layer's U (depth > 1)

        # The layers past the first, chosen here rather than behind a branch on the layer: a
        # network without them (depth <= 2) does not compile their code (it took longer than
        # the rest of the kernel).
        if D > 2:
            @njit(nogil=True, error_model="numpy", inline="always")
            def hidden_layers_forward(real, x, first):
                for layer in range(1, D - 1):
                    hidden_forward(real, x, first, H0 + (layer - 1) * STRIDE, W0 + layer * n * n,
                                   U0 + layer * STRIDE, H0 + layer * STRIDE)

            @njit(nogil=True, error_model="numpy", inline="always")
            def hidden_layers_backward(real, x, first):
                for layer in range(D - 2, 0, -1):  # the last hidden layer first, down to the second
                    UL = U0 + layer * STRIDE
                    IN = H0 + (layer - 1) * STRIDE
                    hidden_gradient(real, x, first, IN, G + layer * n * n, UL)
                    back_through(real, W0 + layer * n * n, UL, UL - STRIDE, IN)
        else:
            @njit(nogil=True, error_model="numpy", inline="always")
            def hidden_layers_forward(real, x, first):
                return

            hidden_layers_backward = hidden_layers_forward

        @njit(nogil=True, error_model="numpy", inline="always")
        def run_tile(real, x, y, first, gradient_batch):
            if D > 1:
                first_forward(real, x, first, XS, W0, U0, H0)
            hidden_layers_forward(real, x, first)
            # out = (h @ W_out) * out_scale, the loss, and d loss / d (h @ W_out).
            for t in range(m):
                y_shared = 0.0 if per_lane else y[first + t]  # read before the loop: no alias check
                for k in range(L):
                    a = 0.0
                    for j in range(n):
                        a += out_input(real, x, OUT_IN, first, t, j, k) * real[(WO + j) * L + k]
                    target = real[(YS + t) * L + k] if per_lane else y_shared
                    out = a * out_scale
                    if logistic:
                        margin = target * out
                        real[LOSS * L + k] += _softplus(-margin) if count_loss else 0.0
                        dout = -target / (1.0 + math.exp(margin))
                        real[(C + t) * L + k] = dout / gradient_batch * out_scale
                    else:
                        r = out - target
                        real[LOSS * L + k] += r * r if count_loss else 0.0
                        real[(C + t) * L + k] = 2.0 * r / gradient_batch * out_scale
            if not grad:
                return
            # The output layer: every gradient entry sums the tile's samples in a register
            # (one load and one store per tile), and d loss / d u of the last hidden layer.
            for j in range(n):
                for k in range(L):
                    w = real[(WO + j) * L + k]
                    g = real[(GO + j) * L + k]
                    for t in range(m):
                        c = real[(C + t) * L + k]
                        g += c * out_input(real, x, OUT_IN, first, t, j, k)
                        if D > 1:
                            d = c * w
                            d = d * post_scale if post_scale != 1.0 else d
                            d = d * dphi(real[(UO + t * n + j) * L + k], real[(OUT_IN + t * n + j) * L + k])
                            real[(UO + t * n + j) * L + k] = d * in_scale
                    real[(GO + j) * L + k] = g
            hidden_layers_backward(real, x, first)
            if D > 1:
                first_gradient(real, x, first, XS, G, U0)

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

    @njit(nogil=True, error_model="numpy", inline="always")
    def init(buf, data, k, threshold):
        real = flat(buf, SIZE, np.float64)
        w = data[0]
        scale = real[SCALE * L + k]
        for p in range(NP):
            real[(P + p) * L + k] = w[p] * scale

    @njit(nogil=True, error_model="numpy", inline="always")
    def gradient(buf, data, step, threshold):
        real = flat(buf, SIZE, np.float64)
        x, y, batches = data[1], data[2], data[3]
        steps = batches.shape[0] - 1
        n_data = x.shape[0]
        for i in range(n * n if D > 1 else n):
            for k in range(L):
                real[(P + i) * L + k] += real[OFF * L + k]
        for row in range(G, G + NP):
            for k in range(L):
                real[row * L + k] = 0.0
        for k in range(L):
            real[LOSS * L + k] = 0.0
        full_batch(real, x, y, batches, step, steps, n_data)
        if minibatch:
            # The loss above is the full batch's; the gradient is the step's minibatch's.
            minibatch_gradient(real, x, y, batches, step, steps, batches.shape[1])
        for k in range(L):
            value = real[LOSS * L + k] / n_data
            real[LOSS * L + k] = value
            buf[NEED * L + k] = np.int64(not value <= threshold)

    @njit(nogil=True, error_model="numpy", inline="always")
    def loss(buf, data, k):
        return flat(buf, SIZE, np.float64)[LOSS * L + k]

    return init, gradient, loss
