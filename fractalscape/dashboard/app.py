"""The Panel app behind ``fractalscape serve``: a zoomable map that recomputes what it cannot read.

The plot is a HoloViews ``DynamicMap`` with two streams: a ``RangeXY`` stream
that reports the visible window after each zoom or pan, and a ``Pipe`` that
delivers pictures. A window change queues
:func:`~fractalscape.dashboard.window.compute_view` on the worker thread
every session shares (:mod:`fractalscape.dashboard.scheduler`: the map is
read or recomputed through dask, so the server keeps answering), marks the
boundary panel as computing, and shows a spinner on the plot until the
first picture: for a recomputed view a coarse one (1/4 of the points along
each axis), then the full one, with its bands counted in a progress bar.
A newer window replaces a waiting one and cancels a running one between two
bands; so does the cancel button. Nothing is computed until a browser has
loaded the page: a plain HTTP GET builds the page and computes nothing.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from functools import partial

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the bokeh plot options)
import numpy as np
import panel as pn

from fractalscape.dashboard.record import ZoomRecorder
from fractalscape.dashboard.scheduler import RESULTS, SCHEDULER
from fractalscape.dashboard.window import (
    Source, ViewCancelled, ViewResult, check_view_request, coarse_pixels, compute_view, export_num, floor_warning,
    full_view, recomputes, settings_config, to_param, to_plot, window_config,
)
from fractalscape.errors import ConfigError

log = logging.getLogger(__name__)

#: Readouts a 2-D view can show: label -> variable of the aggregate ("both": render.shade's two classes).
READOUTS = {
    "escape step | final loss": "both",
    "diverged": "fraction_diverged",
    "escape step": "escape_step",
    "final loss (log10)": "log10_final_loss",
}
#: Colormaps (colorcet names) for the single-variable readouts.
COLORMAPS = ("fire", "kbc", "bmy", "bgy", "gray", "rainbow4", "coolwarm")
DIVERGED_COLOR, CONVERGED_COLOR = "#d62728", "#1f77b4"
#: Outside a server the worker thread draws the pictures itself; this lock keeps it from building HoloViews
#: objects while a session is being built (HoloViews' option store is not thread-safe). A served session
#: draws on its document's event loop instead.
_BUILDING = threading.RLock()


def shade_view(picture, readout: str = "both", cmap: str = "fire", how: str = "eq_hist") -> np.ndarray:
    """RGBA image (uint8, rows from the top) of a 2-D view's aggregate.

    ``readout="both"`` is :func:`fractalscape.render.shade`'s two-class
    picture; ``"fraction_diverged"`` is drawn in the class colours of
    :data:`fractalscape.render.PROBABILITY_CMAP` (converged blue, diverged
    red, mixed pixels pale, on a fixed 0 .. 1 scale); any other readout is one
    variable of the aggregate shaded with the colorcet colormap ``cmap``.

    Examples
    --------
    >>> import fractalscape as fs
    >>> from fractalscape.render import aggregate
    >>> grid = fs.Grid([fs.Axis("lr", 0.5, 1.5, 32), fs.Axis("x0", -1.0, 1.0, 24)])
    >>> agg = aggregate(fs.trainability(fs.landscape("cosine-additive"), grid, steps=50), 32, 24)
    >>> shade_view(agg, "escape_step", "kbc").shape
    (24, 32, 4)
    """
    import colorcet
    import datashader.transfer_functions as tf

    from fractalscape.render import shade

    if readout == "both":
        return shade(picture, how)
    values = picture[readout]
    if not bool(values.notnull().any()):
        return np.zeros(values.shape + (4,), np.uint8)
    if readout == "fraction_diverged":
        from matplotlib import colormaps
        from matplotlib.colors import to_hex

        from fractalscape.render import PROBABILITY_CMAP

        colors = [to_hex(c) for c in colormaps[PROBABILITY_CMAP](np.linspace(0.0, 1.0, 256))]
        image = tf.shade(values, cmap=colors, how="linear", span=(0.0, 1.0))
    else:
        image = tf.shade(values, cmap=getattr(colorcet, cmap), how=how)
    return image.to_numpy().view(np.uint8).reshape(image.shape + (4,))[::-1]


def _bounds(coords: np.ndarray) -> tuple[float, float]:
    """Outer edges of pixels centred on ``coords``."""
    half = (coords[-1] - coords[0]) / (len(coords) - 1) / 2 if len(coords) > 1 else 0.5
    return float(coords[0] - half), float(coords[-1] + half)


def _picture_2d(result: ViewResult | None, view, rgba=None) -> hv.RGB:
    if result is None:
        (x0, x1), (y0, y1) = view
        return hv.RGB(np.zeros((2, 2, 4), np.uint8), bounds=(x0, y0, x1, y1))
    (x0, x1), (y0, y1) = _bounds(result.picture.x.values), _bounds(result.picture.y.values)
    return hv.RGB(rgba, bounds=(x0, y0, x1, y1))


def _picture_1d(result: ViewResult | None, axis) -> hv.Overlay:
    if result is None:
        x, escape = np.empty(0), np.empty(0, np.int32)
    else:
        x = np.array([to_plot(axis, v) for v in result.picture[axis.name].values])
        escape = result.picture.escape_step.values
    diverged = escape >= 0
    return hv.Overlay([
        hv.Scatter((x[diverged], escape[diverged] + 1.0), axis.name, "escape step + 1",
                   label="diverged").opts(color=DIVERGED_COLOR),
        hv.Scatter((x[~diverged], np.full((~diverged).sum(), 0.5)), axis.name, "escape step + 1",
                   label="converged").opts(color=CONVERGED_COLOR),
    ])


def window_text(axes, view, result: ViewResult | None) -> str:
    """The view's window in parameter units, exact (``repr``) at any zoom.

    Examples
    --------
    >>> from fractalscape.grid import Axis
    >>> print(window_text([Axis("lr", 1e-3, 1.0, 9, scale="log")], [(-2.0, -1.0)], None))
    lr: 0.01 .. 0.1
    """
    lines = [f"{a.name}: {to_param(a, lo)!r} .. {to_param(a, hi)!r}" for a, (lo, hi) in zip(axes, view)]
    if result is not None:
        where = "computed" if result.computed else "read from the stored map"
        lines.append(f"{where}, {' x '.join(map(str, result.shape))} points on screen")
    return "\n".join(lines)


def dimension_text(result: ViewResult) -> str:
    """The fraction diverged and the boundary's box-counting dimension of a view."""
    lines = [f"fraction diverged: {result.fraction_diverged:.4f}"]
    dim = result.dimension
    if isinstance(dim, str):
        return "\n".join(lines + ["box-counting dimension: not available", dim])
    lo, hi = dim.fit_range
    return "\n".join(lines + [
        f"box-counting dimension: {dim.dimension:.3f} ± {dim.stderr:.3f}",
        f"fit over boxes of {lo} .. {hi} pixels",
        "box size     count",  # a column, so the panel stays narrow (the layout fits 1280 px)
        *(f"{size:>8} {count:>9}" for size, count in zip(dim.sizes, dim.counts)),
    ])


def _served_document():
    """The document of the served session being built on this thread, or None.

    Bokeh's current document is global, so while a server builds a page on
    its event loop another thread sees it too: only the event loop's own
    thread is in that session.
    """
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        return None
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return None
    return doc


def _input(key: str, value) -> pn.widgets.Widget:
    """An input for one model parameter, of its type (checked by the config, never evaluated)."""
    if isinstance(value, float):
        return pn.widgets.FloatInput(label=key, value=value, width=130)
    if isinstance(value, int):
        return pn.widgets.IntInput(label=key, value=value, width=130)
    return pn.widgets.TextInput(label=key, value=str(value), width=130)


class Explorer:
    """One browser session: widgets, the zoomable plot, and its requests to the shared worker thread.

    Displays as its ``layout`` (Panel's ``__panel__`` protocol). The first
    view is asked for once a browser has loaded the page (at once outside a
    server); :meth:`close` cancels what is still computing.

    Parameters
    ----------
    source : Source
        The map or config to explore.
    width, height : int
        Plot area in screen pixels: recomputed windows have one point per pixel
        (at most :data:`~fractalscape.dashboard.window.MAX_VIEW_POINTS` in all).
    """

    def __init__(self, source: Source, width: int = 600, height: int = 450):
        self.source, self.axes = source, source.axes
        self.pixels = (width, height)[: len(self.axes)]
        check_view_request({}, self.pixels)
        self.size = (width, height)
        self.view = full_view(self.axes)
        self.result: ViewResult | None = None
        self._generation = 0
        self._coarse = False  # whether the coarse picture of the requested view is shown
        self._doc = _served_document()
        if self._doc is not None:
            pn.state.on_session_destroyed(lambda _context: self.close())
        with _BUILDING:
            self._widgets()
            self.plot = pn.pane.HoloViews(self._dynamic_map(), backend="bokeh")
            self.layout = self._layout()
        if self._doc is None:
            self.request()
        else:  # when the browser has loaded the page: never for a plain GET
            pn.state.onload(self.request)

    def __panel__(self) -> pn.viewable.Viewable:
        return self.layout

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.layout._repr_mimebundle_(include, exclude)

    # -- widgets and layout -------------------------------------------------

    def _widgets(self) -> None:
        config = self.source.config
        self.model_inputs = {
            key: _input(key, value) for key, value in config[self.source.model_table].items()
            if key not in ("name", "dim")
        }
        self.steps = pn.widgets.IntInput(label="steps", value=config["descent"]["steps"], start=1, width=130)
        self.threshold = pn.widgets.FloatInput(label="threshold", value=config["descent"]["threshold"], width=130)
        for widget in (*self.model_inputs.values(), self.steps, self.threshold):
            widget.param.watch(lambda _event: self.request(), "value")
        readouts = {**READOUTS, "score": "score"} if self.source.has_score else READOUTS
        self.readout = pn.widgets.Select(label="readout", options=readouts, value="both", width=240,
                                         visible=len(self.axes) == 2)
        self.cmap = pn.widgets.Select(label="colormap (single readouts)", options=list(COLORMAPS),
                                      value="fire", disabled=True, width=240, visible=len(self.axes) == 2)
        self.how = pn.widgets.Select(label="colour scaling", options=["eq_hist", "linear", "log"], width=240,
                                     visible=len(self.axes) == 2)
        for widget in (self.readout, self.cmap, self.how):
            widget.param.watch(lambda _event: self._redraw(), "value")
        self.reset = pn.widgets.Button(label="reset view", color="primary", width=110)
        self.reset.on_click(lambda _event: self.reset_view())
        self.cancel = pn.widgets.Button(label="cancel", color="warning", disabled=True, width=110)
        self.cancel.on_click(lambda _event: self.cancel_view())
        self.export_points = pn.widgets.IntInput(
            label=f"export: points along {self.axes[0].name}", value=self.axes[0].num, start=2, width=200)
        # Disabled until the first view is drawn: there is no picture to export before.
        self.png = pn.widgets.FileDownload(callback=self.png_bytes, filename="fractalscape-view.png",
                                           label="PNG of this view", color="success", disabled=True)
        self.toml = pn.widgets.FileDownload(callback=lambda: io.BytesIO(self.window_toml().encode()),
                                            filename="fractalscape-window.toml",
                                            label="config of this window (TOML)", color="success")
        self.status = pn.pane.Str("", css_classes=["fs-status"])
        self.progress = pn.indicators.Progress(value=0, max=1, visible=False, width=self.size[0],
                                               css_classes=["fs-progress"])
        self.floor = pn.pane.Alert("", alert_type="warning", visible=False, width=self.size[0],
                                   css_classes=["fs-floor"])
        self.window = pn.pane.Str("", css_classes=["fs-window"])
        self.dimension = pn.pane.Str("", css_classes=["fs-dimension"])
        self.fit_plot = pn.pane.Matplotlib(None, tight=True, dpi=80, width=280, height=220)
        self.recorder = ZoomRecorder(self)

    def _layout(self) -> pn.viewable.Viewable:
        table = self.source.config[self.source.model_table]
        controls = pn.Column(
            f"### {table.get('name', self.source.model_table)}", *self.model_inputs.values(), self.steps, self.threshold,
            self.readout, self.cmap, self.how, pn.Row(self.reset, self.cancel), self.export_points, self.png,
            self.toml, *self.recorder.widgets, width=250,
        )
        return pn.Row(
            controls,
            pn.Column(self.plot, self.progress, self.status, self.floor, self.window),
            pn.Column("### boundary of this view", self.dimension, self.fit_plot, width=290),
            name="fractalscape",
        )

    def _dynamic_map(self) -> hv.DynamicMap:
        """A fresh plot at the full view (a new figure is how the view is reset)."""
        full = full_view(self.axes)
        self.ranges = hv.streams.RangeXY()
        self.pipe = hv.streams.Pipe(data=self._element())
        self.ranges.add_subscriber(self._on_ranges)
        dmap = hv.DynamicMap(lambda data, x_range, y_range: data, streams=[self.pipe, self.ranges])
        width, height = self.size
        # click-drag zooms, as in Sohl-Dickstein's notebook; a 1-D map zooms along its axis only
        zoom = "box_zoom" if len(self.axes) == 2 else "xbox_zoom"
        common = dict(frame_width=width, frame_height=height, xlim=full[0], active_tools=[zoom, "wheel_zoom"],
                      default_tools=["save", "pan", "wheel_zoom", zoom, "reset"],
                      xlabel=("log10 " if self.axes[0].scale == "log" else "") + self.axes[0].name)
        if len(self.axes) == 2:
            ylabel = ("log10 " if self.axes[1].scale == "log" else "") + self.axes[1].name
            return dmap.opts({"RGB": dict(ylim=full[1], ylabel=ylabel, **common)}, backend="bokeh")
        return dmap.opts({"Scatter": dict(size=3, tools=["hover"], default_tools=common["default_tools"],
                                          active_tools=[zoom, "wheel_zoom"]),
                          "Overlay": dict(logy=True, legend_position="top_left",
                                          ylim=(0.3, 2.0 * self.steps.value), **common)}, backend="bokeh")

    def _element(self, rgba=None):
        if len(self.axes) == 2:
            return _picture_2d(self.result, self.view, rgba)
        return _picture_1d(self.result, self.axes[0])

    # -- requests and results -----------------------------------------------

    def _on_ranges(self, x_range=None, y_range=None, **_ignored) -> None:
        if x_range is None:
            return
        view = (tuple(x_range),) if len(self.axes) == 1 else (tuple(x_range), tuple(y_range))
        if view != self.view:
            self.request(view)

    def settings(self) -> dict:
        """The model parameters and descent settings of the controls."""
        return {
            "model": {key: w.value for key, w in self.model_inputs.items()},
            "descent": {"steps": self.steps.value, "threshold": self.threshold.value},
        }

    def request(self, view=None) -> None:
        """Show ``view`` (default: the current one) with the current settings, computed on the worker thread.

        Past the bounds of :func:`~fractalscape.dashboard.window.check_view_request`
        (e.g. ``steps`` above ``MAX_STEPS``) nothing is queued and the status says why.
        """
        self.view = tuple(view) if view is not None else self.view
        self._generation += 1  # a running view of this session stops at its next band
        settings = self.settings()
        self.window.object = window_text(self.axes, self.view, None)
        warning = floor_warning(self.axes, self.view, self.pixels)
        self.floor.object, self.floor.visible = warning or "", warning is not None
        try:
            check_view_request(settings, self.pixels)
        except ConfigError as err:
            SCHEDULER.discard(self)
            self._finish(f"not computed: {err}")
            return
        self.plot.loading = True
        self.status.object = "computing ..."
        self.dimension.object = "computing ..."  # never the previous view's numbers
        self.fit_plot.object = None
        self.progress.value, self.progress.visible = 0, False
        self._coarse = False
        self.cancel.disabled = False
        SCHEDULER.submit(self, partial(self._work, self._generation, self.view, settings))

    def _work(self, generation: int, view, settings: dict) -> None:
        def cancelled() -> bool:
            return generation != self._generation

        if cancelled():
            return
        key = (id(self.source), view, self.pixels, json.dumps(settings, sort_keys=True, default=repr))
        cached = RESULTS.get(key)
        if cached is not None and cached[0] is self.source:
            self.run_on_page(partial(self._show, generation, cached[1], None))
            return
        try:
            if recomputes(self.source, view, self.pixels, settings):
                coarse = compute_view(self.source, view, coarse_pixels(self.pixels), settings,
                                      cancelled=cancelled, measure=False)
                self.run_on_page(partial(self._show, generation, coarse, None, final=False))
            result = compute_view(self.source, view, self.pixels, settings, cancelled=cancelled,
                                  on_block=lambda done, total: self.run_on_page(
                                      partial(self._progress, generation, done, total)))
        except ViewCancelled:
            return
        except Exception as err:  # noqa: BLE001  (shown in the page; the server must go on)
            log.exception("computing view %s failed", view)
            self.run_on_page(partial(self._show, generation, None, f"{type(err).__name__}: {err}"))
            return
        RESULTS.put(key, (self.source, result))
        self.run_on_page(partial(self._show, generation, result, None))

    def run_on_page(self, callback) -> None:
        """Run ``callback`` where the page may be changed: the session's event loop when served."""
        if self._doc is None:
            with _BUILDING:
                callback()
        elif self._doc.session_context is not None:
            self._doc.add_next_tick_callback(callback)

    def _progress(self, generation: int, done: int, total: int) -> None:
        if generation != self._generation:
            return
        self.progress.max, self.progress.value, self.progress.visible = total, done, True
        shown = "coarse picture shown; " if self._coarse else ""
        self.status.object = f"{shown}computing: {done}/{total} blocks"

    def _finish(self, status: str) -> None:
        self.plot.loading = False
        self.progress.visible = False
        self.cancel.disabled = True
        self.status.object = status

    def _show(self, generation: int, result: ViewResult | None, error: str | None, final: bool = True) -> None:
        if generation != self._generation:
            return
        if error is not None:
            self.dimension.object = ""
            self._finish(f"error: {error}")
            return
        self.plot.loading = False
        self.result = result
        self.png.disabled = False
        self._redraw()
        self.window.object = window_text(self.axes, result.view, result)
        if not final:
            self._coarse = True
            self.status.object = f"coarse picture ({' x '.join(map(str, result.shape))} points); refining ..."
            return
        self._finish("done")
        self.dimension.object = dimension_text(result)
        self.fit_plot.object = self._fit_figure()

    def cancel_view(self) -> None:
        """Stop computing the requested view; the plot keeps the last picture shown."""
        self._generation += 1
        SCHEDULER.discard(self)
        self._finish("cancelled: the plot shows the last picture computed")
        if self.result is not None:
            self.window.object = window_text(self.axes, self.result.view, self.result)
            self.dimension.object = dimension_text(self.result)

    def _fit_figure(self):
        from matplotlib.figure import Figure

        if isinstance(self.result.dimension, str):
            return None
        fig = Figure(figsize=(4, 3.1))
        self.result.dimension.plot(fig.add_subplot())
        return fig

    def rgba(self) -> np.ndarray:
        """The 2-D view as shown, RGBA rows from the top."""
        return shade_view(self.result.picture, self.readout.value, self.cmap.value, self.how.value)

    def _redraw(self) -> None:
        self.cmap.disabled = self.readout.value in ("both", "fraction_diverged")  # fixed class colours
        if self.result is not None:
            self.pipe.send(self._element(self.rgba() if len(self.axes) == 2 else None))

    def reset_view(self) -> None:
        """Back to the whole map, on a fresh figure."""
        self.view = full_view(self.axes)
        self.plot.object = self._dynamic_map()
        self.request(self.view)

    # -- exports -------------------------------------------------------------

    def window_toml(self) -> str:
        """The current window as a config ``fractalscape map`` runs at full resolution."""
        import tomli_w

        config = settings_config(self.source, self.settings())
        num = export_num(self.axes, self.pixels, self.export_points.value)
        lines = ["# fractalscape window exported from the dashboard; run: fractalscape map THIS.toml --out DIR"]
        return "\n".join(lines) + "\n" + tomli_w.dumps(window_config(config, self.view, num))

    def png_bytes(self) -> io.BytesIO:
        """PNG of the current view: the 2-D picture as shown, or the 1-D plot of its points."""
        if self.result is None:
            raise RuntimeError("no view has been drawn yet: export the PNG once the first picture is shown")
        buffer = io.BytesIO()
        if len(self.axes) == 2:
            from PIL import Image

            Image.fromarray(self.rgba(), "RGBA").save(buffer, format="png")
        else:
            from fractalscape.plot import plot_map

            plot_map(self.result.picture, buffer)
        buffer.seek(0)
        return buffer

    def close(self, wait: bool = False, timeout: float | None = 60.0) -> bool:
        """Drop this session's waiting view and stop its running one at the next band.

        With ``wait``, return once nothing of this session runs any more (at
        most one band later, or ``timeout`` seconds); whether it got there.
        """
        self._generation += 1
        SCHEDULER.discard(self)
        return SCHEDULER.wait(self, timeout) if wait else True
