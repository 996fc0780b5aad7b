"""Does a run stay grokked?  Stability measures for runs that generalize and then fall apart.

Real sweeps (AdamW at a high learning rate) reach the generalization threshold once and collapse to chance,
or dip below it for a while; the first crossing
(:func:`grokscope.analysis.measures.onset.generalization_step`) alone reports them as successes.  Pure numpy, on the
curves as logged: steps ascending, NaN where a metric was not
evaluated (skipped; evaluations may be sparse and irregular).  Every measure counts *evaluations* (the
finite points of a curve), never steps; see ``docs/intervals.md``.

- ``sustained_generalization_step``: the first evaluation from which the generalization criterion holds
  for a window: the next ``sustain_evals`` evaluations including it (default 5), or, with
  ``sustain_steps`` S, every evaluation within S steps from it, the run evaluated for at least S steps
  after it.  ``None`` if never.
- ``min_test_acc_after_generalization`` / ``max_test_loss_after_generalization``: the worst test value at
  evaluations after ``generalization_step`` (``None`` without such evaluations or without the curve).
- ``dips_after_generalization``: the number of *evaluations* after ``generalization_step`` at which the
  generalization criterion fails (three bad evaluations in a row are 3 dips); ``stable``: generalized
  and no dip (``None`` if never generalized).
- ``collapse_step``: the first evaluation after ``memorization_step`` with train accuracy below
  ``collapse_train_acc`` (default 0.5), or, under a train-loss criterion, train loss above
  ``collapse_train_loss`` (default 10 × the memorization threshold).  ``None`` if none.
- ``loss_spikes``: episodes (maximal runs of consecutive evaluations) in which the train loss exceeds
  ``spike_factor`` (default 10) × its running minimum so far, the minimum taken no lower than ``spike_floor``
  (default 1e-6 nats: a loss logged as 0, or float32 noise near 1e-7, is no baseline for a spike):
  Thilak et al.'s slingshot spikes.
  ``None`` without a train-loss curve.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from grokscope.analysis.measures.onset import Criteria, generalization_step, memorization_step
from grokscope.errors import ConfigError

__all__ = ["StabilityRule", "Stability", "stability", "sustained_step", "spike_episodes"]

SUSTAIN_EVALS = 5  # the default window: five evaluations in a row


@dataclass(frozen=True)
class StabilityRule:
    """Knobs of the stability measures (see the module docstring); ``sustain_steps``, when set, replaces
    ``sustain_evals``."""

    sustain_evals: int = SUSTAIN_EVALS
    sustain_steps: float | None = None
    collapse_train_acc: float = 0.5
    collapse_train_loss: float | None = None  # None: 10 × the train-loss memorization threshold
    spike_factor: float = 10.0
    spike_floor: float = 1e-6  # the running minimum a spike is measured against is at least this

    def __post_init__(self) -> None:
        if self.sustain_evals < 1:
            raise ConfigError(f"sustain-evals must be at least 1, got {self.sustain_evals}")
        if self.sustain_steps is not None and not (np.isfinite(self.sustain_steps) and self.sustain_steps >= 0):
            raise ConfigError(f"sustain-steps must be finite and >= 0, got {self.sustain_steps}")
        if not 0 < self.collapse_train_acc <= 1:
            raise ConfigError(f"collapse-train-acc must be in (0, 1], got {self.collapse_train_acc}")
        if self.collapse_train_loss is not None and not self.collapse_train_loss > 0:
            raise ConfigError(f"collapse-train-loss must be positive, got {self.collapse_train_loss}")
        if not (np.isfinite(self.spike_factor) and self.spike_factor > 1):
            raise ConfigError(f"spike-factor must be finite and > 1, got {self.spike_factor}")
        if not (np.isfinite(self.spike_floor) and self.spike_floor >= 0):
            raise ConfigError(f"spike-floor must be finite and >= 0, got {self.spike_floor}")

    def collapse_loss(self, train_loss_below: float) -> float:
        """The train loss above which a run memorized by ``train_loss ≤ train_loss_below`` has collapsed."""
        return self.collapse_train_loss if self.collapse_train_loss is not None else 10 * train_loss_below


@dataclass(frozen=True)
class Stability:
    """The stability measures of one run; ``None`` where undefined."""

    sustained_generalization_step: int | None
    min_test_acc_after_generalization: float | None
    max_test_loss_after_generalization: float | None
    dips_after_generalization: int | None
    stable: bool | None
    collapse_step: int | None
    loss_spikes: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _evaluated(steps: np.ndarray, values: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The evaluations of a curve: its finite points, as ``(steps, values)``."""
    if values is None:
        return np.empty(0), np.empty(0)
    values = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(values)
    return np.asarray(steps)[ok], values[ok]


def sustained_step(steps: np.ndarray, passed: np.ndarray, *, evals: int = SUSTAIN_EVALS,
                   window: float | None = None) -> int | None:
    """The first evaluation from which ``passed`` holds for a window: the next ``evals`` evaluations
    including it, or (``window`` set) every evaluation with step in ``[s, s + window]``, the last
    evaluation at or after ``s + window``.

    Parameters
    ----------
    steps, passed : array_like, shape (n,)
        The evaluations only (no NaN), steps ascending.

    Examples
    --------
    >>> ok = np.array([1, 0, 1, 1, 1, 0], bool)
    >>> sustained_step(np.arange(6) * 10, ok, evals=3), sustained_step(np.arange(6) * 10, ok, evals=4)
    (20, None)
    >>> sustained_step(np.arange(6) * 10, ok, window=20), sustained_step(np.arange(6) * 10, ok, window=30)
    (20, None)
    """
    steps = np.asarray(steps, dtype=np.float64)
    fails = np.r_[0, np.cumsum(~np.asarray(passed, dtype=bool))]  # (n + 1,) failures before each index
    start = np.arange(steps.size)
    if window is None:
        stop = start + evals  # window [i, i + evals) of evaluations
        ok = stop <= steps.size
    else:
        stop = np.searchsorted(steps, steps + window, side="right")  # evaluations within window steps
        ok = steps[-1] >= steps + window if steps.size else np.zeros(0, bool)
    stop = np.minimum(stop, steps.size)
    hit = np.flatnonzero(ok & (fails[stop] == fails[start]))
    return int(steps[hit[0]]) if hit.size else None


def spike_episodes(values: np.ndarray, factor: float = 10.0, floor: float = 0.0) -> int:
    """Episodes (maximal runs of consecutive points) in which ``values`` exceeds ``factor`` × its running
    minimum up to that point, that minimum no lower than ``floor``; NaN points are skipped.

    Examples
    --------
    >>> spike_episodes(np.array([1.0, 0.1, 5.0, 3.0, 0.05, 0.04, np.nan, 1.0, 0.03]))
    2
    >>> spike_episodes(np.array([2, .5, 0, 1e-9, 0, 1e-9]), floor=1e-6)  # a loss rounded to 0 is no baseline
    0
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return 0
    above = values > factor * np.maximum(np.minimum.accumulate(values), floor)  # (n,)
    return int(np.count_nonzero(above & ~np.r_[False, above[:-1]]))


def stability(steps: np.ndarray, curves: dict[str, np.ndarray], criteria: Criteria = Criteria(),
              rule: StabilityRule = StabilityRule()) -> Stability:
    """The stability measures of one run (module docstring) under ``criteria`` (memorization and
    generalization as :mod:`grokscope.analysis.measures.onset` defines them, loss thresholds replacing accuracy ones).

    Parameters
    ----------
    steps : array_like, shape (n,), ascending
    curves : name → array (n,), NaN where not evaluated: ``train_acc``/``test_acc`` or the losses the
        criteria use, and ``train_loss`` for the spike count.

    Examples
    --------
    >>> t = np.arange(10) * 100
    >>> test = np.array([0.1, 0.2, 0.96, 0.97, 0.3, 0.3, 0.96, 0.97, 0.98, 0.99])
    >>> s = stability(t, {"train_acc": np.ones(10), "test_acc": test})
    >>> s.sustained_generalization_step, s.dips_after_generalization, s.stable
    (None, 2, False)
    """
    steps = np.asarray(steps)
    memorized = memorization_step(steps, curves, criteria)
    generalized = generalization_step(steps, curves, criteria)
    by_loss = criteria.test_loss_below is not None
    s_e, v_e = _evaluated(steps, curves["test_loss" if by_loss else "test_acc"])
    passed = v_e <= criteria.test_loss_below if by_loss else v_e >= criteria.test_acc  # (n_e,)
    sustained = sustained_step(s_e, passed, evals=rule.sustain_evals, window=rule.sustain_steps)

    def worst_after(name: str, pick) -> float | None:
        s, v = _evaluated(steps, curves.get(name))
        after = v[s > generalized] if generalized is not None else v[:0]
        return float(pick(after)) if after.size else None

    dips = stable = None
    if generalized is not None:
        dips = int(np.count_nonzero(~passed[s_e > generalized]))
        stable = dips == 0
    collapse = None
    if memorized is not None:
        if criteria.train_loss_below is not None:
            s_r, v_r = _evaluated(steps, curves["train_loss"])
            fell = (s_r > memorized) & (v_r > rule.collapse_loss(criteria.train_loss_below))
        else:
            s_r, v_r = _evaluated(steps, curves["train_acc"])
            fell = (s_r > memorized) & (v_r < rule.collapse_train_acc)
        collapse = int(s_r[fell][0]) if fell.any() else None
    _, train_loss = _evaluated(steps, curves.get("train_loss"))
    spikes = spike_episodes(train_loss, rule.spike_factor, rule.spike_floor) if train_loss.size else None
    return Stability(sustained, worst_after("test_acc", np.min), worst_after("test_loss", np.max), dips,
                     stable, collapse, spikes)
