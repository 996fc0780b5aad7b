"""The training loop every run goes through: M members trained together under one objective.

A single run is a group of one (:class:`~grokscope.trainers.members.OneRun`), a sweep's group of same-shaped
runs one stacked model (:class:`~grokscope.trainers.members.Stacked`); the loop sees M members either way, and
``(M, …)`` rows.  The :class:`Objective` is the config's training loss; distillation's adds a loss term, frozen
teachers and an evaluation set (:class:`grokscope.trainers.distill.Distillation`).

Reads top to bottom in execution order: device, data, models, members, stores (new, or a stopped run's own,
continued from its last commit); then per step the batch, forward and loss, evaluation, the row (kept on the
device by the :class:`~grokscope.trainers.recording.Recorder`, which flushes rows, checkpoints and resume state
to the stores and ends a diverged member's store), backward and update.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from grokscope.config.resolve import checkpoint_steps
from grokscope.config.run import RunConfig
from grokscope.data.build import TaskData
from grokscope.errors import StoreError
from grokscope.store.resume import load_resume_state
from grokscope.store.writer import RunWriter
from grokscope.trainers.data import Batches, Examples, load_task, member_sets
from grokscope.trainers.devices import resolve_device
from grokscope.trainers.evaluate import test_metrics, train_set_metrics
from grokscope.trainers.losses import hits, loss_fn, test_loss_fn
from grokscope.trainers.members import Members, OneRun, Stacked
from grokscope.trainers.models import build_model
from grokscope.trainers.recording import BATCH_METRICS, OnFlush, Recorder, create_writer


@dataclasses.dataclass(frozen=True)
class EarlyStop:
    """Stop members that will not generalize: after the row of step ``round(at_frac · steps)`` is committed,
    ``decide(stores, step)`` gets the live members' store paths and returns, per store, ``None`` (train on) or
    a dict saying why to stop (a forecast); those stores end at that step with status ``stopped_early`` and
    the dict as their ``stopped_early`` attribute, and a stacked group trains only the members left from the
    next step on.  ``decide`` must pickle (sweeps send it to workers)."""

    at_frac: float
    decide: Callable[[Sequence[Path], int], Sequence[dict | None]]

    def step(self, steps: int) -> int | None:
        """The step to decide at in a run of ``steps`` steps (None: no step strictly inside the run)."""
        at = round(self.at_frac * steps)
        return at if 0 < at < steps else None


class Objective:
    """What the members minimise and what else is logged: here the config's training loss (``cfg.loss``:
    softmax or StableMax CE, or MSE) on the answer logits, and nothing else.

    ``columns`` name the per-step arrays an objective adds after :data:`~grokscope.trainers.recording.SCALARS`
    and the batch metrics: first its loss terms (:meth:`loss`), then loss and accuracy on each of ``tests``
    at every evaluation.
    """

    columns: tuple[str, ...] = ()
    tests: Sequence[Examples] = ()  # further test sets, (M, n, …) each

    def __init__(self, cfg: RunConfig) -> None:
        self.train_loss = loss_fn(cfg)

    def prepare(self, models: Sequence[nn.Module], train: Examples) -> Examples:
        """Before the first step: may set the members' initial weights and replace the training set."""
        return train

    def loss(self, members: Members, batch: Examples) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Answer logits ``(M, B, C)``, each member's loss ``(M,)`` and its logged terms ``[(M, k)]``."""
        logits = members.logits(batch.x)  # (M, B, C)
        return logits, members.mean_loss(self.train_loss, logits, batch.y, batch.weights, batch.count), []

    def whole_set(self, members: Members, train: Examples) -> torch.Tensor:
        """``(loss, accuracy)`` over the whole training set ``(M, 2)``: mini-batched runs' ``train_*``."""
        return train_set_metrics(members, train, self.train_loss)

    def summary(self, path: Path) -> dict[str, Any]:
        """Root attributes for the finished store at ``path``."""
        return {}


def run(cfgs: Sequence[RunConfig], outs: Sequence[str | Path], objective: Objective, *, stacked: bool = False,
        on_flush: OnFlush | None = None, resume: bool = False, early_stop: EarlyStop | None = None) -> list[Path]:
    """Train the resolved ``cfgs`` (one run, or one group with ``stacked``) into one store each.

    With ``resume``, ``outs`` is one stopped run's store (:func:`reopen_stopped`): training continues from its
    resume state, or from step 0 in the same store where it saved none.  Stacked members save no resume state
    (:class:`~grokscope.trainers.members.Stacked`).  ``early_stop`` ends the members it advises to stop
    (:class:`EarlyStop`).  Returns the store paths.
    """
    device = resolve_device(cfgs[0].device)
    cfgs = [dataclasses.replace(c, device=str(device)) for c in cfgs]
    cfg, M = cfgs[0], len(cfgs)  # the schedule, the architecture and the loss every member shares
    stop = cfg.on_divergence == "stop"

    # data: one split; each member its own training subset
    loaded = [load_task(c, device) for c in cfgs]
    tasks, data = [t for t, _ in loaded], [d for _, d in loaded]
    train_set, test_set = member_sets(data)  # (M, n, …)

    # models, each initialised exactly as it would be alone (the caller's objective may change that)
    models = []
    for c in cfgs:
        torch.manual_seed(c.seed)
        models.append(build_model(c, data[0].n_inputs, data[0].n_classes))
    train_set = objective.prepare(models, train_set)
    shapes = {name: tuple(p.shape) for name, p in models[0].named_parameters()}
    members = Stacked(cfgs, models, device, stop) if stacked else OneRun(cfg, models[0].to(device))
    batches = Batches(train_set, cfg.batch_size, [c.seed for c in cfgs])
    extra = (*(BATCH_METRICS if batches.mini else ()), *objective.columns)  # after SCALARS in every row

    # stores: new ones, or the stopped run's own
    start = 0
    if resume:  # one run (OneRun)
        writers = [RunWriter.reopen(outs[0])]
        start = _continue(writers[0], tasks[0], extra, members, batches)
    else:
        writers = [create_writer(c, t, out, shapes, models[0].param_dims(), models[0].param_roles(), device, extra)
                   for c, t, out in zip(cfgs, tasks, outs)]
    recorder = Recorder(writers, list(shapes), checkpoint_steps(cfg), device, on_flush, start=start,
                        resume_state=None if stacked else lambda: members.capture(batches.at_step),
                        n_groups=test_set.n_groups, extra=extra, stop_on_divergence=stop)
    not_evaluated = torch.full((M, 2), math.nan, dtype=torch.float64, device=device)
    groups_not_evaluated = torch.full((M, test_set.n_groups), math.nan, dtype=torch.float64, device=device)
    test_loss = test_loss_fn(cfg)
    decide_at = early_stop.step(cfg.steps) if early_stop else None

    for step in range(start, cfg.steps + 1):
        last = step == cfg.steps  # the final row: evaluate θ_steps, no update
        batch = batches.next()  # (M, B, …): the whole training set, or each member's mini-batch
        with torch.set_grad_enabled(not last):
            logits, loss, terms = objective.loss(members, batch)  # (M, B, C), (M,), [(M, k)]

        with torch.no_grad():
            evaluate = step % cfg.eval_every == 0 or last
            acc = members.mean(hits(logits, batch.y), batch.weights, batch.count)  # (M,)
            on_batch = torch.stack([loss.detach().to(torch.float64), acc], dim=1)  # (M, 2)
            if evaluate:
                test, groups = test_metrics(members, test_set, test_loss)  # (M, 2), (M, G) or None
                tests = [test_metrics(members, s, test_loss)[0] for s in objective.tests]  # [(M, 2)]
            else:
                test, groups, tests = not_evaluated, groups_not_evaluated, [not_evaluated] * len(objective.tests)
            if not batches.mini:  # the batch is the training set
                whole = on_batch
            else:
                whole = objective.whole_set(members, train_set) if evaluate else not_evaluated  # (M, 2)
            norms = members.norms()  # (M, n_params)
            row = torch.cat([whole, test, norms.square().sum(1, keepdim=True).sqrt(),
                             *([on_batch] if batches.mini else []), *terms, *tests], dim=1)  # (M, columns)
            recorder.log(step, row, norms, members.tensors(), last, groups)
        keep = _stop_early(early_stop, step, recorder, members) if step == decide_at and step >= start else None
        if last or recorder.finished:
            break
        members.step(loss)
        if stacked and keep and len(keep) < M:  # train only the runs left: stopped ones cost nothing more
            members.select(keep)
            batches.select(keep)
            recorder.select(keep, cfg.steps)
            index = torch.tensor(keep, device=device)
            train_set, test_set, M = train_set.select(index), test_set.select(index), len(keep)
            not_evaluated, groups_not_evaluated = not_evaluated[index], groups_not_evaluated[index]

    recorder.finalize(cfg.steps, [objective.summary(w.path) for w in recorder.writers])
    return [w.path for w in writers]


def _stop_early(early_stop: EarlyStop, step: int, recorder: Recorder, members: Members) -> list[int]:
    """Commit the rows up to ``step``, ask ``early_stop`` about the live members and end those it stops.
    Returns the members still training (indices)."""
    if recorder.first_row <= step:  # not flushed by the row's own log
        recorder.flush(step)
    live = recorder.live()
    verdicts = early_stop.decide([recorder.writers[m].path for m in live], step)
    for m, why in zip(live, verdicts):
        if why is not None:
            recorder.end_early(m, step, why)
            members.drop(m)
    return recorder.live()


def reopen_stopped(out: str | Path) -> RunConfig:
    """The config of the stopped run in store ``out``; raises :class:`StoreError` for a finished run."""
    writer = RunWriter.reopen(out)
    status = writer.root.attrs.get("status")
    if status != "running":
        raise StoreError(f"{out} is {status}; only a stopped run can resume")
    return RunConfig.from_dict(writer.root.attrs["config"])


def _continue(writer: RunWriter, task: TaskData, extra: Sequence[str], members: OneRun, batches: Batches) -> int:
    """Restore a stopped run's training state from its store; returns the step to continue at.

    A store without resume state (stopped before its first flush) is emptied (its commit marker reset, so
    readers never see old rows mixed with new ones) and its run trained again from step 0.
    """
    for key in ("source", "test_source"):  # the same data, or the continued run would not be the one that started
        then, now = (a.get(key) or {} for a in (writer.root.attrs["task"], task.attrs))
        if then.get("sha256") != now.get("sha256"):
            raise StoreError(f"{writer.path}: its data file {then.get('path')} changed since the run started "
                             f"(sha256 differs); resuming would train on other data")
    if (writer.resume or {}).get("slot"):
        start, state = load_resume_state(writer.path)
        members.restore([state], batches.generators)
        return start
    missing = [name for name in extra if name not in writer.metrics]
    if missing:
        raise StoreError(f"{writer.path} has no {missing[0]} array (written by an older grokscope); train it again")
    writer.steps_written = writer.ckpts_written = 0
    writer.resume = None
    writer.commit()  # readers see no rows until the restarted run's first flush
    return 0
