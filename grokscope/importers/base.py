"""What every reader returns: runs as per-field series, optional checkpoints, and where they came from.

Readers only parse; they never decide what a field means (that is :mod:`grokscope.importers.mapping`) and
never write (that is :mod:`grokscope.importers.write`).  A series is ``(steps, values)`` in the order the
source logged it; when a step repeats, the later entry wins (a resumed run's newer file, a re-logged value).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grokscope.errors import ConfigError, GrokscopeError

Series = tuple[np.ndarray, np.ndarray]  # (steps (n,) int64, values (n,) float64) in logging order
MAX_STEP = 2**62  # steps beyond this are not steps


class SourceError(GrokscopeError):
    """A log or checkpoint file that cannot be imported; the message names the file and the line or field."""


@dataclass(frozen=True)
class Checkpoints:
    """Parameters saved at several steps: name → ``(ckpt, …)`` float32, with the step of each checkpoint."""

    steps: np.ndarray  # (ckpt,) int64, ascending
    params: dict[str, np.ndarray]  # name -> (ckpt, *shape) float32
    step_source: str  # where the steps came from ("checkpoint_epochs", "file names", …)
    dropped: tuple[str, ...] = ()  # tensors left out (integer or boolean buffers)


@dataclass(frozen=True)
class RawRun:
    """One run as a reader found it, before mapping field names onto grokscope's metrics."""

    name: str  # the run's id or name inside its source ("" when the source holds one run)
    series: dict[str, Series]  # source field -> (steps, values)
    step_field: str | None  # the field (or rule) the steps came from
    config: dict[str, Any] = field(default_factory=dict)  # hyperparameters found with the run
    config_sources: tuple[str, ...] = ()  # files (or fields) the config came from
    invalid: dict[str, str] = field(default_factory=dict)  # field -> first non-numeric value and its line
    dropped: tuple[str, ...] = ()  # fields the reader left out itself (W&B __MIN/__MAX bands …)
    sampled: bool = False  # the source holds a subsample of the logged points (W&B panel export)
    checkpoints: Checkpoints | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # provenance details (run id, experiment, status)


@dataclass(frozen=True)
class Source:
    """Everything read from one path: its runs and whether they become a directory of stores."""

    path: Path
    format: str  # one of detect.FORMATS
    runs: list[RawRun]
    multi: bool  # True: OUT becomes a directory with one store per run
    layout: str = ""  # tables: wide, long, wandb-panel, lightning, wandb-history
    skipped: list[dict[str, str]] = field(default_factory=list)  # runs left out, with the reason


def last_per_step(steps: np.ndarray, values: np.ndarray) -> Series:
    """Sorted unique steps and, for each, the last finite-or-NaN value logged at it (later entries win).

    NaN entries are dropped first, so a sparse row never hides an earlier value at the same step.

    Examples
    --------
    >>> s, v = last_per_step(np.array([2, 0, 2]), np.array([1.0, 5.0, 3.0]))
    >>> s.tolist(), v.tolist()
    ([0, 2], [5.0, 3.0])
    """
    steps = np.asarray(steps, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(values)
    steps, values = steps[keep], values[keep]
    order = np.argsort(steps, kind="stable")  # ties keep logging order
    steps, values = steps[order], values[order]
    last = np.ones(len(steps), dtype=bool)
    last[:-1] = steps[1:] != steps[:-1]
    return steps[last], values[last]


def align(series: Mapping[str, Series]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Several series on the union of their steps: ``(steps (n,), {name: values (n,)})``, NaN elsewhere."""
    clean = {name: last_per_step(*s) for name, s in series.items()}
    parts = [s for s, _ in clean.values()]
    steps = np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
    out = {}
    for name, (s, v) in clean.items():
        column = np.full(len(steps), np.nan)
        column[np.searchsorted(steps, s)] = v
        out[name] = column
    return steps.astype(np.int64), out


def check_steps(raw: np.ndarray, where: Sequence[str], path: Path, field_name: str) -> np.ndarray:
    """Float step values → int64; a missing, fractional or absurd step raises naming its line."""
    raw = np.asarray(raw, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(raw) | (raw != np.round(raw)) | (np.abs(raw) > MAX_STEP)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        shown = "no value" if np.isnan(raw[i]) else f"{raw[i]!r}, not an integer step"
        raise SourceError(f"{path}: {where[i]}: step field {field_name!r} has {shown}")
    return raw.astype(np.int64)


def split_option(item: str, option: str, form: str, example: str, allow_empty: bool = False) -> tuple[str, str]:
    """``--option NAME=VALUE`` → ``(NAME, VALUE)``, NAME stripped; a ConfigError naming the option, the
    ``form`` expected and an ``example`` when NAME (or, unless ``allow_empty``, VALUE) is empty."""
    name, sep, value = item.partition("=")
    if not sep or not name.strip() or not (value or allow_empty):
        raise ConfigError(f"{option} {item!r}: expected {form}, e.g. {option} {example}")
    return name.strip(), value
