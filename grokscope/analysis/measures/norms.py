"""Weight-norm dynamics of Zhu et al. (seed 002, eqs. 6-7) and per-layer weight histograms (Fig. 5).

Under weight decay the total weight norm decays roughly exponentially, ``w(t) ≈ w0·exp(−γ(t − start))``
(eq. 6), and the model generalizes once the norm has fallen to a "good" norm ``w*``, so the
generalization step is predicted by ``t = start + ln(w0 / w*) / γ`` (eq. 7).

:func:`fit_exponential_decay` fits eq. 6 by ordinary least squares on ``log w`` over a window (closed
form, identical to ``np.polyfit(t − start, log w, 1)``; it weights relative errors equally, which suits
a quantity spanning orders of magnitude); :func:`predicted_generalization_step` evaluates eq. 7;
:func:`weight_histograms` bins one layer's weights across checkpoints with one shared set of edges so
the histograms can be drawn as a heat-map over training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grokscope.errors import ConfigError

__all__ = ["DecayFit", "fit_exponential_decay", "predicted_generalization_step", "weight_histograms"]


@dataclass(frozen=True)
class DecayFit:
    """Fit of ``w(t) ≈ w0·exp(−gamma·(t − start))`` on ``start ≤ t ≤ stop``."""

    w0: float  # fitted norm at t = start
    gamma: float  # decay rate, 1/steps (> 0 means decaying)
    start: float  # window start (steps)
    stop: float  # window end (steps)
    r2: float  # coefficient of determination of the fit on log w


def fit_exponential_decay(
    steps: np.ndarray, w: np.ndarray, start: float | None = None, stop: float | None = None
) -> DecayFit:
    """Fit eq. 6, ``w(t) ≈ w0·exp(−γ(t − start))``, by least squares on ``log w``.

    Parameters
    ----------
    steps : array_like, shape (n,)
    w : array_like, shape (n,)
        Weight norm per step; non-finite points are ignored, values in the window must be > 0.
    start, stop : float, optional
        Inclusive window in steps; default the first / last finite point.

    Returns
    -------
    DecayFit

    Examples
    --------
    >>> t = np.arange(0.0, 5000.0)
    >>> fit = fit_exponential_decay(t, 40.0 * np.exp(-1e-3 * t), start=1000)
    >>> round(fit.gamma, 9), round(fit.w0, 6)
    (0.001, 14.715178)
    """
    steps = np.asarray(steps, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if steps.ndim != 1 or w.shape != steps.shape:
        raise ConfigError(f"steps and w must be 1-D of equal length, got {steps.shape} and {w.shape}")
    ok = np.isfinite(steps) & np.isfinite(w)
    if not ok.any():
        raise ConfigError("no finite (step, w) points to fit")
    start = float(steps[ok].min()) if start is None else float(start)
    stop = float(steps[ok].max()) if stop is None else float(stop)
    if not start < stop:
        raise ConfigError(f"window start must be < stop, got start={start}, stop={stop}")
    ok &= (steps >= start) & (steps <= stop)
    x, w_win = steps[ok] - start, w[ok]  # (m,)
    if np.unique(x).size < 2:
        raise ConfigError("need at least two distinct steps in the fit window")
    if np.any(w_win <= 0):
        raise ConfigError("w must be > 0 in the fit window (the fit is on log w)")

    y = np.log(w_win)  # (m,)
    xm, ym = x.mean(), y.mean()
    slope = np.sum((x - xm) * (y - ym)) / np.sum((x - xm) ** 2)
    intercept = ym - slope * xm  # log w at t = start
    ss_res = np.sum((y - intercept - slope * x) ** 2)
    ss_tot = np.sum((y - ym) ** 2)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return DecayFit(float(np.exp(intercept)), float(-slope), start, stop, float(r2))


def predicted_generalization_step(fit: DecayFit, w_star: float) -> float | None:
    """Eq. 7: the step at which the fitted norm reaches ``w_star``, ``start + ln(w0 / w*) / γ``.

    Returns None when the fit does not decay (γ ≤ 0) or when ``w_star > w0`` (the norm is already below
    ``w*`` at the window start, so eq. 7 would point backwards before the fit window).

    Examples
    --------
    >>> fit = DecayFit(w0=40.0, gamma=1e-3, start=0.0, stop=5000.0, r2=1.0)
    >>> round(predicted_generalization_step(fit, 20.0), 6)
    693.147181
    """
    if not (np.isfinite(w_star) and w_star > 0):
        raise ConfigError(f"w_star must be finite and > 0, got {w_star}")
    if fit.gamma <= 0 or w_star > fit.w0:
        return None
    return float(fit.start + np.log(fit.w0 / w_star) / fit.gamma)


def weight_histograms(
    weights: np.ndarray, bins: int = 50, range: tuple[float, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram each checkpoint of one layer's weights on one shared set of bin edges (seed 002, Fig. 5).

    Parameters
    ----------
    weights : array_like, shape (n_ckpt, ...)
        A stack of checkpoints of the same parameter; trailing axes are flattened.
    bins : int
        Number of equal-width bins.
    range : (float, float), optional
        Lower and upper edge; default the min and max over all checkpoints. Values outside are dropped,
        the last bin includes its right edge (as ``np.histogram``).

    Returns
    -------
    counts : ndarray, shape (n_ckpt, bins), int64
    edges : ndarray, shape (bins + 1,)

    Examples
    --------
    >>> counts, edges = weight_histograms(np.array([[0.0, 1.0], [0.5, 0.5]]), bins=2)
    >>> counts.tolist(), edges.tolist()
    ([[1, 1], [0, 2]], [0.0, 0.5, 1.0])
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim < 2 or w.shape[0] == 0 or w[0].size == 0:
        raise ConfigError(f"weights must have shape (n_ckpt, ...) with n_ckpt, size > 0, got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ConfigError("weights must be finite")
    if not (isinstance(bins, (int, np.integer)) and bins >= 1):
        raise ConfigError(f"bins must be a positive integer, got {bins}")
    if range is not None and not (np.all(np.isfinite(range)) and range[0] < range[1]):
        raise ConfigError(f"range must be finite (lo, hi) with lo < hi, got {range}")
    flat = w.reshape(w.shape[0], -1)  # (n_ckpt, m)
    edges = np.histogram_bin_edges(flat, bins=int(bins), range=range)  # (bins + 1,)

    idx = np.searchsorted(edges, flat, side="right") - 1  # (n_ckpt, m) bin of each weight
    idx[flat == edges[-1]] = bins - 1  # right edge closed, as np.histogram
    inside = (flat >= edges[0]) & (flat <= edges[-1])
    rows = np.broadcast_to(np.arange(flat.shape[0])[:, None], flat.shape)
    counts = np.bincount(rows[inside] * bins + idx[inside], minlength=flat.shape[0] * bins)
    return counts.reshape(flat.shape[0], bins).astype(np.int64), edges
