"""Smoothing of noisy training curves (loss, accuracy, norms) that may contain NaN gaps.

Two smoothers, both NaN-aware because test metrics are often evaluated only every few steps:

* :func:`ema` -- TensorBoard's debiased exponential moving average (the slider in its scalar dashboard).
* :func:`gaussian` -- a Gaussian kernel with ``sigma`` in samples; seed 002 (Zhu et al., App. F) smooths
  accuracy with sigma = 100 steps before reading threshold-crossing steps.

:func:`smooth` dispatches on a method name so that configs and CLI flags can carry ``(method, amount)``.
"""

from __future__ import annotations

import numpy as np

from grokscope.errors import ConfigError

__all__ = ["ema", "gaussian", "smooth", "METHODS"]

METHODS = (None, "none", "ema", "gaussian")


def _as_curve(values: np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ConfigError(f"values must be 1-D, got shape {x.shape}")
    return x


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's debiased exponential moving average.

    ``last = weight * last + (1 - weight) * v`` over the finite entries, each output divided by
    ``1 - weight**n`` (n = number of finite entries seen so far) so the start is not pulled towards 0.
    Non-finite entries are skipped: they come out unchanged and leave the state untouched.

    Parameters
    ----------
    values : array_like, shape (n,)
    weight : float in [0, 1); 0 returns a copy.

    Returns
    -------
    ndarray, shape (n,), float64

    Examples
    --------
    >>> ema([1.0, float("nan"), 3.0], 0.5).round(4).tolist()
    [1.0, nan, 2.3333]
    """
    x = _as_curve(values)
    if not 0.0 <= weight < 1.0:
        raise ConfigError(f"ema weight must be in [0, 1), got {weight}")
    out = x.copy()
    if weight == 0.0:
        return out
    finite = np.isfinite(x)
    v = x[finite]  # (m,) the entries the recursion sees
    from scipy.signal import lfilter  # scipy.signal takes ~0.5 s to import: only when smoothing

    last = lfilter([1.0 - weight], [1.0, -weight], v)  # last_n = w*last_{n-1} + (1-w)*v_n, last_0 = 0
    n_seen = np.arange(1, v.size + 1)
    out[finite] = last / (1.0 - weight**n_seen)
    return out


def gaussian(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing (sigma in samples) by normalised convolution over the finite entries.

    Smooth ``values * mask`` and ``mask`` with the same kernel (``gaussian_filter1d``, ``mode="nearest"``)
    and divide, so a NaN gap is filled from its neighbours instead of poisoning them. The output is NaN only
    where no finite input lies within the kernel's reach (mask weight ~0).  The kernel reaches 4σ (scipy's
    default), but at most ``4n + 1`` samples: identical for σ ≤ n, and a huge σ costs O(n²), not O(σ) memory.

    Parameters
    ----------
    values : array_like, shape (n,)
    sigma : float >= 0, in samples (not steps); 0 returns a copy.

    Returns
    -------
    ndarray, shape (n,), float64

    Examples
    --------
    >>> gaussian([1.0, float("nan"), 1.0], 2.0).tolist()  # the gap is filled, not poisoned
    [1.0, 1.0, 1.0]
    """
    x = _as_curve(values)
    if not (np.isfinite(sigma) and sigma >= 0):
        raise ConfigError(f"gaussian sigma must be finite and >= 0, got {sigma}")
    if sigma == 0 or x.size == 0:
        return x.copy()
    mask = np.isfinite(x).astype(np.float64)  # (n,)
    radius = min(int(4.0 * sigma + 0.5), 4 * x.size + 1)  # scipy's 4σ, cut where only edge padding is left
    from scipy.ndimage import gaussian_filter1d

    num = gaussian_filter1d(np.where(mask > 0, x, 0.0), sigma, mode="nearest", radius=radius)  # (n,)
    den = gaussian_filter1d(mask, sigma, mode="nearest", radius=radius)  # (n,)
    out = np.full_like(x, np.nan)
    ok = den > 1e-12
    out[ok] = num[ok] / den[ok]
    return out


def smooth(values: np.ndarray, method: str | None, amount: float) -> np.ndarray:
    """Smooth a curve by name: ``None``/``"none"`` (copy), ``"ema"`` (weight) or ``"gaussian"`` (sigma).

    Examples
    --------
    >>> smooth([1.0, 2.0, 3.0], "none", 0.0).tolist()
    [1.0, 2.0, 3.0]
    """
    if method is None or method == "none":
        return _as_curve(values).copy()
    if method == "ema":
        return ema(values, amount)
    if method == "gaussian":
        return gaussian(values, amount)
    raise ConfigError(f"unknown smoothing method {method!r}; expected one of {METHODS}")
