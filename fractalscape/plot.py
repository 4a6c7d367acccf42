"""The PNG ``fractalscape map`` writes: 1-D maps with matplotlib, 2-D and 3-D with datashader.

A 1-D map larger than the picture is drawn from its coarsest overview level
of at least ``MAX_POINTS_1D / 2`` cells (:mod:`fractalscape.overviews`: each
cell's mean escape step, diverged where most of its points are), or, without
overviews, read with a stride, so only the points shown are loaded; 2-D maps
go through :func:`fractalscape.render.render`, which reads the coarsest
overview level that fills the picture, or aggregates every point block by
block. Figures are drawn by Agg outside pyplot, so the caller's matplotlib
backend is left as it is.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from fractalscape.render import agg_figure, render

#: Most points read along the axis of a 1-D map.
MAX_POINTS_1D = 2**16
#: Map area of 2-D pictures, in pixels.
SIZE_2D = (1000, 800)


def _axis_values(coord: xr.DataArray) -> tuple[np.ndarray, str]:
    values = np.asarray(coord.values, dtype=np.float64)
    if coord.attrs.get("scale") == "log":
        return np.log10(values), f"log10 {coord.name}"
    return values, str(coord.name)


def plot_map(ds: xr.Dataset, path) -> None:
    """Draw a 1-D, 2-D or 3-D map to a PNG at ``path`` (a file name or a binary file object).

    1-D: escape step against the axis, converged points as a band at the
    bottom. 2-D: :func:`fractalscape.render.render`. 3-D: the middle slice of
    the last axis, rendered as 2-D.

    Examples
    --------
    >>> import os, tempfile, fractalscape as fs
    >>> ds = fs.trainability(fs.landscape("quadratic"),
    ...                      fs.Grid([fs.Axis("lr", 0.0, 1.5, 31)]), steps=50)
    >>> path = os.path.join(tempfile.mkdtemp(), "map.png")
    >>> plot_map(ds, path)
    >>> os.path.getsize(path) > 0
    True
    """
    from fractalscape.overviews import overview_for

    if "p_diverged" in ds:
        _plot_probability(ds, path)
        return
    dims = ds.escape_step.dims
    if len(dims) == 3:
        ds = ds.isel({dims[2]: ds.sizes[dims[2]] // 2})
    if len(dims) >= 2:
        render(ds, *SIZE_2D, path=path)
        return
    step = max(1, math.ceil(ds.sizes[dims[0]] / MAX_POINTS_1D))
    level = overview_for(ds, (MAX_POINTS_1D // 2,), (None,)) if step > 1 else None
    if level is not None:
        diverged = level.fraction_diverged.values >= 0.5
        escape = np.where(diverged, level.escape_step.values, -1)
        shown = f"means over cells of {level.attrs['overview_factor']} points"
        ds = level
    else:
        ds = ds.isel({dims[0]: slice(None, None, step)})
        escape = ds.escape_step.values
        diverged = escape >= 0
        shown = f"every {step}th point shown"
    fig = agg_figure(8, 6, 120, layout=None)
    ax = fig.add_subplot()
    x, xlabel = _axis_values(ds[dims[0]])
    ax.scatter(x[diverged], escape[diverged] + 1, s=0.5, c="tab:red", lw=0, label="diverged")
    ax.scatter(x[~diverged], np.full((~diverged).sum(), 0.5), s=0.5, c="tab:blue", lw=0,
               label="converged (never escaped)")
    ax.set_yscale("log")
    ax.set_ylabel("escape step + 1")
    ax.set_xlabel(xlabel)
    ax.legend(loc="upper left", markerscale=10)
    title = f"{ds.attrs.get('model', 'map')}, {ds.attrs.get('steps')} steps"
    if step > 1:
        title += f" ({shown})"
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)



def _plot_probability(ds: xr.Dataset, path) -> None:
    """An ensemble map: 1-D, p_diverged with its Wilson band; 2-D, rendered (converged blue, diverged red)."""
    dims = ds.p_diverged.dims
    if len(dims) == 2:
        render(ds, *SIZE_2D, path=path)
        return
    step = max(1, math.ceil(ds.sizes[dims[0]] / MAX_POINTS_1D))
    ds = ds.isel({dims[0]: slice(None, None, step)})
    x, xlabel = _axis_values(ds[dims[0]])
    fig = agg_figure(8, 5, 120, layout=None)
    ax = fig.add_subplot()
    ax.fill_between(x, ds.p_low.values, ds.p_high.values, color="tab:purple", alpha=0.25, lw=0,
                    label="Wilson 95 % interval")
    ax.plot(x, ds.p_diverged.values, color="tab:purple", lw=0.6, label="p_diverged")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"fraction of {int(ds.n.max())} members that diverged")
    ax.legend(loc="upper left")
    ax.set_title(f"{ds.attrs.get('model', 'map')}, {ds.attrs.get('steps')} steps, ensemble over "
                 f"{ds.p_diverged.attrs.get('ensemble', '')}" + (f" (every {step}th point shown)" if step > 1 else ""))
    fig.tight_layout()
    fig.savefig(path)
