"""Fully connected networks trained pointwise: Sohl-Dickstein's trainability fractals, and deeper ones.

:class:`NetworkModel` is the model (network, data, seed); :func:`network_map`
computes a whole map in one call.
"""

from fractalscape.networks.model import DEFAULT_THRESHOLD, MAX_DEPTH, NetworkModel, network_map

__all__ = ["DEFAULT_THRESHOLD", "MAX_DEPTH", "NetworkModel", "network_map"]
