"""Critical data size (seed 002, Zhu et al.): Definition 1 per model size, its bootstrap CI, and the fits.

Definition 1: ``CDS(D, M) = min{ n : E_{S∼D^n}[Acc_S(M)] ≥ ε }``.  Over a grid of data sizes with several
seeds per size, the expectation is the mean over seeds of each run's *score*: its final test accuracy (or its
max smoothed accuracy with ``score="max"``); under a ``test_loss_below`` criterion, 1 if the run's final test
loss is at or below the threshold, else 0, so the curve becomes the fraction of seeds that generalized.  The
CDS is where the mean curve first reaches ε, interpolated between the two grid sizes that bracket it, linearly
in ``log n`` by default (``interpolation="linear"``: in ``n``).  Reached already at the smallest size: that
size, flagged as an upper bound and left out of the scaling fit.  Never reached: missing, with the reason.

The CI resamples seeds with replacement (one draw serves every data size of a model: a seed's data subsets
are nested across sizes) and takes the percentile interval of the replicate CDS values; replicates that never
reach ε count as +∞, so an interval end beyond the grid is ``None`` (open).  Grokking time
``t(r) = a·r^(−γ) + b`` is fitted (``scipy.optimize.curve_fit``) on the runs that generalized, against the
data-size axis (γ and b do not depend on its unit).  The model-wise fit ``CDS = c·N^β`` is a least-squares
line in log-log (``scipy.stats.linregress``) with a t-interval on β.  Runs come from
:mod:`grokscope.analysis.runners.stepwise`, the two fits from :mod:`grokscope.analysis.measures.scaling`;
:class:`CDSAnalysis` ties it all together
(docs/cds.md).  Pure numpy/scipy/pandas.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from grokscope.analysis.measures.onset import Criteria, first_step
from grokscope.analysis.measures.scaling import PowerLawFit, TimeFit, fit_grokking_time, fit_power_law  # noqa: F401  (re-exported)
from grokscope.analysis.runners.stepwise import (
    ACC_THRESHOLDS,
    RunCurves,
    first_crossings,
    generalization_steps,
    load_runs,
    loss_thresholds,
    peak_size,
    prepare_curve,
    summarize_stepwise,
    tabulate_runs,
)
from grokscope.errors import ConfigError, GrokscopeError

# --- Definition 1 and its bootstrap (pure) ---------------------------------------------------------------


def critical_data_size(sizes: np.ndarray, scores: np.ndarray, epsilon: float = 0.95, *,
                       interpolation: str = "log") -> np.ndarray:
    """The smallest data size whose mean score reaches ``epsilon``, interpolated between bracketing sizes.

    Parameters
    ----------
    sizes : array_like, shape (K,), ascending data sizes.
    scores : array_like, shape (K,) or (K, B): mean score per size (NaN: no runs there, skipped).
    epsilon : the level of Definition 1.
    interpolation : ``"log"`` (linear in log n) or ``"linear"`` (linear in n).

    Returns
    -------
    float64 array, shape () or (B,): the CDS, NaN where never reached.  Reached at the first evaluated size:
    that size (an upper bound).

    Examples
    --------
    >>> round(float(critical_data_size([100, 200, 400], [0.0, 0.5, 1.0], 0.75)), 6)  # 200·√2
    282.842712
    """
    if interpolation not in ("log", "linear"):
        raise ConfigError(f"interpolation must be 'log' or 'linear', got {interpolation!r}")
    sizes = np.asarray(sizes, dtype=np.float64)
    means = np.asarray(scores, dtype=np.float64)
    shape = means.shape[1:]
    means = means.reshape(len(sizes), -1)  # (K, B)
    x = np.log(sizes) if interpolation == "log" else sizes  # (K,)
    cols = np.arange(means.shape[1])
    out = np.full(means.shape[1], np.nan)  # (B,)
    done = np.zeros(means.shape[1], dtype=bool)
    prev = np.full(means.shape[1], -1)  # the last evaluated size below, per column
    for k in range(len(sizes)):
        row = means[k]  # (B,)
        with np.errstate(invalid="ignore"):
            hit = ~done & (row >= epsilon)
        lower = np.maximum(prev, 0)
        a0 = means[lower, cols]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            between = x[lower] + (epsilon - a0) / (row - a0) * (x[k] - x[lower])
            between = np.exp(between) if interpolation == "log" else between
        value = np.where(prev >= 0, between, sizes[k])  # no evaluated size below: the grid size itself
        out[hit] = value[hit]
        done |= hit
        prev = np.where(np.isfinite(row), k, prev)
    return out.reshape(shape)


def bootstrap_cds(sizes: np.ndarray, scores: np.ndarray, epsilon: float = 0.95, *, n_bootstrap: int = 1000,
                  seed: int = 0, interpolation: str = "log") -> np.ndarray:
    """Bootstrap replicates of the CDS, resampling seeds with replacement.

    Parameters
    ----------
    sizes : array_like, shape (K,), ascending.
    scores : array_like, shape (K, S): the score of seed s at size k (NaN: no such run).  One draw of S seed
        columns serves every size (a seed's data subsets are nested across sizes).
    n_bootstrap : B, the number of replicates; ``seed`` seeds numpy's ``default_rng``.

    Returns
    -------
    float64 array, shape (B,): replicate CDS values, NaN where a replicate never reaches ``epsilon``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n_seeds = scores.shape[1]
    draws = np.random.default_rng(seed).integers(0, n_seeds, size=(n_bootstrap, n_seeds))  # (B, S)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a size none of whose drawn seeds ran: NaN, skipped
        means = np.nanmean(scores[:, draws], axis=2)  # (K, B)
    return critical_data_size(sizes, means, epsilon, interpolation=interpolation)


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float | None, float | None]:
    """The percentile interval of bootstrap replicates, NaN counted as +∞; an end at +∞ is ``None``.

    Examples
    --------
    >>> percentile_interval(np.array([1.0, 2.0, 3.0, np.nan]), 0.5)
    (1.75, None)
    """
    reps = np.asarray(replicates, dtype=np.float64)
    finite = np.isfinite(reps)
    if not finite.any():
        return None, None
    big = np.finfo(np.float64).max / 4  # stands for +∞ yet interpolates without overflow
    tail = (1 - level) / 2
    lo, hi = np.quantile(np.where(finite, reps, big), [tail, 1 - tail])
    top = reps[finite].max()
    return (float(lo) if lo <= top else None), (float(hi) if hi <= top else None)


# --- the fits (pure) ------------------------------------------------------------------------------------


class CDSAnalysis:
    """Sample-wise and model-wise critical data size of a set of runs (scikit-learn style estimator).

    Parameters
    ----------
    epsilon : the level ε of Definition 1 (mean score over seeds).
    criteria : :class:`~grokscope.analysis.measures.onset.Criteria`; ``test_acc`` (or ``test_loss_below``)
        decides when a run generalized (grokking time); ``test_loss_below`` also moves scores and step-wise
        curves to test loss.
    smoothing_sigma : Gaussian σ in steps for the step-wise curves and ``score="max"`` (0: none).
    clip : the last step that counts (None: all).
    thresholds : step-wise thresholds (None: 0.1 … 0.9 of accuracy, or :func:`loss_thresholds`).
    n_bootstrap : bootstrap replicates for the CDS interval (0: none); ``level`` the interval's coverage.
    interpolation : ``"log"`` or ``"linear"`` in data size between bracketing grid points.
    score : ``"final"`` (last evaluated value, Definition 1) or ``"max"`` (best smoothed value, seed 002's
        model-wise landscape).
    model_size : a config key to use as model size (default: ``n_params``, else ``d_model``).
    seed : seeds the bootstrap.

    Examples
    --------
    >>> est = CDSAnalysis(epsilon=0.9).fit(["runs/cds/"])  # doctest: +SKIP
    >>> est.cds_[["model", "cds", "cds_lo", "cds_hi"]]       # doctest: +SKIP
    """

    def __init__(self, epsilon: float = 0.95, criteria: Criteria = Criteria(), smoothing_sigma: float = 0.0,
                 clip: int | None = None, thresholds: Sequence[float] | None = None, n_bootstrap: int = 1000,
                 level: float = 0.95, interpolation: str = "log", score: str = "final",
                 model_size: str | None = None, seed: int = 0) -> None:
        self.epsilon, self.criteria, self.smoothing_sigma = epsilon, criteria, smoothing_sigma
        self.clip, self.thresholds, self.n_bootstrap, self.level = clip, thresholds, n_bootstrap, level
        self.interpolation, self.score, self.model_size, self.seed = interpolation, score, model_size, seed

    def _validate(self) -> None:
        if not 0 < self.epsilon <= 1:
            raise ConfigError(f"epsilon must be in (0, 1], got {self.epsilon}")
        if not 0 < self.level < 1:
            raise ConfigError(f"level must be in (0, 1), got {self.level}")
        if self.n_bootstrap < 0:
            raise ConfigError(f"bootstrap must be non-negative, got {self.n_bootstrap}")
        if not (np.isfinite(self.smoothing_sigma) and self.smoothing_sigma >= 0):
            raise ConfigError(f"smoothing sigma must be finite and >= 0, got {self.smoothing_sigma}")
        if self.score not in ("final", "max"):
            raise ConfigError(f"score must be 'final' or 'max', got {self.score!r}")
        if self.interpolation not in ("log", "linear"):
            raise ConfigError(f"interpolation must be 'log' or 'linear', got {self.interpolation!r}")

    def fit(self, runs: Iterable[RunCurves] | Iterable[str | os.PathLike]) -> CDSAnalysis:
        """Analyse runs (:class:`RunCurves`, or paths of run stores and directories holding them)."""
        self._validate()
        runs = [runs] if isinstance(runs, (str, os.PathLike)) else list(runs)
        if not runs or not isinstance(runs[0], RunCurves):
            runs = load_runs(runs)
        table, axis, self.model_size_axis_ = tabulate_runs(runs, self.model_size)
        self.size_axis_ = axis
        loss = self.criteria.test_loss_below is not None
        metric = "test_loss" if loss else "test_acc"
        thresholds = self.thresholds or (loss_thresholds(self.criteria.test_loss_below) if loss
                                         else ACC_THRESHOLDS)
        scores, times, crossings = [], [], []
        for i in table["index"]:
            run = runs[i]
            values = getattr(run, metric)
            if values is None:
                hint = "; use --test-loss-below for runs that log only losses" if not loss else ""
                raise ConfigError(f"{run.name} logs no {metric}{hint}")
            scores.append(self._score(run.steps, values))
            raw_steps, raw = prepare_curve(run.steps, values, clip=self.clip)
            threshold = self.criteria.test_loss_below if loss else self.criteria.test_acc
            times.append(first_step(raw_steps, raw, threshold, below=loss))
            crossings.append(first_crossings(run.steps, values, thresholds, below=loss,
                                             sigma=self.smoothing_sigma, clip=self.clip))
        table["score"] = scores
        table["generalization_step"] = [np.nan if t is None else float(t) for t in times]
        self.runs_ = table.drop(columns="index").assign(run=[runs[i].name for i in table["index"]],
                                                        status=[runs[i].status for i in table["index"]])
        self.stepwise_ = pd.DataFrame([
            {"model": row.model, "model_size": row.model_size, axis: getattr(row, axis), "seed": row.seed,
             "threshold": th, "step": step}
            for row, steps in zip(table.itertuples(), crossings) for th, step in zip(thresholds, steps)],
            columns=["model", "model_size", axis, "seed", "threshold", "step"])
        self.generalization_ = generalization_steps(summarize_stepwise(self.stepwise_, axis), axis)
        self.landscape_ = (table.groupby(["model", "model_size", axis], sort=True)["score"]
                           .agg(accuracy="mean", n_runs="count").reset_index())
        self._fit_cds(table, axis)
        self._fit_scaling()
        return self

    def _score(self, steps: np.ndarray, values: np.ndarray) -> float:
        loss = self.criteria.test_loss_below is not None
        sigma = self.smoothing_sigma if self.score == "max" else 0.0
        _, curve = prepare_curve(steps, values, sigma=sigma, clip=self.clip)
        if not len(curve):
            return np.nan
        if self.score == "final":
            value = curve[-1]
        else:
            value = curve.min() if loss else curve.max()
        return float(value <= self.criteria.test_loss_below) if loss else float(value)

    def _fit_cds(self, table: pd.DataFrame, axis: str) -> None:
        rows, fits = [], []
        for model, part in table.groupby("model", sort=False):
            grid = part.pivot(index=axis, columns="seed", values="score").sort_index()  # (K, S), NaN: no run
            sizes, scores = grid.index.to_numpy(np.float64), grid.to_numpy(np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(scores, axis=1)  # (K,)
            cds = float(critical_data_size(sizes, mean, self.epsilon, interpolation=self.interpolation))
            lo = hi = None
            if self.n_bootstrap:
                reps = bootstrap_cds(sizes, scores, self.epsilon, n_bootstrap=self.n_bootstrap,
                                     seed=self.seed, interpolation=self.interpolation)
                lo, hi = percentile_interval(reps, self.level)
            first = sizes[np.isfinite(mean)][0] if np.isfinite(mean).any() else np.nan
            censored = cds == first
            reason = None
            if np.isnan(cds) and np.isfinite(mean).any():
                best = int(np.nanargmax(mean))
                reason = (f"mean score never reaches epsilon={self.epsilon} (best {mean[best]:.4g} at "
                          f"{axis}={sizes[best]:g})")
            elif np.isnan(cds):
                reason = "no run has an evaluated test score"
            elif censored:
                reason = f"reached at the smallest {axis} {first:g}: the CDS is at most that"
            gen = self.generalization_[self.generalization_["model"] == model]
            one = part.iloc[0]
            rows.append({"model": model, "setting": one["setting"], "model_size": one["model_size"],
                         "n_params": one["n_params"], "d_model": one["d_model"],
                         "cds": cds, "cds_lo": lo, "cds_hi": hi, "censored": censored, "reason": reason,
                         "stepwise_peak": peak_size(gen[axis], gen["step"]), "n_runs": len(part)})
            fits.append(self._fit_time(model, part, axis))
        self.cds_ = pd.DataFrame(rows).sort_values(["model_size", "model"], kind="stable")
        self.cds_ = self.cds_.reset_index(drop=True)
        self.time_fit_ = pd.DataFrame(fits)

    def _fit_time(self, model: str, part: pd.DataFrame, axis: str) -> dict[str, Any]:
        done = part.dropna(subset=["generalization_step"])
        row: dict[str, Any] = {"model": model, "x": axis, "reason": None}
        try:
            row.update(fit_grokking_time(done[axis], done["generalization_step"], level=self.level)._asdict())
        except (GrokscopeError, RuntimeError) as exc:  # too few sizes, or curve_fit did not converge
            row.update({f: np.nan for f in TimeFit._fields}, n_points=len(done), reason=str(exc))
        return row

    def _fit_scaling(self) -> None:
        rows = []
        usable = self.cds_[self.cds_["cds"].notna() & ~self.cds_["censored"].astype(bool)]
        axes = [self.model_size_axis_] + [k for k in ("n_params", "d_model") if k != self.model_size_axis_]
        for setting, part in self.cds_.groupby("setting", sort=True):
            fit_part = usable[usable["setting"] == setting]
            for x in axes:
                column = "model_size" if x == self.model_size_axis_ else x
                if x == "none" or part[column].isna().any():
                    continue
                row: dict[str, Any] = {"setting": setting, "x": x, "reason": None}
                n, cds = fit_part[column].to_numpy(np.float64), fit_part["cds"].to_numpy(np.float64)
                try:
                    row.update(fit_power_law(n, cds, level=self.level)._asdict())
                except GrokscopeError as exc:
                    row.update({f: np.nan for f in PowerLawFit._fields}, n_points=len(fit_part),
                               reason=str(exc))
                rows.append(row)
        self.scaling_fit_ = pd.DataFrame(rows, columns=["setting", "x", *PowerLawFit._fields, "reason"])

    def to_dict(self) -> dict[str, Any]:
        """The results as one JSON-able document: plain Python values, missing (NaN) as ``None``."""
        times = self.time_fit_.set_index("model")
        models = []
        for row in self.cds_.to_dict("records"):
            fit = times.loc[row["model"]].to_dict()
            models.append({
                "model": row["model"], "setting": row["setting"], "model_size": row["model_size"],
                "n_params": row["n_params"], "d_model": row["d_model"], "cds": row["cds"],
                "cds_ci": [row["cds_lo"], row["cds_hi"]], "censored": bool(row["censored"]),
                "reason": row["reason"], "stepwise_peak": row["stepwise_peak"], "n_runs": row["n_runs"],
                "time_fit": {**{k: fit[k] for k in ("x", "a", "b", "gamma", "a_se", "gamma_se", "b_se",
                                                    "n_points", "reason")},
                             "gamma_ci": [fit["gamma_lo"], fit["gamma_hi"]]},
            })
        scaling = [{"setting": r["setting"], "x": r["x"], "coefficient": r["coefficient"],
                    "exponent": r["exponent"], "exponent_se": r["exponent_se"],
                    "exponent_ci": [r["exponent_lo"], r["exponent_hi"]], "r_squared": r["r_squared"],
                    "n_points": r["n_points"], "reason": r["reason"]}
                   for r in self.scaling_fit_.to_dict("records")]
        criterion = (f"test_loss <= {self.criteria.test_loss_below} (fraction of seeds)"
                     if self.criteria.test_loss_below is not None else "test_acc (mean over seeds)")
        return _plain({
            "epsilon": self.epsilon, "score": self.score, "criterion": criterion, "level": self.level,
            "interpolation": self.interpolation, "n_bootstrap": self.n_bootstrap,
            "size_axis": self.size_axis_, "model_size_axis": self.model_size_axis_, "n_runs": len(self.runs_),
            "models": models,
            "scaling": scaling, "landscape": self.landscape_.to_dict("records"),
            "generalization_steps": self.generalization_.to_dict("records"),
            "stepwise": self.stepwise_.to_dict("records"),
        })


def _plain(value: Any) -> Any:
    """Python scalars for numpy ones, ``None`` for NaN, recursively through dicts and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and np.isnan(value) else value
