"""Fourier measures over 1,000 checkpoints of the zhu2024 model (229,632 parameters; issue target ≤ 3 s).

Writes a store holding every parameter of the zhu2024 transformer at 1,000 checkpoints with the real writer
(≈ 0.9 GB before compression), then times the weight-only measures
(`grokscope.analysis.runners.spectra.weight_measures`: embedding spectrum at every checkpoint, Gini, key
frequencies), which must read only the embedding array.
For comparison it times loading every parameter of every checkpoint (what a naive reader would do), and
the model-run measures (restricted/excluded loss) per checkpoint on a 20-checkpoint subset.
Usage: python benchmarks/bench_fourier.py [--ckpts 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from grokscope.analysis.runners.spectra import weight_measures
from grokscope.config.presets import from_preset
from grokscope.config.resolve import resolve
from grokscope.data.modular import build_task
from grokscope.store.layout import ParamSpec
from grokscope.store.reader import RunStore
from grokscope.store.writer import RunWriter
from grokscope.trainers.models import build_model


def write_store(path: Path, n_ckpt: int) -> None:
    cfg = resolve(from_preset("zhu2024", steps=n_ckpt - 1, ckpt_every=1, ckpt_early=0))
    task = build_task(cfg)
    torch.manual_seed(0)
    model = build_model(cfg, task.vocab_size)
    dims = model.param_dims()
    params = {n: p.detach().numpy() for n, p in model.named_parameters()}
    writer = RunWriter(
        path, attrs={"config": cfg.to_dict(), "task": {"vocab": list(task.vocab)},
                     "model": {"param_roles": model.param_roles()}},
        n_steps=n_ckpt, metrics={"train_acc": ()},
        params=[ParamSpec(n, p.shape, dims[n]) for n, p in params.items()], ckpt_steps=np.arange(n_ckpt),
        data={"train_idx": ("train_example", task.train_idx)})
    rng = np.random.default_rng(0)
    for start in range(0, n_ckpt, 32):  # one shard at a time, as the trainer's flushes would
        k = min(32, n_ckpt - start)
        writer.write_checkpoints(start, {n: (p + 0.01 * rng.standard_normal((k, *p.shape))).astype(np.float32)
                                         for n, p in params.items()})
    writer.write_metrics(0, {"train_acc": np.ones(n_ckpt)})
    writer.finalize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpts", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "zhu.zarr"
        start = time.perf_counter()
        write_store(path, args.ckpts)
        print(f"wrote {args.ckpts} checkpoints of zhu2024 in {time.perf_counter() - start:.1f} s")
        store = RunStore(path)
        timings = {}
        start = time.perf_counter()
        summary, _ = weight_measures(store)
        timings["weight-only Fourier measures"] = time.perf_counter() - start
        start = time.perf_counter()
        for name in store.param_names():
            store.read_param(name)
        timings["read every parameter (naive)"] = time.perf_counter() - start
        from grokscope.trainers.probe import model_measures
        start = time.perf_counter()
        model_measures(store, every=max(1, args.ckpts // 20))
        per_ckpt = (time.perf_counter() - start) / (len(range(0, args.ckpts, max(1, args.ckpts // 20))) + 1)
    print(f"{args.ckpts} checkpoints, key frequencies {summary['key_frequencies'][:5]}, gini {summary['gini']:.3f}")
    for label, seconds in timings.items():
        print(f"  {label:32s} {seconds:6.2f} s")
    ratio = timings["read every parameter (naive)"] / timings["weight-only Fourier measures"]
    print(f"  ratio naive / weight-only: {ratio:.1f}x")
    print(f"  model-run measures (restricted/excluded loss, p^2 = 12,769 inputs): {per_ckpt:.3f} s per checkpoint")


if __name__ == "__main__":
    main()
