"""The package's version, from git tags (setuptools-scm).

A build (``pip install .`` or ``pip install -e .``) writes the version that
setuptools-scm derives from ``git describe`` into ``_scm_version.py`` (not
tracked): ``0.3.0`` at the tag ``v0.3.0``, ``0.3.1.dev4+g1a2b3c4`` four commits
after it; a clone without tags counts from ``fallback_version`` in
pyproject.toml. A checkout that was never built falls back to the installed
distribution's metadata, then to ``0+unknown``. A release is a tag: ``git tag
v0.4.0`` on main, then build.
"""

try:
    from fractalscape._scm_version import version as __version__
except ImportError:  # a source tree that was never built
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("fractalscape")
    except PackageNotFoundError:
        __version__ = "0+unknown"
