"""Sohl-Dickstein networks through the public path: presets, trainability, the CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest

import fractalscape as fs
from fractalscape.config import preset_names
from fractalscape.networks import NetworkModel
from fractalscape.trainability import RUN_KEYS

SD_PRESETS = ["sd-identity", "sd-relu", "sd-single-point", "sd-minibatch", "sd-tanh", "sd-init-offset"]


def _small(preset, num=12, steps=30, width=4):
    raw = fs.config.read_config(preset)
    raw = {**raw, "network": {**raw["network"], "width": width}, "descent": {**raw["descent"], "steps": steps}}
    raw["axis"] = [{**a, "num": num, "chunk": 5} for a in raw["axis"]]
    return raw


def test_all_six_presets_exist():
    assert set(SD_PRESETS) <= set(preset_names())


@pytest.mark.parametrize("preset", SD_PRESETS)
def test_preset_map_equals_one_block_of_the_model(preset):
    raw = _small(preset)
    ds = fs.open_config(raw).compute()
    cfg = fs.load_config(raw)
    values = {k: v for k, v in cfg.descent.items() if k in cfg.model.slot_names()}
    # trainability hands the kernels threshold = inf as the largest double, so inf losses stop points too
    threshold = min(cfg.descent["threshold"], np.finfo(np.float64).max)
    whole = cfg.model.run_block(values, [(a.name, a.values()) for a in cfg.grid.axes], cfg.descent["steps"],
                                threshold, cfg.descent["precision"])
    for name in ("escape_step", "final_loss", "score"):
        np.testing.assert_array_equal(ds[name].values, whole[name])
    # the presets use his label: diverged is "not converged by his measure", the sign of the score
    assert cfg.descent["label"] == "sohl-dickstein" and cfg.descent["threshold"] == np.inf
    np.testing.assert_array_equal(ds.diverged.values, ~(whole["score"] < 0))
    assert json.loads(ds.attrs["config"])["network"]["nonlinearity"] == cfg.model.nonlinearity


def test_network_settings_are_checked():
    model = NetworkModel("tanh", width=4)
    grid = fs.Grid([fs.Axis("lr_W0", 0.1, 10.0, 4, scale="log")])
    with pytest.raises(fs.ConfigError, match="learning rate 'lr_W1' is not set"):
        fs.trainability(model, grid)
    with pytest.raises(fs.ConfigError, match="x0 does not apply to a network"):
        fs.trainability(model, grid, lr_W1=1.0, x0=1.0)
    with pytest.raises(fs.ConfigError, match="momentum is a hyperparameter of momentum, nesterov, not of optimizer 'gd'"):
        fs.trainability(model, grid, lr_W1=1.0, momentum=0.9)
    with pytest.raises(fs.ConfigError, match="unknown descent setting 'dropout'"):
        fs.trainability(model, grid, lr_W1=1.0, dropout=0.9)
    with pytest.raises(fs.ConfigError, match="a config needs exactly one of the tables"):
        fs.open_config({"landscape": {"name": "quadratic"}, "network": {}, "axis": []})
    with pytest.raises(fs.ConfigError, match="\\[network\\] has unknown key 'dropout'"):
        fs.open_config({"network": {"dropout": 3}, "axis": [{"name": "lr", "start": 0.1, "stop": 1, "num": 3}]})


NEW_PRESETS = ["kh-small-init", "yang-load-lr", "yang-batch-lr", "adam-lr-beta2", "momentum-lr",
               "liu-multiplicative-momentum"]


def _shrunk(preset):
    """The preset at a few points a side and 30 steps; integer axes keep integer values (3 of them)."""
    raw = fs.config.read_config(preset)
    raw = {**raw, "descent": {**raw["descent"], "steps": 30}}
    if "network" in raw:
        raw["network"] = {**raw["network"], "width": 4}
    axes = []
    for a in raw["axis"]:
        if a["name"] in ("n_data", "batch_size", "seed", "width"):
            axes.append({**a, "start": 2, "stop": 6, "num": 3, "chunk": 2})
        else:
            axes.append({**a, "num": 7, "chunk": 3})
    return {**raw, "axis": axes}


@pytest.mark.parametrize("preset", NEW_PRESETS)
def test_neighbour_presets_equal_one_block_of_the_model(preset):
    raw = _shrunk(preset)
    ds = fs.open_config(raw).compute()
    cfg = fs.load_config(raw)
    settings = {k: v for k, v in cfg.descent.items() if k not in RUN_KEYS}
    threshold = min(cfg.descent["threshold"], np.finfo(np.float64).max)
    whole = cfg.model.run_block(settings, [(a.name, a.values()) for a in cfg.grid.axes], cfg.descent["steps"],
                                threshold, cfg.descent["precision"], cfg.descent.get("optimizer", "gd"))
    for name in cfg.model.readouts:
        np.testing.assert_array_equal(ds[name].values, whole[name])
    assert ds.diverged.shape == cfg.grid.shape


def test_network_preset_through_the_cli(tmp_path):
    out = tmp_path / "sd"
    proc = subprocess.run(
        [sys.executable, "-m", "fractalscape", "map", "sd-tanh", "--out", str(out), "--set", "network.width=4",
         "--set", "descent.steps=30", "--set", "axis.0.num=40", "--set", "axis.1.num=40",
         "--set", "axis.0.chunk=20", "--set", "axis.1.chunk=20"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    stored = fs.open_map(out)
    assert set(stored.data_vars) == {"diverged", "escape_step", "final_loss", "score"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["network"]["width"] == 4
    assert (out / "map.png").stat().st_size > 1000


def test_sohl_dickstein_label_through_the_cli(tmp_path):
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "fractalscape", "map", "sd-tanh", "--out", out,
                    "--set", "axis.0.num=24", "--set", "axis.1.num=24", "--set", "axis.0.chunk=7",
                    "--set", "axis.1.chunk=24", "--set", "network.width=4", "--set", "descent.steps=40"],
                   check=True, capture_output=True)
    stored = fs.open_map(out)
    assert stored.attrs["threshold"] == np.inf
    np.testing.assert_array_equal(stored.diverged.values, ~(stored.score.values < 0))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["diverged_points"] == int(stored.diverged.sum())


@pytest.mark.parametrize(
    "axes, model, message",
    [
        ([fs.Axis("n_data", 8, 9, 3)], {}, r"axis 'n_data' is structural: its values must be integers, got 8.5"),
        ([fs.Axis("width", 2, 5, 4, chunk=2)], {}, r"axis 'width' changes the network's shape: it needs chunk = 1"),
        ([fs.Axis("batch_size", 1, 30, 30)], {"data": "minibatch"},
         r"batch_size 30 is larger than n_data 20: the minibatch must be a part of the dataset"),
        ([fs.Axis("width", 2, 4, 3, chunk=1)], {"data": "minibatch", "batch_size": 7},
         r"batch_size 7 is larger than n_data 6"),  # width 2's dataset is smaller than the batch
        ([fs.Axis("seed", 0, 3, 4)], {"data": "single", "n_data": 5}, r"data = 'single' trains on one datapoint"),
    ],
)
def test_structural_axes_are_checked_before_anything_runs(axes, model, message):
    with pytest.raises(fs.ConfigError, match=message):
        net = NetworkModel("tanh", width=4, **model)
        fs.trainability(net, fs.Grid([*axes, fs.Axis("lr", 0.1, 1.0, 3)]), steps=10)
