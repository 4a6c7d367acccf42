"""The dashboard: window arithmetic, the store/recompute switch, and the app in a real headless Chromium."""

import io
import re
import shutil
import time
import tomllib

import numpy as np
import pytest

pytest.importorskip("panel")
pytest.importorskip("holoviews")
tomli_w = pytest.importorskip("tomli_w")

import fractalscape as fs  # noqa: E402
from fractalscape.dashboard import serve  # noqa: E402
from fractalscape.dashboard.app import Explorer  # noqa: E402
from fractalscape.dashboard.window import (  # noqa: E402
    compute_view, full_view, needs_compute, open_source, view_grid, window_config,
)
from fractalscape.grid import Axis  # noqa: E402
from fractalscape.store import write_map  # noqa: E402

#: The browser test's map: small enough to recompute in well under a second on 2 cores.
CONFIG = {
    "landscape": {"name": "cosine-multiplicative", "delta": 0.2, "wavelength": 0.1},
    "descent": {"steps": 100},
    "axis": [{"name": "lr", "start": 0.0, "stop": 1.5, "num": 1024},
             {"name": "x0", "start": -2.0, "stop": 2.0, "num": 1024}],
}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]


def _stored(tmp_path, num=(64, 48), axes=("lr", "x0")):
    bounds = {"lr": (0.0, 1.5), "x0": (-2.0, 2.0)}
    config = {**CONFIG, "axis": [{"name": n, "start": bounds[n][0], "stop": bounds[n][1], "num": k}
                                 for n, k in zip(axes, num)]}
    if "x0" not in axes:
        config["descent"] = {**CONFIG["descent"], "x0": 0.3}
    write_map(fs.open_config(config), tmp_path / "run")
    return tmp_path / "run"


def _wait_for_result(explorer, timeout=60.0):
    deadline = time.monotonic() + timeout
    while explorer.result is None or explorer.status.object != "done":
        assert time.monotonic() < deadline, f"no result: status {explorer.status.object!r}"
        time.sleep(0.02)
    return explorer.result


# -- window arithmetic --------------------------------------------------------

def test_window_config_round_trips_through_toml():
    source = open_source(CONFIG)
    view = [(0.123456789012345678, 0.1234567890123457), (-1.0000000000000002, -0.9999999999999998)]
    text = tomli_w.dumps(window_config(source.config, view, (4097, 3073)))
    cfg = fs.load_config(tomllib.loads(text))
    assert [(a.start, a.stop, a.num) for a in cfg.grid.axes] == [
        (view[0][0], view[0][1], 4097), (view[1][0], view[1][1], 3073)]  # exact: repr round trip
    assert cfg.descent["steps"] == 100
    assert cfg.model.params == {"delta": 0.2, "wavelength": 0.1}


def test_view_grid_spans_the_view_in_parameter_units_on_log_axes():
    axes = [Axis("lr", 1e-3, 10.0, 1025, scale="log"), Axis("x0", -2.0, 2.0, 1025)]
    assert full_view(axes) == ((-3.0, 1.0), (-2.0, 2.0))
    grid = view_grid(axes, [(-2.0, 0.0), (0.5, 1.5)], (40, 30))
    lr, x0 = grid.axes
    assert (lr.start, lr.stop, lr.num, lr.scale) == (0.01, 1.0, 40, "log")
    assert (x0.start, x0.stop, x0.num, x0.scale) == (0.5, 1.5, 30, "linear")


@pytest.mark.parametrize(("view", "pixels", "expected"), [
    (((0.0, 1.5), (-2.0, 2.0)), (600, 450), False),  # whole map, 1024 points per axis
    (((0.0, 1.5 * 599 / 1023), (-2.0, 2.0)), (600, 450), False),  # exactly 600 stored points across
    (((0.0, 1.5 * 598 / 1023), (-2.0, 2.0)), (600, 450), True),  # 599 points on 600 pixels
    (((0.0, 1.5), (-2.0, 2.0)), (2000, 450), True),  # a screen wider than the map
    (((-0.1, 1.5), (-2.0, 2.0)), (100, 100), True),  # beyond the stored map
])
def test_needs_compute_past_the_stored_resolution_or_extent(view, pixels, expected):
    axes = [Axis("lr", 0.0, 1.5, 1024), Axis("x0", -2.0, 2.0, 1024)]
    assert needs_compute(axes, view, pixels) is expected


def test_compute_view_reads_the_store_then_recomputes(tmp_path):
    source = open_source(_stored(tmp_path))
    assert source.stored is not None
    whole = compute_view(source, full_view(source.axes), (32, 24))
    assert not whole.computed and whole.shape == (32, 24)
    zoomed = compute_view(source, [(0.75, 1.125), (-0.4, 0.8)], (32, 24))
    assert zoomed.computed and zoomed.shape == (32, 24)
    np.testing.assert_array_equal(zoomed.picture.x.values, np.linspace(0.75, 1.125, 32))
    other = compute_view(source, full_view(source.axes), (32, 24), {"descent": {"steps": 20}})
    assert other.computed  # the store holds 100 steps


def test_compute_view_of_a_stored_1d_map_reads_only_the_window(tmp_path):
    source = open_source(_stored(tmp_path, num=(4097,), axes=("lr",)))
    result = compute_view(source, [(0.5, 1.0)], (200,))
    assert not result.computed
    lr = result.picture.lr.values
    assert 0.5 <= lr[0] and lr[-1] <= 1.0 and len(lr) <= 4 * 200
    assert 0.0 < result.fraction_diverged < 1.0
    deep = compute_view(source, [(0.5, 0.5001)], (200,))
    assert deep.computed and deep.shape == (200,)


def test_a_view_without_boundary_reports_why_it_has_no_dimension():
    source = open_source(CONFIG)
    result = compute_view(source, [(0.01, 0.02), (-0.01, 0.01)], (40, 30))  # converges everywhere
    assert result.fraction_diverged == 0.0
    assert "single class" in result.dimension


def test_explorer_exports_its_window_without_a_server():
    explorer = Explorer(open_source(CONFIG), 40, 30)
    # The PNG export waits for a picture (enabled only once the first view is shown).
    assert explorer.png.disabled or explorer.result is not None
    _wait_for_result(explorer)
    assert not explorer.png.disabled
    explorer.export_points.value = 401
    explorer.request([(0.5, 0.75), (0.0, 0.25)])
    _wait_for_result(explorer)
    text = explorer.window_toml()
    cfg = fs.load_config(tomllib.loads(text))
    assert [(a.start, a.stop, a.num) for a in cfg.grid.axes] == [(0.5, 0.75, 401), (0.0, 0.25, 301)]
    from PIL import Image

    image = Image.open(explorer.png_bytes())
    assert image.size == (40, 30)
    explorer.close()


# -- in a real browser --------------------------------------------------------

FRAME_JS = """() => {
    const view = Bokeh.index.query_one(v => v.model.type === "Figure");
    const canvas = view.canvas_view.el.getBoundingClientRect();
    const frame = view.frame.bbox;
    return {left: canvas.left + frame.left, top: canvas.top + frame.top,
            width: frame.width, height: frame.height,
            x: [view.model.x_range.start, view.model.x_range.end],
            y: [view.model.y_range.start, view.model.y_range.end]};
}"""


def _window(page) -> dict:
    """The ranges the page shows, parsed back to floats."""
    text = page.locator(".fs-window pre").inner_text()
    return {name: (float(lo), float(hi))
            for name, lo, hi in re.findall(r"^(\w+): (\S+) \.\. (\S+)$", text, re.MULTILINE)}


def _wait_until(predicate, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _colours(png: bytes) -> int:
    from PIL import Image

    return len(np.unique(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3), axis=0))


@pytest.fixture
def browser():
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.mark.browser
def test_zoom_recomputes_the_window_in_a_browser(browser, tmp_path, capsys):
    server = serve(CONFIG, width=200, height=150)
    url = re.search(r"http://\S+", capsys.readouterr().out).group(0)
    try:
        page = browser.new_page(viewport={"width": 1300, "height": 800})
        errors = []
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        page.locator(".fs-status", has_text="done").wait_for(timeout=60_000)  # first view, JIT included
        frame = page.evaluate(FRAME_JS)
        assert (frame["width"], frame["height"]) == (200, 150)
        assert _window(page) == {"lr": (0.0, 1.5), "x0": (-2.0, 2.0)}
        clip = {"x": frame["left"], "y": frame["top"], "width": frame["width"], "height": frame["height"]}
        _wait_until(lambda: _colours(page.screenshot(clip=clip)) > 50, "a map that is not blank")
        before = page.screenshot(clip=clip)
        dimension_before = page.locator(".fs-dimension pre").inner_text()
        assert "box-counting dimension: 1." in dimension_before

        # click-drag a box over the middle right of the map: box zoom is the active drag tool
        page.mouse.move(frame["left"] + 0.5 * frame["width"], frame["top"] + 0.3 * frame["height"])
        page.mouse.down()
        page.mouse.move(frame["left"] + 0.75 * frame["width"], frame["top"] + 0.6 * frame["height"], steps=8)
        page.mouse.up()
        _wait_until(lambda: "computed" in page.locator(".fs-window pre").inner_text()
                    and _window(page)["lr"] != (0.0, 1.5)
                    and page.locator(".fs-status pre").inner_text() == "done", "the zoomed view")
        zoomed = page.evaluate(FRAME_JS)
        window = _window(page)
        assert window == {"lr": tuple(zoomed["x"]), "x0": tuple(zoomed["y"])}  # exact, as bokeh holds them
        assert window["lr"] == pytest.approx((0.75, 1.125), abs=1.5 / 200)
        assert window["x0"] == pytest.approx((-0.4, 0.8), abs=4.0 / 150)
        _wait_until(lambda: page.screenshot(clip=clip) != before, "the recomputed picture")
        after = page.screenshot(clip=clip)
        assert _colours(after) > 50
        assert page.locator(".fs-dimension pre").inner_text() != dimension_before
        page.screenshot(path=tmp_path / "dashboard.png")

        with page.expect_download() as download:
            page.get_by_text("config of this window").click()
        cfg = fs.load_config(tomllib.loads(download.value.path().read_text()))
        assert [(a.start, a.stop) for a in cfg.grid.axes] == [window["lr"], window["x0"]]
        assert cfg.descent["steps"] == 100

        with page.expect_download() as download:
            page.get_by_text("PNG of this view").click()
        from PIL import Image

        png = download.value.path().read_bytes()
        assert Image.open(io.BytesIO(png)).size == (200, 150) and _colours(png) > 50

        page.get_by_text("reset view").click()
        _wait_until(lambda: _window(page) == {"lr": (0.0, 1.5), "x0": (-2.0, 2.0)}
                    and page.locator(".fs-status pre").inner_text() == "done", "the reset view")
        assert page.locator(".fs-dimension pre").inner_text() == dimension_before
        assert errors == []
        page.close()  # before the server stops, so no websocket write is left in flight
    finally:
        server.stop()
