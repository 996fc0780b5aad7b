"""The training loop: one run from a config to a complete run store.

Reads top to bottom in execution order: resolve, seed, data, model, optimizer, store; then per step the
forward pass, metrics, checkpoint, backward and update.  Metrics stay on the device in a row buffer and reach
the host only when a block is flushed to the store (no per-step host syncs); checkpoints stream out with the
same flushes, so memory stays flat however long the run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import grokscope
from grokscope.config import RunConfig
from grokscope.store import ParamSpec, RunWriter
from grokscope.tasks import resolve
from grokscope.trainers.data import load_task
from grokscope.trainers.losses import accuracy, cross_entropy
from grokscope.trainers.models import build_model, count_params

SCALARS = ("train_loss", "train_acc", "test_loss", "test_acc", "l2_norm")  # per-step metric columns
FLUSH_ROWS = 1024  # steps buffered on the device before a block write
FLUSH_SECONDS = 5.0  # ... or this long since the last one, so live readers see progress


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; anything else is taken as given."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def make_optimizer(cfg: RunConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def train(cfg: RunConfig, out: str | Path, *,
          on_flush: Callable[[int, dict[str, float]], None] | None = None) -> Path:
    """Train one run and write its store at ``out`` (which must not exist).  Returns the store path.

    ``on_flush(step, latest)`` is called after every block write with the newest logged values (the CLI's
    progress bar).  Validation errors (:class:`~grokscope.config.ConfigError`) happen before anything is
    written.

    Examples
    --------
    >>> from grokscope.config import from_preset
    >>> train(from_preset("demo", steps=200), "runs/tiny.zarr")  # doctest: +SKIP
    """
    cfg = resolve(cfg)
    device = resolve_device(cfg.device)
    cfg = dataclasses.replace(cfg, device=str(device))
    torch.manual_seed(cfg.seed)
    task, data = load_task(cfg, device)
    model = build_model(cfg, data.vocab_size).to(device)
    params = dict(model.named_parameters())
    optimizer = make_optimizer(cfg, params.values())
    batch_gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    n_train = len(data.train_y)

    ckpt_steps = cfg.checkpoint_steps()
    dims = model.param_dims()
    writer = RunWriter(
        out,
        attrs={
            "config": cfg.to_dict(),
            "task": {"vocab": list(task.vocab), "seq_len": task.seq_len, "answer_position": task.seq_len - 1,
                     "pool_size": len(task.pool_idx), "n_test": len(task.test_idx)},
            "model": {"n_params": count_params(model), "param_roles": model.param_roles()},
            "versions": {"grokscope": grokscope.__version__, "torch": torch.__version__,
                         "numpy": np.__version__, "python": platform.python_version()},
            "device": _device_name(device),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        },
        n_steps=cfg.steps + 1,
        metrics={**{name: () for name in SCALARS}, "param_norm": [("param", len(params))]},
        coords={"param": np.array(list(params))},
        params=[ParamSpec(name, tuple(p.shape), dims[name]) for name, p in params.items()],
        ckpt_steps=ckpt_steps,
        data={"train_idx": ("train_example", task.train_idx), "test_idx": ("test_example", task.test_idx)},
    )

    rows = torch.full((FLUSH_ROWS, len(SCALARS)), math.nan, dtype=torch.float64, device=device)
    norm_rows = torch.empty((FLUSH_ROWS, len(params)), dtype=torch.float64, device=device)
    not_evaluated = torch.full((2,), math.nan, dtype=torch.float64, device=device)
    pending_ckpts: list[list[torch.Tensor]] = []
    first_row, next_ckpt, last_flush = 0, 0, time.monotonic()
    started = time.perf_counter()

    def flush(upto: int) -> None:  # write rows first_row … upto and pending checkpoints, then commit
        nonlocal first_row, last_flush, pending_ckpts
        block = rows[: upto - first_row + 1].cpu().numpy()
        metrics = {name: block[:, j] for j, name in enumerate(SCALARS)}
        metrics["param_norm"] = norm_rows[: upto - first_row + 1].cpu().numpy()
        writer.write_metrics(first_row, metrics)
        if pending_ckpts:
            start = writer.ckpts_written
            writer.write_checkpoints(start, {
                name: torch.stack([c[j] for c in pending_ckpts]).cpu().numpy()
                for j, name in enumerate(params)})
            pending_ckpts = []
        writer.commit()
        first_row, last_flush = upto + 1, time.monotonic()
        if on_flush:
            on_flush(upto, {name: float(v) for name, v in zip(SCALARS, block[-1])})

    for step in range(cfg.steps + 1):
        last = step == cfg.steps  # the final row: evaluate θ_steps, no update
        if cfg.batch_size is None or cfg.batch_size >= n_train:
            xb, yb = data.train_x, data.train_y
        else:
            idx = torch.randint(n_train, (cfg.batch_size,), generator=batch_gen).to(device)
            xb, yb = data.train_x[idx], data.train_y[idx]
        with torch.set_grad_enabled(not last):
            logits = model(xb)  # (B, n_out) at the answer position
            loss = cross_entropy(logits, yb, cfg.loss_dtype)

        with torch.no_grad():
            if step % cfg.eval_every == 0 or last:
                test_logits = model(data.test_x)  # (n_test, n_out)
                test = torch.stack([cross_entropy(test_logits, data.test_y, cfg.loss_dtype),
                                    accuracy(test_logits, data.test_y)])
            else:
                test = not_evaluated
            norms = torch.stack(torch._foreach_norm(list(params.values()))).to(torch.float64)  # (n_params,)
            i = step - first_row
            norm_rows[i] = norms
            rows[i] = torch.cat([loss.detach().to(torch.float64).view(1), accuracy(logits, yb).view(1),
                                 test, norms.square().sum().sqrt().view(1)])
            if next_ckpt < len(ckpt_steps) and step == ckpt_steps[next_ckpt]:
                pending_ckpts.append([p.detach().clone() for p in params.values()])
                next_ckpt += 1

        if last or i + 1 == FLUSH_ROWS or time.monotonic() - last_flush > FLUSH_SECONDS:
            flush(step)
        if last:
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    elapsed = time.perf_counter() - started
    writer.finalize("complete", wall_time_s=round(elapsed, 3), steps_per_s=round(cfg.steps / elapsed, 2))
    return writer.path
