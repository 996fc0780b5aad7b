"""How closely a batched (stacked) sweep member follows the same run trained alone, over a whole run.

Trains six runs that grok in ~800 steps (p = 31, d_model 64, fracs 0.5/0.75/1.0 × seeds 0/1) once as one
stacked group and once one by one, then prints, per run, the memorization and generalization steps and the
final test accuracy of both, and the first step at which their test accuracies differ by more than 1e-6.
The trajectories start equal to rounding; training amplifies rounding-level differences of the batched
matmuls, so long runs separate the way two nearby initialisations do (docs/sweeps.md has the figures).
Usage: python benchmarks/agreement_batched.py [--steps 1000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from grokscope import RunStore, analyze, from_preset
from grokscope.trainers.batched import train_batched
from grokscope.trainers.train import train

KEYS = ("memorization_step", "generalization_step", "final_test_acc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    grid = dict(p=31, train_ratio=0.6, d_model=64, lr=3e-3, steps=args.steps, ckpt_every=100)
    cfgs = [from_preset("demo", **grid, frac=f, seed=s) for f in (0.5, 0.75, 1.0) for s in (0, 1)]
    with tempfile.TemporaryDirectory() as tmp:
        batched = analyze(train_batched(cfgs, [Path(tmp) / f"b{i}.zarr" for i in range(len(cfgs))]))
        alone = analyze([train(c, Path(tmp) / f"a{i}.zarr") for i, c in enumerate(cfgs)])
        print(f"{'frac':>5s} {'seed':>4s}  {'memorized@ b / a':>17s}  {'generalized@ b / a':>19s}  "
              f"{'final test acc b / a':>21s}  first step |Δ test acc| > 1e-6")
        for cfg, b, a in zip(cfgs, batched, alone):
            x, y = RunStore(b["path"]).read("test_acc"), RunStore(a["path"]).read("test_acc")
            apart = np.flatnonzero(np.abs(x - y) > 1e-6)
            mem, gen = (f"{b[k]} / {a[k]}" for k in KEYS[:2])
            acc = f"{b[KEYS[2]]:.3f} / {a[KEYS[2]]:.3f}"
            print(f"{cfg.frac:5.2f} {cfg.seed:4d}  {mem:>17s}  {gen:>19s}  {acc:>21s}  "
                  f"{apart[0] if len(apart) else 'never'}")


if __name__ == "__main__":
    main()
