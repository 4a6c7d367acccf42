"""Liu 2024's 1-D experiment at a laptop-friendly size: where does GD on a rippled quadratic diverge?

Run: python examples/liu_1d.py
"""

import fractalscape as fs


def main(num=2**16 + 1, steps=1000):
    for name in ("cosine-additive", "cosine-multiplicative"):
        land = fs.landscape(name, delta=0.2, wavelength=0.1)
        grid = fs.Grid([fs.Axis("lr", 0.0, 1.5, num, chunk=min(num, 8192))])
        ds = fs.trainability(land, grid, x0=1.0, steps=steps, threshold=1e8)
        diverged = ds.diverged.compute()
        first = float(ds.lr[int(diverged.argmax("lr"))])
        print(f"{name:24s} {float(diverged.mean()):.3f} of learning rates diverge; the first at lr = {first:.6f}")


if __name__ == "__main__":
    main()
