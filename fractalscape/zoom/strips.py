"""Liu-style strips of a 1-D zoom: per keyframe, the learning rate against the label and the escape step.

Liu (2024) shows a 1-D trainability map as a strip: the swept value along
x, converged and diverged as two colours above, and below it the step at
which each diverged point escaped (log scale). One picture per keyframe;
the escape-step axis spans ``1 .. steps`` in every keyframe, so the pictures
of a zoom compare directly. Drawn with matplotlib's object API
(``Figure`` + ``FigureCanvasAgg``): no pyplot, no backend switch, no figure
left open.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: Picture size of a strip, in pixels (even, for H.264).
STRIP_SIZE = (1024, 384)
#: Converged and diverged, as in Sohl-Dickstein's Spectral convention (blue trains, red diverges).
CONVERGED, DIVERGED = "#3288bd", "#d53e4f"


def strip_image(frame: xr.Dataset, *, steps: int, axis_name: str, scale: str = "linear",
                size: tuple[int, int] = STRIP_SIZE) -> np.ndarray:
    """One keyframe of a 1-D zoom as an RGB picture ``(height, width, 3)`` of uint8.

    Parameters
    ----------
    frame : xarray.Dataset
        One frame of a 1-D zoom stack (``stack.isel(frame=i)``: dim ``x``,
        with the axis' values as the coordinate ``axis_name``).
    steps : int
        The map's GD steps: the top of the escape-step axis.
    axis_name, scale : str
        The swept axis and its scale (``"linear"`` or ``"log"``).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> lr = np.linspace(0.0, 2.0, 9)
    >>> frame = xr.Dataset({"diverged": ("x", lr > 1.0), "escape_step": ("x", np.where(lr > 1.0, 5, -1))},
    ...                    coords={"lr": ("x", lr)})
    >>> strip_image(frame, steps=100, axis_name="lr").shape
    (384, 1024, 3)
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    values = np.asarray(frame[axis_name].values, dtype=np.float64)
    diverged = np.asarray(frame.diverged.values, dtype=bool)
    escape = np.asarray(frame.escape_step.values, dtype=np.float64)
    width, height = size
    figure = Figure(figsize=(width / 100, height / 100), dpi=100)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 3]})
    edges = _edges(values, scale)
    top.pcolormesh(edges, [0.0, 1.0], diverged[None, :].astype(np.int8), cmap=ListedColormap([CONVERGED, DIVERGED]),
                   vmin=0, vmax=1, shading="flat", rasterized=True)
    top.set_yticks([])
    top.set_ylabel("label", rotation=0, ha="right", va="center")
    top.set_title(f"converged (blue) / diverged (red) over {len(values)} points", fontsize=9)
    shown = diverged & (escape >= 0)
    bottom.scatter(values[shown], escape[shown] + 1, s=1.5, color=DIVERGED, linewidths=0, rasterized=True)
    bottom.set_yscale("log")
    bottom.set_ylim(0.8, max(int(steps), 1) * 1.25)
    bottom.set_ylabel("escape step + 1")
    bottom.set_xlabel(axis_name)
    if scale == "log":
        bottom.set_xscale("log")
    bottom.set_xlim(edges[0], edges[-1])
    figure.subplots_adjust(left=0.09, right=0.98, top=0.92, bottom=0.13, hspace=0.08)
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


def _edges(values: np.ndarray, scale: str) -> np.ndarray:
    """Cell edges around the points, midway between neighbours (in log10 on a log axis)."""
    u = np.log10(values) if scale == "log" else values
    if len(u) == 1:
        mids = np.array([u[0] - 0.5, u[0] + 0.5])
    else:
        inner = (u[1:] + u[:-1]) / 2
        mids = np.concatenate([[2 * u[0] - inner[0]], inner, [2 * u[-1] - inner[-1]]])
    return 10.0**mids if scale == "log" else mids
