"""The numba internals fractalscape builds on: a numba release that changes them fails here, loudly.

``fractalscape/gd.py`` makes its lane-buffer views with ``make_array`` and
``populate_array`` inside ``@intrinsic`` codegen (llvmlite builders), and
compiles the lane driver with ``_nrt=False``; ``fractalscape/kernelcache.py``
subclasses ``numba.core.caching.FunctionCache``, builds an
``IndexDataCacheFile`` and overrides ``Cache._index_key``. None of these is
numba's public API. Each test names what changed and the two ways out: pin
numba below the release that changed it (setup.cfg), or port the module.
Written against numba 0.68.1.
"""

import inspect
import json
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

TESTED = "0.68.1"


def _broken(what: str, used_by: str) -> str:
    return (f"numba {numba.__version__} changed {what}, which {used_by} relies on (it works with numba {TESTED}): "
            f"pin numba below {numba.__version__} in setup.cfg, or port {used_by} to the new internals")


def _parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


# (dotted name, module of fractalscape that uses it, parameters it is called with: None for "not a call")
INTERNALS = [
    ("numba.extending.intrinsic", "fractalscape/gd.py", None),
    ("numba.np.arrayobj.make_array", "fractalscape/gd.py", ["array_type"]),
    ("numba.np.arrayobj.populate_array", "fractalscape/gd.py",
     ["array", "data", "shape", "strides", "itemsize", "meminfo"]),
    ("numba.core.caching.FunctionCache", "fractalscape/kernelcache.py", ["self", "py_func"]),
    ("numba.core.caching.IndexDataCacheFile", "fractalscape/kernelcache.py",
     ["self", "cache_path", "filename_base", "source_stamp"]),
    ("numba.core.caching.Cache._index_key", "fractalscape/kernelcache.py", ["self", "sig", "codegen"]),
    ("numba.core.caching.Cache.load_overload", "fractalscape/kernelcache.py", ["self", "sig", "target_context"]),
    ("numba.core.caching.Cache.save_overload", "fractalscape/kernelcache.py", ["self", "sig", "data"]),
    ("numba.core.caching.NullCache", "fractalscape/kernelcache.py", None),
    ("numba.core.codegen.JITCPUCodegen.magic_tuple", "fractalscape/kernelcache.py", ["self"]),
]


def _resolve(dotted: str):
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            value = getattr(value, attribute)
        return value
    raise ImportError(dotted)


@pytest.mark.parametrize("dotted, used_by, parameters", INTERNALS, ids=[row[0] for row in INTERNALS])
def test_the_internal_exists_with_its_signature(dotted, used_by, parameters):
    try:
        value = _resolve(dotted)
    except (ImportError, AttributeError) as err:
        pytest.fail(f"{_broken(dotted + ' (it is gone: ' + str(err) + ')', used_by)}")
    if parameters is not None:
        target = value.__init__ if inspect.isclass(value) else value
        found = _parameters(target)
        assert found[:len(parameters)] == parameters, _broken(f"the signature of {dotted} ({found})", used_by)


def test_nrt_false_is_still_an_option_and_still_refuses_allocation():
    from numba.core.cpu import CPUTargetOptions
    from numba.core.errors import TypingError

    assert hasattr(CPUTargetOptions, "_nrt"), _broken("the njit option _nrt", "fractalscape/gd.py")

    @numba.njit(_nrt=False)
    def allocates(n):
        return np.empty(n)

    assert allocates.targetoptions["_nrt"] is False, _broken("the njit option _nrt", "fractalscape/gd.py")
    # without the runtime nothing may allocate: the option must still switch reference counting off
    with pytest.raises(TypingError):
        allocates(3)


def test_the_lane_buffer_views_of_gd_read_the_buffer_in_place():
    from fractalscape.gd import flat, rows

    @numba.njit(nogil=True, _nrt=False)
    def views(buf, first):
        as_float = flat(buf, 6, np.float64)
        block = rows(buf, first, 2, 3, np.int64)
        block[1, 2] = -7  # a view: the write lands in buf
        return as_float[5], block[0, 0], block[1, 1]

    buf = np.arange(12, dtype=np.int64)
    try:
        last_float, corner, middle = views(buf, 1)
    except Exception as err:  # a numba error of any kind: the codegen no longer compiles
        pytest.fail(_broken(f"the codegen of make_array/populate_array ({type(err).__name__}: {err})",
                            "fractalscape/gd.py"))
    assert last_float == np.arange(12, dtype=np.int64).view(np.float64)[5], _broken("flat()", "fractalscape/gd.py")
    assert (corner, middle) == (3, 7), _broken("rows()", "fractalscape/gd.py")
    assert buf[8] == -7, _broken("rows(): the view is a copy, not a view", "fractalscape/gd.py")


def test_the_kernel_cache_builds_on_function_cache(tmp_path):
    from fractalscape import kernelcache

    @numba.njit
    def twice(x):
        return 2 * x

    key = kernelcache.kernel_key("test-numba-internals")
    try:
        cache = kernelcache.KernelCache(twice.py_func, key, key)
    except Exception as err:
        pytest.fail(_broken(f"FunctionCache's constructor or attributes ({type(err).__name__}: {err})",
                            "fractalscape/kernelcache.py"))
    assert isinstance(cache, numba.core.caching.FunctionCache)
    file = cache._cache_file
    for attribute in ("_index_path", "_index_name", "_source_stamp"):
        assert hasattr(file, attribute), _broken(f"IndexDataCacheFile.{attribute}", "fractalscape/kernelcache.py")
    assert key[:16] in file._index_name and file._source_stamp == key
    codegen = twice.targetctx.codegen()
    index_key = cache._index_key(numba.int64(numba.int64), codegen)
    assert index_key[-1] == key and index_key[1] == codegen.magic_tuple()


ROUND_TRIP = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from fractalscape import kernelcache

    from kernel_module import triple

    # what kernelcache.attach does, with a fixed key (attach's digests the package source, which may change
    # between the two processes while the package is edited)
    triple._cache = kernelcache.KernelCache(triple.py_func, "fedcba9876543210" * 2, "0123456789abcdef0123456789abcdef")
    value = triple(14)
    print(json.dumps({"value": value, "hits": sum(triple.stats.cache_hits.values()),
                      "misses": sum(triple.stats.cache_misses.values())}))
""")


def test_a_kernel_attached_to_the_cache_is_loaded_by_a_later_process(tmp_path):
    """kernelcache.KernelCache end to end on a throwaway function: save in one process, load in the next."""
    (tmp_path / "kernel_module.py").write_text("import numba\n\n@numba.njit\ndef triple(x):\n    return 3 * x\n")
    (tmp_path / "round_trip.py").write_text(ROUND_TRIP)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}

    def once():
        proc = subprocess.run([sys.executable, str(tmp_path / "round_trip.py"), str(tmp_path)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, _broken(f"the disk cache ({proc.stderr.strip().splitlines()[-1:]})",
                                             "fractalscape/kernelcache.py")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    first, later = once(), once()
    assert first == {"value": 42, "hits": 0, "misses": 1}, first
    assert later == {"value": 42, "hits": 1, "misses": 0}, _broken(
        f"loading a saved kernel (the later process got {later})", "fractalscape/kernelcache.py")
    names = sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert [n.rsplit(".", 1)[-1] for n in names] == ["nbc", "nbi"], names
