"""Known-answer tests for grokscope.analysis.measures.intervals (Carvalho et al., Definition 3.1, operational rule)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grokscope.analysis.measures.intervals import GrokkingIntervals, IntervalRule, grokking_intervals

STEPS = np.arange(10_001.0)  # spaced 1 apart, so the rule's answers are exact steps


def train_curve(steps: np.ndarray = STEPS) -> np.ndarray:
    return np.interp(steps, [0, 400, 10_000], [0.1, 1.0, 1.0])  # memorised by step 400, lim T_R = 1


def grokking_test_curve(steps: np.ndarray = STEPS) -> np.ndarray:
    """Low 0.1 up to 1000, leaves σ_lo = 0.185 at 1001, below σ_E = 0.95 until 1499, 1.0 from 1500 on."""
    return np.interp(steps, [0, 1000, 1001, 1499, 1500, 10_000], [0.1, 0.1, 0.2, 0.9, 1.0, 1.0])


def test_piecewise_linear_curve_gives_exact_intervals():
    g = grokking_intervals(STEPS, train_curve(), grokking_test_curve())
    assert (g.alpha0, g.alpha1, g.support) == (1000.0, 1500.0, 8500.0)
    assert g.support_ratio == 8500 / 500
    assert g.sigma_s == 0.1
    assert g.sigma_e == pytest.approx(0.95, abs=1e-12)
    assert g.delta_s == pytest.approx(0.85, abs=1e-12)
    assert g.delta_t == pytest.approx(0.05, abs=1e-12)
    assert g.grokked is True


def test_to_dict_has_exactly_the_json_keys():
    d = grokking_intervals(STEPS, train_curve(), grokking_test_curve()).to_dict()
    assert list(d) == [
        "alpha0", "alpha1", "sigma_s", "sigma_e", "delta_s", "delta_t", "support", "support_ratio", "grokked",
    ]  # fmt: skip
    assert json.loads(json.dumps(d)) == d
    assert all(type(v) in (float, bool) for v in d.values())


def test_noisy_curves_with_smoothing_recover_intervals():
    rng = np.random.default_rng(1)
    train = train_curve() + rng.normal(0, 0.02, STEPS.size)
    test = grokking_test_curve() + rng.normal(0, 0.02, STEPS.size)
    g = grokking_intervals(STEPS, train, test, IntervalRule(smoothing="gaussian", smoothing_amount=10.0))
    assert g.alpha0 == pytest.approx(1000, abs=25)
    assert g.alpha1 == pytest.approx(1500, abs=25)
    assert g.grokked


def test_never_generalizing_curve():
    g = grokking_intervals(STEPS, train_curve(), np.interp(STEPS, [0, 500, 10_000], [0.1, 0.3, 0.3]))
    assert (g.alpha0, g.alpha1, g.support, g.support_ratio, g.sigma_s) == (None, None, None, None, None)
    assert g.grokked is False
    assert g.to_dict()["alpha1"] is None


def test_immediate_generalization_has_no_transition():
    g = grokking_intervals(STEPS, train_curve(), np.ones_like(STEPS))
    assert g.alpha0 is None and g.grokked is False
    assert (g.alpha1, g.support) == (0.0, 10_000.0)  # in the high band from the first step


def test_alpha1_is_the_last_crossing_up():
    # touches σ_E at 1300 (0.96), falls back to 0.8 at 1400, settles from 1500
    test = np.interp(STEPS, [0, 1000, 1001, 1300, 1400, 1499, 1500, 10_000],
                     [0.1, 0.1, 0.2, 0.96, 0.8, 0.9, 1.0, 1.0])  # fmt: skip
    g = grokking_intervals(STEPS, train_curve(), test)
    assert (g.alpha0, g.alpha1, g.grokked) == (1000.0, 1500.0, True)


def test_early_generalization_then_collapse_is_not_grokking():
    # high at 200-600, collapses to 0.1 by 800, re-generalizes: σ_S = 1 ≥ σ_E, so Δ_S < 0
    test = np.interp(STEPS, [0, 200, 600, 800, 1000, 1001, 1499, 1500, 10_000],
                     [0.1, 1.0, 1.0, 0.1, 0.1, 0.2, 0.9, 1.0, 1.0])  # fmt: skip
    g = grokking_intervals(STEPS, train_curve(), test)
    assert (g.alpha0, g.alpha1, g.sigma_s) == (1000.0, 1500.0, 1.0)
    assert g.delta_s < 0 and g.grokked is False


def test_reaching_band_then_dropping_at_the_end_has_no_alpha1():
    test = np.interp(STEPS, [0, 1000, 1500, 9000, 10_000], [0.1, 0.1, 1.0, 1.0, 0.5])
    g = grokking_intervals(STEPS, train_curve(), test)
    assert g.alpha1 is None and g.support is None and g.grokked is False


def test_short_support_is_not_grokking():
    steps = STEPS[:2001]  # support 500 = 1.0 × (α1 − α0) < min_support_ratio 2
    g = grokking_intervals(steps, train_curve(steps), grokking_test_curve(steps))
    assert (g.alpha0, g.alpha1, g.support_ratio, g.grokked) == (1000.0, 1500.0, 1.0, False)
    assert grokking_intervals(
        steps, train_curve(steps), grokking_test_curve(steps), IntervalRule(min_support_ratio=1.0)
    ).grokked


def test_nan_gaps_are_ignored():
    test = np.full_like(STEPS, np.nan)
    test[::10] = grokking_test_curve()[::10]  # evaluated every 10 steps
    test[5000:6000] = np.nan  # and not at all for a while
    train = train_curve().copy()
    train[9000:9500] = np.nan
    g = grokking_intervals(STEPS, train, test)
    assert (g.alpha0, g.alpha1, g.support, g.grokked) == (1000.0, 1500.0, 8500.0, True)


def test_explicit_low_threshold():
    # ramp 0.2 + 0.7 (t − 1001) / 498 ≤ 0.5  ⇔  t ≤ 1214.43
    g = grokking_intervals(STEPS, train_curve(), grokking_test_curve(), IntervalRule(low=0.5))
    assert g.alpha0 == 1214.0 and g.sigma_s == pytest.approx(0.2 + 0.7 * 213 / 498)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"band": -0.1},  # σ_E above lim T_R
        {"tail": 0.0},  # no points to average
        {"low_frac": 1.0},  # σ_lo = σ_E
        {"min_support_ratio": -1.0},
        {"smoothing": "savgol"},
        {"smoothing_amount": -2.0},
    ],
)
def test_rule_validation(kwargs):
    with pytest.raises(ValueError):
        IntervalRule(**kwargs)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="equal length"):
        grokking_intervals(STEPS, train_curve(), grokking_test_curve()[:-1])
    with pytest.raises(ValueError, match="increasing"):
        grokking_intervals(STEPS[::-1], train_curve(), grokking_test_curve())
    with pytest.raises(ValueError, match="finite"):
        grokking_intervals(STEPS, train_curve(), np.full_like(STEPS, np.nan))


def test_result_is_frozen():
    g = grokking_intervals(STEPS, train_curve(), grokking_test_curve())
    assert isinstance(g, GrokkingIntervals)
    with pytest.raises(AttributeError):
        g.alpha0 = 3.0  # type: ignore[misc]


def test_rule_errors_are_config_errors():
    from grokscope.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        IntervalRule(smoothing="ema", smoothing_amount=1.5)  # failed only when applied, as a bare ValueError
    IntervalRule(smoothing="gaussian", smoothing_amount=1.5)  # σ in logged points: any size
    with pytest.raises(ConfigError, match="the train and test curves have no finite value"):
        grokking_intervals(STEPS, np.full_like(STEPS, np.nan), np.full_like(STEPS, np.nan))
