"""Sohl-Dickstein's one-hidden-layer networks as a fractalscape model.

A :class:`NetworkModel` fixes the network (nonlinearity, width), its data
(full batch, one datapoint, or minibatches) and the seed of its random
weights and data. Its per-point parameters, the *slots* a grid axis can set,
are ``lr_W0`` and ``lr_W1`` (the two layers' learning rates; the axis ``lr``
sets both) and ``init_offset`` (added to every entry of ``W0`` at every step,
as in Sohl-Dickstein's ``paraminit_vs_lr`` experiment).

:meth:`NetworkModel.run_block` trains one block of grid points and returns
three readouts per point:

``escape_step``
    The first step whose loss is not ``<= threshold`` (NaN and inf included),
    -1 if none of the ``steps + 1`` losses (before each of the ``steps``
    updates and after the last) is.
``final_loss``
    The loss at the step the point stopped at.
``score``
    Sohl-Dickstein's ``convergence_measure`` of the losses before each of the
    ``steps`` updates: negative (minus the sum of the normalised losses) if
    training converged, positive (the sum of their inverses) if not, NaN if a
    loss was not finite. A point that crosses a finite ``threshold`` stops
    there, and its remaining normalised losses count as the clip value 1e6.

See ``docs/networks.md`` for what is matched from his notebook and what is not.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Literal, Sequence

import numpy as np

from fractalscape.errors import ConfigError
from fractalscape.slots import slot_table
from fractalscape.networks import jaxrandom
from fractalscape.networks.kernels import block_kernel

#: dtype of one block of readouts.
READOUT_DTYPE = np.dtype([("escape_step", np.int32), ("final_loss", np.float64), ("score", np.float64)])

#: Per-point parameters, in the kernel's order.
SLOTS = ("lr_W0", "lr_W1", "init_offset")
#: Axis names that set several slots.
GROUPS = {"lr": ("lr_W0", "lr_W1")}
#: Slots with a default value.
SLOT_DEFAULTS = {"init_offset": 0.0}

NONLINEARITIES = ("tanh", "relu", "identity")
DATA = ("full", "single", "minibatch")
PRECISIONS = ("libm", "fast")
RNGS = ("numpy", "jax", "jax-2024")
#: The rngs that are ``jax.random`` streams, and whether each uses partitionable threefry.
JAX_RNGS = {"jax": True, "jax-2024": False}
#: Sohl-Dickstein's ``train`` draws its minibatch keys from ``PRNGKey(42)``; ours from ``seed + 42``.
MINIBATCH_SEED_OFFSET = 42

#: Default divergence threshold on the loss (see docs/networks.md: with it,
#: ``escape_step >= 0`` agrees with Sohl-Dickstein's diverged/converged split).
DEFAULT_THRESHOLD = 1e6


@dataclass(frozen=True)
class NetworkModel:
    """A one-hidden-layer network, its data and its initial weights.

    Parameters
    ----------
    nonlinearity : {"tanh", "relu", "identity"}
        ``tanh(sqrt(2) z)``, ``sqrt(2) relu(z)`` or ``z``.
    width : int
        Input dimension and hidden width ``n`` (the output is a scalar).
    data : {"full", "single", "minibatch"}
        Full-batch GD on ``n*n + n`` datapoints (``n`` for ``identity``), on a
        single datapoint, or minibatch GD (the loss is still the full batch's).
    batch_size : int
        Minibatch size, used when ``data="minibatch"``.
    seed : int
        Seed of the weights, the data and the minibatch sequence.
    rng : {"numpy", "jax", "jax-2024"}
        Where the weights, data and minibatches come from: NumPy's
        ``default_rng(seed)``, or ``jax.random`` exactly as Sohl-Dickstein's
        notebook draws them (``PRNGKey(seed)``, and ``PRNGKey(seed + 42)`` for
        the minibatches), computed without JAX by
        :mod:`fractalscape.networks.jaxrandom`: ``"jax"`` with JAX's current
        default ``jax_threefry_partitionable=True`` (since jax 0.5.0), and
        ``"jax-2024"`` with the older ``False``, JAX's default when his paper
        (February 2024) was made. With ``seed=0``, either gives his network,
        data and minibatches bit for bit under that JAX setting; the windows
        of his published figures lie on the boundary of ``"jax-2024"``'s
        network (``benchmarks/bench_sd_tiles.py``).

    Examples
    --------
    >>> model = NetworkModel("tanh", width=4, data="single")
    >>> model.slot_names()
    ('lr_W0', 'lr_W1', 'init_offset', 'lr')
    >>> out = model.run_block({"lr_W0": 0.1}, [("lr_W1", np.array([0.5, 50.0]))], steps=50)
    >>> out["escape_step"].tolist()
    [-1, 3]
    >>> NetworkModel("tanh", width=8, rng="jax").arrays()["W1"].round(4).tolist()[:3]
    [1.2683, -0.0704, 0.6075]
    >>> NetworkModel("tanh", width=8, rng="jax-2024").arrays()["W1"].round(4).tolist()[:3]
    [1.8036, 0.2173, -1.2429]
    """

    nonlinearity: Literal["tanh", "relu", "identity"] = "tanh"
    width: int = 16
    data: Literal["full", "single", "minibatch"] = "full"
    batch_size: int = 16
    seed: int = 0
    rng: Literal["numpy", "jax", "jax-2024"] = "numpy"

    def __post_init__(self):
        if self.nonlinearity not in NONLINEARITIES:
            raise ConfigError(f"nonlinearity must be one of {NONLINEARITIES}, got {self.nonlinearity!r}")
        if self.data not in DATA:
            raise ConfigError(f"data must be one of {DATA}, got {self.data!r}")
        for name in ("width", "batch_size", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ConfigError(f"network {name} must be an integer, got {value!r}")
        if self.width < 1:
            raise ConfigError(f"network width must be >= 1, got {self.width}")
        if self.batch_size < 1:
            raise ConfigError(f"network batch_size must be >= 1, got {self.batch_size}")
        if self.seed < 0:
            raise ConfigError(f"network seed must be >= 0, got {self.seed}")
        if self.rng not in RNGS:
            raise ConfigError(f"network rng must be one of {RNGS}, got {self.rng!r}")
        if self.rng in JAX_RNGS and self.seed >= 2**63 - MINIBATCH_SEED_OFFSET:
            raise ConfigError(f"network seed must be < 2**63 - {MINIBATCH_SEED_OFFSET} with rng={self.rng!r} "
                              f"(a JAX key is an int64), got {self.seed}")

    @property
    def n_data(self) -> int:
        """Datapoints of the training set (Sohl-Dickstein's ``batch_size``)."""
        if self.data == "single":
            return 1
        if self.nonlinearity == "identity":
            return self.width
        return self.width * self.width + self.width

    def slot_names(self) -> tuple[str, ...]:
        """Names a grid axis may take: the per-point parameters, then ``"lr"`` (both learning rates)."""
        return (*SLOTS, *GROUPS)

    def arrays(self) -> dict[str, np.ndarray]:
        """Initial weights ``W0`` (n, n), ``W1`` (n,) and data ``X`` (B, n), ``Y`` (B,), all N(0, 1).

        ``rng="numpy"``: drawn in that order from ``np.random.default_rng(seed)``.
        ``rng="jax"`` and ``"jax-2024"``: as in the notebook's ``gen_img`` and ``init``, float64::

            key, sub = split(PRNGKey(seed))
            W0, W1 = normal(k, (n, n)), normal(k', (n, 1)) for k, k' in split(sub, 2)
            key, sub = split(key);  X = normal(sub, (B, n))
            key, sub = split(key);  Y = normal(sub, (B, 1))

        with his ``(n, 1)`` and ``(B, 1)`` flattened to ``W1 (n,)`` and ``Y (B,)``,
        ``split`` and ``normal`` partitionable for ``"jax"``, not for ``"jax-2024"``.
        """
        return dict(zip(("W0", "W1", "X", "Y"), _arrays(self.width, self.n_data, self.seed, self.rng)))

    def minibatches(self, steps: int) -> np.ndarray:
        """Indices of the minibatch of each step 0..steps, shape ``(steps + 1, batch_size)``.

        Drawn with replacement, the same for every grid point. ``rng="numpy"``:
        row ``k`` from ``np.random.default_rng([seed, 1, k])``, independent of
        ``steps``. ``rng="jax"``: row ``k`` is
        ``randint(keys[k], (batch_size,), 0, B)`` with
        ``keys = split(PRNGKey(seed + 42), steps + 1)``; with JAX's
        partitionable threefry the first ``steps`` rows are his ``train``'s
        ``split(PRNGKey(42), steps)`` draws, independent of ``steps``.
        ``rng="jax-2024"``: his ``keys = split(PRNGKey(seed + 42), steps)``
        and ``randint`` without partitionable threefry, whose ``split`` hashes
        the counters ``(i, i + steps)``: every row depends on ``steps``, and
        row ``steps`` repeats row ``steps - 1``. Row ``steps`` feeds only the
        gradient after the last loss, which no readout uses.

        Examples
        --------
        >>> model = NetworkModel("tanh", width=2, data="minibatch", batch_size=3, rng="jax-2024")
        >>> model.minibatches(2).tolist(), model.minibatches(3)[:2].tolist()
        ([[1, 0, 0], [2, 3, 3], [2, 3, 3]], [[1, 4, 3], [1, 1, 0]])
        """
        return _minibatches(self.n_data, self.batch_size, self.seed, steps, self.rng)

    def config_dict(self) -> dict:
        """The ``[network]`` table of a config that rebuilds this model."""
        return asdict(self)

    def description(self) -> str:
        """The model in words, for titles and provenance."""
        phi = {"tanh": "tanh(sqrt(2) z)", "relu": "sqrt(2) relu(z)", "identity": "z"}[self.nonlinearity]
        data = {"full": f"full batch of {self.n_data}", "single": "one datapoint",
                "minibatch": f"minibatches of {self.batch_size} from {self.n_data}"}[self.data]
        return (f"one-hidden-layer network, width {self.width}, phi = {phi}, mean-field, no biases, "
                f"MSE on {data}, seed {self.seed}" + _RNG_NOTES[self.rng])

    def check_settings(self, values: dict, axis_names) -> None:
        """Raise :class:`ConfigError` unless ``values`` and the axes set every per-point parameter."""
        self._default_vector(values, self._axis_slots(list(axis_names)).any(axis=0))

    def to_dict(self) -> dict:
        """Provenance: the constructor arguments and the derived data size."""
        return {"model": "sohl-dickstein-network", **asdict(self), "n_data": self.n_data}

    def run_block(
        self,
        params: dict[str, float | None],
        axes: Sequence[tuple[str, np.ndarray]],
        steps: int,
        threshold: float = DEFAULT_THRESHOLD,
        precision: str = "libm",
    ) -> np.ndarray:
        """Train every point of the outer product of the axes' coordinates.

        Parameters
        ----------
        params : dict
            Values of the slots no axis sets (``None`` entries are ignored).
        axes : list of (name, 1-D array)
            At most three axes; each name is one of :meth:`slot_names`.
        steps : int
            GD updates per point (Sohl-Dickstein's ``opt_steps``).
        threshold : float
            A point diverges at the first loss that is not ``<= threshold``.
        precision : {"libm", "fast"}
            ``tanh`` from the C library, or the vectorized one (see
            :mod:`fractalscape.networks.activations`).

        Returns
        -------
        ndarray of :data:`READOUT_DTYPE`, shape ``tuple(len(c) for _, c in axes)``
            The same values for any split of the axes into blocks.

        Examples
        --------
        >>> model = NetworkModel("identity", width=3)
        >>> out = model.run_block({"init_offset": 0.0}, [("lr", np.array([0.5, 50.0]))], steps=100)
        >>> out["escape_step"].tolist(), bool(out["score"][0] < 0 < out["score"][1])
        ([-1, 2], True)
        """
        if len(axes) > 3:
            raise ConfigError(f"a network map takes at most 3 axes, got {len(axes)}: {[a for a, _ in axes]}")
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ConfigError(f"steps must be an integer >= 1, got {steps!r}")
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        threshold = float(threshold)
        if math.isnan(threshold):
            raise ConfigError("threshold must be a number, got nan; use inf to stop only at non-finite losses")
        table = self._axis_slots([name for name, _ in axes])
        defaults = self._default_vector(params, table.any(axis=0))
        coords = [np.ascontiguousarray(c, dtype=np.float64) for _, c in axes]
        for (name, _), c in zip(axes, coords):
            if c.ndim != 1:
                raise ConfigError(f"axis {name!r}: coordinates must be 1-D, got shape {c.shape}")
        shape = tuple(len(c) for c in coords)
        padded = coords + [np.zeros(1)] * (3 - len(coords))
        slots = np.zeros((3, len(SLOTS)), dtype=np.bool_)
        slots[: len(axes)] = table
        arrays = self.arrays()
        minibatch = self.data == "minibatch"
        batches = self.minibatches(steps) if minibatch else np.zeros((1, 1), dtype=np.int64)
        kernel = block_kernel(self.nonlinearity, precision, self.width, self.n_data, minibatch)
        n_points = math.prod(shape)
        escape_step = np.empty(n_points, dtype=np.int32)
        final_loss = np.empty(n_points, dtype=np.float64)
        score = np.empty(n_points, dtype=np.float64)
        kernel(
            defaults, slots, *padded, arrays["W0"], arrays["W1"], arrays["X"], arrays["Y"],
            batches, int(steps), threshold, escape_step, final_loss, score,
        )  # fmt: skip
        out = np.empty(shape, dtype=READOUT_DTYPE)
        out["escape_step"] = escape_step.reshape(shape)
        out["final_loss"] = final_loss.reshape(shape)
        out["score"] = score.reshape(shape)
        return out

    def _axis_slots(self, names: list[str]) -> np.ndarray:
        """Boolean matrix ``(len(names), len(SLOTS))``: which slots each axis sets."""
        return slot_table(names, SLOTS, GROUPS, "a network")

    def _default_vector(self, params: dict, set_by_axes: np.ndarray) -> np.ndarray:
        """The slot values of ``params`` (``lr`` expanded), defaults filled in, checked."""
        values = dict(SLOT_DEFAULTS)
        for name, value in params.items():
            if value is None:
                continue
            targets = GROUPS.get(name) or ((name,) if name in SLOTS else None)
            if targets is None:
                raise ConfigError(f"unknown network parameter {name!r}; valid: {', '.join(self.slot_names())}")
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ConfigError(f"network parameter {name!r} must be a number, got {value!r}")
            values.update(dict.fromkeys(targets, float(value)))
        vector = np.zeros(len(SLOTS))
        for i, slot in enumerate(SLOTS):
            if not set_by_axes[i] and slot not in values:
                raise ConfigError(f"network parameter {slot!r} is not set: give it a value or make it an axis")
            vector[i] = values.get(slot, math.nan)
        return vector


_RNG_NOTES = {"numpy": "", "jax": " (jax.random)", "jax-2024": " (jax.random, jax_threefry_partitionable=False)"}


@lru_cache(maxsize=16)
def _arrays(width: int, n_data: int, seed: int, rng: str) -> tuple[np.ndarray, ...]:
    if rng in JAX_RNGS:
        kw = {"partitionable": JAX_RNGS[rng]}
        key, sub = jaxrandom.split(jaxrandom.prng_key(seed), **kw)
        layer0, layer1 = jaxrandom.split(sub, 2, **kw)
        w0 = jaxrandom.normal(layer0, (width, width), **kw)
        w1 = jaxrandom.normal(layer1, (width, 1), **kw).ravel()
        key, sub = jaxrandom.split(key, **kw)
        x = jaxrandom.normal(sub, (n_data, width), **kw)
        key, sub = jaxrandom.split(key, **kw)
        y = jaxrandom.normal(sub, (n_data, 1), **kw).ravel()
    else:
        gen = np.random.default_rng(seed)
        w0 = gen.standard_normal((width, width))
        w1 = gen.standard_normal(width)
        x = gen.standard_normal((n_data, width))
        y = gen.standard_normal(n_data)
    for a in (w0, w1, x, y):
        a.flags.writeable = False
    return w0, w1, x, y


@lru_cache(maxsize=16)
def _minibatches(n_data: int, batch_size: int, seed: int, steps: int, rng: str) -> np.ndarray:
    key = jaxrandom.prng_key(seed + MINIBATCH_SEED_OFFSET) if rng in JAX_RNGS else None
    if rng == "jax":
        out = jaxrandom.randint(jaxrandom.split(key, steps + 1), (batch_size,), 0, n_data)
    elif rng == "jax-2024":
        # Unpartitionable split(key, steps) hashes counter pairs (i, i + steps): keys depend on steps.
        keys = jaxrandom.split(key, steps, partitionable=False)
        rows = jaxrandom.randint(keys, (batch_size,), 0, n_data, partitionable=False)
        out = np.concatenate([rows, rows[-1:]])
    else:
        rows = [np.random.default_rng([seed, 1, k]).integers(0, n_data, batch_size) for k in range(steps + 1)]
        out = np.array(rows, dtype=np.int64)
    out.flags.writeable = False
    return out


def network_map(
    model: NetworkModel,
    axes: Sequence[tuple[str, np.ndarray]],
    *,
    steps: int,
    params: dict[str, float | None] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    precision: str = "libm",
    threads: int = 1,
) -> np.ndarray:
    """A whole map in one call: :meth:`NetworkModel.run_block`, its first axis split over threads.

    The kernels release the GIL, so ``threads`` cores share the work; the
    result is the same for any number of threads.

    Examples
    --------
    >>> model = NetworkModel("tanh", width=4, data="single")
    >>> lr = np.logspace(-1, 3, 6)
    >>> out = network_map(model, [("lr_W0", lr), ("lr_W1", lr)], steps=50, threads=2)
    >>> out.shape, int((out["escape_step"] >= 0).sum())
    ((6, 6), 18)
    """
    params = params or {}
    if threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    name, first = axes[0]
    chunks = [c for c in np.array_split(np.asarray(first, np.float64), threads) if len(c)]
    if len(chunks) <= 1:
        return model.run_block(params, axes, steps, threshold, precision)
    with ThreadPoolExecutor(len(chunks)) as pool:
        parts = pool.map(
            lambda c: model.run_block(params, [(name, c), *axes[1:]], steps, threshold, precision), chunks
        )
        return np.concatenate(list(parts), axis=0)
