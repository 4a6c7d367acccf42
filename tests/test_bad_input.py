"""Bad input across the CLI, config files and the Python API: one clear line, nothing passed off as complete."""

import json

import pytest
import zarr
from click.testing import CliRunner

import fractalscape as fs
from fractalscape.cli import main

GOOD = {
    "landscape": {"name": "quadratic"},
    "descent": {"steps": 20},
    "axis": [{"name": "lr", "start": 0.0, "stop": 1.5, "num": 9}],
}


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def assert_one_line_error(code, output, message):
    assert code == 2, output
    lines = output.strip().splitlines()
    assert len(lines) >= 1 and lines[-1].startswith("error: ") and message in lines[-1], output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    "config, message",
    [
        ({**GOOD, "axis": [{**GOOD["axis"][0], "num": 10**7}, {"name": "x0", "start": 0, "stop": 1, "num": 10**6}]},
         "more than the 1.1e+12 fractalscape computes"),
        ({**GOOD, "axis": [{**GOOD["axis"][0], "num": 2**32 + 1, "chunk": 100}]}, "blocks, more than 262,144"),
        ({**GOOD, "axis": [{**GOOD["axis"][0], "start": float("nan")}]}, "start must be finite, got nan"),
        ({**GOOD, "axis": [{**GOOD["axis"][0], "stop": float("-inf")}]}, "stop must be finite, got -inf"),
        ({**GOOD, "axis": [{**GOOD["axis"][0], "chunk": 0}]}, "chunk must be >= 1, got 0"),
        ({**GOOD, "axis": [{**GOOD["axis"][0], "num": "9"}]}, "num must be an integer, got '9'"),
        ({**GOOD, "axis": ["lr"]}, "axis #1 must be a table"),
        ({**GOOD, "axis": [{**GOOD["axis"][0], "step": 0.1}]}, "unknown key 'step'"),
        ({**GOOD, "axis": []}, "a grid needs 1 to 3 axes, got 0"),
        ({**GOOD, "landscape": "quadratic"}, "config key 'landscape' must be a table"),
        ({k: v for k, v in GOOD.items() if k != "axis"}, "config is missing [[axis]] entries"),
        ({**GOOD, "landscape": {"delta": 0.1}}, "[landscape] is missing the key 'name'"),
        ({**GOOD, "descent": {"stepz": 10}}, "[descent] has unknown key 'stepz'"),
        ({**GOOD, "solver": {}}, "unknown config table 'solver'"),
        ({**GOOD, "descent": {"x0": "one"}}, "x0 must be a number, got 'one'"),
        ({**GOOD, "landscape": {"name": "quadratic", "dim": 2.5}}, "dim must be an integer >= 1"),
    ],
)
def test_bad_config_dict(config, message):
    with pytest.raises(fs.ConfigError) as err:
        fs.open_config(config)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_config_through_the_cli(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[landscape]\nname = "quadratic"\n[[axis]]\nname = "lr"\nstart = nan\nstop = 1.5\nnum = 9\n')
    assert_one_line_error(*cli("map", path, "--out", tmp_path / "out"), "start must be finite, got nan")
    assert not (tmp_path / "out" / "summary.json").exists()


def test_missing_config_file(tmp_path):
    assert_one_line_error(*cli("map", tmp_path / "nope.toml", "--out", tmp_path / "o"), "does not exist")


def test_corrupted_store_is_refused(tmp_path):
    out = tmp_path / "run"
    (out / "map.zarr").mkdir(parents=True)
    (out / "map.zarr" / "zarr.json").write_text("{ not json")
    config = tmp_path / "c.toml"
    config.write_text('[landscape]\nname = "quadratic"\n[[axis]]\nname = "lr"\nstart = 0.0\nstop = 1.5\nnum = 9\n')
    assert_one_line_error(*cli("map", config, "--out", out), "exists but is not a fractalscape map")
    assert_one_line_error(*cli("render", out, "--out", tmp_path / "x.png"), "is not a readable zarr store")


def test_foreign_store_is_refused(tmp_path):
    out = tmp_path / "run"
    zarr.open_group(out / "map.zarr", mode="w").create_array("data", shape=(3,), dtype="f8")
    config = tmp_path / "c.toml"
    config.write_text('[landscape]\nname = "quadratic"\n[[axis]]\nname = "lr"\nstart = 0.0\nstop = 1.5\nnum = 9\n')
    assert_one_line_error(*cli("map", config, "--out", out), "exists but is not a fractalscape map")
    assert_one_line_error(*cli("render", out / "map.zarr", "--out", tmp_path / "x.png"), "not a fractalscape map")


def test_read_only_output_location(tmp_path):
    # /proc refuses new directories even to root.
    code, output = cli("map", "liu-additive", "--out", "/proc/fractalscape-test")
    assert_one_line_error(code, output, "cannot create output directory '/proc/fractalscape-test'")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "descent.steps"], "--set takes KEY=VALUE"),
        (["--set", "axis.7.num=3"], "does not fit the config"),
        (["--workers", "0"], "--workers must be an integer >= 1, got 0"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:9"], "not both"),
    ],
)
def test_bad_cli_options(tmp_path, args, message):
    config = tmp_path / "c.toml"
    config.write_text('[landscape]\nname = "quadratic"\n[[axis]]\nname = "lr"\nstart = 0.0\nstop = 1.5\nnum = 9\n')
    assert_one_line_error(*cli("map", config, "--out", tmp_path / "o", *args), message)
    assert not (tmp_path / "o" / "summary.json").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "big"], "--size takes WIDTHxHEIGHT"),
        (["--size", "1x100"], "width must be an integer >= 2 pixels, got 1"),
    ],
)
def test_bad_render_options(tmp_path, args, message):
    fs.store.write_map(fs.open_config({**GOOD, "axis": GOOD["axis"] + [{"name": "x0", "start": 0, "stop": 1, "num": 5}]}),
                       tmp_path / "run")
    assert_one_line_error(*cli("render", tmp_path / "run", "--out", tmp_path / "x.png", *args), message)


def test_render_of_missing_store(tmp_path):
    assert_one_line_error(*cli("render", tmp_path / "nothing", "--out", tmp_path / "x.png"), "no map at")


def test_errors_in_the_python_api_are_config_errors():
    with pytest.raises(fs.ConfigError, match="grid axes must be Axis objects"):
        fs.Grid(["lr"])
    with pytest.raises(fs.ConfigError, match="a config must be a table \\(dict\\), a TOML path or a preset name, got list"):
        fs.load_config(json.loads("[1, 2]"))
