"""The command line end to end, through a real subprocess and a real zarr store."""

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import fractalscape as fs
from fractalscape.codec import stored_final_loss

SMALL = """
[landscape]
name = "cosine-multiplicative"
delta = 0.2
wavelength = 0.1

[descent]
x0 = 1.0
steps = 300
threshold = 1e8

[[axis]]
name = "lr"
start = 0.0
stop = 1.5
num = 4097
scale = "linear"
chunk = 1000
"""


def run(*args, check_rc=0):
    proc = subprocess.run([sys.executable, "-m", "fractalscape", *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == check_rc, proc.stderr
    return proc


@pytest.fixture
def small_config(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def test_map_end_to_end(tmp_path, small_config):
    out = tmp_path / "run"
    proc = run("map", small_config, "--out", out)
    assert "diverged" in proc.stdout
    stored = fs.open_map(out)
    expected = fs.open_config(small_config).compute()
    for name in ("diverged", "escape_step"):
        np.testing.assert_array_equal(stored[name].values, expected[name].values)
    # the compact store keeps log10 |loss| to 2**-10 decade (docs/store.md)
    np.testing.assert_array_equal(stored.final_loss.values, stored_final_loss(expected.final_loss.values))
    np.testing.assert_array_equal(stored.lr.values, expected.lr.values)
    assert stored.attrs["config"] == expected.attrs["config"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["points"] == 4097
    assert summary["fraction_diverged"] == pytest.approx(float(expected.diverged.mean()))
    assert summary["config"]["landscape"]["name"] == "cosine-multiplicative"
    assert summary["compute_seconds"] > 0
    png = (out / "map.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # 4097 = 2^12 + 1 points: Liu's dyadic count, the same as from Python
    expected_dim = fs.dimension(expected.diverged, "dyadic")
    assert summary["dimension"]["method"] == "dyadic"
    assert summary["dimension"]["dimension"] == expected_dim.dimension
    assert summary["dimension"]["counts"] == list(expected_dim.counts)
    assert (out / "dimension.png").read_bytes()[:4] == b"\x89PNG"
    table = run("dimension", out, "--json")
    assert json.loads(table.stdout)["dimension"] == expected_dim.dimension
    text = run("dimension", out, "--method", "boxcount", "--fit-range", "1", "64").stdout
    assert f"{fs.dimension(expected.diverged, 'boxcount', fit_range=(1, 64)).dimension:.4f}" in text
    # the same command again finds the complete map and computes nothing
    again = run("map", small_config, "--out", out)
    assert "nothing to compute" in again.stderr


def test_map_2d_preset_with_overrides(tmp_path):
    out = tmp_path / "two"
    run("map", "liu-multiplicative-2d", "--out", out, "--set", "descent.steps=50",
        "--set", "axis.0.num=40", "--set", "axis.0.chunk=16", "--set", "axis.1.num=30", "--set", "axis.1.chunk=16")
    stored = xr.open_zarr(out / "map.zarr", consolidated=False)
    assert stored.escape_step.shape == (40, 30)
    assert stored.attrs["steps"] == 50
    assert (out / "map.png").stat().st_size > 1000


def test_presets_are_listed():
    proc = run("presets")
    for name in ("liu-additive", "liu-multiplicative", "liu-multiplicative-2d"):
        assert name in proc.stdout


BAD_CONFIGS = {
    "unknown landscape": ('name = "cosine-multiplicative"', 'name = "cosine-multiplicatve"', "unknown landscape"),
    "unknown axis": ('name = "lr"', 'name = "dropout"', "unknown axis 'dropout'"),
    "missing key": ("num = 4097", "", "axis 'lr' is missing the key 'num'"),
    "num < 2": ("num = 4097", "num = 1", "num must be >= 2, got 1"),
    "log axis with start 0": ('scale = "linear"', 'scale = "log"', "a log axis needs start > 0"),
    "start == stop": ("stop = 1.5", "stop = 0.0", "start and stop must differ"),
    "steps <= 0": ("steps = 300", "steps = 0", "steps must be an integer > 0, got 0"),
    "threshold <= 0": ("threshold = 1e8", "threshold = -1.0", "threshold must be a positive number or inf"),
    "threshold nan": ("threshold = 1e8", "threshold = nan", "threshold must be a positive number or inf"),
    "unknown label": ("threshold = 1e8", 'label = "mine"', "unknown label 'mine'"),
    "malformed toml": ("[descent]", "[descent", "is not valid TOML"),
    "wrong type": ("steps = 300", 'steps = "many"', "steps must be an integer > 0, got 'many'"),
    "chunk larger than axis": ("chunk = 1000", "chunk = 5000", "chunk must be at most num=4097"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_fails_cleanly(tmp_path, case):
    old, new, message = BAD_CONFIGS[case]
    assert old in SMALL
    path = tmp_path / "bad.toml"
    path.write_text(SMALL.replace(old, new, 1))
    out = tmp_path / "run"
    proc = run("map", path, "--out", out, check_rc=2)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (out / "summary.json").exists()


def test_duplicated_axis_fails_cleanly(tmp_path):
    path = tmp_path / "dup.toml"
    path.write_text(SMALL + SMALL[SMALL.index("[[axis]]"):])
    proc = run("map", path, "--out", tmp_path / "run", check_rc=2)
    assert "axis names must be unique, 'lr' appears more than once" in proc.stderr


def test_output_holding_a_different_map_is_refused(tmp_path, small_config):
    out = tmp_path / "run"
    run("map", small_config, "--out", out)
    before = (out / "summary.json").read_text()
    other = tmp_path / "other.toml"
    other.write_text(SMALL.replace("steps = 300", "steps = 301"))
    proc = run("map", other, "--out", out, check_rc=2)
    assert "already holds a map of a different configuration" in proc.stderr
    assert (out / "summary.json").read_text() == before


def test_output_path_that_is_a_file_is_refused(tmp_path, small_config):
    target = tmp_path / "file"
    target.write_text("x")
    proc = run("map", small_config, "--out", target, check_rc=2)
    assert "is a file" in proc.stderr


def test_unknown_preset_suggests_a_close_name(tmp_path):
    proc = run("map", "liu-multiplicativ", "--out", tmp_path / "r", check_rc=2)
    assert "did you mean 'liu-multiplicative'" in proc.stderr


def test_dimension_and_render_refuse_an_incomplete_map(tmp_path, small_config):
    out = tmp_path / "run"
    run("map", small_config, "--out", out)
    complete = json.loads(run("dimension", out, "--json").stdout)
    for marker in sorted((out / "blocks-done").iterdir())[:3]:
        marker.unlink()
    refused = run("dimension", out, check_rc=2)
    assert refused.stdout == "" and len(refused.stderr.strip().splitlines()) == 1
    assert "incomplete: 3 of 5 blocks are not computed" in refused.stderr
    assert f"finish it with: fractalscape map {small_config} --out {out}" in refused.stderr
    assert "Traceback" not in refused.stderr
    partial = json.loads(run("dimension", out, "--json", "--allow-incomplete").stdout)
    assert partial["incomplete"] == "incomplete: 3 of 5 blocks are not computed"
    assert "computed on the finished part only" in run("dimension", out, "--allow-incomplete").stdout
    run("map", small_config, "--out", out)  # the command the error names finishes the map
    assert json.loads(run("dimension", out, "--json").stdout) == complete


def test_sweep_command_writes_rows_and_refuses_unknown_keys(tmp_path, small_config):
    out = tmp_path / "sweep"
    rows = json.loads(run("sweep", small_config, "--param", "landscape.delta", "--values", "0.0 0.2",
                          "--out", out, "--json").stdout)
    assert [row["value"] for row in rows] == [0.0, 0.2]
    assert rows[0]["dimension"] == 0.0 and rows[1]["dimension"] > 0.5
    assert (out / "sweep.json").is_file() and (out / "sweep.png").is_file()
    refused = run("sweep", small_config, "--param", "descent.nope", "--values", "1 2", "--out", out, check_rc=2)
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr


ENSEMBLE = """
[landscape]
name = "cosine-multiplicative"

[descent]
steps = 300

[[axis]]
name = "lr"
start = 0.0
stop = 1.5
num = 1025

[[axis]]
name = "x0"
start = -5.0
stop = 5.0
num = 16
ensemble = true
"""


def test_ensemble_map_end_to_end(tmp_path):
    config = tmp_path / "ensemble.toml"
    config.write_text(ENSEMBLE)
    out = tmp_path / "run"
    run("map", config, "--out", out)
    summary = json.loads((out / "summary.json").read_text())
    expected = fs.open_config(config)
    p = expected.p_diverged.values
    assert summary["dimension"]["level"] == 0.5
    assert summary["dimension"]["dimension"] == fs.dimension(p >= 0.5, "dyadic").dimension
    assert summary["dimension"]["uncertain_set"]["dimension"] == fs.dimension(p, "boxcount", level="uncertain").dimension
    assert "ensemble" in summary["dimension"]["interval_skipped"]
    text = run("dimension", out).stdout
    assert "p_diverged = 0.5 level set" in text and "uncertain set 0 < p < 1" in text
    np.testing.assert_array_equal(fs.open_map(out).p_diverged.values, p)
    assert (out / "map.png").stat().st_size > 10_000


def test_render_draws_an_ensemble_p_map(tmp_path):
    from PIL import Image

    grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 80), fs.Axis("x0", -2.0, 2.0, 60), fs.Axis("ulp", -1, 1, 3, ensemble=True)])
    ds = fs.trainability(fs.landscape("cosine-multiplicative"), grid, steps=200)
    fs.write_map(ds, tmp_path / "run")
    png = tmp_path / "p.png"
    run("render", tmp_path / "run", "--out", png, "--size", "160x120")
    pixels = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3).astype(int)
    reddish = ((pixels[:, 0] > 150) & (pixels[:, 2] < 100)).sum()
    bluish = ((pixels[:, 2] > 150) & (pixels[:, 0] < 100)).sum()
    assert reddish > 500 and bluish > 500


def test_dimension_uncertainty_from_a_config(tmp_path):
    config = tmp_path / "quadratic.toml"
    config.write_text('[landscape]\nname = "quadratic"\n[descent]\nx0 = 1.0\nsteps = 1000\n'
                      '[[axis]]\nname = "lr"\nstart = 0.5\nstop = 1.5\nnum = 3\n')
    result = json.loads(run("dimension", config, "--method", "uncertainty", "--samples", "65536", "--json").stdout)
    assert result["method"] == "uncertainty"
    low, high = result["interval"]
    assert low <= 0.0 <= high and high - low < 0.2
    three = tmp_path / "three.toml"
    three.write_text(config.read_text() + '[[axis]]\nname = "x0"\nstart = 0.5\nstop = 1.5\nnum = 3\n'
                     '[[axis]]\nname = "lr_ulp"\nstart = -1\nstop = 1\nnum = 3\nensemble = true\n')
    refused = run("dimension", three, "--method", "uncertainty", check_rc=2)
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr


def test_audit_command(tmp_path, small_config):
    out = tmp_path / "run"
    run("map", small_config, "--out", out)
    report = json.loads(run("audit", out, "--samples", "60", "--json").stdout)
    assert report["sampled"] == 60 and report["stable"] + report["flipped"] == 60
    assert "not the whole map" in report["claims"]
    (out / "summary.json").unlink()
    refused = run("audit", out, check_rc=2)
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr


def test_zoom_command_and_pooled_dimension(tmp_path):
    out = tmp_path / "zoom"
    args = ["zoom", "liu-multiplicative-2d", "--out", out, "--center", "0.7559", "0.1417", "--depth", "0.7",
            "--size", "48x40", "--set", "descent.steps=200"]
    first = run(*args).stdout
    assert "4 keyframes (4 computed)" in first and (out / "zoom.mp4").stat().st_size > 0
    assert "4 keyframes (0 computed)" in run(*args).stdout  # resumed: nothing recomputed
    pooled = json.loads(run("dimension", out, "--method", "sohl-dickstein", "--json").stdout)
    summary = json.loads((out / "summary.json").read_text())
    assert pooled["dimension"] == summary["sohl_dickstein"]["dimension"]
    refused = run("zoom", "liu-multiplicative-2d", "--out", tmp_path / "deep", "--center", "0.7559", "0.1417",
                  "--depth", "30", check_rc=2)
    assert "past the float64 floor" in refused.stderr and not (tmp_path / "deep").exists()
