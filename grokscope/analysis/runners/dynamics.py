"""How a run's weights moved: L2-norm trajectories, the decay fit and seed 002's predicted generalization time.

Reads a run store (native or imported) and combines the pure measures of :mod:`grokscope.analysis.measures.norms` and
:func:`grokscope.analysis.measures.fourier.loss_spectrum`:

* total and per-layer L2 norm over steps (per layer = √Σ of its parameters' squared norms);
* the fit ``w(t) ≈ w0·exp(−γ(t − start))`` over the window after memorization — from the memorization step
  to the generalization step (or the last step if the run never generalized), overridable;
* seed 002's eq. 7, ``t = start + ln(w0/w*)/γ``.  ``w*`` (the norm at which the model generalizes) is not
  known in advance; by default it is the norm this run had when it generalized, so predicted vs observed
  tests whether the exponential-decay account explains the delay; ``w_star=`` sets it (e.g. from another
  run);
* the classifier layer's weight distribution over checkpoints (seed 002 Fig. 5) as histogram counts;
* the early training-loss spectrum (Notsawo et al.): power of the log train loss over the first
  ``n_early`` steps, linearly detrended (so the loss's overall fall does not swamp its oscillations),
  summarised by its peak period and the share of power at periods under 20 steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from grokscope.analysis.measures.fourier import loss_spectrum
from grokscope.analysis.measures.norms import (
    DecayFit,
    fit_exponential_decay,
    predicted_generalization_step,
    weight_histograms,
)
from grokscope.analysis.measures.onset import Criteria, generalization_step, memorization_step
from grokscope.errors import ConfigError, StoreError
from grokscope.store.reader import RunStore

HF_PERIOD = 20  # steps: oscillations faster than this count as high-frequency in the loss spectrum


def layer_of(param: str) -> str:
    """The layer a parameter belongs to: ``blocks.0.attn.qkv.weight`` → ``blocks.0``, ``embed.weight`` →
    ``embed``, ``layers.2.bias`` → ``layers.2``."""
    parts = param.split(".")
    if len(parts) >= 3 and parts[1].isdigit():
        return ".".join(parts[:2])
    return parts[0] if len(parts) > 1 else param


def layer_norms(param_names: list[str], param_norm: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Per-layer norms ``(step, layer)`` from per-parameter norms ``(step, param)``."""
    layers = list(dict.fromkeys(layer_of(name) for name in param_names))
    members = np.array([[layer_of(name) == layer for name in param_names] for layer in layers])  # (L, P)
    return layers, np.sqrt(np.square(param_norm) @ members.T)  # (step, L)


def decay_fit(steps: np.ndarray, l2: np.ndarray, memorized: int | None, generalized: int | None,
              start: int | None = None, stop: int | None = None) -> DecayFit | None:
    """Eq. 6 fitted over the window after memorization: from the memorization step (default) to the
    generalization step, or the last step if the run never generalized; None if the window holds < 2 norms."""
    valid = np.isfinite(l2) & (l2 > 0)
    if valid.sum() < 2:
        return None
    start = start if start is not None else (memorized if memorized is not None else int(steps[valid][0]))
    stop = stop if stop is not None else (generalized if generalized is not None else int(steps[valid][-1]))
    window = valid & (steps >= start) & (steps <= stop)
    if window.sum() < 2 or stop <= start:
        return None
    return fit_exponential_decay(steps[window], l2[window], start=start, stop=stop)


def norm_step_at_or_before(steps: np.ndarray, l2: np.ndarray, step: int) -> int | None:
    """The last step ≤ ``step`` with a finite, positive norm, or None.  Imported runs log L2 only at their
    checkpoints, so the norm "at" the generalization step is the latest one logged by then."""
    valid = np.flatnonzero(np.isfinite(l2) & (l2 > 0) & (steps <= step))
    return int(steps[valid[-1]]) if valid.size else None


@dataclass(frozen=True)
class DynamicsOptions:
    criteria: Criteria = Criteria()
    fit_start: int | None = None  # default: the memorization step
    fit_stop: int | None = None  # default: the generalization step, else the last step
    w_star: float | None = None  # default: the run's own norm at its generalization step
    bins: int = 50  # histogram bins of the classifier layer's weights
    n_early: int | None = None  # loss-spectrum window (default: up to the memorization step, ≥ 32 steps)

    def __post_init__(self) -> None:
        if self.w_star is not None and not (math.isfinite(self.w_star) and self.w_star > 0):
            raise ConfigError(f"w_star must be finite and > 0, got {self.w_star}")
        if not (isinstance(self.bins, (int, np.integer)) and self.bins >= 1):
            raise ConfigError(f"bins must be a positive integer, got {self.bins}")
        if self.n_early is not None and self.n_early < 4:
            raise ConfigError(f"n_early must be at least 4 steps, got {self.n_early}")
        if self.fit_start is not None and self.fit_stop is not None and self.fit_start >= self.fit_stop:
            raise ConfigError(f"fit_start must be < fit_stop, got {self.fit_start} and {self.fit_stop}")


def run_dynamics(store: RunStore, options: DynamicsOptions = DynamicsOptions()) -> tuple[dict, dict]:
    """``(summary, arrays)`` for one run: JSON-able numbers, and ``name → (dims, values)`` for the store.

    The summary's keys include ``decay_rate`` (γ, 1/steps), ``predicted_generalization_step`` and
    ``generalization_step``.
    """
    if not store.has("l2_norm"):
        raise StoreError(f"{store.path} logs no l2_norm; L2 dynamics need it")
    curves = store.read_many(["step", "l2_norm", *(n for n in ("train_acc", "test_acc", "train_loss",
                                                               "test_loss", "batch_loss") if store.has(n))])
    steps, l2 = curves.pop("step"), curves.pop("l2_norm")
    memorized = memorization_step(steps, curves, options.criteria)
    generalized = generalization_step(steps, curves, options.criteria)
    valid = np.isfinite(l2) & (l2 > 0)
    if valid.sum() < 2:
        raise StoreError(f"{store.path} has fewer than two finite L2 norms; L2 dynamics need them")

    fit = decay_fit(steps, l2, memorized, generalized, options.fit_start, options.fit_stop)
    w_star, w_star_source, w_star_step = options.w_star, "given", None
    if w_star is None and generalized is not None:
        w_star_step = norm_step_at_or_before(steps, l2, generalized)
        if w_star_step is not None:
            w_star, w_star_source = float(l2[np.searchsorted(steps, w_star_step)]), "observed"
    predicted = predicted_generalization_step(fit, w_star) if fit and w_star is not None else None

    summary: dict[str, Any] = {
        "run": store.name, "path": str(store.path),
        "memorization_step": memorized, "generalization_step": generalized,
        "fit_start": fit.start if fit else None, "fit_stop": fit.stop if fit else None,
        "decay_rate": fit.gamma if fit else None, "w0": fit.w0 if fit else None, "fit_r2": fit.r2 if fit else None,
        "w_star": w_star, "w_star_source": w_star_source if w_star is not None else None,
        "w_star_step": w_star_step,
        "predicted_generalization_step": None if predicted is None else round(predicted, 1),
        "l2_initial": float(l2[valid][0]), "l2_final": float(l2[valid][-1]),
    }
    arrays: dict[str, tuple[tuple[str, ...], np.ndarray]] = {"step": (("step",), steps)}

    if store.has("param_norm") and store.has("param"):
        names = [str(n) for n in store.read("param")]
        layers, norms = layer_norms(names, store.read("param_norm"))
        arrays["layer"] = (("layer",), np.array(layers))
        arrays["layer_norm"] = (("step", "layer"), norms)
        summary["layers"] = {layer: {"initial": _finite(norms[0, i]), "final": _finite(norms[-1, i])}
                             for i, layer in enumerate(layers)}

    classifier = store.attrs.get("model", {}).get("param_roles", {}).get("unembedding")
    if classifier and store.n_ckpts and classifier in store.param_names():
        weights, ckpt_steps = store.read_param(classifier), store.checkpoint_steps()
        summary["classifier"] = classifier
        bad = ~np.isfinite(weights.reshape(len(weights), -1)).all(axis=1)  # (ckpt,)
        if bad.any():  # a diverged run: no shared bins exist; say so instead of failing the whole analysis
            summary["classifier_hist"] = f"unavailable: non-finite weights at checkpoint step {ckpt_steps[bad][0]}"
        else:
            counts, edges = weight_histograms(weights, bins=options.bins)
            arrays.update({"ckpt_step": (("ckpt",), ckpt_steps), "classifier_hist": (("ckpt", "bin"), counts),
                           "classifier_edges": (("edge",), edges)})

    # the spectrum needs the loss of every step: a mini-batched run's train_loss is logged at evaluations only
    per_step = curves.get("batch_loss", curves.get("train_loss"))
    summary.update(_loss_spectrum(steps, per_step, memorized, options.n_early, arrays))
    return summary, arrays


def _loss_spectrum(steps, train_loss, memorized, n_early, arrays) -> dict[str, Any]:
    """The spectrum over the first steps (up to memorization, at least 32), on logged points one step apart;
    a log with gaps there (sparse or imported) gets none, since its points are not a time series in steps."""
    if train_loss is None:
        return {}
    ok = np.isfinite(train_loss) & (train_loss > 0)
    window = n_early or max(32, memorized or 0)
    early = ok & (steps < steps[0] + window) if len(steps) else ok
    if not np.all(np.diff(steps[early]) == 1):
        return {}
    finite = train_loss[early]
    n = len(finite)
    if n < 4:
        return {}
    from scipy.signal import detrend  # slow to import: only here

    freqs, power = loss_spectrum(detrend(np.log(finite[:n]), type="linear"))
    arrays["loss_spectrum_freq"] = (("freq",), freqs)
    arrays["loss_spectrum_power"] = (("freq",), power)
    ac = power[1:]
    peak = int(np.argmax(ac)) + 1 if ac.sum() > 0 else None
    return {"loss_spectrum_n_early": n,
            "loss_spectrum_peak_period": None if peak is None else float(1 / freqs[peak]),
            "loss_spectrum_hf_fraction": float(ac[freqs[1:] > 1 / HF_PERIOD].sum() / ac.sum()) if ac.sum() else None}


def _finite(x: float) -> float | None:
    return None if not math.isfinite(float(x)) else float(x)
