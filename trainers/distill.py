"""Knowledge distillation below the critical data size (seed 000, Singh et al.).

The student minimises ``L = (1 − α)·CE + α·KL(q_T ‖ q_S)``, ``q = softmax(logits / t)``: CE is the config's
training loss (``cfg.loss``, softmax or StableMax) on the answer logits; the KL compares the teacher's and the
student's output distributions at ``cfg.kd_position``, the operator token ``@`` (seed 000) or the answer.
Teachers are grokscope run stores, loaded at a checkpoint (``cfg.teacher_ckpt``, default the last), frozen and
in eval mode; their targets are computed once, before the first step.  Three setups (``cfg.kd_setup``):

* ``single``: a fresh student on its own task (``cfg.p``), distilled from a teacher of another task;
* ``joint``: a fresh student on the union of two training sets: the first task's is exactly its teacher's
  (``teacher``), the second is the student's own (``cfg.p``, ``cfg.frac``; teacher ``teacher2``); each example
  is distilled from its own task's teacher (``kd_alpha 1``: pure distillation, ``0``: plain joint CE);
* ``continual``: start from the teacher's weights (fresh optimizer state), train on the student's task and
  distil from the frozen teacher, logging the teacher's task ("p1", the previous task) to measure forgetting.

The run store is the one :func:`grokscope.trainers.train` writes (so ``analyze``, ``cds`` and ``report`` read
it unchanged): ``train_*`` are over the training set (joint: both tasks; mini-batched runs: measured on the
whole set at evaluation steps, with each step's batch values in ``batch_loss``/``batch_acc``), ``test_*`` over
the student's own task's test set, and the config names the teachers.  Extra per-step arrays: ``train_ce`` and
``train_kl`` (the two terms of L on each step's batch); in joint and continual runs ``p1_test_loss`` and
``p1_test_acc`` on the first teacher's test set at every evaluation.  Root attributes: ``distill`` (each
teacher's path, checkpoint, step and test accuracy) and, for continual runs, ``forgetting``
(:func:`forgetting_summary`).  Evaluation loss is the test loss of every run (softmax CE).

Training is the loop every run goes through (:mod:`grokscope.trainers.loop`) under the :class:`Distillation`
objective, so a distilled run saves resume state like any run: a stopped one continues exactly with
``grokscope train --resume`` (its teachers reloaded from the paths in its config, their targets recomputed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grokscope.config.presets import PRESETS, from_preset
from grokscope.config.resolve import derived, resolve
from grokscope.config.run import DISTILL, MODEL, RunConfig, field_names
from grokscope.data.modular import OPERATOR_POSITION, SEQ_LEN, build_task, vocabulary
from grokscope.errors import ConfigError, StoreError
from grokscope.store.reader import RunStore
from grokscope.trainers.data import Examples, eval_chunk
from grokscope.trainers.evaluate import logits_in_chunks
from grokscope.trainers.loop import Objective, run
from grokscope.trainers.losses import accuracy, hits, kd_loss
from grokscope.trainers.members import Members
from grokscope.trainers.probe import load_model
from grokscope.trainers.recording import OnFlush

# Fields a student does not take from its teacher: its own run's data size and device, and the teacher's
# own distillation.
_NOT_INHERITED = ("n_train", "device", *field_names(DISTILL))
# The architecture a continual student must share with its teacher (it starts from the teacher's weights).
ARCHITECTURE = field_names(MODEL)
TEACHER_BATCH = 8192  # rows per teacher forward pass when computing the targets


@dataclass(frozen=True)
class Teacher:
    """A frozen teacher: its store, the checkpoint used, its config, task split and model (eval mode)."""

    path: Path
    ckpt: int  # checkpoint index (non-negative)
    step: int  # the training step of that checkpoint
    cfg: RunConfig
    vocab: tuple[str, ...]
    train_idx: np.ndarray  # (n_train,) rows of its task it trained on
    test_idx: np.ndarray  # (n_test,) its task's test set
    model: torch.nn.Module


def load_teacher(path: str | Path, ckpt: int = -1) -> Teacher:
    """The teacher in run store ``path`` at checkpoint index ``ckpt`` (-1: the last), on the CPU, frozen.

    Raises :class:`StoreError` for a path that is no grokscope-trained store, :class:`ConfigError` for a
    checkpoint index out of range or an MLP teacher.
    """
    store = RunStore(path)
    if store.n_ckpts == 0:
        raise StoreError(f"teacher {store.path} has no committed checkpoints")
    if not -store.n_ckpts <= ckpt < store.n_ckpts:
        raise ConfigError(f"teacher_ckpt={ckpt} is out of range: {store.path} has {store.n_ckpts} checkpoints")
    index = ckpt % store.n_ckpts
    model, cfg = load_model(store, index)
    if cfg.model != "transformer":
        raise ConfigError(f"teacher {store.path} is an MLP; distillation needs a transformer teacher")
    model.requires_grad_(False)
    return Teacher(path=store.path, ckpt=index, step=int(store.checkpoint_steps()[index]), cfg=cfg,
                   vocab=tuple(store.attrs["task"]["vocab"]), train_idx=np.asarray(store.read("train_idx")),
                   test_idx=np.asarray(store.read("test_idx")), model=model.eval())


def distill_config(teacher_cfg: RunConfig, preset: str | None = None, /, **values: Any) -> RunConfig:
    """A student's resolved config: its (last) teacher's config, then ``preset``, then the given ``values``.

    The student keeps its teacher's task format, vocabulary, model and schedule unless told otherwise; it
    never inherits the teacher's data size (``frac`` is kept, ``n_train`` recomputed for the student's pool),
    device or distillation settings, and values the teacher resolved from defaults (``d_mlp = 4·d_model``,
    ``n_ctx`` = input length, ``ckpt_every = steps // 100``) are resolved again for the student.  ``None``
    values are ignored.
    """
    base = {k: v for k, v in teacher_cfg.to_dict().items() if k not in _NOT_INHERITED}
    for name, value in derived(teacher_cfg).items():  # what the teacher derived, the student derives again
        if getattr(teacher_cfg, name) == value:
            base.pop(name)
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        base.update(PRESETS[preset], preset=preset)
    given = {k: v for k, v in values.items() if v is not None}
    if "n_train" in given or "frac" in given:
        base.pop("frac", None)
    label = base.pop("preset", None)  # a label only: its values are already in base
    return resolve(dataclasses.replace(from_preset(None, **{**base, **given}), preset=label))


def teacher_paths(cfg: RunConfig) -> list[str]:
    """The teacher stores a distillation config names, in order (``teacher``, then ``teacher2``)."""
    return [p for p in (cfg.teacher, cfg.teacher2) if p is not None]


def check_distillation(cfg: RunConfig) -> list[Teacher]:
    """Load ``cfg``'s teachers and check that they can teach it; writes nothing.

    Every teacher's vocabulary must equal the student's, token for token (seed 000: teacher and student
    outputs align); a continual student must share its teacher's architecture; a joint student's task must be
    ``teacher2``'s and differ from ``teacher``'s.  Raises :class:`ConfigError` naming the problem.
    """
    cfg = resolve(cfg)
    if cfg.kd_setup == "none":
        raise ConfigError("this config does not distil (kd_setup none); train it with grokscope train")
    teachers = [load_teacher(path, cfg.teacher_ckpt) for path in teacher_paths(cfg)]
    vocab = vocabulary(cfg.op, cfg.p, cfg.input_format, cfg.study_moduli())
    for t in teachers:
        if t.vocab != vocab:
            missing = [tok for tok in vocab if tok not in set(t.vocab)]
            what = (f"does not cover the student's task (no {', '.join(missing[:3])}{'…' if len(missing) > 3 else ''})"
                    if missing else "orders or extends the student's tokens differently")
            raise ConfigError(f"teacher {t.path}: its vocabulary ({len(t.vocab)} tokens, {t.cfg.input_format} "
                              f"format, moduli {','.join(map(str, t.cfg.study_moduli()))}) {what}; train "
                              f"teacher and student with --input-format singh and one --moduli")
    if cfg.kd_setup == "continual":
        for name in ARCHITECTURE:
            if getattr(cfg, name) != getattr(teachers[0].cfg, name):
                raise ConfigError(f"continual training starts from the teacher's weights: {name}="
                                  f"{getattr(cfg, name)} differs from teacher {teachers[0].path}'s "
                                  f"{getattr(teachers[0].cfg, name)}")
    if cfg.kd_setup == "joint":
        first, own = teachers
        if (own.cfg.p, own.cfg.op) != (cfg.p, cfg.op):
            raise ConfigError(f"joint: teacher2 {own.path} (p={own.cfg.p}, {own.cfg.op}) must teach the "
                              f"student's own task (p={cfg.p}, {cfg.op})")
        if first.cfg.p == cfg.p:
            raise ConfigError(f"joint: teacher {first.path} teaches the student's own modulus p={cfg.p}; "
                              f"the two teachers need different moduli")
    return teachers


def kd_position(cfg: RunConfig) -> int:
    """The token position whose outputs are distilled: the operator token, or the answer (last) position."""
    if cfg.kd_position == "answer":
        return SEQ_LEN[cfg.input_format] - 1
    return OPERATOR_POSITION[cfg.input_format]


@torch.no_grad()
def teacher_targets(teacher: Teacher, tokens: torch.Tensor, position: int) -> torch.Tensor:
    """The teacher's logits ``(N, vocab)`` at ``position`` of ``tokens (N, T)``, in blocks."""
    return torch.cat([teacher.model.logits_at(block, (position,))[:, 0]
                      for block in tokens.split(TEACHER_BATCH)])


def forgetting_summary(steps: np.ndarray, acc: np.ndarray) -> dict[str, Any]:
    """Forgetting of the previous task from its test accuracy ``acc`` over ``steps`` (NaN: not evaluated):
    the accuracy at the start, its minimum (and where), the largest drop below the start, the final value.

    Examples
    --------
    >>> forgetting_summary(np.arange(4), np.array([1.0, 0.25, np.nan, 0.5]))["max_drop"]
    0.75
    """
    seen = ~np.isnan(acc)
    steps, acc = steps[seen], acc[seen]
    low = int(np.argmin(acc))
    return {"initial_acc": float(acc[0]), "min_acc": float(acc[low]), "min_step": int(steps[low]),
            "max_drop": float(max(0.0, acc[0] - acc[low])), "final_acc": float(acc[-1])}


class Distillation(Objective):
    """Seed 000's objective: ``(1 − α)·CE + α·KL`` to the frozen ``teachers``' logits at :func:`kd_position`.

    The teachers' targets are computed once, on the training set, in :meth:`prepare` (which also starts a
    continual student from its teacher's weights and makes a joint student's training set the union of both
    tasks').  Logs the two terms (``train_ce``, ``train_kl``) every step and, in joint and continual runs, the
    first teacher's test set (``p1_test_*``) at every evaluation.  A distilled run trains alone (one member).
    """

    def __init__(self, cfg: RunConfig, teachers: Sequence[Teacher]) -> None:
        super().__init__(cfg)
        self.cfg, self.teachers = cfg, list(teachers)
        self.position = kd_position(cfg)
        answer = SEQ_LEN[cfg.input_format] - 1
        self.positions = (self.position, -1) if self.position != answer else (-1,)  # distilled, then the answer
        self.p1 = cfg.kd_setup in ("joint", "continual")  # log the first teacher's task
        self.columns = ("train_ce", "train_kl", *(("p1_test_loss", "p1_test_acc") if self.p1 else ()))

    def prepare(self, models: Sequence[torch.nn.Module], train: Examples) -> Examples:
        """The continual student's initial weights, the joint training set, and the teachers' targets."""
        self.device = train.y.device
        for t in self.teachers:
            t.model.to(self.device)
        if self.cfg.kd_setup == "continual":
            models[0].load_state_dict(self.teachers[0].model.state_dict())
        x, y = train.x[0], train.y[0]  # (n, T), (n,)
        self.targets = teacher_targets(self.teachers[-1], x, self.position)  # (n, vocab)
        if not self.p1:
            return train
        first = self.teachers[0]
        p1 = build_task(first.cfg)  # the same vocabulary (checked), so the same token ids
        tokens, answers = (torch.as_tensor(a, device=self.device) for a in (p1.tokens, p1.targets))
        self.tests = [Examples(tokens[first.test_idx][None], answers[first.test_idx][None], len(first.test_idx),
                               chunk=eval_chunk(self.cfg, p1.tokens[first.test_idx]))]  # the first task's test set
        if self.cfg.kd_setup == "continual":
            return train
        x1, y1 = tokens[first.train_idx], answers[first.train_idx]  # the first task's teacher's training set
        self.targets = torch.cat([teacher_targets(first, x1, self.position), self.targets])
        x, y = torch.cat([x1, x]), torch.cat([y1, y])
        return Examples(x[None], y[None], torch.tensor([len(y)], device=self.device), chunk=train.chunk)

    def loss(self, members: Members, batch: Examples) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        out = members.logits(batch.x, self.positions)  # (M, B, Q, vocab): the distilled position, then the answer
        return self._loss(members, out, batch)

    def whole_set(self, members: Members, train: Examples) -> torch.Tensor:
        out = logits_in_chunks(lambda x: members.logits(x, self.positions), train.x, train.chunk)  # (M, n, Q, vocab)
        logits, loss, _ = self._loss(members, out, train)
        return torch.stack([loss.to(torch.float64), members.mean(hits(logits, train.y), train.weights, train.count)],
                           dim=-1)

    def _loss(self, members: Members, out: torch.Tensor, examples: Examples):
        """Answer logits, ``L`` and its terms ``[(M, 2)]`` (CE, KL) from the logits ``out (M, B, Q, vocab)``."""
        logits = out[..., -1, :]  # (M, B, vocab) at the answer position
        ce = members.mean_loss(self.train_loss, logits, examples.y, examples.weights, examples.count)  # (M,)
        teacher = self.targets[None] if examples.idx is None else self.targets[examples.idx]  # (M, B, vocab)
        loss, kl = kd_loss(ce, teacher, out[..., 0, :], self.cfg.kd_alpha, self.cfg.temperature, self.cfg.loss_dtype)
        return logits, loss, [torch.stack([ce, kl], dim=-1).detach().to(torch.float64)]

    def summary(self, path: Path) -> dict[str, Any]:
        """``distill``: each teacher's path, checkpoint, step and test accuracy; continual: ``forgetting``."""
        summary: dict[str, Any] = {"distill": {
            "setup": self.cfg.kd_setup, "position": self.position,
            "teachers": [{"path": str(t.path.resolve()), "ckpt": t.ckpt, "step": t.step, "p": t.cfg.p,
                          "op": t.cfg.op, "test_acc": _test_accuracy(t, self.device)} for t in self.teachers]}}
        if self.cfg.kd_setup == "continual":
            acc = RunStore(path).read("p1_test_acc")  # (steps committed,)
            summary["forgetting"] = forgetting_summary(np.arange(len(acc)), acc)
        return summary


def distill(cfg: RunConfig, out: str | Path, *, teachers: Sequence[Teacher] | None = None,
            on_flush: OnFlush | None = None) -> Path:
    """Train the student ``cfg`` describes (``kd_setup`` single, joint or continual) into a new run store.

    ``teachers`` are those :func:`check_distillation` returned for ``cfg`` (loaded and checked here if not
    given).  With ``kd_alpha = 0`` a single-teacher run is plain training: the same metrics as
    :func:`grokscope.trainers.train` on the same config (to float rounding).  A stopped student resumes with
    ``grokscope.trainers.train.train(None, out, resume=True)``, like any run.

    Examples
    --------
    >>> cfg = distill_config(load_teacher("runs/t23.zarr").cfg, p=19, kd_setup="single",
    ...                      teacher="runs/t23.zarr")  # doctest: +SKIP
    >>> distill(cfg, "runs/student19.zarr")  # doctest: +SKIP
    """
    cfg = resolve(cfg)
    teachers = list(teachers) if teachers is not None else check_distillation(cfg)
    return run([cfg], [out], Distillation(cfg, teachers), on_flush=on_flush)[0]


@torch.no_grad()
def _test_accuracy(teacher: Teacher, device: torch.device) -> float:
    """The teacher's accuracy on its own test set at the checkpoint used."""
    task = build_task(teacher.cfg)
    x = torch.as_tensor(task.tokens[teacher.test_idx], device=device)
    y = torch.as_tensor(task.targets[teacher.test_idx], device=device)
    return float(accuracy(teacher.model(x), y))
