"""Loss landscapes GD runs on; importing this registers the bundled families."""

from fractalscape.landscapes import cosine  # noqa: F401  (registers the cosine families)
from fractalscape.landscapes.base import (
    REGISTRY,
    Family,
    LaneKernels,
    Landscape,
    define_landscape,
    get_family,
    landscape,
    lane_kernels,
)

__all__ = [
    "REGISTRY",
    "Family",
    "LaneKernels",
    "Landscape",
    "define_landscape",
    "get_family",
    "landscape",
    "lane_kernels",
]
