"""The documentation's promises: every public name in the API reference, every gallery number from a run."""

import importlib.util
import json
import re
from pathlib import Path

import fractalscape as fs

DOCS = Path(__file__).parent.parent / "docs"
EXAMPLES = Path(__file__).parent.parent / "examples"


def _autosummary_entries(text: str) -> set[str]:
    """Full names listed by the autosummary directives of a page, with their currentmodule."""
    names, module = set(), ""
    for line in text.splitlines():
        if line.startswith(".. currentmodule::"):
            module = line.split("::")[1].strip()
        elif re.fullmatch(r"   [A-Za-z_][\w.]*", line):
            names.add(f"{module}.{line.strip()}")
    return names


def test_every_public_name_is_in_the_api_reference():
    listed = _autosummary_entries((DOCS / "api.md").read_text())
    documented = {name.rsplit(".", 1)[-1] for name in listed if name.count(".") == 1} | {
        name.rsplit(".", 1)[-1] for name in listed if name.startswith("fractalscape.audit.")}
    missing = set(fs.__all__) - documented - {"__version__"}
    assert not missing, f"add {sorted(missing)} to docs/api.md"
    assert ".. data:: fractalscape.__version__" in (DOCS / "api.md").read_text()


def test_every_page_is_in_a_toctree():
    index = (DOCS / "index.md").read_text()
    pages = {p.stem for p in DOCS.glob("*.md")} - {"index"}
    missing = {page for page in pages if not re.search(rf"^{page}$", index, re.M)}
    assert not missing, f"add {sorted(missing)} to a toctree in docs/index.md"


def test_gallery_numbers_are_lines_its_commands_printed():
    """docs/gallery.md is written by docs/make_gallery.py from gallery.json: the two agree, and every figure is there."""
    record = DOCS / "img" / "gallery" / "gallery.json"
    entries = json.loads(record.read_text())
    page = (DOCS / "gallery.md").read_text()
    for entry in entries:
        assert entry["printed"], f"{entry['name']}: its commands printed no number"
        assert all(line in page for line in entry["printed"])
        picture = DOCS / "img" / "gallery" / f"{entry['name']}.png"
        assert picture.stat().st_size <= 150_000, f"{picture} is larger than 150 KB"
    assert len(entries) >= 8


def test_compare_estimators_example_runs_at_toy_size(capsys):
    spec = importlib.util.spec_from_file_location("compare_estimators", EXAMPLES / "compare_estimators.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.main(small=True, uncertainty_samples=2**12)
    out = capsys.readouterr().out
    assert "| Koch snowflake" in out and "| liu-multiplicative, 1,025 lr" in out
    assert len(rows) == 1 + 5 + 1 + 3


def test_gallery_videos_are_real_h264_zooms_small_enough_to_keep():
    """Every video figure's MP4 is in docs/_static (what the page embeds), decodes as H.264, and is small."""
    import av

    entries = [e for e in json.loads((DOCS / "img" / "gallery" / "gallery.json").read_text()) if e.get("video")]
    assert {e["name"] for e in entries} >= {"liu-multiplicative-2d-zoom", "sd-tile-tanh-zoom"}
    page = (DOCS / "gallery.md").read_text()
    for entry in entries:
        video = DOCS / entry["video"]
        assert f'<video src="{entry["video"]}"' in page
        assert video.stat().st_size <= 3_000_000, f"{video} is larger than 3 MB"
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264" and stream.frames > 20
            assert stream.width % 2 == 0 and stream.height % 2 == 0


def test_the_liu_zoom_centre_is_a_boundary_point():
    """The gallery's 12-decade zoom centre: the label changes between it and the next double up in lr."""
    import numpy as np

    from fractalscape.gd import run_block
    from fractalscape.landscapes import landscape

    lr, x0 = (float(v) for v in re.search(r'^LIU_CENTER = \("([^"]+)", "([^"]+)"\)',
                                           (DOCS / "make_gallery.py").read_text(), re.M).groups())
    raw = fs.config.read_config("liu-multiplicative-2d")
    values = {"x0": x0, **{k: raw["landscape"][k] for k in ("delta", "wavelength")}}
    out = run_block(landscape(raw["landscape"]["name"]), values, [("lr", np.array([lr, np.nextafter(lr, 2.0)]))],
                    steps=raw["descent"]["steps"], threshold=raw["descent"]["threshold"], precision="fast")
    diverged = out["escape_step"] >= 0
    assert diverged[0] != diverged[1]
