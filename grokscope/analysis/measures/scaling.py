"""The two fits of a CDS study (seed 002): grokking time vs data size, and CDS vs model size.

``t(r) = a·r^(−γ) + b`` by ``scipy.optimize.curve_fit`` with standard errors from the covariance; ``CDS = c·N^β``
by a least-squares line in log-log (``scipy.stats.linregress``) with a t-interval on β.  Pure numpy/scipy.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from scipy import optimize, stats

from grokscope.errors import GrokscopeError


def _checked(fit: str, x, y, min_distinct: int, distinct: str, positive: str,
             positive_y: bool) -> tuple[np.ndarray, np.ndarray]:
    """``x, y`` as float64 arrays, or a GrokscopeError naming ``fit`` and what it needs: at least
    ``min_distinct`` distinct ``x`` (``distinct``), all positive (``positive``; ``y`` too if ``positive_y``)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(np.unique(x)) < min_distinct:
        raise GrokscopeError(f"{fit} needs {distinct}, got {len(np.unique(x))}")
    if (x <= 0).any() or (positive_y and (y <= 0).any()):
        raise GrokscopeError(f"{fit} needs {positive}")
    return x, y


class TimeFit(NamedTuple):
    """``t(r) = a·r^(−γ) + b`` with standard errors and a t-interval on γ."""

    a: float
    gamma: float
    b: float
    a_se: float
    gamma_se: float
    b_se: float
    gamma_lo: float
    gamma_hi: float
    n_points: int


def fit_grokking_time(x: np.ndarray, t: np.ndarray, *, level: float = 0.95) -> TimeFit:
    """Fit ``t = a·x^(−γ) + b`` by least squares (``scipy.optimize.curve_fit``).

    Both axes are scaled to order one before fitting (x by its geometric mean, t by its mean) and the result
    mapped back, covariance included; the start is the best γ on a grid with (a, b) solved linearly.
    Standard errors need more points than parameters (else NaN).

    Parameters
    ----------
    x : array_like, shape (m,), data sizes or fractions (positive; at least 3 distinct).
    t : array_like, shape (m,), grokking times (steps).

    Examples
    --------
    >>> r = np.array([0.2, 0.3, 0.5, 0.8, 1.0])
    >>> round(fit_grokking_time(r, 40 * r**-1.5 + 100).gamma, 6)
    1.5
    """
    x, t = _checked("the grokking-time fit", x, t, 3, "generalized runs at 3 or more data sizes",
                    "positive data sizes", positive_y=False)
    x_ref = float(np.exp(np.mean(np.log(x))))
    t_ref = float(np.mean(np.abs(t))) or 1.0
    u, v = x / x_ref, t / t_ref  # (m,), (m,) of order one

    def model(u, a, gamma, b):
        return a * u ** (-gamma) + b

    def linear_fit(gamma):
        design = np.stack([u ** (-gamma), np.ones_like(u)], axis=1)  # (m, 2)
        coef, *_ = np.linalg.lstsq(design, v, rcond=None)
        return coef, float(np.sum((design @ coef - v) ** 2))

    grid = np.linspace(0.05, 6.0, 120)
    gamma0 = grid[int(np.argmin([linear_fit(g)[1] for g in grid]))]
    (a0, b0), _ = linear_fit(gamma0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optimize.OptimizeWarning)  # no dof left: covariance is inf
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow while the optimizer explores large γ
        popt, pcov = optimize.curve_fit(model, u, v, p0=(a0, gamma0, b0), xtol=1e-14, ftol=1e-14,
                                        maxfev=20_000)
    a_u, gamma, b_u = popt
    scale = x_ref**gamma
    jac = np.array([[t_ref * scale, t_ref * a_u * scale * np.log(x_ref), 0.0],
                    [0.0, 1.0, 0.0],
                    [0.0, 0.0, t_ref]])  # d(a, γ, b) / d(a_u, γ, b_u)
    dof = len(x) - 3
    if dof > 0 and np.all(np.isfinite(pcov)):
        se = np.sqrt(np.clip(np.diag(jac @ pcov @ jac.T), 0, None))
        half = stats.t.ppf(0.5 + level / 2, dof) * se[1]
    else:
        se, half = np.full(3, np.nan), np.nan
    return TimeFit(float(t_ref * a_u * scale), float(gamma), float(t_ref * b_u), float(se[0]), float(se[1]),
                   float(se[2]), float(gamma - half), float(gamma + half), len(x))


class PowerLawFit(NamedTuple):
    """``y = c·N^β`` fitted in log-log, with a t-interval on β."""

    coefficient: float
    exponent: float
    exponent_se: float
    exponent_lo: float
    exponent_hi: float
    r_squared: float
    n_points: int


def fit_power_law(n: np.ndarray, y: np.ndarray, *, level: float = 0.95) -> PowerLawFit:
    """Fit ``y = c·n^β`` by least squares on ``log y = log c + β log n`` (``scipy.stats.linregress``).

    The interval on β is ``β ± t_{dof}·SE`` with ``dof = m − 2`` (NaN for two points).

    Examples
    --------
    >>> round(fit_power_law(np.array([1e3, 4e3, 1.6e4]), 10 * np.array([1e3, 4e3, 1.6e4])**0.5).exponent, 9)
    0.5
    """
    n, y = _checked("the power-law fit", n, y, 2, "2 or more distinct model sizes",
                    "positive model sizes and CDS values", positive_y=True)
    res = stats.linregress(np.log(n), np.log(y))
    dof = len(n) - 2
    half = stats.t.ppf(0.5 + level / 2, dof) * res.stderr if dof > 0 else np.nan
    se = float(res.stderr) if dof > 0 else np.nan
    return PowerLawFit(float(np.exp(res.intercept)), float(res.slope), se, float(res.slope - half),
                       float(res.slope + half), float(res.rvalue**2), len(n))


# --- the estimator --------------------------------------------------------------------------------------
