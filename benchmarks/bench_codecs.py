"""Compression levels of a stored map's variables: bytes a point and encode/decode time per block.

Run: python benchmarks/bench_codecs.py STORE [--block 1024] [--repeats 3]
     python benchmarks/bench_codecs.py --smoke       (a tiny map computed in a temporary directory)

Reads one block (``--block`` points along each axis, from the middle of the
map) of every variable of STORE's map.zarr and compresses it with blosc after
byte shuffle, zstd at levels 1, 3 and 5 and lz4, as fractalscape's stores do
(fractalscape.codec). Prints one JSON line per codec and variable (bytes a
point, the fastest of ``--repeats`` encodes and decodes in ms per million
points), then one per codec for fractalscape's choice of level per variable.
"""

import argparse
import json
import tempfile
import time

import zarr
from numcodecs import Blosc

from fractalscape.codec import compressor

CODECS = [("zstd", 1), ("zstd", 3), ("zstd", 5), ("lz4", 5)]
VARIABLES = ("diverged", "escape_step", "final_loss_log10", "final_loss_negative")


def fastest(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def measure(store: str, block: int, repeats: int) -> None:
    group = zarr.open_group(store, mode="r")
    shape = group["diverged"].shape
    region = tuple(slice(max(0, n // 2 - block // 2), max(0, n // 2 - block // 2) + block) for n in shape)
    blocks = {name: group[name][region] for name in VARIABLES if name in group}
    chosen = {"encode_ms": 0.0, "decode_ms": 0.0, "bytes_per_point": 0.0}
    for cname, level in CODECS:
        codec = Blosc(cname=cname, clevel=level, shuffle=Blosc.SHUFFLE)
        for name, values in blocks.items():
            per_million = 1e6 / values.size
            encode, packed = fastest(lambda v=values: codec.encode(v), repeats)
            decode, _ = fastest(lambda p=packed: codec.decode(p), repeats)
            row = {"codec": f"{cname}-{level}", "variable": name, "bytes_per_point": round(len(packed) / values.size, 4),
                   "encode_ms": round(encode * 1e3 * per_million, 2), "decode_ms": round(decode * 1e3 * per_million, 2)}
            print(json.dumps(row))
            config = compressor(name)["configuration"]
            if (config["cname"], config["clevel"]) == (cname, level):
                for key in chosen:
                    chosen[key] += row[key]
    print(json.dumps({"codec": "fractalscape's levels", **{k: round(v, 4) for k, v in chosen.items()}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", nargs="?")
    parser.add_argument("--block", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        import fractalscape as fs
        from fractalscape.config import read_config, with_overrides

        out = tempfile.mkdtemp()
        raw = with_overrides(read_config("liu-multiplicative-2d"), ["axis.0.num=64", "axis.1.num=64", "descent.steps=50"])
        fs.write_map(fs.open_config(raw), out)
        measure(f"{out}/map.zarr", 32, 1)
    elif args.store:
        store = args.store if args.store.rstrip("/").endswith("map.zarr") else f"{args.store.rstrip('/')}/map.zarr"
        measure(store, args.block, args.repeats)
    else:
        parser.error("give STORE or --smoke")


if __name__ == "__main__":
    main()
