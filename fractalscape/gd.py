"""Gradient descent over a block of grid points, compiled per landscape.

Every grid point has a parameter vector laid out as::

    [lr_0 .. lr_{d-1}, x0_0 .. x0_{d-1}, theta_0 .. theta_{p-1}]

An axis overwrites one or more slots of it (``lr`` all the learning rates,
``lr_1`` one of them, ``delta`` one landscape parameter). The kernel walks the
block's points, sets the slots from the axis coordinates and runs

    x <- x - lr * grad f(x)        for at most ``steps`` steps,

stopping a point as soon as its loss is above ``threshold`` or not finite
(``not loss <= threshold`` catches NaN). ``escape_step`` is the step at which
that happened (0: the initial point already did), -1 if never;
``final_loss`` is the loss at the last step taken.

A step tests the landscape's cheap ``bound`` against the point's ``level``
(:mod:`fractalscape.landscapes.base`), not its loss: only where that test
fails, and at a point's last step, does the kernel evaluate the loss, so the
labels and readouts are exactly those of testing the loss at every step.

The kernel runs ``LANES`` points in lock-step: one loop over the lanes does
one GD step of every point, branch-free, so LLVM vectorizes it across points
(with ``precision="fast"``, whose sin/cos are plain arithmetic, see
:mod:`fractalscape.trig`). A lane whose point stops is refilled with the
block's next point, so stopped points cost nothing. Each lane's arithmetic is
exactly the one-point loop's (no fastmath, no FMA contraction): the lanes
change the speed, never the results.

Bounded orbits stop early, exactly. GD is deterministic, so once a point's
state ``x`` repeats bit for bit (a fixed point, or a cycle of period ``p``
found with Brent's algorithm) every later state is on that cycle, whose
losses were all checked already: the point never diverges. The lane then runs
only the ``(steps - t) mod p`` steps that bring it to the state it would
reach at step ``steps``, so ``final_loss`` is bit-identical to running every
step (``detect_cycles=False`` runs every step, for tests and benchmarks).

The kernels are serial per block (no numba threading layer) and release the
GIL, so dask's threads and worker processes supply the parallelism.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit, types
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from fractalscape.landscapes.base import Family, Landscape, LaneKernels, kernels
from fractalscape.slots import point_value, slot_table
from fractalscape.trig import Trig, get_trig

#: dtype of one block of readouts.
READOUT_DTYPE = np.dtype([("escape_step", np.int32), ("final_loss", np.float64)])


def slot_names(land: Landscape) -> list[str]:
    """Name of every slot of the parameter vector, in order."""
    d = land.dim
    if d == 1:
        return ["lr", "x0", *land.params]
    return [f"lr_{i}" for i in range(d)] + [f"x0_{i}" for i in range(d)] + list(land.params)


def axis_slots(land: Landscape, names) -> np.ndarray:
    """Boolean matrix ``(len(names), n_slots)``: which slots each named axis sets."""
    slots = slot_names(land)
    groups = {"lr": slots[: land.dim], "x0": slots[land.dim : 2 * land.dim]}
    return slot_table(names, slots, groups, f"landscape {land.name!r} (dim={land.dim})")


#: Grid points run side by side in one kernel: eight AVX-512 registers of
#: doubles. LLVM then keeps the loop over lanes a loop (32 lanes it unrolls
#: whole, and one round's four dependency chains through sin, each some 150
#: cycles long, leave the core idle): out-of-order execution overlaps its
#: iterations. Measured on Liu's additive landscape: 64 lanes 1.18x faster
#: than 32, and 128 slower again.
LANES = 64


@intrinsic
def _rows(typingctx, buf, first, count, dtype):
    """Rows ``first .. first+count`` of the int64 lane buffer, as a ``(count, LANES)`` array of ``dtype``.

    The view's shape is a compile-time constant (``count`` is a literal), so
    LLVM sees it before its loop vectorizer runs: the landscapes' loops over
    coordinates unroll and the loop over lanes becomes the innermost loop.
    It owns no memory (no reference counting in the kernel loops).
    """
    if not isinstance(count, types.IntegerLiteral):
        return None
    n = count.literal_value
    view = types.Array(dtype.dtype, 2, "C")

    def codegen(context, builder, signature, args):
        intp = context.get_value_type(types.intp)
        itemsize = context.get_abi_sizeof(context.get_data_type(view.dtype))
        src = make_array(signature.args[0])(context, builder, args[0])
        out = make_array(view)(context, builder)
        data = builder.gep(src.data, [builder.mul(args[1], intp(LANES))])
        populate_array(
            out,
            data=builder.bitcast(data, out.data.type),
            shape=[intp(n), intp(LANES)],
            strides=[intp(LANES * itemsize), intp(itemsize)],
            itemsize=intp(itemsize),
            meminfo=None,
        )
        return out._getvalue()

    return view(buf, first, count, dtype), codegen


@njit(nogil=True, inline="always")
def _highest_power_of_two(n):
    """The largest power of two <= ``n`` (0 for 0)."""
    for shift in (1, 2, 4, 8, 16, 32):
        n |= n >> shift
    return n - (n >> 1)


def _build(functions: LaneKernels, dim, n_theta):
    """Block kernel: ``LANES`` points in lock-step, each lane refilled when its point exits.

    ``dim`` and ``n_theta`` are compile-time constants (closure values), so
    the lane arrays have constant shapes: the landscape's loops over
    coordinates unroll, the loop over lanes is innermost and LLVM vectorizes
    it (the arithmetic of each lane is unchanged: no fastmath, no FMA
    contraction, so every lane computes what a one-point loop computes).
    """
    loss, grad, prepare, bound, level = functions
    n_slots = 2 * dim + n_theta
    X, G, LR, PREV, THETA = 0, dim, 2 * dim, 3 * dim, 4 * dim
    SAVED = THETA + n_theta
    LEVEL, STEP, LAST, FLAGS, ACTIVE, POINT = range(SAVED + dim, SAVED + dim + 6)
    ROWS = POINT + 1
    CHECK, REPEAT = 1, 2  # flags

    # error_model="numpy": a division by zero (an idle lane's wavelength) gives
    # inf as in NumPy instead of a check that would stop vectorization.
    # _nrt=False: no reference counting; its calls in the lane loop would stop
    # vectorization (numba prunes them only after LLVM's vectorizer has run).
    # The lane buffer is allocated by the caller, `run` below.
    @njit(nogil=True, error_model="numpy", _nrt=False)
    def run_block(params, slots, c0, c1, c2, steps, threshold, detect_cycles, escape_step, final_loss, buf):
        n_points = c0.shape[0] * c1.shape[0] * c2.shape[0]
        # All lane state lives in one buffer, one row per quantity: LLVM then
        # sees that the rows cannot overlap and vectorizes without runtime
        # alias checks (a dozen separate arrays exceed its budget for those).
        x = _rows(buf, X, dim, np.float64)
        x_bits = _rows(buf, X, dim, np.int64)
        g = _rows(buf, G, dim, np.float64)
        lr = _rows(buf, LR, dim, np.float64)
        prev = _rows(buf, PREV, dim, np.float64)  # x before this round's update
        theta = _rows(buf, THETA, n_theta, np.float64)
        # Brent's cycle finding, per lane: the state after the last power of
        # two of steps (the initial state before step 1), compared with every
        # later state.
        saved = _rows(buf, SAVED, dim, np.int64)
        below = _rows(buf, LEVEL, 1, np.float64)[0]  # the loss is below threshold where bound <= this
        step = _rows(buf, STEP, 1, np.int64)[0]  # updates applied to x
        last = _rows(buf, LAST, 1, np.int64)[0]  # the step the point stops at if it never diverges
        # CHECK: the loss at prev decides whether the point stops; REPEAT: x
        # after this round's update was seen before.
        flags = _rows(buf, FLAGS, 1, np.int64)[0]
        active = _rows(buf, ACTIVE, 1, np.int64)[0]  # 1: the lane holds a point
        point = _rows(buf, POINT, 1, np.int64)[0]  # flat index of the lane's point
        next_point = 0
        events = LANES  # the first round of the scalar pass fills every lane
        while True:
            if events:
                # Scalar pass, run only when some lane needs its loss or repeated.
                for j in range(LANES):
                    if active[j] and flags[j] & CHECK:
                        value = loss(prev, theta, j)
                        diverged = not value <= threshold
                        if diverged or step[j] - 1 == last[j]:
                            n = point[j]
                            escape_step[n] = step[j] - 1 if diverged else -1
                            final_loss[n] = value
                            active[j] = 0
                    if active[j] and flags[j] & REPEAT:
                        # x after t updates equals the state saved at the last power of two
                        # below t, the first repeat since that save: the period is the
                        # distance. Every loss on the cycle was below threshold, so the
                        # point never diverges, and x at the last step is the cycle state
                        # (steps - t) mod period ahead. The lane stops within one period,
                        # before the state can repeat again.
                        t = step[j]
                        last[j] = t + (steps - t) % (t - _highest_power_of_two(t - 1))
                    if not active[j] and next_point < n_points:
                        n = next_point
                        next_point += 1
                        for s in range(n_slots):
                            v = point_value(params, slots, c0, c1, c2, n, s)
                            if s < dim:
                                lr[s, j] = v
                            elif s < 2 * dim:
                                x[s - dim, j] = v
                                saved[s - dim, j] = x_bits[s - dim, j]
                            else:
                                theta[s - 2 * dim, j] = v
                        prepare(theta, j)
                        below[j] = level(x, theta, j, threshold)
                        point[j] = n
                        active[j] = 1
                        step[j] = 0
                        last[j] = steps
                if not active.any():
                    return
            # Vector pass: one GD step of every lane. Branch-free down to the
            # numba IR (integer masks, no `if`/`or`/ternaries): a branch in the
            # lane loop stops LLVM from vectorizing it once dim >= 2.
            events = 0
            for j in range(LANES):
                # The loss decides where it may be above threshold (or NaN), and at the last step.
                check = np.int64(not bound(x, theta, j) <= below[j]) | np.int64(step[j] == last[j])
                grad(x, theta, j, g)
                for i in range(dim):
                    prev[i, j] = x[i, j]
                    x[i, j] = x[i, j] - lr[i, j] * g[i, j]
                t = step[j] + 1
                step[j] = t
                same = np.int64(detect_cycles)
                for i in range(dim):
                    same &= np.int64(x_bits[i, j] == saved[i, j])
                save = -np.int64((t & (t - 1)) == 0)  # all ones after steps 1, 2, 4, 8, ...
                for i in range(dim):
                    saved[i, j] ^= (x_bits[i, j] ^ saved[i, j]) & save
                flag = check | (same << 1)
                flags[j] = flag
                # Idle lanes (the block's last points are out) may raise events too: the
                # scalar pass skips them, and it runs at most `steps` more rounds.
                events |= flag

    def run(*args):
        run_block(*args, np.zeros(ROWS * LANES, np.int64))

    run.compiled = run_block  # for inspect_llvm() / inspect_asm()
    return run


@lru_cache(maxsize=None)
def block_kernel(family: Family, trig: Trig, dim: int, n_theta: int):
    """The compiled block kernel for a landscape family, trig implementation and shape."""
    return _build(kernels(family, trig), dim, n_theta)


def run_block(
    land: Landscape,
    params: np.ndarray,
    slots: np.ndarray,
    coords: list[np.ndarray],
    *,
    steps: int,
    threshold: float,
    precision: str = "libm",
    detect_cycles: bool = True,
) -> np.ndarray:
    """GD readouts over the outer product of ``coords`` (one array per axis).

    Parameters
    ----------
    land : Landscape
    params : ndarray
        Default parameter vector (layout in the module docstring).
    slots : ndarray of bool, shape (len(coords), len(params))
        Which slots each axis sets, from :func:`axis_slots`.
    coords : list of 1-D ndarray
        This block's coordinates along each axis.
    precision : {"libm", "fast"}
        sin/cos implementation (:mod:`fractalscape.trig`).
    detect_cycles : bool
        Stop points whose state repeats (the map is the same either way);
        False runs every step, for tests and benchmarks.

    Returns
    -------
    ndarray of :data:`READOUT_DTYPE`, shape ``tuple(len(c) for c in coords)``

    Examples
    --------
    >>> from fractalscape.landscapes import landscape
    >>> land = landscape("quadratic")
    >>> params = np.array([0.0, 1.0])      # lr, x0
    >>> out = run_block(land, params, axis_slots(land, ["lr"]), [np.array([0.5, 1.5])],
    ...                 steps=100, threshold=1e8)
    >>> out["escape_step"].tolist()
    [-1, 14]
    """
    dim = land.dim
    kernel = block_kernel(land.family, get_trig(precision), dim, len(params) - 2 * dim)
    shape = tuple(len(c) for c in coords)
    padded = [np.ascontiguousarray(c, dtype=np.float64) for c in coords]
    padded += [np.zeros(1)] * (3 - len(padded))
    table = np.zeros((3, len(params)), dtype=np.bool_)
    table[: len(coords)] = slots
    n_points = math.prod(shape)
    escape_step = np.empty(n_points, dtype=np.int32)
    final_loss = np.empty(n_points, dtype=np.float64)
    kernel(
        np.asarray(params, np.float64), table, *padded, steps, threshold, detect_cycles, escape_step, final_loss
    )
    out = np.empty(shape, dtype=READOUT_DTYPE)
    out["escape_step"] = escape_step.reshape(shape)
    out["final_loss"] = final_loss.reshape(shape)
    return out
