"""``fractalscape dimension``, and the measurement that ``fractalscape map`` records in summary.json."""

from __future__ import annotations

import contextlib
import io
import json
import math
import time

import click

from fractalscape.cli import _allow_incomplete, _atomic_png, _incomplete_note, _open_stored, main
from fractalscape.errors import ConfigError

#: Maps up to this many points get a rounding interval by default (it computes the map 4 more times).
INTERVAL_MAX_POINTS = 2**22


def measure(stored, method: str = "auto", *, fit_range=None, interval: bool | None = None):
    """The boundary dimension of a map and its report (summary.json's ``dimension``, ``dimension --json``).

    ``interval=None`` adds the rounding interval (:mod:`fractalscape.rounding`)
    to plain, complete maps of at most :data:`INTERVAL_MAX_POINTS` points.
    Ensemble maps are measured on their ``p_diverged = 0.5`` level set, and
    the report adds the dimension of their uncertain set ``0 < p < 1``.
    """
    from fractalscape.dimension import dimension

    ensemble = "p_diverged" in stored
    labels = stored.p_diverged if ensemble else stored.diverged
    why_not = ("an ensemble map: p_low and p_high bound its labels" if ensemble else
               "the map is incomplete" if stored.attrs.get("incomplete") else
               f"more than {INTERVAL_MAX_POINTS:,} points: pass --interval to compute it" if interval is None
               and labels.size > INTERVAL_MAX_POINTS else None)
    if interval and why_not and interval is not None and not why_not.startswith("more"):
        raise ConfigError(f"no rounding interval for this map: {why_not}")
    interval = why_not is None if interval is None else interval
    result = dimension(stored if interval else labels, method, fit_range=fit_range, interval=interval)
    report = result.to_dict()
    if not interval:
        report["interval_skipped"] = why_not or "not asked for"
    if ensemble:
        report["level"] = 0.5
        try:
            report["uncertain_set"] = dimension(labels, "boxcount", level="uncertain").to_dict()
        except ConfigError as err:
            report["uncertain_set"] = {"skipped": str(err)}
    if stored.attrs.get("incomplete"):
        report["incomplete"] = stored.attrs["incomplete"]
    return result, report


def map_dimension(stored) -> tuple[dict, bytes | None]:
    """The boundary dimension for summary.json and its plot as PNG bytes; a map it cannot measure records why."""
    if stored.diverged.ndim - sum(a.get("ensemble", False) for a in json.loads(stored.attrs["config"])["axis"]) > 2:
        return {"skipped": "dimension is measured on 1-D and 2-D maps"}, None
    try:
        result, report = measure(stored)
    except ConfigError as err:
        return {"skipped": str(err)}, None
    return report, _plot_png(result)


def _interval_text(result) -> str:
    if result.interval is None:
        return ""
    low, high = result.interval
    return f", 95 % interval [{low:.4f}, {high:.4f}] with rounding"


def _plot_png(result) -> bytes:
    """The log-log plot of a dimension estimate (its ``plot()``), as PNG bytes."""
    png = io.BytesIO()
    result.plot().figure.savefig(png, format="png")
    return png.getvalue()


@main.command("dimension")
@click.argument("store")
@click.option("--method", type=click.Choice(["auto", "dyadic", "boxcount", "median-slope", "uncertainty",
                                            "sohl-dickstein"]),
              default="auto", show_default=True,
              help="auto: dyadic for 1-D maps of 2**n + 1 points, else boxcount. uncertainty: from the model "
                   "and window of STORE, which may then be a config or preset (no map needed). sohl-dickstein: "
                   "his protocol on a zoom directory (fractalscape zoom): local slopes pooled over every keyframe.")
@click.option("--fit-range", nargs=2, type=int, default=None, help="Smallest and largest box size (dyadic: level).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--interval/--no-interval", default=None,
              help=f"The 95 % interval over a rounding ensemble (4 more maps); default: maps up to "
                   f"{INTERVAL_MAX_POINTS:,} points.")
@click.option("--samples", type=int, default=2**20, show_default=True,
              help="uncertainty: most pairs drawn at each eps.")
@click.option("--seed", type=int, default=0, show_default=True, help="uncertainty: random seed.")
@click.option("--precision", type=click.Choice(["libm", "fast"]), default=None,
              help="uncertainty: override the config's precision.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="uncertainty: override a config value, as for map.")
@click.option("--plot", "plot_path", default=None, metavar="FILE.png",
              help="Also draw the log-log plot of the counts and the fitted line into FILE.png (checked before "
                   "any work; written whole or not at all).")
@_allow_incomplete
def dimension_command(store, method, fit_range, as_json, interval, samples, seed, precision, overrides, plot_path,
                      allow_incomplete):
    """Fractal dimension of the converged/diverged boundary of a stored map (or, --method uncertainty, a config)."""
    with _atomic_png(plot_path, "--plot") if plot_path is not None else contextlib.nullcontext() as write_plot:
        if method == "uncertainty":
            result = _uncertainty_command(store, as_json, samples, seed, precision, overrides)
        else:
            result = _dimension_of(store, method, fit_range, as_json, interval, allow_incomplete)
        if write_plot is not None:
            write_plot(_plot_png(result))
            click.echo(f"log-log plot -> {plot_path}", err=True)


def _dimension_of(store, method, fit_range, as_json, interval, allow_incomplete):
    """``fractalscape dimension`` of a stored map or a zoom directory: prints it, returns the result."""
    from fractalscape.dimension import default_method

    if method == "sohl-dickstein":
        from fractalscape.zoom import pooled_median_slope

        result = pooled_median_slope(store)
        if as_json:
            click.echo(json.dumps(result.to_dict(), indent=2))
        else:
            click.echo(f"sohl-dickstein: median of {len(result.slopes)} local box-count slopes over the zoom's "
                       f"keyframes: dimension {result.dimension:.4f} +- {result.stderr:.4f}")
        return result
    stored = _open_stored(store, allow_incomplete)
    labels = stored.p_diverged if "p_diverged" in stored else stored.diverged
    if method == "auto":
        method = default_method(labels)
    result, report = measure(stored, method, fit_range=fit_range, interval=interval)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return result
    scale = "level" if method == "dyadic" else "box size"
    lo, hi = result.fit_range
    click.echo(f"{scale:>10s} {'count':>12s}  fitted")
    for size, count in zip(result.sizes, result.counts):
        click.echo(f"{size:>10d} {count:>12d}  {'*' if lo <= size <= hi else ''}")
    of = " of the p_diverged = 0.5 level set" if "level" in report else ""
    click.echo(f"{method}: dimension{of} {result.dimension:.4f} +- {result.stderr:.4f}{_interval_text(result)} "
               f"(fit over {scale}s {lo}..{hi}){_incomplete_note(stored)}")
    uncertain = report.get("uncertain_set", {})
    if "dimension" in uncertain:
        click.echo(f"uncertain set 0 < p < 1: box-count dimension {uncertain['dimension']:.4f} "
                   f"+- {uncertain['stderr'] or math.nan:.4f}")
    return result


def _uncertainty_command(target, as_json, samples, seed, precision, overrides):
    """``fractalscape dimension --method uncertainty`` of a config or a stored map: prints it, returns the result."""
    from pathlib import Path

    from fractalscape.config import read_config, with_overrides
    from fractalscape.store import MAP_NAME, open_map
    from fractalscape.uncertainty import uncertainty

    if Path(target, MAP_NAME).exists() and not overrides:
        source = open_map(target, allow_incomplete=True)  # only its configuration is used
    else:
        source = with_overrides(read_config(target), overrides)
    start = time.perf_counter()
    result = uncertainty(source, samples=samples, seed=seed, precision=precision)
    if as_json:
        click.echo(json.dumps({**result.to_dict(), "seconds": time.perf_counter() - start}, indent=2))
        return result
    click.echo(f"{'eps':>12s} {'pairs':>10s} {'uncertain':>10s}  fitted")
    lo, hi = result.fit_range
    for eps, pairs, count in zip(result.sizes, result.pairs, result.counts):
        click.echo(f"{eps:>12.3e} {pairs:>10d} {count:>10d}  {'*' if lo <= eps <= hi else ''}")
    low, high = result.interval
    click.echo(f"uncertainty: dimension {result.dimension:.4f}, 95 % interval [{low:.4f}, {high:.4f}] "
               f"(exponent {result.exponent:.4f} along {result.axis}, eps {lo:.2e}..{hi:.2e}, "
               f"{time.perf_counter() - start:.1f} s)")
    return result
