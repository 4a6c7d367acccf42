"""Hardening of the command line, through real subprocesses: bad input, concurrent runs, disk space, resumes."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import xarray as xr

import fractalscape as fs
from fractalscape.claim import map_bytes

QUADRATIC = '[landscape]\nname = "quadratic"\n[descent]\nsteps = 20\n[[axis]]\nname = "lr"\nstart = 0.0\nstop = 1.5\nnum = 9\n'

# A 2-D map of some seconds' compute, long enough for a second run to start while it runs.
SLOW = ["liu-multiplicative-2d", "--set", "axis.0.num=512", "--set", "axis.1.num=512", "--set", "descent.steps=3000"]


def command(*args):
    return [sys.executable, "-m", "fractalscape", *map(str, args)]


def run(*args):
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=600)


def assert_refused(proc, message):
    """Exit 2, stderr exactly one ``error: ...`` line holding ``message``, no traceback."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture
def quadratic(tmp_path):
    path = tmp_path / "quadratic.toml"
    path.write_text(QUADRATIC)
    return path


@pytest.fixture
def stored_2d(tmp_path):
    out = tmp_path / "map2d"
    grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 40), fs.Axis("x0", -2.0, 2.0, 30)])
    fs.write_map(fs.trainability(fs.landscape("cosine-multiplicative"), grid, steps=50), out)
    return out


@pytest.mark.parametrize(
    "text, extra, message",
    [
        ("descent = 5\n" + QUADRATIC.replace("[descent]\nsteps = 20\n", ""), [], "config key 'descent' must be a table, got 5"),
        (QUADRATIC, ["--set", "descent=5"], "config key 'descent' must be a table, got 5"),
        (QUADRATIC.replace("steps = 20", 'precision = ["libm"]'), [], "precision must be a string, got ['libm']"),
        (QUADRATIC.replace("steps = 20", "label = 1"), [], "label must be a string, got 1"),
    ],
    ids=["descent-not-a-table", "set-descent-not-a-table", "precision-list", "label-number"],
)
def test_config_of_the_wrong_shape_is_one_line(tmp_path, text, extra, message):
    config = tmp_path / "c.toml"
    config.write_text(text)
    assert_refused(run("map", config, "--out", tmp_path / "out", *extra), message)
    assert not (tmp_path / "out" / "summary.json").exists()


def test_config_file_that_is_not_utf8_is_one_line(tmp_path):
    config = tmp_path / "latin1.toml"
    config.write_bytes(QUADRATIC.replace('"quadratic"', '"quadratic" # caf\xe9').encode("latin-1"))
    assert_refused(run("map", config, "--out", tmp_path / "out"), "is not UTF-8 text")


@pytest.mark.parametrize(
    "out, message",
    [
        ("nosuch://x", "cannot open 'nosuch://x': Protocol not known: nosuch"),
        ("memory://x", "the map would be lost"),
    ],
)
def test_unusable_out_urls_are_refused(quadratic, out, message):
    assert_refused(run("map", quadratic, "--out", out), message)


def test_render_checks_out_before_any_work(tmp_path, stored_2d):
    (tmp_path / "adir").mkdir()
    cases = [
        (tmp_path / "missing" / "x.png", "the directory"),
        ("/proc/fractalscape-test.png", "cannot write in '/proc'"),
        (tmp_path / "x.jpg", "--out must name a .png file"),
        (tmp_path / "adir", "is a directory"),
    ]
    for out, message in cases:
        assert_refused(run("render", stored_2d, "--out", out), message)
    # checked before the store is even opened: a missing store is not what is reported
    assert_refused(run("render", tmp_path / "nothing", "--out", tmp_path / "x.jpg"), "--out must name a .png file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "map2d"]
    assert not list((tmp_path / "adir").iterdir())


def test_render_writes_the_png_atomically(tmp_path, stored_2d):
    png = tmp_path / "pictures" / "m.png"
    png.parent.mkdir()
    png.write_bytes(b"old")
    proc = run("render", stored_2d, "--out", png, "--size", "64x48")
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in png.parent.iterdir()] == ["m.png"]  # no temporary file left
    # a render that fails after the checks leaves the old file and no temporary file
    assert run("render", stored_2d, "--out", png, "--x-range", "5", "6").returncode == 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in png.parent.iterdir()] == ["m.png"]


def _wait_for_lock(lock, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock.exists() and lock.read_text().strip():
            return lock.read_text().strip()
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the first run never took the lock")


def test_a_second_map_on_the_same_out_is_refused_or_waits(tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen(command("map", *SLOW, "--out", out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        holder = _wait_for_lock(out / ".lock", first)
        assert holder == str(first.pid)
        refused = run("map", *SLOW, "--out", out)
        assert_refused(refused, f"is being written by another 'fractalscape map' (pid {first.pid})")
        assert first.poll() is None, "the first run ended before the second was refused: make SLOW slower"
        waited = run("map", *SLOW, "--out", out, "--wait")
    finally:
        first_out, first_err = first.communicate(timeout=600)
    assert first.returncode == 0, first_err
    assert waited.returncode == 0, waited.stderr
    assert f"waiting for pid {first.pid}" in waited.stderr
    assert "already holds this map, complete; nothing to compute" in waited.stderr
    assert not (out / ".lock").exists()


def test_a_stale_lock_is_taken_over(tmp_path, quadratic):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text(f"{dead.pid}\n")
    proc = run("map", quadratic, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert (out / "summary.json").is_file() and not (out / ".lock").exists()


def test_a_map_too_large_for_the_disk_is_refused_before_anything_is_written(tmp_path):
    points = 2**36
    need = points * 21  # bool + int32 + float64 labels and the float64 lr coordinate, uncompressed
    if shutil.disk_usage(tmp_path).free > need:
        pytest.skip(f"{tmp_path} has more than {need / 1e9:.0f} GB free")
    out = tmp_path / "huge"
    args = ["liu-additive", "--out", out, "--set", f"axis.0.num={points}", "--set", "axis.0.chunk=1048576"]
    proc = run("map", *args)
    assert_refused(proc, "the map needs up to 1.44e+03 GB (68,719,476,736 points, 21 bytes a point uncompressed)")
    assert "pass --force" in proc.stderr
    assert not out.exists()


def test_store_size_estimate_bounds_a_real_store(tmp_path, stored_2d):
    """The free-space check's estimate is an upper bound, and not a loose one, on a real store's size."""
    ds = fs.open_map(stored_2d)
    on_disk = sum(f.stat().st_size for f in (stored_2d / "map.zarr").rglob("*") if f.is_file())
    assert on_disk < map_bytes(ds) < 4 * on_disk


def test_steps_per_second_counts_only_the_blocks_of_this_run(tmp_path):
    out = tmp_path / "run"
    args = ["map", "liu-multiplicative", "--out", out, "--set", "axis.0.num=4097", "--set", "axis.0.chunk=1024",
            "--set", "descent.steps=300"]
    assert run(*args).returncode == 0
    first = json.loads((out / "summary.json").read_text())
    assert first["gd_steps_computed"] == first["gd_steps"] and first["gd_steps_per_second"] > 0
    # every block done, summary lost: the rerun computes nothing and claims no rate
    (out / "summary.json").unlink()
    again = run(*args)
    assert again.returncode == 0, again.stderr
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["blocks_computed"] == 0 and resumed["gd_steps_computed"] == 0
    assert resumed["gd_steps_per_second"] is None and "no block computed in this run" in again.stdout
    # two blocks lost: the rate is over their steps only
    for marker in sorted((out / "blocks-done").iterdir())[:2]:
        marker.unlink()
    (out / "summary.json").unlink()
    assert run(*args).returncode == 0
    partial = json.loads((out / "summary.json").read_text())
    assert partial["blocks_computed"] == 2 and 0 < partial["gd_steps_computed"] < partial["gd_steps"]
    assert partial["gd_steps_per_second"] == pytest.approx(partial["gd_steps_computed"] / partial["compute_seconds"])
    # the totals of a fresh run (summed from its blocks), of a resumed one (read back) and of the store agree
    stored = fs.open_map(out)
    escape = stored.escape_step.values
    for summary in (first, resumed, partial):
        assert summary["gd_steps"] == int(np.where(escape >= 0, escape, 300).sum())
        assert summary["diverged_points"] == int(stored.diverged.values.sum())


def test_presets_show_prints_the_toml():
    listing = run("presets")
    assert listing.returncode == 0 and "liu-additive" in listing.stdout
    shown = run("presets", "show", "liu-additive")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == fs.config.preset_text("liu-additive")
    assert fs.load_config(fs.config._read_toml(shown.stdout, "shown")).grid.shape == (1048577,)
    assert_refused(run("presets", "show", "liu-additiv"), "no preset 'liu-additiv' (did you mean 'liu-additive'?)")


def test_setting_num_below_the_chunk_shrinks_the_chunk(tmp_path):
    out = tmp_path / "run"
    proc = run("map", "liu-additive", "--out", out, "--set", "axis.0.num=257", "--set", "descent.steps=50")
    assert proc.returncode == 0, proc.stderr
    assert "note: axis 'lr': chunk 65536 exceeds num=257; using chunk = 257" in proc.stderr
    stored = xr.open_zarr(out / "map.zarr", consolidated=False)
    assert stored.escape_step.shape == (257,)
    assert stored.escape_step.encoding["chunks"] == (257,)
    # a chunk set explicitly is still checked
    assert_refused(run("map", "liu-additive", "--out", tmp_path / "o", "--set", "axis.0.num=257",
                       "--set", "axis.0.chunk=1000"), "chunk must be at most num=257")
    np.testing.assert_array_equal(stored.lr.values, fs.open_config(
        fs.config.with_overrides(fs.config.read_config("liu-additive"), ["axis.0.num=257"])).lr.values)


def test_the_lock_file_names_this_process(tmp_path):
    from fractalscape.claim import output_lock

    with output_lock(tmp_path):
        assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / ".lock").exists()


class _NotADaskScheduler:
    """A TCP server on a free loopback port that accepts connections and then says nothing, or ``reply``."""

    def __init__(self, reply: bytes = b""):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.reply = reply
        self.accepted = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:  # closed
                return
            self.accepted.append(conn)
            if self.reply:
                conn.sendall(self.reply)

    def close(self):
        self.socket.close()
        for conn in self.accepted:
            conn.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    "reply, message",
    [(b"", "accepted a connection but gave no dask handshake within 13 s: it is not a dask scheduler"),
     (b"HTTP/1.1 400 Bad Request\r\n\r\n" * 4, "answered, but not as a dask scheduler")],
    ids=["silent", "http"],
)
def test_a_scheduler_address_that_is_not_a_dask_scheduler_fails_in_bounded_time(tmp_path, quadratic, reply, message):
    server = _NotADaskScheduler(reply)
    try:
        start = time.monotonic()
        proc = run("map", quadratic, "--out", tmp_path / "out", "--scheduler", f"tcp://127.0.0.1:{server.port}")
        seconds = time.monotonic() - start
    finally:
        server.close()
    assert_refused(proc, message)
    assert server.accepted, "the test server was never connected to"
    assert seconds < 30  # 13 s of handshake at most, plus the start of python
    assert not (tmp_path / "out").exists()  # refused before --out is created


@pytest.mark.slow
def test_workers_start_and_stop_without_warnings(tmp_path, quadratic):
    # Another server on distributed's default dashboard port must not matter, nor a busy machine at close.
    try:
        holder = socket.create_server(("127.0.0.1", 8787))
    except OSError:
        holder = None  # something already holds 8787: the same condition
    try:
        proc = run("map", quadratic, "--out", tmp_path / "out", "--workers", "2")
    finally:
        if holder is not None:
            holder.close()
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "summary.json").is_file()
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["scheduler"] == "LocalCluster(2 workers)"
    for noise in ("is already in use", "still alive", "killing", "WARNING", "Traceback", "Warning"):
        assert noise not in proc.stderr, proc.stderr


def test_dimension_plot_is_drawn_atomically_and_a_bad_path_is_refused_first(tmp_path, stored_2d):
    plot = tmp_path / "plots" / "dimension.png"
    plot.parent.mkdir()
    plot.write_bytes(b"old")
    proc = run("dimension", stored_2d, "--fit-range", "1", "8", "--no-interval", "--plot", plot)
    assert proc.returncode == 0, proc.stderr
    assert f"log-log plot -> {plot}" in proc.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in plot.parent.iterdir()] == ["dimension.png"]
    with_json = run("dimension", stored_2d, "--fit-range", "1", "8", "--no-interval", "--json", "--plot",
                    tmp_path / "j.png")
    assert json.loads(with_json.stdout)["method"] == "boxcount"  # stdout stays pure JSON
    assert (tmp_path / "j.png").read_bytes()[:4] == b"\x89PNG"
    # a measurement that fails after the checks leaves the old plot and no temporary file
    failed = run("dimension", stored_2d, "--fit-range", "64", "64", "--no-interval", "--plot", plot)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in plot.parent.iterdir()] == ["dimension.png"]
    # a bad --plot is refused before the store is opened: a missing store is not what is reported
    # (every kind of bad path: tests/test_bad_input_suite.py)
    assert_refused(run("dimension", tmp_path / "nothing", "--plot", tmp_path / "nodir" / "d.png"),
                   f"--plot '{tmp_path / 'nodir' / 'd.png'}': the directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.png", "map2d", "plots"]


def test_serve_on_a_port_in_use_is_refused_naming_the_port(tmp_path):
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        proc = subprocess.run(command("serve", "liu-multiplicative-2d", "--port", port), capture_output=True,
                              text=True, timeout=120)
    finally:
        taken.close()
    assert_refused(proc, f"port {port} on 127.0.0.1 is already in use")
    assert "--port 0 for a free one" in proc.stderr
    assert proc.stdout == ""  # no URL (it would be the other server's)
    for args, message in [(["--port", "70000"], "--port must be 0 to 65535"),
                          (["--address", "no-such-host.invalid"], "is not a host name or address of this machine")]:
        assert_refused(run("serve", "liu-multiplicative-2d", *args), message)


@pytest.mark.slow
def test_ctrl_c_under_workers_is_one_line_and_the_rerun_resumes(tmp_path):
    # SIGINT reaches the command and its worker processes (one process group, as from a terminal)
    import signal

    out = tmp_path / "run"
    command = [sys.executable, "-m", "fractalscape", "map", "liu-additive", "--out", str(out), "--workers", "2",
               "--no-progress"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not (out / "blocks-done").exists() or not os.listdir(out / "blocks-done"):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Traceback" not in err and "Task exception" not in err and "WARNING" not in err, err
    assert err.strip().splitlines()[-1].startswith("interrupted: finished blocks are kept")
    assert not (out / "summary.json").exists()
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads((out / "summary.json").read_text())["blocks_computed"] < 17  # of 17: the kept ones are not redone
