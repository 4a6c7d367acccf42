"""Where maps are computed: dask's local threads, a LocalCluster, or a running scheduler."""

from __future__ import annotations

import contextlib

from fractalscape.errors import ConfigError

#: Seconds to wait for a scheduler given by address.
CONNECT_TIMEOUT = 10


def active_client():
    """The dask.distributed Client in use, or None (dask's local schedulers)."""
    try:
        from distributed import get_client
    except ImportError:
        return None
    try:
        return get_client()
    except ValueError:
        return None


@contextlib.contextmanager
def compute_on(scheduler: str | None = None, workers: int | None = None, *, timeout: float = CONNECT_TIMEOUT):
    """Run the enclosed computations on a cluster, or locally when both arguments are None.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running dask.distributed scheduler, e.g. ``tcp://10.0.0.5:8786``.
    workers : int, optional
        Start a LocalCluster of this many single-threaded worker processes.

    Examples
    --------
    >>> with compute_on() as client:
    ...     client is None
    True
    """
    if scheduler is not None and workers is not None:
        raise ConfigError("give either --scheduler (an existing cluster) or --workers (a local one), not both")
    if scheduler is None and workers is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError("--scheduler and --workers need dask.distributed: pip install 'fractalscape[distributed]'") from None
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"--workers must be an integer >= 1, got {workers!r}")
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
            with Client(lc) as client:
                yield client
        return
    try:
        client = Client(scheduler, timeout=f"{timeout}s")
    except (OSError, TimeoutError, ValueError) as err:
        raise ConfigError(
            f"could not reach a dask scheduler at {scheduler!r} within {timeout:g} s ({type(err).__name__}); "
            "check the address (tcp://HOST:PORT) or drop --scheduler to compute locally"
        ) from None
    with client:
        yield client
