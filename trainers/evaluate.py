"""Evaluation for every run: loss and accuracy of each member on a whole set of examples, in chunks.

Long inputs (text at 256 tokens) would hold every example's attention scores at once; a set goes through the
model :attr:`Examples.chunk` examples at a time, without autograd, and only the logits are kept.  Means over
a member's examples are the members' own (:mod:`grokscope.trainers.members`), so one run evaluates as it
would alone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from grokscope.trainers.data import Examples
from grokscope.trainers.losses import Loss, hits
from grokscope.trainers.members import Members


def logits_in_chunks(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, chunk: int) -> torch.Tensor:
    """``forward(x)`` of ``x (M, n, …)`` computed ``chunk`` examples at a time, the outputs ``(M, n, …)``
    concatenated along the example axis."""
    n = x.shape[1]
    if chunk >= n:
        return forward(x)
    return torch.cat([forward(x[:, i:i + chunk]) for i in range(0, n, chunk)], dim=1)


@torch.no_grad()
def test_metrics(members: Members, test: Examples, loss: Loss) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each member's ``(loss, accuracy)`` on ``test``, ``(M, 2)`` float64, and its accuracy per subclass
    ``(M, G)`` when the set has subclasses, else None."""
    logits = logits_in_chunks(members.logits, test.x, test.chunk)  # (M, n, C)
    hit = hits(logits, test.y)  # (M, n)
    metrics = torch.stack([members.mean_loss(loss, logits, test.y, test.weights, test.count).to(torch.float64),
                           members.mean(hit, test.weights, test.count)], dim=-1)  # (M, 2)
    if test.groups is None:
        return metrics, None
    sums = torch.zeros(len(hit), test.n_groups, dtype=torch.float64, device=hit.device)  # (M, G)
    counts = torch.zeros(test.n_groups, dtype=torch.float64, device=hit.device)  # (G,)
    counts.index_add_(0, test.groups, torch.ones_like(hit[0]))
    return metrics, sums.index_add_(-1, test.groups, hit) / counts


@torch.no_grad()
def train_set_metrics(members: Members, train: Examples, loss: Loss) -> torch.Tensor:
    """Each member's ``(loss, accuracy)`` over its whole training set, ``(M, 2)`` float64, from the per-example
    training ``loss``: what a mini-batched run logs as ``train_loss``/``train_acc`` at evaluation steps."""
    logits = logits_in_chunks(members.logits, train.x, train.chunk)  # (M, n, C)
    per_example = loss(logits, train.y, reduction="none").to(torch.float64)  # (M, n)
    return torch.stack([members.mean(per_example, train.weights, train.count),
                        members.mean(hits(logits, train.y), train.weights, train.count)], dim=-1)
