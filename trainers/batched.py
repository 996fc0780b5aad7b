"""Many same-shaped runs trained as one stacked model: a sweep's group in one process.

Runs that share the architecture and the training schedule (everything but :data:`MEMBER_FIELDS`) stack
their parameters along a leading member axis ``M``; each step is then one batched matmul per layer for all
of them (:mod:`grokscope.trainers.functional`).  Each member keeps its own data subset (full batches are
padded to the largest and masked, so every member's loss is the mean over its own examples), its own
initialisation (seeded as if alone), batch order, learning rate, weight decay and optimizer state, and its
own run store.  Members are independent: the summed loss gives each one exactly its own gradient, and the
optimizer is elementwise, so a member ends where it would have ended alone (to float rounding; tested).
A member that diverges ends as it would alone (:class:`~grokscope.trainers.recording.Recorder`'s rule): with
``on_divergence="stop"`` its update is masked from its first non-finite loss on, so its NaNs touch nothing,
and its store ends at that step while the others train on.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import torch

from grokscope.config.resolve import checkpoint_steps, mini_batched, resolve
from grokscope.config.run import RunConfig
from grokscope.errors import ConfigError
from grokscope.sweeps.grid import MEMBER_FIELDS, group_key
from grokscope.trainers.data import load_task
from grokscope.trainers.evaluate import test_metrics, train_set_metrics
from grokscope.trainers.functional import answer_logits
from grokscope.trainers.losses import loss_fn, test_loss_fn
from grokscope.trainers.models import build_model
from grokscope.trainers.recording import BATCH_METRICS, OnFlush, Recorder, create_writer
from grokscope.trainers.train import resolve_device

EPS = 1e-8  # torch's Adam/AdamW default


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


def train_batched(cfgs: Sequence[RunConfig], outs: Sequence[str | Path], *,
                  on_flush: OnFlush | None = None) -> list[Path]:
    """Train ``cfgs`` (one group: equal :func:`grokscope.sweeps.grid.group_key`) together; one store per run.

    Raises :class:`ConfigError` for an empty or mixed group, or an optimizer it cannot stack (SGD runs
    train one by one).
    """
    if not cfgs or len(cfgs) != len(outs):
        raise ConfigError("train_batched needs one output path per config, and at least one config")
    if any(c.kd_setup != "none" for c in cfgs):
        raise ConfigError("distillation runs do not stack; use grokscope distill")
    cfgs = [resolve(c) for c in cfgs]
    if len({group_key(c) for c in cfgs}) != 1:
        raise ConfigError(f"runs differ in more than {', '.join(MEMBER_FIELDS)}, or some draw mini-batches and "
                          "others train full-batch; train them in separate groups")
    if cfgs[0].optimizer not in ("adam", "adamw"):
        raise ConfigError(f"optimizer {cfgs[0].optimizer!r} does not stack; train those runs one by one")
    device = resolve_device(cfgs[0].device)
    cfgs = [dataclasses.replace(c, device=str(device)) for c in cfgs]
    cfg, M = cfgs[0], len(cfgs)

    loaded = [load_task(c, device) for c in cfgs]  # same split for all; each its own subset
    tasks, data = [t for t, _ in loaded], [d for _, d in loaded]
    n = torch.tensor([len(d.train_y) for d in data], device=device)  # (M,)
    n_max = int(n.max())
    pad = lambda t: torch.cat([t, t[:1].expand(n_max - len(t), *t.shape[1:])])  # noqa: E731
    train_x = torch.stack([pad(d.train_x) for d in data])  # (M, n_max, …)
    train_y = torch.stack([pad(d.train_y) for d in data])  # (M, n_max)
    mask = (torch.arange(n_max, device=device) < n[:, None]).to(torch.float64)  # (M, n_max)
    shared = cfg.model == "transformer" and cfg.task == "modular"  # the decoder takes one token batch for all
    test = data[0] if shared else dataclasses.replace(data[0], test_x=data[0].test_x.expand(M, *data[0].test_x.shape))
    test = dataclasses.replace(test, eval_chunk=max(1, test.eval_chunk // M))  # M members' activations per chunk

    models = []
    for c in cfgs:  # each member initialised exactly as it would be alone
        torch.manual_seed(c.seed)
        models.append(build_model(c, data[0].n_inputs, data[0].n_classes))
    names = [name for name, _ in models[0].named_parameters()]
    P = {name: torch.stack([dict(m.named_parameters())[name].detach() for m in models]).to(device).requires_grad_()
         for name in names}  # name → (M, …)
    optimizer = StackedAdam(P.values(), cfgs, decoupled=cfg.optimizer == "adamw")
    batch_gens = [torch.Generator(device="cpu").manual_seed(c.seed) for c in cfgs]
    mini = mini_batched(cfg.batch_size, n_max)  # all members agree (group_key)
    members = torch.arange(M, device=device)[:, None]

    stop = cfg.on_divergence == "stop"  # one value for the group (group_key)
    alive = torch.ones(M, dtype=torch.bool, device=device)  # stop: no non-finite training loss yet
    extra = BATCH_METRICS if mini else ()  # train_* become whole-training-set values at eval steps
    train_chunk = max(1, data[0].train_chunk // M)

    shapes = {name: tuple(P[name].shape[1:]) for name in names}
    writers = [create_writer(c, t, out, shapes, models[0].param_dims(), models[0].param_roles(), device, extra)
               for c, t, out in zip(cfgs, tasks, outs)]
    recorder = Recorder(writers, names, checkpoint_steps(cfg), device, on_flush, n_groups=test.n_groups,
                        extra=extra, stop_on_divergence=stop)
    not_evaluated = torch.full((M, 2), math.nan, dtype=torch.float64, device=device)
    groups_not_evaluated = torch.full((M, test.n_groups), math.nan, dtype=torch.float64, device=device)
    test_loss = test_loss_fn(cfg, reduction="none")
    per_example_loss = loss_fn(cfg, reduction="none")  # cfg.loss: softmax or StableMax CE, or MSE

    for step in range(cfg.steps + 1):
        last = step == cfg.steps
        if mini:  # each member draws from its own examples, as alone
            idx = torch.stack([torch.randint(int(n_m), (cfg.batch_size,), generator=g)
                               for n_m, g in zip(n.tolist(), batch_gens)]).to(device)  # (M, B)
            xb, yb, wb, nb = train_x[members, idx], train_y[members, idx], None, cfg.batch_size
        else:
            xb, yb, wb, nb = train_x, train_y, mask, n
        with torch.set_grad_enabled(not last):
            logits = answer_logits(P, cfg, xb)  # (M, B, n_out)
            ce = per_example_loss(logits, yb)  # (M, B)
            loss = (ce if wb is None else ce * wb).sum(1) / nb  # (M,): each member's mean over its examples
        with torch.no_grad():
            hit = (logits.argmax(-1) == yb).to(torch.float64)
            acc = (hit if wb is None else hit * wb).sum(1) / nb  # (M,)
            forward = lambda x: answer_logits(P, cfg, x)  # noqa: E731
            evaluate = step % cfg.eval_every == 0 or last
            if evaluate:  # (M, 2), (M, G) or None
                metrics, groups = test_metrics(forward, test, lambda lg, y: test_loss(lg, y).mean(-1),
                                               stacked=not shared)
            else:
                metrics, groups = not_evaluated, groups_not_evaluated
            batch = torch.stack([loss.detach().to(torch.float64), acc], dim=1)  # (M, 2)
            if not mini:  # the batch is the training set
                whole = batch
            elif evaluate:
                whole = train_set_metrics(forward, train_x, train_y, per_example_loss, train_chunk, stacked=True,
                                          weights=mask)
            else:
                whole = not_evaluated
            norms = torch.stack([p.detach().flatten(1).norm(dim=1) for p in P.values()], 1).to(torch.float64)
            row = torch.cat([whole, metrics, norms.square().sum(1, keepdim=True).sqrt(),
                             *([batch] if mini else [])], dim=1)  # (M, len(recorder.columns))
            recorder.log(step, row, norms, list(P.values()), last, groups)
        if last or recorder.finished:
            break
        if stop:  # a member whose loss is not finite ends at this step: its update is masked from here on
            alive &= torch.isfinite(loss.detach())
            torch.where(alive, loss, 0.0).sum().backward()
            optimizer.step(alive)
        else:
            loss.sum().backward()  # members are independent: each gets its own gradient
            optimizer.step()

    recorder.finalize(cfg.steps)
    return [w.path for w in writers]
