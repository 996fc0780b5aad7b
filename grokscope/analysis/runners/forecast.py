"""The forecast applied to run stores: one row per run, fitting a model on finished runs, and backtests.

Reads only the committed per-step arrays, cut at ``at`` (nothing later is looked at when forecasting), so it
works on a store a trainer is still writing (``grokscope sweep --stop-early`` calls :func:`forecast_store`
on each run as it passes ``at``).  The pure parts are :mod:`grokscope.analysis.measures.forecast`;
docs/forecast.md describes the signals, the model, the default one shipped with grokscope, and its limits.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from grokscope.analysis.measures import forecast as fc
from grokscope.analysis.measures.onset import Criteria, generalization_step
from grokscope.analysis.runners.summary import per_run
from grokscope.errors import ConfigError, GrokscopeError
from grokscope.store.layout import FINISHED
from grokscope.store.reader import RunStore
from grokscope.store.runs import find_runs, run_labels

CURVES = ("train_loss", "train_acc", "test_loss", "test_acc", "l2_norm")
DEFAULT_MODEL = "forecast_model.json"  # in the grokscope.analysis package


# --- models ----------------------------------------------------------------------------------------------

def load_model(path: str | os.PathLike | None = None) -> fc.ForecastModel:
    """A model written by :func:`save_model` (``grokscope forecast fit``); ``None``: the packaged default."""
    if path is None:
        text = resources.files("grokscope.analysis").joinpath(DEFAULT_MODEL).read_text()
        return fc.ForecastModel.from_json(text)
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such model file")
    try:
        return fc.ForecastModel.from_json(path.read_text())
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a forecast model (not text)") from None


def save_model(model: fc.ForecastModel, path: str | os.PathLike) -> Path:
    """Write the model's JSON atomically: a temporary sibling renamed into place (never half a file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.writing-{os.getpid()}")
    try:
        tmp.write_text(model.to_json())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _generalized_means(criteria: Criteria) -> str:
    if criteria.test_loss_below is not None:
        return f"test loss ≤ {criteria.test_loss_below:g}"
    return f"test accuracy ≥ {criteria.test_acc:g}"


def _check_criteria(model: fc.ForecastModel, criteria: Criteria | None) -> None:
    """The model answers "does the run reach *its* generalization criterion"; another needs another model
    (the memorization thresholds play no part in the forecast)."""
    if criteria is not None and _generalized_means(criteria) != _generalized_means(model.criteria):
        raise ConfigError(f"the model forecasts {_generalized_means(model.criteria)}, not "
                          f"{_generalized_means(criteria)}; fit a model with those criteria (grokscope forecast fit)")


# --- one store -------------------------------------------------------------------------------------------

def _signals(store: RunStore, steps: np.ndarray, curves: dict[str, np.ndarray], at: int,
             budget: int) -> dict[str, float]:
    """The run's signals at ``at``: from its curves, and from its config where it has one."""
    return {**fc.signals(steps, curves, at, budget), **fc.config_signals(store.config or {})}


def _read(store: RunStore) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    curves = store.read_many(["step", *(name for name in CURVES if store.has(name))])
    return curves.pop("step"), curves  # (n,), {name: (n,)}


def _budget(store: RunStore, steps: np.ndarray) -> tuple[int, str]:
    """The steps the run was configured for, or (imported runs) the last step it logged."""
    configured = store.config.get("steps")
    if isinstance(configured, int) and configured > 0:
        return configured, "config"
    if not len(steps):
        raise ConfigError(f"{store.path}: no committed steps to forecast from")
    return int(steps[-1]), "last logged step"


def check_cut(at: int | None, at_frac: float | None) -> None:
    """``--at`` and ``--at-frac`` exclude each other; each must name a step inside the budget."""
    if at is not None and at_frac is not None:
        raise ConfigError("give --at or --at-frac, not both")
    if at_frac is not None and not 0 < at_frac < 1:
        raise ConfigError(f"--at-frac must be in (0, 1), got {at_frac}")
    if at is not None and at <= 0:
        raise ConfigError(f"--at must be positive, got {at}")


def _cut(at: int | None, at_frac: float | None, budget: int, last: int | None, default_frac: float) -> int:
    """The step to forecast from: ``at``, or ``at_frac`` (default the model's) of the budget."""
    check_cut(at, at_frac)
    if at is None:
        at = max(1, int(round((default_frac if at_frac is None else at_frac) * budget)))
    if last is None:
        raise ConfigError("the run has no committed steps yet")
    if at > last:
        raise ConfigError(f"--at {at} is beyond the run (last committed step {last})")
    return at


def _generalized_by(steps, curves, at, criteria) -> tuple[int | None, str | None]:
    """The generalization step if it is ≤ ``at`` (else None), or why it cannot be told."""
    keep = steps <= at
    metric = "test_loss" if criteria.test_loss_below is not None else "test_acc"
    if metric not in curves or not np.isfinite(curves[metric][keep]).any():
        return None, f"the run logs no {metric} by step {at}"
    return generalization_step(steps[keep], {k: v[keep] for k, v in curves.items()}, criteria), None


def forecast_store(path: str | os.PathLike | RunStore, *, at: int | None = None, at_frac: float | None = None,
                   model: fc.ForecastModel | None = None, criteria: Criteria | None = None) -> dict[str, Any]:
    """The forecast of one run from its committed metrics up to step ``at`` (default: the model's
    ``at_frac`` of the run's budget).  Works on a store that is still being written.

    The row: ``run``, ``path``, ``status``, ``at``, ``budget`` (configured steps, or the last logged step of an
    import: ``budget_source``), ``known`` (generalized by ``at``; ``None`` if the run lacks the criterion's
    metric), ``generalized_at``, ``feature_set``, ``p_generalize``, ``predicted_generalization_step``,
    ``interval_80``, ``advice`` (``"stop"``, ``"continue"``, or ``None`` when abstaining), ``stop_threshold``,
    ``compute_saved_steps`` (budget − at when the advice is stop), ``reason``, ``signals``.

    ``criteria`` must be the model's (its labels were made with them); ``None`` takes the model's.
    """
    model = load_model() if model is None else model
    _check_criteria(model, criteria)
    store = path if isinstance(path, RunStore) else RunStore(path)
    steps, curves = _read(store)
    budget, source = _budget(store, steps)
    at = _cut(at, at_frac, budget, int(steps[-1]) if len(steps) else None, model.at_frac)
    return _forecast(store, steps, curves, budget, source, at, model)


def forecast_cuts(path: str | os.PathLike | RunStore, fracs: Iterable[float], *,
                  model: fc.ForecastModel | None = None) -> list[dict[str, Any]]:
    """:func:`forecast_store` at each of ``fracs`` (ascending) of the run's budget, reading the store once; the
    cuts past its last committed step (a stopped or diverged run) are left out."""
    model = load_model() if model is None else model
    store = path if isinstance(path, RunStore) else RunStore(path)
    steps, curves = _read(store)
    budget, source = _budget(store, steps)
    rows = []
    for frac in fracs:
        try:
            at = _cut(None, frac, budget, int(steps[-1]) if len(steps) else None, model.at_frac)
        except ConfigError:
            break
        rows.append(_forecast(store, steps, curves, budget, source, at, model))
    return rows


def _forecast(store: RunStore, steps: np.ndarray, curves: dict[str, np.ndarray], budget: int, source: str,
              at: int, model: fc.ForecastModel) -> dict[str, Any]:
    """One run's forecast row at ``at`` from its curves read already (:func:`forecast_store`)."""
    row: dict[str, Any] = {"run": store.name, "path": str(store.path), "status": store.status, "at": at,
                           "at_frac": at / budget, "budget": budget, "budget_source": source}
    sig = _signals(store, steps, curves, at, budget)
    generalized, unknown = _generalized_by(steps, curves, at, model.criteria)
    row["known"] = None if unknown else generalized is not None
    row["generalized_at"] = generalized
    diverged = store.attrs.get("diverged_at")
    if generalized is not None:
        row.update(feature_set=None, p_generalize=1.0, predicted_generalization_step=generalized,
                   interval_80=[generalized, generalized], advice="continue", stop_threshold=None,
                   compute_saved_steps=0, reason=f"already generalized at step {generalized} (known, not predicted)")
    elif diverged is not None and diverged <= at:
        row.update(fc.predict(model, {}, at=at, budget=budget))
        row["reason"] = f"abstained: the run diverged at step {diverged}"
    else:
        row.update(fc.predict(model, sig, at=at, budget=budget))
        if unknown:
            row["reason"] += f" (whether it generalized by step {at} is unknown: {unknown})"
    if abs(at / budget - model.at_frac) > 0.5 * model.at_frac and row["feature_set"] is not None:
        row["note"] = f"the model was fitted at {model.at_frac:g} of the budget; at {at / budget:.3g} it extrapolates"
    row["signals"] = {k: (None if math.isnan(v) else v) for k, v in sig.items()}
    return row


def forecast_runs(paths: Iterable[str | os.PathLike], *, at: int | None = None, at_frac: float | None = None,
                  model: fc.ForecastModel | None = None, criteria: Criteria | None = None) -> list[dict[str, Any]]:
    """:func:`forecast_store` for every run named or found under ``paths``; among several runs, one that cannot
    be forecast (``--at`` beyond it, not a store …) gets an ``error`` row (:func:`per_run`)."""
    model = load_model() if model is None else model
    check_cut(at, at_frac)  # flag errors stop the call; only a run's own problems become error rows
    _check_criteria(model, criteria)
    return per_run(paths, lambda store: forecast_store(store, at=at, at_frac=at_frac, model=model))


# --- fitting and backtesting on finished runs ------------------------------------------------------------

def _labelled(paths: Iterable[str | os.PathLike], at_frac: float, criteria: Criteria) -> tuple[list[dict], int]:
    """Every finished run that has the criterion's metric: its signals at ``at_frac`` of its budget and its
    true generalization step (``None`` if never); and how many runs were skipped (unfinished, unlabelled)."""
    found = find_runs(paths)
    rows, skipped = [], 0
    for path, label in zip(found, run_labels(found)):
        try:
            store = RunStore(path)
            if store.status not in FINISHED:
                skipped += 1
                continue
            steps, curves = _read(store)
            budget, _ = _budget(store, steps)
            truth, unknown = _generalized_by(steps, curves, int(steps[-1]) if len(steps) else 0, criteria)
        except GrokscopeError:
            unknown = "unreadable"
        if unknown:
            skipped += 1
            continue
        at = int(round(at_frac * budget))
        rows.append({"run": label, "path": str(path), "budget": budget, "at": at,
                     "signals": _signals(store, steps, curves, at, budget), "generalization_step": truth,
                     "known": truth is not None and truth <= at,
                     "diverged_early": store.attrs.get("diverged_at") is not None and store.attrs["diverged_at"] <= at})
    return rows, skipped


def fit_model(paths: Iterable[str | os.PathLike], *, at_frac: float = 0.1, criteria: Criteria = Criteria(),
              miss_rate: float = 0.05) -> fc.ForecastModel:
    """Fit a forecast model on the finished runs under ``paths``, cut at ``at_frac`` of each budget.  Runs that
    generalized by the cut are known and left out; the provenance records what the model was fitted on."""
    if not 0 < at_frac < 1:
        raise ConfigError(f"--at-frac must be in (0, 1), got {at_frac}")
    paths = [Path(p) for p in paths]
    rows, skipped = _labelled(paths, at_frac, criteria)
    fit_rows = [r for r in rows if not r["known"] and not r["diverged_early"]]
    if not fit_rows:
        raise ConfigError("no finished runs to fit on (each must be complete or diverged and log the "
                          "criterion's metric)")
    from sklearn import __version__ as sklearn_version

    from grokscope import __version__ as version

    provenance = {"fitted_on": [str(p) for p in paths], "n_runs": len(rows), "n_known": len(rows) - len(fit_rows),
                  "n_skipped": skipped, "n_groks": sum(r["generalization_step"] is not None for r in fit_rows),
                  "budgets": sorted({r["budget"] for r in rows}), "grokscope": version,
                  "scikit_learn": sklearn_version, "created": datetime.date.today().isoformat()}
    return fc.fit(fit_rows, criteria=criteria, at_frac=at_frac, miss_rate=miss_rate, provenance=provenance)


def backtest(paths: Iterable[str | os.PathLike], *, model: fc.ForecastModel | None = None,
             at_frac: float | None = None, criteria: Criteria | None = None) -> dict[str, Any]:
    """Score ``model`` on the finished runs under ``paths`` (runs it was not fitted on): AUROC of the grok call,
    median |ln(predicted / true step)|, 80 % interval coverage, compute saved by the stop advice and groks
    missed (:func:`grokscope.analysis.measures.forecast.scores`), overall and with each feature set forced."""
    model = load_model() if model is None else model
    _check_criteria(model, criteria)
    at_frac = model.at_frac if at_frac is None else at_frac
    if not 0 < at_frac < 1:
        raise ConfigError(f"--at-frac must be in (0, 1), got {at_frac}")
    rows, skipped = _labelled(paths, at_frac, model.criteria)
    if not rows:
        raise ConfigError("no finished runs to backtest on")

    def forecasts(feature_set: str | None) -> list[dict[str, Any]]:
        out = []
        for r in rows:
            if r["known"]:
                pred = {"p_generalize": 1.0, "advice": "continue"}
            elif r["diverged_early"]:
                pred = fc.predict(model, {}, at=r["at"], budget=r["budget"])
            else:
                pred = fc.predict(model, r["signals"], at=r["at"], budget=r["budget"], feature_set=feature_set)
            out.append({"run": r["run"], "at": r["at"], "budget": r["budget"], "known": r["known"],
                        "true_generalization_step": r["generalization_step"], **pred})
        return out

    runs = forecasts(None)
    overall = fc.scores(runs)
    return {"at_frac": at_frac, "n_skipped": skipped, "model": dict(model.provenance), **overall,
            "targets_met": fc.targets_met(overall),
            "by_feature_set": {sub.name: fc.scores(forecasts(sub.name)) for sub in model.submodels},
            "runs": [{k: r.get(k) for k in ("run", "at", "budget", "known", "feature_set", "p_generalize",
                                            "predicted_generalization_step", "interval_80", "advice",
                                            "true_generalization_step")} for r in runs]}  # fc.scores reads these
