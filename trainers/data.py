"""A task's examples as device tensors, and each step's batch: what the training loop consumes.

The task itself (sizes, split, subset, the store's description) is :func:`grokscope.data.build.build`, pure
numpy; this module moves it to the device, lays M members' sets out along a leading member axis
(:class:`Examples`), sizes evaluation chunks and draws the mini-batches (:class:`Batches`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from grokscope.config.resolve import mini_batched
from grokscope.config.run import RunConfig
from grokscope.data.build import TaskData, build

EVAL_BUDGET = 2 ** 27  # elements of the largest activation (attention scores or MLP hidden) per eval chunk


@dataclass(frozen=True)
class TaskTensors:
    train_x: torch.Tensor  # (n_train, T) tokens, (n_train, 2) operands, or (n_train, D) features
    train_y: torch.Tensor  # (n_train,)
    test_x: torch.Tensor  # (n_test, …)
    test_y: torch.Tensor  # (n_test,)
    n_inputs: int  # the vocabulary size (token inputs) or the feature width
    n_classes: int  # the model's output width
    test_groups: torch.Tensor | None  # (n_test,) subclass of each test example, or None
    n_groups: int
    eval_chunk: int  # test examples per forward pass during evaluation
    train_chunk: int = 1 << 30  # training examples per forward pass when evaluating the whole training set


def eval_chunk(cfg: RunConfig, x: np.ndarray) -> int:
    """Rows of ``x`` per evaluation pass, so long sequences (text) never hold all attention scores at once."""
    n = len(x)
    if cfg.model != "transformer":
        return max(1, n)
    T = x.shape[1] if x.dtype.kind in "iu" else cfg.n_tokens + 1  # tokens per example
    per_row = T * max(T * cfg.n_heads, cfg.d_mlp)
    return max(1, min(n, EVAL_BUDGET // per_row))


def load_task(cfg: RunConfig, device: torch.device) -> tuple[TaskData, TaskTensors]:
    """The numpy task of the resolved ``cfg`` and its train/test tensors on ``device``."""
    task = build(cfg)
    to = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
    if task.train_x.dtype.kind == "f":
        n_inputs = task.train_x.shape[-1]
    elif cfg.task == "modular":
        n_inputs = len(task.attrs["vocab"])
    else:
        n_inputs = task.attrs["vocab_size"]
    groups = None if task.test_groups is None else to(task.test_groups)
    return task, TaskTensors(to(task.train_x), to(task.train_y), to(task.test_x), to(task.test_y), n_inputs,
                             task.n_classes, groups, len(task.group_names), eval_chunk(cfg, task.test_x),
                             eval_chunk(cfg, task.train_x))


@dataclass(frozen=True)
class Examples:
    """M members' examples along a leading member axis: a training or test set, or one step's batch."""

    x: torch.Tensor  # (M, n, …) inputs
    y: torch.Tensor  # (M, n) targets
    count: int | torch.Tensor  # examples per member: n, or (M,) each member's own (padded sets)
    weights: torch.Tensor | None = None  # (M, n) float64: 1 on a member's own examples, 0 on padding
    chunk: int = 1 << 30  # examples per forward pass when the whole set is evaluated
    groups: torch.Tensor | None = None  # (n,) subclass of each example (test sets of tasks with subclasses)
    n_groups: int = 0
    idx: torch.Tensor | None = None  # (M, B) the rows of the training set a mini-batch drew; None: every row

    def select(self, keep: torch.Tensor) -> Examples:
        """The set of the members ``keep`` (indices along the member axis) only, e.g. after others stopped."""
        count = self.count[keep] if isinstance(self.count, torch.Tensor) else self.count
        return Examples(self.x[keep], self.y[keep], count, None if self.weights is None else self.weights[keep],
                        self.chunk, self.groups, self.n_groups)


def member_sets(data: Sequence[TaskTensors]) -> tuple[Examples, Examples]:
    """The training and test sets of M members of one split, ``(M, n, …)``.

    Each member keeps its own training subset, padded to the largest (weights 0 on the padding rows), so a
    full batch is one tensor; the test set is the split's, the same for every member (a view, no copy).
    Evaluation chunks are divided by M, as M members' activations go through at once.
    """
    M, first = len(data), data[0]
    n = [len(d.train_y) for d in data]
    n_max = max(n)
    pad = lambda t: t if len(t) == n_max else torch.cat([t, t[:1].expand(n_max - len(t), *t.shape[1:])])  # noqa: E731
    stack = lambda ts: ts[0][None] if M == 1 else torch.stack(ts)  # noqa: E731  (one member: a view)
    count = torch.tensor(n, device=first.train_y.device)  # (M,)
    train = Examples(stack([pad(d.train_x) for d in data]), stack([pad(d.train_y) for d in data]), count,
                     (torch.arange(n_max, device=count.device) < count[:, None]).to(torch.float64),
                     max(1, first.train_chunk // M))
    test = Examples(first.test_x.expand(M, *first.test_x.shape), first.test_y.expand(M, -1), len(first.test_y),
                    chunk=max(1, first.eval_chunk // M), groups=first.test_groups, n_groups=first.n_groups)
    return train, test


class Batches:
    """Each step's training batch: the whole training set, or ``batch_size`` rows per member drawn from its own
    examples with its own generator (seeded with the member's seed, so its batch order is the run's alone)."""

    def __init__(self, train: Examples, batch_size: int | None, seeds: Sequence[int]) -> None:
        self.train = train
        self.sizes = train.count.tolist()  # each member's own training examples
        self.batch_size = batch_size
        self.mini = mini_batched(batch_size, max(self.sizes))
        self.generators = [torch.Generator(device="cpu").manual_seed(seed) for seed in seeds]
        self.at_step = [g.get_state() for g in self.generators]  # each batch order at the start of the step
        self.members = torch.arange(len(seeds), device=train.y.device)[:, None]  # (M, 1)

    def select(self, keep: Sequence[int]) -> None:
        """Keep drawing for the members ``keep`` only (their generators go on where they were)."""
        self.train = self.train.select(torch.tensor(list(keep), device=self.train.y.device))
        self.sizes = [self.sizes[m] for m in keep]
        self.generators = [self.generators[m] for m in keep]
        self.at_step = [self.at_step[m] for m in keep]
        self.members = torch.arange(len(keep), device=self.train.y.device)[:, None]  # (M', 1)

    def next(self) -> Examples:
        """The batch of the next step (only mini-batches draw from the generators)."""
        if not self.mini:
            return self.train
        self.at_step = [g.get_state() for g in self.generators]
        idx = torch.stack([torch.randint(n, (self.batch_size,), generator=g)
                           for n, g in zip(self.sizes, self.generators)]).to(self.members.device)  # (M, B)
        return Examples(self.train.x[self.members, idx], self.train.y[self.members, idx], self.batch_size,
                        idx=idx)
