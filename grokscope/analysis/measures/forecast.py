"""Forecasting a run from its first steps: will it generalize within its budget, when, and should it stop?

Pure numpy and scikit-learn on arrays.  Three parts, read top to bottom:

* :func:`signals` — the features of one run cut at step ``at`` (nothing after ``at`` is looked at): train- and
  test-loss level, the test-loss trend, train and test accuracy so far, and the weight-norm contraction of
  seed 002 (delay ≈ ln(‖θ_mem‖/‖θ*‖)/γ: the decay rate γ and the contraction so far).  Steps are measured in
  units of the run's budget (its configured steps), so runs of different lengths share one model.
  :func:`config_signals` adds what the run's config says before it starts (learning rate, weight decay,
  training-set size), for the richest feature set.
* :class:`ForecastModel` — one :class:`SubModel` per feature set (``config``, ``full``, ``no_l2``, ``losses``): a
  standardizer, a logistic regression for P(generalizes within the budget), a linear model of
  ln(generalization step / budget) fitted on the runs that did, its out-of-fold residual quantiles (the 80 %
  interval, split-conformal style) and the stop threshold on P chosen on out-of-fold predictions so that at
  most ``miss_rate`` of the fit set's groks would have been stopped.  Plain JSON (:meth:`ForecastModel.to_json`),
  never pickle; predictions are evaluated here from the stored coefficients.
* :func:`fit`, :func:`predict`, :func:`scores` — the fit (scikit-learn), one run's forecast, backtest scores.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from grokscope.analysis.measures.norms import fit_exponential_decay
from grokscope.analysis.measures.onset import Criteria
from grokscope.errors import ConfigError

SCHEMA = "grokscope_forecast_model"
SCHEMA_VERSION = 1
LOSS_FLOOR = 1e-12  # losses logged as 0 count as this before the log

# The run's own settings, known before it starts (native stores; imports have none): log10 of each.
CONFIG_SIGNALS = {"lr_log": "lr", "weight_decay_log": "weight_decay", "n_train_log": "n_train"}
# Each feature set, richest first; a run is forecast by the first whose signals it has (all finite).
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "config": ("train_loss_log", "test_loss_log", "test_loss_trend", "train_acc", "test_acc", "test_acc_max",
               "l2_contraction", "l2_decay_log", *CONFIG_SIGNALS),
    "full": ("train_loss_log", "test_loss_log", "test_loss_trend", "train_acc", "test_acc", "test_acc_max",
             "l2_contraction", "l2_decay_log"),
    "no_l2": ("train_loss_log", "test_loss_log", "test_loss_trend", "train_acc", "test_acc", "test_acc_max"),
    "losses": ("train_loss_log", "test_loss_log", "test_loss_trend"),
}
SIGNALS = tuple(dict.fromkeys(name for names in FEATURE_SETS.values() for name in names))


# --- signals ---------------------------------------------------------------------------------------------

def _valid(steps: np.ndarray, values: np.ndarray | None, lo: float, at: int) -> tuple[np.ndarray, np.ndarray]:
    """The finite points of a curve with ``lo ≤ step ≤ at``: ``(steps (m,), values (m,))``."""
    if values is None:
        return np.empty(0), np.empty(0)
    values = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(values) & (steps >= lo) & (steps <= at)
    return steps[keep].astype(np.float64), values[keep]


def signals(steps: np.ndarray, curves: Mapping[str, np.ndarray], at: int, budget: int) -> dict[str, float]:
    """The forecast's features of one run from its curves up to step ``at`` (inclusive); NaN where a curve is
    missing or has too few points (a trend needs 2 evaluations in the second half of ``[0, at]``).

    ``curves`` maps ``train_loss``, ``test_loss``, ``train_acc``, ``test_acc``, ``l2_norm`` (any subset) to
    arrays shaped like ``steps`` (n,), NaN where not evaluated.  Trends are per budget: a test loss that
    falls one decade over the whole budget has ``test_loss_trend`` −1; ``l2_decay_log`` is log10 of γ·budget
    (γ the fitted exponential decay rate of the L2 norm over the second half of ``[0, at]``, floored at 0.01).

    Examples
    --------
    >>> t = np.arange(0, 1001)
    >>> s = signals(t, {"test_loss": 10.0 ** (-t / 1000), "l2_norm": 40 * np.exp(-2e-3 * t)}, 500, 1000)
    >>> round(s["test_loss_trend"], 6), round(s["l2_decay_log"], 6), round(s["l2_contraction"], 6)
    (-1.0, 0.30103, -1.0)
    """
    steps = np.asarray(steps, dtype=np.float64)  # (n,)
    out = dict.fromkeys(SIGNALS, math.nan)
    half = at / 2
    for name in ("train_loss", "test_loss"):
        t, v = _valid(steps, curves.get(name), 0, at)
        if len(t):
            out[f"{name}_log"] = float(np.log10(max(v[-1], LOSS_FLOOR)))
    t, v = _valid(steps, curves.get("test_loss"), half, at)
    if np.unique(t).size >= 2:
        out["test_loss_trend"] = float(np.polyfit(t / budget, np.log10(np.maximum(v, LOSS_FLOOR)), 1)[0])
    for name in ("train_acc", "test_acc"):
        t, v = _valid(steps, curves.get(name), 0, at)
        if len(t):
            out[name] = float(v[-1])
            if name == "test_acc":
                out["test_acc_max"] = float(v.max())
    t, v = _valid(steps, curves.get("l2_norm"), 0, at)
    if len(t) >= 3 and np.all(v > 0):
        out["l2_contraction"] = float(np.log(v[-1] / v[0]))  # ln(‖θ_at‖ / ‖θ_0‖)
        late = t >= half
        if np.unique(t[late]).size >= 2:
            gamma = fit_exponential_decay(t[late], v[late]).gamma
            out["l2_decay_log"] = float(np.log10(max(gamma * budget, 0.01)))
    return out


def config_signals(config: Mapping[str, Any]) -> dict[str, float]:
    """The :data:`CONFIG_SIGNALS` of a run's config: log10 of its learning rate, weight decay and training-set
    size (NaN where absent or not positive, e.g. no weight decay, or an import without a config).

    Examples
    --------
    >>> config_signals({"lr": 1e-3, "weight_decay": 1.0, "n_train": 100})
    {'lr_log': -3.0, 'weight_decay_log': 0.0, 'n_train_log': 2.0}
    """
    out = {}
    for name, key in CONFIG_SIGNALS.items():
        value = config.get(key)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
        out[name] = float(np.log10(value)) if ok else math.nan
    return out


# --- the model -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SubModel:
    """The fitted forecast on one feature set (every array as a tuple of floats, so the dataclass is frozen
    and its JSON exact)."""

    name: str
    features: tuple[str, ...]
    scaler_mean: tuple[float, ...]  # (k,) the standardizer: z = (x − mean) / scale
    scaler_scale: tuple[float, ...]  # (k,)
    clf_coef: tuple[float, ...]  # (k,) logistic regression on z: P(generalizes within the budget)
    clf_intercept: float
    reg_coef: tuple[float, ...]  # (k,) linear model on z of ln(generalization step / budget)
    reg_intercept: float
    residual_q10: float  # out-of-fold residual quantiles of ln(step): the 80 % interval
    residual_q90: float
    stop_threshold: float  # advise stopping when P < this
    n_fit: int  # runs fitted (not yet generalized at `at`)
    n_groks: int  # of which generalized within their budget
    oof_auroc: float | None  # out-of-fold AUROC on the fit set

    def p_generalize(self, x: np.ndarray) -> float:
        z = (x - np.array(self.scaler_mean)) / np.array(self.scaler_scale)
        return float(1 / (1 + np.exp(-(z @ np.array(self.clf_coef) + self.clf_intercept))))

    def log_step(self, x: np.ndarray) -> float:
        z = (x - np.array(self.scaler_mean)) / np.array(self.scaler_scale)
        return float(z @ np.array(self.reg_coef) + self.reg_intercept)


@dataclass(frozen=True)
class ForecastModel:
    """Sub-models (richest feature set first), the criteria the labels were made with, the cut ``at_frac``
    the model was fitted at, the miss rate its stop thresholds allow, and where it came from."""

    submodels: tuple[SubModel, ...]
    criteria: Criteria
    at_frac: float
    miss_rate: float = 0.05
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        doc = {SCHEMA: SCHEMA_VERSION, "criteria": asdict(self.criteria), "at_frac": self.at_frac,
               "miss_rate": self.miss_rate, "provenance": dict(self.provenance),
               "submodels": [asdict(sub) for sub in self.submodels]}
        return json.dumps(doc, indent=1, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ForecastModel:
        """Raises :class:`ConfigError` for JSON that is not a forecast model, or one of a newer schema."""
        try:
            doc = json.loads(text)
        except ValueError:
            raise ConfigError("not a forecast model (not JSON)") from None
        if not isinstance(doc, dict) or SCHEMA not in doc:
            raise ConfigError("not a forecast model (no grokscope_forecast_model key)")
        if doc[SCHEMA] != SCHEMA_VERSION:
            raise ConfigError(f"forecast model schema {doc[SCHEMA]!r}; this grokscope reads {SCHEMA_VERSION}")
        try:
            subs = tuple(SubModel(**{k: tuple(v) if isinstance(v, list) else v for k, v in sub.items()})
                         for sub in doc["submodels"])
            return cls(subs, Criteria(**doc["criteria"]), float(doc["at_frac"]), float(doc["miss_rate"]),
                       dict(doc.get("provenance", {})))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"forecast model is malformed ({exc.__class__.__name__}: {exc})") from None


# --- fitting ---------------------------------------------------------------------------------------------

def _fit_submodel(name: str, X: np.ndarray, generalized: np.ndarray, log_step: np.ndarray,
                  miss_rate: float, folds: int, seed: int) -> SubModel:
    """X (n, k) features, generalized (n,) bool, log_step (n,) ln(step / budget) (NaN where not generalized)."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n_groks = int(generalized.sum())
    if n_groks < 3 or len(X) - n_groks < 3:
        raise ConfigError(f"{name}: need at least 3 runs that generalize and 3 that do not "
                          f"(have {n_groks} of {len(X)})")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    k = min(folds, n_groks, len(X) - n_groks)
    oof_p = cross_val_predict(clf, X, generalized, cv=StratifiedKFold(k, shuffle=True, random_state=seed),
                              method="predict_proba")[:, 1]  # (n,)
    clf.fit(X, generalized)
    reg = make_pipeline(StandardScaler(), Ridge(alpha=1.0))  # out-of-fold only: each fold its own scaling
    Xg, yg = X[generalized], log_step[generalized]
    oof_y = cross_val_predict(reg, Xg, yg, cv=KFold(min(folds, n_groks), shuffle=True, random_state=seed))
    residuals = yg - oof_y  # (n_groks,)
    scaler = clf[0]  # the classifier's standardizer, fitted on all X, serves both models
    ridge = Ridge(alpha=1.0).fit(scaler.transform(Xg), yg)
    w, b = ridge.coef_, float(ridge.intercept_)
    oof_groks = np.sort(oof_p[generalized])
    threshold = float(oof_groks[int(math.floor(miss_rate * n_groks))])  # P < this stops ≤ miss_rate of groks
    lr = clf[-1]
    return SubModel(name=name, features=FEATURE_SETS[name], scaler_mean=_t(scaler.mean_),
                    scaler_scale=_t(scaler.scale_), clf_coef=_t(lr.coef_[0]), clf_intercept=float(lr.intercept_[0]),
                    reg_coef=_t(w), reg_intercept=float(b), residual_q10=float(np.quantile(residuals, 0.1)),
                    residual_q90=float(np.quantile(residuals, 0.9)), stop_threshold=threshold, n_fit=len(X),
                    n_groks=n_groks, oof_auroc=float(roc_auc_score(generalized, oof_p)))


def _t(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def fit(rows: Sequence[Mapping[str, Any]], *, criteria: Criteria, at_frac: float, miss_rate: float = 0.05,
        folds: int = 5, seed: int = 0, provenance: Mapping[str, Any] | None = None) -> ForecastModel:
    """Fit one sub-model per feature set that has enough runs.

    ``rows``: one per run not yet generalized at its cut, ``{"signals": {name: value},
    "generalization_step": int | None, "budget": int}`` (the step from the whole run; ``None`` if it never
    generalized within its budget).  A feature set is fitted on the rows where all its signals are finite.
    Raises :class:`ConfigError` if no feature set can be fitted.
    """
    if not 0 < miss_rate < 1:
        raise ConfigError(f"miss rate must be in (0, 1), got {miss_rate}")
    subs, why = [], []
    gen = np.array([row["generalization_step"] is not None for row in rows], dtype=bool)  # (n,)
    log_step = np.array([math.log(row["generalization_step"] / row["budget"]) if row["generalization_step"]
                         else math.nan for row in rows])  # (n,)
    for name, features in FEATURE_SETS.items():
        X = np.array([[row["signals"][f] for f in features] for row in rows], dtype=np.float64)
        X = X.reshape(len(rows), len(features))  # (n, k)
        ok = np.all(np.isfinite(X), axis=1)
        try:
            subs.append(_fit_submodel(name, X[ok], gen[ok], log_step[ok], miss_rate, folds, seed))
        except ConfigError as exc:
            why.append(str(exc))
    if not subs:
        raise ConfigError("cannot fit a forecast model: " + "; ".join(why))
    return ForecastModel(tuple(subs), criteria, at_frac, miss_rate, dict(provenance or {}))


# --- forecasting one run ---------------------------------------------------------------------------------

def choose(model: ForecastModel, sig: Mapping[str, float], feature_set: str | None = None) -> SubModel | None:
    """The richest sub-model whose signals the run has (or the one named ``feature_set``, if it applies)."""
    for sub in model.submodels:
        if feature_set not in (None, sub.name):
            continue
        if all(math.isfinite(sig.get(f, math.nan)) for f in sub.features):
            return sub
    return None


def predict(model: ForecastModel, sig: Mapping[str, float], *, at: int, budget: int,
            feature_set: str | None = None) -> dict[str, Any]:
    """One run's forecast from its signals at ``at``: ``p_generalize``, ``predicted_generalization_step``
    (conditional on generalizing), ``interval_80``, ``advice`` (``stop``/``continue``) and the compute a stop
    saves; all ``None`` with a ``reason`` when no sub-model's signals are all there."""
    sub = choose(model, sig, feature_set)
    if sub is None:
        missing = sorted({f for s in model.submodels for f in s.features if not math.isfinite(sig.get(f, math.nan))})
        return {"feature_set": None, "p_generalize": None, "predicted_generalization_step": None,
                "interval_80": None, "advice": None, "stop_threshold": None, "compute_saved_steps": None,
                "reason": f"abstained: no feature set applies (missing or too sparse by step {at}: "
                          f"{', '.join(missing)})"}
    x = np.array([sig[f] for f in sub.features])
    p = sub.p_generalize(x)
    y = sub.log_step(x)
    step = lambda v: max(at + 1, int(round(budget * math.exp(v))))  # not generalized by `at`: later than it
    stop = p < sub.stop_threshold
    return {"feature_set": sub.name, "p_generalize": p, "predicted_generalization_step": step(y),
            "interval_80": [step(y + sub.residual_q10), step(y + sub.residual_q90)],
            "advice": "stop" if stop else "continue", "stop_threshold": sub.stop_threshold,
            "compute_saved_steps": budget - at if stop else 0,
            "reason": (f"P(generalize by step {budget}) = {p:.3f} < {sub.stop_threshold:.3f}" if stop else
                       f"P(generalize by step {budget}) = {p:.3f} ≥ {sub.stop_threshold:.3f}")}


# --- backtest scores -------------------------------------------------------------------------------------

def scores(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Backtest scores of forecast rows that also carry the truth (``true_generalization_step``, ``known``,
    ``budget``, ``at``).  Known runs (generalized by ``at``) are left out of every score but the compute
    shares; ``auroc_with_known`` counts them in with P = 1."""
    from sklearn.metrics import roc_auc_score

    scored = [r for r in rows if not r["known"] and r["p_generalize"] is not None]
    y = np.array([r["true_generalization_step"] is not None for r in scored], dtype=bool)
    p = np.array([r["p_generalize"] for r in scored], dtype=np.float64)
    both = [r for r in rows if r["known"] or r["p_generalize"] is not None]
    y_all = np.array([r["true_generalization_step"] is not None for r in both], dtype=bool)
    p_all = np.array([1.0 if r["known"] else r["p_generalize"] for r in both], dtype=np.float64)
    auc = lambda t, s: float(roc_auc_score(t, s)) if 0 < t.sum() < len(t) else None
    groks = [r for r in scored if r["true_generalization_step"] is not None]
    log_ratio = [abs(math.log(r["predicted_generalization_step"] / r["true_generalization_step"])) for r in groks]
    covered = [r["interval_80"][0] <= r["true_generalization_step"] <= r["interval_80"][1] for r in groks]
    stopped = [r for r in scored if r["advice"] == "stop"]
    saved = sum(r["budget"] - r["at"] for r in stopped)
    wasted = sum(r["budget"] - r["at"] for r in scored if r["true_generalization_step"] is None)
    saved_waste = sum(r["budget"] - r["at"] for r in stopped if r["true_generalization_step"] is None)
    missed = sum(r["true_generalization_step"] is not None for r in stopped)
    return {
        "n_runs": len(rows), "n_known": sum(bool(r["known"]) for r in rows),
        "n_abstained": sum(not r["known"] and r["p_generalize"] is None for r in rows),
        "n_scored": len(scored), "n_groks": len(groks),
        "auroc": auc(y, p), "auroc_with_known": auc(y_all, p_all),
        "median_abs_log_ratio": float(np.median(log_ratio)) if log_ratio else None,
        "interval_coverage": float(np.mean(covered)) if covered else None,
        "n_stopped": len(stopped), "groks_missed": missed,
        "groks_missed_frac": missed / len(groks) if groks else None,
        "compute_saved": saved / sum(r["budget"] for r in rows) if rows else None,  # share of the whole sweep
        "waste_saved": saved_waste / wasted if wasted else None,  # share of non-grokking runs' steps after `at`
    }


TARGETS = {"auroc": (">=", 0.9), "median_abs_log_ratio": ("<=", 0.3), "interval_coverage": ("in", (0.75, 0.9)),
           "waste_saved": (">=", 0.5), "groks_missed_frac": ("<=", 0.05)}


def targets_met(score: Mapping[str, Any]) -> dict[str, bool | None]:
    """The targets docs/forecast.md scores against, each met or not (``None`` where the score is undefined)."""
    out: dict[str, bool | None] = {}
    for key, (op, bound) in TARGETS.items():
        v = score.get(key)
        out[key] = None if v is None else (v >= bound if op == ">=" else v <= bound if op == "<=" else
                                           bound[0] <= v <= bound[1])
    return out
