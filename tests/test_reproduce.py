"""Sohl-Dickstein's protocol command: an outward zoom of his tile in log axes, pooled like his estimate."""

import json

import av
import numpy as np
import pytest
from click.testing import CliRunner

import fractalscape as fs
from fractalscape.cli import main
from fractalscape.reproduce import PUBLISHED, protocol_overrides, reproduce
from fractalscape.zoom import open_stack, pooled_median_slope


def test_published_values_are_his_six_in_his_order():
    assert list(PUBLISHED.values()) == sorted(PUBLISHED.values()) == [1.17, 1.20, 1.41, 1.55, 1.66, 1.98]
    for tile in PUBLISHED:  # every tile is a preset
        assert fs.open_config(tile) is not None


@pytest.mark.slow
def test_reproduce_is_the_outward_log_zoom_and_its_pooled_slopes(tmp_path):
    overrides = ["descent.steps=200"]
    result = reproduce("sd-tile-tanh", tmp_path / "r", depth=0.6, size=24, overrides=overrides)
    # the same zoom by hand: outward from the tile, both axes in log10
    raw = fs.config.read_config("sd-tile-tanh")
    by_hand = fs.zoom("sd-tile-tanh", tmp_path / "z", depth=0.6, size=(24, 24), outward=True, video=False,
                      overrides=[*protocol_overrides(raw), *overrides])
    pooled = pooled_median_slope(tmp_path / "z")
    assert result["dimension"] == pooled.dimension and result["stderr"] == pooled.stderr
    assert result["keyframes"] == len(by_hand["frames"]) == 3 and result["published"] == 1.66
    assert result["difference"] == pytest.approx(result["dimension"] - 1.66)
    np.testing.assert_array_equal(open_stack(tmp_path / "r").diverged.values, open_stack(tmp_path / "z").diverged.values)
    # the last keyframe is the tile's own window, on log axes
    last = result["summary"]["frames"][-1]["window"]
    tile = fs.config.read_config("sd-tile-tanh")["axis"]
    assert last["lr_W0"] == pytest.approx([tile[0]["start"], tile[0]["stop"]], rel=1e-12)
    assert result["summary"]["config"]["axis"][0]["scale"] == "log"
    # the command prints the same numbers and resumes without recomputing
    out = CliRunner().invoke(main, ["reproduce", "sd-tile-tanh", "--out", str(tmp_path / "r"), "--depth", "0.6",
                                    "--size", "24", "--set", "descent.steps=200", "--json"])
    assert out.exit_code == 0, out.output
    printed = json.loads(out.output)
    assert printed["dimension"] == result["dimension"] and printed["published"] == 1.66
    # --video encodes his zoom into the tile from the finished keyframes, recomputing none
    video = reproduce("sd-tile-tanh", tmp_path / "r", depth=0.6, size=24, overrides=overrides, video=True,
                      frames_per_doubling=2, video_scale=4)
    assert video["summary"]["keyframes_computed"] == 0 and video["dimension"] == result["dimension"]
    with av.open(str(tmp_path / "r" / "zoom.mp4")) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 2 * 2 + 1 == video["summary"]["video_frames"] and decoded[0].shape == (96, 96, 3)


def test_reproduce_refuses_what_is_not_one_of_his_tiles(tmp_path):
    out = CliRunner().invoke(main, ["reproduce", "sd-tanh", "--out", str(tmp_path / "x")])
    assert out.exit_code == 2 and "his six tiles are: sd-tile-identity" in out.output
    assert not (tmp_path / "x").exists()
