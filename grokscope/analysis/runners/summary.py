"""One summary row per run store: the numbers ``grokscope analyze`` prints.

Reads only the per-step arrays it needs (never checkpoints), trimmed to the committed prefix, so it works on
stores that are still being written.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from grokscope.analysis.measures.intervals import IntervalRule, grokking_intervals
from grokscope.analysis.measures.onset import Criteria, generalization_step, grokking_delay, memorization_step
from grokscope.analysis.measures.stability import StabilityRule, stability
from grokscope.analysis.runners.subclasses import subclass_summary
from grokscope.config.run import MODULAR, column_names
from grokscope.errors import ConfigError, GrokscopeError
from grokscope.store.reader import RunStore
from grokscope.store.runs import find_runs, run_labels

CURVES = ("train_loss", "train_acc", "test_loss", "test_acc", "l2_norm")
# Config fields copied into each row, so tables and CDS fits can group by them.
CONFIG_KEYS = column_names()
# Fields that describe modular arithmetic only: other tasks' configs carry their defaults, which mean nothing
# there (a text run is not "p = 113"), so their rows hold None.  A store without ``task`` is modular.
MODULAR_KEYS = column_names(tasks=MODULAR)


def _last_valid(values: np.ndarray | None) -> float | None:
    if values is None:
        return None
    valid = values[~np.isnan(values)]
    return float(valid[-1]) if len(valid) else None


def _at_step(steps: np.ndarray, values: np.ndarray | None, step: int | None) -> float | None:
    if values is None or step is None:
        return None
    value = values[np.searchsorted(steps, step)]
    return None if math.isnan(value) else float(value)


def summarize_run(store: RunStore, criteria: Criteria = Criteria(),
                  intervals: IntervalRule | None = None,
                  stability_rule: StabilityRule = StabilityRule()) -> dict[str, Any]:
    """Memorization and generalization steps, delay, final metrics and L2 norms of one run, whether it
    stayed generalized (:mod:`grokscope.analysis.measures.stability`: ``sustained_generalization_step``, dips,
    ``collapse_step``, ``loss_spikes`` …; docs/intervals.md); with ``intervals``, also seed 001's
    Definition 3.1 quantities (``alpha0``, ``alpha1``, ``sigma_s``, ``sigma_e``, ``delta_s``, ``delta_t``,
    ``support``, ``support_ratio``, ``grokked``) on the accuracy curves.

    Steps never reached are ``None``.  Raises :class:`ConfigError` if the criteria need a metric the run lacks.
    """
    curves = store.read_many(["step", *(name for name in CURVES if store.has(name))])
    steps = curves.pop("step")
    memorized = memorization_step(steps, curves, criteria)
    generalized = generalization_step(steps, curves, criteria)
    delay, ratio = grokking_delay(memorized, generalized)
    config = store.config
    row: dict[str, Any] = {
        "run": store.name,
        "path": str(store.path),
        "status": store.status,
        "diverged_at": store.attrs.get("diverged_at"),
        "last_step": int(steps[-1]) if len(steps) else None,
        "memorization_step": memorized,
        "generalization_step": generalized,
        "grokking_delay": delay,
        "grokking_ratio": ratio,
        "final_train_acc": _last_valid(curves.get("train_acc")),
        "final_test_acc": _last_valid(curves.get("test_acc")),
        "final_train_loss": _last_valid(curves.get("train_loss")),
        "final_test_loss": _last_valid(curves.get("test_loss")),
        "l2_at_memorization": _at_step(steps, curves.get("l2_norm"), memorized),
        "l2_at_generalization": _at_step(steps, curves.get("l2_norm"), generalized),
        **stability(steps, curves, criteria, stability_rule).to_dict(),
    }
    row.update({key: config[key] for key in CONFIG_KEYS if key in config})
    if config.get("task", "modular") != "modular":
        row.update(dict.fromkeys(MODULAR_KEYS))
    row.update(subclass_summary(store, criteria))  # seed 001 hierarchies: the down-sampled subclasses
    if intervals is not None:
        if "train_acc" not in curves or "test_acc" not in curves:
            raise ConfigError(f"{store.path}: grokking intervals need train and test accuracy curves")
        if len(steps) >= 2:
            row.update(grokking_intervals(steps, curves["train_acc"], curves["test_acc"], intervals).to_dict())
    return row


def per_run(paths: Iterable[str | os.PathLike], measure: Callable[[RunStore], dict[str, Any]]) -> list[dict[str, Any]]:
    """``measure(store)`` for every run store named or found under ``paths``, one row each, ``run`` labelled
    by :func:`grokscope.store.runs.run_labels`.

    A run the measure cannot use (a :class:`GrokscopeError`: no checkpoints, no accuracy …) stops the call
    when it is the only run; among several it becomes a row ``{run, path, status, error}`` instead, so one
    odd store in a folder does not hide the others' results.
    """
    found = find_runs(paths)
    rows = []
    for path, label in zip(found, run_labels(found)):
        status = "unreadable"  # until the store opens
        try:
            store = RunStore(path)
            status = store.status
            row = measure(store)
        except GrokscopeError as exc:
            if len(found) == 1:
                raise
            row = {"path": str(path), "status": status, "error": " ".join(str(exc).split())}
        rows.append({**row, "run": label} if "run" in row else {"run": label, **row})
    return rows


def analyze(paths: Iterable[str | os.PathLike], criteria: Criteria = Criteria(),
            intervals: IntervalRule | None = None,
            stability_rule: StabilityRule = StabilityRule()) -> list[dict[str, Any]]:
    """Summary rows for every run store named or found under ``paths``; ``run`` is the store's name, with
    parent folders where names repeat (:func:`grokscope.store.runs.run_labels`).  Among several runs, one that
    cannot be summarized gets an ``error`` row (:func:`per_run`).

    Examples
    --------
    >>> rows = analyze(["runs/"])                      # doctest: +SKIP
    >>> [(r["run"], r["generalization_step"]) for r in rows]  # doctest: +SKIP
    """
    return per_run(paths, lambda store: summarize_run(store, criteria, intervals, stability_rule))
