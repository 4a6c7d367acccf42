"""The presets of Sohl-Dickstein's six tiles (``sd-tile-*``): his windows, his settings, his boundary."""

import numpy as np
import pytest

import fractalscape as fs
from fractalscape.config import preset_names, read_config, with_overrides

#: His six windows of fractal_tiles_midres.png: preset -> ((x axis, start, stop), (y axis, start, stop)).
WINDOWS = {
    "sd-tile-identity": (("lr_W0", 1.90010080e+2, 1.90011840e+2), ("lr_W1", 4.77745244e+0, 4.77749670e+0)),
    "sd-tile-relu": (("lr_W0", 5.77622737e-1, 5.77625590e-1), ("lr_W1", 8.14432439e+1, 8.14436463e+1)),
    "sd-tile-single-point": (("lr_W0", 4.8298735e+1, 4.8299146e+1), ("lr_W1", 1.82066141e+1, 1.82067690e+1)),
    "sd-tile-minibatch": (("lr_W0", 2.67398835471957e-1, 2.67398835475071e-1),
                          ("lr_W1", 1.74269509700711e+2, 1.74269509702741e+2)),
    "sd-tile-tanh": (("lr_W0", 1.329976231e+1, 1.329978604e+1), ("lr_W1", 2.003582269e+2, 2.003585844e+2)),
    "sd-tile-init-offset": (("init_offset", 1.960618282403e-1, 1.960618285243e-1),
                            ("lr", 3.90254607863e+1, 3.90254608429e+1)),
}  # fmt: skip
#: Each tile's network: (nonlinearity, data), as in the overview presets sd-*.toml.
NETWORKS = {
    "sd-tile-identity": ("identity", "full"), "sd-tile-relu": ("relu", "full"),
    "sd-tile-single-point": ("tanh", "single"), "sd-tile-minibatch": ("tanh", "minibatch"),
    "sd-tile-tanh": ("tanh", "full"), "sd-tile-init-offset": ("tanh", "full"),
}  # fmt: skip


def _small(name: str, size: int, steps: int | None = None, rng: str | None = None) -> fs.config.Config:
    overrides = [f"axis.{i}.{key}={size}" for i in (0, 1) for key in ("num", "chunk")]
    overrides += [] if steps is None else [f"descent.steps={steps}"]
    overrides += [] if rng is None else [f'network.rng="{rng}"']
    return fs.load_config(with_overrides(read_config(name), overrides))


def test_the_six_tile_presets_exist():
    assert sorted(n for n in preset_names() if n.startswith("sd-tile-")) == sorted(WINDOWS)


@pytest.mark.parametrize("name", sorted(WINDOWS))
def test_tile_presets_have_his_windows_and_settings(name):
    cfg = fs.load_config(name)
    assert [(a.name, a.start, a.stop) for a in cfg.grid.axes] == list(WINDOWS[name])  # exactly his numbers
    assert all(a.scale == "linear" and a.num == 256 for a in cfg.grid.axes)
    model = cfg.model
    assert (model.nonlinearity, model.data) == NETWORKS[name]
    assert (model.width, model.batch_size, model.seed, model.rng) == (16, 16, 0, "jax-2024")
    assert cfg.descent == {"steps": 1000, "threshold": np.inf, "precision": "fast", "label": "sohl-dickstein"}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(WINDOWS))
def test_each_window_lies_on_his_boundary(name):
    # 8 x 8 points at his 1000 steps: both labels in every window (so it is on the boundary).
    diverged = _small(name, 8).dataset().diverged.values
    assert 0 < diverged.mean() < 1


@pytest.mark.slow
def test_the_minibatch_window_needs_his_step_count():
    # With the 2024 threefry every minibatch key depends on the step count: at 1000 steps the
    # window is on the boundary, one step either side it is all converged or all diverged.
    fractions = {steps: _small("sd-tile-minibatch", 6, steps).dataset().diverged.values.mean()
                 for steps in (999, 1000, 1001)}
    assert fractions[999] == 0.0 and 0 < fractions[1000] < 1 and fractions[1001] == 1.0


@pytest.mark.slow
def test_todays_jax_stream_misses_the_windows():
    # rng = "jax" (partitionable threefry, JAX's default since 0.5.0): not his network; the tanh window is all converged.
    assert not _small("sd-tile-tanh", 6, rng="jax").dataset().diverged.values.any()
