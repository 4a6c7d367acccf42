"""datashader rendering: dask-backed equals in-memory, windows read only their blocks."""

import subprocess
import sys

import numpy as np
import pytest

import fractalscape as fs
from fractalscape.render import aggregate, render, shade
from fractalscape.store import write_map


def _map(chunk=16, **axis):
    grid = fs.Grid([
        fs.Axis("lr", 0.05, 1.5, 96, chunk=chunk, **axis),
        fs.Axis("x0", -2.0, 2.0, 64, chunk=chunk),
    ])
    return fs.trainability(fs.landscape("cosine-multiplicative"), grid, steps=100)


def test_dask_backed_render_equals_in_memory_render(monkeypatch):
    monkeypatch.setattr(sys.modules["fractalscape.render"], "LOAD_POINTS_MAX", 0)  # aggregate block by block
    lazy = _map()
    eager = lazy.compute()
    for how in ("eq_hist", "log", "linear"):
        a, b = aggregate(lazy, 48, 32), aggregate(eager, 48, 32)
        for name in a.data_vars:
            np.testing.assert_array_equal(a[name].values, b[name].values)
        np.testing.assert_array_equal(shade(a, how), shade(b, how))


def test_aggregate_is_a_mean_over_blocks_of_points():
    eager = _map().compute()
    agg = aggregate(eager, 48, 32)  # 96 x 64 points: each pixel averages 2 x 2 points
    diverged = (eager.escape_step.values >= 0).astype(float)
    expected = diverged.reshape(48, 2, 32, 2).mean(axis=(1, 3)).T
    np.testing.assert_allclose(agg.fraction_diverged.values, expected)


def test_window_render_reads_only_the_blocks_it_needs(monkeypatch):
    module = sys.modules["fractalscape.trainability"]
    real_block, calls = module._block, []

    def counting_block(*coords, **kwargs):
        calls.append(tuple(float(c[0]) for c in coords))  # which block: its first point
        return real_block(*coords, **kwargs)

    monkeypatch.setattr(module, "_block", counting_block)
    monkeypatch.setattr(sys.modules["fractalscape.render"], "LOAD_POINTS_MAX", 0)  # the out-of-core path
    ds = _map()  # 6 x 4 blocks of 16 x 16 points
    aggregate(ds, 24, 16)
    assert len(set(calls)) == 24
    calls.clear()
    aggregate(ds, 8, 8, x_range=(0.05, 0.2), y_range=(-2.0, -1.6))  # inside block (0, 0)
    assert set(calls) == {(0.05, -2.0)}
    calls.clear()
    monkeypatch.setattr(sys.modules["fractalscape.render"], "LOAD_POINTS_MAX", 2**22)
    aggregate(ds, 24, 16)
    assert len(calls) == 24  # a small map is loaded: each block runs once


def test_log_axis_is_labelled_and_evenly_spaced():
    ds = _map(scale="log")
    agg = aggregate(ds, 48, 32)
    assert agg.attrs["x_label"] == "log10 lr"
    np.testing.assert_allclose(np.diff(agg.x.values), np.diff(agg.x.values)[0])
    assert agg.x.values[0] > np.log10(0.05) and agg.x.values[-1] < np.log10(1.5)


def test_render_cli_writes_a_png_with_both_classes(tmp_path):
    ds = _map()
    write_map(ds, tmp_path / "run")
    out = tmp_path / "map.png"
    proc = subprocess.run([sys.executable, "-m", "fractalscape", "render", str(tmp_path / "run"), "--out", str(out),
                           "--size", "200x150", "--x-range", "0.1", "1.0"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    import matplotlib.image

    pixels = matplotlib.image.imread(out)
    assert pixels.shape[0] > 150 and pixels.shape[1] > 200
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 50  # not blank


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"width": 0}, "width must be an integer >= 2"),
        ({"how": "cdf"}, "how must be one of"),
        ({"x_range": (5.0, 6.0)}, "holds fewer than 2 grid points"),
    ],
)
def test_bad_render_arguments(kwargs, message):
    args = {"width": 10, "height": 10, **kwargs}
    with pytest.raises(fs.ConfigError, match=message):
        render(_map(), **args)


def test_render_refuses_1d_maps():
    ds = fs.trainability(fs.landscape("quadratic"), fs.Grid([fs.Axis("lr", 0.0, 1.5, 10)]))
    with pytest.raises(fs.ConfigError, match="render takes a 2-D map"):
        render(ds, 10, 10)


def test_network_maps_render_in_sohl_dickstein_colours(tmp_path):
    from PIL import Image

    raw = fs.config.read_config("sd-tanh")
    raw = {**raw, "network": {**raw["network"], "width": 4}, "descent": {**raw["descent"], "steps": 40},
           "axis": [{**a, "num": 40, "chunk": 40} for a in raw["axis"]]}
    ds = fs.open_config(raw).compute()
    assert ds.diverged.values.any() and not ds.diverged.values.all()
    path = tmp_path / "sd.png"
    fs.render(ds, 200, 200, path=path)
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int).reshape(-1, 3)
    red = (pixels[:, 0] > 140) & (pixels[:, 2] < 110)
    blue = (pixels[:, 2] > 140) & (pixels[:, 0] < 110)
    # Spectral's red end for diverged, its blue end for converged, in proportion to the map
    share = ds.diverged.values.mean()
    assert red.sum() > 0.3 * share * 200 * 200 and blue.sum() > 0.1 * (1 - share) * 200 * 200
    with pytest.raises(fs.ConfigError, match="reads a network map's score"):
        fs.render(fs.trainability(fs.landscape("quadratic"), fs.Grid([fs.Axis("lr", 0, 1, 4), fs.Axis("x0", 0, 1, 4)])),
                  10, 10, colors="sohl-dickstein")
