"""From training state to run stores: store creation and the device-side buffer of per-step rows.

Shared by the single-run loop (:mod:`grokscope.trainers.train`, one member) and the batched loop
(:mod:`grokscope.trainers.batched`, M members trained as one stacked model).  Rows stay on the device and
reach the host only when a block is flushed: every ``FLUSH_ROWS`` steps or ``FLUSH_SECONDS``, then the
pending checkpoints, then each store's commit marker.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

import grokscope
from grokscope.config import RunConfig
from grokscope.resume import ResumeSlots
from grokscope.store import ParamSpec, RunWriter, run_writes
from grokscope.datasets import TaskData

SCALARS = ("train_loss", "train_acc", "test_loss", "test_acc", "l2_norm")  # per-step metric columns
GROUP_METRIC = "test_acc_subclass"  # (step, subclass): test accuracy per subclass, tasks with subclasses only
# Steps buffered on the device before a block write (GROKSCOPE_FLUSH_ROWS overrides: tests, live dashboards).
FLUSH_ROWS = int(os.environ.get("GROKSCOPE_FLUSH_ROWS", "1024"))
FLUSH_SECONDS = 5.0  # ... or this long since the last one (at least), so live readers see progress

OnFlush = Callable[[int, dict[str, float]], None]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def create_writer(cfg: RunConfig, task: TaskData, out: str | Path, shapes: dict[str, tuple[int, ...]],
                  dims: dict[str, tuple[str, ...]], roles: dict[str, str], device: torch.device,
                  extra: Sequence[str] = ()) -> RunWriter:
    """A run store for ``cfg`` (resolved) with every per-step array and checkpoint preallocated; ``extra``
    names further per-step scalars (distillation's loss terms), created in the same atomic build."""
    metrics = {**{name: () for name in (*SCALARS, *extra)}, "param_norm": [("param", len(shapes))]}
    coords = {"param": np.array(list(shapes))}
    if task.group_names:
        metrics[GROUP_METRIC] = [("subclass", len(task.group_names))]
        coords["subclass"] = np.array(task.group_names)
    return RunWriter(
        out,
        attrs={
            "config": cfg.to_dict(),
            "task": task.attrs,
            "model": {"n_params": int(sum(math.prod(s) for s in shapes.values())), "param_roles": roles},
            "versions": {"grokscope": grokscope.__version__, "torch": torch.__version__,
                         "numpy": np.__version__, "python": platform.python_version()},
            "device": device_name(device),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        },
        n_steps=cfg.steps + 1,
        metrics=metrics,
        coords=coords,
        params=[ParamSpec(name, shape, dims[name]) for name, shape in shapes.items()],
        ckpt_steps=cfg.checkpoint_steps(),
        data={"train_idx": ("train_example", task.train_idx), "test_idx": ("test_example", task.test_idx)},
    )


class Recorder:
    """Buffers M members' per-step rows on the device and streams them, with checkpoints, to M stores."""

    def __init__(self, writers: Sequence[RunWriter], param_names: Sequence[str], ckpt_steps: np.ndarray,
                 device: torch.device, on_flush: OnFlush | None = None, *, start: int = 0,
                 resume_state: Callable[[], dict[str, np.ndarray]] | None = None, n_groups: int = 0) -> None:
        """``start``: the first step to log (a resumed run); ``resume_state()``: the training state at the
        start of the step being flushed, saved with every flush (single runs); ``n_groups``: subclasses whose
        test accuracy is logged (:data:`GROUP_METRIC`)."""
        self.writers = list(writers)
        self.names = list(param_names)
        self.ckpt_steps = ckpt_steps
        self.on_flush = on_flush
        M = len(self.writers)
        self.rows = torch.empty((M, FLUSH_ROWS, len(SCALARS)), dtype=torch.float64, device=device)
        self.norm_rows = torch.empty((M, FLUSH_ROWS, len(self.names)), dtype=torch.float64, device=device)
        self.group_rows = torch.empty((M, FLUSH_ROWS, n_groups), dtype=torch.float64, device=device)
        self.pending: list[list[torch.Tensor]] = []  # per checkpoint: one (M, …) tensor per parameter
        self.next_ckpt = int(np.searchsorted(ckpt_steps, start))  # a resumed run rewrites from `start` on
        for writer in self.writers:
            writer.steps_written, writer.ckpts_written = start, self.next_ckpt
        self.first_row, self.last_flush = start, time.monotonic()
        self.flush_seconds = FLUSH_SECONDS
        self.resume_state = resume_state
        self.slots = [ResumeSlots(w) for w in self.writers] if resume_state else []
        self.diverged_at: list[int | None] = [None] * M  # first step with a non-finite train loss
        self.started = time.perf_counter()

    def log(self, step: int, row: torch.Tensor, norms: torch.Tensor, params: Sequence[torch.Tensor],
            last: bool, groups: torch.Tensor | None = None) -> None:
        """Record step ``step``: ``row (M, len(SCALARS))``, ``norms (M, n_params)``, the parameters
        ``(M, …)`` each (copied only at checkpoint steps) and ``groups (M, n_groups)``, the per-subclass test
        accuracy.  Flushes when the buffer is full, time is up or ``last``."""
        i = step - self.first_row
        self.rows[:, i] = row
        self.norm_rows[:, i] = norms
        if groups is not None:
            self.group_rows[:, i] = groups
        if self.next_ckpt < len(self.ckpt_steps) and step == self.ckpt_steps[self.next_ckpt]:
            self.pending.append([p.detach().clone() for p in params])
            self.next_ckpt += 1
        if last or i + 1 == FLUSH_ROWS or time.monotonic() - self.last_flush > self.flush_seconds:
            self.flush(step)

    def flush(self, upto: int) -> None:
        """Write rows ``first_row … upto`` and pending checkpoints to every store, then commit each."""
        started = time.monotonic()
        n = upto - self.first_row + 1
        block = self.rows[:, :n].cpu().numpy()  # (M, n, S)
        norms = self.norm_rows[:, :n].cpu().numpy()  # (M, n, P)
        groups = self.group_rows[:, :n].cpu().numpy() if self.group_rows.shape[-1] else None  # (M, n, G)
        ckpts = [torch.stack([c[j] for c in self.pending], dim=1).cpu().numpy()  # (M, k, …)
                 for j in range(len(self.names))] if self.pending else []
        writes = []
        for m, writer in enumerate(self.writers):  # all stores' blocks go out together, then the commits
            metrics = {name: block[m, :, j] for j, name in enumerate(SCALARS)}
            metrics["param_norm"] = norms[m]
            if groups is not None:
                metrics[GROUP_METRIC] = groups[m]
            writes += writer.metric_writes(self.first_row, metrics)
            if ckpts:
                writes += writer.checkpoint_writes(writer.ckpts_written,
                                                   {name: ckpts[j][m] for j, name in enumerate(self.names)})
        run_writes(writes)
        if self.slots:  # the state at the start of `upto`: a resumed run re-runs step `upto` exactly
            state = self.resume_state()
            run_writes([w for slots in self.slots for w in slots.writes(upto, state)])
            for slots in self.slots:
                slots.mark()
        run_writes([writer.commit_write() for writer in self.writers])
        self.pending = []
        for m in range(len(self.writers)):
            bad = np.flatnonzero(~np.isfinite(block[m, :, 0]))
            if self.diverged_at[m] is None and len(bad):
                self.diverged_at[m] = self.first_row + int(bad[0])
        # keep writing ≲ 10% of the time: many stores (a batched group) flush less often
        self.flush_seconds = max(FLUSH_SECONDS, 10 * (time.monotonic() - started))
        self.first_row, self.last_flush = upto + 1, time.monotonic()
        if self.on_flush:
            self.on_flush(upto, {name: float(v) for name, v in zip(SCALARS, block[0, -1])})

    @property
    def diverged(self) -> bool:
        return any(step is not None for step in self.diverged_at)

    def finalize(self, steps: int) -> None:
        """Final commit of every store: ``complete``, or ``diverged`` with ``diverged_at`` (the step)."""
        elapsed = time.perf_counter() - self.started
        for writer, diverged in zip(self.writers, self.diverged_at):
            extra = {"diverged_at": diverged} if diverged is not None else {}
            writer.finalize("diverged" if diverged is not None else "complete", wall_time_s=round(elapsed, 3),
                            steps_per_s=round(steps / elapsed, 2), **extra)
