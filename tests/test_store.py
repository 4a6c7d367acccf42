"""Block-by-block zarr writes and resume, with real interruptions."""

import json
import os
import signal
import subprocess
import sys
import time

import dask
import numpy as np
import pytest
import zarr

import fractalscape as fs
from fractalscape.codec import stored_final_loss
from fractalscape.store import DONE_DIR, MAP_NAME, write_map

VARIABLES = ("diverged", "escape_step", "final_loss")


def _config(num0=60, num1=50, chunk=16, steps=200):
    return {
        "landscape": {"name": "cosine-multiplicative", "delta": 0.2, "wavelength": 0.1},
        "descent": {"steps": steps},
        "axis": [
            {"name": "lr", "start": 0.0, "stop": 1.5, "num": num0, "chunk": chunk},
            {"name": "x0", "start": -2.0, "stop": 2.0, "num": num1, "chunk": chunk},
        ],
    }


def _assert_same_map(stored, expected):
    """``stored`` (a compact store) holds ``expected`` (computed in memory): its losses as the store keeps them."""
    for name in VARIABLES:
        assert stored[name].dtype == expected[name].dtype, name
    np.testing.assert_array_equal(stored.diverged.values, expected.diverged.values)
    np.testing.assert_array_equal(stored.escape_step.values, expected.escape_step.values)
    assert stored.final_loss.values.tobytes() == stored_final_loss(expected.final_loss.values).tobytes()
    for name in expected.coords:
        np.testing.assert_array_equal(stored[name].values, expected[name].values)


def test_resume_recomputes_only_missing_blocks(tmp_path):
    ds = fs.open_config(_config())
    info = write_map(ds, tmp_path)
    assert info["blocks_computed"] == info["blocks_total"] == 16
    # Simulate a run killed after writing some blocks: drop 3 markers and spoil their chunks.
    markers = sorted((tmp_path / DONE_DIR).iterdir())[:3]
    group = zarr.open_group(tmp_path / MAP_NAME, mode="r+")
    for marker in markers:
        i, j = map(int, marker.name.split("."))
        group["escape_step"][i * 16:(i + 1) * 16, j * 16:(j + 1) * 16] = 12345
        marker.unlink()
    again = write_map(ds, tmp_path)
    assert again["blocks_computed"] == 3
    _assert_same_map(fs.open_map(tmp_path), ds.compute())


def test_fill_valued_chunks_are_written_and_a_lost_one_is_damage(tmp_path):
    # lr in [0, 0.01]: every point converges, so 'diverged' chunks equal zarr's fill value
    # (False); they are written all the same, so a chunk file that disappears is detected.
    config = _config(num0=20, num1=20, chunk=10, steps=50)
    config["axis"][0].update(stop=0.01)
    ds = fs.open_config(config)
    write_map(ds, tmp_path)
    chunk_files = sorted(p for p in (tmp_path / MAP_NAME / "diverged").rglob("*") if p.is_file() and p.name != "zarr.json")
    assert len(chunk_files) == 4
    assert write_map(ds, tmp_path)["blocks_computed"] == 0
    _assert_same_map(fs.open_map(tmp_path), ds.compute())
    chunk_files[0].unlink()
    with pytest.raises(fs.ConfigError, match=r"damaged: 1 chunk\(s\) of 'diverged' are missing"):
        fs.open_map(tmp_path)
    assert "damaged" in fs.open_map(tmp_path, allow_incomplete=True).attrs["incomplete"]


def test_interrupted_map_is_refused_with_the_missing_count(tmp_path):
    ds = fs.open_config(_config())
    write_map(ds, tmp_path)
    for marker in sorted((tmp_path / DONE_DIR).iterdir())[:5]:
        marker.unlink()
    with pytest.raises(fs.ConfigError, match="incomplete: 5 of 16 blocks are not computed; finish it"):
        fs.open_map(tmp_path)
    with pytest.raises(fs.ConfigError, match="incomplete: 5 of 16"):
        fs.open_map(tmp_path / MAP_NAME)
    partial = fs.open_map(tmp_path, allow_incomplete=True)
    assert partial.attrs["incomplete"] == "incomplete: 5 of 16 blocks are not computed"
    write_map(ds, tmp_path)
    assert "incomplete" not in fs.open_map(tmp_path).attrs


def test_an_unfinished_map_of_other_kernels_is_not_resumed(tmp_path):
    ds = fs.open_config(_config(num0=20, num1=20, chunk=10, steps=50))
    write_map(ds, tmp_path)
    group = zarr.open_group(tmp_path / MAP_NAME, mode="r+")
    group.attrs["kernel_version"] = 1  # as if begun by the kernels before the model protocol
    assert write_map(ds, tmp_path)["blocks_computed"] == 0  # complete: nothing to compute, nothing mixed
    next((tmp_path / DONE_DIR).iterdir()).unlink()
    with pytest.raises(fs.ConfigError, match="unfinished map computed by kernel version 1 .* resuming would "
                                             "mix blocks of both: delete that directory"):
        write_map(ds, tmp_path)


def test_huge_axis_coordinates_are_written_block_by_block(tmp_path, monkeypatch):
    # Axes past INDEXED_AXIS_MAX keep lazy coordinates: they are stored by the block tasks.
    monkeypatch.setattr(sys.modules["fractalscape.trainability"], "INDEXED_AXIS_MAX", 10)
    config = {"landscape": {"name": "quadratic"}, "descent": {"steps": 20},
              "axis": [{"name": "lr", "start": 0.0, "stop": 1.5, "num": 33, "chunk": 8}]}
    ds = fs.open_config(config)
    assert "lr" not in ds.xindexes
    info = write_map(ds, tmp_path)
    assert info["blocks_computed"] == 5 + 5  # data blocks and coordinate blocks
    stored = zarr.open_group(tmp_path / MAP_NAME, mode="r")
    np.testing.assert_array_equal(stored["lr"][:], np.linspace(0.0, 1.5, 33))


def _start_cli(config_path, out):
    return subprocess.Popen(
        [sys.executable, "-m", "fractalscape", "map", str(config_path), "--out", str(out), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for_markers(out, proc, at_least, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = out / DONE_DIR
        if done.is_dir() and len(os.listdir(done)) >= at_least:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the run wrote no blocks in time")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_cli_resumes_to_an_identical_map(tmp_path, sig):
    # 256 blocks of 32 x 32 points with 1000 steps: several seconds of work on 2 cores.
    config = _config(num0=512, num1=512, chunk=32, steps=1000)
    path = tmp_path / "c.toml"
    import tomli_w  # noqa: PLC0415  (test dependency)

    path.write_text(tomli_w.dumps(config))
    out = tmp_path / "run"
    proc = _start_cli(path, out)
    _wait_for_markers(out, proc, at_least=8)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "run the same command to resume" in stderr, stderr
    else:
        assert proc.returncode == -signal.SIGKILL
    assert not (out / "summary.json").exists()
    kept = len(os.listdir(out / DONE_DIR))
    assert 8 <= kept < 256
    rerun = subprocess.run(
        [sys.executable, "-m", "fractalscape", "map", str(path), "--out", str(out), "--no-progress"],
        capture_output=True, text=True,
    )
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["blocks_computed"] == 256 - kept
    _assert_same_map(fs.open_map(out), fs.open_config(config).compute())


def test_output_to_an_fsspec_url_resumes_too(tmp_path):
    # file:// goes through fsspec and zarr's FsspecStore, as s3:// or gs:// would.
    url = f"file://{tmp_path}/run"
    ds = fs.open_config(_config(num0=40, num1=30, chunk=16, steps=100))
    info = write_map(ds, url)
    assert info["blocks_computed"] == info["blocks_total"] == 6
    _assert_same_map(fs.open_map(url), ds.compute())
    assert write_map(ds, url)["blocks_computed"] == 0
    proc = subprocess.run(
        [sys.executable, "-m", "fractalscape", "map", "liu-multiplicative-2d", "--out", f"file://{tmp_path}/cli",
         "--set", "axis.0.num=32", "--set", "axis.1.num=32", "--set", "axis.0.chunk=16",
         "--set", "axis.1.chunk=16", "--set", "descent.steps=50"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "cli" / "summary.json").read_text())["points"] == 32 * 32
    assert (tmp_path / "cli" / "map.png").read_bytes()[:4] == b"\x89PNG"


def test_write_map_runs_each_blocks_kernel_once(tmp_path):
    # The three stored variables share one GD task per block: graphs optimized variable
    # by variable would fuse that task into each variable's chain and run it three times.
    from dask.callbacks import Callback

    ds = fs.open_config({
        "landscape": {"name": "cosine-additive"},
        "axis": [{"name": "lr", "start": 0.0, "stop": 1.5, "num": 501, "chunk": 96}],
    })
    started = []

    class KernelTasks(Callback):
        def _pretask(self, key, dsk, state):
            if "trainability-" in str(key[0] if isinstance(key, tuple) else key):
                started.append(key)

    with KernelTasks():
        write_map(ds, tmp_path / "run")
    assert len(started) == len(set(started)) == ds.diverged.data.numblocks[0] == 6


def _store_bytes(out) -> int:
    return sum(p.stat().st_size for p in (out / MAP_NAME).rglob("*") if p.is_file())


def _write_format_1(ds, out):
    """A map as fractalscape wrote it before compact stores and overviews: float64 losses, int32 steps."""
    encoding = {name: {"chunks": [c[0] for c in var.chunks]} for name, var in ds.variables.items() if var.chunks}
    ds.assign_attrs(every_chunk_written=1).to_zarr(out / MAP_NAME, consolidated=False, encoding=encoding)
    (out / DONE_DIR).mkdir()
    for index in np.ndindex(*ds.diverged.data.numblocks):
        (out / DONE_DIR / ".".join(map(str, index))).touch()


def test_compact_store_layout_and_a_full_float64_copy_on_request(tmp_path):
    config = _config(num0=40, num1=30, chunk=16, steps=300)
    ds = fs.open_config(config)
    expected = ds.compute()
    write_map(ds, tmp_path / "compact")
    group = zarr.open_group(tmp_path / "compact" / MAP_NAME, mode="r")
    assert {name: str(group[name].dtype) for name in ("diverged", "escape_step", "final_loss_log10",
                                                      "final_loss_negative")} == {
        "diverged": "bool", "escape_step": "int16", "final_loss_log10": "float32", "final_loss_negative": "bool"}
    assert "final_loss" not in group and group.attrs["store_format"] == 2
    finite = np.isfinite(expected.final_loss.values) & (expected.final_loss.values != 0)
    log10 = np.log10(np.abs(expected.final_loss.values[finite]))
    assert np.abs(group["final_loss_log10"][...][finite] - log10).max() <= 2.0**-11 * (1 + 1e-6)
    stored = fs.open_map(tmp_path / "compact")
    _assert_same_map(stored, expected)
    relative = np.abs(stored.final_loss.values[finite] / expected.final_loss.values[finite] - 1)
    assert 0 < relative.max() <= 10 ** 2.0**-11 - 1 + 1e-12
    write_map(ds, tmp_path / "full", full_loss=True)
    full = fs.open_map(tmp_path / "full")
    assert full.final_loss.values.tobytes() == expected.final_loss.values.tobytes()
    assert zarr.open_group(tmp_path / "full" / MAP_NAME, mode="r")["final_loss"].dtype == np.float64
    assert set(full.data_vars) == set(stored.data_vars) == set(VARIABLES)
    # 40000 steps do not fit int16: escape_step stays int32 (and reads back exactly)
    long = fs.open_config({**config, "descent": {"steps": 40000}})
    write_map(long, tmp_path / "long")
    assert zarr.open_group(tmp_path / "long" / MAP_NAME, mode="r")["escape_step"].dtype == np.int32
    np.testing.assert_array_equal(fs.open_map(tmp_path / "long").escape_step.values, long.escape_step.values)


def test_stores_of_the_same_map_are_bit_identical_whatever_the_chunking_or_scheduler(tmp_path):
    from fractalscape.overviews import GROUP

    def stored_bytes(out):
        group = zarr.open_group(out / MAP_NAME, mode="r")
        arrays = {name: group[name][...].tobytes() for name, _ in group.arrays()}
        for factor, level in group[GROUP].groups():
            arrays.update({f"{factor}/{name}": level[name][...].tobytes() for name, _ in level.arrays()})
        return arrays

    runs = {}
    for chunk, scheduler in ((64, "sync"), (13, "threads"), (29, "processes")):
        config = _config(num0=64, num1=72, chunk=chunk, steps=300)
        with dask.config.set(scheduler=scheduler):
            write_map(fs.open_config(config), tmp_path / f"{chunk}")
        runs[chunk] = stored_bytes(tmp_path / f"{chunk}")
    assert {"4/fraction_diverged", "4/log10_final_loss", "final_loss_log10"} <= set(runs[64])
    assert runs[13] == runs[64] and runs[29] == runs[64]


def test_stores_written_before_compact_ones_are_still_read(tmp_path):
    ds = fs.open_config(_config(num0=40, num1=30, chunk=16, steps=300))
    expected = ds.compute()
    _write_format_1(expected.chunk(16), tmp_path)
    assert zarr.open_group(tmp_path / MAP_NAME, mode="r")["final_loss"].dtype == np.float64
    stored = fs.open_map(tmp_path)
    for name in VARIABLES:
        assert stored[name].values.tobytes() == expected[name].values.tobytes(), name
    assert write_map(ds, tmp_path)["blocks_computed"] == 0  # a resume keeps the store's own layout
    assert fs.open_map(tmp_path).final_loss.values.tobytes() == expected.final_loss.values.tobytes()


def test_a_compact_store_takes_at_most_2_5_bytes_a_point(tmp_path):
    # liu-multiplicative-2d at a quarter of its points (docs/benchmarks.md measures the presets)
    config = _config(num0=512, num1=512, chunk=256, steps=1000)
    write_map(fs.open_config(config), tmp_path)
    assert _store_bytes(tmp_path) / 512**2 <= 2.5


def test_an_in_memory_map_is_written_as_one_block(tmp_path):
    land = fs.landscape("cosine-additive", delta=0.2, wavelength=0.1)
    grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 33, chunk=10), fs.Axis("x0", -1.0, 1.0, 17, chunk=5)])
    computed = fs.trainability(land, grid, steps=100).compute()
    info = fs.write_map(computed, tmp_path)
    stored = fs.open_map(tmp_path)
    assert info["blocks_total"] == 1 and info["points"] == 33 * 17
    for name in ("diverged", "escape_step"):
        np.testing.assert_array_equal(stored[name].values, computed[name].values)
