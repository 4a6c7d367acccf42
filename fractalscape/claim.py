"""Claiming an output directory before a map is written: a lock, and room for the store.

:func:`output_lock` keeps two ``fractalscape map`` runs from writing one
store; :func:`check_free_space` refuses, before anything is written, a map
whose store would not fit the free space of its directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time

import numpy as np
import xarray as xr

from fractalscape.errors import ConfigError
from fractalscape.store import DONE_DIR, MAP_NAME, Location


LOCK_NAME = ".lock"


@contextlib.contextmanager
def output_lock(out_dir, *, wait: bool = False, on_wait=None):
    """Hold ``out_dir/.lock`` while a map is written there, so two runs never write one store.

    The lock is ``fcntl.flock`` on a file kept open, which holds this
    process's pid: the kernel releases it when the process ends, however it
    ends, so a lock file left by a dead process is simply taken over. A held
    lock is refused with a :class:`ConfigError` naming its pid, or, with
    ``wait``, waited for (``on_wait(pid)`` is called first). Only local
    directories are locked; on an fsspec URL (object stores have no locks)
    this does nothing.

    Examples
    --------
    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> with output_lock(out):  # doctest: +ELLIPSIS
    ...     with output_lock(out):
    ...         pass
    Traceback (most recent call last):
    ...
    fractalscape.errors.ConfigError: '/...' is being written by another 'fractalscape map' (pid ...); ...
    """
    out = Location(out_dir)
    if not out.is_local:
        yield
        return
    path = os.path.join(out.root, LOCK_NAME)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            if not wait:
                os.close(fd)
                raise ConfigError(
                    f"{str(out)!r} is being written by another 'fractalscape map' (pid {holder}); wait for it "
                    "to finish, pass --wait to wait for it, or choose another --out"
                ) from None
            if on_wait is not None:
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        # The holder we waited for unlinks the file on release: lock the file that is there now.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def _lock_holder(fd: int) -> str:
    """The pid a held lock file names ('unknown' if its holder has not written it yet)."""
    for _ in range(20):
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text:
            return text
        time.sleep(0.05)
    return "unknown"


def map_bytes(ds: xr.Dataset) -> int:
    """Bytes the arrays of ``ds`` take uncompressed: an upper bound on its store on disk.

    zstd shrinks the integer labels much and the float losses hardly at
    all (``tests/test_hardening.py::test_store_size_estimate_bounds_a_real_store``).

    Examples
    --------
    >>> import fractalscape as fs
    >>> map_bytes(fs.open_config("liu-additive")) / 1048577  # bool, int32 and float64, and the lr coordinate
    21.0
    """
    return int(sum(variable.nbytes for variable in ds.variables.values()))


def check_free_space(ds: xr.Dataset, out_dir) -> None:
    """Refuse, with the numbers, a map whose store would not fit the free space of its local ``out_dir``.

    The need is :func:`map_bytes` less the share of blocks already done by an
    earlier run. fsspec URLs, and filesystems without a size (``/proc``), are
    not checked.
    """
    out = Location(out_dir)
    if not out.is_local:
        return
    existing = out.root
    while not os.path.isdir(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    need = map_bytes(ds)
    done_dir = os.path.join(out.root, DONE_DIR)
    if os.path.isdir(os.path.join(out.root, MAP_NAME)) and os.path.isdir(done_dir):
        total = max(int(np.prod(ds[name].data.numblocks)) for name in ds.data_vars)
        done = sum(not name.startswith("coord-") for name in os.listdir(done_dir))
        need = need * max(total - done, 0) // total
    usage = shutil.disk_usage(existing)
    if usage.total and need > usage.free:  # total 0: a pseudo filesystem (/proc), which prepare_output refuses
        free = usage.free
        points = int(np.prod(list(ds.sizes.values())))
        raise ConfigError(
            f"the map needs up to {need / 1e9:.3g} GB ({points:,} points, {map_bytes(ds) / points:.3g} bytes a point "
            f"uncompressed) but {existing!r} has {free / 1e9:.3g} GB free; free space, choose another --out, "
            "or pass --force"
        )
