"""Compiled block kernels kept on disk, so that a new process does not compile them again.

numba's own ``cache=True`` cannot serve the lane driver: the driver is a
closure over the model's and the optimizer's numba functions, and numba
keys a closure's cache entry on the pickled closure values, which for
dispatchers differ from process to process (they carry a random uuid). So
every process would miss, and all kernels would share one index file,
which two processes saving at once could leave pointing at the wrong code.

This module gives each kernel its own entry instead:

- the key is a digest of what decides the compiled code: the program's
  ``cache_key`` (None for user models, which are never cached on disk), the
  optimizer, the driver's options, :data:`fractalscape.gd.KERNEL_VERSION`,
  the package version and the source of every module of the package, so
  that any edit of the code starts a new entry;
- each key has its own index and data files (the digest is in their
  names), written through a temporary file and an atomic rename, so that
  concurrent workers compiling the same kernel can only write the same
  entry.

Where the entries go is numba's choice: ``NUMBA_CACHE_DIR`` if it is set,
else ``__pycache__`` beside ``fractalscape/gd.py`` when that is writable,
else numba's user-wide cache directory. ``FRACTALSCAPE_KERNEL_CACHE=0``
turns the disk cache off.

This uses numba internals (``numba.core.caching``); the test
``tests/test_kernelcache.py`` checks them, so that a numba release that
changes them fails there and not silently.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from numba.core.caching import FunctionCache, IndexDataCacheFile

#: Environment variable: ``0`` turns the disk cache of compiled kernels off.
ENV = "FRACTALSCAPE_KERNEL_CACHE"


@lru_cache(maxsize=1)
def source_digest() -> str:
    """SHA-256 of every Python module of the package (paths and contents)."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def enabled() -> bool:
    """Whether compiled kernels are kept on disk (``FRACTALSCAPE_KERNEL_CACHE`` is not ``0``)."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def kernel_key(*parts) -> str:
    """The digest naming one kernel's entry: ``parts`` (plain values), versions and the source digest."""
    from fractalscape._version import __version__
    from fractalscape.gd import KERNEL_VERSION

    text = repr((parts, KERNEL_VERSION, __version__, source_digest()))
    return hashlib.sha256(text.encode()).hexdigest()


class KernelCache(FunctionCache):
    """numba's per-function cache, keyed by ``key`` alone and stored under its own file names.

    Files are named ``<function>-<kernel>-<key>``: ``kernel`` (a digest of
    the kernel's parts alone) is the same for every version of one kernel,
    so saving a new version removes the entries the older code left.
    """

    def __init__(self, py_func, kernel: str, key: str):
        self._key = key
        super().__init__(py_func)
        self._stem = f"{self._impl.filename_base}-{kernel[:16]}"
        self._cache_file = IndexDataCacheFile(
            cache_path=self._cache_path,
            filename_base=f"{self._stem}-{key[:16]}",
            source_stamp=key,
        )

    def _index_key(self, sig, codegen):
        return (sig, codegen.magic_tuple(), self._key)

    def _save_overload(self, sig, data):
        super()._save_overload(sig, data)
        # A process still running the older code may miss its entry now: a recompile, never wrong code.
        for stale in Path(self._cache_path).glob(f"{self._stem}-*"):
            if not stale.name.startswith(f"{self._stem}-{self._key[:16]}."):
                stale.unlink(missing_ok=True)


def attach(dispatcher, *parts) -> bool:
    """Keep ``dispatcher``'s compiled code on disk under the key of ``parts``; False where off.

    ``parts`` must identify the compiled code completely and be plain
    values (strings, numbers, tuples): they are hashed through ``repr``.
    """
    if not enabled():
        return False
    kernel = hashlib.sha256(repr(parts).encode()).hexdigest()
    dispatcher._cache = KernelCache(dispatcher.py_func, kernel, kernel_key(*parts))
    return True
