"""The dashboard's work is bounded: bounds per request, no compute per GET, latest view wins, cancellation, load.

Everything here drives the real app objects (Panel widgets, HoloViews
streams, the shared scheduler, dask) or a real server on 127.0.0.1; only
the last test needs a browser.
"""

import re
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest

pytest.importorskip("panel")
pytest.importorskip("holoviews")
psutil = pytest.importorskip("psutil")

import fractalscape as fs  # noqa: E402
from fractalscape.dashboard import build_app, serve  # noqa: E402
from fractalscape.dashboard.app import Explorer, shade_view  # noqa: E402
from fractalscape.dashboard.scheduler import SCHEDULER, ViewScheduler  # noqa: E402
from fractalscape.dashboard.window import (  # noqa: E402
    MAX_STEPS, WORKERS, ViewCancelled, compute_view, floor_warning, open_source,
)
from fractalscape.errors import ConfigError  # noqa: E402
from test_dashboard import CHROMIUM, CHROMIUM_ARGS, CONFIG  # noqa: E402

#: Enough steps that a 600 x 450 view of CONFIG takes seconds (diverging points exit early).
SLOW = {"descent": {"steps": 20_000}}


def _wait(predicate, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _done(explorer):
    return explorer.status.object == "done"


def _shown(explorer, what, timeout=60.0):
    """Wait for the view to be shown and the session's job to have returned."""
    _wait(lambda: _done(explorer), what, timeout)
    assert SCHEDULER.wait(explorer, timeout)


def _warm():
    """Compile the kernels once, so no test times the JIT."""
    compute_view(open_source(CONFIG), [(0.5, 1.0), (-1.0, 1.0)], (8, 6))


def _statuses(explorer) -> list:
    seen = []
    explorer.status.param.watch(lambda event: seen.append(event.new), "object")
    return seen


# -- bounds -------------------------------------------------------------------

def test_steps_past_the_bound_are_refused_with_a_visible_message():
    _warm()
    explorer = Explorer(open_source(CONFIG), 40, 30)
    _shown(explorer, "the first view")
    jobs, shown = SCHEDULER.jobs_run, explorer.result
    explorer.steps.value = 2**31 - 1
    assert explorer.status.object.startswith(f"not computed: steps must be an integer from 1 to {MAX_STEPS}")
    assert not SCHEDULER.busy(explorer) and SCHEDULER.jobs_run == jobs
    assert not explorer.plot.loading and explorer.cancel.disabled
    explorer.steps.value = 50  # back inside the bounds: computed again
    _shown(explorer, "the view at 50 steps")
    assert explorer.result is not shown
    explorer.close(wait=True)


@pytest.mark.parametrize("size", [(4096, 1024), (1, 100), (100000, 100000)])
def test_a_plot_past_the_points_bound_is_refused_before_anything_runs(size):
    with pytest.raises(ConfigError, match="outside the dashboard's bounds"):
        build_app(CONFIG, width=size[0], height=size[1])
    with pytest.raises(ConfigError, match="outside the dashboard's bounds"):
        serve(CONFIG, width=size[0], height=size[1])


# -- no compute per GET -------------------------------------------------------

def _served(capsys, **kwargs):
    server = serve(CONFIG, **kwargs)
    return server, re.search(r"http://\S+", capsys.readouterr().out).group(0)


def test_plain_gets_of_the_page_compute_nothing(capsys):
    server, url = _served(capsys)
    try:
        process = psutil.Process()
        urllib.request.urlopen(url, timeout=30).read()  # the first page build imports what it needs
        time.sleep(0.5)
        threads, jobs = process.num_threads(), SCHEDULER.jobs_run
        for _ in range(6):
            page = urllib.request.urlopen(url, timeout=30).read()
            assert b"fractalscape" in page
        time.sleep(1.0)  # a compute started by a GET would be running now
        assert SCHEDULER.jobs_run == jobs and SCHEDULER.idle
        assert process.num_threads() <= threads  # before the fix: 4 -> 46 threads
    finally:
        server.stop()


# -- latest view wins, cancellation -------------------------------------------

def test_the_scheduler_runs_only_the_latest_waiting_job_of_each_owner():
    scheduler = ViewScheduler("test-scheduler")
    release, ran = threading.Event(), []
    scheduler.submit("blocker", release.wait)
    _wait(lambda: scheduler.busy("blocker"), "the blocker to run")
    for view in ("a1", "a2", "a3"):
        scheduler.submit("a", lambda view=view: ran.append(view))
    scheduler.submit("b", lambda: ran.append("b1"))
    scheduler.submit("a", lambda: ran.append("a4"))  # replaces a3, keeps a's place before b
    release.set()
    assert scheduler.wait("a", 10) and scheduler.wait("b", 10)
    assert ran == ["a4", "b1"]
    assert scheduler.jobs_run == 3


def test_a_cancelled_view_stops_between_bands():
    _warm()
    source = open_source(CONFIG)
    batches = []

    def on_block(done, total):
        batches.append((done, total))

    with pytest.raises(ViewCancelled, match=f"after {WORKERS} of"):
        compute_view(source, [(0.5, 1.5), (-1.0, 1.0)], (200, 150), cancelled=lambda: bool(batches),
                     on_block=on_block)
    assert len(batches) == 1 and batches[0][0] == WORKERS < batches[0][1]


def test_a_zoom_during_a_recompute_cancels_it_and_the_latest_view_wins():
    _warm()
    explorer = Explorer(open_source(CONFIG), 600, 450)
    _shown(explorer, "the first view")
    explorer.steps.value = SLOW["descent"]["steps"]  # a request: a slow recompute of the whole view
    statuses = _statuses(explorer)
    _wait(lambda: "computing: " in explorer.status.object, "the recompute's progress")
    first, total = map(int, re.search(r"(\d+)/(\d+) blocks", explorer.status.object).groups())
    views = [((0.5 + k / 100, 1.0), (-0.5, 0.5)) for k in range(3)]
    for view in views:  # three zooms while it runs: the running view stops, only the last is computed
        explorer.request(view)
    explorer.steps.value = 100  # and a fourth request, of the last view: the one computed
    cut = len(statuses)
    _shown(explorer, "the last view", timeout=120)
    assert explorer.result.view == views[-1] and explorer.result.picture.escape_step.max() < 100
    before = [int(m.group(1)) for m in map(re.compile(r"(\d+)/\d+ blocks").search, statuses[:cut]) if m]
    assert max(before) < total  # the whole view never finished
    assert statuses.count("done") == 1
    explorer.close(wait=True)


def test_the_cancel_button_stops_the_view_and_keeps_the_last_picture():
    _warm()
    explorer = Explorer(open_source(CONFIG), 600, 450)
    _shown(explorer, "the first view")
    shown = explorer.result
    explorer.steps.value = SLOW["descent"]["steps"]
    assert not explorer.cancel.disabled
    explorer.cancel.clicks += 1
    assert explorer.status.object.startswith("cancelled") and explorer.cancel.disabled
    assert explorer.close(wait=True, timeout=30)
    assert explorer.result is shown and "box-counting dimension" in explorer.dimension.object


# -- the docstring example leaves nothing computing ---------------------------

def test_build_app_then_close_leaves_nothing_running():
    jobs = SCHEDULER.jobs_run
    app = build_app(CONFIG, width=64, height=48)  # outside a server the first view starts at once
    assert app.close(wait=True, timeout=60)
    assert SCHEDULER.idle
    ran, cpu = SCHEDULER.jobs_run, _cpu()
    time.sleep(0.5)
    assert SCHEDULER.jobs_run == ran <= jobs + 1 and _cpu() - cpu < 0.2  # nothing computes behind


# -- load ---------------------------------------------------------------------

#: A client of N concurrent GETs of a URL: ``python -c CLIENT URL N``.
CLIENT = """
import sys, threading, urllib.request
url, n = sys.argv[1], int(sys.argv[2])
pages = []
threads = [threading.Thread(target=lambda: pages.append(urllib.request.urlopen(url, timeout=60).read()))
           for _ in range(n)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
sys.exit(0 if len(pages) == n and all(b"fractalscape" in page for page in pages) else 1)
"""


class _Sampler(threading.Thread):
    """The process' peak thread count, sampled every 10 ms."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.stop = 0, threading.Event()

    def run(self):
        process = psutil.Process()
        while not self.stop.is_set():
            self.peak = max(self.peak, process.num_threads())
            time.sleep(0.01)


def _cpu() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


@pytest.mark.slow
def test_twenty_concurrent_requests_keep_threads_and_cpu_bounded(capsys):
    _warm()
    server, url = _served(capsys, width=200, height=150)
    try:
        urllib.request.urlopen(url, timeout=30).read()
        cpu = _cpu()
        urllib.request.urlopen(url, timeout=30).read()
        per_page = _cpu() - cpu
        # one session's zoom, timed: the unit of the CPU budget
        probe = Explorer(open_source(CONFIG), 200, 150)
        _shown(probe, "the probe's first view")
        cpu = _cpu()
        probe.request([(0.6, 1.3), (-0.7, 0.7)])
        _shown(probe, "the probe's zoom")
        per_view = _cpu() - cpu
        time.sleep(0.5)
        sampler = _Sampler()
        sampler.start()
        baseline, cpu, wall = psutil.Process().num_threads(), _cpu(), time.monotonic()
        sessions = [Explorer(open_source(CONFIG), 200, 150) for _ in range(20)]
        # the 20 concurrent GETs come from another process, so only the server's threads are counted here
        gets = subprocess.Popen([sys.executable, "-c", CLIENT, url, "20"])
        for zoom in range(3):  # 20 sessions x 3 zooms, all distinct views (nothing from the cache)
            for k, explorer in enumerate(sessions):
                explorer.request([(0.5 + 0.01 * k, 1.2 + 0.01 * zoom), (-0.5, 0.5)])
        assert gets.wait(60) == 0
        for explorer in sessions:
            _shown(explorer, "every session's last view")
        sampler.stop.set()
        sampler.join()
        used, wall = _cpu() - cpu, time.monotonic() - wall
        cpu = _cpu()
        time.sleep(1.0)
        idle = _cpu() - cpu
    finally:
        server.stop()
    print(f"20 GETs + 20 sessions x 3 zooms: {wall:.1f} s, {used:.1f} CPU s ({per_view:.2f} per view, "
          f"{per_page:.2f} per page), "
          f"threads {baseline} -> peak {sampler.peak}, then {idle:.2f} CPU s in 1 s")
    assert all(e.result.view[0][1] == pytest.approx(1.22) for e in sessions)  # the latest view won
    # one worker thread and its dask pool, whatever the number of sessions (before: ~7 threads per session)
    assert sampler.peak <= baseline + 1 + WORKERS + 4
    # each session's last view and a partial one per superseded zoom at most, 20 page builds, 20 sessions built
    assert used <= 2 * (20 * 2 * per_view + 40 * per_page)
    assert idle < 0.3  # nothing left computing
    assert not any(SCHEDULER.busy(e) for e in sessions)


# -- feedback -----------------------------------------------------------------

def test_a_recomputed_view_shows_a_coarse_picture_first_then_progress():
    _warm()
    explorer = Explorer(open_source(CONFIG), 600, 450)
    pictures = []
    explorer.pipe.add_subscriber(lambda data: pictures.append(data.dimension_values("R", flat=False).shape))
    statuses = _statuses(explorer)
    _shown(explorer, "the first view")
    assert pictures[-2:] == [(112, 150), (450, 600)]  # a quarter of the points along each axis first
    coarse = next(i for i, s in enumerate(statuses) if s.startswith("coarse picture (150 x 112 points)"))
    blocks = [i for i, s in enumerate(statuses) if re.search(r"computing: \d+/\d+ blocks", s)]
    assert coarse < blocks[0] < blocks[-1] < statuses.index("done")
    assert explorer.progress.max == int(re.search(r"/(\d+) blocks", statuses[blocks[-1]]).group(1)) > 4
    explorer.close(wait=True)


def test_the_dimension_panel_says_computing_until_the_new_view_is_measured():
    _warm()
    explorer = Explorer(open_source(CONFIG), 120, 90)
    _shown(explorer, "the first view")
    before = explorer.dimension.object
    assert "box-counting dimension" in before and explorer.fit_plot.object is not None
    panels = []
    explorer.dimension.param.watch(lambda event: panels.append(event.new), "object")
    explorer.request([(0.75, 1.125), (-0.4, 0.8)])
    assert explorer.dimension.object == "computing ..." and explorer.fit_plot.object is None
    _shown(explorer, "the zoomed view")
    assert panels[0] == "computing ..." and before not in panels
    assert "box-counting dimension" in explorer.dimension.object
    explorer.close(wait=True)


def test_the_wheel_zooms_by_default():
    import holoviews as hv
    from bokeh.models import BoxZoomTool, WheelZoomTool

    for config in (CONFIG, {**CONFIG, "descent": {"steps": 100, "x0": 0.3}, "axis": CONFIG["axis"][:1]}):
        explorer = Explorer(open_source(config), 60, 45)
        _shown(explorer, "the first view")  # outside a server its pictures arrive on the worker thread
        toolbar = hv.render(explorer.plot.object, backend="bokeh").toolbar
        assert isinstance(toolbar.active_scroll, WheelZoomTool)
        assert isinstance(toolbar.active_drag, BoxZoomTool)
        explorer.close(wait=True)


def test_a_window_near_the_float64_floor_is_warned_about():
    axes = open_source(CONFIG).axes
    # lr 0.75 .. 0.75 + 600 * 8 ulp(0.75) * 5: about five times the floor's pixel spacing
    near = [(0.75, 0.75 + 600 * 8 * np.spacing(0.75) * 5), (0.0, 0.1)]
    assert "float64 floor" in floor_warning(axes, near, (600, 450))
    assert floor_warning(axes, [(0.75, 0.75 + 600 * 8 * np.spacing(0.75) * 40), (0.0, 0.1)], (600, 450)) is None
    explorer = Explorer(open_source(CONFIG), 60, 45)
    assert not explorer.floor.visible
    explorer.request([(0.75, 0.75 + 60 * 8 * np.spacing(0.75) * 5), (0.0, 0.1)])
    assert explorer.floor.visible and "more halvings" in explorer.floor.object
    explorer.request([(0.5, 1.0), (0.0, 0.1)])
    assert not explorer.floor.visible
    explorer.close(wait=True)


def test_the_diverged_readout_draws_the_classes_in_their_colours():
    from fractalscape.render import aggregate

    grid = fs.Grid([fs.Axis("lr", 0.1, 3.0, 48), fs.Axis("x0", -1.0, 1.0, 24)])
    picture = aggregate(fs.trainability(fs.landscape("cosine-additive"), grid, steps=50), 48, 24)
    rgba = shade_view(picture, "fraction_diverged").astype(int)
    diverged = picture.fraction_diverged.values[::-1] == 1.0  # rows from the top, as the image
    converged = picture.fraction_diverged.values[::-1] == 0.0
    assert diverged.any() and converged.any()
    red, blue = rgba[..., 0], rgba[..., 2]
    assert (red[diverged] > blue[diverged] + 60).all()  # diverged red (not white on black)
    assert (blue[converged] > red[converged] + 60).all()  # converged blue
    assert (rgba[diverged][:, :3].sum(axis=1) < 600).all()  # not white


# -- in a real browser --------------------------------------------------------

@pytest.mark.browser
def test_the_default_layout_fits_1280_px_and_the_wheel_zooms(capsys, tmp_path):
    import shutil

    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"no Chromium at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    server, url = _served(capsys)  # the default 600 x 450 plot
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.locator(".fs-status", has_text="done").wait_for(timeout=90_000)
            assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280
            frame = page.evaluate("""() => {
                const view = Bokeh.index.query_one(v => v.model.type === "Figure");
                const canvas = view.canvas_view.el.getBoundingClientRect();
                return {x: canvas.left + view.frame.bbox.left + view.frame.bbox.width / 2,
                        y: canvas.top + view.frame.bbox.top + view.frame.bbox.height / 2,
                        scroll: view.model.toolbar.active_scroll.type};
            }""")
            assert frame["scroll"] == "WheelZoomTool"
            page.mouse.move(frame["x"], frame["y"])
            page.mouse.wheel(0, -400)  # no tool picked first

            def width():
                lr = re.search(r"^lr: (\S+) \.\. (\S+)$", page.locator(".fs-window pre").inner_text(), re.M)
                return float(lr.group(2)) - float(lr.group(1))

            _wait(lambda: width() < 1.5 and page.locator(".fs-status pre").inner_text() == "done", "a wheel zoom")
            page.screenshot(path=tmp_path / "layout.png")
            page.close()
            browser.close()
    finally:
        server.stop()


# -- record zoom --------------------------------------------------------------

def test_record_zoom_takes_the_view_to_a_depth_and_resumes(tmp_path, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)
    explorer = Explorer(open_source(CONFIG), 32, 24)
    _shown(explorer, "the first view")
    explorer.request([(0.5, 1.0), (-1.0, 1.0)])
    _shown(explorer, "the zoomed view")
    explorer.recorder.depth.value, explorer.recorder.out.value = 0.3, "zooms/a"
    explorer.recorder.button.clicks += 1
    assert explorer.recorder.status.object.startswith(f"recording 0.3 decades into {tmp_path / 'zooms' / 'a'}")
    explorer.recorder.thread.join(120)
    assert explorer.recorder.status.object.startswith(f"recorded 2 keyframes (2 computed) into {tmp_path}")
    summary = json.loads((tmp_path / "zooms" / "a" / "summary.json").read_text())
    assert summary["frames"][0]["window"] == {"lr": [0.5, 1.0], "x0": [-1.0, 1.0]}  # keyframe 0: the view
    assert summary["frames"][1]["window"] == {"lr": [0.625, 0.875], "x0": [-0.5, 0.5]}
    explorer.recorder.button.clicks += 1  # the same view into the same directory: nothing recomputed
    explorer.recorder.thread.join(120)
    assert "(0 computed)" in explorer.recorder.status.object
    explorer.recorder.out.value = str(tmp_path / "absolute")
    explorer.recorder.button.clicks += 1
    assert explorer.recorder.status.object.startswith("not recorded: record into a directory under")
    explorer.close(wait=True)
