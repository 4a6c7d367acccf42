"""Multiscale overviews: equal to a NumPy reduction of the points on odd chunkings, rebuilt when damaged."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import zarr

import fractalscape as fs
from fractalscape.overviews import GROUP, LOSS_FLOOR, VARIABLES, check_overviews, level_factors, write_overviews
from fractalscape.render import aggregate
from fractalscape.store import MAP_NAME, write_map
from tests.test_store import _write_format_1

MULT = fs.landscape("cosine-multiplicative")


def _map_1d():
    return fs.trainability(fs.landscape("cosine-additive"), fs.Grid([fs.Axis("lr", 0.0, 1.5, 2**12 + 1, chunk=1000)]),
                           steps=300)


def _map_2d():
    grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 257, chunk=50), fs.Axis("x0", -2.0, 2.0, 263, chunk=77)])
    return fs.trainability(MULT, grid, steps=200)


def _reference(group, factor: int) -> dict:
    """Each cell's means, straight from the stored points with NumPy (no chained sums)."""
    diverged = group["diverged"][...]
    escape = group["escape_step"][...].astype(np.float64)
    loss = group["final_loss_log10"][...].astype(np.float64)
    converged = ~diverged & np.isfinite(loss)
    loss = np.where(converged, np.maximum(loss, LOSS_FLOOR), 0.0)
    cells = [math.ceil(n / factor) for n in diverged.shape]

    def cell_sum(values):
        padded = np.zeros([c * factor for c in cells])
        padded[tuple(slice(0, n) for n in values.shape)] = values
        shape = [x for c in cells for x in (c, factor)]
        return padded.reshape(shape).sum(axis=tuple(range(1, 2 * len(cells), 2)))

    points, n_div, n_conv = cell_sum(np.ones(diverged.shape)), cell_sum(diverged), cell_sum(converged)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "fraction_diverged": n_div / points,
            "escape_step": np.where(n_div > 0, cell_sum(np.where(diverged, escape, 0)) / n_div, np.nan),
            "log10_final_loss": np.where(n_conv > 0, cell_sum(loss) / n_conv, np.nan),
        }


def _assert_levels_match(out):
    group = zarr.open_group(out / MAP_NAME, mode="r")
    shape = group["diverged"].shape
    factors = level_factors(shape)
    assert factors and check_overviews(out) == ""
    meta = group[GROUP].attrs["multiscales"][0]
    assert [d["path"] for d in meta["datasets"]] == [str(f) for f in factors]
    assert [a["name"] for a in meta["axes"]] == list(group["diverged"].metadata.dimension_names)
    for entry, factor in zip(meta["datasets"], factors):
        scale, translation = entry["coordinateTransformations"]
        assert scale == {"type": "scale", "scale": [float(factor)] * len(shape)}
        assert translation == {"type": "translation", "translation": [(factor - 1) / 2] * len(shape)}
        expected = _reference(group, factor)
        for name in VARIABLES:
            stored = group[f"{GROUP}/{factor}/{name}"][...]
            assert stored.dtype == np.float32 and stored.shape == expected[name].shape, (factor, name)
            np.testing.assert_array_equal(np.isnan(stored), np.isnan(expected[name]), err_msg=f"{factor} {name}")
            np.testing.assert_allclose(stored, expected[name], rtol=2e-7, atol=0, err_msg=f"{factor} {name}")
        lr = group["lr"][...]
        centres = group[f"{GROUP}/{factor}/lr"][...]
        full = lr[: (len(lr) // factor) * factor].reshape(-1, factor).mean(axis=1)  # the cells holding all points
        np.testing.assert_allclose(centres[: full.size], full, rtol=0, atol=1e-12)
    return group, factors


@pytest.mark.parametrize("make", [_map_1d, _map_2d], ids=["1-D 4097 chunk 1000", "2-D 257x263 chunks 50x77"])
def test_levels_are_the_numpy_means_of_the_points(tmp_path, make):
    ds = make()
    write_map(ds, tmp_path)
    group, factors = _assert_levels_match(tmp_path)
    assert factors == ([32, 64, 128, 256] if ds.diverged.ndim == 1 else [4, 8, 16])
    fraction = group[f"{GROUP}/{factors[0]}/fraction_diverged"][...]
    assert 0 < fraction.mean() < 1 and ((fraction > 0) & (fraction < 1)).any()  # a boundary runs through


def test_an_interrupted_build_leaves_no_overviews_and_the_rerun_builds_them(tmp_path):
    ds = _map_2d()
    write_map(ds, tmp_path)
    group = zarr.open_group(tmp_path / MAP_NAME, mode="r+")
    # what a run killed while writing level 8 leaves: levels written, the multiscales attribute not yet
    del group[f"{GROUP}/8"]
    del group[GROUP].attrs["multiscales"]
    assert check_overviews(tmp_path).startswith("no overviews")
    notes = []
    agg = aggregate(fs.open_map(tmp_path), 40, 40, notes=notes)
    assert agg.attrs["overview_factor"] == 1 and "has no overviews" in notes[0]
    info = write_map(ds, tmp_path)  # the resumed run: no block left, the overviews built
    assert info["blocks_computed"] == 0
    _assert_levels_match(tmp_path)


def test_a_store_from_before_overviews_is_read_with_a_note_and_upgraded_in_place(tmp_path):
    ds = _map_2d()
    _write_format_1(ds.compute().chunk({"lr": 50, "x0": 77}), tmp_path)
    stored = fs.open_map(tmp_path)
    notes = []
    before = aggregate(stored, 33, 33, notes=notes)
    assert before.attrs["overview_factor"] == 1
    assert notes == [f"note: {str(tmp_path)!r} has no overviews (written before they existed, or their build was "
                     "interrupted): drawing from the full-resolution map; add them with: "
                     f"fractalscape overviews {tmp_path}"]
    proc = subprocess.run([sys.executable, "-m", "fractalscape", "overviews", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "wrote overview levels 4, 8, 16" in proc.stdout
    group = zarr.open_group(tmp_path / MAP_NAME, mode="r")
    assert group["final_loss"].dtype == np.float64  # the map itself is left as it was
    loss = group["final_loss"][...]
    for factor in (4, 8, 16):
        cells = group[f"{GROUP}/{factor}/log10_final_loss"][...]
        converged = ~group["diverged"][...]
        with np.errstate(divide="ignore"):
            log10 = np.maximum(np.log10(np.abs(loss)), LOSS_FLOOR)
        first = log10[:factor, :factor][converged[:factor, :factor]]
        assert cells[0, 0] == pytest.approx(first.mean() if first.size else np.nan, rel=1e-6, nan_ok=True)
    notes = []
    after = aggregate(fs.open_map(tmp_path), 33, 33, notes=notes)
    assert after.attrs["overview_factor"] == 8 and notes == []
    # one cell a pixel: the picture is level 8 itself (rows: x0); close to the points' on the whole
    np.testing.assert_allclose(after.fraction_diverged.values, group[f"{GROUP}/8/fraction_diverged"][...].T,
                               rtol=1e-6)
    assert abs(float(after.fraction_diverged.mean() - before.fraction_diverged.mean())) < 0.01


def _chunk_file(out, factor, name):
    return next(p for p in (out / MAP_NAME / GROUP / str(factor) / name / "c").rglob("*") if p.is_file())


def test_a_corrupt_level_is_detected_and_rebuilt_from_the_points(tmp_path):
    write_map(_map_2d(), tmp_path)
    intact = zarr.open_group(tmp_path / MAP_NAME, mode="r")[f"{GROUP}/16/escape_step"][...]
    # 1. flipped bytes: the chunk's CRC-32C no longer matches
    chunk = _chunk_file(tmp_path, 16, "escape_step")
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    assert "level 16: its chunks do not read back" in check_overviews(tmp_path)
    notes = []
    agg = aggregate(fs.open_map(tmp_path), 16, 16, notes=notes)
    assert agg.attrs["overview_factor"] == 16
    assert len(notes) == 1 and "were damaged (level 16 does not read back" in notes[0] and "rebuilt" in notes[0]
    np.testing.assert_array_equal(zarr.open_group(tmp_path / MAP_NAME)[f"{GROUP}/16/escape_step"][...], intact)
    _assert_levels_match(tmp_path)
    # 2. a chunk file lost
    _chunk_file(tmp_path, 4, "log10_final_loss").unlink()
    assert "level 4: 'log10_final_loss' has" in check_overviews(tmp_path, read=False)
    # 3. a level of the wrong shape
    group = zarr.open_group(tmp_path / MAP_NAME, mode="r+")
    group[f"{GROUP}/8/fraction_diverged"].resize((10, 10))
    proc = subprocess.run([sys.executable, "-m", "fractalscape", "overviews", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "level 4: 'log10_final_loss' has" in proc.stdout and "wrote overview levels 4, 8, 16" in proc.stdout
    _assert_levels_match(tmp_path)
    group[f"{GROUP}/8/fraction_diverged"].resize((10, 10))
    assert check_overviews(tmp_path) == "level 8: 'fraction_diverged' has shape (10, 10) float32, expected (33, 33) float32"
    agg = aggregate(fs.open_map(tmp_path), 30, 30)
    assert agg.attrs["overview_factor"] == 8 and check_overviews(tmp_path) == ""


def test_maps_without_overviews_say_why(tmp_path):
    grid = fs.Grid([fs.Axis("lr", 0.1, 1.5, 40, chunk=9), fs.Axis("x0", 0.5, 1.5, 6, ensemble=True)])
    write_map(fs.trainability(MULT, grid, steps=50), tmp_path / "ensemble")
    notes = []
    assert write_overviews(tmp_path / "ensemble", notes=notes) == []
    assert notes == [f"note: no overviews for {str(tmp_path / 'ensemble')!r}: an ensemble map (drawn from p_diverged)"]
    assert level_factors((20, 20)) == [] and level_factors((64, 64, 64)) == []
    incomplete = tmp_path / "incomplete"
    write_map(_map_2d(), incomplete)
    next((incomplete / "blocks-done").iterdir()).unlink()
    with pytest.raises(fs.ConfigError, match="cannot build overviews of .* the map is incomplete: 1 of 24 blocks"):
        write_overviews(incomplete)
    assert json.loads((incomplete / MAP_NAME / GROUP / "zarr.json").read_text())["attributes"]["multiscales"]


def _random_points(rng, shape):
    """diverged, escape_step, log10 losses with every kind of value: NaN, +-inf, -0.0, below the floor."""
    diverged = rng.random(shape) < rng.choice([0.0, 0.3, 1.0])
    escape = rng.integers(-5, 30000, shape).astype(rng.choice([np.int16, np.int32]))
    loss = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 3, shape)
    kind = rng.integers(0, 12, shape)
    loss[kind == 0] = np.nan
    loss[kind == 1] = np.inf
    loss[kind == 2] = -np.inf  # a loss of 0
    loss[kind == 3] = -0.0
    loss[kind == 4] = -400.0 * rng.random((kind == 4).sum())  # below LOSS_FLOOR
    if rng.random() < 0.2:  # whole cells of one kind
        diverged[: shape[0] // 2] = True
        diverged[shape[0] // 2:][..., :1] = False
    return diverged, escape, loss.astype(rng.choice([np.float32, np.float64]))


def _same_bits(got, expected):
    assert got.shape == expected.shape and got.dtype == expected.dtype == np.float64
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got.view(np.uint64)[~nan], expected.view(np.uint64)[~nan])


SHAPES = [(1,), (31,), (32,), (33,), (1000,), (4097,), (1, 1), (1, 7), (7, 1), (3, 5), (4, 4), (33, 1),
          (1, 65), (97, 61), (128, 130), (257, 263), (64, 31)]


@pytest.mark.parametrize("factor", [4, 32])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_the_kernels_add_in_numpys_order_bit_for_bit(shape, factor):
    """The numba kernels against the NumPy reductions they replace (_point_sums, _cell_sums), bit for bit."""
    from fractalscape.cells import _cell_sums, _cells_to_cells, _point_sums, _points_to_cells, coarser_cells, first_cells

    rng = np.random.default_rng([factor, *shape])
    for _ in range(4):
        diverged, escape, loss = _random_points(rng, shape)
        expected = _cell_sums(_point_sums(diverged, escape, loss), factor)
        _same_bits(_points_to_cells(diverged, escape, loss, factor, LOSS_FLOOR), expected)
        _same_bits(first_cells(diverged, escape, loss, factor), expected)
        for f in (2, factor):
            _same_bits(_cells_to_cells(expected, f), _cell_sums(expected, f))
            _same_bits(coarser_cells(expected, f), _cell_sums(expected, f))
        # sums of any floats, -0.0, NaN and +-inf among them, of the magnitudes where the order of additions shows
        sums = rng.standard_normal((5, *shape)) * 10.0 ** rng.integers(-8, 17, (5, *shape))
        kind = rng.integers(0, 20, sums.shape)
        sums[kind == 0], sums[kind == 1], sums[kind == 2], sums[kind == 3] = -0.0, np.nan, np.inf, -np.inf
        sums[kind == 4] = 0.0
        if rng.random() < 0.3:
            sums[:, : shape[0] // 2] = -0.0
        for f in (2, 4, factor):
            with np.errstate(invalid="ignore", over="ignore"):  # inf - inf, sums past the float64 range
                _same_bits(_cells_to_cells(sums, f), _cell_sums(sums, f))
