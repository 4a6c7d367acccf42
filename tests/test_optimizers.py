"""The kernels' optimizers against the independent NumPy reference (tests/reference_optimizers.py).

Every rule must give the reference's ``escape_step`` and, bit for bit, its
``final_loss`` on the ripple landscapes (``precision="libm"``); a
hyperparameter on an axis must give the maps with its values fixed; the
cycle exit and dask's blocks must change nothing; bad settings must raise
:class:`fractalscape.ConfigError`. Where ``torch`` is installed the
reference's rules are checked against ``torch.optim`` too.

Each kernel compiles once per landscape, optimizer and weight-decay flag
(a few seconds), so the cases share a few landscapes.
"""

import numpy as np
import pytest

import fractalscape as fs
from fractalscape.gd import run_block
from reference import loss_and_grad
from reference_optimizers import descend, init_state, update

X0 = {1: [1.0], 2: [1.0, -0.7]}
A1, A2 = (fs.landscape("cosine-additive", dim=d, delta=0.2, wavelength=0.1) for d in (1, 2))
M1, M2 = (fs.landscape("cosine-multiplicative", dim=d, delta=0.2, wavelength=0.1) for d in (1, 2))
ADAM = {"beta1": 0.8, "beta2": 0.99, "eps": 1e-8}


def kernel(land, values, axes, *, steps, threshold, optimizer, detect_cycles=True):
    return run_block(land, {"x0": X0[land.dim], **values}, axes, steps=steps, threshold=threshold,
                     optimizer=optimizer, precision="libm", detect_cycles=detect_cycles)


def reference(land, values, axes, *, steps, threshold, optimizer):
    """The reference's ``(escape_step, final_loss)`` over the outer product of the axes, as :func:`run_block`."""
    mesh = np.meshgrid(*[np.asarray(c, dtype=np.float64) for _, c in axes], indexing="ij")
    point = {**values, **{name: m.ravel() for (name, _), m in zip(axes, mesh)}}
    n = mesh[0].size
    lr = np.broadcast_to(point.pop("lr"), (land.dim, n))
    x0 = np.repeat(np.array(X0[land.dim])[:, None], n, axis=1)
    escape, final = descend(land.name, land.params, lr, x0, steps, threshold, optimizer, **point)
    return escape.reshape(mesh[0].shape), final.reshape(mesh[0].shape)


def assert_same(out, escape, final):
    """Equal escape steps and bit-identical final losses."""
    np.testing.assert_array_equal(out["escape_step"], escape)
    bad = np.flatnonzero(out["final_loss"].view(np.int64) != np.asarray(final).view(np.int64))
    assert bad.size == 0, (f"final_loss differs at {bad[:5]}: {out['final_loss'].ravel()[bad[:5]].tolist()} "
                           f"!= {np.ravel(final)[bad[:5]].tolist()}")


def both_labels(escape):
    assert (escape >= 0).any() and (escape < 0).any(), "the grid must hold converged and diverged points"


CASES = [  # landscape, optimizer, values, learning rates, threshold: each rule on both families, both dims
    (A2, "gd", {}, (0.01, 1.5), 1e8),  # dim 1: tests/test_gd.py
    (M2, "gd", {}, (0.01, 1.5), 1e8),
    (A2, "gd", {"weight_decay": 0.1}, (0.01, 1.5), 1e8),
    (A2, "momentum", {"momentum": 0.7}, (0.01, 3.0), 1e8),
    (M1, "momentum", {"momentum": 0.7}, (0.01, 1.5), 1e8),
    (A1, "momentum", {"momentum": 0.5, "weight_decay": 0.05}, (0.01, 3.0), 1e8),
    (A1, "nesterov", {"momentum": 0.6}, (0.01, 1.5), 1e8),
    (M2, "nesterov", {"momentum": 0.6}, (0.01, 1.5), 1e8),
    (A2, "adam", ADAM, (0.01, 1.5), 4.0),
    (M1, "adam", ADAM, (0.01, 1.5), 4.0),
    (M2, "adam", {"beta1": 0.3, "beta2": 0.9, "eps": 1e-6, "weight_decay": 0.1}, (0.01, 1.5), 4.0),  # lerp's w >= 0.5
    (A1, "adamw", {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.05}, (0.01, 1.5), 4.0),
    (M2, "adamw", {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.05}, (0.01, 1.5), 4.0),
]


@pytest.mark.parametrize("land, optimizer, values, lrs, threshold", CASES,
                         ids=[f"{c[0].name}-{c[0].dim}d-{c[1]}{'-wd' if 'weight_decay' in c[2] else ''}"
                              for c in CASES])
def test_optimizer_matches_reference(land, optimizer, values, lrs, threshold):
    axes = [("lr", np.linspace(*lrs, 150))]
    out = kernel(land, values, axes, steps=300, threshold=threshold, optimizer=optimizer)
    escape, final = reference(land, values, axes, steps=300, threshold=threshold, optimizer=optimizer)
    both_labels(escape)
    assert_same(out, escape, final)


@pytest.mark.parametrize("land, optimizer, values, axis, threshold", [
    (M1, "adam", {"beta1": 0.8, "eps": 1e-8}, ("beta2", [0.0, 0.5, 0.9, 0.99, 0.999]), 4.0),
    (A2, "momentum", {}, ("momentum", [0.0, 0.3, 0.7, 0.95]), 1e8),
    (A2, "gd", {}, ("weight_decay", [0.0, 0.05, 0.1]), 1e8),  # the column at 0: the rule without decay
], ids=["beta2", "momentum", "weight_decay"])
def test_hyperparameter_axis_equals_fixed_values(land, optimizer, values, axis, threshold):
    name, coords = axis
    axes = [("lr", np.linspace(0.01, 3.0, 97)), (name, np.array(coords))]
    out = kernel(land, values, axes, steps=300, threshold=threshold, optimizer=optimizer)
    for j, value in enumerate(coords):
        fixed = kernel(land, {**values, name: value}, axes[:1], steps=300, threshold=threshold, optimizer=optimizer)
        assert_same(out[:, j], fixed["escape_step"], fixed["final_loss"])
    escape, final = reference(land, values, axes, steps=300, threshold=threshold, optimizer=optimizer)
    both_labels(escape)
    assert_same(out, escape, final)


@pytest.mark.parametrize("optimizer, values, axes, steps, threshold", [
    ("momentum", {}, [("lr", np.geomspace(1e-3, 3.0, 64)), ("momentum", np.array([0.0, 0.5, 0.9]))], 2000, 1e8),
    # Adam's points may cycle once beta2**t rounds away (some 350 steps at 0.9); large eps lets many settle.
    # beta1 = 0 takes lerp's second branch: m = g.
    ("adam", {"beta1": 0.0, "beta2": 0.9}, [("lr", np.geomspace(1e-4, 1.5, 64)), ("eps", np.geomspace(1e-8, 1.0, 5))],
     3000, 4.0),
], ids=["momentum", "adam"])
def test_cycle_exit_changes_nothing(optimizer, values, axes, steps, threshold):
    escape, final = reference(M1, values, axes, steps=steps, threshold=threshold, optimizer=optimizer)
    both_labels(escape)
    for detect in (False, True):
        out = kernel(M1, values, axes, steps=steps, threshold=threshold, optimizer=optimizer, detect_cycles=detect)
        assert_same(out, escape, final)


def test_cycle_exit_compares_the_velocity():
    # Small steps near a minimum: x stands still for an update while the velocity still changes, so the
    # parameters repeat but the state does not, and the point must run on.
    lrs, mus, steps = np.linspace(0.005, 0.05, 10), np.array([0.5, 0.9]), 1000
    lr, mu = (m.ravel() for m in np.meshgrid(lrs, mus, indexing="ij"))
    x = np.ones((1, lr.size))
    state, stalls = init_state("momentum", x), np.zeros(lr.size, dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):  # some points diverge
        for t in range(1, steps + 1):
            _, g = loss_and_grad(M1.name, x, M1.params)
            x_new, new = update("momentum", x, g, state, t, lr[None], {"momentum": mu})
            stalls |= ((x_new == x) & (new["b"] != state["b"])).all(axis=0)
            x, state = x_new, new
    assert stalls.any()
    axes = [("lr", lrs), ("momentum", mus)]
    out = kernel(M1, {}, axes, steps=steps, threshold=1e8, optimizer="momentum")
    assert_same(out, *reference(M1, {}, axes, steps=steps, threshold=1e8, optimizer="momentum"))


def test_trainability_blocks_equal_one_block():
    grid = fs.Grid([fs.Axis("lr", 0.01, 1.5, 301, chunk=37)])
    ds = fs.trainability(M1, grid, x0=1.0, steps=300, threshold=4.0, optimizer="adam", **ADAM)
    ds = ds.compute(scheduler="sync")
    axes = [("lr", grid.axes[0].values())]
    one = kernel(M1, ADAM, axes, steps=300, threshold=4.0, optimizer="adam")
    assert_same(one, ds.escape_step.values, ds.final_loss.values)
    escape, final = reference(M1, ADAM, axes, steps=300, threshold=4.0, optimizer="adam")
    both_labels(escape)
    assert_same(one, escape, final)


@pytest.mark.parametrize("settings, axis, message", [
    ({"optimizer": "adma"}, None, r"unknown optimizer 'adma' \(did you mean 'adam'\?\)"),
    ({"optimizer": "adam", "beta1": 1.0}, None, r"beta1 must be (in )?\[0, 1\), got 1.0"),
    ({"optimizer": "adam", "beta2": -0.1}, None, r"beta2 must be (in )?\[0, 1\), got -0.1"),
    ({"optimizer": "adam", "eps": 0.0}, None, r"eps must be > 0, got 0.0"),
    ({"optimizer": "momentum", "weight_decay": -1.0}, None, r"weight_decay must be >= 0, got -1.0"),
    ({"optimizer": "gd"}, fs.Axis("beta2", 0.9, 0.99, 3),
     r"axis 'beta2' is a hyperparameter of adam, adamw, not of optimizer 'gd'; set \[descent\] optimizer"),
    ({"optimizer": "gd", "momentum": 0.9}, None,
     r"\[descent\] momentum is a hyperparameter of momentum, nesterov, not of optimizer 'gd'; set optimizer"),
    ({"optimizer": "adam"}, fs.Axis("beta2", 0.9, 1.0, 3), r"beta2 must be (in )?\[0, 1\), got 1.0"),
], ids=["unknown", "beta1", "beta2", "eps", "weight_decay", "axis-of-other", "descent-of-other", "axis-range"])
def test_bad_settings_raise(settings, axis, message):
    grid = fs.Grid([fs.Axis("lr", 0.1, 1.0, 4), *([axis] if axis else [])])
    with pytest.raises(fs.ConfigError, match=message):
        fs.trainability(fs.landscape("quadratic"), grid, steps=10, **settings)


def test_rules_match_torch():
    torch = pytest.importorskip("torch")
    opt = torch.optim
    cases = [
        ("momentum", {"momentum": 0.9}, lambda p, lr: opt.SGD([p], lr=lr, momentum=0.9, foreach=False)),
        ("nesterov", {"momentum": 0.6}, lambda p, lr: opt.SGD([p], lr=lr, momentum=0.6, nesterov=True, foreach=False)),
        ("momentum", {"momentum": 0.5, "weight_decay": 0.1},
         lambda p, lr: opt.SGD([p], lr=lr, momentum=0.5, weight_decay=0.1, foreach=False)),
        ("adam", ADAM, lambda p, lr: opt.Adam([p], lr=lr, betas=(0.8, 0.99), eps=1e-8, foreach=False)),
        ("adam", {"beta1": 0.3, "beta2": 0.9, "eps": 1e-6, "weight_decay": 0.1},
         lambda p, lr: opt.Adam([p], lr=lr, betas=(0.3, 0.9), eps=1e-6, weight_decay=0.1, foreach=False)),
        ("adamw", {**ADAM, "weight_decay": 0.05},
         lambda p, lr: opt.AdamW([p], lr=lr, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.05, foreach=False)),
    ]
    for optimizer, hyper, make in cases:
        for lr in (0.01, 0.3, 1.1):
            p = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
            step = make(p, lr)
            x = np.ones((1, 1))
            state = init_state(optimizer, x)
            for t in range(1, 21):  # loss p**2, gradient exactly 2 p both ways
                step.zero_grad()
                (p * p).sum().backward()
                step.step()
                x, state = update(optimizer, x, 2.0 * x, state, t, lr, hyper)
                assert p.detach().numpy().tobytes() == x[0].tobytes(), (optimizer, hyper, lr, t)
