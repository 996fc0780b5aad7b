"""``grokscope analyze`` over many long runs: 100 run stores × 20k steps (issue target: well under 3 s).

Writes synthetic stores with the real writer (checkpoints included, so reading must skip them), then times
``analyze`` on the directory, once cold (first open) and once warm.  Also times reading every metric with
``xarray.open_zarr`` per store, the plain-xarray way, for comparison.
Usage: python benchmarks/bench_analyze.py [--runs 100] [--steps 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from grokscope.analysis.runners.summary import analyze
from grokscope.store.layout import ParamSpec
from grokscope.store.writer import RunWriter


def write_store(path: Path, steps: int, rng: np.random.Generator) -> None:
    t = np.arange(steps)
    grok = rng.integers(steps // 10, steps // 2)
    writer = RunWriter(
        path, attrs={"config": {"n_train": int(rng.integers(1000, 9000)), "seed": 0}}, n_steps=steps,
        metrics={name: () for name in ("train_loss", "train_acc", "test_loss", "test_acc", "l2_norm")},
        params=[ParamSpec("embed.weight", (117, 128), ("vocab", "d_model"))], ckpt_steps=np.arange(0, steps, 200),
    )
    test_acc = 1 / (1 + np.exp(-(t - grok) / 100))
    writer.write_metrics(0, {"train_loss": np.exp(-t / 300), "train_acc": np.minimum(1, t / 400),
                             "test_loss": 5 * (1 - test_acc), "test_acc": test_acc, "l2_norm": 40 - t / steps})
    writer.write_checkpoints(0, {"embed.weight": rng.normal(size=(100, 117, 128)).astype(np.float32)})
    writer.finalize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(args.runs):
            write_store(root / f"run{i:03d}.zarr", args.steps, rng)
        timings = {}
        for label in ("analyze (first)", "analyze (again)"):
            start = time.perf_counter()
            rows = analyze([root])
            timings[label] = time.perf_counter() - start
        assert len(rows) == args.runs
        start = time.perf_counter()
        for path in sorted(root.glob("*.zarr")):
            xr.open_zarr(path, chunks=None)[["train_acc", "test_acc", "train_loss", "test_loss"]].load()
        timings["xarray.open_zarr + load"] = time.perf_counter() - start
    print(f"{args.runs} runs x {args.steps} steps")
    for label, seconds in timings.items():
        print(f"  {label:26s} {seconds:6.2f} s")
    print(f"  ratio xarray / analyze: {timings['xarray.open_zarr + load'] / timings['analyze (first)']:.2f}x")


if __name__ == "__main__":
    main()
