"""Known-answer tests for grokscope.analysis.measures.norms (seed 002 eqs. 6-7, weight histograms)."""

from __future__ import annotations

import numpy as np
import pytest

from grokscope.analysis.measures.norms import (
    DecayFit,
    fit_exponential_decay,
    predicted_generalization_step,
    weight_histograms,
)

STEPS = np.arange(0.0, 6000.0)
W0, GAMMA, START, STOP = 37.5, 2.5e-4, 500.0, 5000.0


def exact_norm() -> np.ndarray:
    """w(t) = W0·exp(−γ(t − START)) inside the window; a different curve outside it."""
    w = W0 * np.exp(-GAMMA * (STEPS - START))
    w[STEPS < START] = 100.0  # initial transient the window must exclude
    w[STEPS > STOP] = np.nan  # not logged
    return w


def test_exact_exponential_recovers_w0_and_gamma():
    fit = fit_exponential_decay(STEPS, exact_norm(), start=START, stop=STOP)
    assert fit.gamma == pytest.approx(GAMMA, rel=1e-9)
    assert fit.w0 == pytest.approx(W0, rel=1e-9)
    assert (fit.start, fit.stop) == (START, STOP)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)


def test_default_window_is_all_finite_points():
    w = W0 * np.exp(-GAMMA * STEPS)
    w[:10] = np.nan
    fit = fit_exponential_decay(STEPS, w)
    assert (fit.start, fit.stop) == (10.0, 5999.0)
    assert fit.w0 == pytest.approx(W0 * np.exp(-GAMMA * 10), rel=1e-9)  # w0 is the value at start


def test_predicted_step_equals_analytic():
    fit = fit_exponential_decay(STEPS, exact_norm(), start=START, stop=STOP)
    w_star = 20.0
    expected = START + np.log(W0 / w_star) / GAMMA  # solve W0·exp(−γ(t − START)) = w*
    assert predicted_generalization_step(fit, w_star) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    "fit, w_star",
    [
        (DecayFit(w0=10.0, gamma=-1e-3, start=0.0, stop=1.0, r2=1.0), 5.0),  # growing norm
        (DecayFit(w0=10.0, gamma=0.0, start=0.0, stop=1.0, r2=1.0), 5.0),  # flat norm
        (DecayFit(w0=10.0, gamma=1e-3, start=0.0, stop=1.0, r2=1.0), 12.0),  # already below w*
    ],
)
def test_predicted_step_none_when_undefined(fit, w_star):
    assert predicted_generalization_step(fit, w_star) is None


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="> 0"):
        fit_exponential_decay(STEPS, np.linspace(1.0, -1.0, STEPS.size))
    with pytest.raises(ValueError, match="start must be < stop"):
        fit_exponential_decay(STEPS, exact_norm(), start=3000, stop=2000)
    with pytest.raises(ValueError, match="two distinct steps"):
        fit_exponential_decay(STEPS, exact_norm(), start=5000, stop=5000.5)
    with pytest.raises(ValueError, match="equal length"):
        fit_exponential_decay(STEPS, exact_norm()[:-1])
    with pytest.raises(ValueError, match="w_star"):
        predicted_generalization_step(DecayFit(1.0, 1.0, 0.0, 1.0, 1.0), 0.0)


def test_histograms_sum_to_element_count_and_match_numpy():
    weights = np.random.default_rng(0).normal(0, 0.02, size=(7, 16, 8)) * np.arange(1, 8)[:, None, None]
    counts, edges = weight_histograms(weights, bins=30)
    assert counts.shape == (7, 30) and edges.shape == (31,)
    np.testing.assert_array_equal(counts.sum(axis=1), 16 * 8)
    assert edges[0] == weights.min() and edges[-1] == weights.max()  # one shared edge set
    for row, w in zip(counts, weights):
        np.testing.assert_array_equal(row, np.histogram(w, bins=edges)[0])


def test_histograms_with_range_drop_outside_values():
    weights = np.array([[-2.0, -0.5, 0.0, 0.5, 1.0, 3.0]])
    counts, edges = weight_histograms(weights, bins=2, range=(-1.0, 1.0))
    np.testing.assert_array_equal(edges, [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(counts, [[1, 3]])  # right edge 1.0 closed, −2 and 3 dropped


def test_histograms_reject_bad_input():
    with pytest.raises(ValueError, match="n_ckpt"):
        weight_histograms(np.zeros(5))
    with pytest.raises(ValueError, match="bins"):
        weight_histograms(np.zeros((2, 5)), bins=0)
    with pytest.raises(ValueError, match="range"):
        weight_histograms(np.zeros((2, 5)), range=(1.0, 1.0))
    with pytest.raises(ValueError, match="finite"):
        weight_histograms(np.array([[0.0, np.nan]]))
