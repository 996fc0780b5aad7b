"""One run from a config, or a stopped run's store, to a complete run store.

The single-run entry of the loop (:mod:`grokscope.trainers.loop`): a group of one member, under the config's
own objective, or distillation's for a distilled store that is resumed (its teachers reloaded from the paths in
its config).
"""

from __future__ import annotations

from pathlib import Path

from grokscope.config.resolve import resolve
from grokscope.config.run import RunConfig
from grokscope.errors import ConfigError
from grokscope.trainers.devices import resolve_device
from grokscope.trainers.distill import Distillation, check_distillation
from grokscope.trainers.loop import EarlyStop, Objective, reopen_stopped, run
from grokscope.trainers.recording import OnFlush

__all__ = ["resolve_device", "train"]  # resolve_device: the CLI checks --device before writing anything


def train(cfg: RunConfig | None, out: str | Path, *, on_flush: OnFlush | None = None,
          resume: bool = False, early_stop: EarlyStop | None = None) -> Path:
    """Train one run and write its store at ``out`` (which must not exist).  Returns the store path.

    With ``resume=True``, ``out`` is a stopped run's store: its own config is used (``cfg`` is ignored) and
    training continues from its last commit, reproducing the uninterrupted run exactly (on CPU, bit for
    bit), distilled runs too; a store that holds no resume state (stopped before its first flush, or trained
    in a batched group) is trained again from step 0 into the same store.  ``on_flush(step, latest)`` is
    called after every block write with the newest logged values (the CLI's progress bar).  Validation errors
    (:class:`~grokscope.errors.ConfigError`) happen before anything is written.

    Mini-batched runs log ``train_loss``/``train_acc`` over the whole training set at evaluation steps (NaN
    between) and each step's batch values as ``batch_loss``/``batch_acc``.  A non-finite training loss (the
    batch loss when mini-batched) ends the run with status ``diverged``; with ``on_divergence="stop"`` the
    store's rows end at that step (:class:`~grokscope.trainers.recording.Recorder`).  ``early_stop`` ends the
    run at its decision step if it advises so (status ``stopped_early``; :class:`~grokscope.trainers.loop.EarlyStop`).

    Examples
    --------
    >>> from grokscope.config.run import from_preset
    >>> train(from_preset("demo", steps=200), "runs/tiny.zarr")  # doctest: +SKIP
    """
    if resume:
        cfg = reopen_stopped(out)
    elif cfg.kd_setup != "none":
        raise ConfigError(f"kd_setup={cfg.kd_setup!r} is a distillation run: use grokscope distill")
    cfg = resolve(cfg)
    objective = Objective(cfg) if cfg.kd_setup == "none" else Distillation(cfg, check_distillation(cfg))
    return run([cfg], [out], objective, on_flush=on_flush, resume=resume, early_stop=early_stop)[0]
