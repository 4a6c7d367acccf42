"""dask.distributed: the same bits on every scheduler and chunking, and a worker killed mid-run."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from distributed import Client, LocalCluster

import fractalscape as fs
from fractalscape.codec import stored_final_loss
from fractalscape.store import DONE_DIR, write_map

# distributed leaves sockets of killed or closing workers to the garbage collector (2026-11).
pytestmark = [
    pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def _map(chunks, steps=300):
    grid = fs.Grid([
        fs.Axis("lr", 0.0, 1.5, 90, chunk=chunks[0]),
        fs.Axis("x0", -2.0, 2.0, 70, chunk=chunks[1]),
    ])
    return fs.trainability(fs.landscape("cosine-multiplicative"), grid, steps=steps)


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        yield lc


def test_every_scheduler_and_chunking_gives_the_same_bits(cluster):
    reference = _map((90, 70)).compute(scheduler="sync")
    assert reference.diverged.values.any() and not reference.diverged.values.all()
    for chunks in [(90, 70), (13, 17), (32, 7)]:
        ds = _map(chunks)
        results = {
            "sync": ds.compute(scheduler="sync"),
            "threads": ds.compute(scheduler="threads", num_workers=2),
            "processes": ds.compute(scheduler="processes", num_workers=2),
        }
        with Client(cluster):
            results["distributed"] = ds.compute()
        for name, result in results.items():
            for var in ("diverged", "escape_step", "final_loss"):
                np.testing.assert_array_equal(result[var].values, reference[var].values, err_msg=f"{name} {chunks}")


@pytest.mark.slow
def test_killing_a_worker_mid_run_still_gives_the_identical_map(tmp_path):
    config = {
        "landscape": {"name": "cosine-multiplicative"},
        "descent": {"steps": 1000},
        "axis": [
            {"name": "lr", "start": 0.0, "stop": 1.5, "num": 384, "chunk": 24},
            {"name": "x0", "start": -2.0, "stop": 2.0, "num": 384, "chunk": 24},
        ],
    }
    ds = fs.open_config(config)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        with Client(lc) as client:
            pids = client.run(os.getpid)
            outcome = {}
            runner = threading.Thread(target=lambda: outcome.update(info=write_map(ds, tmp_path)))
            runner.start()
            deadline = time.monotonic() + 120
            while not (tmp_path / DONE_DIR).exists() or len(os.listdir(tmp_path / DONE_DIR)) < 20:
                assert time.monotonic() < deadline and runner.is_alive()
                time.sleep(0.05)
            done_before_kill = len(os.listdir(tmp_path / DONE_DIR))
            os.kill(next(iter(pids.values())), signal.SIGKILL)
            runner.join(timeout=300)
    assert done_before_kill < 256, "the kill came after the run had finished"
    assert outcome["info"]["blocks_computed"] == 256
    stored = fs.open_map(tmp_path)
    expected = ds.compute(scheduler="threads")
    for var in ("diverged", "escape_step"):
        np.testing.assert_array_equal(stored[var].values, expected[var].values)
    np.testing.assert_array_equal(stored.final_loss.values, stored_final_loss(expected.final_loss.values))


def test_unreachable_scheduler_fails_fast_with_a_clear_message(tmp_path):
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "fractalscape", "map", "liu-multiplicative", "--out", str(tmp_path / "r"),
         "--scheduler", "tcp://127.0.0.1:9"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "could not reach a dask scheduler at 'tcp://127.0.0.1:9'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - start < 60
    assert not (tmp_path / "r" / "summary.json").exists()


def test_cli_on_a_local_cluster(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "fractalscape", "map", "liu-multiplicative-2d", "--out", str(tmp_path / "r"),
         "--workers", "2", "--set", "axis.0.num=64", "--set", "axis.1.num=48", "--set", "axis.0.chunk=16",
         "--set", "axis.1.chunk=16", "--set", "descent.steps=100"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    stored = fs.open_map(tmp_path / "r")
    expected = fs.open_config(json.loads(stored.attrs["config"]))
    np.testing.assert_array_equal(stored.escape_step.values, expected.escape_step.values)
