"""A terminal progress line with ETA for block-by-block runs."""

from __future__ import annotations

import sys
import time

from dask.callbacks import Callback

#: Seconds between two refreshes of the progress line.
REFRESH = 0.5


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def remaining(done: int, total: int, since_first: float) -> float | None:
    """Seconds left at the pace of the blocks after the first, or None before there is one.

    The first block's time holds the kernels' compilation (in each process),
    which the blocks after it do not pay: it is left out of the pace.

    >>> remaining(1, 10, 0.0) is None
    True
    >>> remaining(5, 10, 8.0)   # 4 blocks in 8 s after the first: 5 left at 2 s each
    10.0
    """
    if done < 2 or done >= total:
        return None
    return since_first / (done - 1) * (total - done)


class BlockProgress(Callback):
    """Counts finished block writes; prints ``blocks done/total, elapsed, ETA`` to stderr.

    Also a timer: ``elapsed`` holds the seconds the block ran, printed or not.
    Works with dask's local schedulers (threads, processes, synchronous).

    Examples
    --------
    >>> with BlockProgress(0, enabled=False) as bar:
    ...     pass
    >>> bar.elapsed >= 0
    True
    """

    def __init__(self, total: int, *, enabled: bool = True, stream=None, task_prefix: str = "_write_block"):
        super().__init__()
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.task_prefix = task_prefix
        self.done = 0
        self.elapsed = 0.0
        self._t0 = 0.0
        self._t_first = 0.0  # when the first block finished
        self._shown_at = 0.0

    def __enter__(self):
        self._t0 = time.perf_counter()
        return super().__enter__()

    def __exit__(self, *exc):
        self.elapsed = time.perf_counter() - self._t0
        if self.enabled:
            self._show(final=True)
        return super().__exit__(*exc)

    def _posttask(self, key, result, dsk, state, worker_id):
        name = key[0] if isinstance(key, tuple) else key
        if str(name).startswith(self.task_prefix):
            self.done += 1
            now = time.perf_counter()
            if self.done == 1:
                self._t_first = now
            if self.enabled and now - self._shown_at >= REFRESH:
                self._shown_at = now
                self._show()

    def _show(self, final: bool = False):
        now = time.perf_counter()
        elapsed = now - self._t0
        left = remaining(self.done, self.total, now - self._t_first)
        eta = f", ETA {_clock(left)}" if left is not None else ""
        end = "\n" if final else "\r"
        self.stream.write(f"blocks {self.done}/{self.total}, elapsed {_clock(elapsed)}{eta}   {end}")
        self.stream.flush()
