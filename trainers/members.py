"""The runs one loop trains at once: one run, or M same-shaped runs stacked along a leading member axis.

Both give the loop M members: logits ``(M, B, C)`` of inputs ``(M, B, …)``, each member's mean over its
examples ``(M,)``, parameter norms ``(M, n_params)`` and one update of every member.  :class:`OneRun` is a
module with a torch optimizer (SGD too), computing what a run alone computes: the module's forward on
``(B, …)``, torch's own loss means.  :class:`Stacked` holds M runs' parameters as ``(M, …)`` tensors, one
batched matmul per layer (:mod:`grokscope.trainers.functional`) and :class:`StackedAdam`; each member ends
where it would alone to float rounding, not bit for bit, so a single run is always a :class:`OneRun`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from grokscope.config.run import RunConfig
from grokscope.trainers.functional import answer_logits, transformer_logits
from grokscope.trainers.losses import Loss
from grokscope.trainers.state import capture, restore

EPS = 1e-8  # torch's Adam/AdamW default


def make_optimizer(cfg: RunConfig, params) -> torch.optim.Optimizer:
    """The torch optimizer ``cfg`` names (SGD with momentum, Adam, or AdamW with decoupled decay)."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay)


class OneRun:
    """One run: ``model``'s own parameters and the torch optimizer of ``cfg``."""

    def __init__(self, cfg: RunConfig, model: nn.Module) -> None:
        self.model = model
        self.params = dict(model.named_parameters())
        self.optimizer = make_optimizer(cfg, self.params.values())

    def logits(self, x: torch.Tensor, positions: Sequence[int] | None = None) -> torch.Tensor:
        """Answer logits ``(1, B, C)`` of ``x (1, B, …)``; with ``positions``, a decoder's ``(1, B, Q, C)``."""
        out = self.model(x[0]) if positions is None else self.model.logits_at(x[0], positions)
        return out[None]

    def mean(self, values: torch.Tensor, weights: torch.Tensor | None, count) -> torch.Tensor:
        """The mean of per-example ``values (1, n)`` → ``(1,)`` (no padding in one run's sets)."""
        return values.mean(-1)

    def mean_loss(self, loss: Loss, logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None,
                  count) -> torch.Tensor:
        """``loss``'s mean over the examples ``(1,)``: torch's own reduction, as the run alone computes it."""
        return loss(logits[0], y[0]).view(1)

    def norms(self) -> torch.Tensor:
        """Each parameter's L2 norm, ``(1, n_params)`` float64."""
        return torch.stack(torch._foreach_norm(list(self.params.values()))).to(torch.float64)[None]

    def tensors(self) -> list[torch.Tensor]:
        """The parameters as ``(1, …)`` views, in :attr:`params` order."""
        return [p[None] for p in self.params.values()]

    def step(self, loss: torch.Tensor) -> None:
        """One optimizer update on ``loss (1,)``."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        self.optimizer.step()

    def capture(self, rng_states: Sequence[torch.Tensor]) -> list[dict[str, np.ndarray]]:
        """The resume state (:mod:`grokscope.trainers.state`) with the batch order ``rng_states[0]``."""
        return [capture(self.params, self.optimizer, rng_states[0])]

    def restore(self, states: Sequence[dict[str, np.ndarray]], generators: Sequence[torch.Generator]) -> None:
        restore(states[0], self.params, self.optimizer, generators[0])

    def drop(self, m: int) -> None:
        """Stop updating member ``m``: the run's only member, so the loop ends (its recorder is finished)."""


class Stacked:
    """M same-shaped runs: each parameter stacked ``(M, …)`` from the members' ``models`` (initialised as
    alone), updated by :class:`StackedAdam` with each member's lr, betas and weight decay.

    Members are independent: the summed loss gives each one exactly its own gradient.  With ``stop`` (the
    group's ``on_divergence="stop"``) a member's update is masked from its first non-finite loss on, so its
    NaNs touch nothing (its store ends at that step: :class:`~grokscope.trainers.recording.Recorder`).
    Stacked members save no resume state (a stopped member trains again from step 0): every flush would write
    each member's parameters and moments as its own arrays, measured +10 % wall time for a group of 8 demo runs.
    """

    def __init__(self, cfgs: Sequence[RunConfig], models: Sequence[nn.Module], device: torch.device,
                 stop: bool) -> None:
        self.cfg = cfgs[0]  # the architecture every member shares
        names = [name for name, _ in models[0].named_parameters()]
        self.params = {name: torch.stack([dict(m.named_parameters())[name].detach() for m in models]).to(device)
                       .requires_grad_() for name in names}  # name → (M, …)
        self.optimizer = StackedAdam(self.params.values(), cfgs, decoupled=self.cfg.optimizer == "adamw")
        self.stop = stop
        self.alive = torch.ones(len(cfgs), dtype=torch.bool, device=device) if stop else None  # (M,)

    def logits(self, x: torch.Tensor, positions: Sequence[int] | None = None) -> torch.Tensor:
        """Answer logits ``(M, B, C)`` of ``x (M, B, …)``; with ``positions``, a decoder's ``(M, B, Q, C)``."""
        if positions is None:
            return answer_logits(self.params, self.cfg, x)
        return transformer_logits(self.params, self.cfg, x, positions)

    def mean(self, values: torch.Tensor, weights: torch.Tensor | None, count) -> torch.Tensor:
        """Each member's mean of ``values (M, n)`` over its own examples (``weights`` 0 on padding) → ``(M,)``."""
        return (values if weights is None else values * weights).sum(-1) / count

    def mean_loss(self, loss: Loss, logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None,
                  count) -> torch.Tensor:
        """Each member's mean ``loss`` over its own examples ``(M,)``."""
        return self.mean(loss(logits, y, reduction="none"), weights, count)

    def norms(self) -> torch.Tensor:
        """Each member's parameter L2 norms, ``(M, n_params)`` float64."""
        return torch.stack([p.detach().flatten(1).norm(dim=1) for p in self.params.values()], 1).to(torch.float64)

    def tensors(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def step(self, loss: torch.Tensor) -> None:
        """One update of every member (alive ones only under ``stop``, or after :meth:`drop`) on ``loss (M,)``."""
        if self.alive is None:
            loss.sum().backward()
            self.optimizer.step()
            return
        if self.stop:
            self.alive &= torch.isfinite(loss.detach())
        torch.where(self.alive, loss, 0.0).sum().backward()
        self.optimizer.step(self.alive)

    def drop(self, m: int) -> None:
        """Stop updating member ``m`` (stopped early): it is masked as a diverged member is."""
        if self.alive is None:
            self.alive = torch.ones(self.optimizer.lr.shape[0], dtype=torch.bool, device=self.optimizer.lr.device)
        self.alive[m] = False

    def select(self, keep: Sequence[int]) -> None:
        """Train the members ``keep`` only from now on: every stacked tensor loses the others' slices, so
        stopped members cost nothing more (their optimizer state goes with them)."""
        idx = torch.tensor(list(keep), device=self.optimizer.lr.device)
        self.params = {name: p.detach()[idx].clone().requires_grad_() for name, p in self.params.items()}
        self.optimizer.select(idx, list(self.params.values()))
        if self.alive is not None:
            self.alive = self.alive[idx]


class StackedAdam:
    """Adam / AdamW on stacked parameters ``(M, …)`` with per-member lr, betas and weight decay.

    The same arithmetic as ``torch.optim.AdamW`` (decoupled decay) or ``Adam`` (L2 added to the gradient),
    elementwise, so each member follows its own single-run trajectory.
    """

    def __init__(self, params: Sequence[torch.Tensor], cfgs: Sequence[RunConfig], decoupled: bool) -> None:
        self.params = list(params)
        device = self.params[0].device
        member = lambda name: torch.tensor([getattr(c, name) for c in cfgs], dtype=torch.float32,  # noqa: E731
                                           device=device)
        self.lr, self.wd, self.b1, self.b2 = member("lr"), member("weight_decay"), member("beta1"), member("beta2")
        self.decoupled = decoupled
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    def select(self, idx: torch.Tensor, params: Sequence[torch.Tensor]) -> None:
        """Keep the members ``idx (M',)`` only, now optimizing ``params`` (their slices, ``(M', …)`` each)."""
        self.params = list(params)
        self.m = [m[idx].clone() for m in self.m]
        self.v = [v[idx].clone() for v in self.v]
        self.lr, self.wd, self.b1, self.b2 = (x[idx] for x in (self.lr, self.wd, self.b1, self.b2))

    @torch.no_grad()
    def step(self, active: torch.Tensor | None = None) -> None:
        """One update of every member; ``active (M,)`` bool: members left out are not moved
        (no lr, no decay, a zero gradient in place of their possibly non-finite one)."""
        self.t += 1
        lrs, wds = self.lr, self.wd
        if active is not None:
            lrs, wds = lrs * active, wds * active
        for p, m, v in zip(self.params, self.m, self.v):
            view = (-1,) + (1,) * (p.dim() - 1)
            lr, wd, b1, b2 = (x.view(view) for x in (lrs, wds, self.b1, self.b2))
            g = p.grad if active is None else torch.where(active.view(view), p.grad, 0.0)
            if self.decoupled:
                p.mul_(1 - lr * wd)
            else:
                g = g + wd * p
            m.lerp_(g, 1 - b1)
            v.mul_(b2).add_(g * g * (1 - b2))
            denom = (v.sqrt() / (1 - b2 ** self.t).sqrt()).add_(EPS)
            p.sub_(lr / (1 - b1 ** self.t) * m / denom)
            p.grad = None


Members = OneRun | Stacked
