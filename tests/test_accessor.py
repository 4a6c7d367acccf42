"""``ds.fractalscape`` gives what the plain functions give, on fresh and on stored maps."""

import numpy as np
import pytest

import fractalscape as fs
import fractalscape.accessor  # noqa: F401  (registers ds.fractalscape until fractalscape imports it)
from fractalscape.plot import plot_map
from tests.helpers import raise_if_dask_computes

LAND = fs.landscape("cosine-additive", delta=0.2, wavelength=0.1)


@pytest.fixture(scope="module")
def map_1d():
    return fs.trainability(LAND, fs.Grid([fs.Axis("lr", 0.0, 1.5, 2**10 + 1, chunk=300)]), x0=1.0, steps=200)


@pytest.fixture(scope="module")
def map_2d():
    grid = fs.Grid([fs.Axis("lr", 0.5, 1.5, 64, chunk=24), fs.Axis("x0", -1.0, 1.0, 64, chunk=40)])
    return fs.trainability(LAND, grid, steps=200)


@pytest.fixture(scope="module")
def stored_2d(map_2d, tmp_path_factory):
    out = tmp_path_factory.mktemp("map")
    fs.write_map(map_2d, out)
    return fs.open_map(out)


def _image(fig):
    return np.asarray(fig.axes[0].images[0].get_array())


@pytest.mark.parametrize("method", ["dyadic", "boxcount", "median-slope"])
def test_dimension_of_a_1d_map_is_the_function_s(map_1d, method):
    assert map_1d.fractalscape.dimension(method).to_dict() == fs.dimension(map_1d.diverged, method).to_dict()


@pytest.mark.parametrize("which", ["map_2d", "stored_2d"])
def test_dimension_of_a_2d_map_is_the_function_s(which, request):
    ds = request.getfixturevalue(which)
    got = ds.fractalscape.dimension(fit_range=(1, 8)).to_dict()
    assert got == fs.dimension(ds.diverged, fit_range=(1, 8)).to_dict()
    assert 0.9 <= got["dimension"] <= 2.0


@pytest.mark.parametrize("which", ["map_1d", "map_2d", "stored_2d"])
def test_boundary_is_the_function_s_and_lazy(which, request):
    ds = request.getfixturevalue(which)
    with raise_if_dask_computes():
        edge = ds.fractalscape.boundary()
    expected = fs.boundary(ds.diverged.compute())
    np.testing.assert_array_equal(edge.values, expected.values)
    assert edge.dims == ds.diverged.dims and edge.values.any()


def test_stored_map_gives_the_fresh_map_s_numbers(map_2d, stored_2d):
    fits = stored_2d.fractalscape.dimension(fit_range=(1, 8)), map_2d.fractalscape.dimension(fit_range=(1, 8))
    assert fits[0].to_dict() == fits[1].to_dict()
    np.testing.assert_array_equal(stored_2d.fractalscape.boundary().values, map_2d.fractalscape.boundary().values)


@pytest.mark.parametrize("which", ["map_2d", "stored_2d"])
def test_render_is_the_function_s(which, request):
    ds = request.getfixturevalue(which)
    fig = ds.fractalscape.render(32, 24, how="linear")
    expected = fs.render(ds, 32, 24, how="linear")
    np.testing.assert_array_equal(_image(fig), _image(expected))
    assert fig.axes[0].get_xlabel() == "lr"


@pytest.mark.parametrize("which", ["map_1d", "map_2d"])
def test_plot_is_plot_map_s_png_and_displays_inline(which, request, tmp_path):
    ds = request.getfixturevalue(which)
    png = ds.fractalscape.plot(tmp_path / "accessor.png")
    plot_map(ds, tmp_path / "plain.png")
    assert png._repr_png_() == png.data == (tmp_path / "accessor.png").read_bytes()
    assert png.data == (tmp_path / "plain.png").read_bytes()
    assert png.data.startswith(b"\x89PNG")


def test_ensemble_map_boundary_is_that_of_p_diverged_at_the_level():
    grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 2**7 + 1), fs.Axis("x0", -1.5, 1.5, 5, ensemble=True)])
    ds = fs.trainability(LAND, grid, steps=100)
    expected = fs.boundary(ds.p_diverged.compute() >= 0.25)
    edge = ds.fractalscape.boundary(level=0.25)
    assert edge.dims == ("lr",)
    np.testing.assert_array_equal(edge.values, expected.values)
    got = ds.fractalscape.dimension("dyadic", level=0.25)
    assert got.to_dict() == fs.dimension(ds.p_diverged, "dyadic", level=0.25).to_dict()


def test_a_dataset_without_labels_is_refused_with_what_it_holds():
    import xarray as xr

    with pytest.raises(ValueError, match=r"no 'diverged' or 'p_diverged'.*\['loss'\]"):
        xr.Dataset({"loss": ("lr", np.zeros(3))}).fractalscape.boundary()
