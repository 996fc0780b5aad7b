"""Many same-shaped runs trained as one stacked model: a sweep's group in one process.

Runs that share the architecture and the training schedule (everything but :data:`MEMBER_FIELDS`) stack
their parameters along a leading member axis ``M`` (:class:`~grokscope.trainers.members.Stacked`); each step
is then one batched matmul per layer for all of them.  Each member keeps its own data subset (full batches
are padded to the largest and masked, so every member's loss is the mean over its own examples), its own
initialisation (seeded as if alone), batch order, learning rate, weight decay and optimizer state, and its
own run store.  Members are independent: the summed loss gives each one exactly its own gradient, and the
optimizer is elementwise, so a member ends where it would have ended alone (to float rounding; tested).
A member that diverges ends as it would alone: with ``on_divergence="stop"`` its update is masked from its
first non-finite loss on, so its NaNs touch nothing, and its store ends at that step while the others train on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from grokscope.config.resolve import resolve
from grokscope.config.run import RunConfig
from grokscope.errors import ConfigError
from grokscope.sweeps.grid import MEMBER_FIELDS, group_key
from grokscope.trainers.loop import EarlyStop, Objective, run
from grokscope.trainers.recording import OnFlush


def train_batched(cfgs: Sequence[RunConfig], outs: Sequence[str | Path], *,
                  on_flush: OnFlush | None = None, early_stop: EarlyStop | None = None) -> list[Path]:
    """Train ``cfgs`` (one group: equal :func:`grokscope.sweeps.grid.group_key`) together; one store per run.

    Raises :class:`ConfigError` for an empty or mixed group, or an optimizer it cannot stack (SGD runs
    train one by one).  ``early_stop`` ends members a forecast advises to stop (:class:`EarlyStop`).
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
    return run(cfgs, outs, Objective(cfgs[0]), stacked=True, on_flush=on_flush, early_stop=early_stop)
