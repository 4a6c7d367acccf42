"""Test helpers shared by several test modules."""

from __future__ import annotations

import contextlib

import dask


class _CountingScheduler:
    """A dask scheduler that counts graph executions and refuses more than allowed."""

    def __init__(self, max_computes: int):
        self.max_computes = max_computes
        self.total_computes = 0

    def __call__(self, dsk, keys, **kwargs):
        self.total_computes += 1
        if self.total_computes > self.max_computes:
            raise RuntimeError(f"too many dask computations: {self.total_computes} > {self.max_computes}")
        return dask.get(dsk, keys, **kwargs)


@contextlib.contextmanager
def raise_if_dask_computes(max_computes: int = 0):
    """Fail if the block computes anything with dask (more than ``max_computes`` times)."""
    scheduler = _CountingScheduler(max_computes)
    with dask.config.set(scheduler=scheduler):
        yield scheduler
