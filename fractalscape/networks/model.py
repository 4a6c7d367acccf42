"""Fully connected networks as a fractalscape model: Sohl-Dickstein's, and deeper ones.

A :class:`NetworkModel` fixes the network (depth, nonlinearity, width,
parameterization, loss), its data (full batch, one datapoint, or
minibatches) and the seed of its random weights and data. Its per-point
parameters, the *slots* a grid axis can set, are

``lr_W0`` .. ``lr_W{depth-1}``
    each layer's learning rate (the axis ``lr`` sets them all);
``init_offset``
    added to every entry of ``W0`` at every step, as in Sohl-Dickstein's
    ``paraminit_vs_lr`` experiment;
``init_scale``
    every initial weight is multiplied by it (a log axis reaches the
    small-initialization regime of Kumar and Haupt 2024);
``seed``, ``n_data``, ``batch_size``, ``width``
    structural: each value gets its own weights, data or shapes, so each
    point of an axis over them trains exactly the network that value would
    give with the axis fixed.

Training any of them is :func:`fractalscape.gd.run_block` (or
:meth:`NetworkModel.run_block`), with any optimizer; the readouts are

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

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Literal, Mapping, Sequence

import numpy as np

from fractalscape.errors import ConfigError
from fractalscape.model import Model, Program
from fractalscape.networks import jaxrandom
from fractalscape.networks.activations import ACTIVATIONS
from fractalscape.networks.kernels import LOSSES, PARAMETERIZATIONS, layer_scales, program

NONLINEARITIES = tuple(dict.fromkeys(name for name, _ in ACTIVATIONS))
DATA = ("full", "single", "minibatch")
RNGS = ("numpy", "jax", "jax-2024")
#: The rngs that are ``jax.random`` streams, and whether each uses partitionable threefry.
JAX_RNGS = {"jax": True, "jax-2024": False}
#: Sohl-Dickstein's ``train`` draws its minibatch keys from ``PRNGKey(42)``; ours from ``seed + 42``.
MINIBATCH_SEED_OFFSET = 42
#: Most weight layers a network may have.
MAX_DEPTH = 6
#: Structural slots, in slot order.
STRUCTURAL = ("seed", "n_data", "batch_size", "width")

#: Default divergence threshold on the loss (see docs/networks.md: with it,
#: ``escape_step >= 0`` agrees with Sohl-Dickstein's diverged/converged split).
DEFAULT_THRESHOLD = 1e6
#: Fields whose default is left out of a stored configuration, so maps stored before they existed
#: keep their configuration (and their dask names).
_NEW_FIELDS = {"depth": 2, "parameterization": "mean-field", "loss": "mse", "n_data": None}


#: Widest network (a point's lane buffer holds width^2 weights and their gradient).
MAX_WIDTH = 1024
#: Most bytes of a network's dataset (inputs and targets, float64).
MAX_DATA_BYTES = 2**31


def _integer(name, value, low=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"network {name} must be an integer, got {value!r}")
    if low is not None and value < low:
        raise ConfigError(f"network {name} must be >= {low}, got {value}")


@dataclass(frozen=True)
class NetworkModel(Model):
    """A fully connected network with a scalar output, its data and its initial weights.

    Parameters
    ----------
    nonlinearity : {"tanh", "relu", "identity", "gelu"}
        ``tanh(sqrt(2) z)``, ``sqrt(2) relu(z)``, ``z`` (Sohl-Dickstein's
        three) or the exact GELU ``z Phi(z)``.
    width : int
        Input dimension and hidden width ``n``.
    data : {"full", "single", "minibatch"}
        Full-batch GD on :attr:`n_data` datapoints, on a single datapoint, or
        minibatch steps (the loss is still the full batch's).
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
    depth : int
        Weight layers, 1 to :data:`MAX_DEPTH` (his ``depth``; 2 is one hidden layer).
    parameterization : {"mean-field", "standard", "ntk"}
        Layer scales (docs/networks.md): his mean-field ``h @ W / sqrt(n)``
        in hidden layers and ``h @ W / n`` at the output; ``ntk``, ``/ sqrt(n)``
        everywhere; ``standard``, no factors and initial weights ``N(0, 1/n)``.
    loss : {"mse", "logistic"}
        ``mean((out - y)**2)``, or ``mean(log(1 + exp(-y out)))`` with
        labels ``y = sign`` of the drawn targets (+1 for 0).
    n_data : int, optional
        Datapoints; by default his: 1 for ``data="single"``, ``n`` for
        ``identity``, else the number of weights, ``(depth - 1) n**2 + n``.

    Examples
    --------
    >>> model = NetworkModel("tanh", width=4, data="single")
    >>> model.slots()
    ('lr_W0', 'lr_W1', 'init_offset', 'init_scale', 'seed', 'n_data', 'batch_size', 'width')
    >>> out = model.run_block({"lr_W0": 0.1}, [("lr_W1", np.array([0.5, 50.0]))], steps=50)
    >>> out["escape_step"].tolist()
    [-1, 3]
    >>> NetworkModel("tanh", width=8, rng="jax").arrays()["W1"].round(4).tolist()[:3]
    [1.2683, -0.0704, 0.6075]
    >>> NetworkModel("tanh", width=8, rng="jax-2024").arrays()["W1"].round(4).tolist()[:3]
    [1.8036, 0.2173, -1.2429]
    >>> sorted(NetworkModel("relu", width=4, depth=3).arrays())
    ['W0', 'W1', 'W2', 'X', 'Y']
    """

    nonlinearity: Literal["tanh", "relu", "identity", "gelu"] = "tanh"
    width: int = 16
    data: Literal["full", "single", "minibatch"] = "full"
    batch_size: int = 16
    seed: int = 0
    rng: Literal["numpy", "jax", "jax-2024"] = "numpy"
    depth: int = 2
    parameterization: Literal["mean-field", "standard", "ntk"] = "mean-field"
    loss: Literal["mse", "logistic"] = "mse"
    n_data: int | None = None

    readouts = ("escape_step", "final_loss", "score")
    default_threshold = DEFAULT_THRESHOLD

    def __post_init__(self):
        for name, choices in (("nonlinearity", NONLINEARITIES), ("data", DATA), ("rng", RNGS),
                              ("parameterization", PARAMETERIZATIONS), ("loss", LOSSES)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"network {name} must be one of {', '.join(choices)}; got {getattr(self, name)!r}")
        _integer("depth", self.depth)
        if not 1 <= self.depth <= MAX_DEPTH:
            raise ConfigError(f"network depth (weight layers) must be 1 to {MAX_DEPTH}, got {self.depth}")
        _integer("width", self.width, 1)
        _integer("batch_size", self.batch_size, 1)
        _integer("seed", self.seed, 0)
        if self.n_data is not None:
            _integer("n_data", self.n_data, 1)
        self.check_structure(self.structure())

    # -- the Model protocol ---------------------------------------------------------------
    def lr_slots(self) -> tuple[str, ...]:
        return tuple(f"lr_W{layer}" for layer in range(self.depth))

    def groups(self) -> dict[str, tuple[str, ...]]:
        return {"lr": self.lr_slots()}

    def slots(self) -> tuple[str, ...]:
        return (*self.lr_slots(), "init_offset", "init_scale", *STRUCTURAL)

    def defaults(self) -> dict[str, float]:
        return {"init_offset": 0.0, "init_scale": 1.0, **{k: float(v) for k, v in self.structure().items()}}

    def structural(self) -> tuple[str, ...]:
        return STRUCTURAL

    def structure(self) -> dict[str, int]:
        """The structural slots' values of this model (``n_data`` 0: the default for the width)."""
        return {"seed": self.seed, "n_data": self.n_data or 0, "batch_size": self.batch_size, "width": self.width}

    def _resolved(self, structure: Mapping[str, int]) -> tuple[int, int, int, int]:
        """``(seed, n_data, batch_size, width)``, the default dataset size filled in."""
        width = structure["width"]
        return structure["seed"], structure["n_data"] or self.default_n_data(width), structure["batch_size"], width

    def default_n_data(self, width: int) -> int:
        """His dataset size: 1 for one datapoint, ``width`` for identity, else the number of weights."""
        if self.data == "single":
            return 1
        if self.nonlinearity == "identity":
            return width
        return (self.depth - 1) * width * width + width

    def check_structure(self, structure: Mapping[str, int]) -> None:
        seed, n_data, batch_size, width = self._resolved(structure)
        for name, value in (("seed", seed), ("width", width), ("n_data", n_data), ("batch_size", batch_size)):
            if value < (0 if name == "seed" else 1):
                raise ConfigError(f"network {name} must be >= {0 if name == 'seed' else 1}, got {value}")
        if width > MAX_WIDTH:
            raise ConfigError(f"network width {width} is more than {MAX_WIDTH}, the most a lane buffer holds "
                              f"({MAX_WIDTH}^2 weights per point); use width <= {MAX_WIDTH}")
        if n_data * (width + 1) * 8 > MAX_DATA_BYTES:
            raise ConfigError(f"network data of {n_data} points x {width} inputs takes "
                              f"{n_data * (width + 1) * 8 / 2**30:.3g} GiB, more than {MAX_DATA_BYTES / 2**30:g} GiB; "
                              "use a smaller n_data")
        if self.data == "single" and n_data != 1:
            raise ConfigError(f"data = 'single' trains on one datapoint; n_data = {n_data} contradicts it: "
                              "drop n_data or use data = 'full'")
        if self.data == "minibatch" and batch_size > n_data:
            raise ConfigError(f"batch_size {batch_size} is larger than n_data {n_data}: the minibatch must be a "
                              "part of the dataset")
        if self.rng in JAX_RNGS and seed >= 2**63 - MINIBATCH_SEED_OFFSET:
            raise ConfigError(f"network seed must be < 2**63 - {MINIBATCH_SEED_OFFSET} with rng={self.rng!r} "
                              f"(a JAX key is an int64), got {seed}")

    def program(self, structure: Mapping[str, int], precision: str) -> Program:
        from fractalscape.trig import get_trig

        get_trig(precision)
        return program(self.nonlinearity, precision, self.parameterization, self.loss, self.depth,
                       self._resolved(structure)[3], self.data == "minibatch")

    def data_arrays(self, structure: Mapping[str, int]) -> tuple[np.ndarray, ...]:
        seed, n_data, _, width = self._resolved(structure)
        return _arrays(width, n_data, seed, self.rng, self.depth, self.parameterization, self.loss)

    def kernel_data(self, structure: Mapping[str, int], steps: int) -> tuple:
        seed, n_data, batch_size, width = self._resolved(structure)
        *weights, x, y = self.data_arrays(structure)
        if self.data == "minibatch":
            batches = _minibatches(n_data, batch_size, seed, steps, self.rng)
        else:
            batches = np.zeros((steps + 1, 1), dtype=np.int64)
        return (_flat_weights(*weights), x, y, batches)

    def settings(self, values) -> dict:
        if values.get("x0") is not None:
            raise ConfigError("x0 does not apply to a network (its initial weights come from its seed and "
                              "init_scale); drop it")
        return super().settings({k: v for k, v in values.items() if k != "x0"})

    def owner(self) -> str:
        return f"a depth-{self.depth} network"

    def config_table(self) -> tuple[str, dict]:
        return "network", self.config_dict()

    def attrs(self) -> dict:
        import json

        return {"model": f"network-{self.nonlinearity}-{self.data}", "formula": self.description(),
                "network": json.dumps(self.to_dict())}

    # -- the network's own API ------------------------------------------------------------
    @property
    def n_datapoints(self) -> int:
        """Datapoints of the training set (Sohl-Dickstein's ``batch_size``)."""
        return self.n_data or self.default_n_data(self.width)

    def slot_names(self) -> tuple[str, ...]:
        """Names a grid axis may take: the per-point parameters, then ``"lr"`` (every learning rate)."""
        return (*self.slots(), *self.groups())

    def arrays(self) -> dict[str, np.ndarray]:
        """Initial weights ``W0`` .. ``W{depth-1}`` and data ``X`` (B, n), ``Y`` (B,).

        The weights are ``(n, n)``, the last ``(n,)``, all N(0, 1) (``standard``:
        times ``1/sqrt(n)``); ``Y`` is N(0, 1) (``logistic``: its sign).
        ``rng="numpy"``: drawn in that order from ``np.random.default_rng(seed)``.
        ``rng="jax"`` and ``"jax-2024"``: as in the notebook's ``gen_img`` and ``init``, float64::

            key, sub = split(PRNGKey(seed))
            W_i = normal(k_i, (n, n)) ... normal(k_last, (n, 1)) for k_i in split(sub, depth)
            key, sub = split(key);  X = normal(sub, (B, n))
            key, sub = split(key);  Y = normal(sub, (B, 1))

        with his ``(n, 1)`` and ``(B, 1)`` flattened, ``split`` and ``normal``
        partitionable for ``"jax"``, not for ``"jax-2024"``.
        """
        *weights, x, y = self.data_arrays(self.structure())
        return {**{f"W{layer}": w for layer, w in enumerate(weights)}, "X": x, "Y": y}

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
        return _minibatches(self.n_datapoints, self.batch_size, self.seed, steps, self.rng)

    def config_dict(self) -> dict:
        """The ``[network]`` table of a config that rebuilds this model."""
        return {k: v for k, v in asdict(self).items() if not (k in _NEW_FIELDS and v == _NEW_FIELDS[k])}

    def description(self) -> str:
        """The model in words, for titles and provenance."""
        phi = {"tanh": "tanh(sqrt(2) z)", "relu": "sqrt(2) relu(z)", "identity": "z",
               "gelu": "z Phi(z)"}[self.nonlinearity]
        data = {"full": f"full batch of {self.n_datapoints}", "single": "one datapoint",
                "minibatch": f"minibatches of {self.batch_size} from {self.n_datapoints}"}[self.data]
        layers = ("one-hidden-layer network" if self.depth == 2 else
                  f"{self.depth}-layer network" if self.depth > 1 else "linear model")
        return (f"{layers}, width {self.width}, phi = {phi}, {self.parameterization}, no biases, "
                f"{self.loss.upper() if self.loss == 'mse' else self.loss} on {data}, seed {self.seed}"
                + _RNG_NOTES[self.rng])

    def to_dict(self) -> dict:
        """Provenance: the constructor arguments and the derived data size."""
        return {"model": "sohl-dickstein-network", **asdict(self), "n_data": self.n_datapoints}


_RNG_NOTES = {"numpy": "", "jax": " (jax.random)", "jax-2024": " (jax.random, jax_threefry_partitionable=False)"}


@lru_cache(maxsize=16)
def _arrays(width: int, n_data: int, seed: int, rng: str, depth: int = 2, parameterization: str = "mean-field",
            loss: str = "mse") -> tuple[np.ndarray, ...]:
    """``(W0, .., W{depth-1}, X, Y)``, read-only (see :meth:`NetworkModel.arrays`)."""
    shapes = [(width, width)] * (depth - 1) + [(width, 1)]
    if rng in JAX_RNGS:
        kw = {"partitionable": JAX_RNGS[rng]}
        key, sub = jaxrandom.split(jaxrandom.prng_key(seed), **kw)
        layers = jaxrandom.split(sub, depth, **kw)
        weights = [jaxrandom.normal(k, shape, **kw) for k, shape in zip(layers, shapes)]
        key, sub = jaxrandom.split(key, **kw)
        x = jaxrandom.normal(sub, (n_data, width), **kw)
        key, sub = jaxrandom.split(key, **kw)
        y = jaxrandom.normal(sub, (n_data, 1), **kw)
    else:
        gen = np.random.default_rng(seed)
        weights = [gen.standard_normal(shape[0] if shape[1] == 1 else shape) for shape in shapes]
        x = gen.standard_normal((n_data, width))
        y = gen.standard_normal(n_data)
    weights[-1] = weights[-1].ravel()
    y = y.ravel()
    init = layer_scales(parameterization, width)[2]
    if init != 1.0:
        weights = [w * init for w in weights]
    if loss == "logistic":
        y = np.where(y >= 0.0, 1.0, -1.0)
    out = (*weights, x, y)
    for a in out:
        a.flags.writeable = False
    return out


def _flat_weights(*weights) -> np.ndarray:
    """The weights in the program's parameter order: ``W0`` row-major, ``W1``, ..."""
    return np.concatenate([w.ravel() for w in weights])


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
    model: Model,
    axes: Sequence[tuple[str, np.ndarray]],
    *,
    steps: int,
    params: dict[str, float | None] | None = None,
    threshold: float | None = None,
    precision: str = "libm",
    optimizer: str = "gd",
    threads: int = 1,
) -> np.ndarray:
    """A whole map in one call: :meth:`~fractalscape.model.Model.run_block`, its first axis split over threads.

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

    def run(part):
        return model.run_block(params, [(name, part), *axes[1:]], steps, threshold, precision, optimizer)

    if len(chunks) <= 1:
        return run(np.asarray(first, np.float64))
    with ThreadPoolExecutor(len(chunks)) as pool:
        return np.concatenate(list(pool.map(run, chunks)), axis=0)
