"""A task's examples as device tensors: what the training loops consume.

The task itself (sizes, split, subset, the store's description) is :func:`grokscope.data.build.build`, pure
numpy; this module only moves it to the device and sizes evaluation chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

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

    @property
    def vocab_size(self) -> int:  # the modular transformer's name for n_inputs
        return self.n_inputs


def eval_chunk(cfg: RunConfig, x: np.ndarray) -> int:
    """Rows of ``x`` per evaluation pass, so long sequences (text) never hold all attention scores at once."""
    n = len(x)
    if cfg.model != "transformer":
        return max(1, n)
    T = x.shape[1] if x.dtype.kind in "iu" else cfg.n_tokens + 1  # tokens per example
    per_row = T * max(T * cfg.n_heads, cfg.d_mlp or 4 * cfg.d_model)
    return max(1, min(n, EVAL_BUDGET // per_row))


def load_task(cfg: RunConfig, device: torch.device) -> tuple[TaskData, TaskTensors]:
    """The numpy task and its train/test tensors on ``device``."""
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
