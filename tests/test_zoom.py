"""Zooms: keyframes against directly computed maps, exact halving, resume after a real kill, a real MP4."""

import json
import math
import subprocess
import sys
import textwrap

import av
import numpy as np
import pytest
import xarray as xr
from PIL import Image

import fractalscape as fs
from fractalscape.codec import stored_final_loss
from fractalscape.zoom import color_scale, colorize, open_stack, pooled_median_slope, zoom
from fractalscape.zoom.windows import ULP_FLOOR, check_zoom

CENTER = (0.6, 0.3)


def _config(steps=100, lr_scale="linear"):
    lr = {"name": "lr", "start": 0.0, "stop": 1.5} if lr_scale == "linear" else \
        {"name": "lr", "start": 0.01, "stop": 1.5, "scale": "log"}
    return {
        "landscape": {"name": "cosine-multiplicative", "delta": 0.2, "wavelength": 0.1},
        "descent": {"steps": steps},
        "axis": [{**lr, "num": 64, "chunk": 16}, {"name": "x0", "start": -2.0, "stop": 2.0, "num": 64}],
    }


@pytest.fixture(scope="module")
def zoomed(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoom")
    summary = zoom(_config(), out, center=CENTER, depth=0.9, size=(49, 40), frames_per_doubling=3, gif=True)
    return out, summary


def test_keyframes_equal_maps_computed_directly_at_their_windows(zoomed):
    out, summary = zoomed
    stack = open_stack(out)
    n = summary["halvings"]
    assert n == math.ceil(0.9 * math.log2(10)) == stack.sizes["frame"] - 1
    for k in (1, n):
        raw = _config()
        for axis, c, num in zip(raw["axis"], CENTER, (49, 40)):
            axis.update(start=c + (axis["start"] - c) / 2**k, stop=c + (axis["stop"] - c) / 2**k, num=num)
        expected = fs.open_config(raw).compute()
        frame = stack.isel(frame=k)
        for name in ("diverged", "escape_step"):
            np.testing.assert_array_equal(frame[name].values, expected[name].values.T)
        np.testing.assert_array_equal(frame.final_loss.values, stored_final_loss(expected.final_loss.values.T))
        np.testing.assert_array_equal(frame.lr.values, expected.lr.values)
        np.testing.assert_array_equal(frame.x0.values, expected.x0.values)
        assert summary["frames"][k]["fraction_diverged"] == pytest.approx(float(expected.diverged.mean()))


def _assert_halving(stack, center, log_x=False):
    for end in ("x", "y"):
        start, stop = stack[f"{end}_start"].values, stack[f"{end}_stop"].values
        c = center[0 if end == "x" else 1]
        if end == "x" and log_x:
            start, stop, c = np.log10(start), np.log10(stop), math.log10(c)
        width = stop - start
        tolerance = 4 * np.spacing(np.maximum(abs(start), abs(stop)))
        np.testing.assert_array_less(np.abs(width - width[0] / 2.0 ** np.arange(len(width))), tolerance + 1e-300)
        # the centre keeps its place in the window: the zoom's fixed point
        np.testing.assert_allclose((c - start) / width, (c - start[0]) / width[0], rtol=0, atol=1e-12)


def test_windows_halve_exactly_about_the_centre(zoomed):
    _assert_halving(open_stack(zoomed[0]), CENTER)


def test_log_axes_halve_in_log10(tmp_path):
    center = (0.1, 0.3)
    zoom(_config(steps=20, lr_scale="log"), tmp_path, center=center, depth=0.6, size=(16, 16), video=False)
    stack = open_stack(tmp_path)
    _assert_halving(stack, center, log_x=True)
    assert stack.attrs["x_scale"] == "log"


def test_summary_and_pooled_estimate_match_dimension_on_each_frame(zoomed):
    out, summary = zoomed
    assert json.loads((out / "summary.json").read_text())["sohl_dickstein"] == summary["sohl_dickstein"]
    stack = open_stack(out)
    slopes = []
    for k, record in enumerate(summary["frames"]):
        labels = fs.open_map(out / "keyframes" / f"{k:03d}").diverged.values
        try:
            result = fs.dimension(labels, "median-slope")
        except fs.ConfigError as err:
            assert record["median_slope"] == {"skipped": str(err)}
            continue
        assert record["median_slope"]["slopes"] == list(result.slopes)
        slopes.extend(result.slopes)
        np.testing.assert_array_equal(stack.diverged.isel(frame=k).values, labels.T)
    pooled = pooled_median_slope(out)
    assert pooled.method == "sohl-dickstein" and len(pooled.slopes) == len(slopes) == summary["sohl_dickstein"]["slopes"]
    assert pooled.dimension == float(np.median(slopes)) == summary["sohl_dickstein"]["dimension"]


def test_mp4_is_real_h264_with_even_sides_and_every_frame(zoomed):
    out, summary = zoomed
    frames = 3 * summary["halvings"] + 1
    assert summary["video_frames"] == frames
    with av.open(str(out / "zoom.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == frames
    assert decoded[0].shape == (40, 48, 3)  # width 49 cut to even
    stack = open_stack(out)
    scale = color_scale(stack)
    first, last = (colorize(stack.isel(frame=k), scale)[:, :48].astype(float) for k in (0, -1))
    # yuv420p halves the chroma resolution of this pixel-sized noise; still, the picture is keyframe 0
    error = np.abs(decoded[0] - first).mean()
    assert error < 25 and error < np.abs(decoded[0] - last).mean() / 2
    assert np.abs(decoded[-1] - last).mean() < 25
    with Image.open(out / "zoom.gif") as gif:
        assert gif.n_frames == frames and gif.size == (48, 40)


def _measured(frames):
    """A summary's keyframe records without what depends on the run (whether computed, seconds)."""
    return [{k: v for k, v in f.items() if k not in ("computed", "seconds")} for f in frames]


def test_video_scale_enlarges_the_video_and_changes_no_keyframe(zoomed, tmp_path):
    """A rerun with --video-scale 3 reuses every keyframe and samples the same pictures on a 3x finer raster."""
    out, summary = zoomed
    again = tmp_path / "again"
    again.mkdir()
    for name in ("zoom.json", "keyframes"):
        subprocess.run(["cp", "-r", str(out / name), str(again / name)], check=True)
    scaled = zoom(_config(), again, center=CENTER, depth=0.9, size=(49, 40), frames_per_doubling=3,
                  video_scale=3)
    assert scaled["keyframes_computed"] == 0
    assert _measured(scaled["frames"]) == _measured(summary["frames"])
    with av.open(str(again / "zoom.mp4")) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == summary["video_frames"] and decoded[0].shape == (120, 146, 3)  # 147 cut to even
    stack = open_stack(out)
    last = colorize(stack.isel(frame=-1), color_scale(stack)).astype(float)
    # the last frame is the deepest keyframe, each pixel now a 3 x 3 patch (bilinear between patches)
    assert np.abs(decoded[-1][1::3, 1::3][:40, :48] - last[:, :48]).mean() < 25


def test_colours_are_fixed_over_the_stack(zoomed):
    stack = open_stack(zoomed[0])
    scale = color_scale(stack)
    first, last = stack.isel(frame=0), stack.isel(frame=-1)
    a, b = colorize(first, scale)[::-1], colorize(last, scale)[::-1]
    same = (first.diverged.values & last.diverged.values & (first.escape_step.values == last.escape_step.values))
    assert same.sum() > 10
    np.testing.assert_array_equal(a[same], b[same])


def _cdf_img(x, buffer=0.25):
    """Sohl-Dickstein's restretch (his notebook's cdf_img with x_ref = x), for reference."""
    u = np.sort(x.ravel())
    negative = int((u < 0).sum())
    v = np.concatenate([np.linspace(-1, -buffer, negative), np.linspace(buffer, 1, u.size - negative)])
    return -np.interp(x, u, v)


def test_network_colours_follow_sohl_dickstein_spectral():
    import matplotlib

    score = np.array([[-5.0, -1.0, -0.5, 0.5, 2.0, 3.0]])
    frame = xr.Dataset({"diverged": (("y", "x"), ~(score < 0)), "score": (("y", "x"), score),
                        "escape_step": (("y", "x"), np.full(score.shape, -1)),
                        "final_loss": (("y", "x"), np.ones(score.shape))})
    image = colorize(frame, color_scale(frame)).astype(int)
    expected = matplotlib.colormaps["Spectral"]((_cdf_img(score) + 1) / 2)[..., :3] * 255
    np.testing.assert_allclose(image, expected, atol=4)
    assert image[0, 0, 2] > image[0, 0, 0] and image[0, -1, 0] > image[0, -1, 2]  # converged blue, diverged red


RESUME_SCRIPT = textwrap.dedent("""
    import os, sys, threading, time
    from fractalscape.zoom import zoom
    out, config = sys.argv[1], eval(sys.argv[2])
    def kill_after_two_keyframes():
        while not os.path.exists(os.path.join(out, "keyframes", "001", "summary.json")):
            time.sleep(0.001)
        os._exit(3)
    threading.Thread(target=kill_after_two_keyframes, daemon=True).start()
    zoom(config, out, center=(0.6, 0.3), depth=1.2, size=(128, 128), video=False)
""")


@pytest.mark.slow
def test_killed_zoom_resumes_without_recomputing_finished_keyframes(tmp_path):
    config = _config(steps=1000)
    killed = subprocess.run([sys.executable, "-c", RESUME_SCRIPT, str(tmp_path / "z"), repr(config)],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == 3, killed.stderr
    assert not (tmp_path / "z" / "summary.json").exists()
    finished = sum((tmp_path / "z" / "keyframes" / f"{k:03d}" / "summary.json").exists() for k in range(5))
    assert 2 <= finished < 5
    resumed = zoom(config, tmp_path / "z", center=(0.6, 0.3), depth=1.2, size=(128, 128), video=False)
    assert resumed["keyframes_total"] == 5
    assert resumed["keyframes_computed"] == 5 - finished
    assert [r["computed"] for r in resumed["frames"]] == [False] * finished + [True] * (5 - finished)
    again = zoom(config, tmp_path / "z", center=(0.6, 0.3), depth=1.2, size=(128, 128), video=False)
    assert again["keyframes_computed"] == 0
    fresh = zoom(config, tmp_path / "fresh", center=(0.6, 0.3), depth=1.2, size=(128, 128), video=False)
    for name in ("diverged", "escape_step", "final_loss", "x_start", "y_stop"):
        np.testing.assert_array_equal(open_stack(tmp_path / "z")[name].values, open_stack(tmp_path / "fresh")[name].values)
    assert fresh["sohl_dickstein"] == resumed["sohl_dickstein"]


def test_a_deeper_zoom_reuses_the_shallower_keyframes(tmp_path):
    zoom(_config(steps=20), tmp_path, center=CENTER, depth=0.3, size=(16, 16), video=False)
    deeper = zoom(_config(steps=20), tmp_path, center=CENTER, depth=0.6, size=(16, 16), video=False)
    assert [r["computed"] for r in deeper["frames"]] == [False, False, True]


def test_depth_past_the_float64_floor_is_refused_with_the_deepest_depth(tmp_path):
    with pytest.raises(fs.ConfigError, match=r"float64 floor.*deepest zoom .* is depth=(\d+\.\d+) decades") as err:
        zoom(_config(), tmp_path / "z", center=CENTER, depth=20, size=(64, 64))
    assert not (tmp_path / "z").exists()  # refused before anything was computed or written
    deepest = float(err.value.args[0].rsplit("depth=", 1)[1].split()[0])
    assert 10 < deepest < 16
    grid = fs.load_config(_config()).grid
    n = check_zoom(_config(), grid, CENTER, deepest, (64, 64), 0)[2]
    # the deepest keyframe still has pixels 8 ulp apart on both axes, one more halving would not
    for axis, c in zip(_config()["axis"], CENTER):
        low, high = (c + (axis[e] - c) * 2.0**-n for e in ("start", "stop"))
        assert (high - low) / 63 >= ULP_FLOOR * np.spacing(max(abs(low), abs(high)))
    with pytest.raises(fs.ConfigError, match="float64 floor"):
        check_zoom(_config(), grid, CENTER, deepest + 0.31, (64, 64), 0)


@pytest.mark.parametrize("kwargs, message", [
    ({"center": (2.0, 0.0)}, r"center 2.0 lies outside axis 'lr' \(0.0 .. 1.5\)"),
    ({"center": (0.5, math.nan)}, "center on axis 'x0' must be finite"),
    ({"center": 0.5}, "center must be two numbers"),
    ({"size": (0, 64)}, "each side must be an integer from 2 to 8192 pixels, got 0"),
    ({"size": (64, 100_000)}, "each side must be an integer from 2 to 8192"),
    ({"depth": 0}, "depth must be > 0"),
    ({"depth": -1.0}, "depth must be > 0"),
    ({"frames_per_doubling": -2}, "frames_per_doubling must be an integer >= 0"),
    ({"video_scale": 0}, "video scale must be an integer from 1 to 16, got 0"),
    ({"video_scale": 2.5}, "video scale must be an integer from 1 to 16"),
    ({"video_scale": 16, "size": (600, 32)}, "keep each side within 8192 pixels"),
])
def test_bad_input_is_refused_before_computing(tmp_path, kwargs, message):
    arguments = {"center": CENTER, "depth": 1.0, "size": (32, 32), **kwargs}
    with pytest.raises(fs.ConfigError, match=message):
        zoom(_config(), tmp_path / "z", **arguments)
    assert not (tmp_path / "z").exists()


def test_configs_with_three_swept_axes_are_refused(tmp_path):
    three = _config()
    three["axis"].append({"name": "delta", "start": 0.1, "stop": 0.3, "num": 3})
    with pytest.raises(fs.ConfigError, match="one or two swept axes, this one has lr, x0, delta"):
        zoom(three, tmp_path / "b", center=(0.5, 0.0), depth=1.0)
    with pytest.raises(fs.ConfigError, match=r"center must be one number \(axis 'lr'\)"):
        zoom("liu-multiplicative", tmp_path / "a", center=(0.5, 0.1), depth=1.0)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_directory_holding_another_zoom_is_refused(tmp_path):
    zoom(_config(steps=20), tmp_path, center=CENTER, depth=0.3, size=(16, 16), video=False)
    with pytest.raises(fs.ConfigError, match="already holds a zoom with another center"):
        zoom(_config(steps=20), tmp_path, center=(0.5, 0.3), depth=0.3, size=(16, 16), video=False)
    with pytest.raises(fs.ConfigError, match="no finished zoom"):
        pooled_median_slope(tmp_path / "keyframes")


def test_outward_zoom_ends_at_the_configs_window(tmp_path):
    # Sohl-Dickstein's protocol: keyframes zoom out from his tile by doubling; here the
    # tile is a small window of Liu's 2-D map, and the last keyframe must be that window.
    from fractalscape.config import read_config, with_overrides

    tile = with_overrides(read_config("liu-multiplicative-2d"),
                          ["axis.0.start=0.75", "axis.0.stop=0.76", "axis.1.start=0.1", "axis.1.stop=0.11",
                           "descent.steps=100"])
    summary = fs.zoom(tile, tmp_path / "z", depth=0.9, size=(24, 20), outward=True, video=False)
    last = summary["frames"][-1]["window"]
    assert last["lr"] == pytest.approx([0.75, 0.76], abs=1e-15) and last["x0"] == pytest.approx([0.1, 0.11], abs=1e-15)
    first = summary["frames"][0]["window"]
    assert first["lr"][1] - first["lr"][0] == pytest.approx(0.01 * 2**len(summary["frames"][1:]), rel=1e-9)


def _config_1d(steps=200):
    return {"landscape": {"name": "cosine-multiplicative", "delta": 0.2, "wavelength": 0.1},
            "descent": {"steps": steps, "x0": 1.0},
            "axis": [{"name": "lr", "start": 0.0, "stop": 1.5, "num": 2**8 + 1, "chunk": 100}]}


def test_1d_zoom_keyframes_strips_and_dyadic_dimensions(tmp_path):
    # Liu's strips: each keyframe is the map of its window, measured by the dyadic count, drawn as a strip.
    center, n_points = 0.9, 2**9 + 1
    summary = zoom(_config_1d(), tmp_path, center=center, depth=0.6, size=n_points, frames_per_doubling=2)
    stack = open_stack(tmp_path)
    n = summary["halvings"]
    assert stack.diverged.dims == ("frame", "x") and stack.sizes == {"frame": n + 1, "x": n_points}
    dyadic = []
    for k in range(n + 1):
        raw = _config_1d()
        axis = raw["axis"][0]
        axis.update(start=center + (axis["start"] - center) / 2**k, stop=center + (axis["stop"] - center) / 2**k,
                    num=n_points)
        expected = fs.open_config(raw).compute()
        frame = stack.isel(frame=k)
        for name in ("diverged", "escape_step"):
            np.testing.assert_array_equal(frame[name].values, expected[name].values)
        np.testing.assert_array_equal(frame.final_loss.values, stored_final_loss(expected.final_loss.values))
        result = fs.dimension(expected.diverged.values, "dyadic")
        assert summary["frames"][k]["dyadic"]["dimension"] == result.dimension
        dyadic.append(result.dimension)
    assert summary["dyadic"]["dimension"] == pytest.approx(float(np.median(dyadic)))
    _assert_halving(stack.assign(y_start=stack.x_start, y_stop=stack.x_stop), (center, center))
    # one strip per keyframe, each held for frames_per_doubling frames of the video
    assert summary["files"] == ["zoom.mp4", *(f"strips/{k:03d}.png" for k in range(n + 1))]
    with av.open(str(tmp_path / "zoom.mp4")) as container:
        assert len(list(container.decode(video=0))) == summary["video_frames"] == 2 * (n + 1)
    with Image.open(tmp_path / "strips" / "000.png") as strip:
        picture = np.asarray(strip.convert("RGB")).astype(int)
    assert picture.shape == (384, 1024, 3)
    # the label band: the left end (lr near 0) converges, blue; the right end (lr = 1.5) diverges, red
    band = picture[int(384 * 0.15)]
    blue, red = np.array([0x32, 0x88, 0xBD]), np.array([0xD5, 0x3E, 0x4F])
    assert np.abs(band[100] - blue).sum() < 30 and np.abs(band[-30] - red).sum() < 30


def test_1d_zoom_bad_input_is_refused_before_computing(tmp_path):
    with pytest.raises(fs.ConfigError, match=r"center must be one number \(axis 'lr'\)"):
        zoom(_config_1d(), tmp_path / "a", center=(0.9, 0.1), depth=0.6)
    with pytest.raises(fs.ConfigError, match="from 2 to 16777217 points, got 1"):
        zoom(_config_1d(), tmp_path / "b", center=0.9, depth=0.6, size=1)
    with pytest.raises(fs.ConfigError, match="float64 floor on axis 'lr'"):
        zoom(_config_1d(), tmp_path / "c", center=0.9, depth=16, size=2**12 + 1)
    assert not any((tmp_path / d).exists() for d in "abc")


def test_zoom_command_takes_one_centre_number_for_a_1d_config(tmp_path):
    from click.testing import CliRunner

    from fractalscape.cli import main

    config = tmp_path / "one.toml"
    config.write_text('[landscape]\nname = "cosine-multiplicative"\n[descent]\nsteps = 100\nx0 = 1.0\n'
                      '[[axis]]\nname = "lr"\nstart = 0.0\nstop = 1.5\nnum = 65\n')
    result = CliRunner().invoke(main, ["zoom", str(config), "--out", str(tmp_path / "z"), "--center", "0.9",
                                       "--depth", "0.3", "--size", "129", "--no-video", "--no-progress"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "z" / "summary.json").read_text())
    assert summary["size"] == [129] and summary["center"] == [0.9] and "dyadic" in summary
    assert "dyadic dimension median" in result.output
    # a second number is refused for a 1-D config, with the fix
    result = CliRunner().invoke(main, ["zoom", str(config), "--out", str(tmp_path / "y"), "--center", "0.9", "0.1",
                                       "--depth", "0.3"])
    assert result.exit_code == 2 and "center must be one number (axis 'lr')" in result.output
    assert not (tmp_path / "y").exists()


def test_the_centre_defaults_to_the_windows_centre(tmp_path):
    summary = zoom(_config(steps=20, lr_scale="log"), tmp_path, depth=0.3, size=(8, 8), video=False)
    assert summary["center"] == pytest.approx([math.sqrt(0.01 * 1.5), 0.0])
