"""A data-size sweep trained as stacked groups: one group padded to the largest size vs groups of similar sizes.

The grid is examples/cds_cpu's (p = 31, 60 % of the pairs as the pool, 8 sizes 30 … 100 % × 3 seeds, d_model
32, full batch, eval every step).  Both sides train the same 24 runs into real run stores in this one
process, one group after the other (as one sweep worker would); prints each side's wall time, the share of
padded rows and the ratio.  Usage: python benchmarks/bench_grouping.py [--steps 300] [--device cpu]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

from grokscope import from_preset
from grokscope.config.resolve import resolve, train_size
from grokscope.sweeps.grid import MAX_PADDING, groups, padding
from grokscope.trainers.batched import train_batched

FRACS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def timed(runs: dict, max_padding: float, root: Path) -> tuple[float, float, int]:
    """Wall seconds, padded share of the rows computed, and the number of groups."""
    root.mkdir()
    found = groups(runs, max_size=64, max_padding=max_padding)
    computed = sum(len(g) * max(size(runs[r]) for r in g) for g in found)
    start = time.perf_counter()
    for i, ids in enumerate(found):
        train_batched([runs[r] for r in ids], [root / f"g{i}_{r}.zarr" for r in ids])
    wasted = 1 - sum(size(c) for c in runs.values()) / computed
    assert all(padding([runs[r] for r in g]) <= max_padding + 1e-12 for g in found)
    return time.perf_counter() - start, wasted, len(found)


def size(cfg) -> int:
    return train_size(resolve(cfg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    runs = {f"frac={f}_seed={s}": from_preset("demo", p=31, train_ratio=0.6, frac=f, seed=s, d_model=32,
                                              lr=3e-3, steps=args.steps, device=args.device)
            for f in FRACS for s in range(3)}
    with tempfile.TemporaryDirectory() as tmp:
        one, one_waste, _ = timed(runs, 1.0, Path(tmp) / "one")
        grouped, waste, n_groups = timed(runs, MAX_PADDING, Path(tmp) / "grouped")
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, {args.device}; 24 runs × {args.steps} steps")
    print(f"one group (padded to 576):        {one:7.1f} s   padded rows {one_waste:5.1%}")
    print(f"{n_groups} groups (max padding {MAX_PADDING:.0%}): {grouped:7.1f} s   padded rows {waste:5.1%}")
    print(f"ratio: {one / grouped:.2f}×")


if __name__ == "__main__":
    main()
