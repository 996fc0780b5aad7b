"""Test-set evaluation for both training loops: loss, accuracy and per-subclass accuracy, in chunks.

Long inputs (text at 256 tokens) would hold every test example's attention scores at once; the test set goes
through the model in chunks of :attr:`TaskTensors.eval_chunk` rows and only the logits are kept.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from grokscope.trainers.data import TaskTensors
from grokscope.trainers.losses import Loss


def test_metrics(forward: Callable[[torch.Tensor], torch.Tensor], data: TaskTensors, loss: Loss,
                 stacked: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(loss, accuracy)`` on the test set as a ``(2,)`` float64 tensor (stacked: ``(M, 2)``), and the
    accuracy per subclass ``(G,)`` (stacked ``(M, G)``) when the task has subclasses, else None.

    ``forward`` maps test inputs to logits ``(…, n, C)``; ``stacked``: the inputs are ``(M, n, …)`` (else
    ``(n, …)``, possibly shared by stacked members).
    """
    dim = 1 if stacked else 0
    x, n, chunk = data.test_x, data.test_y.shape[-1], data.eval_chunk
    if chunk >= n:
        logits = forward(x)  # (…, n, C)
    else:
        logits = torch.cat([forward(x.narrow(dim, i, min(chunk, n - i))) for i in range(0, n, chunk)], dim=-2)
    y = data.test_y.expand(logits.shape[:-1])  # (…, n)
    hit = (logits.argmax(-1) == y).to(torch.float64)  # (…, n)
    metrics = torch.stack([loss(logits, y).to(torch.float64), hit.mean(-1)], dim=-1)  # (…, 2)
    if data.test_groups is None:
        return metrics, None
    sums = torch.zeros(*hit.shape[:-1], data.n_groups, dtype=torch.float64, device=hit.device)
    counts = torch.zeros(data.n_groups, dtype=torch.float64, device=hit.device)
    counts.index_add_(0, data.test_groups, torch.ones_like(hit[(0,) * (hit.dim() - 1)]))
    return metrics, sums.index_add_(-1, data.test_groups, hit) / counts  # (…, G)
