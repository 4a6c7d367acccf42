"""The benchmarks of this session's features run at tiny sizes, so they cannot rot."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


def _run(*args):
    proc = subprocess.run([sys.executable, str(BENCHMARKS / args[0]), *args[1:]], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_trust_benchmark_smoke():
    rows = [json.loads(line) for line in _run("bench_trust.py", "--smoke", "table", "average", "cost", "label").splitlines()]
    table = [r for r in rows if "preset" in r]
    assert len(table) == 4 and all(r["flipped_by_1ulp"] >= 0 for r in table)
    assert all(r["ratio"] > 0 for r in rows if "ratio" in r)
    assert any("agree_with_his_exact_label" in r for r in rows)


@pytest.mark.slow
def test_reproduction_benchmark_smoke():
    rows = [json.loads(line) for line in _run("bench_reproduction.py", "--smoke", "random-x0", "fresh-x0").splitlines()]
    assert [r["landscape"] for r in rows] == ["cosine-multiplicative", "cosine-additive"] * 2
    assert all(r["min"] <= r["mean"] <= r["max"] for r in rows[:2]) and all(r["std"] >= 0 for r in rows[2:])


@pytest.mark.slow
@pytest.mark.parametrize("script", ["bench_uncertainty.py", "bench_audit.py"])
def test_issue_benchmarks_smoke(script):
    assert _run(script, "--smoke").strip()


@pytest.mark.slow
def test_startup_and_compile_cache_benchmarks_smoke():
    startup = [json.loads(line) for line in _run("bench_startup.py", "--smoke").splitlines()]
    assert [r["command"] for r in startup] == ["python -c pass", "import fractalscape", "fractalscape --help"]
    assert all(r["wall_s"] > 0 for r in startup)
    cache = json.loads(_run("bench_compile_cache.py", "--smoke").splitlines()[-1])
    assert cache["points"] == 64 and cache["first_s"] > 0 and cache["ratio"] > 0


@pytest.mark.slow
def test_billion_benchmark_smoke(tmp_path):
    """The billion-point pipeline at 256^2 points: every stage runs, and the map's parts fit in its wall time."""
    out = _run("bench_billion.py", str(tmp_path / "run"), "--set", "axis.0.num=256", "--set", "axis.1.num=256",
               "--set", "axis.0.chunk=64", "--set", "axis.1.chunk=64", "--set", "descent.steps=50")

    def seconds(label):
        return [float(m) for m in re.findall(rf"^ *{re.escape(label)} +([0-9.]+) s", out, re.M)]

    (map_s,), (render_s,), (total_s,) = (seconds(label) for label in (
        "fractalscape map (compute, count, map.png)", "render 2000x2000 PNG", "the pipeline (map + render)"))
    parts = [seconds(f"of which {part}")[0] for part in ("compute into zarr", "overviews and the map's totals",
                                                         "map.png", "box count")]
    assert all(p >= 0 for p in parts) and sum(parts) <= map_s
    assert abs(total_s - (map_s + render_s)) < 0.2
    assert seconds("box count again (fractalscape dimension)")[0] > 0
    assert re.search(r"[0-9.]+ bytes a point", out)
    assert (tmp_path / "run" / "render.png").stat().st_size > 0


@pytest.mark.slow
def test_codecs_benchmark_smoke():
    rows = [json.loads(line) for line in _run("bench_codecs.py", "--smoke").splitlines()]
    per_variable = [r for r in rows if "variable" in r]
    assert {r["codec"] for r in per_variable} == {"zstd-1", "zstd-3", "zstd-5", "lz4-5"}
    assert all(r["bytes_per_point"] > 0 and r["encode_ms"] > 0 for r in per_variable)
    chosen = rows[-1]
    assert chosen["codec"] == "fractalscape's levels" and chosen["bytes_per_point"] > 0
