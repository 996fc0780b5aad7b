"""A task's examples as device tensors: what the training loop consumes.

The seam for new tasks: each returns the numpy task (for the store) and the model inputs / targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grokscope.config import RunConfig
from grokscope.tasks import ModularTask, build_task


@dataclass(frozen=True)
class TaskTensors:
    train_x: torch.Tensor  # (n_train, T) tokens, or (n_train, 2) operands for the MLP
    train_y: torch.Tensor  # (n_train,)
    test_x: torch.Tensor  # (n_test, …)
    test_y: torch.Tensor  # (n_test,)
    vocab_size: int  # the transformer's token count (the MLP predicts over the p numbers)


def load_task(cfg: RunConfig, device: torch.device) -> tuple[ModularTask, TaskTensors]:
    """The numpy task and its train/test tensors on ``device``."""
    task = build_task(cfg)
    inputs = task.tokens if cfg.model == "transformer" else task.operands
    x = torch.as_tensor(inputs, device=device)
    y = torch.as_tensor(task.targets, device=device)
    train = torch.as_tensor(task.train_idx, device=device)
    test = torch.as_tensor(task.test_idx, device=device)
    return task, TaskTensors(x[train], y[train], x[test], y[test], task.vocab_size)
