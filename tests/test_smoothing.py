"""Known-answer tests for grokscope.analysis.measures.smoothing (TensorBoard EMA, NaN-aware Gaussian, dispatcher)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import gaussian_filter1d, uniform_filter1d

from grokscope.analysis.measures.smoothing import ema, gaussian, smooth

NAN = float("nan")


def tensorboard_ema(values: list[float], weight: float) -> list[float]:
    """TensorBoard's scalar-dashboard smoothing, transcribed line by line."""
    last, num_accum, out = 0.0, 0, []
    for v in values:
        if not np.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        num_accum += 1
        out.append(last / (1 - weight**num_accum))
    return out


# --- ema -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.6, 0.9, 0.999])
def test_ema_matches_tensorboard_reference(weight):
    values = [1.0, 4.0, NAN, 2.0, NAN, NAN, 8.0, -3.0, 0.5]
    np.testing.assert_allclose(ema(values, weight), tensorboard_ema(values, weight), rtol=1e-12)


def test_ema_hand_computed():
    # w = 0.5: last 0.5 -> 1/0.5 = 1; last 0.25 + 1.5 = 1.75 -> 1.75/0.75
    np.testing.assert_allclose(ema([1.0, NAN, 3.0], 0.5), [1.0, NAN, 1.75 / 0.75])


def test_ema_nan_in_nan_out_and_state_unchanged():
    with_gap = ema([1.0, NAN, NAN, 3.0, 5.0], 0.7)
    without = ema([1.0, 3.0, 5.0], 0.7)
    assert np.isnan(with_gap[[1, 2]]).all()
    np.testing.assert_allclose(with_gap[[0, 3, 4]], without, rtol=1e-14)


def test_ema_debiasing_keeps_a_constant_curve_constant():
    np.testing.assert_allclose(ema(np.full(500, 7.25), 0.95), 7.25, rtol=1e-12)


def test_ema_weight_zero_returns_a_copy():
    x = np.array([1.0, NAN, 2.0])
    out = ema(x, 0.0)
    np.testing.assert_array_equal(out, x)
    assert out is not x


@pytest.mark.parametrize("weight", [-0.1, 1.0, 1.5])
def test_ema_rejects_bad_weight(weight):
    with pytest.raises(ValueError, match="weight"):
        ema([1.0, 2.0], weight)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(NAN)), min_size=1, max_size=60),
    st.floats(0.0, 0.99),
)
def test_ema_stays_within_range_of_inputs_seen(values, weight):
    out = ema(values, weight)
    x = np.asarray(values)
    for i in np.flatnonzero(np.isfinite(x)):
        seen = x[: i + 1][np.isfinite(x[: i + 1])]
        assert seen.min() - 1e-6 <= out[i] <= seen.max() + 1e-6


# --- gaussian --------------------------------------------------------------------------------------


def test_gaussian_without_nan_equals_scipy():
    x = np.random.default_rng(0).normal(size=400)
    np.testing.assert_allclose(gaussian(x, 7.0), gaussian_filter1d(x, 7.0, mode="nearest"), atol=1e-12)


def test_gaussian_gaps_do_not_poison_neighbours():
    x = np.full(300, 2.5)
    x[[10, 11, 12, 150, 299]] = NAN
    np.testing.assert_allclose(gaussian(x, 5.0), 2.5, rtol=1e-12)  # gaps filled with the constant


def test_gaussian_nan_where_no_data_in_reach():
    x = np.full(50, NAN)
    x[0] = 1.0
    out = gaussian(x, 1.0)  # kernel radius int(4 * sigma + 0.5) = 4 samples
    np.testing.assert_allclose(out[:5], 1.0)
    assert np.isnan(out[5:]).all()


def test_gaussian_sigma_zero_returns_copy():
    x = np.array([1.0, NAN, 3.0])
    out = gaussian(x, 0.0)
    np.testing.assert_array_equal(out, x)
    assert out is not x


def test_gaussian_rejects_negative_sigma():
    with pytest.raises(ValueError, match="sigma"):
        gaussian([1.0, 2.0], -1.0)


# --- smooth ----------------------------------------------------------------------------------------

X = np.array([0.0, 1.0, NAN, 3.0, 10.0, 2.0])


@pytest.mark.parametrize(
    "method, amount, expected",
    [
        (None, 0.0, X),  # no smoothing
        ("none", 5.0, X),  # amount ignored
        ("ema", 0.6, ema(X, 0.6)),
        ("gaussian", 2.0, gaussian(X, 2.0)),
    ],
)
def test_smooth_dispatches(method, amount, expected):
    np.testing.assert_array_equal(smooth(X, method, amount), expected)


def test_smooth_rejects_unknown_method_and_2d_input():
    with pytest.raises(ValueError, match="unknown smoothing method"):
        smooth(X, "savgol", 3.0)
    with pytest.raises(ValueError, match="1-D"):
        smooth(np.zeros((2, 3)), "ema", 0.5)


def test_gaussian_kernel_reach_is_bounded_by_the_curve():
    x = np.sin(np.arange(50.0))
    # σ ≤ n: exactly scipy's 4σ kernel
    np.testing.assert_allclose(gaussian(x, 50.0), gaussian_filter1d(x, 50.0, mode="nearest"), atol=1e-12)
    # σ = 1e9: a 4σ kernel would need 64 GB; cut at 4n + 1 = 201 samples it is flat there, a box filter
    box = uniform_filter1d(x, size=2 * 201 + 1, mode="nearest")
    np.testing.assert_allclose(gaussian(x, 1e9), box, atol=1e-9)
