"""The examples run (at reduced size), so they cannot rot."""

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_liu_1d_example(capsys):
    _load("liu_1d").main(num=1025, steps=200)
    out = capsys.readouterr().out
    assert "cosine-additive" in out and "cosine-multiplicative" in out
