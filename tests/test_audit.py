"""fractalscape.audit: rounding perturbations of sampled points, and their certification with arb balls."""

import json

import dask.array as da
import mpmath
import numpy as np
import pytest

import fractalscape as fs
from fractalscape.audit import audit, certified_escape, high_precision_escape, orbit_points
from fractalscape.audit.sampling import RADIUS, draw
from fractalscape.store import write_summary
from reference import gradient_descent

LIU = {"landscape": {"name": "cosine-multiplicative", "delta": 0.2, "wavelength": 0.1},
       "descent": {"x0": 1.0, "steps": 1000, "threshold": 1e8}}


def _stored(config, out):
    info = fs.write_map(fs.open_config(config), out)
    write_summary(out, info)
    return str(out)


def _check_counts(report):
    assert report["stable"] + report["flipped"] == report["sampled"]
    assert sum(b["sampled"] for b in report["by_distance"].values()) == report["sampled"]
    assert report["sampled_near_boundary"] + report["sampled_uniform"] == report["sampled"]
    assert report["certified_agree"] <= report["certified"] <= report["sampled"]
    for counts in report["perturbations"].values():
        assert counts["flipped"] <= counts["run"] <= report["sampled"]
    json.dumps(report)


def _mpmath_escape(lr, steps=1000, threshold=1e8, digits=60):
    """Liu's multiplicative orbit from x0 = 1 in ``digits`` decimal digits: the kernel's stopping rule."""
    with mpmath.workdps(digits):
        x, lr, delta, k = mpmath.mpf(1), mpmath.mpf(lr), mpmath.mpf(0.2), 2 * mpmath.pi / mpmath.mpf(0.1)
        for step in range(steps + 1):
            ripple = 1 + delta * mpmath.cos(k * x)
            if not x * x * ripple <= threshold:
                return step
            x = x - lr * (2 * x * ripple - x * x * delta * k * mpmath.sin(k * x))
    return -1


@pytest.fixture(scope="module")
def liu_map(tmp_path_factory):
    axis = {"name": "lr", "start": 0.0, "stop": 1.5, "num": 2**16 + 1, "chunk": 8192}
    return _stored({**LIU, "axis": [axis]}, tmp_path_factory.mktemp("liu"))


@pytest.fixture(scope="module")
def liu_report(liu_map):
    return audit(liu_map, samples=1000, certify_seconds=3)


def test_quadratic_map_is_fully_stable(tmp_path):
    config = {"landscape": {"name": "quadratic"}, "descent": {"x0": 1.0, "steps": 1000},
              "axis": [{"name": "lr", "start": 0.0, "stop": 2.0, "num": 4097}]}
    report = audit(_stored(config, tmp_path), samples=200, certify_seconds=10)
    _check_counts(report)
    assert report["sampled"] == 200 and report["sampled_near_boundary"] == 2  # the two points at lr ~ 1.005
    assert report["stable"] == 200 and report["flipped"] == 0
    assert all(p["flipped"] == 0 for p in report["perturbations"].values())
    assert report["certified"] == report["certified_agree"] == 200


def test_liu_multiplicative_flips_concentrate_near_the_boundary(liu_report):
    _check_counts(liu_report)
    near, far = liu_report["by_distance"]["1"], liu_report["by_distance"]["16+"]
    assert near["flipped"] >= 2  # 1 to 3 % of them: 16, 12 and 6 of ~520 with seeds 0, 1, 2
    assert near["fraction_flipped"] > 3 * far["fraction_flipped"]
    assert set(liu_report["perturbations"]) == {"rerun", "lr+1ulp", "lr-1ulp", "precision=fast",
                                                "high-precision-106bit"}
    assert liu_report["perturbations"]["rerun"]["flipped"] == 0  # the store is this code's map
    assert liu_report["flipped_points"] and all(p["distance"] <= 7 for p in liu_report["flipped_points"])


def test_certified_labels_agree_with_mpmath(liu_report):
    # Flipped points are certified first; check the certified escape steps against a plain mpmath orbit.
    listed = [p for p in liu_report["flipped_points"] if p["certified_escape_step"] is not None][:4]
    assert listed
    for point in listed:
        digits = point["certified_bits"] * 2 // 3 + 30  # twice the bits that sufficed for the balls
        assert point["certified_escape_step"] == _mpmath_escape(point["coords"]["lr"], digits=digits)
    assert liu_report["certification"]["flipped_certified"] >= len(listed)


def test_audit_is_reproducible_with_its_seed(liu_map, liu_report):
    again = audit(liu_map, samples=1000, certify_seconds=0, high_precision_seconds=0)
    for name in ("lr+1ulp", "lr-1ulp", "precision=fast"):
        assert again["perturbations"][name] == liu_report["perturbations"][name]
    assert again["perturbations"]["high-precision-106bit"]["available"] is False
    other = audit(liu_map, samples=1000, seed=1, certify_seconds=0, high_precision_seconds=1e-9)
    assert other["perturbations"]["high-precision-106bit"]["run"] <= 1  # out of time at once
    assert [p["index"] for p in other["flipped_points"]] != [p["index"] for p in again["flipped_points"]]


def test_certified_and_high_precision_on_easy_points_match_mpmath_and_numpy():
    cfg = {**LIU, "axis": [{"name": "lr", "start": 0.1, "stop": 1.4, "num": 2}]}
    points = orbit_points(cfg, np.array([[0.1], [1.4]]))
    numpy_escape, _ = gradient_descent("cosine-multiplicative", {"delta": 0.2, "wavelength": 0.1},
                                       np.array([[0.1, 1.4]]), np.ones((1, 2)), 1000, 1e8)
    for point, expected in zip(points, numpy_escape):
        assert certified_escape(point, 1000, 1e8).escape_step == expected == _mpmath_escape(point.lr[0])
        assert high_precision_escape(point, 1000, 1e8) == expected
    assert numpy_escape[0] == -1 and numpy_escape[1] >= 0
    report = audit(fs.open_config(cfg), samples=5)
    assert (report["sampled"], report["flipped"], report["certified"], report["certified_agree"]) == (2, 0, 2, 2)


def test_certification_gives_up_rather_than_guess():
    # Too few bits for 1000 chaotic steps near the boundary: undecided, never a wrong label.
    point = orbit_points({**LIU, "axis": [{"name": "lr", "start": 0.0, "stop": 1.5, "num": 2}]},
                         np.array([[0.024261474609375]]))[0]
    assert certified_escape(point, 1000, 1e8, bits=(60,)).reason == "undecided"
    assert certified_escape(point, 1000, 1e8, bits=(128, 512)).escape_step == _mpmath_escape(point.lr[0]) == -1
    assert certified_escape(point, 1000, 1e8, deadline=0.0).reason == "time"


def test_2d_landscape_map():
    ds = fs.open_config(fs.config.with_overrides(fs.config.read_config("liu-multiplicative-2d"), [
        "axis.0.num=48", "axis.0.chunk=20", "axis.1.num=40", "axis.1.chunk=16", "descent.steps=200"]))
    report = audit(ds, samples=120, certify_seconds=3)
    _check_counts(report)
    assert report["sampled"] == 120 and report["sampled_near_boundary"] == 60
    assert {"lr+1ulp", "lr-1ulp", "x0+1ulp", "x0-1ulp"} <= set(report["perturbations"])
    assert report["perturbations"]["rerun"]["flipped"] == 0  # one run_points call per row puts points back right
    assert report["certified"] > 0 and report["certification"]["available"]


TANH = {"network": {"nonlinearity": "tanh", "width": 4, "data": "full"}, "descent": {"steps": 30, "precision": "fast"}}
LOG_AXIS = {"start": 0.1, "stop": 1000.0, "scale": "log"}


@pytest.mark.parametrize("axes", [
    [{"name": "lr_W0", "num": 16, "chunk": 5, **LOG_AXIS}, {"name": "lr_W1", "num": 12, "chunk": 6, **LOG_AXIS}],
    [{"name": "lr_W0", "num": 24, "chunk": 7, **LOG_AXIS}],
])
def test_network_maps_get_ulp_and_precision_only(axes):
    descent = {**TANH["descent"], **({"lr_W1": 1.0} if len(axes) == 1 else {})}
    report = audit(fs.open_config({**TANH, "descent": descent, "axis": axes}), samples=40)
    _check_counts(report)
    assert report["perturbations"]["precision=libm"]["run"] == report["sampled"]
    assert report["perturbations"]["high-precision-106bit"]["available"] is False
    assert report["certified"] == 0 and report["certification"]["available"] is False
    assert "none here" in report["claims"]


def test_ensemble_maps_measure_distance_within_each_member():
    axes = [{"name": "lr", "start": 0.0, "stop": 1.5, "num": 301},
            {"name": "lr_ulp", "start": -2, "stop": 2, "num": 5, "ensemble": True}]
    config = {**LIU, "descent": {"steps": 300}, "axis": axes}
    report = audit(fs.open_config(config), samples=150, certify_seconds=3)
    _check_counts(report)
    assert report["perturbations"]["rerun"]["flipped"] == 0  # members rerun with their own ulp shift
    assert "lr_ulp+1ulp" not in report["perturbations"] and "lr+1ulp" in report["perturbations"]
    assert report["certified"] > 0
    point = orbit_points(config, np.array([[0.3, 2.0]]))[0]
    assert point.lr == (float(np.nextafter(np.nextafter(0.3, 1), 1)),)


def test_infinite_threshold_has_no_exact_counterpart():
    config = {"landscape": {"name": "quadratic"}, "descent": {"steps": 2000, "threshold": float("inf")},
              "axis": [{"name": "lr", "start": 0.9, "stop": 1.3, "num": 33}]}
    report = audit(fs.open_config(config), samples=20)
    _check_counts(report)
    assert report["perturbations"]["high-precision-106bit"]["available"] is False
    assert "threshold = inf" in report["perturbations"]["high-precision-106bit"]["reason"]
    assert report["certified"] == 0 and report["boundary_points"] > 0  # x overflows for lr >~ 1.2


def test_sohl_dickstein_label_is_the_one_compared():
    config = {**TANH, "descent": {"steps": 30, "threshold": float("inf"), "label": "sohl-dickstein", "lr_W1": 10.0},
              "axis": [{"name": "lr_W0", "num": 40, **LOG_AXIS}]}
    ds = fs.open_config(config)
    report = audit(ds, samples=40)
    _check_counts(report)
    assert report["sampled"] == 40 and report["boundary_points"] > 0
    assert report["perturbations"]["rerun"]["flipped"] == 0
    assert (ds.diverged.values != (ds.escape_step.values >= 0)).any()  # the labels differ from escape steps


def test_map_without_boundary_is_all_interior():
    ds = fs.open_config({"landscape": {"name": "quadratic"}, "descent": {"steps": 100},
                         "axis": [{"name": "lr", "start": 0.0, "stop": 0.5, "num": 101}]})
    report = audit(ds, samples=500, certify_seconds=0)
    assert report["sampled"] == 101 and report["boundary_points"] == 0 and report["sampled_near_boundary"] == 0
    assert report["by_distance"]["16+"]["sampled"] == 101 and report["flipped"] == 0
    assert "no boundary" in report["note"]
    assert report["certified"] == 0 and report["certification"]["tried"] == 0


def test_draw_distances_match_brute_force():
    labels = np.random.default_rng(3).random((37, 29)) < 0.03  # sparse: distances up to the clip
    sample = draw(da.from_array(labels, chunks=(5, 6)), 300, np.random.default_rng(0))
    assert len({tuple(i) for i in sample.index.tolist()}) == 300
    others = {True: np.argwhere(~labels), False: np.argwhere(labels)}
    for (i, j), d in zip(sample.index, sample.distance):
        other = others[bool(labels[i, j])]
        expected = np.abs(other - [i, j]).max(axis=1).min() if len(other) else RADIUS + 1
        assert d == min(expected, RADIUS + 1)
    assert (sample.distance[sample.near_boundary] == 1).all()
    assert (sample.diverged == labels[tuple(sample.index.T)]).all()


def test_bad_inputs(tmp_path):
    config = {"landscape": {"name": "quadratic"}, "axis": [{"name": "lr", "start": 0.0, "stop": 2.0, "num": 9}]}
    with pytest.raises(fs.ConfigError, match="no map at"):
        audit(str(tmp_path / "nothing"))
    incomplete = tmp_path / "incomplete"
    fs.write_map(fs.open_config(config), incomplete)
    with pytest.raises(fs.ConfigError, match="incomplete"):
        audit(str(incomplete))
    with pytest.raises(fs.ConfigError, match="incomplete"):
        audit(str(incomplete / "map.zarr"))
    write_summary(incomplete, {})
    assert audit(str(incomplete / "map.zarr"), samples=3)["sampled"] == 3
    for bad in (0, -1, 2.5, "10", True):
        with pytest.raises(fs.ConfigError, match="samples must be an integer >= 1"):
            audit(str(incomplete), samples=bad)
    with pytest.raises(fs.ConfigError, match="seed"):
        audit(str(incomplete), seed=-1)
    with pytest.raises(fs.ConfigError, match="certify_seconds"):
        audit(str(incomplete), certify_seconds=float("nan"))
    with pytest.raises(fs.ConfigError, match="high_precision_seconds"):
        audit(str(incomplete), high_precision_seconds=-1)
    for bad in ([], [128, 20], 512, [128.0]):
        with pytest.raises(fs.ConfigError, match="certify_bits"):
            audit(str(incomplete), certify_bits=bad)
    with pytest.raises(fs.ConfigError, match="output directory"):
        audit(42)
    with pytest.raises(fs.ConfigError, match="trainability map"):
        audit(fs.open_config(config)[["final_loss"]].drop_attrs())
