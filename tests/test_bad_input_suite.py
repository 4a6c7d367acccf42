"""The bad-input suite: hundreds of bad inputs to every command, each refused in one line.

Each case runs the ``fractalscape`` command in this process (click's
CliRunner) and must end with exit status 2, exactly one line on stderr
(``error: ...``, naming the bad value), nothing on stdout, no traceback and
nothing that looks complete: no ``summary.json``, no PNG. Inputs that are
accepted on purpose are listed in :data:`ACCEPTED` and in docs/robustness.md
("Accepted and well defined"); inputs whose fix lies in a module outside the
CLI and config reader are ``xfail(strict=True)`` with the module to change, so
that the fix turns them into failures to be moved here.

Cases are generated: every config key of a landscape, an optimizer and a
network crossed with wrong types, NaN, infinities, zero, negative, fractional,
huge and subnormal values (:data:`VALUES`); then config files (syntax,
encoding, empty, wrong tables), and every option of map, render, dimension,
zoom, sweep, presets, audit and serve with bad values, paths and URLs.
"""

import copy
import math
import socket
import tomllib

import pytest
from click.testing import CliRunner

import fractalscape as fs
from fractalscape.cli import main

LANDSCAPE = {"landscape": {"name": "cosine-additive", "delta": 0.2, "wavelength": 0.1},
             "descent": {"steps": 20, "x0": 1.0},
             "axis": [{"name": "lr", "start": 0.0, "stop": 1.5, "num": 9}]}
ADAM = {"landscape": {"name": "quadratic"},
        "descent": {"steps": 20, "optimizer": "adam", "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
        "axis": [{"name": "lr", "start": 0.0, "stop": 1.5, "num": 9}]}
MOMENTUM = {"landscape": {"name": "quadratic"}, "descent": {"steps": 20, "optimizer": "momentum", "momentum": 0.9},
            "axis": [{"name": "lr", "start": 0.0, "stop": 1.5, "num": 9}]}
NETWORK = {"network": {"nonlinearity": "tanh", "width": 4, "depth": 2, "parameterization": "mean-field", "loss": "mse",
                       "data": "minibatch", "batch_size": 4, "n_data": 8, "seed": 0},
           "descent": {"steps": 20, "init_offset": 0.0, "init_scale": 1.0},
           "axis": [{"name": "lr", "start": 0.01, "stop": 1.0, "num": 9, "scale": "log"}]}

#: TOML spellings of the values every key is tried with.
VALUES = {"str": '"x"', "empty": '""', "list": "[1]", "table": "{a = 1}", "bool": "true", "nan": "nan", "inf": "inf",
          "-inf": "-inf", "neg": "-1", "zero": "0", "half": "0.5", "huge": "1e308", "-huge": "-1e308",
          "int63": "9223372036854775807", "tiny": "1e-320"}

KEYS = ([(LANDSCAPE, "landscape", k) for k in ("name", "delta", "wavelength", "dim")]
        + [(LANDSCAPE, "descent", k) for k in ("x0", "lr", "steps", "threshold", "precision", "label", "optimizer")]
        + [(ADAM, "descent", k) for k in ("beta1", "beta2", "eps", "weight_decay")]
        + [(MOMENTUM, "descent", "momentum")]
        + [(LANDSCAPE, "axis", k) for k in ("name", "start", "stop", "num", "scale", "chunk", "ensemble")]
        + [(NETWORK, "network", k) for k in ("nonlinearity", "width", "depth", "parameterization", "loss", "data",
                                             "batch_size", "n_data", "seed", "rng")]
        + [(NETWORK, "descent", k) for k in ("init_offset", "init_scale")])

# Accepted on purpose: numbers GD is well defined for (docs/robustness.md, "Accepted and well defined").
_REAL = ("neg", "zero", "half", "huge", "-huge", "int63", "tiny")
ACCEPTED = {
    **{("landscape", "delta", v): "any finite amplitude" for v in _REAL},
    **{("landscape", "wavelength", v): "any normal wavelength (its sign is the cosine's phase)"
       for v in ("neg", "half", "huge", "-huge", "int63")},
    **{("descent", "x0", v): "any finite start (a list of dim numbers too)" for v in (*_REAL, "list")},
    **{("descent", "lr", v): "any finite learning rate (a list sets one per parameter)" for v in (*_REAL, "list")},
    **{("descent", "threshold", v): "any positive threshold, inf included" for v in ("inf", "half", "huge", "int63",
                                                                                    "tiny")},
    **{("descent", k, v): "in [0, 1)" for k in ("beta1", "beta2", "momentum") for v in ("zero", "half", "tiny")},
    **{("descent", "eps", v): "any positive eps" for v in ("half", "huge", "int63", "tiny")},
    **{("descent", "weight_decay", v): "any weight decay >= 0" for v in ("zero", "half", "huge", "int63", "tiny")},
    **{("axis", k, v): "any finite bound" for k in ("start", "stop") for v in _REAL if (k, v) != ("stop", "zero")},
    **{("network", "seed", v): "any integer seed >= 0" for v in ("zero", "int63")},
    **{("descent", k, v): "any finite initialisation" for k in ("init_offset", "init_scale") for v in _REAL},
}

# Refused only by a module outside the CLI and config reader: each names the module to change.
NEEDS_FIX: dict = {}  # (table, key, value) -> the module to change, for cases still failing (none now)


def _config_cases():
    for base, table, key in KEYS:
        for name, text in VALUES.items():
            if (table, key, name) in ACCEPTED:
                continue
            raw = copy.deepcopy(base)
            (raw["axis"][0] if table == "axis" else raw[table])[key] = tomllib.loads(f"v = {text}")["v"]
            marks = [pytest.mark.xfail(strict=True, reason=NEEDS_FIX[table, key, name])] \
                if (table, key, name) in NEEDS_FIX else []
            yield pytest.param(raw, key, id=f"{table}.{key}={name}", marks=marks)


def _toml(raw: dict) -> str:
    """``raw`` as TOML (values through repr, which TOML reads back for the types used here)."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, float):
            return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(v), repr(v))
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return repr(v)

    lines = []
    for table, body in raw.items():
        for entry in body if isinstance(body, list) else [body]:
            lines.append(f"[[{table}]]" if isinstance(body, list) else f"[{table}]")
            lines += [f"{k} = {value(v)}" for k, v in entry.items()]
    return "\n".join(lines) + "\n"


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def assert_refused(result, message=None):
    """Exit 2, exactly one ``error: ...`` line on stderr naming ``message``, nothing on stdout, no traceback."""
    assert not (result.exception and not isinstance(result.exception, SystemExit)), \
        f"traceback: {type(result.exception).__name__}: {result.exception}"
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == "", result.stdout
    if message is not None:
        assert message in lines[0], lines[0]
    return lines[0]


def assert_nothing_complete(root):
    assert not list(root.rglob("summary.json")), list(root.rglob("summary.json"))
    assert not [p for p in root.rglob("*.png") if p.stat().st_size], list(root.rglob("*.png"))


CONFIG_CASES = list(_config_cases())


@pytest.mark.parametrize("raw, key", CONFIG_CASES)
def test_bad_config_value(tmp_path, raw, key):
    # first without the CLI, which would compute a map the reader let through
    with pytest.raises(fs.ConfigError):
        fs.load_config(raw).dataset()
    config = tmp_path / "c.toml"
    config.write_text(_toml(raw))
    line = assert_refused(cli("map", config, "--out", tmp_path / "out"))
    assert key in line or key == "name", line  # the message names the key (an axis name is named by its value)
    assert not (tmp_path / "out").exists()


GOOD_TOML = _toml({"landscape": {"name": "quadratic"}, "descent": {"steps": 20},
                   "axis": [{"name": "lr", "start": 0.0, "stop": 1.5, "num": 9}]})
AXIS = '[[axis]]\nname = "lr"\nstart = 0.0\nstop = 1.5\nnum = 9\n'

FILE_CASES = {
    "empty": (b"", "exactly one of the tables [landscape] and [network], got neither"),
    "only-comments": (b"# nothing\n", "exactly one of the tables [landscape] and [network], got neither"),
    "syntax-error": (b"[landscape\nname = 'quadratic'\n", "is not valid TOML"),
    "unterminated-string": (b'[landscape]\nname = "quadratic\n' + AXIS.encode(), "is not valid TOML"),
    "duplicate-key": (b'[landscape]\nname = "quadratic"\nname = "quadratic"\n' + AXIS.encode(), "is not valid TOML"),
    "duplicate-table": (b'[landscape]\nname = "quadratic"\n[landscape]\ndim = 1\n' + AXIS.encode(),
                        "is not valid TOML"),
    "latin-1": ('[landscape]\nname = "quadratic" # caf\xe9\n'.encode("latin-1") + AXIS.encode(), "is not UTF-8"),
    "utf-16": (GOOD_TOML.encode("utf-16"), "is not UTF-8"),
    "binary": (bytes(range(256)), "is not UTF-8"),
    "nul-bytes": (b"\x00" * 64, "is not valid TOML"),
    "unknown-table": (GOOD_TOML.encode() + b"[solver]\nx = 1\n", "unknown config table 'solver'"),
    "unknown-top-key": (b"steps = 5\n" + GOOD_TOML.encode(), "unknown config table 'steps'"),
    "no-model": (b"[descent]\nsteps = 5\n" + AXIS.encode(), "exactly one of the tables [landscape] and [network]"),
    "landscape-and-network": (GOOD_TOML.encode() + b'[network]\nnonlinearity = "tanh"\n',
                              "exactly one of the tables [landscape] and [network]"),
    "no-axis": (b'[landscape]\nname = "quadratic"\n', "config is missing [[axis]] entries"),
    "axis-a-table": (b'[landscape]\nname = "quadratic"\n[axis]\nname = "lr"\n', "must be a list of tables"),
    "four-axes": (b'[landscape]\nname = "quadratic"\n' + b"".join(
        f'[[axis]]\nname = "{n}"\nstart = 0.1\nstop = 1.0\nnum = 3\n'.encode() for n in ("lr", "x0", "a", "b")),
        "1 to 3 axes"),
    "same-axis-twice": (b'[landscape]\nname = "quadratic"\n' + AXIS.encode() * 2, "must be unique"),
    "unknown-axis": (b'[landscape]\nname = "quadratic"\n' + AXIS.replace('"lr"', '"nosuch"').encode(),
                     "unknown axis 'nosuch'"),
    "axis-missing-num": (b'[landscape]\nname = "quadratic"\n' + AXIS.replace("num = 9\n", "").encode(),
                         "is missing the key 'num'"),
    "unknown-axis-key": (b'[landscape]\nname = "quadratic"\n' + AXIS.encode() + b"step = 0.1\n", "unknown key 'step'"),
    "start-equals-stop": (b'[landscape]\nname = "quadratic"\n' + AXIS.replace("stop = 1.5", "stop = 0.0").encode(),
                          "start and stop must differ"),
    "log-axis-through-zero": (b'[landscape]\nname = "quadratic"\n' + AXIS.encode() + b'scale = "log"\n',
                              "a log axis needs start > 0 and stop > 0"),
    "num-1": (b'[landscape]\nname = "quadratic"\n' + AXIS.replace("num = 9", "num = 1").encode(), "num must be >= 2"),
    "chunk-above-num": (b'[landscape]\nname = "quadratic"\n' + AXIS.encode() + b"chunk = 10\n",
                        "chunk must be at most num=9"),
    "misspelled-descent-key": (GOOD_TOML.replace("steps = 20", "stepz = 20").encode(), "unknown key 'stepz'"),
    "misspelled-landscape": (GOOD_TOML.replace("quadratic", "quadratik").encode(), "unknown landscape 'quadratik'"),
    "landscape-parameter-unknown": (GOOD_TOML.replace('name = "quadratic"', 'name = "quadratic"\namplitude = 1')
                                    .encode(), "has no parameter 'amplitude'"),
    "network-unknown-key": (b'[network]\nnonlinearity = "tanh"\nwidht = 4\n' + AXIS.encode(), "unknown key 'widht'"),
    "network-batch-above-data": (b'[network]\nnonlinearity = "tanh"\nwidth = 4\ndata = "minibatch"\nn_data = 4\n'
                                 b'batch_size = 8\n' + AXIS.encode(), "batch_size 8 is larger than n_data 4"),
    "huge-grid": (b'[landscape]\nname = "quadratic"\n' + AXIS.replace("num = 9", "num = 10000000").encode()
                  + AXIS.replace('"lr"', '"x0"').replace("num = 9", "num = 1000000").encode(),
                  "more than the 1.1e+12 fractalscape computes"),
    "too-many-blocks": (b'[landscape]\nname = "quadratic"\n' + AXIS.replace("num = 9", "num = 4294967297").encode()
                        + b"chunk = 100\n", "blocks, more than"),
}


@pytest.mark.parametrize("content, message", FILE_CASES.values(), ids=FILE_CASES.keys())
def test_bad_config_file(tmp_path, content, message):
    config = tmp_path / "c.toml"
    config.write_bytes(content)
    assert_refused(cli("map", config, "--out", tmp_path / "out"), message)
    assert not (tmp_path / "out").exists()


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(GOOD_TOML)
    return path


def _paths(tmp_path):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-dir").mkdir(exist_ok=True)
    return {"tmp": tmp_path}


MAP_CASES = {
    "config-missing": (["{tmp}/nope.toml", "--out", "{tmp}/o"], "does not exist"),
    "config-a-directory": (["{tmp}/a-dir", "--out", "{tmp}/o"], "does not exist (or is not a file)"),
    "config-not-toml-file": (["{tmp}/a-file", "--out", "{tmp}/o"], "is not valid TOML"),
    "preset-misspelled": (["liu-multiplicativ", "--out", "{tmp}/o"], "did you mean 'liu-multiplicative'"),
    "preset-empty-name": (["", "--out", "{tmp}/o"], "config file '' does not exist"),
    "out-missing": (["{good}"], "Missing option '--out'"),
    "out-is-a-file": (["{good}", "--out", "{tmp}/a-file"], "is a file; give a directory"),
    "out-under-a-file": (["{good}", "--out", "{tmp}/a-file/sub"], "cannot create output directory"),
    "out-in-proc": (["{good}", "--out", "/proc/fractalscape-suite"], "cannot create output directory"),
    "out-memory-url": (["{good}", "--out", "memory://suite"], "the map would be lost"),
    "out-unknown-protocol": (["{good}", "--out", "nosuch://x"], "Protocol not known: nosuch"),
    "set-no-equals": (["{good}", "--out", "{tmp}/o", "--set", "descent.steps"], "--set takes KEY=VALUE"),
    "set-empty": (["{good}", "--out", "{tmp}/o", "--set", ""], "--set takes KEY=VALUE"),
    "set-no-key": (["{good}", "--out", "{tmp}/o", "--set", "=5"], "--set takes KEY=VALUE"),
    "set-axis-out-of-range": (["{good}", "--out", "{tmp}/o", "--set", "axis.7.num=3"], "does not fit the config"),
    "set-axis-not-a-number": (["{good}", "--out", "{tmp}/o", "--set", "axis.x.num=3"], None),
    "set-list-entry-itself": (["{good}", "--out", "{tmp}/o", "--set", "axis.0=3"], "name a key inside the list entry"),
    "set-inside-a-number": (["{good}", "--out", "{tmp}/o", "--set", "descent.steps.x=1"], "is not a table"),
    "set-steps-text": (["{good}", "--out", "{tmp}/o", "--set", "descent.steps=many"], "steps must be an integer"),
    "set-steps-zero": (["{good}", "--out", "{tmp}/o", "--set", "descent.steps=0"], "steps must be an integer > 0"),
    "set-steps-list": (["{good}", "--out", "{tmp}/o", "--set", "descent.steps=[1, 2]"], "steps must be an integer"),
    "set-descent-a-number": (["{good}", "--out", "{tmp}/o", "--set", "descent=5"], "must be a table, got 5"),
    "set-unknown-table": (["{good}", "--out", "{tmp}/o", "--set", "solver.x=1"], "unknown config table 'solver'"),
    "set-unknown-landscape": (["{good}", "--out", "{tmp}/o", "--set", "landscape.name=nope"], "unknown landscape"),
    "set-num-nan": (["{good}", "--out", "{tmp}/o", "--set", "axis.0.num=nan"], "num must be an integer"),
    "set-start-inf": (["{good}", "--out", "{tmp}/o", "--set", "axis.0.start=-inf"], "start must be finite"),
    "workers-zero": (["{good}", "--out", "{tmp}/o", "--workers", "0"], "--workers must be an integer >= 1, got 0"),
    "workers-negative": (["{good}", "--out", "{tmp}/o", "--workers", "-3"], "--workers must be an integer >= 1"),
    "workers-text": (["{good}", "--out", "{tmp}/o", "--workers", "two"], "'two' is not a valid integer"),
    "workers-fraction": (["{good}", "--out", "{tmp}/o", "--workers", "1.5"], "'1.5' is not a valid integer"),
    "workers-millions": (["{good}", "--out", "{tmp}/o", "--workers", "23299854"], "per core of this machine"),
    "workers-and-scheduler": (["{good}", "--out", "{tmp}/o", "--workers", "2", "--scheduler", "tcp://127.0.0.1:9"],
                              "not both"),
    "scheduler-unknown-scheme": (["{good}", "--out", "{tmp}/o", "--scheduler", "nosuch://x"],
                                 "is not a dask scheduler address"),
    "scheduler-no-port": (["{good}", "--out", "{tmp}/o", "--scheduler", "garbage"], "is not a dask scheduler address"),
    "scheduler-empty": (["{good}", "--out", "{tmp}/o", "--scheduler", ""], "is not a dask scheduler address"),
    "scheduler-port-not-a-number": (["{good}", "--out", "{tmp}/o", "--scheduler", "tcp://localhost:http-ish"],
                                    "is not a dask scheduler address"),
    "unknown-option": (["{good}", "--out", "{tmp}/o", "--bogus"], "No such option '--bogus'"),
    "progress-with-value": (["{good}", "--out", "{tmp}/o", "--progress=yes"], None),
}


def _params(cases: dict) -> list:
    """``cases`` (id: (args, message) or a pytest.param) as pytest parameters named by their ids."""
    return [pytest.param(*case.values, marks=case.marks, id=name) if hasattr(case, "marks")
            else pytest.param(*case, id=name) for name, case in cases.items()]


def _fill(args, tmp_path, **extra):
    names = {"tmp": tmp_path, **extra}
    return [a.format(**names) if isinstance(a, str) else a for a in args]


@pytest.mark.parametrize("args, message", _params(MAP_CASES))
def test_bad_map_invocation(tmp_path, good, args, message):
    _paths(tmp_path)
    assert_refused(cli("map", *_fill(args, tmp_path, good=good)), message)
    assert_nothing_complete(tmp_path)
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A small 2-D map, a 1-D map, a damaged map and a foreign zarr store."""
    import zarr

    root = tmp_path_factory.mktemp("stores")
    land = fs.landscape("cosine-multiplicative")
    fs.write_map(fs.trainability(land, fs.Grid([fs.Axis("lr", 0.0, 1.5, 40), fs.Axis("x0", -2.0, 2.0, 30)]),
                                 steps=50), root / "map2d")
    fs.write_map(fs.trainability(land, fs.Grid([fs.Axis("lr", 0.0, 1.5, 33)]), steps=50), root / "map1d")
    (root / "corrupt" / "map.zarr").mkdir(parents=True)
    (root / "corrupt" / "map.zarr" / "zarr.json").write_text("{ not json")
    zarr.open_group(root / "foreign" / "map.zarr", mode="w").create_array("data", shape=(3,), dtype="f8")
    (root / "a-file").write_text("x")
    return root


RENDER_CASES = {
    "size-word": (["{map2d}", "--out", "{tmp}/x.png", "--size", "big"], "--size takes WIDTHxHEIGHT"),
    "size-one-number": (["{map2d}", "--out", "{tmp}/x.png", "--size", "100"], "--size takes WIDTHxHEIGHT"),
    "size-no-height": (["{map2d}", "--out", "{tmp}/x.png", "--size", "100x"], "--size takes WIDTHxHEIGHT"),
    "size-negative": (["{map2d}", "--out", "{tmp}/x.png", "--size", "-5x5"], "--size takes WIDTHxHEIGHT"),
    "size-float": (["{map2d}", "--out", "{tmp}/x.png", "--size", "1e3x1e3"], "--size takes WIDTHxHEIGHT"),
    "size-three": (["{map2d}", "--out", "{tmp}/x.png", "--size", "10x10x10"], "--size takes WIDTHxHEIGHT"),
    "size-zero": (["{map2d}", "--out", "{tmp}/x.png", "--size", "0x0"], "width must be an integer >= 2"),
    "size-one-pixel": (["{map2d}", "--out", "{tmp}/x.png", "--size", "1x100"], "width must be an integer >= 2"),
    "size-enormous": (["{map2d}", "--out", "{tmp}/x.png", "--size", "100000x100000"], "more than render draws"),
    "x-range-text": (["{map2d}", "--out", "{tmp}/x.png", "--x-range", "a", "b"], "is not a valid float"),
    "x-range-one-value": (["{map2d}", "--out", "{tmp}/x.png", "--x-range", "0.5"], "requires 2 arguments"),
    "x-range-outside": (["{map2d}", "--out", "{tmp}/x.png", "--x-range", "5", "6"], "holds fewer than 2 grid points"),
    "x-range-nan": (["{map2d}", "--out", "{tmp}/x.png", "--x-range", "nan", "1"], None),
    "y-range-reversed-outside": (["{map2d}", "--out", "{tmp}/x.png", "--y-range", "9", "8"], None),
    "how-unknown": (["{map2d}", "--out", "{tmp}/x.png", "--how", "cubic"], "is not one of"),
    "colors-unknown": (["{map2d}", "--out", "{tmp}/x.png", "--colors", "rainbow"], "is not one of"),
    "out-jpg": (["{map2d}", "--out", "{tmp}/x.jpg"], "--out must name a .png file"),
    "out-no-suffix": (["{map2d}", "--out", "{tmp}/x"], "--out must name a .png file"),
    "out-a-directory": (["{map2d}", "--out", "{tmp}/a-dir"], "is a directory"),
    "out-missing-directory": (["{map2d}", "--out", "{tmp}/nodir/x.png"], "the directory"),
    "out-in-proc": (["{map2d}", "--out", "/proc/suite.png"], "cannot write in '/proc'"),
    "out-missing": (["{map2d}"], "Missing option '--out'"),
    "store-missing": (["{tmp}/nothing", "--out", "{tmp}/x.png"], "no map at"),
    "store-a-file": (["{stores}/a-file", "--out", "{tmp}/x.png"], None),
    "store-corrupt": (["{stores}/corrupt", "--out", "{tmp}/x.png"], "is not a readable zarr store"),
    "store-foreign": (["{stores}/foreign/map.zarr", "--out", "{tmp}/x.png"], "not a fractalscape map"),
    "store-1d": (["{map1d}", "--out", "{tmp}/x.png"], None),
    "store-url-unknown": (["nosuch://x", "--out", "{tmp}/x.png"], None),
}


@pytest.mark.parametrize("args, message", _params(RENDER_CASES))
def test_bad_render_invocation(tmp_path, stores, args, message):
    _paths(tmp_path)
    assert_refused(cli("render", *_fill(args, tmp_path, stores=stores, map2d=stores / "map2d",
                                        map1d=stores / "map1d")), message)
    assert_nothing_complete(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-dir", "a-file"]  # no temporary file left


DIMENSION_CASES = {
    "method-unknown": (["{map2d}", "--method", "hausdorff"], "is not one of"),
    "fit-range-text": (["{map2d}", "--fit-range", "a", "b"], "is not a valid integer"),
    "fit-range-one-value": (["{map2d}", "--fit-range", "1"], "requires 2 arguments"),
    "fit-range-zero": (["{map2d}", "--fit-range", "0", "0"], None),
    "fit-range-negative": (["{map2d}", "--fit-range", "-4", "-1"], None),
    "fit-range-reversed": (["{map2d}", "--fit-range", "8", "1"], None),
    "fit-range-beyond": (["{map2d}", "--fit-range", "1000", "2000"], None),
    "fit-range-one-size": (["{map2d}", "--fit-range", "64", "64"], None),
    "plot-jpg": (["{map2d}", "--plot", "{tmp}/d.jpg"], "--plot must name a .png file"),
    "plot-a-directory": (["{map2d}", "--plot", "{tmp}/a-dir"], "--plot '{tmp}/a-dir' is a directory"),
    "plot-missing-directory": (["{map2d}", "--plot", "{tmp}/nodir/d.png"], "the directory"),
    "plot-in-proc": (["{map2d}", "--plot", "/proc/d.png"], "cannot write in '/proc'"),
    "plot-empty": (["{map2d}", "--plot", ""], "--plot must name a .png file"),
    "plot-before-missing-store": (["{tmp}/nothing", "--plot", "{tmp}/d.svg"], "--plot must name a .png file"),
    "store-missing": (["{tmp}/nothing"], "no map at"),
    "store-corrupt": (["{stores}/corrupt"], "is not a readable zarr store"),
    "store-foreign": (["{stores}/foreign/map.zarr"], "not a fractalscape map"),
    "samples-text": (["{map2d}", "--method", "uncertainty", "--samples", "many"], "is not a valid integer"),
    "samples-zero": (["liu-multiplicative-2d", "--method", "uncertainty", "--samples", "0"], None),
    "samples-negative": (["liu-multiplicative-2d", "--method", "uncertainty", "--samples", "-5"], None),
    "seed-text": (["liu-multiplicative-2d", "--method", "uncertainty", "--seed", "x"], "is not a valid integer"),
    "precision-unknown": (["liu-multiplicative-2d", "--method", "uncertainty", "--precision", "quad"],
                          "is not one of"),
    "uncertainty-bad-config": (["{tmp}/nope.toml", "--method", "uncertainty"], "does not exist"),
    "uncertainty-bad-set": (["liu-multiplicative-2d", "--method", "uncertainty", "--set", "descent.steps=0"],
                            "steps must be an integer > 0"),
    "sohl-dickstein-not-a-zoom": (["{map2d}", "--method", "sohl-dickstein"], None),
    "sohl-dickstein-missing": (["{tmp}/nothing", "--method", "sohl-dickstein"], None),
}


@pytest.mark.parametrize("args, message", _params(DIMENSION_CASES))
def test_bad_dimension_invocation(tmp_path, stores, args, message):
    _paths(tmp_path)
    if message is not None:
        message = message.format(tmp=tmp_path)
    assert_refused(cli("dimension", *_fill(args, tmp_path, stores=stores, map2d=stores / "map2d")), message)
    assert_nothing_complete(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-dir", "a-file"]


ZOOM = ["liu-multiplicative-2d", "--out", "{tmp}/z", "--set", "axis.0.num=32", "--set", "axis.1.num=32",
        "--set", "descent.steps=20"]
ZOOM_CASES = {
    "depth-missing": ([*ZOOM], "Missing option '--depth'"),
    "depth-text": ([*ZOOM, "--depth", "deep"], "is not a valid float"),
    "depth-nan": ([*ZOOM, "--depth", "nan"], None),
    "depth-inf": ([*ZOOM, "--depth", "inf"], None),
    "depth-negative": ([*ZOOM, "--depth", "-1"], None),
    "depth-past-float64": ([*ZOOM, "--depth", "30", "--center", "0.75", "1.0"], "past the float64 floor"),
    "size-word": ([*ZOOM, "--depth", "0.3", "--size", "big"], "--size takes WIDTHxHEIGHT"),
    "size-zero": ([*ZOOM, "--depth", "0.3", "--size", "0x0"], None),
    "center-outside": ([*ZOOM, "--depth", "0.3", "--center", "100", "100"], None),
    "center-nan": ([*ZOOM, "--depth", "0.3", "--center", "nan", "0"], None),
    "center-one-value": ([*ZOOM, "--depth", "0.3", "--center", "0.5"], "center must be two numbers"),
    "frames-negative": ([*ZOOM, "--depth", "0.3", "--frames-per-doubling", "-1"], None),
    "frames-text": ([*ZOOM, "--depth", "0.3", "--frames-per-doubling", "some"], "is not a valid integer"),
    "config-1d-two-sides": (["liu-multiplicative", "--out", "{tmp}/z", "--depth", "0.3", "--size", "10x10"],
                            "size must be one number (axis 'lr')"),
    "config-missing": (["{tmp}/nope.toml", "--out", "{tmp}/z", "--depth", "0.3"], "does not exist"),
    "bad-set": ([*ZOOM, "--depth", "0.3", "--set", "descent.steps=-1"], "steps must be an integer > 0"),
    "out-is-a-file": (["liu-multiplicative-2d", "--out", "{tmp}/a-file", "--depth", "0.3"], None),
}


@pytest.mark.parametrize("args, message", _params(ZOOM_CASES))
def test_bad_zoom_invocation(tmp_path, args, message):
    _paths(tmp_path)
    assert_refused(cli("zoom", *_fill(args, tmp_path)), message)
    assert_nothing_complete(tmp_path)


SWEEP = ["{good}", "--out", "{tmp}/s"]
SWEEP_CASES = {
    "param-missing": ([*SWEEP, "--values", "1 2"], "Missing option '--param'"),
    "values-missing": ([*SWEEP, "--param", "descent.steps"], "Missing option '--values'"),
    "param-unknown-key": ([*SWEEP, "--param", "landscape.nope", "--values", "1 2"], "has no key 'nope'"),
    "param-unknown-table": ([*SWEEP, "--param", "solver.x", "--values", "1 2"], None),
    "one-value": ([*SWEEP, "--param", "descent.steps", "--values", "10"], None),
    "values-text-for-integer": ([*SWEEP, "--param", "descent.steps", "--values", "ten twenty"], None),
    "values-zero-steps": ([*SWEEP, "--param", "descent.steps", "--values", "0 10"], "steps must be an integer > 0"),
    "values-nan": ([*SWEEP, "--param", "axis.0.start", "--values", "nan 0.1"], None),
    "method-unknown": ([*SWEEP, "--param", "descent.steps", "--values", "10 20", "--method", "guess"],
                       "is not one of"),
    "config-missing": (["{tmp}/nope.toml", "--out", "{tmp}/s", "--param", "descent.steps", "--values", "1 2"],
                       "does not exist"),
    "out-is-a-file": (["{good}", "--out", "{tmp}/a-file", "--param", "descent.steps", "--values", "10 20"], None),
}


@pytest.mark.parametrize("args, message", _params(SWEEP_CASES))
def test_bad_sweep_invocation(tmp_path, good, args, message):
    _paths(tmp_path)
    assert_refused(cli("sweep", *_fill(args, tmp_path, good=good)), message)
    assert_nothing_complete(tmp_path)
    assert not list(tmp_path.rglob("sweep.json"))


OTHER_CASES = {
    "unknown-command": (["mapp"], "No such command 'mapp'"),
    "presets-show-unknown": (["presets", "show", "liu-additiv"], "did you mean 'liu-additive'"),
    "presets-show-empty": (["presets", "show", ""], "no preset ''"),
    "presets-show-missing": (["presets", "show"], "Missing argument 'NAME'"),
    "presets-unknown-subcommand": (["presets", "list"], "No such command 'list'"),
    "audit-missing-store": (["audit", "{tmp}/nothing"], "no map at"),
    "audit-samples-text": (["audit", "{tmp}/nothing", "--samples", "x"], "is not a valid integer"),
    "serve-port-too-large": (["serve", "liu-multiplicative-2d", "--port", "70000"], "--port must be 0 to 65535"),
    "serve-port-negative": (["serve", "liu-multiplicative-2d", "--port", "-1"], "--port must be 0 to 65535"),
    "serve-port-text": (["serve", "liu-multiplicative-2d", "--port", "http"], "is not a valid integer"),
    "serve-address-unknown": (["serve", "liu-multiplicative-2d", "--address", "no-such-host.invalid"],
                              "is not a host name or address of this machine"),
    "serve-address-not-here": (["serve", "liu-multiplicative-2d", "--address", "192.0.2.1"], "cannot listen on"),
}


@pytest.mark.parametrize("args, message", _params(OTHER_CASES))
def test_bad_other_invocation(tmp_path, args, message):
    assert_refused(cli(*_fill(args, tmp_path)), message)


def test_serve_on_a_taken_port_in_process():
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        port = taken.getsockname()[1]
        assert_refused(cli("serve", "liu-multiplicative-2d", "--port", port), f"port {port} on 127.0.0.1 is already "
                       "in use (another dashboard or server?); stop it, pass another --port, or --port 0")
    finally:
        taken.close()


def test_a_map_of_another_config_in_out_is_refused(tmp_path, good):
    result = cli("map", good, "--out", tmp_path / "run", "--set", "descent.steps=5")
    assert result.exit_code == 0, result.output
    assert_refused(cli("map", good, "--out", tmp_path / "run"), "already holds a map of a different configuration")


def test_the_suite_has_at_least_150_cases():
    count = (len(CONFIG_CASES) + len(FILE_CASES) + len(MAP_CASES) + len(RENDER_CASES)
             + len(DIMENSION_CASES) + len(ZOOM_CASES) + len(SWEEP_CASES) + len(OTHER_CASES))
    assert count >= 150, count


# An independent sweep: seeded random mutations of configs and random option values, not the grid above.

def _random_value(rng):
    kind = rng.integers(9)
    if kind == 0:
        return float(rng.choice([-1.0, 1.0]) * 10.0 ** rng.uniform(-330, 310))
    if kind == 1:
        return int(rng.choice([-1, 1])) * int(2 ** rng.uniform(0, 63.9))
    if kind == 2:
        return float(rng.choice([float("nan"), float("inf"), float("-inf"), 0.0, -0.0]))
    if kind == 3:
        return "".join(rng.choice(list("abz-_. 0é€\t")) for _ in range(rng.integers(0, 6)))
    if kind == 4:
        return [_random_value(rng) for _ in range(rng.integers(0, 3))]
    if kind == 5:
        return {"k": _random_value(rng)}
    if kind == 6:
        return bool(rng.integers(2))
    if kind == 7:
        return int(rng.integers(-3, 10))
    return float(rng.uniform(-2, 2))


def _random_config(rng) -> dict:
    raw = copy.deepcopy([LANDSCAPE, ADAM, MOMENTUM, NETWORK][rng.integers(4)])
    for _ in range(rng.integers(1, 4)):
        table = list(raw)[rng.integers(len(raw))]
        node = raw[table][0] if table == "axis" else raw[table]
        keys = sorted(node)
        key = keys[rng.integers(len(keys))] if keys and rng.random() < 0.9 else "extra"
        if rng.random() < 0.1:
            node.pop(key, None)
        else:
            node[key] = _random_value(rng)
    return raw


def _small(cfg) -> bool:
    """Whether an accepted config is cheap enough to compute here."""
    model = cfg.model
    sizes = [getattr(model, name, 1) or 1 for name in ("width", "n_data", "dim", "depth")]
    return (cfg.grid.size if hasattr(cfg.grid, "size") else int(math.prod(cfg.grid.shape))) <= 4096 \
        and all(isinstance(s, int) and s <= 64 for s in sizes) and cfg.descent.get("steps", 1000) <= 2000


def _random_option_case(rng, tmp_path, good, map2d):
    token = str(_random_value(rng)) if rng.random() < 0.7 else f"{rng.integers(-5, 5000)}x{rng.integers(-5, 5000)}"
    command = rng.integers(4)
    if command == 0:
        option = ["--set", "--workers", "--scheduler", "--out"][rng.integers(4)]
        if option == "--set":
            keys = ["descent.steps", "axis.0.num", "axis.0.start", "landscape.name", "axis.0.chunk", "descent.x0"]
            token = f"{keys[rng.integers(len(keys))]}={token}"
        elif option == "--out":
            return ["map", good, "--out", f"{tmp_path}/{token}"]
        elif option == "--scheduler" and rng.random() < 0.5:
            token = f"tcp://{token}"
        return ["map", good, "--out", tmp_path / "o", option, token]
    if command == 1:
        option = ["--size", "--how", "--colors", "--x-range", "--out"][rng.integers(5)]
        if option == "--size":
            return ["render", map2d, "--out", tmp_path / "x.png", "--size", token]
        if option == "--x-range":
            return ["render", map2d, "--out", tmp_path / "x.png", "--x-range", token, str(_random_value(rng))]
        if option == "--out":
            return ["render", map2d, "--out", f"{tmp_path}/{token}"]
        return ["render", map2d, "--out", tmp_path / "x.png", option, token]
    if command == 2:
        option = ["--method", "--fit-range", "--plot"][rng.integers(3)]
        if option == "--fit-range":
            return ["dimension", map2d, "--no-interval", "--fit-range", token, str(rng.integers(-3, 70))]
        if option == "--plot":
            return ["dimension", map2d, "--no-interval", "--plot", f"{tmp_path}/{token}"]
        return ["dimension", map2d, "--no-interval", option, token]
    return ["presets", "show", token]


def random_sweep(tmp_path, good, map2d, *, seed: int = 2026, configs: int = 250, options: int = 100) -> dict:
    """Counts of outcomes over ``configs`` random configs and ``options`` random option values.

    ``traceback``: an exception other than a one-line refusal; ``multi_line``: a
    refusal of more than one stderr line; ``silent_wrong``: an accepted map that
    is not complete, finite and in range; ``unbounded``: an accepted config too
    large to compute here (the free-space check is its only guard).
    """
    import json

    import numpy as np

    rng = np.random.default_rng(seed)
    counts = {"refused": 0, "accepted": 0, "traceback": 0, "multi_line": 0, "silent_wrong": 0, "unbounded": 0}
    examples = {key: [] for key in counts}

    def note(kind, case):
        counts[kind] += 1
        if len(examples[kind]) < 5:
            examples[kind].append(case)

    for index in range(configs):
        raw = _random_config(rng)
        try:
            cfg = fs.load_config(copy.deepcopy(raw))
            cfg.dataset()
        except fs.ConfigError as err:
            note("refused" if "\n" not in str(err) else "multi_line", raw)
            continue
        except Exception as err:  # noqa: BLE001 - counting them is the point
            note("traceback", (raw, f"{type(err).__name__}: {str(err)[:100]}"))
            continue
        if not _small(cfg):
            note("unbounded", raw)
            continue
        config = tmp_path / f"r{index}.toml"
        config.write_text(_toml(raw))
        out = tmp_path / f"r{index}"
        result = cli("map", config, "--out", out)
        if result.exception and not isinstance(result.exception, SystemExit):
            note("traceback", (raw, f"{type(result.exception).__name__}: {result.exception}"))
        elif result.exit_code == 2:
            note("refused" if result.stderr.count("\n") == 1 else "multi_line", raw)
        elif result.exit_code != 0 or not (out / "summary.json").is_file():
            note("silent_wrong", (raw, result.output[-200:]))
        else:
            stored = fs.open_map(out)
            steps = json.loads((out / "summary.json").read_text())["config"].get("descent", {}).get("steps", 1000)
            coords_finite = all(np.isfinite(stored[name].values).all() for name in stored.coords
                                if stored[name].dtype.kind == "f")
            in_range = bool(((stored.escape_step.values >= -1) & (stored.escape_step.values <= steps)).all())
            note("accepted" if coords_finite and in_range else "silent_wrong", raw)
    for _ in range(options):
        args = _random_option_case(rng, tmp_path, good, map2d)
        result = cli(*args)
        if result.exception and not isinstance(result.exception, SystemExit):
            note("traceback", (args, f"{type(result.exception).__name__}: {str(result.exception)[:100]}"))
        elif result.exit_code == 0:
            note("accepted", args)
        elif result.exit_code == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.output:
            note("refused", args)
        else:
            note("multi_line", (args, result.exit_code, result.stderr[-300:]))
    return {"counts": counts, "examples": {k: v for k, v in examples.items() if k not in ("refused", "accepted")}}


@pytest.mark.slow
def test_a_random_sweep_finds_no_traceback(tmp_path, stores):
    good = tmp_path / "good.toml"
    good.write_text(GOOD_TOML)
    found = random_sweep(tmp_path, good, stores / "map2d")
    print(found)
    counts = found["counts"]
    assert sum(counts.values()) == 350
    assert counts["traceback"] == 0 and counts["multi_line"] == 0 and counts["silent_wrong"] == 0, found
