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

#: Landscape maps (and zoom videos): diverged pixels in reds by escape step, converged ones in blues by
#: log10 final loss, both from mid to dark tones (matplotlib colormaps over CLASS_TONES), so that the two
#: hues stay apart at every intensity; dark is the low end (blew up at once, lowest loss).
DIVERGED_CMAP = "Reds"
CONVERGED_CMAP = "Blues"
CLASS_TONES = (0.35, 1.0)
HOW = ("eq_hist", "log", "linear")
#: Tick marks on each colour bar.
BAR_TICKS = 5
#: Windows up to this many points are loaded into memory before aggregating.
LOAD_POINTS_MAX = 2**22


#: Most pixels of one picture (its float64 layers take about 24 bytes a pixel).
MAX_PIXELS = 8192 * 8192


def class_lut(cmap: str, tones=CLASS_TONES) -> np.ndarray:
    """A class's colours, ``(256, 3)`` uint8, dark (low values) first.

    Examples
    --------
    >>> lut = class_lut(DIVERGED_CMAP)
    >>> lut.shape, bool(lut[0].sum() < lut[-1].sum()), bool(lut[0, 0] > lut[0, 2])  # dark to light, red
    ((256, 3), True, True)
    """
    import matplotlib

    colours = matplotlib.colormaps[cmap](np.linspace(tones[1], tones[0], 256))[:, :3]
    return (colours * 255).round().astype(np.uint8)


def _hex(lut: np.ndarray) -> list[str]:
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in lut]


def bar_ticks(values: np.ndarray, how: str, n: int = BAR_TICKS) -> tuple[np.ndarray, np.ndarray]:
    """Positions (0 .. 1 along a colour bar) and the values shaded there, for ``how``.

    ``eq_hist`` puts the ``p``-quantile of the values at position ``p``;
    ``linear`` and ``log`` space the values evenly (in log10 for ``log``)
    between the least and the largest.

    Examples
    --------
    >>> positions, ticks = bar_ticks(np.array([1.0, 10.0, 100.0]), "log", 3)
    >>> positions.tolist(), ticks.tolist()
    ([0.0, 0.5, 1.0], [1.0, 10.0, 100.0])
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    positions = np.linspace(0.0, 1.0, n)
    if values.size == 0:
        return positions, np.full(n, np.nan)
    if how == "eq_hist":
        return positions, np.quantile(values, positions)
    low, high = values.min(), values.max()
    if how == "log" and low > 0:
        return positions, 10.0 ** (np.log10(low) + positions * (np.log10(high) - np.log10(low)))
    return positions, low + positions * (high - low)


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


def _area_weights(cells: int, pixels: int):
    """Sparse ``pixels x cells`` matrix averaging the cells each pixel covers, by the length they overlap."""
    from scipy import sparse

    edges = np.arange(pixels + 1) * (cells / pixels)
    first = np.floor(edges[:-1]).astype(np.int64)
    rows, cols, overlaps = [], [], []
    for k in range(int(np.ceil(cells / pixels)) + 1):
        cell = first + k
        overlap = np.minimum(edges[1:], cell + 1) - np.maximum(edges[:-1], cell)
        keep = (cell < cells) & (overlap > 0)
        rows.append(np.flatnonzero(keep))
        cols.append(cell[keep])
        overlaps.append(overlap[keep])
    weights = sparse.csr_matrix((np.concatenate(overlaps), (np.concatenate(rows), np.concatenate(cols))),
                                shape=(pixels, cells))
    return sparse.diags(1.0 / np.asarray(weights.sum(axis=1)).ravel()) @ weights


def _pixel_centres(values: np.ndarray, pixels: int) -> np.ndarray:
    step = (values[-1] - values[0]) / (values.size - 1)
    lo, hi = values[0] - step / 2, values[-1] + step / 2
    return lo + (np.arange(pixels) + 0.5) * (hi - lo) / pixels


def _aggregate_overview(level: xr.Dataset, width: int, height: int, x_range, y_range) -> xr.Dataset:
    """:func:`aggregate` from an overview level: each pixel's means weighted by its cells' point counts.

    The level has at least as many cells as pixels along each axis, so each
    pixel averages the cells it covers, by area (sparse matrix products:
    no compilation, unlike datashader's raster).
    """
    window, labels = plane(level, x_range, y_range, "fraction_diverged")
    xdim, ydim = window.fraction_diverged.dims
    fraction = window.fraction_diverged.values.astype(np.float64)
    loss = window.log10_final_loss.values.astype(np.float64)
    converged = np.where(np.isnan(loss), 0.0, 1.0 - fraction)
    layers = {
        "fraction_diverged": fraction,
        "escape_weighted": np.nan_to_num(window.escape_step.values.astype(np.float64)) * fraction,
        "converged": converged,
        "loss_weighted": np.nan_to_num(loss) * converged,
    }
    along_x, along_y = _area_weights(fraction.shape[0], width), _area_weights(fraction.shape[1], height)
    coords = {"y": _pixel_centres(window[ydim].values, height), "x": _pixel_centres(window[xdim].values, width)}
    r = {name: xr.DataArray(along_y @ (along_x @ layer).T, dims=("y", "x"), coords=coords)
         for name, layer in layers.items()}
    result = xr.Dataset({
        "fraction_diverged": r["fraction_diverged"],
        "escape_step": (r["escape_weighted"] / r["fraction_diverged"]).where(r["fraction_diverged"] > 0),
        "log10_final_loss": (r["loss_weighted"] / r["converged"]).where(r["converged"] > 0),
    })
    result.attrs.update(x_label=labels[xdim], y_label=labels[ydim], overview_factor=level.attrs["overview_factor"])
    return result


def aggregate(ds: xr.Dataset, width: int, height: int, x_range=None, y_range=None, *,
              notes: list | None = None) -> xr.Dataset:
    """Downsample a 2-D map to ``width x height`` pixels, block by block.

    Returns a small in-memory Dataset with, per pixel, ``fraction_diverged``,
    ``escape_step`` (mean over its diverged points) and ``log10_final_loss``
    (mean over its converged points). The first axis is horizontal.

    A whole map from :func:`fractalscape.open_map` is drawn from the
    coarsest overview level with at least ``width x height`` cells inside
    the window (:func:`fractalscape.overviews.overview_for`; the result's
    ``attrs["overview_factor"]`` says which). Otherwise only the blocks
    inside ``x_range``/``y_range`` are read: once if the window holds at most
    :data:`LOAD_POINTS_MAX` points (it is loaded), else once per layer, never
    more than a few blocks at a time. ``notes``, a list, receives a line when
    the window holds fewer points than pixels (the picture is upsampled:
    ``attrs["upsampled"]``) or the store lacks its overviews.
    """
    import datashader as dsh

    from fractalscape.overviews import overview_for

    level = overview_for(ds, (width, height), (x_range, y_range), notes) if "escape_step" in ds else None
    if level is not None and level.fraction_diverged.ndim == 2:
        return _aggregate_overview(level, width, height, x_range, y_range)
    window, labels = plane(ds, x_range, y_range)
    points = tuple(window.sizes[d] for d in window.escape_step.dims)
    upsampled = points[0] < width or points[1] < height
    if upsampled and notes is not None:
        notes.append(f"note: upsampled: the window holds {points[0]} x {points[1]} stored points for "
                     f"{width} x {height} pixels (fractalscape render --recompute computes it at that resolution)")
    if window.escape_step.size <= LOAD_POINTS_MAX:
        window = window.compute()  # one pass over the blocks (a copy: the caller's Dataset stays lazy)
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
    result.attrs.update(x_label=labels[xdim], y_label=labels[ydim], overview_factor=1, upsampled=int(upsampled))
    return result


def shade(agg: xr.Dataset, how: str = "eq_hist") -> np.ndarray:
    """RGBA image (uint8, rows from the top) of an :func:`aggregate` result.

    ``how="eq_hist"`` is Sohl-Dickstein's CDF restretch (histogram
    equalisation of each class's values); ``"log"`` and ``"linear"`` scale the
    values directly.
    """
    import datashader.transfer_functions as tf

    from fractalscape.errors import ConfigError

    if how not in HOW:
        raise ConfigError(f"how must be one of {', '.join(HOW)}, got {how!r}")
    diverged = agg.fraction_diverged >= 0.5
    escape = agg.escape_step.where(diverged)
    loss = agg.log10_final_loss.where(~diverged & agg.log10_final_loss.notnull())
    # 'log' on log10 loss values would be a double log: shift losses to be positive instead.
    loss_how = "linear" if how == "log" else how
    rgba = np.zeros(agg.fraction_diverged.shape + (4,), np.uint8)
    for values, cmap, scale in ((escape + 1, DIVERGED_CMAP, how), (loss, CONVERGED_CMAP, loss_how)):
        if bool(values.notnull().any()):
            image = tf.shade(values, cmap=_hex(class_lut(cmap)), how=scale)
            layer = image.to_numpy().view(np.uint8).reshape(image.shape + (4,))
            # The classes cover disjoint pixels, each opaque or empty: stacking them is picking the one
            # present (tf.stack would compile datashader's compositing kernels, ~12 s in every process).
            rgba = np.where(layer[..., 3:] > 0, layer, rgba)
    return rgba[::-1]  # datashader's first row is the bottom one


#: Colormap of ensemble maps' p_diverged: converged blue (0) to diverged red (1).
PROBABILITY_CMAP = "RdBu_r"


def _render_probability(ds: xr.Dataset, width: int, height: int, x_range, y_range):
    """An ensemble map's ``p_diverged``, aggregated to the picture's pixels (mean), 0 blue to 1 red."""
    import datashader as dsh

    window, labels = plane(ds, x_range, y_range, "p_diverged")
    xdim, ydim = window.p_diverged.dims
    p = window.p_diverged.transpose(ydim, xdim).rename({xdim: "x", ydim: "y"})
    (agg,) = dask.compute(dsh.Canvas(plot_width=width, plot_height=height).raster(p, agg="mean"))
    dpi = 100
    fig = agg_figure(width / dpi + 2.2, height / dpi + 1.0, dpi)
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
    from fractalscape.zoom.video import color_scale, colorize

    window, labels = plane(ds, x_range, y_range, "diverged")
    xdim, ydim = window.diverged.dims
    stride = {xdim: max(1, window.sizes[xdim] // width), ydim: max(1, window.sizes[ydim] // height)}
    window = window[["diverged", "score"]].isel({d: slice(None, None, s) for d, s in stride.items()}).load()
    image = colorize(window, color_scale(window))
    dpi = 100
    fig = agg_figure(width / dpi + 1.2, height / dpi + 1.0, dpi)
    ax = fig.add_subplot()
    x, y = window[xdim].values, window[ydim].values
    ax.imshow(image, extent=(x[0], x[-1], y[0], y[-1]), aspect="auto", interpolation="nearest")
    ax.set_xlabel(labels[xdim])
    ax.set_ylabel(labels[ydim])
    shown = "" if max(stride.values()) == 1 else f", every {stride[xdim]} x {stride[ydim]}th point"
    ax.set_title(f"{ds.attrs.get('model', 'map')}, {ds.attrs.get('steps', '?')} steps{shown}\n"
                 "Sohl-Dickstein's colours: converged blue, diverged red, intensity from the score", fontsize=8)
    return fig


def agg_figure(width_inches: float, height_inches: float, dpi: int = 100, layout: str | None = "constrained"):
    """A figure drawn by Agg, outside pyplot: no backend switch, nothing left in ``plt.get_fignums()``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_inches, height_inches), dpi=dpi, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def render(ds: xr.Dataset, width: int = 1000, height: int = 1000, x_range=None, y_range=None,
           how: str = "eq_hist", path=None, colors: str = "auto", *, notes: list | None = None):
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
    notes : list, optional
        Receives one line per note (:func:`aggregate`'s: an upsampled
        window, a store without overviews). An upsampled picture says so in
        its title and, as every note, in the PNG's ``Comment`` metadata.

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
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap

    from fractalscape.errors import ConfigError

    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
            raise ConfigError(f"{name} must be an integer >= 2 pixels, got {value!r}")
    if width * height > MAX_PIXELS:
        raise ConfigError(f"{width} x {height} pixels is more than render draws ({MAX_PIXELS:,} pixels, 8192 x 8192: "
                          "its layers take about 24 bytes a pixel); render a window (--x-range/--y-range) or a "
                          "smaller --size")
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
    found = []
    agg = aggregate(ds, width, height, x_range, y_range, notes=found)
    rgba = shade(agg, how)
    x, y = agg.x.values, agg.y.values
    dpi = 100
    fig = agg_figure(width / dpi + 3.2, height / dpi + 1.0, dpi)
    ax = fig.add_subplot()
    ax.imshow(rgba, extent=(x[0], x[-1], y[0], y[-1]), aspect="auto", interpolation="nearest")
    ax.set_xlabel(agg.attrs["x_label"])
    ax.set_ylabel(agg.attrs["y_label"])
    upsampled = " (upsampled: fewer stored points than pixels)" if agg.attrs.get("upsampled") else ""
    ax.set_title(f"{ds.attrs.get('model', 'map')}, {ds.attrs.get('steps', '?')} steps{upsampled}", fontsize=9)
    diverged = agg.fraction_diverged.values >= 0.5
    loss = agg.log10_final_loss.values
    # the values each bar's colours stand for, as shade() stretched them ('log' shades log10 loss linearly)
    for cmap, label, values, scale, offset in (
            (DIVERGED_CMAP, f"diverged: escape step ({how})", agg.escape_step.values[diverged] + 1, how, 1.0),
            (CONVERGED_CMAP, f"converged: log10 final loss ({how})", loss[~diverged & np.isfinite(loss)],
             "linear" if how == "log" else how, 0.0)):
        mappable = ScalarMappable(cmap=ListedColormap(class_lut(cmap) / 255.0))
        bar = fig.colorbar(mappable, ax=ax, shrink=0.7, pad=0.01, aspect=30)
        positions, ticks = bar_ticks(values, scale)
        bar.set_ticks(positions, labels=[f"{t - offset:.3g}" if np.isfinite(t) else "" for t in ticks])
        bar.ax.tick_params(labelsize=7)
        bar.set_label(label, fontsize=8)
    if notes is not None:
        notes.extend(found)
    if path is not None:
        # zlib level 1: a fractal picture barely shrinks at the default 6, which takes seconds a megapixel
        fig.savefig(path, dpi=dpi, metadata={"Comment": " | ".join(found)} if found else None,
                    pil_kwargs={"compress_level": 1})
    return fig


def recompute_window(ds: xr.Dataset, width: int, height: int, x_range=None, y_range=None) -> xr.Dataset | None:
    """The window of a 2-D map recomputed at ``width x height`` points, if it holds fewer stored points.

    Returns None when the stored map already has at least a point per pixel
    inside the window, else the lazy map (:func:`fractalscape.trainability`)
    of the map's configuration (``attrs["config"]``) on the window's grid.
    A window whose pixels would lie closer than the float64 floor
    (:data:`fractalscape.zoom.windows.ULP_FLOOR` ulp) is refused.

    Examples
    --------
    >>> import fractalscape as fs
    >>> ds = fs.open_config({"landscape": {"name": "quadratic"}, "descent": {"steps": 20},
    ...                      "axis": [{"name": "lr", "start": 0.5, "stop": 1.5, "num": 16},
    ...                               {"name": "x0", "start": -1.0, "stop": 1.0, "num": 16}]})
    >>> recompute_window(ds, 64, 64, x_range=(0.9, 1.1)).sizes["lr"]
    64
    """
    from fractalscape.config import config_of, open_config
    from fractalscape.errors import ConfigError
    from fractalscape.zoom.windows import ULP_FLOOR, _resolved

    config = config_of(ds)
    dims = ds.escape_step.dims
    if len(dims) != 2 or len(config["axis"]) != 2:
        raise ConfigError(f"--recompute takes a 2-D map, this one has axes {dims}")
    held = []
    for dim, window in zip(dims, (x_range, y_range)):
        values = ds[dim].values
        lo, hi = sorted(window) if window is not None else (values.min(), values.max())
        held.append(int(((values >= lo) & (values <= hi)).sum()))
    if held[0] >= width and held[1] >= height:
        return None
    axes = []
    for axis, window, num in zip(config["axis"], (x_range, y_range), (width, height)):
        lo, hi = sorted(window) if window is not None else sorted((axis["start"], axis["stop"]))
        entry = {**{k: v for k, v in axis.items() if k != "chunk"}, "start": float(lo), "stop": float(hi),
                 "num": int(num)}
        ok, spacing, floor = _resolved(entry, 0.0, 0, num)
        if not ok:
            raise ConfigError(f"--recompute window {lo!r} .. {hi!r} of axis {axis['name']!r} is past the float64 "
                              f"floor: its {num} pixels would be {spacing:.3g} apart, below {ULP_FLOOR} ulp of the "
                              f"coordinates ({floor:.3g}); widen the window or lower --size")
        axes.append(entry)
    return open_config({**config, "axis": axes})
