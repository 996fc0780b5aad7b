"""When a run memorized and when it generalized: first-crossing times on metric curves.

Pure numpy.  A threshold that is never reached gives ``None`` (never 0: the seed-002 authors' code recorded
"never" as step 0, which reads as "immediately").  Steps where a metric was not evaluated hold NaN and are
skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grokscope.errors import ConfigError


def first_step(steps: np.ndarray, values: np.ndarray, threshold: float, *, below: bool = False) -> int | None:
    """The first step at which ``values ≥ threshold`` (or ``≤`` with ``below=True``); ``None`` if never.

    Examples
    --------
    >>> first_step(np.arange(5), np.array([0.1, np.nan, 0.5, 0.99, 1.0]), 0.99)
    3
    """
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        hit = values <= threshold if below else values >= threshold
    hit &= ~np.isnan(values)
    idx = np.flatnonzero(hit)
    return int(steps[idx[0]]) if len(idx) else None


@dataclass(frozen=True)
class Criteria:
    """What counts as memorized and generalized.  Loss thresholds, when set, replace the accuracy ones
    (for runs that log only losses)."""

    train_acc: float = 0.99  # memorized: train accuracy at or above this
    test_acc: float = 0.95  # generalized: test accuracy at or above this
    train_loss_below: float | None = None  # memorized instead: train loss at or below this
    test_loss_below: float | None = None  # generalized instead: test loss at or below this

    def __post_init__(self) -> None:
        for name in ("train_acc", "test_acc"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"{name} threshold must be in (0, 1], got {getattr(self, name)}")
        for name in ("train_loss_below", "test_loss_below"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"{name.replace('_', '-')} must be positive, got {value}")


def memorization_step(steps: np.ndarray, curves: dict[str, np.ndarray], criteria: Criteria) -> int | None:
    """First step the training set counts as memorized (train accuracy, or train loss if so configured)."""
    if criteria.train_loss_below is not None:
        return _crossing(steps, curves, "train_loss", criteria.train_loss_below, below=True)
    return _crossing(steps, curves, "train_acc", criteria.train_acc)


def generalization_step(steps: np.ndarray, curves: dict[str, np.ndarray], criteria: Criteria) -> int | None:
    """First step the test set counts as solved (test accuracy, or test loss if so configured)."""
    if criteria.test_loss_below is not None:
        return _crossing(steps, curves, "test_loss", criteria.test_loss_below, below=True)
    return _crossing(steps, curves, "test_acc", criteria.test_acc)


def _crossing(steps, curves, name, threshold, below=False):
    if name not in curves:
        raise ConfigError(f"the run logs no {name}; choose a threshold on a metric it has")
    return first_step(steps, curves[name], threshold, below=below)


def grokking_delay(memorized: int | None, generalized: int | None) -> tuple[int | None, float | None]:
    """``(generalization − memorization, generalization / memorization)``; ``None`` where undefined."""
    if memorized is None or generalized is None:
        return None, None
    ratio = generalized / memorized if memorized > 0 else None
    return generalized - memorized, ratio
