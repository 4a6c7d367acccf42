"""``import fractalscape`` is light; every public name loads on first use, and stays itself."""

import subprocess
import sys

import fractalscape as fs


def _python(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_import_loads_neither_numba_nor_dask_nor_xarray():
    out = _python("import sys, fractalscape; print(sorted(m for m in ('numba', 'dask', 'xarray', 'zarr', "
                  "'matplotlib', 'datashader') if m in sys.modules))")
    assert out == "[]"


def test_help_loads_no_kernels():
    out = _python("import sys\nfrom click.testing import CliRunner\nfrom fractalscape.cli import main\n"
                  "r = CliRunner().invoke(main, ['--help'])\nassert r.exit_code == 0, r.output\n"
                  "print(sorted(m for m in ('numba', 'dask', 'xarray') if m in sys.modules))")
    assert out == "[]"


def test_every_public_name_resolves_to_its_definition():
    for name in fs.__all__:
        value = getattr(fs, name)
        assert value is not None and name in dir(fs)
        if name != "__version__":
            assert getattr(value, "__name__", name) == name, (name, value)


def test_a_submodule_import_leaves_the_function_of_the_same_name():
    # Importing fractalscape.zoom (the package) binds it to fractalscape.zoom; the function must stay.
    out = _python("import fractalscape as fs\nimport fractalscape.zoom.video, fractalscape.dimension, "
                  "fractalscape.render, fractalscape.audit.balls\n"
                  "print([type(getattr(fs, n)).__name__ for n in ('zoom', 'dimension', 'render', 'audit')])")
    assert out == "['function', 'function', 'function', 'function']"


def test_accessor_is_registered_when_xarray_is_already_loaded():
    out = _python("import xarray, fractalscape\nprint(hasattr(xarray.Dataset, 'fractalscape'))")
    assert out == "True"


def test_submodules_are_attributes_as_before():
    out = _python("import fractalscape as fs\nprint(fs.config.__name__, fs.store.__name__)\n"
                  "try:\n    fs.nosuch\nexcept AttributeError as err:\n    print(err)")
    assert out.splitlines() == ["fractalscape.config fractalscape.store",
                                "module 'fractalscape' has no attribute 'nosuch'"]
