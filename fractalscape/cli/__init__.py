"""The ``fractalscape`` command: the group, and the commands that make and draw maps.

``dimension`` (and the measurement ``map`` records) is in
:mod:`fractalscape.cli.dimension`, the zoom commands (``zoom``,
``reproduce``) in :mod:`fractalscape.cli.zoom`, ``serve`` in
:mod:`fractalscape.cli.serve`.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
import time

import click

from fractalscape.errors import ConfigError


class _Command(click.Group):
    """Prints :class:`ConfigError`, and click's usage errors, as one line and exits 2, without a traceback.

    Ctrl-C that no command handles itself is one line too, with exit status 130.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ConfigError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)
        except click.UsageError as err:  # a bad option of a command: click would print three lines
            where = err.ctx.command_path if err.ctx is not None else ctx.command_path
            click.echo(f"error: {err.format_message()} (see '{where} --help')", err=True)
            sys.exit(2)
        except KeyboardInterrupt:  # before a command's own handler (e.g. while a cluster starts): click says "Aborted!"
            click.echo("\ninterrupted: what finished is kept and nothing else is marked complete; run the same "
                       "command to resume", err=True)
            sys.exit(130)


@click.group(cls=_Command)
@click.version_option(package_name="fractalscape")
def main():
    """Map where gradient descent trains and where it diverges."""


@main.command("map")
@click.argument("config")
@click.option("--out", "out_dir", required=True,
              help="Output directory or fsspec URL (map.zarr, map.png, summary.json).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set descent.steps=100 --set axis.0.num=4097.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Compute on a running dask.distributed scheduler.")
@click.option("--workers", type=int, default=None, help="Compute on a LocalCluster of N worker processes.")
@click.option("--wait", is_flag=True, help="If another map run is writing --out, wait for it instead of refusing.")
@click.option("--force", is_flag=True, help="Start even if the store may not fit the free space of --out.")
def map_command(config, out_dir, overrides, progress, scheduler, workers, wait, force):
    """Compute the trainability map of CONFIG (a TOML file or preset name) into --out."""
    from fractalscape.config import load_config, read_config, with_overrides
    from fractalscape.claim import check_free_space, output_lock
    from fractalscape.cluster import check_target
    from fractalscape.store import Location, prepare_output

    notes = []
    cfg = load_config(with_overrides(read_config(config), overrides, notes=notes))
    ds = cfg.dataset()
    if Location(out_dir).protocol == "memory":
        raise ConfigError(f"--out {out_dir!r} is in this process's memory, which ends with it: the map would be "
                          "lost; give a directory or a persistent fsspec URL")
    check_target(scheduler, workers)
    if not force:
        check_free_space(ds, out_dir)
    prepare_output(out_dir, ds.attrs["config"])
    for note in notes:  # once every check passed: a refusal stays one line
        click.echo(note, err=True)

    def waiting(pid):
        click.echo(f"waiting for pid {pid}, which is writing {out_dir}", err=True)

    with output_lock(out_dir, wait=wait, on_wait=waiting):
        click.echo(f"{cfg.model!r}\n{cfg.grid!r}", err=True)
        _map_into(ds, out_dir, sys.stderr.isatty() if progress is None else progress, scheduler, workers)


def _map_into(ds, out_dir, progress, scheduler, workers):
    """The body of ``fractalscape map`` once --out is checked and locked."""
    from fractalscape.cluster import compute_on
    from fractalscape.plot import plot_map
    from fractalscape.store import MAP_NAME, is_complete, open_map, write_file, write_map, write_summary

    if is_complete(out_dir):
        click.echo(f"{out_dir} already holds this map, complete; nothing to compute", err=True)
        return
    start = time.perf_counter()
    try:
        with compute_on(scheduler, workers):
            info = write_map(ds, out_dir, progress=progress)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: finished blocks are kept; run the same command to resume", err=True)
        sys.exit(130)
    stored = open_map(out_dir)
    plot_start = time.perf_counter()
    png = io.BytesIO()
    plot_map(stored, png)
    write_file(out_dir, "map.png", png.getvalue())
    plot_seconds = time.perf_counter() - plot_start
    from fractalscape.cli.dimension import map_dimension

    dimension_start = time.perf_counter()
    measured, figure = map_dimension(stored)
    if figure is not None:
        write_file(out_dir, "dimension.png", figure)
    summary = {
        "config": json.loads(ds.attrs["config"]),
        "formula": ds.attrs["formula"],
        "fractalscape_version": ds.attrs["fractalscape_version"],
        "store": MAP_NAME,
        **info,
        "scheduler": scheduler or (f"LocalCluster({workers} workers)" if workers else "threads"),
        "plot_seconds": plot_seconds,
        "dimension": measured,
        "dimension_seconds": time.perf_counter() - dimension_start,
        "total_seconds": time.perf_counter() - start,
    }
    write_summary(out_dir, summary)
    interval = measured.get("interval")
    dim_text = (f", boundary dimension {measured['dimension']:.3f} +- {measured['stderr'] or float('nan'):.3f}"
                + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")
                + f" ({measured['method']})" if "dimension" in measured else "")
    rate = info["gd_steps_per_second"]
    rate_text = f"{rate:.3g} GD steps/s" if rate is not None else "no block computed in this run"
    click.echo(
        f"{info['points']:,} points, {info['fraction_diverged']:.4f} diverged{dim_text}, "
        f"{info['compute_seconds']:.1f} s ({rate_text}) -> {out_dir}",
    )


_allow_incomplete = click.option(
    "--allow-incomplete", is_flag=True,
    help="Use a map with unfinished or lost blocks (they read as converged); every output says so.")


def _open_stored(store, allow_incomplete: bool):
    from fractalscape.store import open_map

    return open_map(store, allow_incomplete=allow_incomplete)


def _incomplete_note(stored) -> str:
    damage = stored.attrs.get("incomplete")
    return f" [map {damage}: computed on the finished part only]" if damage else ""


def _size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise ConfigError(f"--size takes WIDTHxHEIGHT in pixels (e.g. 2000x2000), got {text!r}")
    return int(width), int(height)


def _png_target(out_path: str, option: str = "--out") -> tuple[int, str]:
    """An open temporary file beside ``out_path`` and its name, once ``out_path`` is checked to take a PNG.

    Checked before any work: the suffix, a directory in the way, a missing or
    unwritable directory (the temporary file is the proof it is writable).
    ``option`` names the option in the messages.
    """
    import os
    import tempfile

    if os.path.isdir(out_path):
        raise ConfigError(f"{option} {out_path!r} is a directory; give a file name ending in .png")
    if not out_path.lower().endswith(".png"):
        raise ConfigError(f"{option} must name a .png file, got {out_path!r}")
    directory = os.path.dirname(out_path) or "."
    if not os.path.isdir(directory):
        raise ConfigError(f"{option} {out_path!r}: the directory {directory!r} does not exist")
    try:
        return tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(out_path)}.", suffix=".part")
    except OSError as err:
        raise ConfigError(f"{option} {out_path!r}: cannot write in {directory!r} ({err.strerror or err})") from None


@contextlib.contextmanager
def _atomic_png(out_path: str, option: str = "--out"):
    """Check ``out_path`` (:func:`_png_target`), then yield ``write(data)``, which puts the PNG there whole.

    The bytes go into the temporary file, which is renamed onto ``out_path``
    once synced: an interrupted or failed command leaves the old file (or
    none), never a truncated one, and no temporary file.
    """
    import os

    fd, part = _png_target(out_path, option)

    def write(data: bytes) -> None:
        nonlocal fd
        with os.fdopen(fd, "wb") as file:
            fd = None
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(part, 0o666 & ~_umask())
        os.replace(part, out_path)

    try:
        yield write
    finally:
        if fd is not None:
            os.close(fd)
        if os.path.exists(part):
            os.unlink(part)


@main.command("render")
@click.argument("store")
@click.option("--out", "out_path", required=True, type=click.Path(), help="PNG file to write.")
@click.option("--size", default="1000x1000", show_default=True, help="Map area in pixels, WIDTHxHEIGHT.")
@click.option("--x-range", nargs=2, type=float, default=None, help="Window along the first axis.")
@click.option("--y-range", nargs=2, type=float, default=None, help="Window along the second axis.")
@click.option("--how", type=click.Choice(["eq_hist", "log", "linear"]), default="eq_hist", show_default=True,
              help="Colour scaling; eq_hist is the CDF restretch.")
@click.option("--colors", type=click.Choice(["auto", "classes", "sohl-dickstein"]), default="auto", show_default=True,
              help="sohl-dickstein: his convention (Spectral, converged blue, diverged red, intensity from the "
                   "score; network maps); classes: escape step and final loss; auto: his for networks.")
@click.option("--recompute", is_flag=True,
              help="A window holding fewer stored points than pixels is recomputed through the kernels at the "
                   "picture's resolution (default: upsampled, and marked so).")
@_allow_incomplete
def render_command(store, out_path, size, x_range, y_range, how, colors, recompute, allow_incomplete):
    """Draw a stored 2-D map (a --out directory or its map.zarr) with datashader.

    Reads the coarsest overview level that fills the picture. The PNG is
    written whole or not at all: into a temporary file beside --out, renamed
    onto it when complete.
    """
    from fractalscape.render import recompute_window, render

    width, height = _size(size)
    with _atomic_png(out_path) as write:
        start = time.perf_counter()
        stored = _open_stored(store, allow_incomplete)
        drawn = recompute_window(stored, width, height, x_range, y_range) if recompute else None
        if drawn is not None:
            click.echo(f"note: recomputing the window at {width} x {height} points through the kernels", err=True)
        notes = []
        png = io.BytesIO()
        if drawn is None:
            render(stored, width, height, x_range=x_range, y_range=y_range, how=how, path=png, colors=colors,
                   notes=notes)
        else:  # the recomputed grid spans the window
            render(drawn, width, height, how=how, path=png, colors=colors, notes=notes)
        for note in notes:
            click.echo(note, err=True)
        write(png.getvalue())
    click.echo(f"{out_path} ({width}x{height}, {time.perf_counter() - start:.1f} s){_incomplete_note(stored)}")


@main.command("overviews")
@click.argument("store")
def overviews_command(store):
    """Check the multiscale overviews of STORE; build them if missing, rebuild them if damaged (in place)."""
    from fractalscape.overviews import check_overviews, write_overviews

    _open_stored(store, False)
    start = time.perf_counter()
    problem = check_overviews(store)
    if not problem:
        click.echo(f"{store}: overviews intact, nothing to do")
        return
    notes = []
    factors = write_overviews(store, notes=notes)
    for note in notes:
        click.echo(note, err=True)
    if factors:
        click.echo(f"{store}: {problem}; wrote overview levels {', '.join(map(str, factors))} "
                   f"({time.perf_counter() - start:.1f} s)")


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


@main.command("audit")
@click.argument("store")
@click.option("--samples", type=int, default=1000, show_default=True,
              help="Points to re-run, half of them next to the boundary.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the sample.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
def audit_command(store, samples, seed, as_json):
    """Re-run a sample of a stored map under rounding perturbations, in high precision and with arb balls."""
    from fractalscape.audit import audit

    report = audit(store, samples=samples, seed=seed)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"{report['sampled']} sampled ({report['sampled_near_boundary']} next to the boundary): "
               f"{report['stable']} stable, {report['flipped']} flipped, {report['certified']} certified "
               f"({report['certified_agree']} agree with the map), {report['seconds']:.1f} s")
    for name, counts in report["perturbations"].items():
        if counts.get("available", True):
            click.echo(f"  {name:>24s}: {counts['flipped']} of {counts['run']} flipped")
        else:
            click.echo(f"  {name:>24s}: not available ({counts.get('reason', '')})")
    click.echo(report["claims"])


@main.group("presets", invoke_without_command=True)
@click.pass_context
def presets_command(ctx):
    """List the bundled presets (`fractalscape presets show NAME` prints one)."""
    from fractalscape.config import load_config, preset_names

    if ctx.invoked_subcommand is not None:
        return
    for name in preset_names():
        cfg = load_config(name)
        click.echo(f"{name:24s} {cfg.model!r}  {' x '.join(cfg.grid.names)} {cfg.grid.shape}")


@presets_command.command("show")
@click.argument("name")
def presets_show_command(name):
    """Print the TOML of preset NAME, to copy and edit (`fractalscape presets show NAME > my.toml`)."""
    from fractalscape.config import preset_text

    click.echo(preset_text(name), nl=False)


@main.command("sweep")
@click.argument("config")
@click.option("--param", required=True, metavar="KEY",
              help="Config key to sweep, as --set names it (e.g. landscape.delta).")
@click.option("--values", required=True, multiple=True, metavar="V",
              help="Values of --param (repeat the option or give them space-separated in one).")
@click.option("--out", "out_dir", required=True, help="Output directory: one map per value, sweep.json, sweep.png.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value for every map.")
@click.option("--method", type=click.Choice(["auto", "dyadic", "boxcount", "median-slope"]), default="auto",
              show_default=True, help="Dimension estimator, the same for every value.")
@click.option("--json", "as_json", is_flag=True, help="Print sweep.json's rows as JSON.")
def sweep_command(config, param, values, out_dir, overrides, method, as_json):
    """The boundary dimension of CONFIG against one parameter, one map per value (resumable)."""
    from fractalscape.sweep import sweep

    values = [v for given in values for v in given.split()]
    table = sweep(config, param, values, out_dir, overrides=overrides, method=method)
    if as_json:
        click.echo(json.dumps(table["rows"], indent=2))
        return
    click.echo(f"{param:>24s} {'dimension':>10s}  interval")
    for row in table["rows"]:
        low, high = row["interval"] or (math.nan, math.nan)
        dim = math.nan if row["dimension"] is None else row["dimension"]
        click.echo(f"{row['value']!s:>24s} {dim:>10.4f}  [{low:.4f}, {high:.4f}]")
    click.echo(f"-> {out_dir}/sweep.json, {out_dir}/sweep.png")


# The dimension, zoom and dashboard commands live in their own modules; importing them registers them on main.
from fractalscape.cli import dimension, serve, zoom  # noqa: E402,F401
