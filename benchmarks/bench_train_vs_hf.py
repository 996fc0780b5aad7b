"""zhu2024 at n_train 2000, test set evaluated every step: grokscope's trainer vs HF OpenAIGPTLMHeadModel.

Both sides run in this one process on the same data, initial weights, optimizer (AdamW 1e-3, (0.9, 0.98),
wd 1) and float64 cross-entropy on the answer logits:

* ``hf loop``        — HF's model in a plain PyTorch loop (forward all positions, take the `=` logits);
* ``grokscope model`` — grokscope's model in the same plain loop (isolates the model's savings);
* ``grokscope train`` — the real trainer end to end: metrics, norms, checkpoints and Zarr writes included.

Prints steps/s for each and the ratios.  Usage: python benchmarks/bench_train_vs_hf.py [--steps 150]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

from grokscope.config.presets import from_preset
from grokscope.config.resolve import resolve
from grokscope.data.modular import build_task
from grokscope.trainers import train
from grokscope.trainers.hf import to_openai_gpt
from grokscope.trainers.losses import accuracy, cross_entropy
from grokscope.trainers.models import build_model


def plain_loop(answer_logits, params, x, y, tx, ty, steps: int) -> float:
    """Steps/s of a minimal full-batch loop with a test evaluation every step."""
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.98), weight_decay=1.0)

    def step():
        loss = cross_entropy(answer_logits(x), y)
        with torch.no_grad():
            t = answer_logits(tx)
            cross_entropy(t, ty), accuracy(t, ty)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5):  # warm-up
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    cfg = resolve(from_preset("zhu2024", n_train=2000, steps=args.steps, device=args.device))
    task = build_task(cfg)
    tokens = torch.as_tensor(task.tokens, device=device)
    targets = torch.as_tensor(task.targets, device=device)
    x, y = tokens[task.train_idx], targets[task.train_idx]
    tx, ty = tokens[task.test_idx], targets[task.test_idx]

    torch.manual_seed(cfg.seed)
    ours = build_model(cfg, task.vocab_size).to(device)
    hf = to_openai_gpt(ours).to(device).train()
    rates = {
        "hf loop": plain_loop(lambda t: hf(input_ids=t).logits[:, -1], hf.parameters(), x, y, tx, ty,
                              args.steps),
        "grokscope model": plain_loop(ours, ours.parameters(), x, y, tx, ty, args.steps),
    }
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        train(cfg, Path(tmp) / "bench.zarr")
        rates["grokscope train"] = (args.steps + 1) / (time.perf_counter() - started)  # incl. store setup

    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    print(f"zhu2024, n_train 2000, eval every step, {args.steps} steps on {where} (torch {torch.__version__})")
    for name, rate in rates.items():
        print(f"  {name:16s} {rate:8.1f} steps/s")
    print(f"  ratio grokscope model / hf loop: {rates['grokscope model'] / rates['hf loop']:.2f}x")
    print(f"  ratio grokscope train / hf loop: {rates['grokscope train'] / rates['hf loop']:.2f}x")


if __name__ == "__main__":
    main()
