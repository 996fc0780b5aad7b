"""The runs of a data-size sweep, and their step-wise analysis (seed 002, Zhu et al., App. F).

Runs: :func:`load_runs` reads stores as :class:`RunCurves`; :func:`tabulate_runs` checks that they share one
task and test set, picks the data-size axis (``n_train``, else ``frac``) and the model size (``n_params``,
else ``d_model``, or a chosen config key), and groups runs that share everything but data size and seed.

Step-wise: for every run and every threshold (test accuracy 0.1 … 0.9 by default) the first evaluated step at
which the curve reaches it; then the mean over seeds per data size, and the "generalization step" of each data
size, the largest of those means over the thresholds reached (the authors' "highest points").  Against data
size it peaks at the critical data size: below it nothing generalizes, just above it generalization is
slowest.

Rules (the paper leaves them open; each is a parameter):

* A threshold never reached is missing (NaN), never 0.  The authors' code recorded "never" as step 0.
* ``clip``: only points with ``step ≤ clip`` count (the authors cut each log at 6,000 steps before smoothing).
* ``sigma``: Gaussian smoothing in *steps* (the authors used 100) applied to the evaluated points only.  The
  kernel width in samples is ``sigma / median spacing`` of the evaluated steps: exact when a run is evaluated
  every k steps, an approximation when the spacing varies (imported runs).
* Loss curves (``below=True``): the first step at or below each threshold.
* Mean over seeds: over the seeds that reached the threshold; ``n_reached`` says how many did.

Pure numpy and pandas (plus the store reader).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from grokscope.analysis.measures.onset import first_step
from grokscope.analysis.measures.smoothing import gaussian
from grokscope.config.run import MODEL, RECORDING, SEED, SIZE, TASK, field_names
from grokscope.errors import GrokscopeError
from grokscope.store.reader import RunStore
from grokscope.store.runs import find_runs

TASK_KEYS = field_names(TASK)  # must agree: one test set
SIZE_KEYS = field_names(SIZE)  # the data-size axis
MODEL_KEYS = field_names(MODEL)
IGNORED_KEYS = field_names(SEED) + field_names(RECORDING)  # no effect on results (seeds are replicates)

ACC_THRESHOLDS = tuple(k / 10 for k in range(1, 10))  # 0.1 … 0.9, each exactly the nearest double to k/10


# --- step-wise analysis (pure) -------------------------------------------------------------------------


def loss_thresholds(test_loss_below: float) -> tuple[float, ...]:
    """Default thresholds on test loss: ``test_loss_below · 2^k`` for ``k = 8 … 0`` (descending).

    Examples
    --------
    >>> loss_thresholds(0.1)[-3:]
    (0.4, 0.2, 0.1)
    """
    return tuple(test_loss_below * 2.0**k for k in range(8, -1, -1))


def prepare_curve(steps: np.ndarray, values: np.ndarray, *, sigma: float = 0.0,
                  clip: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The evaluated points of a curve (finite, ``step ≤ clip``), Gaussian-smoothed with ``sigma`` steps.

    Parameters
    ----------
    steps : array_like, shape (n,), ascending training steps.
    values : array_like, shape (n,); NaN where the metric was not evaluated.
    sigma : float ≥ 0, the kernel's standard deviation in training steps (0: no smoothing).
    clip : int or None, the last step that counts (None: all).

    Returns
    -------
    (steps, values) : two arrays of shape (m,), m ≤ n.

    Examples
    --------
    >>> prepare_curve(np.arange(6) * 10, [0.0, np.nan, 0.2, 0.3, 0.4, 0.5], clip=30)
    (array([ 0, 20, 30]), array([0. , 0.2, 0.3]))
    """
    steps = np.asarray(steps)
    values = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(values)
    if clip is not None:
        keep &= steps <= clip
    steps, values = steps[keep], values[keep]  # (m,), (m,)
    if sigma > 0 and len(steps) > 1:
        spacing = float(np.median(np.diff(steps)))
        values = gaussian(values, sigma / spacing)
    return steps, values


def first_crossings(steps: np.ndarray, values: np.ndarray, thresholds, *, below: bool = False,
                    sigma: float = 0.0, clip: int | None = None) -> np.ndarray:
    """The first step reaching each threshold (``≥``, or ``≤`` with ``below``); NaN where never reached.

    Parameters
    ----------
    steps, values : array_like, shape (n,); see :func:`prepare_curve` for ``sigma`` and ``clip``.
    thresholds : sequence of float, shape (k,).

    Returns
    -------
    ndarray, shape (k,), float64.

    Examples
    --------
    >>> first_crossings(np.arange(5), [0.0, 0.1, 0.5, 0.9, 1.0], [0.5, 0.95, 1.5])
    array([ 2.,  4., nan])
    """
    steps, values = prepare_curve(steps, values, sigma=sigma, clip=clip)
    out = np.full(len(thresholds), np.nan)  # (k,)
    for i, threshold in enumerate(thresholds):
        step = first_step(steps, values, threshold, below=below)
        if step is not None:
            out[i] = step
    return out


def summarize_stepwise(stepwise: pd.DataFrame, size: str = "n_train") -> pd.DataFrame:
    """Mean first-crossing step over seeds per model, data size and threshold.

    Parameters
    ----------
    stepwise : tidy table with columns ``model, model_size, <size>, seed, threshold, step`` (step NaN: never).
    size : the data-size column.

    Returns
    -------
    DataFrame with columns ``model, model_size, <size>, threshold, step, n_reached, n_runs``; ``step`` is the
    mean over the seeds that reached the threshold (NaN if none did).
    """
    keys = ["model", "model_size", size, "threshold"]
    grouped = stepwise.groupby(keys, sort=True, dropna=False)["step"]
    return grouped.agg(step="mean", n_reached="count", n_runs="size").reset_index()


def generalization_steps(summary: pd.DataFrame, size: str = "n_train") -> pd.DataFrame:
    """Per model and data size, the largest mean crossing step over the thresholds reached (App. F's
    "highest points") and the threshold it belongs to; NaN where no threshold was reached.

    Returns
    -------
    DataFrame with columns ``model, model_size, <size>, step, threshold``.
    """
    rows = []
    groups = summary.groupby(["model", "model_size", size], sort=True, dropna=False)
    for (model, model_size, n), part in groups:
        reached = part.dropna(subset=["step"])
        if len(reached):
            top = reached.loc[reached["step"].idxmax()]
            step, threshold = float(top["step"]), float(top["threshold"])
        else:
            step, threshold = np.nan, np.nan
        rows.append({"model": model, "model_size": model_size, size: n, "step": step, "threshold": threshold})
    return pd.DataFrame(rows, columns=["model", "model_size", size, "step", "threshold"])


def peak_size(sizes: np.ndarray, steps: np.ndarray) -> float | None:
    """The data size with the largest generalization step (the step-wise marker of the CDS); None if none.

    Examples
    --------
    >>> peak_size(np.array([100, 200, 400]), np.array([np.nan, 900.0, 300.0]))
    200.0
    """
    steps = np.asarray(steps, dtype=np.float64)
    if not np.isfinite(steps).any():
        return None
    return float(np.asarray(sizes)[np.nanargmax(steps)])


# --- runs: loading and grouping -------------------------------------------------------------------------


@dataclass(frozen=True)
class RunCurves:
    """What the CDS analysis needs from one run: its config and test curves (NaN where not evaluated)."""

    name: str
    config: dict[str, Any]
    steps: np.ndarray  # (n,)
    test_acc: np.ndarray | None = None  # (n,)
    test_loss: np.ndarray | None = None  # (n,)
    n_params: int | None = None
    test_set: str | None = None  # digest of the exact test indices, when the store keeps them
    status: str = "complete"


def load_runs(paths: Iterable[str | os.PathLike]) -> list[RunCurves]:
    """Every run store named or found under ``paths`` (each once), as :class:`RunCurves`."""
    runs, seen = [], set()
    for path in find_runs(paths):
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        store = RunStore(path)
        test_set = None
        if store.has("test_idx"):
            indices = np.ascontiguousarray(store.read("test_idx")).tobytes()
            test_set = hashlib.blake2b(indices, digest_size=6).hexdigest()
        model = store.attrs.get("model")
        n_params = model.get("n_params") if isinstance(model, dict) else None
        runs.append(RunCurves(
            name=str(path), config=store.config, steps=store.read("step"),
            test_acc=_logged(store, "test_acc"), test_loss=_logged(store, "test_loss"),
            n_params=n_params, test_set=test_set, status=store.status))
    return runs


def _logged(store: RunStore, name: str) -> np.ndarray | None:
    """A per-step curve, or None when the store lacks it or never evaluated it (all NaN)."""
    values = store.read(name) if store.has(name) else None
    return values if values is not None and np.isfinite(values).any() else None


def check_one_task(runs: Sequence[RunCurves]) -> None:
    """Raise :class:`GrokscopeError` naming the two values when runs differ in task or test set."""
    for key in (*TASK_KEYS, "test set"):
        first: dict[str, Any] = {}
        for run in runs:
            value = run.test_set if key == "test set" else run.config.get(key)
            if value is None:
                continue  # unknown (an imported run): cannot disagree
            if first and value != first["value"]:
                raise GrokscopeError(f"runs of different tasks in one CDS fit: {key} is {first['value']!r} "
                                     f"in {first['run']} but {value!r} in {run.name}; fit each task "
                                     f"separately")
            first = first or {"value": value, "run": run.name}


def size_axis(runs: Sequence[RunCurves]) -> str:
    """``"n_train"`` when every run's config has it, else ``"frac"`` when every run has it, else an error."""
    for key in SIZE_KEYS:
        if all(run.config.get(key) is not None for run in runs):
            return key
    for run in runs:
        if all(run.config.get(key) is None for key in SIZE_KEYS):
            raise GrokscopeError(f"{run.name}: config has neither n_train nor frac (attach one on import "
                                 f"with --hparam)")
    only_n = next(r for r in runs if r.config.get("frac") is None)
    only_f = next(r for r in runs if r.config.get("n_train") is None)
    raise GrokscopeError(f"runs mix data sizes: {only_n.name} has only n_train, {only_f.name} only frac; "
                         f"give every run the same one")


def _hashable(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _number(run: RunCurves, key: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise GrokscopeError(f"{run.name}: {key} must be a number, got {value!r}") from None


def tabulate_runs(runs: Sequence[RunCurves], model_size: str | None = None) -> tuple[pd.DataFrame, str, str]:
    """One row per run: ``model`` (group label), ``setting``, ``model_size``, ``n_params``, ``d_model``, the
    data size, ``seed`` and ``index`` (into ``runs``).  Returns ``(table, size_axis, model_size_axis)``.

    Runs sharing everything but data size and seed (and the keys in ``IGNORED_KEYS``) form one model group.
    """
    if not runs:
        raise GrokscopeError("no runs to analyse")
    check_one_task(runs)
    axis = size_axis(runs)
    if model_size is not None:
        missing = next((r for r in runs if r.config.get(model_size) is None), None)
        if missing is not None:
            raise GrokscopeError(f"{missing.name}: config has no {model_size!r} for --model-size")
        size_of, model_axis = (lambda r: _number(r, model_size, r.config[model_size])), model_size
    elif all(r.n_params is not None for r in runs):
        size_of, model_axis = (lambda r: r.n_params), "n_params"
    elif all(r.config.get("d_model") is not None for r in runs):
        size_of, model_axis = (lambda r: r.config["d_model"]), "d_model"
    else:
        size_of, model_axis = (lambda r: np.nan), "none"
    skip = set(TASK_KEYS) | set(SIZE_KEYS) | set(IGNORED_KEYS)
    keys = sorted({k for r in runs for k in r.config} - skip)
    groups = [tuple(_hashable(r.config.get(k)) for k in keys) for r in runs]
    varying = [k for i, k in enumerate(keys) if len({g[i] for g in groups}) > 1]

    def label(run: RunCurves, among: Iterable[str]) -> str:
        return ",".join(f"{k}={run.config.get(k)}" for k in among)

    model_keys = set(MODEL_KEYS) | ({model_size} if model_size else set())
    rows, replicate = [], {}
    for i, run in enumerate(runs):
        name = label(run, varying) or (label(run, ["d_model"]) if "d_model" in run.config else "all")
        n = _number(run, axis, run.config[axis])
        seed = run.config.get("seed")
        if seed is None:  # imported runs without seeds: replicates numbered in path order
            seed = replicate[(name, n)] = replicate.get((name, n), -1) + 1
        rows.append({"model": name, "setting": label(run, [k for k in varying if k not in model_keys]),
                     "model_size": float(size_of(run)), "n_params": run.n_params,
                     "d_model": run.config.get("d_model"), axis: n, "seed": seed, "index": i})
    table = pd.DataFrame(rows)
    dup = table[table.duplicated(["model", axis, "seed"], keep=False)]
    if len(dup):
        first = dup.iloc[0]
        same = dup[(dup["model"] == first["model"]) & (dup[axis] == first[axis])]
        a, b = (runs[i].name for i in same[same["seed"] == first["seed"]]["index"].iloc[:2])
        raise GrokscopeError(f"two runs of one model, data size and seed: {a} and {b}; pass each sweep once")
    return table, axis, model_axis
