"""Audit a stored trainability map: do its labels survive rounding, and can some be proved?

:func:`audit` samples points of a map, half next to the boundary and half
uniformly (:mod:`fractalscape.audit.sampling`), and re-runs each under
perturbations, through :func:`fractalscape.trainability.run_points`:

``rerun``
    the same coordinates and precision with the current code (a map written
    by another version of the kernels may differ here);
``<axis>+1ulp``, ``<axis>-1ulp``
    the coordinate on one axis moved to the next double up or down;
``precision=<other>``
    the other sin/cos (tanh) implementation, ``libm`` <-> ``fast``;
``high-precision-106bit``
    landscapes ``quadratic``, ``cosine-additive``, ``cosine-multiplicative``
    only: the GD orbit in 106-bit floating point (double-double precision),
    from the formulas, not from the kernels (:mod:`fractalscape.audit.balls`).

A point is *flipped* if any perturbation gives it the other label
(the map's ``diverged``: ``escape_step >= 0``, or for networks with
``label = "sohl-dickstein"`` ``not score < 0``) than the stored one,
*stable* otherwise.
The 106-bit reruns and the certification run within time budgets
(``high_precision_seconds``, ``certify_seconds``), so the report says how
many points each covered. Within its budget, flipped points first, points
are *certified*:
the exact real-number orbit of the point's coordinates is enclosed in arb
balls of rising precision until the enclosure decides the label
(:func:`fractalscape.audit.balls.certified_escape`). Networks get the
rerun, ulp and precision perturbations only.

Ensemble axes (:mod:`fractalscape.ensemble`) are sampled like the others,
but distances are measured within each member, and a rounding axis (``ulp``,
``<axis>_ulp``) is not itself moved by an ulp: its members' shifts are
applied to the coordinates they move, in the reruns and the arb orbits.

A map without boundary (one label everywhere) is audited like any other: all
its samples are uniform, every distance is ``16+`` and the report's ``note``
says so.
"""

from __future__ import annotations

import json
import math
import os
import time

import dask.array as da
import numpy as np
import xarray as xr

from fractalscape.config import config_of, load_config
from fractalscape.ensemble import shift_ulp, ulp_targets
from fractalscape.errors import ConfigError
from fractalscape.gd import axis_slots
from fractalscape.store import MAP_NAME, is_complete, open_map
from fractalscape.trainability import kernel_axes, run_points
from fractalscape.trig import TRIGS

from fractalscape.audit.balls import (
    CERTIFY_BITS, FAMILIES, HIGH_PRECISION_BITS, OrbitPoint, certified_escape, high_precision_escape,
)
from fractalscape.audit.sampling import BUCKETS, RADIUS, bucket_names, draw

__all__ = ["audit", "orbit_points", "OrbitPoint", "certified_escape", "high_precision_escape"]

HIGH_PRECISION = f"high-precision-{HIGH_PRECISION_BITS}bit"
#: Flipped points listed in the report, at most.
LISTED_POINTS = 20

CLAIMS = (
    "An audit re-runs a random sample of {sampled} of the map's {points} points ({sampling}; seed {seed}), "
    "not the whole map: nothing is claimed about the points it did not sample. 'flipped' counts sampled "
    "points whose label changes under at least one perturbation (a rerun with the current code, +-1 ulp of "
    "each swept coordinate, the other sin/cos implementation{hp}); this measures how sensitive the labels "
    "are to rounding, not whether they are true: a stable label can still differ from exact arithmetic, and "
    "a flipped label is one floating-point GD does not determine robustly. Near-boundary points are "
    "over-represented, so the overall flipped fraction is not the map's; 'uniform_flipped_fraction' (the "
    "uniform half) estimates that. 'certified' labels are proved, by arb ball arithmetic, for the exact "
    "real-number GD orbit from the point's double coordinates (k = 2 pi / wavelength with the exact pi), "
    "with the kernel's stopping rule; they hold for the certified points only{cert}."
)


def _open(store) -> tuple[xr.Dataset, str]:
    """The map behind ``store`` (an output directory, its map.zarr, or a Dataset) and a name for it."""
    if isinstance(store, xr.Dataset):
        if "escape_step" not in store or "config" not in store.attrs:
            raise ConfigError("audit needs a trainability map (escape_step and attrs['config']); "
                              "pass an output directory of 'fractalscape map' or fractalscape.trainability(...)")
        readouts = [v for v in ("diverged", "escape_step") if v in store]
        return store[readouts].persist(), "<dataset>"  # a lazy map: run its GD once, not once per pass
    if not isinstance(store, (str, os.PathLike)):
        raise ConfigError(f"audit takes a map's output directory (str or path), got {type(store).__name__}")
    where = str(store).rstrip("/")
    ds = open_map(where)
    out_dir = where[: -len(MAP_NAME)].rstrip("/") or "." if where.endswith(MAP_NAME) else where
    if not is_complete(out_dir):
        raise ConfigError(f"the map in {out_dir!r} is incomplete (no summary.json); finish it first: "
                          f"'fractalscape map CONFIG --out {out_dir}' resumes it")
    if "escape_step" not in ds:
        raise ConfigError(f"{where!r} has no escape_step variable; audit needs a trainability map")
    return ds, where


def _check_seconds(what: str, value) -> None:
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
            or not (math.isfinite(value) and value >= 0)):
        raise ConfigError(f"{what} must be a finite number of seconds >= 0 (0: none), got {value!r}")


def _check_options(samples, seed, high_precision_seconds, certify_seconds, certify_bits) -> None:
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ConfigError(f"samples must be an integer >= 1, got {samples!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    _check_seconds("high_precision_seconds", high_precision_seconds)
    _check_seconds("certify_seconds", certify_seconds)
    bits = list(certify_bits) if isinstance(certify_bits, (list, tuple)) else None
    if not bits or any(isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 53 for b in bits):
        raise ConfigError(f"certify_bits must be a list of integers >= 53 (e.g. [128, 512]), got {certify_bits!r}")


def _diverged(readouts: np.ndarray, label: str) -> np.ndarray:
    """The map's label from readouts, as :func:`fractalscape.trainability.trainability` defines it."""
    return ~(readouts["score"] < 0) if label == "sohl-dickstein" else readouts["escape_step"] >= 0


def _rerun(config: dict, coords: np.ndarray, precision: str, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Label and escape step at each row of ``coords`` (points x axes): one run_points call per map row."""
    rows: dict[bytes, list[int]] = {}
    for i, head in enumerate(coords[:, :-1]):
        rows.setdefault(head.tobytes(), []).append(i)  # bits: 0.0 and -0.0 are different rows
    diverged = np.empty(len(coords), dtype=bool)
    escape = np.empty(len(coords), dtype=np.int32)
    for members in rows.values():
        first = coords[members[0]]
        axes = [first[a : a + 1] for a in range(coords.shape[1] - 1)] + [coords[members, -1]]
        readouts = run_points(config, axes, precision=precision).reshape(-1)
        diverged[members] = _diverged(readouts, label)
        escape[members] = readouts["escape_step"]
    return diverged, escape


def _shifted(grid, coords: np.ndarray) -> np.ndarray:
    """``coords`` (points x axes) with a rounding ensemble's ulp shifts applied to the axes it moves."""
    out = coords.copy()
    for axis, targets in ulp_targets(grid.names, grid.ensemble_names).items():
        shifts = coords[:, grid.names.index(axis)]
        for k in np.unique(shifts):
            for target in targets:
                column = grid.names.index(target)
                out[shifts == k, column] = shift_ulp(coords[shifts == k, column], round(k))
    return out


def orbit_points(source, coords) -> list[OrbitPoint]:
    """The :class:`OrbitPoint` of each row of ``coords`` (points x axes) of a landscape map or config.

    Examples
    --------
    >>> cfg = {"landscape": {"name": "cosine-multiplicative"},
    ...        "axis": [{"name": "lr", "start": 0.0, "stop": 1.5, "num": 3}]}
    >>> orbit_points(cfg, np.array([[0.75]]))
    [OrbitPoint(family='cosine-multiplicative', lr=(0.75,), x0=(1.0,), delta=0.2, wavelength=0.1)]
    """
    cfg = load_config(config_of(source) if isinstance(source, xr.Dataset) else source)
    land = cfg.model
    if getattr(land, "name", None) not in FAMILIES:
        raise ConfigError(f"arbitrary-precision orbits exist for the landscapes {', '.join(FAMILIES)} only, "
                          f"not {getattr(land, 'name', 'a network')!r}")
    if cfg.descent.get("optimizer", "gd") != "gd":
        raise ConfigError(f"arbitrary-precision orbits follow plain GD only, not optimizer "
                          f"{cfg.descent['optimizer']!r}: audit a map with optimizer = 'gd'")
    dim = land.dim
    lr = cfg.descent["lr"]
    defaults = np.concatenate([np.full(dim, np.nan) if lr is None else lr, cfg.descent["x0"], land.theta_vector()])
    values = np.tile(defaults, (len(coords), 1))
    coords = _shifted(cfg.grid, np.asarray(coords, np.float64))
    kept = kernel_axes(cfg.grid)
    for name, slots in zip(kept, axis_slots(land, kept)[:, : len(land.slots())]):
        values[:, slots] = coords[:, cfg.grid.names.index(name), None]
    theta = list(land.params)
    return [
        OrbitPoint(land.name, tuple(map(float, row[:dim])), tuple(map(float, row[dim : 2 * dim])),
                   *(float(row[2 * dim + theta.index(p)]) for p in ("delta", "wavelength") if p in theta))
        for row in values
    ]


def _coordinates(ds: xr.Dataset, names, index: np.ndarray) -> np.ndarray:
    """Stored coordinates of the sampled grid indices, shape (points, axes)."""
    columns = []
    for a, name in enumerate(names):
        values = ds[name].data[index[:, a]]
        columns.append(np.asarray(values.compute() if isinstance(values, da.Array) else values, np.float64))
    return np.stack(columns, axis=1)


def _gather(variable: xr.DataArray, index: np.ndarray) -> np.ndarray:
    """Values of a map variable at the grid indices ``index`` (points x axes)."""
    data = variable.data
    if isinstance(data, da.Array):
        return data.vindex[tuple(index.T)].compute()
    return np.asarray(data)[tuple(index.T)]


def _perturbations(grid, coords: np.ndarray, precision: str) -> dict:
    """``{name: (coordinates, precision)}`` of every rerun: as stored, +-1 ulp per axis, other precisions.

    A rounding ensemble's axis counts ulp shifts: it is not moved itself.
    """
    runs = {"rerun": (coords, precision)}
    rounding = ulp_targets(grid.names, grid.ensemble_names)
    for a, name in enumerate(grid.names):
        if name in rounding:
            continue
        for sign, direction in (("+", np.inf), ("-", -np.inf)):
            moved = coords.copy()
            moved[:, a] = np.nextafter(coords[:, a], direction)
            runs[f"{name}{sign}1ulp"] = (moved, precision)
    for other in TRIGS:
        if other != precision:
            runs[f"precision={other}"] = (coords, other)
    return runs


def _by_distance(distance: np.ndarray, flipped: np.ndarray) -> dict:
    buckets = bucket_names(distance)
    out = {}
    for name, _, _ in BUCKETS:
        here = buckets == name
        k, n = int(flipped[here].sum()), int(here.sum())
        out[name] = {"sampled": n, "flipped": k, "fraction_flipped": _fraction(k, n)}
    return out


def _high_precision(points, steps, threshold, seconds):
    """106-bit escape steps of ``points`` in order until time is up (None: not run)."""
    deadline = time.perf_counter() + seconds
    out = []
    for point in points:
        out.append(None if time.perf_counter() > deadline else
                   high_precision_escape(point, steps, threshold, deadline=deadline))
    return out


def _certify(points, order, steps, threshold, seconds, bits):
    """Certified escape steps (None: not certified) and the precision that decided, in ``order`` until time is up."""
    escape = [None] * len(points)
    decided_bits = [None] * len(points)
    deadline = time.perf_counter() + seconds
    tried = 0
    for i in order:
        if seconds <= 0 or time.perf_counter() > deadline:
            break
        tried += 1
        result = certified_escape(points[i], steps, threshold, bits=bits, deadline=deadline)
        if result.reason == "decided":
            escape[i], decided_bits[i] = result.escape_step, result.bits
    return escape, decided_bits, tried


def _fraction(k: int, n: int):
    return k / n if n else None


def audit(store, *, samples: int = 1000, seed: int = 0, high_precision_seconds: float = 20.0,
          certify_seconds: float = 10.0, certify_bits=CERTIFY_BITS) -> dict:
    """Re-run a sample of a map's points under rounding perturbations; certify some labels.

    Parameters
    ----------
    store : str, path or xarray.Dataset
        The output directory of ``fractalscape map`` (or its ``map.zarr``),
        complete (its ``summary.json`` written); or a trainability Dataset.
    samples : int
        Points to audit (at most the map's size): half drawn from the
        points with a neighbour of the other label, the rest uniformly.
    seed : int
        Seed of the draw.
    high_precision_seconds : float
        Time budget of the 106-bit reruns (landscapes it knows only; 0:
        none), run in the draw's order, near-boundary points first; its
        ``run`` count says how many fitted.
    certify_seconds : float
        Time budget of the certification (0: none). Flipped points go first.
    certify_bits : sequence of int
        Rising precisions each certification tries.

    Returns
    -------
    dict
        JSON-serialisable:

        - ``sampled``, ``stable``, ``flipped`` (stable + flipped = sampled),
          ``sampled_near_boundary``, ``sampled_uniform``, ``sampling`` (in
          words), ``boundary_points`` (points of the map with a neighbour of
          the other label), ``note`` (None, or why the map has no boundary);
        - ``perturbations``: ``{name: {"run": n, "flipped": k}}``, the
          high-precision one with ``available: False`` and a ``reason``
          where it was not run;
        - ``uniform_flipped_fraction`` and its ``_stderr``: the uniform
          half's flipped fraction, an estimate for the whole map;
        - ``certified``, ``certified_agree`` (certified with the stored
          label), ``certification`` (tried, undecided, bits, budget, agreement
          of the escape steps and of the flipped points);
        - ``by_distance``: ``{bucket: {"sampled", "flipped",
          "fraction_flipped"}}`` over the buckets ``1``, ``2-3``, ``4-7``,
          ``8-15``, ``16+`` of grid cells to the nearest point of the other
          label (:mod:`fractalscape.audit.sampling`);
        - ``flipped_points``: up to 20 flipped points with every run's
          escape step (None: not run) and the certified one;
        - ``seconds`` (total), ``seconds_by_stage``, ``store``, ``model``,
          ``config``, ``shape``, ``points``, ``seed``, and ``claims``: what the
          audit can and cannot claim, in words.

    Examples
    --------
    >>> import fractalscape as fs
    >>> ds = fs.open_config({"landscape": {"name": "quadratic"}, "descent": {"steps": 200},
    ...                      "axis": [{"name": "lr", "start": 0.0, "stop": 2.0, "num": 65}]})
    >>> report = audit(ds, samples=20, certify_seconds=5)
    >>> report["sampled"], report["flipped"], report["certified"], report["certified_agree"]
    (20, 0, 20, 20)
    """
    start = time.perf_counter()
    _check_options(samples, seed, high_precision_seconds, certify_seconds, certify_bits)
    ds, where = _open(store)
    config = config_of(ds)
    cfg = load_config(config)
    names = cfg.grid.names
    label = cfg.descent.get("label", "threshold")
    diverged = ds.diverged.data if "diverged" in ds else ds.escape_step.data >= 0
    if not isinstance(diverged, da.Array):
        diverged = da.from_array(diverged)
    seconds = {}

    members = tuple(names.index(n) for n in cfg.grid.ensemble_names)
    sample = draw(diverged, samples, np.random.default_rng(seed), members)
    coords = _coordinates(ds, names, sample.index)
    stored = sample.diverged
    stored_escape = _gather(ds.escape_step, sample.index)
    n = len(stored)
    seconds["sample"] = time.perf_counter() - start

    t = time.perf_counter()
    runs = _perturbations(cfg.grid, coords, cfg.descent["precision"])
    reruns = {name: _rerun(config, c, p, label) for name, (c, p) in runs.items()}
    escapes = {name: escape for name, (_, escape) in reruns.items()}
    seconds["perturbations"] = time.perf_counter() - t

    steps, threshold = cfg.descent["steps"], cfg.descent["threshold"]
    model = ds.attrs.get("model", getattr(cfg.model, "name", None))
    formulas = getattr(cfg.model, "name", None) in FAMILIES and math.isfinite(threshold)
    if not math.isfinite(threshold):
        reason = ("threshold = inf: floating-point GD then stops at an overflow, which exact arithmetic "
                  "never reaches, so an exact orbit cannot decide such a label")
    else:
        reason = f"no arbitrary-precision formulas for {model!r} (only {', '.join(FAMILIES)})"
    unavailable = {"run": 0, "flipped": 0, "available": False, "reason": reason}
    points = orbit_points(config, coords) if formulas else []
    flips = {name: labels != stored for name, (labels, _) in reruns.items()}
    perturbations = {name: {"run": n, "flipped": int(f.sum())} for name, f in flips.items()}
    perturbations[HIGH_PRECISION] = unavailable
    if formulas and high_precision_seconds > 0:
        t = time.perf_counter()
        hp = _high_precision(points, steps, threshold, high_precision_seconds)
        escapes[HIGH_PRECISION] = np.array([-2 if e is None else e for e in hp], np.int32)  # -2: not run
        ran = escapes[HIGH_PRECISION] != -2
        flips[HIGH_PRECISION] = ran & ((escapes[HIGH_PRECISION] >= 0) != stored)
        perturbations[HIGH_PRECISION] = {"run": int(ran.sum()), "flipped": int(flips[HIGH_PRECISION].sum())}
        seconds["high_precision"] = time.perf_counter() - t
    elif formulas:
        perturbations[HIGH_PRECISION] = dict(unavailable, reason="not requested (high_precision_seconds=0)")
    flipped = np.logical_or.reduce(list(flips.values()))

    t = time.perf_counter()
    certified_escape_step, certified_bits, tried = [None] * n, [None] * n, 0
    if formulas:
        order = sorted(range(n), key=lambda i: not flipped[i])  # flipped points first, then the draw's order
        certified_escape_step, certified_bits, tried = _certify(points, order, steps, threshold,
                                                                certify_seconds, certify_bits)
    seconds["certify"] = time.perf_counter() - t
    certified = np.array([e is not None for e in certified_escape_step])
    agree = np.array([e is not None and (e >= 0) == s for e, s in zip(certified_escape_step, stored)])
    same_step = sum(e == s for e, s in zip(certified_escape_step, stored_escape.tolist()))

    uniform = ~sample.near_boundary
    uniform_flipped = int(flipped[uniform].sum())

    listed = [
        {
            "index": sample.index[i].tolist(),
            "coords": dict(zip(names, coords[i].tolist())),
            "distance": int(sample.distance[i]),
            "stored_escape_step": int(stored_escape[i]),
            "stored_diverged": bool(stored[i]),
            "escape_step": {name: None if e[i] == -2 else int(e[i]) for name, e in escapes.items()},
            "certified_escape_step": certified_escape_step[i],
            "certified_bits": certified_bits[i],
        }
        for i in np.flatnonzero(flipped)[:LISTED_POINTS]
    ]
    sampling = (f"{int(sample.near_boundary.sum())} drawn from the {sample.boundary_points} points next to the "
                f"boundary, {int(uniform.sum())} uniformly")
    note = None
    if sample.boundary_points == 0:
        note = "the map has no boundary (one label everywhere): all points are interior and every sample is uniform"
    cert_note = "" if formulas else f"; none here: {unavailable['reason']}"
    seconds["total"] = time.perf_counter() - start
    report = {
        "store": where,
        "model": model,
        "config": config,
        "shape": list(diverged.shape),
        "points": int(diverged.size),
        "samples_requested": int(samples),
        "seed": int(seed),
        "sampling": sampling,
        "sampled": n,
        "sampled_near_boundary": int(sample.near_boundary.sum()),
        "sampled_uniform": int(uniform.sum()),
        "boundary_points": sample.boundary_points,
        "stable": int(n - flipped.sum()),
        "flipped": int(flipped.sum()),
        "uniform_flipped_fraction": _fraction(uniform_flipped, int(uniform.sum())),
        "uniform_flipped_fraction_stderr": (
            math.sqrt(uniform_flipped * (uniform.sum() - uniform_flipped) / uniform.sum() ** 3)
            if uniform.any() else None
        ),
        "perturbations": perturbations,
        "certified": int(certified.sum()),
        "certified_agree": int(agree.sum()),
        "certification": {
            "available": formulas,
            "tried": tried,
            "undecided": tried - int(certified.sum()),
            "seconds_budget": float(certify_seconds),
            "bits": list(certify_bits),
            "decided_at_bits": {str(b): certified_bits.count(b) for b in certify_bits if certified_bits.count(b)},
            "same_escape_step": int(same_step),
            "flipped_certified": int((certified & flipped).sum()),
            "flipped_certified_agree": int((agree & flipped).sum()),
        },
        "by_distance": _by_distance(sample.distance, flipped),
        "distance": f"Chebyshev distance in grid cells to the nearest point of the other label, exact up to "
                    f"{RADIUS}",
        "flipped_points": listed,
        "note": note,
        "seconds": seconds["total"],
        "seconds_by_stage": seconds,
        "claims": CLAIMS.format(sampled=n, points=int(diverged.size), sampling=sampling, seed=seed,
                                hp=f", a {HIGH_PRECISION_BITS}-bit rerun" if "high_precision" in seconds else "",
                                cert=cert_note),
    }
    json.dumps(report)  # fail here, not in the caller, if something is not JSON-serialisable
    return report
