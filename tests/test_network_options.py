"""NetworkModel's options against the plain-NumPy reference (tests/network_reference.py), bit for bit.

Depths 1, 2, 3 (and 6, slow), the three parameterizations, the logistic
loss, GELU, ``init_scale``, momentum and Adam (tests/reference_optimizers.py's
update rules), minibatches at depth 3, and the structural axes ``seed``,
``n_data``, ``batch_size`` and ``width``.

Every network shape is a numba kernel compiled on first use (on a busy
2-core machine: 5 s at depth 1, 15 s at depth 2, 35 s at depth 3 and 55 s
with minibatches, 2-5 minutes at depth 6), so the tests share a few models,
each ``(model, optimizer)`` below one kernel, and the depth-3 momentum and
depth-6 checks are ``slow``.
"""

from contextlib import ExitStack
from dataclasses import replace

import numpy as np
import pytest

import network_reference as ref
from fractalscape.errors import ConfigError
from fractalscape.networks import NetworkModel

#: The optimizers' hyperparameters when a test leaves them out: fractalscape's momentum and torch's Adam.
DEFAULTS = {"gd": {}, "momentum": {"momentum": 0.9}, "adam": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}}
HYPER = ("momentum", "beta1", "beta2", "eps", "weight_decay")

# The kernels of this file, one per (model, optimizer); the last two are slow.
DEPTH1 = NetworkModel("tanh", width=3, depth=1, parameterization="standard", data="minibatch", batch_size=2)  # gd
GELU2 = NetworkModel("gelu", width=3, depth=2, parameterization="standard")  # momentum
LOGISTIC2 = NetworkModel("tanh", width=3, depth=2, parameterization="ntk", loss="logistic")  # adam
# relu at depth 3: post_scale on the way back through a hidden layer (seed 0's relu net never diverges)
MINIBATCH3 = NetworkModel("relu", width=3, depth=3, data="minibatch", batch_size=4, seed=1)  # adam, mean-field
GELU3 = NetworkModel("gelu", width=3, depth=3, parameterization="ntk", loss="logistic")  # momentum
DEEP6 = NetworkModel("tanh", width=2, depth=6)  # gd, mean-field


def _reference(model, values, axes, steps, threshold, optimizer):
    """The reference's escape_step, final_loss and score over the outer product of ``axes``."""
    grids = np.meshgrid(*[np.asarray(c, dtype=np.float64) for _, c in axes], indexing="ij")
    shape, points = grids[0].shape, grids[0].size
    settings = {**values, **{name: g.ravel() for (name, _), g in zip(axes, grids)}}
    lrs = [settings.get(f"lr_W{layer}", settings.get("lr")) for layer in range(model.depth)]
    hyper = {**DEFAULTS[optimizer], **{k: v for k, v in settings.items() if k in HYPER}}
    unknown = set(settings) - {"lr", *model.lr_slots(), *HYPER, "init_offset", "init_scale"}
    assert not unknown, unknown
    escape, final, score, _ = ref.train_network(
        model.nonlinearity, model.width, model.data, lrs=[np.broadcast_to(lr, (points,)) for lr in lrs],
        steps=steps, threshold=threshold, depth=model.depth, parameterization=model.parameterization,
        loss=model.loss, offset=settings.get("init_offset", 0.0), init_scale=settings.get("init_scale", 1.0),
        seed=model.seed, batch_size=model.batch_size, n_data=model.n_datapoints, optimizer=optimizer, hyper=hyper,
    )  # fmt: skip
    return escape.reshape(shape), final.reshape(shape), score.reshape(shape)


def _check(model, values, axes, *, steps=40, threshold=1e6, optimizer="gd", mixed=True):
    """The libm kernel's map is the reference's bit for bit; with ``mixed``, both labels occur."""
    out = model.run_block(values, axes, steps, threshold, "libm", optimizer)
    escape, final, score = _reference(model, values, axes, steps, threshold, optimizer)
    assert np.array_equal(out["escape_step"], escape)
    assert out["final_loss"].tobytes() == final.tobytes()
    assert out["score"].tobytes() == score.tobytes()
    if mixed:
        assert 0 < (escape >= 0).sum() < escape.size  # the grid spans the boundary
    return out


# -- the reference itself ----------------------------------------------------------------------


@pytest.mark.parametrize("nonlinearity, depth, parameterization, loss", [
    ("gelu", 3, "ntk", "logistic"), ("relu", 1, "standard", "mse"), ("tanh", 4, "mean-field", "logistic"),
    ("identity", 3, "standard", "mse"), ("gelu", 2, "mean-field", "mse"),
])  # fmt: skip
def test_reference_gradient_matches_finite_differences(nonlinearity, depth, parameterization, loss):
    net = ref.Net(nonlinearity, 3, depth, parameterization, loss)
    rng = np.random.default_rng(5)
    weights = [rng.normal(size=(1, 3, 3)) for _ in range(depth - 1)] + [rng.normal(size=(1, 3))]
    x, y = rng.normal(size=(7, 3)), rng.normal(size=7)
    if loss == "logistic":
        y = np.sign(y)
    grads = net.gradient(weights, x, y)
    h = 1e-6
    for layer, grad in enumerate(grads):
        for index in [(0, 1, 2), (0, 2, 0)] if grad.ndim == 3 else [(0, 0), (0, 2)]:
            up = [w.copy() for w in weights]
            down = [w.copy() for w in weights]
            up[layer][index] += h
            down[layer][index] -= h
            fd = (net.loss(up, x, y) - net.loss(down, x, y))[0] / (2 * h)
            assert fd == pytest.approx(grad[index], rel=1e-5, abs=1e-8), (layer, index)


def test_reference_score_at_an_infinite_threshold_is_the_notebooks():
    escape, _, score, losses = ref.train_network("relu", 3, "full", lrs=np.logspace(-1, 2, 8), steps=30,
                                                 threshold=np.inf, parameterization="standard")
    assert (escape >= 0).any() and (escape < 0).any()
    with np.errstate(invalid="ignore"):
        notebook = ref.convergence_measure(losses[:, :30])
    assert np.isnan(score).any() and np.array_equal(score, notebook, equal_nan=True)  # NaN's sign bit may differ


# -- the kernels against the reference -----------------------------------------------------------


def test_depth_1_with_init_offset_init_scale_and_minibatches():
    lr = np.logspace(-1.5, 1.0, 6)
    _check(DEPTH1, {}, [("lr", lr), ("init_offset", np.array([0.0, 1e-3, 1e-2]))])
    _check(DEPTH1, {}, [("lr_W0", lr), ("init_scale", np.array([0.5, 1.0, 2.0]))])
    _check(DEPTH1, {}, [("lr_W0", lr), ("init_scale", np.array([0.5, 1.0, 2.0]))], threshold=np.inf, mixed=False)


def test_depth_2_standard_gelu_with_momentum():
    lr = np.logspace(-1.5, 1.5, 5)
    _check(GELU2, {}, [("lr_W0", lr), ("lr_W1", lr)], optimizer="momentum")
    _check(GELU2, {"momentum": 0.5}, [("lr_W0", lr), ("lr_W1", lr)], optimizer="momentum", threshold=np.inf,
           mixed=False)  # fmt: skip


def test_depth_2_ntk_logistic_with_adam():
    # The logistic loss grows only linearly in the output: a threshold of 2 (chance is log 2) splits the grid.
    lr = np.logspace(-1.0, 2.0, 5)
    _check(LOGISTIC2, {}, [("lr_W0", lr), ("lr_W1", lr)], optimizer="adam", threshold=2.0)
    _check(LOGISTIC2, {}, [("lr_W0", lr), ("lr_W1", lr)], optimizer="adam", threshold=np.inf, mixed=False)
    # beta1 < 0.5: torch's lerp takes its other branch, g - (g - m) * (1 - (1 - beta1)).
    _check(LOGISTIC2, {"beta1": 0.3, "beta2": 0.9, "eps": 1e-6}, [("lr_W0", lr), ("lr_W1", lr)],
           optimizer="adam", threshold=2.0, mixed=False)  # fmt: skip


@pytest.mark.slow
def test_depth_3_ntk_gelu_logistic_with_momentum_and_init_scale():
    lr = np.logspace(1.0, 4.0, 5)
    values = {"lr_W1": 0.5, "momentum": 0.9}
    axes = [("lr_W0", lr), ("lr_W2", lr), ("init_scale", np.array([0.25, 1.0, 2.0]))]
    _check(GELU3, values, axes, optimizer="momentum", threshold=2.0)
    _check(GELU3, values, axes, optimizer="momentum", threshold=np.inf, mixed=False)


def test_depth_3_mean_field_minibatches_with_adam():
    lr = np.logspace(-1.5, 1.5, 5)
    _check(MINIBATCH3, {"lr_W1": 1.0}, [("lr_W0", lr), ("lr_W2", lr)], optimizer="adam", threshold=10.0)
    _check(MINIBATCH3, {"lr_W1": 1.0}, [("lr_W0", lr), ("lr_W2", lr)], optimizer="adam", threshold=np.inf,
           mixed=False)  # fmt: skip


@pytest.mark.slow
def test_depth_6():
    lr = np.logspace(-1.0, 2.0, 5)
    _check(DEEP6, {"lr_W1": 1.0, "lr_W2": 1.0, "lr_W3": 1.0, "lr_W4": 1.0}, [("lr_W0", lr), ("lr_W5", lr)])


# -- structural axes: each value trains the network that value would give with the axis fixed ------


def _same_columns(model, axis, values, axes, rebuild, *, optimizer="gd", steps=40, threshold=1e6, **run):
    """A map over ``axes + [(axis, values)]`` is, column by column, the map of ``rebuild(value)``."""
    whole = model.run_block(run, [*axes, (axis, np.array(values, dtype=np.float64))], steps, threshold, "libm",
                            optimizer)
    columns = []
    for c, value in enumerate(values):
        fixed = rebuild(value).run_block(run, axes, steps, threshold, "libm", optimizer)
        assert whole[..., c].tobytes() == fixed.tobytes(), (axis, value)
        columns.append(fixed)
    assert len({c.tobytes() for c in columns}) == len(columns)  # the axis changes the map
    return whole


def test_lr_by_seed_is_maps_at_fixed_seeds():
    lr = np.logspace(-1.5, 1.5, 5)
    whole = _same_columns(MINIBATCH3, "seed", [0, 1, 2], [("lr", lr)], lambda s: replace(MINIBATCH3, seed=s),
                          optimizer="adam", threshold=10.0)  # fmt: skip
    # and a seed's column is the reference's network of that seed
    escape, final, score = _reference(replace(MINIBATCH3, seed=2), {}, [("lr", lr)], 40, 10.0, "adam")
    assert np.array_equal(whole["escape_step"][:, 2], escape)
    assert whole["final_loss"][:, 2].tobytes() == final.tobytes() and whole["score"][:, 2].tobytes() == score.tobytes()


def test_lr_by_batch_size_is_maps_at_fixed_batch_sizes():
    lr = np.logspace(-1.5, 1.5, 5)
    _same_columns(MINIBATCH3, "batch_size", [2, 4, 7], [("lr", lr)], lambda b: replace(MINIBATCH3, batch_size=b),
                  optimizer="adam", threshold=10.0)  # fmt: skip


def test_lr_by_n_data_is_maps_at_fixed_n_data():
    lr = np.logspace(-1.5, 1.0, 6)
    _same_columns(DEPTH1, "n_data", [3, 6], [("lr", lr), ("init_scale", np.array([0.5, 1.0]))],
                  lambda b: replace(DEPTH1, n_data=b))


def test_lr_by_width_is_maps_at_fixed_widths():
    lr = np.logspace(-1.5, 1.0, 6)
    _same_columns(DEPTH1, "width", [2, 3], [("lr", lr)], lambda w: replace(DEPTH1, width=w))


# -- arrays ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [DEPTH1, GELU2, LOGISTIC2, MINIBATCH3, GELU3, DEEP6],
                         ids=lambda m: f"depth{m.depth}-{m.parameterization}-{m.loss}")
def test_arrays_are_the_layers_and_data_of_the_reference(model):
    arrays = model.arrays()
    n, depth, points = model.width, model.depth, model.n_datapoints
    assert list(arrays) == [f"W{layer}" for layer in range(depth)] + ["X", "Y"]
    assert [a.shape for a in arrays.values()] == [(n, n)] * (depth - 1) + [(n,), (points, n), (points,)]
    weights, x, y = ref.network_data(n, points, model.seed, depth, model.parameterization, model.loss)
    for layer, w in enumerate(weights):
        assert arrays[f"W{layer}"].tobytes() == w.tobytes()
    assert arrays["X"].tobytes() == x.tobytes() and arrays["Y"].tobytes() == y.tobytes()
    if model.loss == "logistic":
        assert set(np.unique(arrays["Y"])) <= {-1.0, 1.0}


@pytest.mark.parametrize("rng, partitionable", [("jax", True), ("jax-2024", False)])
def test_jax_arrays_at_depth_3_are_jax_randoms(rng, partitionable):
    jax = pytest.importorskip("jax")
    model = NetworkModel("tanh", width=3, depth=3, rng=rng)
    n, points = model.width, model.n_datapoints
    with ExitStack() as stack:
        stack.enter_context(jax.enable_x64(True))
        stack.enter_context(jax.threefry_partitionable(partitionable))
        key, sub = jax.random.split(jax.random.PRNGKey(0))
        layers = jax.random.split(sub, 3)
        weights = [jax.random.normal(k, shape) for k, shape in zip(layers, [(n, n), (n, n), (n, 1)])]
        key, sub = jax.random.split(key)
        x = jax.random.normal(sub, (points, n))
        key, sub = jax.random.split(key)
        y = jax.random.normal(sub, (points, 1))
        expected = [np.asarray(a, dtype=np.float64) for a in (*weights, x, y)]
    assert all(e.dtype == np.float64 for e in expected)
    arrays = model.arrays()
    assert list(arrays) == ["W0", "W1", "W2", "X", "Y"]
    for name, e in zip(arrays, expected):  # his (n, 1) and (B, 1) flattened
        assert arrays[name].size == e.size and arrays[name].tobytes() == e.tobytes(), name


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    ({"depth": 0}, r"depth \(weight layers\) must be 1 to 6, got 0"),
    ({"depth": 7}, r"depth \(weight layers\) must be 1 to 6, got 7"),
    ({"depth": 2.0}, "depth must be an integer, got 2.0"),
    ({"parameterization": "mup"}, "parameterization must be one of mean-field, standard, ntk; got 'mup'"),
    ({"loss": "hinge"}, "loss must be one of mse, logistic; got 'hinge'"),
    ({"nonlinearity": "swish"}, "nonlinearity must be one of tanh, relu, identity, gelu; got 'swish'"),
    ({"data": "minibatch", "batch_size": 5, "n_data": 3}, "batch_size 5 is larger than n_data 3"),
    ({"data": "single", "n_data": 5}, "data = 'single' trains on one datapoint; n_data = 5 contradicts it"),
])  # fmt: skip
def test_bad_network_options_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        NetworkModel(width=3, **kwargs)


def test_a_structural_axis_value_that_contradicts_the_model_is_a_config_error():
    with pytest.raises(ConfigError, match="batch_size 4 is larger than n_data 3"):
        DEPTH1.run_block({}, [("lr", np.ones(2)), ("batch_size", np.array([2.0, 4.0]))], 5, 1e6)
    with pytest.raises(ConfigError, match=r"'n_data' must be an integer, got .*2\.5"):
        DEPTH1.run_block({}, [("lr", np.ones(2)), ("n_data", np.array([2.5]))], 5, 1e6)
