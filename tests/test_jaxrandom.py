"""fractalscape.networks.jaxrandom against JAX itself, bit for bit, and NetworkModel(rng="jax") against the notebook."""

from contextlib import contextmanager
from fractions import Fraction

import numpy as np
import pytest

import fractalscape as fs
from fractalscape.config import preset_names
from fractalscape.errors import ConfigError
from fractalscape.networks import NetworkModel
from fractalscape.networks import jaxrandom as jr

SHAPES = [(), (1,), (3,), (5, 7), (72, 8), (2, 3, 4)]
SEEDS = [0, 42, 2**40 + 5]


def _same(mine, theirs):
    """Same shape, dtype and bytes (so NaN payloads and signed zeros count)."""
    theirs = np.asarray(theirs)
    return mine.shape == theirs.shape and mine.dtype == theirs.dtype and mine.tobytes() == theirs.tobytes()


# No JAX needed.


@pytest.mark.parametrize("key, count, expected", [
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
])
def test_threefry_known_answers(key, count, expected):
    # Random123's known-answer tests for threefry2x32_20, which JAX's tests use too.
    y0, y1 = jr.threefry2x32(np.array(key, np.uint32), np.uint32(count[0]), np.uint32(count[1]))
    assert (int(y0), int(y1)) == expected


def test_fma_is_correctly_rounded():
    rng = np.random.default_rng(0)
    n = 3000
    a = np.concatenate([rng.standard_normal(n), 1 + rng.integers(0, 2**30, n) * 2.0**-52,
                        rng.integers(1, 2**27, n) * 2.0**-26])
    b = np.concatenate([rng.standard_normal(n) * 10.0 ** rng.integers(-20, 20, n),
                        1 + rng.integers(0, 2**30, n) * 2.0**-52, rng.integers(1, 2**27, n) * 2.0**-26])
    c = np.concatenate([rng.standard_normal(n), -1.0 - rng.integers(0, 4, n) * 2.0**-52,  # cancellation
                        rng.integers(-(2**40), 2**40, n) * 2.0**-40])  # halfway cases
    c[:200] = -(a[:200] * b[:200])
    exact = np.array([float(Fraction(x) * Fraction(y) + Fraction(z)) for x, y, z in zip(a, b, c)])
    got = jr.fma(a, b, c)
    assert _same(got, exact)
    assert (got != a * b + c).sum() > 1000  # the cases are hard: plain a * b + c rounds twice
    assert not np.signbit(jr.fma(0.0, 1.0, -0.0)) and np.signbit(jr.fma(-0.0, 1.0, -0.0))  # IEEE's zeros


def test_keys_and_draws_have_jax_shapes_and_ranges():
    keys = jr.split(jr.prng_key(7), 4)
    assert keys.shape == (4, 2) and keys.dtype == np.uint32
    assert jr.normal(keys, (3, 5)).shape == (4, 3, 5)
    assert jr.split(keys, 3).shape == (4, 3, 2)
    r = jr.randint(keys, (1000,), 5, 9)
    assert r.dtype == np.int64 and r.min() == 5 and r.max() == 8
    assert (jr.randint(keys[0], (10,), 3, 3) == 3).all()  # an empty range gives minval, as in JAX
    u = jr.uniform(keys[0], (10_000,), -2.0, 3.0)
    assert u.min() >= -2.0 and u.max() < 3.0
    with pytest.raises(ValueError, match="fit in int64"):
        jr.prng_key(2**63)


# NetworkModel's rng option.


def test_rng_option_is_checked_and_read_from_configs():
    with pytest.raises(ConfigError, match=r"network rng must be one of numpy, jax, jax-2024; got 'torch'"):
        NetworkModel(rng="torch")
    raw = {"network": {"width": 3, "rng": "torch"}, "axis": [{"name": "lr", "start": 0.1, "stop": 1, "num": 3}]}
    with pytest.raises(ConfigError, match="network rng must be one of"):
        fs.open_config(raw)
    raw["network"]["rng"] = "jax"
    assert fs.load_config(raw).model.rng == "jax"
    with pytest.raises(ConfigError, match="seed must be < 2\\*\\*63 - 42 with rng='jax'"):
        NetworkModel(rng="jax", seed=2**63 - 1)


def test_rng_changes_only_the_draws():
    numpy_model, jax_model = NetworkModel("tanh", width=3), NetworkModel("tanh", width=3, rng="jax")
    a, b = numpy_model.arrays(), jax_model.arrays()
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()} == {
        "W0": (3, 3), "W1": (3,), "X": (12, 3), "Y": (12,)}
    assert not np.array_equal(a["W0"], b["W0"])
    assert jax_model.to_dict()["rng"] == "jax" and "jax.random" in jax_model.description()
    minibatch = NetworkModel("tanh", width=3, data="minibatch", batch_size=4, rng="jax")
    assert np.array_equal(minibatch.minibatches(50)[:11], minibatch.minibatches(10))
    out = minibatch.run_block({}, [("lr", np.array([0.5, 50.0]))], steps=40)
    assert out["escape_step"][0] == -1 and out["escape_step"][1] >= 0


def test_sohl_dickstein_presets_use_his_draws():
    names = [name for name in preset_names() if name.startswith("sd-")]
    assert len(names) >= 6
    for name in names:
        assert fs.load_config(name).model.rng in ("jax", "jax-2024"), name


# Against JAX (CI installs it).


@pytest.fixture
def jax():
    jax = pytest.importorskip("jax")
    with jax.enable_x64(True):
        yield jax


@pytest.fixture(params=[True, False], ids=["partitionable", "original"])
def partitionable(request, jax):
    with jax.threefry_partitionable(request.param):
        yield request.param


def test_installed_jax_is_the_version_matched(jax):
    assert jax.config.jax_threefry_partitionable == jr.THREEFRY_PARTITIONABLE
    assert jax.config.jax_default_prng_impl == "threefry2x32"
    if jax.__version__ != jr.JAX_VERSION:
        pytest.skip(f"the streams were matched with JAX {jr.JAX_VERSION}; this is {jax.__version__}")


@pytest.mark.parametrize("seed", SEEDS)
def test_keys_split_and_bits(jax, partitionable, seed):
    key = jax.random.PRNGKey(seed)
    mine = jr.prng_key(seed)
    assert _same(mine, key)
    for num in (1, 2, 3, 100):
        assert _same(jr.split(mine, num, partitionable=partitionable), jax.random.split(key, num)), num
    for shape in SHAPES:
        for width in (32, 64):
            bits = jr.random_bits(mine, width, shape, partitionable=partitionable)
            assert _same(bits, jax.random.bits(key, shape, dtype=f"uint{width}")), (width, shape)


@pytest.mark.parametrize("seed", SEEDS)
def test_normal_uniform_randint(jax, partitionable, seed):
    key, mine = jax.random.PRNGKey(seed), jr.prng_key(seed)
    for shape in SHAPES:
        assert _same(jr.normal(mine, shape, partitionable=partitionable), jax.random.normal(key, shape)), shape
        assert _same(jr.uniform(mine, shape, -3.0, 7.1, partitionable=partitionable),
                     jax.random.uniform(key, shape, minval=-3.0, maxval=7.1)), shape
        for lo, hi in [(0, 72), (-5, 3), (0, 1), (0, 2**40 + 3), (7, 7), (-(2**62), 2**62)]:
            assert _same(jr.randint(mine, shape, lo, hi, partitionable=partitionable),
                         jax.random.randint(key, shape, lo, hi)), (shape, lo, hi)


def test_batched_keys_are_vmap(jax, partitionable):
    keys = jax.random.split(jax.random.PRNGKey(42), 6)
    mine = np.asarray(keys)
    assert _same(jr.split(mine, 3, partitionable=partitionable), jax.vmap(lambda k: jax.random.split(k, 3))(keys))
    assert _same(jr.normal(mine, (3, 2), partitionable=partitionable),
                 jax.vmap(lambda k: jax.random.normal(k, (3, 2)))(keys))
    assert _same(jr.randint(mine, (16,), 0, 72, partitionable=partitionable),
                 jax.vmap(lambda k: jax.random.randint(k, (16,), 0, 72))(keys))


def test_erf_inv_and_log1p_are_xlas(jax):
    rng = np.random.default_rng(0)
    u = np.concatenate([
        rng.uniform(-1.0, 1.0, 40_001), 1.0 - np.exp(-rng.uniform(0.0, 36.0, 20_000)),  # all three branches
        rng.uniform(-1e-3, 1e-3, 2000), [0.0, -0.0, 1.0, -1.0, np.nextafter(1.0, 0.0), np.nextafter(-1.0, 0.0)],
    ])
    assert _same(jr.erf_inv(u), jax.jit(jax.lax.erf_inv)(u))
    y = -u * u
    assert _same(jr.xla_log1p(y), jax.jit(jax.numpy.log1p)(y))


# His notebook's draws (cells "Network and training" and gen_img), written as he wrote them.


def _his_arrays(jax, width, nonlinearity, dataset_param_multiple, seed):
    target_dim, depth = 1, 2

    def init(rng, width, depth):
        rng = jax.random.split(rng, depth)
        theta = []
        out_width = width
        for i in range(depth):
            if i == depth - 1:
                out_width = target_dim
            W = jax.random.normal(rng[i], (width, out_width))
            theta.append(W)
        return theta

    rng = jax.random.PRNGKey(seed)
    rng, srng = jax.random.split(rng)
    theta = init(srng, width, depth)
    n_params = sum(int(u.size) for u in theta)
    rng, srng = jax.random.split(rng)
    if dataset_param_multiple == "single_datapoint":
        batch_size = 1
    elif nonlinearity == "identity":
        batch_size = int(width * dataset_param_multiple)
    else:
        batch_size = int(n_params * dataset_param_multiple / target_dim)
    X = jax.random.normal(srng, (batch_size, width))
    rng, srng = jax.random.split(rng)
    Y = jax.random.normal(srng, (batch_size, target_dim))
    return theta, X, Y


@pytest.mark.parametrize("nonlinearity, data, width, seed", [
    ("tanh", "full", 8, 0), ("relu", "full", 3, 0), ("identity", "full", 8, 0), ("tanh", "single", 16, 0),
    ("tanh", "full", 5, 3),
])
def test_model_arrays_are_his(jax, nonlinearity, data, width, seed):
    (w0, w1), x, y = _his_arrays(jax, width, nonlinearity, "single_datapoint" if data == "single" else 1.0, seed)
    arrays = NetworkModel(nonlinearity, width=width, data=data, seed=seed, rng="jax").arrays()
    assert w1.shape == (width, 1) and y.shape == (x.shape[0], 1)  # his; the kernels take them flat
    assert _same(arrays["W0"], w0) and _same(arrays["X"], x)
    assert _same(arrays["W1"], np.asarray(w1).ravel()) and _same(arrays["Y"], np.asarray(y).ravel())


@pytest.mark.parametrize("steps", [1, 100, 500])
def test_model_minibatches_are_his(jax, steps):
    model = NetworkModel("tanh", width=8, data="minibatch", batch_size=16, rng="jax")
    n_data = model.arrays()["X"].shape[0]
    # His train(): rng = split(PRNGKey(42), num_steps), and in train_step
    # idx = jax.random.randint(rng, (minibatch_size,), 0, X.shape[0]) with each step's key.
    keys = jax.random.split(jax.random.PRNGKey(42), steps)
    his = np.stack([np.asarray(jax.random.randint(k, (16,), 0, n_data)) for k in keys])
    ours = model.minibatches(steps)
    assert ours.shape == (steps + 1, 16)
    assert _same(ours[:steps], his)


@contextmanager
def _threefry_2024(jax):
    """JAX as in 2024 (before 0.5.0): ``jax.config.update("jax_threefry_partitionable", False)``, then restored."""
    before = jax.config.jax_threefry_partitionable
    jax.config.update("jax_threefry_partitionable", False)
    try:
        yield
    finally:
        jax.config.update("jax_threefry_partitionable", before)


@pytest.mark.parametrize("nonlinearity, data, width, seed", [
    ("tanh", "full", 8, 0), ("identity", "full", 16, 0), ("tanh", "single", 16, 0), ("relu", "full", 5, 3),
])
def test_model_arrays_are_his_with_the_2024_threefry(jax, nonlinearity, data, width, seed):
    with _threefry_2024(jax):
        (w0, w1), x, y = _his_arrays(jax, width, nonlinearity, "single_datapoint" if data == "single" else 1.0, seed)
    arrays = NetworkModel(nonlinearity, width=width, data=data, seed=seed, rng="jax-2024").arrays()
    assert _same(arrays["W0"], w0) and _same(arrays["X"], x)
    assert _same(arrays["W1"], np.asarray(w1).ravel()) and _same(arrays["Y"], np.asarray(y).ravel())
    assert not np.array_equal(arrays["W0"], NetworkModel(nonlinearity, width=width, data=data, seed=seed,
                                                         rng="jax").arrays()["W0"])


@pytest.mark.parametrize("steps", [1, 2, 7, 1000])
def test_model_minibatches_are_his_with_the_2024_threefry(jax, steps):
    model = NetworkModel("tanh", width=16, data="minibatch", batch_size=16, rng="jax-2024")
    n_data = model.n_datapoints
    with _threefry_2024(jax):
        keys = jax.random.split(jax.random.PRNGKey(42), steps)  # his train(), then randint in train_step
        his = np.stack([np.asarray(jax.random.randint(k, (16,), 0, n_data)) for k in keys])
    ours = model.minibatches(steps)
    assert ours.shape == (steps + 1, 16)
    assert _same(ours[:steps], his) and _same(ours[steps], his[-1])


def test_2024_minibatches_depend_on_the_step_count():
    # The unpartitionable split(key, n) hashes the counter pairs (i, i + n): every key changes with n.
    model = NetworkModel("tanh", width=3, data="minibatch", batch_size=8, rng="jax-2024")
    assert not np.array_equal(model.minibatches(10)[:5], model.minibatches(5)[:5])
    assert "jax_threefry_partitionable=False" in model.description()
    with pytest.raises(ConfigError, match="seed must be < 2\\*\\*63 - 42 with rng='jax-2024'"):
        NetworkModel(rng="jax-2024", seed=2**63 - 1)


@pytest.mark.slow
@pytest.mark.parametrize("data", ["full", "minibatch"])
def test_his_training_loop_labels_our_map(jax, data):
    """His net, loss, train_step, train and convergence_measure (lr_vs_lr) on his draws, against network_map."""
    from fractalscape.networks import network_map

    jnp, width, steps, minibatch_size = jax.numpy, 8, 60, 16 if data == "minibatch" else None
    (w0, w1), x, y = _his_arrays(jax, width, "tanh", 1.0, 0)

    def net(theta, X):
        for W in theta:
            Z = jnp.dot(X, W) / jnp.sqrt(W.shape[0])
            X = jax.nn.tanh(Z * jnp.sqrt(2))
        return Z / jnp.sqrt(W.shape[0])

    def loss(theta, X, Y):
        return jnp.mean((net(theta, X) - Y) ** 2)

    def train_step(rng, theta, hparams, X, Y):
        if minibatch_size is None:
            _loss, _grad = jax.value_and_grad(loss)(theta, X, Y)
        else:
            idx = jax.random.randint(rng, (minibatch_size,), 0, X.shape[0])
            _loss, _grad = loss(theta, X, Y), jax.grad(loss)(theta, X[idx], Y[idx])
        return [t - lr * g for t, g, lr in zip(theta, _grad, hparams)], _loss

    def convergence_measure(v, max_val=1e6):
        fin = jnp.isfinite(v)
        v = v * fin + max_val * (1 - fin)
        v /= v[0]
        exceeds = v > max_val
        v = v * (1 - exceeds) + max_val * exceeds
        converged = jnp.mean(v[-20:]) < 1
        return jnp.where(converged, -jnp.sum(v), jnp.sum(1 / v))

    step = jax.jit(jax.vmap(train_step, in_axes=(None, 0, 0, None, None)))
    gg1, gg2 = jnp.logspace(-1, 3, 16), jnp.logspace(-1, 3, 16)
    lr0, lr1 = jnp.meshgrid(gg2, gg1)
    hparams = jnp.stack([lr0.ravel(), lr1.ravel()], axis=-1)
    theta = [jnp.tile(w, (len(hparams), 1, 1)) for w in (w0, w1)]
    losses = []
    for key in jax.random.split(jax.random.PRNGKey(42), steps):
        theta, value = step(key, theta, hparams, x, y)
        losses.append(value)
    his = np.asarray(jax.jit(jax.vmap(convergence_measure))(jnp.stack(losses, axis=-1))).reshape(16, 16)

    model = NetworkModel("tanh", width=width, data=data, rng="jax")
    ours = network_map(model, [("lr_W1", np.asarray(gg1)), ("lr_W0", np.asarray(gg2))], steps=steps,
                       threshold=np.inf, precision="libm")["score"]
    assert np.mean((his < 0) == (ours < 0)) >= 0.99
    both = np.isfinite(his) & np.isfinite(ours)
    # Same draws, so the same trajectories up to XLA's rounding (its dot products, tanh and
    # fused multiply-adds), which chaotic points near the boundary amplify.
    rel = np.abs(ours[both] - his[both]) / np.abs(his[both])
    assert both.mean() > 0.5 and np.median(rel) < 1e-12 and np.mean(rel < 1e-6) > 0.8
