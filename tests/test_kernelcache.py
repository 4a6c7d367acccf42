"""Compiled kernels kept on disk: a later process loads them, and gets the same maps."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from numba.core.caching import NullCache

import fractalscape as fs
from fractalscape import kernelcache
from fractalscape.gd import model_kernel

# One tiny map in a fresh process: its kernel's cache hits and misses, and a digest of its arrays.
SCRIPT = textwrap.dedent("""
    import hashlib, json
    import fractalscape as fs
    from fractalscape.gd import model_kernel

    land = fs.landscape("cosine-additive", delta=0.2, wavelength=0.1)
    grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 2**10 + 1, chunk=300)])
    ds = fs.trainability(land, grid, x0=1.0, steps=300).compute(scheduler="synchronous")
    stats = model_kernel(land, "libm").compiled.stats
    digest = hashlib.sha256(ds.escape_step.values.tobytes() + ds.final_loss.values.tobytes()).hexdigest()
    print(json.dumps({"hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values()),
                      "digest": digest}))
""")


def _start(tmp_path, cache_dir, **env):
    script = tmp_path / "tiny_map.py"
    script.write_text(SCRIPT)
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), **env})


def _result(proc):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_later_process_loads_the_kernel_and_maps_the_same(tmp_path):
    cache_dir = tmp_path / "cache"
    # Two cold processes at once compile the same kernel and save it side by side.
    first = [_result(p) for p in [_start(tmp_path, cache_dir), _start(tmp_path, cache_dir)]]
    assert [r["misses"] for r in first] == [1, 1] and [r["hits"] for r in first] == [0, 0]
    later = _result(_start(tmp_path, cache_dir))
    assert (later["hits"], later["misses"]) == (1, 0)
    off = _result(_start(tmp_path, cache_dir, FRACTALSCAPE_KERNEL_CACHE="0"))
    assert (off["hits"], off["misses"]) == (0, 1)
    assert len({r["digest"] for r in [*first, later, off]}) == 1
    # One entry (an index and one data file) for the one kernel.
    names = sorted(p.name for p in cache_dir.rglob("*") if p.is_file())
    assert [n.rsplit(".", 2)[-1] for n in names] == ["nbc", "nbi"], names


def test_a_new_version_of_a_kernel_replaces_the_old_entry(tmp_path):
    # Entries of one kernel from older code are removed when the new one is saved.
    folder = tmp_path / "entries"
    folder.mkdir()

    def function(x):
        return x * 2

    old = kernelcache.KernelCache(function, "k" * 64, "a" * 64)
    new = kernelcache.KernelCache(function, "k" * 64, "b" * 64)
    other = kernelcache.KernelCache(function, "j" * 64, "a" * 64)
    for cache in (old, new, other):
        cache._cache_path = str(folder)
        cache._cache_file._cache_path = str(folder)
        cache._cache_file._index_path = str(folder / cache._cache_file._index_name)
    dispatcher = numba.njit(function)
    dispatcher(np.int64(1))
    cres = next(iter(dispatcher.overloads.values()))
    signature = next(iter(dispatcher.overloads))
    old.save_overload(signature, cres)
    other.save_overload(signature, cres)
    assert len(list(folder.iterdir())) == 4
    new.save_overload(signature, cres)
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 4 and not any(f"{'k' * 16}-{'a' * 16}" in n for n in names), names
    assert new.load_overload(signature, dispatcher.targetctx) is not None
    assert old.load_overload(signature, dispatcher.targetctx) is None


def test_maps_match_a_process_without_the_cache(tmp_path):
    # This process's kernels may come from the disk cache; a fresh process without it agrees.
    land = fs.landscape("cosine-additive", delta=0.2, wavelength=0.1)
    grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, 2**10 + 1, chunk=300)])
    ds = fs.trainability(land, grid, x0=1.0, steps=300).compute(scheduler="synchronous")
    here = hashlib.sha256(ds.escape_step.values.tobytes() + ds.final_loss.values.tobytes()).hexdigest()
    off = _result(_start(tmp_path, tmp_path / "unused", FRACTALSCAPE_KERNEL_CACHE="0"))
    assert off["digest"] == here and off["hits"] == 0


def test_only_builtin_models_are_kept_on_disk():
    assert isinstance(model_kernel(fs.landscape("cosine-additive")).compiled._cache, kernelcache.KernelCache)
    assert isinstance(model_kernel(fs.NetworkModel("tanh", width=4)).compiled._cache, kernelcache.KernelCache)

    @numba.njit
    def loss(x, theta, j):
        return theta[0, j] * x[0, j] ** 4

    @numba.njit
    def grad(x, theta, j, out):
        out[0, j] = 4.0 * theta[0, j] * x[0, j] ** 3

    # A user family's name says nothing about its code in another process.
    fs.define_landscape("test-kernelcache-quartic", loss, grad, params={"a": 1.0})
    user = fs.landscape("test-kernelcache-quartic")
    assert isinstance(model_kernel(user).compiled._cache, NullCache)
    # Inspection needs code compiled in this process.
    assert isinstance(model_kernel(fs.landscape("cosine-additive"), disk_cache=False).compiled._cache, NullCache)


def test_keys_name_the_code():
    a = kernelcache.kernel_key("lane-driver", ("landscape", "cosine-additive", "libm", 1, 2), "gd", 4, False, True)
    b = kernelcache.kernel_key("lane-driver", ("landscape", "cosine-additive", "fast", 1, 2), "gd", 4, False, True)
    assert a != b and a == kernelcache.kernel_key("lane-driver", ("landscape", "cosine-additive", "libm", 1, 2),
                                                  "gd", 4, False, True)
    assert len(kernelcache.source_digest()) == 64


def test_the_cache_can_be_turned_off(monkeypatch):
    monkeypatch.setenv(kernelcache.ENV, "0")
    assert not kernelcache.enabled()
    dispatcher = numba.njit(lambda x: x + 1)
    assert not kernelcache.attach(dispatcher, "anything")
    assert isinstance(dispatcher._cache, NullCache)
    assert dispatcher(np.int64(1)) == 2
