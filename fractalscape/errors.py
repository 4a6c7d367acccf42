"""The one exception type users see for bad input."""


class ConfigError(ValueError):
    """Bad user input: the message names the bad value and what would be valid.

    The CLI prints it as a one-line ``error: ...`` and exits with status 2.
    """
