"""Sphinx configuration: the markdown pages through myst-parser, the API from numpydoc docstrings.

Build (from the repository root; -W turns every warning into an error)::

    pip install -e ".[docs]"
    sphinx-build -W -b html docs docs/_build/html
"""

from pathlib import Path

import fractalscape

project = "fractalscape"
copyright = "the fractalscape developers"
author = "the fractalscape developers"
release = fractalscape.__version__
version = release

extensions = [
    "myst_nb",  # markdown pages (myst-parser) and executed notebooks
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
# .rst first: autosummary writes its stub pages with the first suffix, and they are reST
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints", "make_gallery.py",
                    "estimators.py", "img/gallery/gallery.json"]

# The pages link to files of the repository (benchmarks/, examples/): links that are
# not documents are left as they are instead of warned about.
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = [
    "myst.xref_missing",
    "myst.header",
    "config.cache",
]

# The tutorial runs once and is cached (docs/_build/.jupyter_cache) until its code changes.
nb_execution_mode = "cache"
nb_execution_cache_path = str(Path(__file__).parent / "_build" / ".jupyter_cache")  # not relative to the cwd
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True  # the failing cell's traceback in the build log

autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's Parameters section says it
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()

# Each inventory falls back to an empty one, so that a machine that cannot reach a project's
# site (CI reaches only the package index) still builds under -W: sphinx then only notes the
# failure, and links to that project's names stay plain text (nitpicky is off).
_NO_INVENTORY = "_static/empty-objects.inv"
intersphinx_mapping = {
    name: (url, (None, _NO_INVENTORY))
    for name, url in {
        "python": "https://docs.python.org/3",
        "numpy": "https://numpy.org/doc/stable",
        "xarray": "https://docs.xarray.dev/en/stable",
        "dask": "https://docs.dask.org/en/stable",
        "zarr": "https://zarr.readthedocs.io/en/stable",
    }.items()
}
intersphinx_timeout = 5
nitpicky = False

html_theme = "pydata_sphinx_theme"
html_title = f"fractalscape {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
