"""Explore a trainability map in the browser: zoom in, and the window is recomputed.

``fractalscape serve CONFIG_OR_PRESET | STORE`` runs :func:`serve`. The app
(:func:`build_app`) shows a stored map through datashader while it holds a
point per screen pixel, and recomputes the visible window with the GD
kernels past that (see :mod:`fractalscape.dashboard.window`); beside the map,
the boundary's box-counting dimension, and exports of the view as PNG and as
a config ``fractalscape map`` runs at full resolution.

Needs the ``dashboard`` extra (holoviews, panel, tomli-w).
"""

from __future__ import annotations

import socket
import time

from fractalscape.dashboard.window import Source, check_view_request, open_source

__all__ = ["build_app", "serve"]

#: Seconds :func:`serve` waits for the server to accept connections.
START_TIMEOUT = 30.0


def _app(source: Source, width: int, height: int):
    from fractalscape.dashboard.app import Explorer

    return Explorer(source, width, height)


def build_app(target, *, width: int = 600, height: int = 450):
    """The dashboard of a map or config: a Panel viewable that computes its first view when shown.

    Parameters
    ----------
    target : str, path, dict or xarray.Dataset
        An output directory of ``fractalscape map`` (or its ``map.zarr``), a
        TOML config path, a preset name, a config dict, or a map Dataset.
    width, height : int
        Plot area in screen pixels; recomputed windows have one point per pixel
        (at most 2**21 points in all; each side at least 2).

    Returns
    -------
    fractalscape.dashboard.app.Explorer
        Displays as its ``layout`` (a ``panel.Row``: controls, the zoomable
        map, the boundary panel). Outside a server its first view starts
        computing at once, on the dashboard's worker thread; ``close()``
        stops it (``close(wait=True)`` waits until nothing of it runs).

    Examples
    --------
    >>> app = build_app({"landscape": {"name": "cosine-multiplicative"},
    ...                  "descent": {"steps": 50},
    ...                  "axis": [{"name": "lr", "start": 0.0, "stop": 1.5, "num": 64},
    ...                           {"name": "x0", "start": -2.0, "stop": 2.0, "num": 48}]},
    ...                 width=64, height=48)
    >>> app.layout.name
    'fractalscape'
    >>> app.close(wait=True)
    True
    """
    return _app(open_source(target), width, height)


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def _wait_listening(address: str, port: int, server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and server.is_alive():
        try:
            socket.create_connection((address, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the dashboard server did not start listening on {address}:{port}")


def serve(target, *, address: str = "127.0.0.1", port: int = 0, show: bool = False,
          width: int = 600, height: int = 450):
    """Serve the dashboard of ``target`` in a background thread and print its URL.

    Parameters
    ----------
    target : str, path, dict or xarray.Dataset
        As for :func:`build_app`; it is checked before the server starts.
    address : str
        Interface to listen on; the default serves this machine only (reach
        it from elsewhere through an SSH tunnel, see docs/dashboard.md).
    port : int
        Port; 0 picks a free one.
    show : bool
        Open a browser tab.
    width, height : int
        Plot area in screen pixels.

    Returns
    -------
    panel.io.threads.StoppableThread
        The running server: ``.join()`` to block until it ends, ``.stop()`` to end it.

    Examples
    --------
    >>> server = serve("liu-multiplicative-2d")  # doctest: +ELLIPSIS
    fractalscape dashboard at http://127.0.0.1:.../
    >>> server.stop()
    """
    import panel as pn
    from bokeh.core.validation import silence
    from bokeh.core.validation.warnings import FIXED_SIZING_MODE

    # HoloViews sizes the plot by its frame (frame_width/height), which bokeh's check does not see
    silence(FIXED_SIZING_MODE, True)
    source = open_source(target)  # a bad target (or size) fails here, not in the browser
    check_view_request({}, (width, height)[: len(source.axes)])
    port = port or _free_port(address)
    origins = sorted({f"{host}:{port}" for host in ("localhost", "127.0.0.1", address)})
    def session():  # one app per browser session (panel serves functions, not partials)
        return _app(source, width, height).layout

    server = pn.serve({"/": session}, address=address, port=port,
                      show=show, threaded=True, title="fractalscape", websocket_origin=origins,
                      verbose=False)
    _wait_listening(address, port, server)
    print(f"fractalscape dashboard at http://{address}:{port}/", flush=True)
    return server
