"""One worker thread computes the views of every dashboard session: the latest view wins.

Each browser session asks for a view at every zoom, pan or change of a
setting. :class:`ViewScheduler` keeps at most one waiting request per
session: a newer one replaces it (in its place in the queue), so the zooms
made while a view computes are coalesced and only the latest is computed.
The requests run one at a time in a single worker thread shared by every
session of the process, so the server's threads and CPU stay bounded
however many sessions or requests arrive. Cancelling a *running* request is
the session's part: it counts its requests (a generation), and the running
one checks that count between two bands of the view
(:func:`fractalscape.dashboard.window.load_in_blocks`).

:class:`ResultCache` keeps the last few finished views, shared by the
sessions, so that every browser opening the same page gets the first view
from one computation.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Callable, Hashable

log = logging.getLogger(__name__)

#: Finished views the cache keeps (a 600 x 450 view holds about 9 MB).
CACHED_VIEWS = 4


class ViewScheduler:
    """A queue of jobs, at most one waiting per owner, run one at a time by one worker thread.

    The thread starts with the first job and then waits for more (a daemon:
    it does not keep the interpreter alive).

    Examples
    --------
    >>> scheduler = ViewScheduler()
    >>> done = []
    >>> scheduler.submit("session", lambda: done.append("first"))
    >>> scheduler.wait("session")
    True
    >>> done, scheduler.jobs_run
    (['first'], 1)
    """

    def __init__(self, name: str = "fractalscape-views"):
        self.name = name
        self.jobs_run = 0
        self._cond = threading.Condition()
        self._waiting: OrderedDict[Hashable, Callable[[], None]] = OrderedDict()
        self._running: Hashable | None = None
        self._thread: threading.Thread | None = None

    def submit(self, owner: Hashable, job: Callable[[], None]) -> None:
        """Queue ``job`` for ``owner``, replacing the owner's waiting job if there is one."""
        with self._cond:
            self._waiting[owner] = job  # a replaced job keeps its owner's place: no session starves
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def discard(self, owner: Hashable) -> None:
        """Drop ``owner``'s waiting job (a running one stops through the owner's own check)."""
        with self._cond:
            self._waiting.pop(owner, None)

    def busy(self, owner: Hashable) -> bool:
        """Whether ``owner`` has a job waiting or running."""
        with self._cond:
            return owner in self._waiting or self._running == owner

    @property
    def idle(self) -> bool:
        """Whether no job is waiting or running."""
        with self._cond:
            return not self._waiting and self._running is None

    def wait(self, owner: Hashable, timeout: float | None = None) -> bool:
        """Wait until ``owner`` has no job waiting or running; whether it got there within ``timeout``."""
        with self._cond:
            return self._cond.wait_for(lambda: owner not in self._waiting and self._running != owner, timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._waiting)
                owner, job = self._waiting.popitem(last=False)
                self._running = owner
            try:
                job()
            except Exception:  # noqa: BLE001  (a job reports its own errors; the worker serves the others)
                log.exception("dashboard job of %r failed", owner)
            finally:
                with self._cond:
                    self._running = None
                    self.jobs_run += 1
                    self._cond.notify_all()


class ResultCache:
    """The last :data:`CACHED_VIEWS` finished views, by key, safe to share between threads.

    Examples
    --------
    >>> cache = ResultCache()
    >>> cache.put(("view", 1), "result")
    >>> cache.get(("view", 1)), cache.get(("view", 2))
    ('result', None)
    """

    def __init__(self, size: int = CACHED_VIEWS):
        self.size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, object] = OrderedDict()

    def get(self, key: Hashable):
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


#: The scheduler every dashboard session of this process shares.
SCHEDULER = ViewScheduler()
#: The finished views every dashboard session of this process shares.
RESULTS = ResultCache()
