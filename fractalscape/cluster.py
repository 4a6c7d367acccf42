"""Where maps are computed: dask's local threads, a LocalCluster, or a running scheduler."""

from __future__ import annotations

import contextlib
import os

from fractalscape.errors import ConfigError

#: Seconds to wait for a scheduler given by address to accept a connection.
CONNECT_TIMEOUT = 10
#: Seconds more for its dask handshake: a server that accepts and then says nothing is not waited on for ever.
HANDSHAKE_TIMEOUT = 3
#: Most LocalCluster worker processes per core (``--workers``): each is a process of its own, on this machine.
MAX_WORKERS_PER_CORE = 4
#: Seconds a LocalCluster worker process gets to exit when the cluster closes. distributed's default (4 s)
#: is short on a busy machine, and then it logs "Worker process still alive after 4.0 seconds, killing".
WORKER_CLOSE_TIMEOUT = 60


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
    check_target(scheduler, workers, timeout=timeout)
    if scheduler is None and workers is None:
        yield None
        return
    from distributed import Client

    if workers is not None:
        with _local_cluster(workers) as lc:
            with Client(lc) as client:
                try:
                    yield client
                except KeyboardInterrupt:
                    _quiet_shutdown()
                    raise
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


def _quiet_shutdown() -> None:
    """After Ctrl-C, the cluster closes under tasks the interrupt cut off: their errors are expected, not news.

    asyncio would log each as "Task exception was never retrieved" with a
    traceback, and distributed its workers' ends; the one line the command
    prints says what happened.
    """
    import logging

    for name in ("asyncio", "distributed", "tornado"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def check_target(scheduler: str | None = None, workers: int | None = None, *,
                 timeout: float = CONNECT_TIMEOUT) -> None:
    """Refuse, with a one-line :class:`ConfigError`, a compute target :func:`compute_on` could not use.

    Both or a bad ``workers``; a ``scheduler`` that is not a dask address, or
    does not complete dask's handshake within ``timeout`` seconds (to connect)
    plus :data:`HANDSHAKE_TIMEOUT` (to answer): closed ports, hosts that drop
    packets, and servers of other protocols, silent or not. Nothing is started.

    Examples
    --------
    >>> check_target(workers=0)
    Traceback (most recent call last):
    ...
    fractalscape.errors.ConfigError: --workers must be an integer >= 1, got 0
    """
    if scheduler is not None and workers is not None:
        raise ConfigError("give either --scheduler (an existing cluster) or --workers (a local one), not both")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"--workers must be an integer >= 1, got {workers!r}")
    cores = os.cpu_count() or 1
    if workers is not None and workers > MAX_WORKERS_PER_CORE * cores:
        raise ConfigError(f"--workers {workers} is more than {MAX_WORKERS_PER_CORE} per core of this machine "
                          f"({cores} cores): a LocalCluster runs here; give at most {MAX_WORKERS_PER_CORE * cores}, "
                          "or --scheduler for a larger cluster")
    if scheduler is None and workers is None:
        return
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ConfigError("--scheduler and --workers need dask.distributed: pip install 'fractalscape[distributed]'") from None
    if scheduler is not None:
        _handshake(scheduler, timeout)


def _handshake(scheduler: str, timeout: float) -> None:
    import asyncio
    import concurrent.futures

    from distributed.comm import connect

    async def handshake():
        # connect() bounds the connection by its timeout, not the handshake's read that follows
        comm = await asyncio.wait_for(connect(scheduler, timeout=timeout), timeout + HANDSHAKE_TIMEOUT)
        await comm.close()

    fix = "check the address (tcp://HOST:PORT of the scheduler, 8786 by default) or drop --scheduler to compute locally"
    # a thread of its own, with its own event loop: the caller may be running one (a notebook)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            pool.submit(asyncio.run, handshake()).result()
        except ValueError as err:
            raise ConfigError(f"--scheduler {scheduler!r} is not a dask scheduler address ({err}); {fix}") from None
        except TimeoutError:
            raise ConfigError(f"{scheduler!r} accepted a connection but gave no dask handshake within "
                              f"{timeout + HANDSHAKE_TIMEOUT:g} s: it is not a dask scheduler; {fix}") from None
        except OSError as err:
            raise ConfigError(f"could not reach a dask scheduler at {scheduler!r} within {timeout:g} s "
                              f"({type(err).__name__}); {fix}") from None
        except Exception as err:  # what the bytes of another protocol make of the handshake (a MemoryError, ...)
            raise ConfigError(f"{scheduler!r} answered, but not as a dask scheduler ({type(err).__name__}); "
                              f"{fix}") from None


def _local_cluster(workers: int):
    """A LocalCluster of ``workers`` single-threaded processes that starts and stops without warnings.

    Its scheduler's HTTP server (health and metrics; no dashboard) takes a
    free loopback port instead of 8787, which another cluster or a Jupyter
    proxy may hold; each worker gets :data:`WORKER_CLOSE_TIMEOUT` to exit.
    """
    from distributed import LocalCluster, Nanny

    class PatientNanny(Nanny):
        async def close(self, timeout: float = WORKER_CLOSE_TIMEOUT, reason: str = "nanny-close"):
            return await super().close(timeout=timeout, reason=reason)

    import logging

    # silence_logs: the workers' warnings (tasks cancelled by Ctrl-C, a slow close) are not the user's news;
    # their errors still print
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, worker_class=PatientNanny,
                        dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                        silence_logs=logging.ERROR)
