"""datashader rendering: dask-backed equals in-memory, windows read only their blocks."""

import subprocess
import sys

import numpy as np
import pytest

import fractalscape as fs
from fractalscape.render import aggregate, render, shade
from fractalscape.store import write_map
from tests.helpers import raise_if_dask_computes


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

    from fractalscape.config import read_config

    raw = read_config("sd-tanh")
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


def test_render_leaves_the_backend_alone_and_leaks_no_figures(tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    from fractalscape.plot import plot_map

    before = matplotlib.get_backend()
    matplotlib.use("svg")  # a backend render must not switch away from (a notebook's, say)
    try:
        ds = _map().compute()
        fig = render(ds, 48, 32, path=tmp_path / "a.png")
        plot_map(ds, tmp_path / "b.png")
        plot_map(fs.trainability(fs.landscape("quadratic"), fs.Grid([fs.Axis("lr", 0.0, 1.5, 31)]), steps=50),
                 tmp_path / "c.png")
        assert matplotlib.get_backend() == "svg"
        assert plt.get_fignums() == []
        assert fig.canvas.get_default_filetype() == "png" and (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    finally:
        matplotlib.use(before)


def test_a_stored_map_renders_from_the_coarsest_level_that_fills_the_picture(tmp_path):
    grid = fs.Grid([fs.Axis("lr", 0.05, 1.5, 200, chunk=13), fs.Axis("x0", -2.0, 2.0, 136, chunk=17)])
    write_map(fs.trainability(fs.landscape("cosine-multiplicative"), grid, steps=100), tmp_path)
    stored = fs.open_map(tmp_path)  # overview levels of 4 (50 x 34 cells) and 8 (25 x 17)
    with raise_if_dask_computes():  # the full-resolution map is never read
        coarse, fine = aggregate(stored, 25, 17), aggregate(stored, 26, 17)
    assert (coarse.attrs["overview_factor"], fine.attrs["overview_factor"]) == (8, 4)
    points = stored.compute()
    full = aggregate(points, 50, 34)  # from the points themselves, 4 x 4 to a pixel
    level = aggregate(stored, 50, 34)
    assert level.attrs["overview_factor"] == 4
    for name in ("fraction_diverged", "escape_step", "log10_final_loss"):
        np.testing.assert_allclose(level[name].values, full[name].values, rtol=1e-5, atol=1e-5, err_msg=name)
    assert aggregate(stored, 51, 34).attrs["overview_factor"] == 1  # finer than every level: the points
    notes = []
    zoomed = aggregate(stored, 80, 40, x_range=(0.1, 0.5), notes=notes)
    inside = int(((points.lr >= 0.1) & (points.lr <= 0.5)).sum())
    assert zoomed.attrs["upsampled"] == 1
    assert notes == [f"note: upsampled: the window holds {inside} x 136 stored points for 80 x 40 pixels "
                     "(fractalscape render --recompute computes it at that resolution)"]


def test_render_cli_marks_upsampled_windows_and_recomputes_them(tmp_path):
    from PIL import Image

    write_map(_map(), tmp_path / "run")
    out = tmp_path / "w.png"

    def comment():
        with Image.open(out) as image:
            return image.info.get("Comment", "")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "fractalscape", "render", str(tmp_path / "run"), "--out",
                               str(out), "--size", "80x60", "--x-range", "0.5", "0.6", *args],
                              capture_output=True, text=True)

    proc = cli()
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("\n") == 1 and "upsampled: the window holds 7 x 64 stored points" in proc.stderr
    assert "upsampled" in comment()
    proc = cli("--recompute")
    assert proc.returncode == 0, proc.stderr
    assert "recomputing the window at 80 x 60 points" in proc.stderr and "upsampled" not in proc.stderr
    assert comment() == ""
    recomputed = fs.trainability(fs.landscape("cosine-multiplicative"),
                                 fs.Grid([fs.Axis("lr", 0.5, 0.6, 80), fs.Axis("x0", -2.0, 2.0, 60)]), steps=100)
    assert 0 < float(recomputed.diverged.mean()) < 1
    floor = cli("--recompute", "--x-range", "0.5", "0.5000000000000001")
    assert floor.returncode == 2 and floor.stderr.count("\n") == 1
    assert "past the float64 floor" in floor.stderr and "Traceback" not in floor.stderr


def test_render_leaves_a_lazy_map_lazy():
    land = fs.landscape("cosine-additive", delta=0.2, wavelength=0.1)
    grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 40, chunk=16), fs.Axis("x0", -1.0, 1.0, 30, chunk=16)])
    ds = fs.trainability(land, grid, steps=50)
    fs.render(ds, width=40, height=30)
    assert all(var.chunks is not None for var in ds.data_vars.values())


def test_landscape_classes_keep_their_hues_and_bars_carry_values():
    # two hues apart at every intensity: every diverged pixel is redder than blue, every converged one bluer
    from fractalscape.render import CONVERGED_CMAP, DIVERGED_CMAP, bar_ticks, class_lut

    reds, blues = class_lut(DIVERGED_CMAP).astype(int), class_lut(CONVERGED_CMAP).astype(int)
    assert (reds[:, 0] > reds[:, 2]).all() and (blues[:, 2] > blues[:, 0]).all()
    assert reds.sum(axis=1).min() > 0 and blues.sum(axis=1).min() > 0  # no black end
    land = fs.landscape("cosine-multiplicative", delta=0.2, wavelength=0.1)
    grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 64, chunk=20), fs.Axis("x0", -2.0, 2.0, 48, chunk=20)])
    ds = fs.trainability(land, grid, steps=200).compute()
    fig = fs.render(ds, 64, 48)
    bars = fig.axes[1:]
    assert len(bars) == 2
    labels = [[t.get_text() for t in bar.get_yticklabels()] for bar in bars]
    assert all(len(row) == 5 and all(row) for row in labels)  # values, not "low" / "high"
    escape = ds.escape_step.values[ds.diverged.values]
    _, ticks = bar_ticks(escape + 1.0, "eq_hist")
    assert [float(v) for v in labels[0]] == pytest.approx(ticks - 1.0, rel=2e-3)
