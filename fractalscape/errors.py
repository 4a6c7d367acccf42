"""The one exception type users see for bad input, and the number check most inputs go through."""

import math

import numpy as np


class ConfigError(ValueError):
    """Bad user input: the message names the bad value and what would be valid.

    The CLI prints it as a one-line ``error: ...`` and exits with status 2.
    """


def check_finite(what: str, value) -> float:
    """``value`` as a float, or a :class:`ConfigError` naming ``what`` if it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{what} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be finite, got {value}")
    return value
