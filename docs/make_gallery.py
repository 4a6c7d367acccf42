"""Make the gallery: run each figure's commands, shrink its picture, write docs/gallery.md.

Run (about 25 minutes on 2 shared cores for the pictures, about an hour more
for the zoom videos; every figure is recomputed, into ``--out/NAME``)::

    python docs/make_gallery.py --out runs/gallery

Every number on the page is a line one of the commands printed, copied
verbatim; the pictures go to docs/img/gallery/ (at most PICTURE_WIDTH pixels
wide, palette PNGs), the zoom videos to docs/_static/gallery/.
``--only NAME ...`` reruns some figures and keeps the others' entries from
docs/img/gallery/gallery.json; ``--resume`` keeps what a figure's directory
already holds (a zoom reuses its finished keyframes, whose compute time the
commands still print).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
PICTURES = DOCS / "img" / "gallery"
VIDEOS = DOCS / "_static" / "gallery"
PICTURE_WIDTH = 560

#: Sohl-Dickstein's six configurations: the presets at his notebook's window and steps, 64 x 64 instead of 512 x 512
#: (a network map of 128 x 128 took 8 minutes on the shared 2-core machine, numba compilation included).
SD_SIZE = 64
SD_PRESETS = {
    "sd-tanh": "tanh network, full batch",
    "sd-relu": "ReLU network, full batch",
    "sd-identity": "linear network, full batch",
    "sd-minibatch": "tanh network, minibatches of 16",
    "sd-single-point": "tanh network, one datapoint",
    "sd-init-offset": "tanh network: initial offset of W0 against the learning rate",
}


@dataclass
class Figure:
    name: str
    title: str
    about: str
    commands: list  # argument lists, "{out}" for the figure's directory under --out
    picture: str  # the PNG a command wrote, relative to the figure's directory
    prints: str  # regex picking the printed lines that the page quotes
    video: str | None = None  # the MP4 a command wrote, relative to the figure's directory

    def shown(self, out: Path) -> list[str]:
        return [shlex.join(part.replace("{out}", str(out)) for part in command) for command in self.commands]


def sd_figure(preset: str, what: str) -> Figure:
    sizes = [f"axis.{k}.{key}={SD_SIZE}" for k in (0, 1) for key in ("num", "chunk")]
    overrides = [arg for setting in sizes for arg in ("--set", setting)]
    reported = re.search(r"dimension (\d\.\d+)", (ROOT / "fractalscape" / "presets" / f"{preset}.toml").read_text())
    return Figure(
        preset, f"Sohl-Dickstein: {what} (`{preset}`)",
        f"His notebook's window and steps at {SD_SIZE} x {SD_SIZE} instead of 512 x 512 points, in his colours "
        "(converged blue, diverged red). The boundary dimension is the box count of this coarse map over box "
        "sizes 1 to 8 (too few pixels for the automatic range), so it is a rough number; "
        + (f"he reports {reported.group(1)} (the preset's header) from 4096 x 4096 zooms into the boundary."
           if reported else "his value is in the preset's header."),
        [["fractalscape", "map", preset, "--out", "{out}", *overrides],
         ["fractalscape", "dimension", "{out}", "--no-interval", "--fit-range", "1", "8"],
         ["fractalscape", "render", "{out}", "--out", "{out}/gallery.png", "--size", "400x400"]],
        "gallery.png", r"points, .* diverged|^boxcount: dimension",
    )


#: Sohl-Dickstein's six tiles (his windows of `fractal_tiles_midres.png`), his zoom protocol out of each.
SD_TILES = {
    "sd-tile-identity": "linear network, full batch",
    "sd-tile-relu": "ReLU network, full batch",
    "sd-tile-single-point": "tanh network, one datapoint",
    "sd-tile-minibatch": "tanh network, minibatches of 16",
    "sd-tile-tanh": "tanh network, full batch",
    "sd-tile-init-offset": "tanh network: initial offset of W0 against the learning rate",
}
#: A boundary point of liu-multiplicative-2d: at x0 = 0.2, the learning rate where the label changes, bisected to
#: adjacent doubles (tests/test_docs.py checks both sides), so that every keyframe of a deep zoom holds the boundary.
LIU_CENTER = ("0.8605897865601262", "0.2")


def tile_video(tile: str, what: str) -> Figure:
    return Figure(
        f"{tile}-zoom", f"Zoom video: {what} (`{tile}`)",
        "Sohl-Dickstein's protocol as a video: 21 keyframes halving the window from 6 decades out of his tile "
        "down to it (log axes about its centre, each recomputed at 64 x 64, his networks, label and 1000 steps), "
        "4 frames per halving, shown 4x enlarged. The number is his pooled estimate over all keyframes "
        "(`fractalscape reproduce`, [reproduction](reproduction.md)); the picture is the last keyframe, his tile.",
        [["fractalscape", "reproduce", tile, "--out", "{out}", "--video"],
         ["fractalscape", "render", "{out}/keyframes/020", "--out", "{out}/gallery.png", "--size", "400x400"]],
        "gallery.png", r"pooled median-slope", video="zoom.mp4",
    )


FIGURES = [
    Figure(
        "liu-multiplicative", "Liu: multiplicative ripples, 1-D (`liu-multiplicative`)",
        "Escape step against the learning rate for GD from x0 = 1 on f(x) = x^2 (1 + 0.2 cos(2 pi x / 0.1)), "
        "1000 steps, at 2^16 + 1 instead of the preset's 2^20 + 1 learning rates. The dimension is Liu's dyadic "
        "count with its 95 % interval over a rounding ensemble.",
        [["fractalscape", "map", "liu-multiplicative", "--out", "{out}", "--set", "axis.0.num=65537"]],
        "map.png", r"points, .* diverged",
    ),
    Figure(
        "liu-additive", "Liu: additive ripples, 1-D (`liu-additive`)",
        "The same on f(x) = x^2 + 0.2 cos(2 pi x / 0.1), 2^16 + 1 learning rates.",
        [["fractalscape", "map", "liu-additive", "--out", "{out}", "--set", "axis.0.num=65537"]],
        "map.png", r"points, .* diverged",
    ),
    Figure(
        "liu-transition", "Liu: the roughness transition (`examples/liu_transition.py`)",
        "Boundary dimension of the additive landscape against the roughness delta / wavelength^2, one map of "
        "2^14 + 1 learning rates in [0.5, 1.5] per roughness; Liu's critical roughness 1 / (2 pi^2) is marked.",
        [["python", "examples/liu_transition.py", "--out", "{out}", "--num", "16385"]],
        "sweep.png", r"critical roughness|first roughness",
    ),
    Figure(
        "liu-multiplicative-2d", "Liu: learning rate against initial point (`liu-multiplicative-2d`)",
        "The multiplicative landscape over lr x x0 at 256 x 256 instead of 1024 x 1024 points: diverged by "
        "escape step, converged by final loss.",
        [["fractalscape", "map", "liu-multiplicative-2d", "--out", "{out}", "--set", "axis.0.num=256",
          "--set", "axis.1.num=256", "--set", "axis.0.chunk=128", "--set", "axis.1.chunk=128"],
         ["fractalscape", "render", "{out}", "--out", "{out}/gallery.png", "--size", "400x400"]],
        "gallery.png", r"points, .* diverged",
    ),
    *(sd_figure(preset, what) for preset, what in SD_PRESETS.items()),
    Figure(
        "zoom", "A zoom still (`fractalscape zoom`)",
        "The deepest keyframe of a zoom one decade into the boundary of `liu-multiplicative-2d` at 160 x 160, "
        "centred on (lr, x0) = (0.85, 0.2), recomputed at every keyframe (never resampled). The number is "
        "Sohl-Dickstein's pooled estimate: the median of the local box-count slopes of all 5 keyframes.",
        [["fractalscape", "zoom", "liu-multiplicative-2d", "--out", "{out}", "--center", "0.85", "0.2",
          "--depth", "1", "--size", "160x160", "--no-video"],
         ["fractalscape", "render", "{out}/keyframes/004", "--out", "{out}/gallery.png", "--size", "400x400"]],
        "gallery.png", r"pooled",
    ),
    Figure(
        "liu-multiplicative-2d-zoom", "Zoom video: twelve decades into Liu's 2-D map (`liu-multiplicative-2d`)",
        "41 keyframes of 256 x 256, each recomputed at 1000 steps, halving the window about a boundary point "
        f"(lr, x0) = ({LIU_CENTER[0]}, {LIU_CENTER[1]}) (the learning rate where the label changes at x0 = 0.2, "
        "bisected to adjacent doubles), down to 12 decades, near the float64 floor of 12.6 decades at this size; "
        "4 frames per halving. The number is the pooled median-slope estimate over all keyframes; the picture "
        "is the deepest keyframe.",
        [["fractalscape", "zoom", "liu-multiplicative-2d", "--out", "{out}", "--center", *LIU_CENTER,
          "--depth", "12", "--size", "256x256", "--frames-per-doubling", "4"],
         ["fractalscape", "render", "{out}/keyframes/040", "--out", "{out}/gallery.png", "--size", "400x400"]],
        "gallery.png", r"pooled", video="zoom.mp4",
    ),
    *(tile_video(tile, what) for tile, what in SD_TILES.items()),
    Figure(
        "ensemble", "An ensemble p map (`ensemble = true`)",
        "Liu's multiplicative landscape under heavy-ball momentum, each (lr, momentum) point an ensemble of 16 "
        "x0 in [-2, 2] (`examples/liu_momentum_x0_ensemble.toml`): p_diverged, the fraction of members that "
        "diverged. The dimension is the box count of the p = 0.5 level set, fitted over box sizes 1 to 16 "
        "(the map is too small for the automatic range).",
        [["fractalscape", "map", "examples/liu_momentum_x0_ensemble.toml", "--out", "{out}"],
         ["fractalscape", "dimension", "{out}", "--fit-range", "1", "16"]],
        "map.png", r"points, .* diverged|level set",
    ),
]


def run(figure: Figure, out: Path, resume: bool = False) -> dict:
    """Run the figure's commands (in the repository root) afresh, shrink its picture, return its page entry."""
    if not resume:
        shutil.rmtree(out, ignore_errors=True)  # a finished map is read back, not measured again: start over
    start = time.perf_counter()
    printed = []
    for command in figure.commands:
        argv = [part.replace("{out}", str(out)) for part in command]
        if argv[0] == "fractalscape":
            argv = [sys.executable, "-m", "fractalscape", *argv[1:], *(["--no-progress"] if argv[1] in
                                                                        ("map", "zoom", "reproduce") else [])]
        elif argv[0] == "python":
            argv = [sys.executable, *argv[1:]]
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{figure.name}: {shlex.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
        printed += [line for line in done.stdout.splitlines() if re.search(figure.prints, line)]
    seconds = time.perf_counter() - start
    shrink(out / figure.picture, PICTURES / f"{figure.name}.png")
    entry = {"name": figure.name, "title": figure.title, "about": figure.about, "commands": figure.shown(out),
             "printed": printed, "seconds": round(seconds, 1), "resumed": resume}
    if figure.video:
        VIDEOS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / figure.video, VIDEOS / f"{figure.name}.mp4")
        entry["video"] = f"_static/gallery/{figure.name}.mp4"
    return entry


def shrink(source: Path, target: Path) -> None:
    """``source`` at most PICTURE_WIDTH wide, as a 256-colour PNG."""
    from PIL import Image

    image = Image.open(source).convert("RGB")
    if image.width > PICTURE_WIDTH:
        image = image.resize((PICTURE_WIDTH, round(image.height * PICTURE_WIDTH / image.width)), Image.LANCZOS)
    target.parent.mkdir(parents=True, exist_ok=True)
    image.quantize(256).save(target, optimize=True)


def page(entries: list[dict], out: Path) -> str:
    lines = [
        "# Gallery", "",
        "Each figure with the commands that make it and the lines they printed (copied verbatim, so every "
        "number here comes from a run). All of them come from one script, run from the repository root:", "",
        "```bash", f"python docs/make_gallery.py --out {out}", "```", "",
        "Sizes are reduced so that the whole gallery computes in minutes on 2 cores; each entry says what "
        "was shrunk. The seconds are wall time on the machine that made the page, numba compilation "
        "included.", "",
    ]
    for entry in entries:
        lines += [f"## {entry['title']}", "", f"![{entry['name']}](img/gallery/{entry['name']}.png)", ""]
        if entry.get("video"):
            lines += [f'<video src="{entry["video"]}" controls loop muted playsinline width="400"></video>', ""]
        took = (f"{entry['seconds']} s, finished keyframes reused: their compute time is printed"
                if entry.get("resumed") else f"{entry['seconds']} s")
        lines += [entry["about"], "", "```bash", *entry["commands"], "```", "",
                  f"printed ({took}):", "", "```text", *entry["printed"], "```", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/gallery", help="where the maps go (default: %(default)s)")
    parser.add_argument("--only", nargs="+", help="figures to (re)make; the others' entries are kept")
    parser.add_argument("--resume", action="store_true",
                        help="keep what the figures' directories hold (zooms reuse finished keyframes)")
    args = parser.parse_args(argv)
    record = PICTURES / "gallery.json"
    known = {entry["name"]: entry for entry in json.loads(record.read_text())} if record.exists() else {}
    for figure in FIGURES:
        if args.only and figure.name not in args.only:
            continue
        entry = run(figure, Path(args.out) / (f"{figure.name}-{SD_SIZE}" if figure.name in SD_PRESETS else figure.name),
                    resume=args.resume)
        known[entry["name"]] = entry
        print(f"{figure.name}: {entry['seconds']} s; " + " | ".join(entry["printed"]), flush=True)
        # after every figure, so that an interrupted run keeps what it made
        entries = [known[figure.name] for figure in FIGURES if figure.name in known]
        record.write_text(json.dumps(entries, indent=1) + "\n")
        (DOCS / "gallery.md").write_text(page(entries, Path(args.out)))


if __name__ == "__main__":
    main()
