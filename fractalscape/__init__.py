"""fractalscape: where gradient descent trains and where it blows up.

The flow is grid -> GD kernels -> readout arrays -> boundary -> dimension / render.

The public names load on first use (``import fractalscape`` imports neither
numba nor dask), so that the command line and scripts start fast. The
``ds.fractalscape`` accessor is registered as soon as xarray is loaded
(every function that makes a map loads it).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

from fractalscape._version import __version__

#: Public name -> the module that defines it.
_PUBLIC = {
    "Axis": "fractalscape.grid",
    "audit": "fractalscape.audit",
    "ConfigError": "fractalscape.errors",
    "boundary": "fractalscape.boundary",
    "contours": "fractalscape.boundary",
    "dimension": "fractalscape.dimension",
    "Grid": "fractalscape.grid",
    "Landscape": "fractalscape.landscapes",
    "NetworkModel": "fractalscape.networks",
    "define_landscape": "fractalscape.landscapes",
    "landscape": "fractalscape.landscapes",
    "load_config": "fractalscape.config",
    "open_config": "fractalscape.config",
    "open_map": "fractalscape.store",
    "render": "fractalscape.render",
    "reproduce": "fractalscape.reproduce",
    "sweep": "fractalscape.sweep",
    "write_map": "fractalscape.store",
    "trainability": "fractalscape.trainability",
    "uncertainty": "fractalscape.uncertainty",
    "zoom": "fractalscape.zoom",
}

__all__ = ["__version__", *_PUBLIC]


class _Package(types.ModuleType):
    """Keeps ``fractalscape.zoom`` (and the like) the public function when its submodule loads.

    Importing ``fractalscape.zoom`` binds the submodule to the package's
    attribute ``zoom``; the public name of the same name is bound instead,
    as an eager ``from fractalscape.zoom import zoom`` would have left it.
    """

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _PUBLIC.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

if "xarray" in sys.modules:
    # Datasets may exist already: ds.fractalscape works on them now (the module imports xarray only).
    importlib.import_module("fractalscape.accessor")


def __getattr__(name):
    module = _PUBLIC.get(name)
    if module is None:
        # a submodule, as an eager import would have bound it (fs.config, fs.store, ...)
        if importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module 'fractalscape' has no attribute {name!r}")
        return importlib.import_module(f"{__name__}.{name}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted({*globals(), *_PUBLIC})
