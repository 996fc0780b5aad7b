"""Grokking intervals of Carvalho et al. (seed 001, Definition 3.1) with an operational rule.

Definition 3.1 names the quantities -- α0 (T_E leaves the low region), α1 (T_E reaches the high region),
σ_S (upper bound of T_E up to α0), σ_E (lower edge of the high band [σ_E, lim T_R]), the support S over
which T_E stays in the band, Δ_S = σ_E − σ_S ("intensity") and Δ_T = lim T_R − σ_E ("room for
improvement") -- but gives no numeric rule for real curves. This module uses the following one; every
knob is a field of :class:`IntervalRule`.

1. Both curves are smoothed first (``smoothing``, ``smoothing_amount``; default none). Points that were
   NaN in the raw input stay ignored after smoothing (a Gaussian would otherwise fill them).
2. ``lim T_R`` = mean of the last ``tail`` fraction (at least one point) of the finite T_R points.
3. ``σ_E = lim T_R − band``.
4. ``α1`` = the first step of the final run of T_E ≥ σ_E that lasts to the end of the run, i.e. the
   last crossing up (a curve that reaches σ_E and drops back does not count). If the last finite T_E is
   below σ_E, α1 = None. If T_E ≥ σ_E at every finite point, α1 = the first step and there is no
   transition (α0 = None).
5. ``σ_lo`` = ``low`` if given, else ``min T_E + low_frac · (σ_E − min T_E)``; ``α0`` = the last step
   before α1 with T_E ≤ σ_lo (None if there is none).
6. ``σ_S`` = max T_E over steps ≤ α0; ``Δ_S = σ_E − σ_S``; ``Δ_T = lim T_R − σ_E``.
7. ``S`` = last finite step − α1 (T_E ≥ σ_E throughout, by 4); ``S / (α1 − α0)`` is the support ratio.
8. Grokked iff α0 and α1 exist, Δ_S > 0, and ``S / (α1 − α0) ≥ min_support_ratio`` (the paper's
   S ≫ α1 − α0).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from grokscope.analysis.measures.smoothing import METHODS, smooth
from grokscope.errors import ConfigError

__all__ = ["IntervalRule", "GrokkingIntervals", "grokking_intervals"]


@dataclass(frozen=True)
class IntervalRule:
    """Knobs of the operational rule (see the module docstring)."""

    band: float = 0.05  # σ_E = lim T_R − band
    tail: float = 0.1  # fraction of the last finite T_R points averaged into lim T_R
    low: float | None = None  # absolute σ_lo; None -> min T_E + low_frac·(σ_E − min T_E)
    low_frac: float = 0.1  # used only when low is None
    min_support_ratio: float = 2.0  # grokked needs S / (α1 − α0) ≥ this
    smoothing: str | None = None  # None | "none" | "ema" | "gaussian", applied to both curves
    smoothing_amount: float = 0.0  # ema weight in [0, 1), or gaussian sigma in logged points

    def __post_init__(self) -> None:
        if not (np.isfinite(self.band) and self.band >= 0):
            raise ConfigError(f"band must be finite and >= 0, got {self.band}")
        if not 0 < self.tail <= 1:
            raise ConfigError(f"tail must be in (0, 1], got {self.tail}")
        if self.low is not None and not np.isfinite(self.low):
            raise ConfigError(f"low must be finite or None, got {self.low}")
        if not 0 <= self.low_frac < 1:
            raise ConfigError(f"low_frac must be in [0, 1), got {self.low_frac}")
        if not (np.isfinite(self.min_support_ratio) and self.min_support_ratio >= 0):
            raise ConfigError(f"min_support_ratio must be finite and >= 0, got {self.min_support_ratio}")
        if self.smoothing not in METHODS:
            raise ConfigError(f"unknown smoothing {self.smoothing!r}; expected one of {METHODS}")
        if not (np.isfinite(self.smoothing_amount) and self.smoothing_amount >= 0):
            raise ConfigError(f"smoothing_amount must be finite and >= 0, got {self.smoothing_amount}")
        if self.smoothing == "ema" and not self.smoothing_amount < 1:
            raise ConfigError(f"ema smoothing_amount is a weight in [0, 1), got {self.smoothing_amount}")


@dataclass(frozen=True)
class GrokkingIntervals:
    """Definition 3.1 quantities of one run; None where undefined."""

    alpha0: float | None  # last step in the low region before α1
    alpha1: float | None  # first step of the final stay in [σ_E, lim T_R]
    sigma_s: float | None  # max T_E up to α0
    sigma_e: float  # lim T_R − band
    delta_s: float | None  # σ_E − σ_S, intensity
    delta_t: float  # lim T_R − σ_E, room for improvement
    support: float | None  # last step − α1
    support_ratio: float | None  # S / (α1 − α0)
    grokked: bool

    def to_dict(self) -> dict[str, float | bool | None]:
        """JSON-able dict with plain Python floats, bools and None."""
        return {k: (v if v is None or isinstance(v, bool) else float(v)) for k, v in asdict(self).items()}


def _float_or_none(x: float | None) -> float | None:
    return None if x is None else float(x)


def grokking_intervals(
    steps: np.ndarray, train: np.ndarray, test: np.ndarray, rule: IntervalRule = IntervalRule()
) -> GrokkingIntervals:
    """Find α0, α1, σ_S, σ_E, Δ_S, Δ_T and the support S of a run (Carvalho et al., Def. 3.1).

    Parameters
    ----------
    steps : array_like, shape (n,), strictly increasing
    train, test : array_like, shape (n,)
        Train / test performance T_R, T_E (higher is better, e.g. accuracy); NaN where not evaluated.
    rule : IntervalRule
        The operational rule's knobs (see the module docstring).

    Returns
    -------
    GrokkingIntervals

    Examples
    --------
    >>> t = np.arange(10_001.0)
    >>> test = np.interp(t, [0, 1000, 1001, 1499, 1500, 10_000], [0.1, 0.1, 0.2, 0.9, 1.0, 1.0])
    >>> g = grokking_intervals(t, np.ones_like(t), test)
    >>> g.alpha0, g.alpha1, g.support, g.grokked
    (1000.0, 1500.0, 8500.0, True)
    """
    steps = np.asarray(steps, dtype=np.float64)
    train = np.asarray(train, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    if steps.ndim != 1 or train.shape != steps.shape or test.shape != steps.shape:
        raise ConfigError(
            f"steps, train, test must be 1-D of equal length, got {steps.shape}, {train.shape}, {test.shape}"
        )
    if not np.all(np.isfinite(steps)) or np.any(np.diff(steps) <= 0):
        raise ConfigError("steps must be finite and strictly increasing")

    # 1. smooth, then keep only points evaluated in the raw input
    t_r = np.where(np.isfinite(train), smooth(train, rule.smoothing, rule.smoothing_amount), np.nan)
    t_e = np.where(np.isfinite(test), smooth(test, rule.smoothing, rule.smoothing_amount), np.nan)
    r_ok, e_ok = np.isfinite(t_r), np.isfinite(t_e)
    if not r_ok.any() or not e_ok.any():
        missing = " and ".join(n for n, ok in (("train", r_ok.any()), ("test", e_ok.any())) if not ok)
        curves = "curves have" if " and " in missing else "curve has"
        raise ConfigError(f"grokking intervals need train and test accuracy; the {missing} {curves} no "
                          "finite value")
    t_r = t_r[r_ok]  # (n_r,)
    s_e, t_e = steps[e_ok], t_e[e_ok]  # (n_e,)

    # 2-3. the high band [σ_E, lim T_R]
    n_tail = max(1, int(np.ceil(rule.tail * t_r.size)))
    lim_tr = float(t_r[-n_tail:].mean())
    sigma_e = lim_tr - rule.band
    delta_t = lim_tr - sigma_e

    def result(alpha0=None, alpha1=None, sigma_s=None, support=None, ratio=None, grokked=False):
        delta_s = None if sigma_s is None else sigma_e - sigma_s
        a0, a1, ss, ds, sup, rat = map(_float_or_none, (alpha0, alpha1, sigma_s, delta_s, support, ratio))
        return GrokkingIntervals(a0, a1, ss, sigma_e, ds, delta_t, sup, rat, bool(grokked))

    # 4. α1: start of the final run of T_E ≥ σ_E
    below = np.flatnonzero(t_e < sigma_e)
    if below.size == 0:  # in the high band from the start: no transition
        return result(alpha1=s_e[0], support=s_e[-1] - s_e[0])
    i1 = below[-1] + 1
    if i1 == t_e.size:  # ends below σ_E: never settled in the band
        return result()
    alpha1, support = s_e[i1], s_e[-1] - s_e[i1]

    # 5. α0: last step before α1 in the low region
    sigma_lo = rule.low if rule.low is not None else t_e.min() + rule.low_frac * (sigma_e - t_e.min())
    low = np.flatnonzero(t_e[:i1] <= sigma_lo)
    if low.size == 0:
        return result(alpha1=alpha1, support=support)
    i0 = low[-1]
    alpha0 = s_e[i0]

    # 6-8. σ_S, support ratio, verdict
    sigma_s = t_e[: i0 + 1].max()
    ratio = support / (alpha1 - alpha0)
    grokked = sigma_e - sigma_s > 0 and ratio >= rule.min_support_ratio
    return result(alpha0, alpha1, sigma_s, support, ratio, grokked)
