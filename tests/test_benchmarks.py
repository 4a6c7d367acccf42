"""The benchmarks of this session's features run at tiny sizes, so they cannot rot."""

import json
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
