"""``ds.fractalscape``: the map verbs as methods of a trainability Dataset.

Registered on :class:`xarray.Dataset` when :mod:`fractalscape` is imported,
as rioxarray's ``.rio`` and xarray-spatial's accessors are. It works on what
:func:`fractalscape.trainability` returns and on a stored map opened with
:func:`fractalscape.open_map`. Every method calls the public function of the
same name with the Dataset as its first argument: there is no second
implementation, so results are identical to the plain calls.

Only xarray is imported here, so registering the accessor costs nothing;
each method imports what it needs when it is called.
"""

from __future__ import annotations

import xarray as xr


class PNG:
    """PNG bytes that Jupyter displays inline (``_repr_png_``).

    Attributes
    ----------
    data : bytes
        The encoded picture; ``open(path, "wb").write(png.data)`` saves it.
    """

    def __init__(self, data: bytes):
        self.data = data

    def _repr_png_(self) -> bytes:
        return self.data

    def __repr__(self) -> str:
        return f"<PNG picture, {len(self.data)} bytes>"


@xr.register_dataset_accessor("fractalscape")
class FractalscapeAccessor:
    """Methods of a trainability map: ``ds.fractalscape.render()``, ``.dimension()``, ``.boundary()``, ``.plot()``.

    Examples
    --------
    >>> import fractalscape as fs
    >>> grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 257)])
    >>> ds = fs.trainability(fs.landscape("cosine-additive"), grid, steps=100)
    >>> ds.fractalscape.dimension("dyadic").dimension == fs.dimension(ds, "dyadic").dimension
    True
    """

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def render(self, width: int = 1000, height: int = 1000, **options):
        """:func:`fractalscape.render` of this 2-D map: a matplotlib Figure.

        ``options`` are render's (``x_range``, ``y_range``, ``how``, ``path``, ``colors``).
        Jupyter shows the Figure inline after ``%matplotlib inline`` (render
        switches matplotlib to its Agg backend, which registers no display).

        Examples
        --------
        >>> import fractalscape as fs
        >>> grid = fs.Grid([fs.Axis("lr", 0.5, 1.5, 64), fs.Axis("x0", -1.0, 1.0, 48)])
        >>> ds = fs.trainability(fs.landscape("cosine-additive"), grid, steps=50)
        >>> ds.fractalscape.render(32, 24).axes[0].get_xlabel()
        'lr'
        """
        from fractalscape.render import render

        return render(self._ds, width, height, **options)

    def dimension(self, method: str = "boxcount", **options):
        """:func:`fractalscape.dimension` of this map's boundary (``diverged``, or ``p_diverged`` of an ensemble).

        ``options`` are dimension's (``fit_range``, ``level``, ``interval``, ...);
        ``interval=True`` works here because the Dataset carries its config.

        Examples
        --------
        >>> import fractalscape as fs
        >>> grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 1025)])
        >>> ds = fs.trainability(fs.landscape("cosine-multiplicative"), grid, steps=200)
        >>> result = ds.fractalscape.dimension("dyadic")
        >>> result.method, result.dimension == fs.dimension(ds.diverged, "dyadic").dimension
        ('dyadic', True)
        """
        from fractalscape.dimension import dimension

        return dimension(self._ds, method, **options)

    def boundary(self, level: float = 0.5) -> xr.DataArray:
        """:func:`fractalscape.boundary` of ``diverged`` (an ensemble map: of ``p_diverged >= level``), lazy.

        ``level`` only matters for an ensemble map, as in :func:`fractalscape.dimension`.

        Examples
        --------
        >>> import fractalscape as fs
        >>> ds = fs.trainability(fs.landscape("quadratic"), fs.Grid([fs.Axis("lr", 0.0, 1.5, 16)]), steps=50)
        >>> int(ds.fractalscape.boundary().sum())   # one class change, at lr = 1
        1
        """
        from fractalscape.boundary import boundary

        if "p_diverged" in self._ds:  # an ensemble: its members' labels are not the map's
            return boundary((self._ds.p_diverged >= level).rename("p_diverged"))
        if "diverged" in self._ds:
            return boundary(self._ds.diverged)
        raise ValueError(f"no 'diverged' or 'p_diverged' in this Dataset (variables: {sorted(self._ds.data_vars)}); "
                         "pass a map from fractalscape.trainability or fractalscape.open_map")

    def plot(self, path=None) -> PNG:
        """The PNG ``fractalscape map`` draws (:func:`fractalscape.plot.plot_map`), displayed inline by Jupyter.

        1-D maps: escape step against the axis; 2-D: :func:`fractalscape.render`;
        ensembles: ``p_diverged``. Also written to ``path`` when given.

        Examples
        --------
        >>> import fractalscape as fs
        >>> ds = fs.trainability(fs.landscape("quadratic"), fs.Grid([fs.Axis("lr", 0.0, 1.5, 31)]), steps=50)
        >>> ds.fractalscape.plot().data[:8]
        b'\\x89PNG\\r\\n\\x1a\\n'
        """
        import io

        from fractalscape.plot import plot_map

        buffer = io.BytesIO()
        plot_map(self._ds, buffer)
        png = PNG(buffer.getvalue())
        if path is not None:
            with open(path, "wb") as file:
                file.write(png.data)
        return png
