"""The dashboard's "record zoom": the view on screen taken to a chosen depth by :func:`fractalscape.zoom`.

The window on screen, with the controls' settings and one point per screen
pixel, is the zoom's first keyframe; the zoom goes ``depth`` decades into
the window's centre (keyframes at every halving, summary.json, zoom.mp4:
see docs/zoom.md). It runs on a thread of its own, one recording per
process at a time (a second is refused while one runs), so the views go on
meanwhile. The output directory is a relative path under the server's
working directory; recording the same view into the same directory again
resumes an interrupted recording without recomputing its finished keyframes.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import panel as pn

from fractalscape.dashboard.window import check_view_request, settings_config, to_param, window_config
from fractalscape.errors import ConfigError

log = logging.getLogger(__name__)

_lock = threading.Lock()
_recording: list[Path] = []  # the directory of the recording running in this process, if any


def zoom_dir(name: str) -> Path:
    """The directory a recording named ``name`` goes to: under the working directory, nowhere else.

    Examples
    --------
    >>> zoom_dir("zooms/a") == Path.cwd() / "zooms" / "a"
    True
    >>> zoom_dir("../elsewhere")
    Traceback (most recent call last):
    ...
    fractalscape.errors.ConfigError: record into a directory under the server's working directory: give a \
relative path without '..', got '../elsewhere'
    """
    path = Path(name.strip())
    if not name.strip() or path.is_absolute() or ".." in path.parts:
        raise ConfigError("record into a directory under the server's working directory: give a relative path "
                          f"without '..', got {name!r}")
    return Path.cwd() / path


class ZoomRecorder:
    """The "record zoom" controls of one session, and the thread that records.

    Parameters
    ----------
    explorer : fractalscape.dashboard.app.Explorer
        The session whose view (window, settings, plot pixels) is recorded.
    """

    def __init__(self, explorer):
        self.explorer = explorer
        self.thread: threading.Thread | None = None
        two_d = len(explorer.axes) == 2
        self.depth = pn.widgets.FloatInput(label="record zoom: decades", value=1.0, start=0.1, step=0.5, width=100,
                                           visible=two_d)
        self.out = pn.widgets.TextInput(label="into directory", value="fractalscape-zoom", width=130,
                                        visible=two_d)
        self.button = pn.widgets.Button(label="record zoom", color="primary", width=230, visible=two_d)
        self.button.on_click(lambda _event: self.record())
        self.status = pn.pane.Str("", css_classes=["fs-record"], visible=two_d)
        self.widgets = (pn.Row(self.depth, self.out, visible=two_d), self.button, self.status)

    def record(self) -> None:
        """Start recording the current view, unless a recording runs or the request is out of bounds."""
        explorer = self.explorer
        try:
            out = zoom_dir(self.out.value)
            settings = explorer.settings()
            check_view_request(settings, explorer.pixels)
        except ConfigError as err:
            self.status.object = f"not recorded: {err}"
            return
        config = window_config(settings_config(explorer.source, settings), explorer.view, explorer.pixels)
        center = [to_param(a, (lo + hi) / 2) for a, (lo, hi) in zip(explorer.axes, explorer.view)]
        with _lock:
            if _recording:
                self.status.object = f"not recorded: a recording into {_recording[0]} is running"
                return
            _recording.append(out)
        self.status.object = f"recording {self.depth.value} decades into {out} ..."
        self.thread = threading.Thread(target=self._run, args=(config, center, self.depth.value, out),
                                       name="fractalscape-record", daemon=True)
        self.thread.start()

    def _run(self, config: dict, center, depth: float, out: Path) -> None:
        from fractalscape.zoom import SUMMARY_NAME, zoom

        try:
            summary = zoom(config, str(out), center=center, depth=depth, size=self.explorer.pixels)
            files = ", ".join([*summary["files"], SUMMARY_NAME])
            message = (f"recorded {summary['keyframes_total']} keyframes ({summary['keyframes_computed']} computed) "
                       f"into {out}: {files}")
        except ConfigError as err:
            message = f"not recorded: {err}"
        except Exception as err:  # noqa: BLE001  (shown in the page; the server must go on)
            log.exception("recording a zoom into %s failed", out)
            message = f"recording failed: {type(err).__name__}: {err}"
        finally:
            with _lock:
                _recording.clear()
        self.explorer.run_on_page(lambda: setattr(self.status, "object", message))
