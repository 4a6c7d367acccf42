"""Sohl-Dickstein's trainability fractals: one-hidden-layer networks trained by GD.

:class:`NetworkModel` is the model (network, data, seed) and runs blocks of
grid points; :func:`network_map` computes a whole map in one call.
"""

from fractalscape.networks.model import (
    DEFAULT_THRESHOLD,
    READOUT_DTYPE,
    NetworkModel,
    network_map,
)

__all__ = ["DEFAULT_THRESHOLD", "READOUT_DTYPE", "NetworkModel", "network_map"]
