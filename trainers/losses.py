"""Losses on the answer logits: softmax and StableMax cross-entropy, MSE, and seed 000's distillation loss.

Every loss takes logits ``(…, C)`` and class targets ``(…)`` and a ``reduction``: ``"mean"`` over all
examples, or ``"none"``, one value per example ``(…)``.  ``loss_fn(cfg)`` is the training loss a config asks
for (``cfg.loss``, in ``cfg.loss_dtype``); ``test_loss_fn(cfg)`` the test loss: softmax cross-entropy, so
test curves of CE and StableMax runs compare directly, except for MSE runs (Omnigrok), whose test loss is the
same MSE.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Protocol

import torch
import torch.nn.functional as F

from grokscope.config.run import RunConfig

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


class Loss(Protocol):
    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, reduction: str = ...) -> torch.Tensor: ...


def _reduced(log_scale: torch.Tensor, targets: torch.Tensor, reduction: str) -> torch.Tensor:
    """Cross-entropy of log-scale logits ``(…, C)``: torch's own mean for ``(B, C)``, else per example."""
    if reduction == "mean" and log_scale.dim() == 2:
        return F.cross_entropy(log_scale, targets)
    per_example = F.cross_entropy(log_scale.reshape(-1, log_scale.shape[-1]), targets.reshape(-1),
                                  reduction="none").view(targets.shape)  # (…)
    return per_example if reduction == "none" else per_example.mean()


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, dtype: str = "float64",
                  reduction: str = "mean") -> torch.Tensor:
    """Softmax cross-entropy of ``logits (…, C)`` against ``targets (…)``, computed in ``dtype``.

    float64 by default: in float32 the log-softmax of a memorized example rounds to 0 once the loss falls
    below ~1e-7, which flattens the late loss curve that grokking analyses read.
    """
    return _reduced(logits.to(_DTYPES[dtype]), targets, reduction)


def stablemax_log_scale(x: torch.Tensor) -> torch.Tensor:
    """``g(x) = log s(x)``: ``log(1 + x)`` for x ≥ 0, ``−log(1 − x)`` for x < 0 (Prieto et al.).

    StableMax is ``softmax(g(x))``; ``g`` grows like ``log|x|``, so scaling the logits up cannot push the
    probabilities to exact 0/1 the way softmax does (no "softmax collapse").  Both branches see clamped
    inputs, so the branch ``where`` discards never makes a NaN gradient (``g′(0) = 1``).
    """
    return torch.where(x >= 0, torch.log1p(x.clamp(min=0)), -torch.log1p((-x).clamp(min=0)))


def stablemax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """StableMax probabilities ``s(x_i) / Σ_j s(x_j)`` with ``s(x) = x + 1`` (x ≥ 0), ``1 / (1 − x)`` (x < 0).

    Examples
    --------
    >>> stablemax(torch.tensor([1.0, -1.0])).tolist()  # s = (2, 0.5)
    [0.800000011920929, 0.20000000298023224]
    """
    return torch.softmax(stablemax_log_scale(logits), dim=dim)


def stablemax_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, dtype: str = "float64",
                            reduction: str = "mean") -> torch.Tensor:
    """``−log StableMax(logits)[target]`` of ``logits (…, C)``, ``targets (…)``; computed in ``dtype`` as a
    log-softmax of ``g(logits)`` (log-sum-exp: no overflow, no log of 0)."""
    return _reduced(stablemax_log_scale(logits.to(_DTYPES[dtype])), targets, reduction)


def mean_squared_error(logits: torch.Tensor, targets: torch.Tensor, dtype: str = "float64",
                       reduction: str = "mean") -> torch.Tensor:
    """Omnigrok's loss: squared error of ``logits (…, C)`` to the one-hot targets, averaged over classes."""
    x = logits.to(_DTYPES[dtype])
    per_example = (x - F.one_hot(targets, x.shape[-1]).to(x.dtype)).square().mean(-1)  # (…)
    return per_example if reduction == "none" else per_example.mean()


LOSSES = {"ce": cross_entropy, "stablemax": stablemax_cross_entropy, "mse": mean_squared_error}


def loss_fn(cfg: RunConfig, reduction: str = "mean") -> Loss:
    """The training loss ``cfg.loss`` asks for, in ``cfg.loss_dtype``: ``f(logits, targets, reduction)``
    with ``reduction`` defaulting to the one given here."""
    return functools.partial(LOSSES[cfg.loss], dtype=cfg.loss_dtype, reduction=reduction)


def test_loss_fn(cfg: RunConfig, reduction: str = "mean") -> Loss:
    """The test loss of ``cfg``'s runs: MSE for MSE runs, softmax cross-entropy otherwise."""
    return loss_fn(cfg if cfg.loss == "mse" else dataclasses.replace(cfg, loss="ce"), reduction)


def kl_divergence(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float = 1.0,
                  dtype: str = "float64") -> torch.Tensor:
    """``KL(q_T ‖ q_S) = Σ q_T (log q_T − log q_S)``, ``q = softmax(logits / t)``, averaged over the rows of
    logits ``(…, B, C)`` → ``(…)``.  Not multiplied by ``t²`` (seed 000's formula as written)."""
    log_t = F.log_softmax(teacher_logits.to(_DTYPES[dtype]) / temperature, dim=-1)  # (…, B, C)
    log_s = F.log_softmax(student_logits.to(_DTYPES[dtype]) / temperature, dim=-1)  # (…, B, C)
    return (log_t.exp() * (log_t - log_s)).sum(-1).mean(-1)


def kd_loss(ce: torch.Tensor, teacher_logits: torch.Tensor, student_logits: torch.Tensor, alpha: float,
            temperature: float = 1.0, dtype: str = "float64") -> tuple[torch.Tensor, torch.Tensor]:
    """Seed 000's loss ``L = (1 − α)·CE + α·KL(q_T ‖ q_S)`` and its KL term, given the (mean) task loss ``ce``
    and the teacher's and student's logits ``(…, B, C)`` at the distilled position.

    Examples
    --------
    >>> t, s = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    >>> [float(v) for v in kd_loss(torch.tensor(2.0), t, s, alpha=0.25)]  # KL of equal logits is 0
    [1.5, 0.0]
    """
    kl = kl_divergence(teacher_logits, student_logits, temperature, dtype)
    return (1 - alpha) * ce + alpha * kl, kl


def hits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1.0 where the argmax over all classes of ``logits (…, C)`` is the target ``(…)``, else 0.0 (float64)."""
    return (logits.argmax(dim=-1) == targets).to(torch.float64)


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Share of rows whose argmax over all classes equals the target (a 0-d float64 tensor)."""
    return hits(logits, targets).mean()
