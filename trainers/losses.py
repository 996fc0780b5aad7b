"""Losses on the answer logits.  New losses (StableMax, distillation) join here behind ``loss_fn``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, dtype: str = "float64") -> torch.Tensor:
    """Mean cross-entropy of ``logits (B, C)`` against ``targets (B,)``, computed in ``dtype``.

    float64 by default: in float32 the log-softmax of a memorized example rounds to 0 once the loss falls
    below ~1e-7, which flattens the late loss curve that grokking analyses read.
    """
    return F.cross_entropy(logits.to(_DTYPES[dtype]), targets)


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Share of rows whose argmax over all classes equals the target (a 0-d float64 tensor)."""
    return (logits.argmax(dim=-1) == targets).to(torch.float64).mean()
