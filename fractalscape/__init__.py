"""fractalscape: where gradient descent trains and where it blows up.

The flow is grid -> GD kernels -> readout arrays -> boundary -> dimension / render.
"""

from fractalscape._version import __version__
from fractalscape.errors import ConfigError
from fractalscape.grid import Axis, Grid
from fractalscape.landscapes import Landscape, define_landscape, landscape
from fractalscape.networks import NetworkModel
from fractalscape.trainability import trainability
from fractalscape.boundary import boundary, contours
from fractalscape.config import load_config, open_config
from fractalscape.dimension import dimension
from fractalscape.render import render
from fractalscape.store import open_map, write_map
from fractalscape.sweep import sweep
from fractalscape.uncertainty import uncertainty
from fractalscape.zoom import zoom

__all__ = [
    "__version__",
    "Axis",
    "audit",
    "ConfigError",
    "boundary",
    "contours",
    "dimension",
    "Grid",
    "Landscape",
    "NetworkModel",
    "define_landscape",
    "landscape",
    "load_config",
    "open_config",
    "open_map",
    "render",
    "sweep",
    "write_map",
    "trainability",
    "uncertainty",
    "zoom",
]


def __getattr__(name):
    # audit loads python-flint, which no map needs: import it on first use only
    if name == "audit":
        from fractalscape.audit import audit

        return audit
    raise AttributeError(f"module 'fractalscape' has no attribute {name!r}")
