"""fractalscape.networks against the plain-NumPy reference (tests/network_reference.py)."""

import math
import pickle
import re

import numpy as np
import pytest

import network_reference as ref
from fractalscape.errors import ConfigError
from fractalscape.networks import DEFAULT_THRESHOLD, NetworkModel, network_map
from fractalscape.networks.activations import fast_tanh
from fractalscape.gd import model_kernel

WIDTH = 3
LR = np.logspace(-1.0, 2.5, 7)


def _reference(model, lr_w0, lr_w1, offset, steps, threshold):
    return ref.train(
        model.nonlinearity, model.width, model.data, lr_w0=lr_w0, lr_w1=lr_w1, offset=offset,
        steps=steps, threshold=threshold, seed=model.seed, batch_size=model.batch_size,
    )  # fmt: skip


def _lr_grid(model, steps, threshold, precision="libm"):
    out = model.run_block({}, [("lr_W0", LR), ("lr_W1", LR)], steps, threshold, precision)
    lr0, lr1 = (m.ravel() for m in np.meshgrid(LR, LR, indexing="ij"))
    expected = _reference(model, lr0, lr1, np.zeros_like(lr0), steps, threshold)
    return out, [e.reshape(out.shape) if e.ndim == 1 else e for e in expected]


def test_numpy_tanh_is_not_libm_but_the_reference_is():
    x = np.random.default_rng(0).normal(0.0, 2.0, 20_000)
    libm = np.array([math.tanh(v) for v in x])
    assert np.array_equal(ref._tanh(x), libm)


def test_fast_tanh_within_two_ulp_of_libm():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1, 100_000), rng.uniform(-25, 25, 50_000), rng.uniform(-1e-3, 1e-3, 10_000)])
    fast = np.array([fast_tanh(v) for v in x])
    libm = np.array([math.tanh(v) for v in x])
    ulp = np.abs(fast - libm) / np.spacing(np.abs(libm))
    assert ulp.max() <= 2.0
    assert np.mean(ulp <= 1.0) > 0.99
    assert [fast_tanh(v) for v in (np.inf, -np.inf, 0.0, 30.0)] == [1.0, -1.0, 0.0, 1.0]
    assert math.copysign(1.0, fast_tanh(-0.0)) == -1.0 and math.isnan(fast_tanh(np.nan))


@pytest.mark.parametrize("data", ["full", "minibatch"])
def test_fast_kernel_loops_are_vectorized(data):
    # A lane loop LLVM cannot vectorize (an alias it cannot rule out, a branch, a
    # runtime alias check in a loop too short for one) runs several times slower:
    # fast_tanh's fused multiply-adds and the products must come out as vectors.
    model = NetworkModel("tanh", width=8, data=data, batch_size=4)
    model.run_block({}, [("lr_W0", LR[:2]), ("lr_W1", LR[:2])], 2, DEFAULT_THRESHOLD, "fast")
    llvm = "".join(model_kernel(model, "fast", disk_cache=False).compiled.inspect_llvm().values())
    assert re.search(r"@llvm\.fma\.v\d+f64", llvm)
    assert re.search(r"fmul <\d+ x double>", llvm) and re.search(r"fdiv <\d+ x double>", llvm)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "identity"])
def test_reference_gradient_matches_finite_differences(nonlinearity):
    rng = np.random.default_rng(2)
    w0, w1 = rng.normal(size=(1, WIDTH, WIDTH)), rng.normal(size=(1, WIDTH))
    x, y = rng.normal(size=(5, WIDTH)), rng.normal(size=5)
    g0, g1 = ref.gradient(nonlinearity, w0, w1, x, y)
    h = 1e-6
    for index, grad in ((np.index_exp[0, 1, 2], g0), (np.index_exp[0, 2], g1)):
        target = w0 if grad is g0 else w1
        up, down = target.copy(), target.copy()
        up[index] += h
        down[index] -= h
        args = (up, w1) if grad is g0 else (w0, up)
        args_down = (down, w1) if grad is g0 else (w0, down)
        fd = (ref.loss(nonlinearity, *args, x, y) - ref.loss(nonlinearity, *args_down, x, y)) / (2 * h)
        assert fd[0] == pytest.approx(grad[index], rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "identity"])
def test_kernel_step_is_the_reference_step_and_descends_the_gradient(nonlinearity):
    # One update with lr_W1 = 0 and a tiny lr_W0: the new loss is bit-identical to the
    # reference's, and (L1 - L0) / lr ~ -|dL/dW0|^2 checks the kernel's gradient.
    model = NetworkModel(nonlinearity, width=WIDTH)
    lr = np.array([1e-7, 1e-6])
    out = model.run_block({"lr_W1": 0.0}, [("lr_W0", lr)], steps=1, threshold=np.inf)
    escape, final, _, losses = _reference(model, lr, np.zeros(2), np.zeros(2), 1, np.inf)
    assert np.array_equal(out["final_loss"], final)
    a = model.arrays()
    g0, _ = ref.gradient(nonlinearity, a["W0"][None], a["W1"][None], a["X"], a["Y"])
    slope = (out["final_loss"] - losses[:, 0]) / lr
    assert slope == pytest.approx(-np.sum(g0 * g0) * np.ones(2), rel=1e-3)


@pytest.mark.parametrize(
    "model",
    [
        NetworkModel("tanh", width=WIDTH),
        NetworkModel("relu", width=WIDTH),
        NetworkModel("identity", width=WIDTH),
        NetworkModel("tanh", width=WIDTH, data="single"),
        NetworkModel("tanh", width=WIDTH, data="minibatch", batch_size=4),
    ],
    ids=lambda m: f"{m.nonlinearity}-{m.data}",
)
def test_libm_map_is_the_reference_map(model):
    out, (escape, final, _, _) = _lr_grid(model, 40, DEFAULT_THRESHOLD)
    assert 0 < (escape >= 0).sum() < escape.size  # the grid spans the boundary
    assert np.array_equal(out["escape_step"], escape)
    assert np.array_equal(out["final_loss"], final)
    # Without a threshold every trajectory runs to its end (or its first non-finite
    # loss): the score is the notebook's convergence_measure, bit for bit.
    out, (_, _, score, _) = _lr_grid(model, 40, np.inf)
    assert np.array_equal(out["score"], score, equal_nan=True)


def test_init_offset_is_added_at_every_step():
    model = NetworkModel("tanh", width=WIDTH)
    offset = np.array([0.0, 1e-3, 0.05])
    out = model.run_block({"lr": 0.5}, [("init_offset", offset)], steps=30, threshold=np.inf)
    escape, final, score, losses = _reference(model, np.full(3, 0.5), np.full(3, 0.5), offset, 30, np.inf)
    assert np.array_equal(out["final_loss"], final)
    assert np.array_equal(out["score"], score, equal_nan=True)
    assert len(set(losses[:, 0])) == 3  # the offset is applied before the first loss


@pytest.mark.parametrize("precision", ["libm", "fast"])
@pytest.mark.parametrize("data", ["full", "minibatch"])
def test_blocks_do_not_change_the_result(precision, data):
    model = NetworkModel("tanh", width=WIDTH, data=data, batch_size=4)
    lr0, lr1 = np.logspace(-1, 2.5, 11), np.logspace(-1, 2.5, 13)
    whole = model.run_block({}, [("lr_W0", lr0), ("lr_W1", lr1)], 40, DEFAULT_THRESHOLD, precision)
    rows = [model.run_block({}, [("lr_W0", c), ("lr_W1", lr1)], 40, DEFAULT_THRESHOLD, precision)
            for c in np.split(lr0, [5, 10])]  # fmt: skip
    blocks = np.concatenate(rows, axis=0)
    assert whole.tobytes() == blocks.tobytes()
    transposed = model.run_block({}, [("lr_W1", lr1), ("lr_W0", lr0)], 40, DEFAULT_THRESHOLD, precision)
    assert whole.tobytes() == np.ascontiguousarray(transposed.T).tobytes()
    threaded = network_map(model, [("lr_W0", lr0), ("lr_W1", lr1)], steps=40, precision=precision, threads=2)
    assert whole.tobytes() == threaded.tobytes()


def test_fast_and_libm_labels_agree_on_almost_all_points():
    model = NetworkModel("tanh", width=WIDTH)
    lr = np.logspace(-0.5, 2.5, 40)
    maps = [network_map(model, [("lr_W0", lr), ("lr_W1", lr)], steps=60, precision=p) for p in ("libm", "fast")]
    diverged = [m["escape_step"] >= 0 for m in maps]
    assert 0.1 < diverged[0].mean() < 0.9
    assert np.mean(diverged[0] != diverged[1]) <= 0.01


def test_default_threshold_agrees_with_the_notebooks_classification():
    # The notebook calls a point diverged unless its score is negative (NaN included).
    model = NetworkModel("tanh", width=8)
    lr = np.logspace(-1.0, 3.0, 32)
    axes = [("lr_W0", lr), ("lr_W1", lr)]
    notebook = network_map(model, axes, steps=100, threshold=np.inf, precision="fast", threads=2)
    ours = network_map(model, axes, steps=100, precision="fast", threads=2)
    his_diverged = ~(notebook["score"] < 0)
    assert 0.1 < his_diverged.mean() < 0.9
    assert np.mean((ours["escape_step"] >= 0) == his_diverged) >= 0.99


def test_minibatch_sequence_does_not_depend_on_steps():
    model = NetworkModel("tanh", width=WIDTH, data="minibatch", batch_size=4)
    assert np.array_equal(model.minibatches(50)[:11], model.minibatches(10))
    assert model.minibatches(10).max() < model.n_datapoints


def test_model_is_small_hashable_and_picklable():
    model = NetworkModel("relu", width=8, data="minibatch", seed=3)
    clone = pickle.loads(pickle.dumps(model))
    assert clone == model and hash(clone) == hash(model)
    assert len(pickle.dumps(model)) < 500
    assert model.to_dict() == {
        "model": "sohl-dickstein-network", "nonlinearity": "relu", "width": 8, "data": "minibatch",
        "batch_size": 16, "seed": 3, "rng": "numpy", "depth": 2, "parameterization": "mean-field", "loss": "mse",
        "n_data": 72,
    }  # fmt: skip
    assert NetworkModel("identity", width=8).n_datapoints == 8 and NetworkModel(data="single").n_datapoints == 1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: NetworkModel("sigmoid"), "nonlinearity must be one of"),
        (lambda: NetworkModel(width=0), "width must be >= 1, got 0"),
        (lambda: NetworkModel(data="online"), "data must be one of"),
        (lambda: NetworkModel(width=3).run_block({}, [("lr", np.ones(2))], 0), "steps must be an integer in \\[1, 2\\*\\*31\\)"),
        (lambda: NetworkModel(width=3).run_block({}, [("dropout", np.ones(2))], 5), "unknown axis 'dropout'"),
        (lambda: NetworkModel(width=3).run_block({}, [("momentum", np.ones(2))], 5),
         "axis 'momentum' is a hyperparameter of momentum, nesterov, not of optimizer 'gd'"),
        (lambda: NetworkModel(width=3).run_block({}, [("lr_W0", np.ones(2))], 5), "'lr_W1' is not set"),
        (
            lambda: NetworkModel(width=3).run_block({}, [("lr", np.ones(2)), ("lr_W1", np.ones(2))], 5),
            "axes 'lr' and 'lr_W1' both set 'lr_W1'",
        ),
        (lambda: NetworkModel(width=3).run_block({"lr": 1}, [("lr", np.ones(2))], 5, precision="x"), "precision"),
    ],
)
def test_errors_name_the_bad_value(call, message):
    with pytest.raises(ConfigError, match=message):
        call()
