"""Billion-pixel maps drawn at screen size with datashader, never loaded whole.

A 2-D map is aggregated block by block (datashader ``Canvas.raster`` on the
dask-backed arrays) down to the picture's size, then shaded as two classes:
diverged pixels by escape step (how fast GD blew up), converged pixels by
final loss (how far it got). A pixel covering both classes takes the class
of the majority of its points.
"""

from __future__ import annotations

import dask
import numpy as np
import xarray as xr

#: Colormaps (colorcet names): diverged side, converged side.
DIVERGED_CMAP = "fire"
CONVERGED_CMAP = "kbc"
HOW = ("eq_hist", "log", "linear")
#: Windows up to this many points are loaded into memory before aggregating.
LOAD_POINTS_MAX = 2**22


def plane(ds: xr.Dataset, x_range, y_range, variable: str = "escape_step") -> tuple[xr.Dataset, dict]:
    """The 2-D window of a map to draw, with log axes replaced by their log10 (evenly spaced) values.

    Returns the windowed Dataset (lazy if ``ds`` is) and the axis labels;
    ``variable``'s dimensions are the map's axes.
    """
    from fractalscape.errors import ConfigError

    dims = ds[variable].dims
    if len(dims) != 2:
        raise ConfigError(
            f"render takes a 2-D map, this one has axes {dims}; "
            "select a plane first (e.g. ds.isel(x0=0)) or use fractalscape.plot.plot_map for 1-D maps"
        )
    labels = {}
    for dim, window in zip(dims, (x_range, y_range)):
        if window is not None:
            lo, hi = sorted(window)
            values = ds[dim].values
            inside = np.flatnonzero((values >= lo) & (values <= hi))
            if inside.size < 2:
                raise ConfigError(f"range {window} of axis {dim!r} holds fewer than 2 grid points")
            ds = ds.isel({dim: slice(inside[0], inside[-1] + 1)})
        if ds[dim].attrs.get("scale") == "log":
            ds = ds.assign_coords({dim: np.log10(ds[dim].values)})
            labels[dim] = f"log10 {dim}"
        else:
            labels[dim] = dim
    return ds, labels


def aggregate(ds: xr.Dataset, width: int, height: int, x_range=None, y_range=None) -> xr.Dataset:
    """Downsample a 2-D map to ``width x height`` pixels, block by block.

    Returns a small in-memory Dataset with, per pixel, ``fraction_diverged``,
    ``escape_step`` (mean over its diverged points) and ``log10_final_loss``
    (mean over its converged points). The first axis is horizontal. Only the
    blocks inside ``x_range``/``y_range`` are read: once if the window holds
    at most :data:`LOAD_POINTS_MAX` points (it is loaded), else once per
    layer, never more than a few blocks at a time.
    """
    import datashader as dsh

    window, labels = plane(ds, x_range, y_range)
    if window.escape_step.size <= LOAD_POINTS_MAX:
        window = window.load()  # one pass over the blocks instead of one per layer
    xdim, ydim = window.escape_step.dims
    diverged = window.escape_step >= 0
    layers = {
        "fraction_diverged": diverged.astype(np.float64),
        "escape_step": window.escape_step.where(diverged).astype(np.float64),
        "log10_final_loss": np.log10(np.abs(window.final_loss.where(~diverged)) + 1e-300),
    }
    canvas = dsh.Canvas(plot_width=width, plot_height=height)
    rasters = {
        name: canvas.raster(layer.transpose(ydim, xdim).rename({xdim: "x", ydim: "y"}), agg="mean")
        for name, layer in layers.items()
    }
    # datashader optimizes each layer's graph on its own, so a dask-backed window
    # larger than LOAD_POINTS_MAX is read once per layer.
    (result,) = dask.compute(xr.Dataset(rasters))
    result.attrs.update(x_label=labels[xdim], y_label=labels[ydim])
    return result


def shade(agg: xr.Dataset, how: str = "eq_hist") -> np.ndarray:
    """RGBA image (uint8, rows from the top) of an :func:`aggregate` result.

    ``how="eq_hist"`` is Sohl-Dickstein's CDF restretch (histogram
    equalisation of each class's values); ``"log"`` and ``"linear"`` scale the
    values directly.
    """
    import colorcet
    import datashader.transfer_functions as tf

    from fractalscape.errors import ConfigError

    if how not in HOW:
        raise ConfigError(f"how must be one of {', '.join(HOW)}, got {how!r}")
    diverged = agg.fraction_diverged >= 0.5
    escape = agg.escape_step.where(diverged)
    loss = agg.log10_final_loss.where(~diverged & agg.log10_final_loss.notnull())
    # 'log' on log10 loss values would be a double log: shift losses to be positive instead.
    loss_how = "linear" if how == "log" else how
    images = []
    for values, cmap, scale in ((escape + 1, DIVERGED_CMAP, how), (loss, CONVERGED_CMAP, loss_how)):
        if bool(values.notnull().any()):
            images.append(tf.shade(values, cmap=getattr(colorcet, cmap), how=scale))
    if not images:
        return np.zeros(agg.fraction_diverged.shape + (4,), np.uint8)
    image = tf.stack(*images) if len(images) > 1 else images[0]
    rgba = image.to_numpy().view(np.uint8).reshape(image.shape + (4,))
    return rgba[::-1]  # datashader's first row is the bottom one


#: Colormap of ensemble maps' p_diverged: converged blue (0) to diverged red (1).
PROBABILITY_CMAP = "RdBu_r"


def _render_probability(ds: xr.Dataset, width: int, height: int, x_range, y_range):
    """An ensemble map's ``p_diverged``, aggregated to the picture's pixels (mean), 0 blue to 1 red."""
    import datashader as dsh
    from matplotlib.figure import Figure

    window, labels = plane(ds, x_range, y_range, "p_diverged")
    xdim, ydim = window.p_diverged.dims
    p = window.p_diverged.transpose(ydim, xdim).rename({xdim: "x", ydim: "y"})
    (agg,) = dask.compute(dsh.Canvas(plot_width=width, plot_height=height).raster(p, agg="mean"))
    dpi = 100
    fig = Figure(figsize=(width / dpi + 2.2, height / dpi + 1.0), dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    x, y = agg.x.values, agg.y.values
    image = ax.imshow(agg.values, extent=(x[0], x[-1], y[0], y[-1]), origin="lower", aspect="auto",
                      interpolation="nearest", cmap=PROBABILITY_CMAP, vmin=0.0, vmax=1.0)
    ax.set_xlabel(labels[xdim])
    ax.set_ylabel(labels[ydim])
    ensemble = ds.p_diverged.attrs.get("ensemble", "")
    ax.set_title(f"{ds.attrs.get('model', 'map')}, {ds.attrs.get('steps', '?')} steps: fraction of the "
                 f"{int(ds.n.max())} members ({ensemble}) that diverged", fontsize=9)
    bar = fig.colorbar(image, ax=ax, shrink=0.7, pad=0.01, aspect=30)
    bar.set_label("p_diverged (0 converged, 1 diverged)", fontsize=8)
    return fig


#: Colour conventions: ``"classes"`` (two colormaps, escape step and final loss), ``"sohl-dickstein"``
#: (his: Spectral, converged blue, diverged red, intensity from the score; networks), ``"auto"`` (his for
#: network maps, classes otherwise).
COLORS = ("auto", "classes", "sohl-dickstein")


def _render_sohl_dickstein(ds: xr.Dataset, width: int, height: int, x_range, y_range):
    """A network map in Sohl-Dickstein's colours, read with a stride down to about the picture's size."""
    from matplotlib.figure import Figure

    from fractalscape.zoom.video import color_scale, colorize

    window, labels = plane(ds, x_range, y_range, "diverged")
    xdim, ydim = window.diverged.dims
    stride = {xdim: max(1, window.sizes[xdim] // width), ydim: max(1, window.sizes[ydim] // height)}
    window = window[["diverged", "score"]].isel({d: slice(None, None, s) for d, s in stride.items()}).load()
    image = colorize(window, color_scale(window))
    dpi = 100
    fig = Figure(figsize=(width / dpi + 1.2, height / dpi + 1.0), dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    x, y = window[xdim].values, window[ydim].values
    ax.imshow(image, extent=(x[0], x[-1], y[0], y[-1]), aspect="auto", interpolation="nearest")
    ax.set_xlabel(labels[xdim])
    ax.set_ylabel(labels[ydim])
    shown = "" if max(stride.values()) == 1 else f", every {stride[xdim]} x {stride[ydim]}th point"
    ax.set_title(f"{ds.attrs.get('model', 'map')}, {ds.attrs.get('steps', '?')} steps{shown}\n"
                 "Sohl-Dickstein's colours: converged blue, diverged red, intensity from the score", fontsize=8)
    return fig


def render(ds: xr.Dataset, width: int = 1000, height: int = 1000, x_range=None, y_range=None,
           how: str = "eq_hist", path=None, colors: str = "auto"):
    """Draw a 2-D map at ``width x height`` with axes, tick labels and a legend.

    An ensemble map (:mod:`fractalscape.ensemble`) is drawn as its
    ``p_diverged`` over the other two axes, converged blue to diverged red.

    Parameters
    ----------
    ds : xarray.Dataset
        A 2-D map (from :func:`fractalscape.trainability` or
        :func:`fractalscape.open_map`), dask-backed or in memory; it is read
        block by block and never computed at full resolution.
    width, height : int
        Size of the picture's map area in pixels (one pixel aggregates many points).
    x_range, y_range : (float, float), optional
        Window in the axes' units (the first axis is horizontal).
    how : {"eq_hist", "log", "linear"}
        Colour scaling; ``eq_hist`` is the CDF restretch.
    path : str or Path, optional
        Where to write the PNG.
    colors : {"auto", "classes", "sohl-dickstein"}
        ``"sohl-dickstein"``: his convention for network maps (matplotlib's
        Spectral, converged blue, diverged red, intensity from his score,
        each class histogram-equalised), so a picture can be set beside his
        figures; ``"classes"``: diverged by escape step, converged by final
        loss; ``"auto"``: his for network maps, else classes.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import fractalscape as fs
    >>> grid = fs.Grid([fs.Axis("lr", 0.5, 1.5, 64), fs.Axis("x0", -1.0, 1.0, 48)])
    >>> ds = fs.trainability(fs.landscape("cosine-additive"), grid, steps=50)
    >>> fig = render(ds, 32, 24)
    >>> fig.axes[0].get_xlabel()
    'lr'
    """
    import colorcet
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from fractalscape.errors import ConfigError

    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
            raise ConfigError(f"{name} must be an integer >= 2 pixels, got {value!r}")
    if colors not in COLORS:
        raise ConfigError(f"colors must be one of {', '.join(COLORS)}, got {colors!r}")
    if colors == "sohl-dickstein" and "score" not in ds:
        raise ConfigError("colors='sohl-dickstein' reads a network map's score; this map has none: use 'classes'")
    special = None
    if "p_diverged" in ds:
        special = _render_probability
    elif colors == "sohl-dickstein" or (colors == "auto" and "score" in ds):
        special = _render_sohl_dickstein
    if special is not None:
        fig = special(ds, width, height, x_range, y_range)
        if path is not None:
            fig.savefig(path, dpi=100)
        return fig
    agg = aggregate(ds, width, height, x_range, y_range)
    rgba = shade(agg, how)
    x, y = agg.x.values, agg.y.values
    dpi = 100
    fig, ax = plt.subplots(figsize=(width / dpi + 3.2, height / dpi + 1.0), dpi=dpi, layout="constrained")
    ax.imshow(rgba, extent=(x[0], x[-1], y[0], y[-1]), aspect="auto", interpolation="nearest")
    ax.set_xlabel(agg.attrs["x_label"])
    ax.set_ylabel(agg.attrs["y_label"])
    ax.set_title(f"{ds.attrs.get('model', 'map')}, {ds.attrs.get('steps', '?')} steps", fontsize=9)
    for cmap, label in ((DIVERGED_CMAP, f"diverged: escape step ({how})"),
                        (CONVERGED_CMAP, f"converged: log10 final loss ({how})")):
        mappable = plt.cm.ScalarMappable(cmap=ListedColormap(getattr(colorcet, cmap)))
        bar = fig.colorbar(mappable, ax=ax, shrink=0.7, pad=0.01, aspect=30)
        bar.set_ticks([0, 1], labels=["low", "high"])
        bar.set_label(label, fontsize=8)
    if path is not None:
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
    return fig
