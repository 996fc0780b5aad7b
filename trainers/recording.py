"""From training state to run stores: store creation and the device-side buffer of per-step rows.

The loop (:mod:`grokscope.trainers.loop`) logs M members' rows each step, one store per member.  Rows stay on
the device and reach the host only when a block is flushed: every ``FLUSH_ROWS`` steps or ``FLUSH_SECONDS``,
then the pending checkpoints, then each member's resume state, then each store's commit marker.
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
from grokscope.config.resolve import checkpoint_steps
from grokscope.config.run import RunConfig
from grokscope.data.build import TaskData
from grokscope.store.layout import ParamSpec
from grokscope.store.resume import ResumeSlots
from grokscope.store.writer import RunWriter, run_writes
from grokscope.trainers.devices import device_name

SCALARS = ("train_loss", "train_acc", "test_loss", "test_acc", "l2_norm")  # per-step metric columns
# Mini-batched runs only: each step's batch loss and accuracy (train_* there are whole-training-set values,
# measured at evaluation steps).
BATCH_LOSS, BATCH_ACC = "batch_loss", "batch_acc"
BATCH_METRICS = (BATCH_LOSS, BATCH_ACC)
GROUP_METRIC = "test_acc_subclass"  # (step, subclass): test accuracy per subclass, tasks with subclasses only
# Steps buffered on the device before a block write (GROKSCOPE_FLUSH_ROWS overrides: tests, live dashboards).
FLUSH_ROWS = int(os.environ.get("GROKSCOPE_FLUSH_ROWS", "1024"))
FLUSH_SECONDS = 5.0  # ... or this long since the last one (at least), so live readers see progress

OnFlush = Callable[[int, dict[str, float]], None]


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
        ckpt_steps=checkpoint_steps(cfg),
        data={"train_idx": ("train_example", task.train_idx), "test_idx": ("test_example", task.test_idx)},
    )


class Recorder:
    """Buffers M members' per-step rows on the device and streams them, with checkpoints, to M stores.

    Divergence (one rule for every loop): a member diverges at the first step whose training loss
    (:data:`BATCH_LOSS` in mini-batched runs, else ``train_loss``) is not finite.  It is found when the block
    holding that step is flushed; with ``stop_on_divergence`` the member's store then ends at that step (its
    rows and checkpoints after it are never written, whenever the flush happened), and nothing more is
    written to it.  With ``stop_on_divergence=False`` every row is written.
    """

    def __init__(self, writers: Sequence[RunWriter], param_names: Sequence[str], ckpt_steps: np.ndarray,
                 device: torch.device, on_flush: OnFlush | None = None, *, start: int = 0,
                 resume_state: Callable[[], list[dict[str, np.ndarray]]] | None = None, n_groups: int = 0,
                 extra: Sequence[str] = (), stop_on_divergence: bool = True) -> None:
        """``start``: the first step to log (a resumed run); ``resume_state()``: each member's training state
        at the start of the step being flushed, saved with every flush into its store; ``n_groups``: subclasses whose
        test accuracy is logged (:data:`GROUP_METRIC`); ``extra``: per-step scalars logged after
        :data:`SCALARS` in every row (created by :func:`create_writer` with the same names)."""
        self.writers = list(writers)
        self.names = list(param_names)
        self.ckpt_steps = ckpt_steps
        self.on_flush = on_flush
        self.columns = (*SCALARS, *extra)
        self.loss_column = self.columns.index(BATCH_LOSS) if BATCH_LOSS in self.columns else 0
        self.stop_on_divergence = stop_on_divergence
        M = len(self.writers)
        self.rows = torch.empty((M, FLUSH_ROWS, len(self.columns)), dtype=torch.float64, device=device)
        self.norm_rows = torch.empty((M, FLUSH_ROWS, len(self.names)), dtype=torch.float64, device=device)
        self.group_rows = torch.empty((M, FLUSH_ROWS, n_groups), dtype=torch.float64, device=device)
        self.pending: list[list[torch.Tensor]] = []  # per checkpoint: one (M, …) tensor per parameter
        self.pending_steps: list[int] = []  # the step of each pending checkpoint
        self.next_ckpt = int(np.searchsorted(ckpt_steps, start))  # a resumed run rewrites from `start` on
        for writer in self.writers:
            writer.steps_written, writer.ckpts_written = start, self.next_ckpt
        self.first_row, self.last_flush = start, time.monotonic()
        self.last_logged = start - 1
        self.flush_seconds = FLUSH_SECONDS
        self.resume_state = resume_state
        self.slots = [ResumeSlots(w) for w in self.writers] if resume_state else []
        # first step with a non-finite training loss; a resumed run finds it in the rows it already committed
        self.diverged_at: list[int | None] = [self._committed_divergence(w, start) for w in self.writers]
        self.stopped = [False] * M  # diverged under stop_on_divergence, or stopped early: its store is finished
        self.stopped_early: list[int | None] = [None] * M  # the step a member was stopped at (end_early)
        self.started = time.perf_counter()

    def _committed_divergence(self, writer: RunWriter, start: int) -> int | None:
        """The first non-finite watched loss in rows ``0 … start − 1`` of ``writer``'s store (resume)."""
        if start == 0:
            return None
        bad = np.flatnonzero(~np.isfinite(np.asarray(writer.metrics[self.columns[self.loss_column]][:start])))
        return int(bad[0]) if len(bad) else None

    def log(self, step: int, row: torch.Tensor, norms: torch.Tensor, params: Sequence[torch.Tensor],
            last: bool, groups: torch.Tensor | None = None) -> None:
        """Record step ``step``: ``row (M, len(columns))``, ``norms (M, n_params)``, the parameters
        ``(M, …)`` each (copied only at checkpoint steps) and ``groups (M, n_groups)``, the per-subclass test
        accuracy.  Flushes when the buffer is full, time is up or ``last``."""
        i = step - self.first_row
        self.last_logged = step
        self.rows[:, i] = row
        self.norm_rows[:, i] = norms
        if groups is not None:
            self.group_rows[:, i] = groups
        if self.next_ckpt < len(self.ckpt_steps) and step == self.ckpt_steps[self.next_ckpt]:
            self.pending.append([p.detach().clone() for p in params])
            self.pending_steps.append(step)
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
        for m in range(len(self.writers)):
            bad = np.flatnonzero(~np.isfinite(block[m, :, self.loss_column]))
            if self.diverged_at[m] is None and len(bad):
                self.diverged_at[m] = self.first_row + int(bad[0])
        writes, live = [], []
        for m, writer in enumerate(self.writers):  # all stores' blocks go out together, then the commits
            if self.stopped[m]:
                continue
            end = n  # rows of this block to write: up to the divergence step under stop_on_divergence
            if self.stop_on_divergence and self.diverged_at[m] is not None:
                end = self.diverged_at[m] - self.first_row + 1
            live.append(m)
            metrics = {name: block[m, :end, j] for j, name in enumerate(self.columns)}
            metrics["param_norm"] = norms[m, :end]
            if groups is not None:
                metrics[GROUP_METRIC] = groups[m, :end]
            writes += writer.metric_writes(self.first_row, metrics)
            k = int(np.searchsorted(self.pending_steps, self.first_row + end - 1, side="right"))
            if k:
                writes += writer.checkpoint_writes(writer.ckpts_written,
                                                   {name: ckpts[j][m, :k] for j, name in enumerate(self.names)})
        run_writes(writes)
        for m in live:
            self.stopped[m] = self.stop_on_divergence and self.diverged_at[m] is not None
        resumable = [m for m in live if self.slots and not self.stopped[m]]
        if resumable:  # the state at the start of `upto`: a resumed run re-runs it
            states = self.resume_state()
            run_writes([w for m in resumable for w in self.slots[m].writes(upto, states[m])])
            for m in resumable:
                self.slots[m].mark()
        run_writes([self.writers[m].commit_write() for m in live])
        self.pending, self.pending_steps = [], []
        # keep writing ≲ 10% of the time: many stores (a batched group) flush less often
        self.flush_seconds = max(FLUSH_SECONDS, 10 * (time.monotonic() - started))
        self.first_row, self.last_flush = upto + 1, time.monotonic()
        if self.on_flush:  # the newest value of each metric (train_* of mini-batched runs: the last eval)
            latest = {}
            for j, name in enumerate(SCALARS):
                seen = block[0, np.isfinite(block[0, :, j]), j]
                latest[name] = float(seen[-1]) if len(seen) else math.nan
            self.on_flush(upto, latest)

    def live(self) -> list[int]:
        """The members whose stores are still written to."""
        return [m for m, stopped in enumerate(self.stopped) if not stopped]

    def end_early(self, m: int, step: int, attrs: dict) -> None:
        """End member ``m``'s store at ``step`` (flushed already) with status ``stopped_early``, ``attrs``
        (why) recorded as its ``stopped_early`` attribute; nothing more is written to it."""
        if step + 1 != self.first_row:
            raise RuntimeError(f"end_early at step {step} needs the rows up to it flushed")
        self.stopped[m], self.stopped_early[m] = True, step
        elapsed = time.perf_counter() - self.started
        self.writers[m].finalize("stopped_early", stopped_early_at=step, stopped_early=attrs,
                                 wall_time_s=round(elapsed, 3), steps_per_s=round(step / max(elapsed, 1e-9), 2))

    def select(self, keep: Sequence[int], steps: int) -> None:
        """Record the members ``keep`` only from now on; the others' stores are finished (stopped early, or
        diverged under ``stop_on_divergence``: those are finalized here, as :meth:`finalize` would at the end
        of a run of ``steps``).  Every logged row must be flushed."""
        if self.first_row != self.last_logged + 1:
            raise RuntimeError("select needs every logged row flushed")
        dropped = sorted(set(range(len(self.writers))) - set(keep))
        self._finish([m for m in dropped if self.stopped_early[m] is None], steps)
        for name in ("writers", "diverged_at", "stopped", "stopped_early", "slots"):
            values = getattr(self, name)
            if values:
                setattr(self, name, [values[m] for m in keep])
        M = len(keep)
        self.rows = self.rows.new_empty((M, *self.rows.shape[1:]))
        self.norm_rows = self.norm_rows.new_empty((M, *self.norm_rows.shape[1:]))
        self.group_rows = self.group_rows.new_empty((M, *self.group_rows.shape[1:]))

    @property
    def finished(self) -> bool:
        """Every member has diverged under ``stop_on_divergence`` or was stopped early: nothing is left."""
        return all(self.stopped)

    def finalize(self, steps: int, attrs: Sequence[dict] = ()) -> None:
        """Final commit of every store: ``complete``, or ``diverged`` with ``diverged_at`` (the step), with each
        member's summary ``attrs`` (distillation's) among its root attributes."""
        self._finish([m for m in range(len(self.writers)) if self.stopped_early[m] is None], steps, attrs)

    def _finish(self, members: Sequence[int], steps: int, attrs: Sequence[dict] = ()) -> None:
        """Finalize ``members``' stores: ``complete``, or ``diverged`` with ``diverged_at``."""
        elapsed = time.perf_counter() - self.started
        for m in members:
            diverged = self.diverged_at[m]
            extra = {"diverged_at": diverged} if diverged is not None else {}
            self.writers[m].finalize("diverged" if diverged is not None else "complete",
                                     wall_time_s=round(elapsed, 3), steps_per_s=round(steps / elapsed, 2), **extra,
                                     **(attrs[m] if attrs else {}))
