"""A 10-size × 3-seed sweep of a small config: batched (one stacked model) vs one run at a time.

Both sides train the same 30 runs (`a b = (mod 31)`, d_model 32, 300 full-batch steps, eval every step, the
default ~100 checkpoints each) into real run stores in this one process; prints both wall times and the
ratio (issue target: ≥ 1.5× on 2 CPU cores, ≥ 10× on a GPU).
Usage: python benchmarks/bench_sweep.py [--steps 300] [--device cpu] [--sizes 10] [--seeds 3]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

from grokscope import from_preset
from grokscope.trainers import train
from grokscope.trainers.batched import train_batched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    base = dict(p=31, train_ratio=0.6, d_model=32, d_mlp=128, lr=3e-3, steps=args.steps, device=args.device)
    fracs = [round(0.3 + 0.7 * i / max(1, args.sizes - 1), 3) for i in range(args.sizes)]
    cfgs = [from_preset("demo", frac=f, seed=s, **base) for f in fracs for s in range(args.seeds)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        train_batched(cfgs, [root / f"batched{i}.zarr" for i in range(len(cfgs))])
        batched = time.perf_counter() - start
        start = time.perf_counter()
        for i, cfg in enumerate(cfgs):
            train(cfg, root / f"alone{i}.zarr")
        alone = time.perf_counter() - start
    where = (torch.cuda.get_device_name() if args.device.startswith("cuda")
             else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    print(f"{len(cfgs)} runs x {args.steps} steps on {where} (torch {torch.__version__})")
    print(f"  one by one  {alone:7.1f} s")
    print(f"  batched     {batched:7.1f} s")
    print(f"  ratio one-by-one / batched: {alone / batched:.2f}x")


if __name__ == "__main__":
    main()
