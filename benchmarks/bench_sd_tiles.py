"""Sohl-Dickstein's six tiles (presets ``sd-tile-*``): fraction diverged, boundary dimensions and time.

His six results (arXiv 2402.06184, figure ``fractal_tiles_midres.png`` in the
GitHub repository Sohl-Dickstein/fractal) are box-counting dimensions of the
boundary in six windows zoomed onto his seed-0 networks' boundaries. Each
tile runs here from its preset at ``--size`` x ``--size`` points; per tile the
benchmark prints the fraction diverged (his label: ``not score < 0``), the
box-count and median-slope dimensions of ``diverged`` (median-slope is his
notebook's estimate), a box count over sizes 1 .. size/8 (for maps too small
for the automatic range), the seconds and the grid points per second
(compute only; a 2 x 2 warm-up map of each tile first, so numba compilation
is not timed). His dimensions, for comparison, are in ``HIS``.

``--rng`` and ``--steps`` rerun the windows on another random stream or step
count: the measurement that chose the presets' ``rng = "jax-2024"`` and 1000
steps (the windows lie on the boundary, both labels present, only there).

    python benchmarks/bench_sd_tiles.py --size 128                  # the presets' settings
    python benchmarks/bench_sd_tiles.py --size 32 --rng jax --steps 500
    python benchmarks/bench_sd_tiles.py --smoke                     # 8 x 8, seconds
"""
import argparse
import time

import dask

import fractalscape as fs
from fractalscape.config import read_config, with_overrides

#: Tile preset suffix -> Sohl-Dickstein's box-counting dimension of that tile.
HIS = {"identity": 1.17, "relu": 1.20, "single-point": 1.41, "minibatch": 1.55, "tanh": 1.66, "init-offset": 1.98}


def tile_config(name: str, size: int, steps: int | None = None, rng: str | None = None) -> fs.config.Config:
    """The preset ``sd-tile-<name>`` at ``size`` x ``size`` points, optionally another step count or rng."""
    overrides = [f"axis.{i}.num={size}" for i in (0, 1)] + [f"axis.{i}.chunk={max(1, size // 2)}" for i in (0, 1)]
    if steps is not None:
        overrides.append(f"descent.steps={steps}")
    if rng is not None:
        overrides.append(f'network.rng="{rng}"')
    return fs.load_config(with_overrides(read_config(f"sd-tile-{name}"), overrides))


def measure(name: str, size: int, steps: int | None, rng: str | None) -> dict:
    """Compute one tile and its dimensions."""
    cfg = tile_config(name, size, steps, rng)
    tile_config(name, 2, 2, rng).dataset().diverged.values  # warm-up: each tile compiles its own kernel
    start = time.perf_counter()
    diverged = cfg.dataset().diverged.values
    seconds = time.perf_counter() - start
    dims = {}
    # The automatic box-count range needs >= 32 boxes of >= 4 pixels per axis (256 x 256 or more);
    # "boxcount-small" fits box sizes 1 .. size/8 so that small maps get a number too.
    for key, method, options in [("boxcount", "boxcount", {}), ("median-slope", "median-slope", {}),
                                 ("boxcount-small", "boxcount", {"fit_range": (1, max(2, size // 8))})]:
        try:
            result = fs.dimension(diverged, method, **options)
            dims[key] = f"{result.dimension:.3f} +- {result.stderr:.3f}"
        except fs.ConfigError as err:
            dims[key] = "n/a (" + str(err).split(";")[0].split(" ")[0].rstrip(":") + ")"
    return {"tile": name, "rng": cfg.model.rng, "steps": cfg.descent["steps"], "fraction": float(diverged.mean()),
            **dims, "seconds": seconds, "points_per_s": size * size / seconds}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="points per axis (default 128)")
    parser.add_argument("--steps", type=int, default=None, help="GD steps (default: the presets', 1000)")
    parser.add_argument("--rng", choices=fs.networks.model.RNGS, default=None, help="default: the presets'")
    parser.add_argument("--tiles", default=",".join(HIS), help="comma-separated tile names")
    parser.add_argument("--threads", type=int, default=2, help="dask worker threads (default 2)")
    parser.add_argument("--smoke", action="store_true", help="8 x 8 points: checks that it runs")
    args = parser.parse_args(argv)
    size = 8 if args.smoke else args.size
    tiles = args.tiles.split(",")
    unknown = sorted(set(tiles) - set(HIS))
    if unknown:
        parser.error(f"unknown tile {unknown[0]!r}; tiles: {', '.join(HIS)}")
    with dask.config.set(scheduler="threads", num_workers=args.threads):
        print(f"| tile | rng | steps | {size} x {size} diverged | boxcount | median-slope | boxcount 1..{size // 8} "
              "| his | seconds | points/s |")
        print("|---|---|---:|---:|---|---|---|---:|---:|---:|")
        for name in tiles:
            row = measure(name, size, args.steps, args.rng)
            print(f"| {name} | {row['rng']} | {row['steps']} | {row['fraction']:.3f} | {row['boxcount']} | "
                  f"{row['median-slope']} | {row['boxcount-small']} | {HIS[name]:.2f} | {row['seconds']:.1f} | {row['points_per_s']:,.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
