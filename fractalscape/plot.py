"""Quick-look PNGs of a map with matplotlib, read at a bounded resolution.

A map larger than the picture is read with a stride, so only the points shown
are loaded; for full-resolution aggregation of huge maps use datashader.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

#: Most points read along an axis for a picture.
MAX_PIXELS = 1024
MAX_POINTS_1D = 2**16


def _strided(ds: xr.Dataset, limit: int) -> xr.Dataset:
    return ds.isel({d: slice(None, None, max(1, math.ceil(ds.sizes[d] / limit))) for d in ds.escape_step.dims})


def _axis_values(coord: xr.DataArray) -> tuple[np.ndarray, str]:
    values = np.asarray(coord.values, dtype=np.float64)
    if coord.attrs.get("scale") == "log":
        return np.log10(values), f"log10 {coord.name}"
    return values, str(coord.name)


def _title(ds: xr.Dataset) -> str:
    return f"{ds.attrs.get('landscape', 'map')}, {ds.attrs.get('steps')} steps"


def plot_map(ds: xr.Dataset, path) -> None:
    """Draw ``escape_step`` of a 1-D, 2-D or 3-D map to a PNG at ``path``.

    1-D: escape step against the axis, converged points as a band at the
    bottom. 2-D: an image, converged points black, diverged ones coloured by
    log escape step. 3-D: the middle slice of the last axis.

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
    dims = ds.escape_step.dims
    if len(dims) == 3:
        ds = ds.isel({dims[2]: ds.sizes[dims[2]] // 2})
        dims = dims[:2]
    ds = _strided(ds, MAX_POINTS_1D if len(dims) == 1 else MAX_PIXELS)
    escape = ds.escape_step.values
    fig, ax = plt.subplots(figsize=(8, 6), dpi=120)
    if len(dims) == 1:
        x, xlabel = _axis_values(ds[dims[0]])
        diverged = escape >= 0
        ax.scatter(x[diverged], escape[diverged] + 1, s=0.5, c="tab:red", lw=0, label="diverged")
        ax.scatter(x[~diverged], np.full((~diverged).sum(), 0.5), s=0.5, c="tab:blue", lw=0,
                   label="converged (never escaped)")
        ax.set_yscale("log")
        ax.set_ylabel("escape step + 1")
        ax.set_xlabel(xlabel)
        ax.legend(loc="upper left", markerscale=10)
    else:
        x, xlabel = _axis_values(ds[dims[0]])
        y, ylabel = _axis_values(ds[dims[1]])
        image = np.where(escape >= 0, np.log10(np.maximum(escape, 0) + 1.0), np.nan).T
        cmap = plt.get_cmap("magma").copy()
        cmap.set_bad("black")
        mesh = ax.imshow(image, origin="lower", aspect="auto", cmap=cmap, interpolation="nearest",
                         extent=(x[0], x[-1], y[0], y[-1]))
        fig.colorbar(mesh, ax=ax, label="log10(escape step + 1); black: converged")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    ax.set_title(_title(ds))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
