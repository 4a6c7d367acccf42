"""Sweeps: one stored map and dimension per value of a config parameter, resumable."""

import importlib.util
import json
from pathlib import Path

import pytest

from fractalscape.errors import ConfigError
from fractalscape.store import DONE_DIR, SUMMARY_NAME
from fractalscape.sweep import CRITICAL_ROUGHNESS, _error_bars, sweep

WAVELENGTH = 0.1
ROUGHNESS = [0.02, 0.04, 0.1, 0.3]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _additive(num=2**14 + 1, steps=1000, chunk=4096):
    return {
        "landscape": {"name": "cosine-additive", "delta": 0.0, "wavelength": WAVELENGTH},
        "descent": {"x0": 1.0, "steps": steps, "threshold": 1e8},
        "axis": [{"name": "lr", "start": 0.5, "stop": 1.5, "num": num, "chunk": chunk}],
    }


def _deltas(roughness):
    return [float(f"{r * WAVELENGTH**2:.12g}") for r in roughness]


def _summaries(out):
    return {path.parent.name: path.stat().st_mtime_ns for path in Path(out).glob(f"*/{SUMMARY_NAME}")}


def test_additive_transition_at_critical_roughness(tmp_path):
    # tests/test_liu.py's transition, through sweep: one class change below 1/(2 pi^2), fractal above.
    table = sweep(_additive(), "landscape.delta", _deltas(ROUGHNESS), tmp_path)
    for roughness, row in zip(ROUGHNESS, table["rows"]):
        assert row["roughness"] == pytest.approx(roughness)
        assert row["method"] == "dyadic" and row["points"] == 2**14 + 1
        if roughness < CRITICAL_ROUGHNESS:
            assert row["dimension"] == 0.0 and max(row["counts"]) == 1
        else:
            assert row["dimension"] > 0.5 and row["stderr"] > 0
        assert (tmp_path / row["dir"] / SUMMARY_NAME).is_file()
    assert [row["dir"] for row in table["rows"]] == ["0-0.0002", "1-0.0004", "2-0.001", "3-0.003"]
    assert json.loads((tmp_path / "sweep.json").read_text()) == table
    assert table["config"] == _additive() and table["param"] == "landscape.delta"
    assert (tmp_path / "sweep.png").read_bytes().startswith(PNG_MAGIC)


def test_rerun_computes_nothing_and_resumes_only_unfinished_values(tmp_path):
    first = sweep(_additive(), "landscape.delta", _deltas(ROUGHNESS), tmp_path)
    assert all(row["blocks_computed"] == 5 for row in first["rows"])  # 4 blocks of 4096 and one point
    finished = _summaries(tmp_path)
    again = sweep(_additive(), "landscape.delta", _deltas(ROUGHNESS), tmp_path)
    assert [row["blocks_computed"] for row in again["rows"]] == [0, 0, 0, 0]
    assert _summaries(tmp_path) == finished
    assert [row["dimension"] for row in again["rows"]] == [row["dimension"] for row in first["rows"]]
    # An interrupted sweep: value 2 was killed after two blocks (no summary), value 3 never started.
    (tmp_path / "2-0.001" / SUMMARY_NAME).unlink()
    for marker in sorted((tmp_path / "2-0.001" / DONE_DIR).iterdir())[2:]:
        marker.unlink()
    for path in sorted((tmp_path / "3-0.003").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    resumed = sweep(_additive(), "landscape.delta", _deltas(ROUGHNESS), tmp_path)
    assert [row["blocks_computed"] for row in resumed["rows"]] == [0, 0, 3, 5]
    assert resumed["rows"] == [{**row, "blocks_computed": new["blocks_computed"]}
                               for row, new in zip(first["rows"], resumed["rows"])]


def test_another_method_remeasures_without_recomputing_maps(tmp_path):
    config = _additive(num=2**12 + 1, chunk=2**12 + 1)
    sweep(config, "landscape.delta", _deltas([0.02, 0.3]), tmp_path)
    table = sweep(config, "landscape.delta", _deltas([0.02, 0.3]), tmp_path, method="boxcount")
    assert [row["blocks_computed"] for row in table["rows"]] == [0, 0]
    assert [row["method"] for row in table["rows"]] == ["boxcount", "boxcount"]
    stored = json.loads((tmp_path / "1-0.003" / SUMMARY_NAME).read_text())
    assert stored["dimension"]["method"] == "boxcount"


def test_value_dir_of_another_config_is_refused_before_computing(tmp_path):
    deltas = _deltas([0.02, 0.3])
    sweep(_additive(num=1025, chunk=1025), "landscape.delta", deltas, tmp_path)
    with pytest.raises(ConfigError, match="different configuration"):
        sweep(_additive(num=1025, chunk=1025), "landscape.delta", deltas, tmp_path,
              overrides=["descent.steps=500"])
    assert json.loads((tmp_path / "sweep.json").read_text())["config"]["descent"]["steps"] == 1000


def test_sweep_of_wavelength_and_of_a_defaulted_key_on_a_2d_map(tmp_path):
    table = sweep(_additive(num=1025, chunk=1025), "landscape.wavelength", [0.2, 0.05],
                  tmp_path / "wavelength", overrides=["landscape.delta=0.004"])
    assert [round(row["roughness"], 3) for row in table["rows"]] == [0.1, 1.6]
    assert (tmp_path / "wavelength" / "sweep.png").read_bytes().startswith(PNG_MAGIC)
    # 2-D maps, boxcount; descent.steps is not in the config but has a default
    config = {"landscape": {"name": "cosine-multiplicative", "delta": 0.2, "wavelength": 0.1},
              "axis": [{"name": "lr", "start": 0.0, "stop": 1.5, "num": 288},
                       {"name": "x0", "start": -2.0, "stop": 2.0, "num": 272}]}
    table = sweep(config, "descent.steps", [20, 200], tmp_path / "steps")
    assert [row["method"] for row in table["rows"]] == ["boxcount", "boxcount"]
    assert "roughness" not in table["rows"][0]
    assert all(1.0 < row["dimension"] < 2.0 for row in table["rows"])
    assert (tmp_path / "steps" / "sweep.png").read_bytes().startswith(PNG_MAGIC)
    # too small for boxcount's automatic fit range: each row says why, and there is nothing to plot
    table = sweep(config, "descent.steps", [20, 200], tmp_path / "small",
                  overrides=["axis.0.num=100", "axis.1.num=90"])
    assert all(row["dimension"] is None and "qualify for the fit" in row["skipped"] for row in table["rows"])
    assert not (tmp_path / "small" / "sweep.png").exists()


@pytest.mark.parametrize("param, values, overrides, message", [
    ("landscape.delt", [0.1, 0.2], (), r"no key 'delt'; valid keys: delta, dim, name, wavelength"),
    ("axis.0.nmu", [5, 9], (), r"valid keys: chunk, ensemble, name, num, scale, start, stop"),
    ("descent.stpes", [5, 9], (), r"valid keys: .*label, lr, .*precision, steps, threshold, .*x0"),
    ("axis.2.num", [5, 9], (), r"1 axis entries; use an index 0 to 0"),
    ("landscpe.delta", [0.1, 0.2], (), r"no table 'landscpe'; its tables: axis, descent, landscape"),
    ("landscape", [0.1, 0.2], (), r"names a table"),
    ("landscape.extra", [0.1, 0.2], ["landscape.extra=1"], r"no parameter 'extra'"),
    ("landscape.delta", [0.1], (), r"at least 2 values"),
    ("landscape.delta", "0.1 0.2", (), r"at least 2 values"),
    ("landscape.delta", [0.1, "abc"], (), r"delta must be a number, got 'abc'"),
    ("descent.steps", [100, 100.0], (), r"listed twice"),
])
def test_bad_input(tmp_path, param, values, overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        sweep(_additive(), param, values, tmp_path, overrides=overrides)
    assert "\n" not in str(err.value)
    assert not any(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.parametrize("method, message", [
    ("box", r"method must be one of auto, boxcount, dyadic, median-slope, got 'box'"),
    ("dyadic", r"method='dyadic' needs 1-D maps of 2\*\*n \+ 1 points, one of the sweep's maps has shape \(5000,\)"),
])
def test_bad_method(tmp_path, method, message):
    with pytest.raises(ConfigError, match=message):
        sweep(_additive(), "axis.0.num", [4097, 5000], tmp_path, method=method)
    assert not any(tmp_path.iterdir())


def test_auto_method_is_one_estimator_for_the_whole_sweep(tmp_path):
    # a resolution sweep with one non-dyadic grid: boxcount for all, not dyadic for some;
    # values given as text, as on a command line, are read as --set reads them
    config = _additive(num=2**12 + 1, chunk=2**12)
    table = sweep(config, "axis.0.num", ["4097", "5000"], tmp_path, overrides=["landscape.delta=0.003"])
    assert table["values"] == [4097, 5000]
    assert [row["method"] for row in table["rows"]] == ["boxcount", "boxcount"]
    assert [row["points"] for row in table["rows"]] == [2**12 + 1, 5000]


def test_liu_transition_example(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "liu_transition", Path(__file__).parent.parent / "examples" / "liu_transition.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    table = example.main(str(tmp_path), roughness=(0.02, 0.3), num=2**12 + 1)
    out = capsys.readouterr().out
    assert "first roughness with a fractal boundary (D > 0): 0.3000" in out
    assert [row["dimension"] > 0.5 for row in table["rows"]] == [False, True]
    assert example._arguments(["--num", "1025", "--roughness", "0.1", "0.2"])["roughness"] == [0.1, 0.2]


def test_error_bars_are_the_interval_else_1_96_stderr():
    rows = [{"dimension": 0.8, "interval": [0.7, 0.85], "stderr": 0.05},
            {"dimension": 0.5, "interval": None, "stderr": 0.1},
            {"dimension": 0.0, "interval": None, "stderr": None}]
    below, above = _error_bars(rows)
    assert below == pytest.approx([0.1, 0.196, 0.0]) and above == pytest.approx([0.05, 0.196, 0.0])
