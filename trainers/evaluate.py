"""Evaluation for every training loop: test-set and whole-training-set loss and accuracy, in chunks.

Long inputs (text at 256 tokens) would hold every example's attention scores at once; a set goes through the
model in chunks of :attr:`TaskTensors.eval_chunk` (test) or :attr:`TaskTensors.train_chunk` (training) rows,
without autograd, and only the logits are kept.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from grokscope.trainers.data import TaskTensors
from grokscope.trainers.losses import Loss


def logits_in_chunks(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, chunk: int,
                     dim: int = 0, out_dim: int = -2) -> torch.Tensor:
    """``forward(x)`` computed ``chunk`` examples at a time along ``dim`` of ``x`` and concatenated along
    ``out_dim`` of the outputs (the example axis of logits ``(…, n, C)``)."""
    n = x.shape[dim]
    if chunk >= n:
        return forward(x)
    return torch.cat([forward(x.narrow(dim, i, min(chunk, n - i))) for i in range(0, n, chunk)], dim=out_dim)


@torch.no_grad()
def test_metrics(forward: Callable[[torch.Tensor], torch.Tensor], data: TaskTensors, loss: Loss,
                 stacked: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(loss, accuracy)`` on the test set as a ``(2,)`` float64 tensor (stacked: ``(M, 2)``), and the
    accuracy per subclass ``(G,)`` (stacked ``(M, G)``) when the task has subclasses, else None.

    ``forward`` maps test inputs to logits ``(…, n, C)``; ``stacked``: the inputs are ``(M, n, …)`` (else
    ``(n, …)``, possibly shared by stacked members).
    """
    logits = logits_in_chunks(forward, data.test_x, data.eval_chunk, 1 if stacked else 0)  # (…, n, C)
    y = data.test_y.expand(logits.shape[:-1])  # (…, n)
    hit = (logits.argmax(-1) == y).to(torch.float64)  # (…, n)
    metrics = torch.stack([loss(logits, y).to(torch.float64), hit.mean(-1)], dim=-1)  # (…, 2)
    if data.test_groups is None:
        return metrics, None
    sums = torch.zeros(*hit.shape[:-1], data.n_groups, dtype=torch.float64, device=hit.device)
    counts = torch.zeros(data.n_groups, dtype=torch.float64, device=hit.device)
    counts.index_add_(0, data.test_groups, torch.ones_like(hit[(0,) * (hit.dim() - 1)]))
    return metrics, sums.index_add_(-1, data.test_groups, hit) / counts  # (…, G)


@torch.no_grad()
def train_set_metrics(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                      per_example_loss: Loss, chunk: int, stacked: bool = False,
                      weights: torch.Tensor | None = None) -> torch.Tensor:
    """``(loss, accuracy)`` over the whole training set, ``(2,)`` float64 (stacked: ``(M, 2)``): what a
    mini-batched run logs as ``train_loss``/``train_acc`` at evaluation steps.

    ``x (n, …)`` / ``y (n,)`` (stacked: ``(M, n, …)`` / ``(M, n)``); ``per_example_loss`` is the run's training
    loss with ``reduction="none"``; ``weights (M, n)`` 0/1 masks out padding rows of stacked members.
    """
    logits = logits_in_chunks(forward, x, chunk, 1 if stacked else 0)  # (…, n, C)
    loss = per_example_loss(logits, y).to(torch.float64)  # (…, n)
    hit = (logits.argmax(-1) == y).to(torch.float64)  # (…, n)
    if weights is None:
        return torch.stack([loss.mean(-1), hit.mean(-1)], dim=-1)
    count = weights.sum(-1)
    return torch.stack([(loss * weights).sum(-1) / count, (hit * weights).sum(-1) / count], dim=-1)
