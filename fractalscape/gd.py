"""The one lane driver: any model (:mod:`fractalscape.model`) with any optimizer, over a block of grid points.

Every grid point has a vector of *slots*: the model's per-point parameters
(learning rates first), then the optimizer's hyperparameters. An axis sets
one or more slots (``lr`` every learning rate, ``lr_1`` one of them,
``delta`` one landscape parameter, ``beta2`` Adam's); the others come from
``[descent]`` or the defaults. The driver walks the block's points, writes
each point's slots into a lane, lets the model initialise its parameters
there, and runs

    g <- grad loss(p);   p, state <- optimizer(p, g, state)     for at most ``steps`` steps,

stopping a point as soon as its loss is above ``threshold`` or not finite
(``not loss <= threshold`` catches NaN). ``escape_step`` is the step at which
that happened (0: the initial point already did), -1 if never;
``final_loss`` is the loss at the last step taken; ``score`` (models whose
loss is known at every step, the networks) is Sohl-Dickstein's
``convergence_measure`` of the losses before each update, NaN otherwise.

A model's ``gradient`` also flags, per lane, whether the loss may be above
the threshold (landscapes test a cheap bound, :mod:`fractalscape.landscapes.base`);
only there, and at a point's last step, does the driver ask for the loss,
so labels and readouts are exactly those of testing the loss at every step.

The driver runs :func:`lanes` points in lock-step: every loop over lanes does
the same arithmetic for all of them, branch-free, so LLVM vectorizes it
across points. A lane whose point stops is refilled with the block's next
point, so stopped points cost nothing. Each lane's arithmetic is exactly the
one-point loop's (no fastmath, no FMA contraction): the lanes change the
speed, never the results.

Bounded orbits stop early, exactly. The update is deterministic, so once a
point's state (parameters and optimizer state, bit for bit) repeats, at a
fixed point or a cycle of period ``p`` found with Brent's algorithm, every
later state is on that cycle, whose losses were all checked already: the
point never diverges. The lane then runs only the ``(steps - t) mod p``
steps that bring it to the state it would reach at step ``steps``, so
``final_loss`` is bit-identical to running every step (``detect_cycles=False``
runs every step, for tests and benchmarks). Models with a score run every step.

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

from fractalscape import kernelcache
from fractalscape.errors import ConfigError
from fractalscape.model import CLIP, READOUT_DTYPE, TAIL, Layout, Model, Program
from fractalscape.optimizers import (HYPERPARAMETERS, OPTIMIZERS, Layout as OptimizerLayout, Optimizer, get_optimizer,
                                     owners)
from fractalscape.slots import next_index, point_value, slot_table


#: Version of the kernels' arithmetic, in every map's provenance: bump it whenever a kernel may
#: compute different bits, so that a store begun by other kernels is not resumed (2: the one lane
#: driver of the model protocol).
KERNEL_VERSION = 2


def _view_codegen(view, shape: tuple[int, ...], offset_rows: bool):
    """Codegen of a view (no memory of its own) of an int64 lane buffer: ``shape`` C-contiguous,
    starting at the buffer's start, or at row ``args[1]`` of ``shape[-1]`` elements."""

    def codegen(context, builder, signature, args):
        intp = context.get_value_type(types.intp)
        itemsize = context.get_abi_sizeof(context.get_data_type(view.dtype))
        src = make_array(signature.args[0])(context, builder, args[0])
        out = make_array(view)(context, builder)
        data = builder.gep(src.data, [builder.mul(args[1], intp(shape[-1]))]) if offset_rows else src.data
        strides = [math.prod(shape[d + 1:]) * itemsize for d in range(len(shape))]
        populate_array(out, data=builder.bitcast(data, out.data.type), shape=[intp(n) for n in shape],
                       strides=[intp(s) for s in strides], itemsize=intp(itemsize), meminfo=None)
        return out._getvalue()

    return codegen


@intrinsic
def rows(typingctx, buf, first, count, lanes, dtype):
    """Rows ``first .. first+count`` of an int64 lane buffer, as a ``(count, lanes)`` array of ``dtype``.

    ``count`` and ``lanes`` are literals, so the view's shape is a
    compile-time constant that LLVM sees before its loop vectorizer runs:
    loops over a landscape's coordinates unroll and the loop over lanes
    becomes the innermost loop. It owns no memory (no reference counting
    in the kernel loops).
    """
    if not isinstance(count, types.IntegerLiteral) or not isinstance(lanes, types.IntegerLiteral):
        return None
    view = types.Array(dtype.dtype, 2, "C")
    shape = (count.literal_value, lanes.literal_value)
    return view(buf, first, count, lanes, dtype), _view_codegen(view, shape, offset_rows=True)


@intrinsic
def flat(typingctx, buf, count, dtype):
    """The first ``count`` (a literal) elements of an int64 lane buffer, as a 1-D array of ``dtype``.

    Rows of a flat view are addressed ``row * lanes + k``: constant offsets
    from one pointer, so LLVM sees that rows never overlap.
    """
    if not isinstance(count, types.IntegerLiteral):
        return None
    view = types.Array(dtype.dtype, 1, "C")
    return view(buf, count, dtype), _view_codegen(view, (count.literal_value,), offset_rows=False)


@njit(nogil=True, inline="always")
def _highest_power_of_two(n):
    """The largest power of two <= ``n`` (0 for 0)."""
    for shift in (1, 2, 4, 8, 16, 32):
        n |= n >> shift
    return n - (n >> 1)




def _build(program: Program, optimizer: Optimizer, n_slots: int, decay: bool, detect_cycles: bool,
           disk_cache: bool):
    """The block kernel of one program and optimizer: its lanes in lock-step, each refilled when its point stops.

    Every quantity of a lane lives in one int64 buffer, one row per
    quantity, the lane index innermost: LLVM then sees that rows cannot
    overlap and vectorizes without runtime alias checks. With
    ``disk_cache``, the compiled code of built-in models and optimizers is
    kept on disk for later processes (:mod:`fractalscape.kernelcache`).
    """
    L, NP = program.lanes, program.n_params
    has_score = program.has_score
    detect = detect_cycles and not has_score
    P = 0
    S = P + NP  # the optimizer's state right after the parameters: the rows a repeat compares
    G = S + optimizer.n_state * NP
    THETA = G + NP
    AUX = THETA + n_slots
    SCRATCH = AUX + optimizer.n_aux
    SAVED = SCRATCH + program.n_scratch
    N_SAVED = (1 + optimizer.n_state) * NP if detect else 0
    NEED, STEP, LAST, FLAGS, ACTIVE, POINT, V0, SUM_V, SUM_INV, SUM_TAIL = range(SAVED + N_SAVED, SAVED + N_SAVED + 10)
    ROWS = SUM_TAIL + 1
    SIZE = ROWS * L
    SAVED_ROWS = max(N_SAVED, 1)
    N_STATE_ROWS = (1 + optimizer.n_state) * NP  # parameters, then optimizer state: from row P on
    n_model_slots = n_slots - len(optimizer.hyper)
    lr_row = tuple(THETA + group for group in program.lr_group)
    init, gradient, loss = program.build(Layout(L, P, G, THETA, SCRATCH, NEED, ROWS))
    lanewise = program.lanewise
    update, update_lane, stationary = optimizer.build(OptimizerLayout(
        L, P, G, S, AUX, tuple(range(THETA + n_model_slots, THETA + n_slots)), lr_row, NP, decay))
    CHECK, REPEAT = 1, 2  # flags

    # error_model="numpy": a division by zero gives inf as in NumPy instead of a check
    # that would stop vectorization. _nrt=False: no reference counting; its calls in the
    # lane loop would stop vectorization. The caller allocates the lane buffer.
    @njit(nogil=True, error_model="numpy", _nrt=False)
    def run_block(params, slots, c0, c1, c2, data, steps, threshold, escape_step, final_loss, score, buf):
        n_points = c0.shape[0] * c1.shape[0] * c2.shape[0]
        tail = min(TAIL, steps)
        real = flat(buf, SIZE, np.float64)
        state_bits = rows(buf, P, N_STATE_ROWS, L, np.int64)
        saved = rows(buf, SAVED, SAVED_ROWS, L, np.int64)
        need = rows(buf, NEED, 1, L, np.int64)[0]
        step = rows(buf, STEP, 1, L, np.int64)[0]  # updates applied to the parameters
        last = rows(buf, LAST, 1, L, np.int64)[0]  # the step the point stops at if it never diverges
        # CHECK: the loss before this round's update decides whether the point stops;
        # REPEAT: the state after it was seen before.
        flags = rows(buf, FLAGS, 1, L, np.int64)[0]
        active = rows(buf, ACTIVE, 1, L, np.int64)[0]  # 1: the lane holds a point
        point = rows(buf, POINT, 1, L, np.int64)[0]  # flat index of the lane's point
        next_point = 0
        i0 = i1 = i2 = 0  # next_point's index along each axis
        n1, n2 = c1.shape[0], c2.shape[0]
        events = L  # the first round of the scalar pass fills every lane
        while True:
            if events:
                # Scalar pass, run only when some lane needs its loss, repeated, or is empty.
                for k in range(L):
                    if active[k] and flags[k] & CHECK:
                        value = loss(buf, data, k)
                        diverged = not value <= threshold
                        if diverged or step[k] - 1 == last[k]:
                            n = point[k]
                            t = step[k] - 1
                            escape_step[n] = t if diverged else -1
                            final_loss[n] = value
                            if has_score:
                                sum_v = real[SUM_V * L + k]
                                sum_inv = real[SUM_INV * L + k]
                                sum_tail = real[SUM_TAIL * L + k]
                                if diverged and t < steps - 1:
                                    # The rest of the trajectory is taken to stay at the clip.
                                    unseen = steps - 1 - t
                                    sum_v += unseen * CLIP
                                    sum_inv += unseen / CLIP
                                    sum_tail += min(unseen, tail) * CLIP
                                score[n] = -sum_v if sum_tail / tail < 1.0 else sum_inv
                            else:
                                score[n] = math.nan
                            active[k] = 0
                    if active[k] and flags[k] & REPEAT:
                        # The state after t updates equals the state saved at the last power of
                        # two below t, the first repeat since that save: the period is the
                        # distance. Every loss on the cycle was below threshold, so the point
                        # never diverges, and its state at the last step is the cycle state
                        # (steps - t) mod period ahead. The lane stops within one period.
                        t = step[k]
                        last[k] = t + (steps - t) % (t - _highest_power_of_two(t - 1))
                    if not active[k] and next_point < n_points:
                        n = next_point
                        next_point += 1
                        for s in range(n_slots):
                            real[(THETA + s) * L + k] = point_value(params, slots, c0, c1, c2, i0, i1, i2, s)
                        i0, i1, i2 = next_index(i0, i1, i2, n1, n2)
                        for r in range(S, G):
                            real[r * L + k] = 0.0
                        init(buf, data, k, threshold)
                        for r in range(N_SAVED):
                            saved[r, k] = state_bits[r, k]
                        for r in (SUM_V, SUM_INV, SUM_TAIL):
                            real[r * L + k] = 0.0
                        point[k] = n
                        active[k] = 1
                        step[k] = 0
                        last[k] = steps
                if not active.any():
                    return
            # Vector pass: one update of every lane (idle lanes too: the scalar pass skips
            # them, and it runs at most `steps` more rounds).
            if not lanewise:
                gradient(buf, data, step, threshold)
                update(real, step)
            events = 0
            for k in range(L):
                if lanewise:
                    # One loop over lanes, branch-free down to the numba IR (integer masks,
                    # no `if`/`or`/ternaries): a branch in it stops LLVM from vectorizing.
                    # The need flag stays in a register (a row would cost a store a step).
                    need_k = gradient(buf, data, k, threshold)
                    update_lane(real, step, k)
                else:
                    need_k = need[k]
                t = step[k]
                check = need_k | np.int64(t == last[k])
                if has_score:
                    # convergence_measure's normalised loss: NaN unless finite, clipped at CLIP.
                    value = loss(buf, data, k)
                    real[V0 * L + k] = value if t == 0 else real[V0 * L + k]
                    v0 = real[V0 * L + k]
                    v = value / v0
                    v = v if (v - v == 0.0) & (v0 - v0 == 0.0) else math.nan
                    v = CLIP if v > CLIP else v
                    scored = t < steps
                    real[SUM_V * L + k] += v if scored else 0.0
                    real[SUM_INV * L + k] += 1.0 / v if scored else 0.0
                    real[SUM_TAIL * L + k] += v if scored and t >= steps - tail else 0.0
                t += 1
                step[k] = t
                same = np.int64(detect) & stationary(real, step, k)
                for r in range(N_SAVED):
                    same &= np.int64(state_bits[r, k] == saved[r, k])
                save = -np.int64((t & (t - 1)) == 0)  # all ones after steps 1, 2, 4, 8, ...
                for r in range(N_SAVED):
                    saved[r, k] ^= (state_bits[r, k] ^ saved[r, k]) & save
                flag = check | (same << 1)
                flags[k] = flag
                events |= flag

    if disk_cache and program.cache_key is not None and OPTIMIZERS.get(optimizer.name) is optimizer:
        kernelcache.attach(run_block, "lane-driver", program.cache_key, optimizer.name, n_slots, decay,
                           detect_cycles)

    def run(*args):
        run_block(*args, np.zeros(ROWS * L, np.int64))

    run.compiled = run_block  # for inspect_llvm() / inspect_asm()
    return run


@lru_cache(maxsize=None)
def block_kernel(program: Program, optimizer: Optimizer, n_slots: int, decay: bool, detect_cycles: bool,
                 disk_cache: bool):
    """The compiled block kernel of a program and optimizer, built once per process (pass every argument)."""
    return _build(program, optimizer, n_slots, decay, detect_cycles, disk_cache)


def model_kernel(model: Model, precision: str = "libm", optimizer="gd", *, decay: bool = False,
                 detect_cycles: bool = True, structure=None, disk_cache: bool = True):
    """The block kernel :func:`run_block` uses for ``model`` (its ``compiled`` attribute is the numba function).

    Code loaded from the disk cache cannot be inspected: ``disk_cache=False``
    gives a twin compiled in this process for every signature the run's
    kernel has been called with, whose ``compiled.inspect_llvm()`` works.
    """
    optimizer = get_optimizer(optimizer)
    structure = dict(model.defaults(), **(structure or {}))
    program = model.program({s: int(structure[s]) for s in model.structural()}, precision)
    args = (program, optimizer, len(slot_names(model, optimizer)), bool(decay), bool(detect_cycles))
    kernel = block_kernel(*args, bool(disk_cache))
    if not disk_cache:
        for signature in block_kernel(*args, True).compiled.signatures:
            kernel.compiled.compile(signature)
    return kernel


def slot_names(model: Model, optimizer="gd") -> tuple[str, ...]:
    """Every slot of a point: the model's, then the optimizer's hyperparameters.

    >>> from fractalscape.landscapes import landscape
    >>> slot_names(landscape("cosine-additive"), "momentum")
    ('lr', 'x0', 'delta', 'wavelength', 'momentum', 'weight_decay')
    """
    return (*model.slots(), *get_optimizer(optimizer).hyper)


def axis_slots(model: Model, names, optimizer="gd") -> np.ndarray:
    """Boolean matrix ``(len(names), n_slots)``: which slots each named axis sets."""
    optimizer = get_optimizer(optimizer)
    for name in names:
        if name in HYPERPARAMETERS and name not in optimizer.hyper:
            raise ConfigError(f"axis {name!r} is a hyperparameter of {', '.join(owners(name))}, not of optimizer "
                              f"{optimizer.name!r}; set [descent] optimizer or drop the axis")
    return slot_table(names, slot_names(model, optimizer), model.groups(), model.owner())


def slot_vector(model: Model, optimizer, values, set_by_axes) -> np.ndarray:
    """The slot values of ``values`` (groups expanded), defaults filled in; NaN where an axis sets the slot."""
    optimizer = get_optimizer(optimizer)
    names = slot_names(model, optimizer)
    merged = {**model.defaults(), **optimizer.defaults, **model.slot_values(values)}
    vector = np.full(len(names), np.nan)
    for i, name in enumerate(names):
        if set_by_axes[i]:
            continue
        if name not in merged:
            if name in model.lr_slots():
                raise ConfigError(f"learning rate {name!r} is not set for {model.owner()}: pass lr=... "
                                  f"(or {name}=...) or add an 'lr' axis")
            raise ConfigError(f"{name!r} is not set for {model.owner()}: give it a value or make it an axis")
        vector[i] = merged[name]
    return vector


def run_block(
    model: Model,
    values,
    axes,
    *,
    steps: int,
    threshold: float,
    precision: str = "libm",
    optimizer="gd",
    detect_cycles: bool = True,
) -> np.ndarray:
    """Readouts over the outer product of the axes' coordinates.

    Parameters
    ----------
    model : Model
        A landscape, a network or a user model (:mod:`fractalscape.model`).
    values : dict
        Values of the slots no axis sets (group names like ``lr`` allowed;
        ``None`` entries ignored); defaults fill the rest.
    axes : list of (name, 1-D array)
        At most three; each names a slot or group of the model or optimizer.
    steps, threshold : int, float
        Most updates per point; a point stops at the first loss not ``<= threshold``.
    precision : {"libm", "fast"}
        The model's sin/cos/tanh implementation.
    optimizer : str
        One of :data:`fractalscape.optimizers.OPTIMIZERS`.
    detect_cycles : bool
        Stop points whose state repeats (the map is the same either way);
        False runs every step, for tests and benchmarks.

    Returns
    -------
    ndarray of :data:`READOUT_DTYPE`, shape ``tuple(len(c) for _, c in axes)``
        The same values for any split of the axes into blocks.

    Examples
    --------
    >>> from fractalscape.landscapes import landscape
    >>> out = run_block(landscape("quadratic"), {"x0": 1.0}, [("lr", np.array([0.5, 1.5]))],
    ...                 steps=100, threshold=1e8)
    >>> out["escape_step"].tolist()
    [-1, 14]
    >>> out = run_block(landscape("quadratic"), {"x0": 1.0}, [("lr", np.array([0.5, 1.5, 2.5]))],
    ...                 steps=100, threshold=1e8, optimizer="momentum")
    >>> out["escape_step"].tolist()
    [-1, -1, 9]
    """
    optimizer = get_optimizer(optimizer)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps < 2**31:
        raise ConfigError(f"steps must be an integer in [1, 2**31), got {steps!r}")
    if len(axes) > 3:
        raise ConfigError(f"a block takes at most 3 axes, got {len(axes)}: {[a for a, _ in axes]}")
    names = [name for name, _ in axes]
    coords = [np.ascontiguousarray(c, dtype=np.float64) for _, c in axes]
    for name, c in zip(names, coords):
        if c.ndim != 1:
            raise ConfigError(f"axis {name!r}: coordinates must be 1-D, got shape {c.shape}")
    table = axis_slots(model, names, optimizer)
    vector = slot_vector(model, optimizer, values, table.any(axis=0))
    return _split_structural(model, optimizer, vector, table, coords, steps, float(threshold), precision,
                             detect_cycles)


def _split_structural(model, optimizer, vector, table, coords, steps, threshold, precision, detect_cycles):
    """Run the block, one structural value at a time along any axis that sets a structural slot."""
    names = slot_names(model, optimizer)
    structural = [names.index(s) for s in model.structural()]
    for a, row in enumerate(table):
        hit = [s for s in structural if row[s]]
        if not hit:
            continue
        parts = []
        for value in coords[a]:
            fixed = vector.copy()
            fixed[hit] = value
            rest = np.delete(table, a, axis=0)
            sub = [c for b, c in enumerate(coords) if b != a]
            part = _split_structural(model, optimizer, fixed, rest, sub, steps, threshold, precision, detect_cycles)
            parts.append(np.expand_dims(part, a))
        return np.concatenate(parts, axis=a)
    structure = {}
    for s in structural:
        value = vector[s]
        if not (math.isfinite(value) and value == round(value)):
            raise ConfigError(f"{names[s]!r} must be an integer, got {float(value)!r}")
        structure[names[s]] = int(value)
    model.check_structure(structure)
    program = model.program(structure, precision)
    decay = bool(table[:, names.index("weight_decay")].any() or vector[names.index("weight_decay")] != 0.0)
    kernel = block_kernel(program, optimizer, len(names), decay, bool(detect_cycles), True)
    shape = tuple(len(c) for c in coords)
    padded = coords + [np.zeros(1)] * (3 - len(coords))
    slots = np.zeros((3, len(names)), dtype=np.bool_)
    slots[: len(coords)] = table
    n_points = math.prod(shape)
    escape_step = np.empty(n_points, dtype=np.int32)
    final_loss = np.empty(n_points, dtype=np.float64)
    score = np.empty(n_points, dtype=np.float64)
    kernel(vector, slots, *padded, model.kernel_data(structure, steps), int(steps), threshold, escape_step, final_loss,
           score)
    out = np.empty(shape, dtype=READOUT_DTYPE)
    out["escape_step"] = escape_step.reshape(shape)
    out["final_loss"] = final_loss.reshape(shape)
    out["score"] = score.reshape(shape)
    return out
