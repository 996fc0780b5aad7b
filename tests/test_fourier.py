"""Known-answer tests for grokscope.analysis.measures.fourier (Nanda et al.'s progress measures, any p)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from grokscope.analysis.measures.fourier import (
    cross_entropy,
    embedding_spectrum,
    fourier_basis,
    gini,
    key_frequencies_from_neurons,
    key_frequencies_top_norm,
    loss_spectrum,
    neuron_key_frequencies,
    restricted_and_excluded_logits,
)


def w(k: int, p: int) -> float:
    return 2 * np.pi * k / p


# --- basis -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [3, 4, 5, 8, 59, 60, 113])
def test_basis_is_orthonormal(p):
    basis, labels = fourier_basis(p)
    np.testing.assert_allclose(basis @ basis.T, np.eye(p), atol=1e-12)
    assert len(labels) == p and labels[0] == "const"
    assert labels[-1] == (f"cos {p // 2}" if p % 2 == 0 else f"sin {p // 2}")  # even p: Nyquist cos only


@pytest.mark.parametrize("p", [2, 1, 0, 5.0])
def test_basis_rejects_bad_p(p):
    with pytest.raises(ValueError, match="p must be"):
        fourier_basis(p)


# --- embedding spectrum ----------------------------------------------------------------------------


def embedding(p: int, freqs: dict[int, float], d: int, extra_rows: int = 4) -> np.ndarray:
    """(p + extra, d): number x ↦ Σ_k a_k (cos(w_k x) e_{2i} + sin(w_k x) e_{2i+1}); extra rows huge.

    Each frequency's norm in the orthonormal basis is then exactly a_k·√p.
    """
    x = np.arange(p)
    W = np.zeros((p + extra_rows, d))
    for i, (k, a) in enumerate(freqs.items()):
        W[:p, 2 * i] = a * np.cos(w(k, p) * x)
        W[:p, 2 * i + 1] = a * np.sin(w(k, p) * x)
    W[p:] = 1e3  # operator tokens: must be ignored
    return W


@pytest.mark.parametrize(
    "p, freqs, d, orientation",
    [
        (113, {3: 1.0, 17: 0.8, 41: 0.6}, 128, "vocab_first"),  # seed 002 shape (117, 128): must be explicit
        (113, {41: 1.0, 3: 0.7, 17: 0.5}, 128, "vocab_last"),  # stored as (d, vocab)
        (59, {3: 1.0, 17: 0.8, 25: 0.6}, 32, "auto"),  # only the vocab axis is >= p
        (60, {3: 1.0, 30: 0.8, 17: 0.6}, 32, "auto"),  # even p, Nyquist frequency 30 has only a cos
    ],
)
def test_embedding_spectrum_finds_planted_frequencies(p, freqs, d, orientation):
    W = embedding(p, freqs, d)  # Nyquist: ‖cos‖² = p and sin ≡ 0, so its norm is a·√p too
    if orientation == "vocab_last":
        W = W.T
    spectrum = embedding_spectrum(W, p, orientation=orientation)
    assert spectrum.shape == (p // 2 + 1,)
    expected = np.zeros(p // 2 + 1)
    for k, a in freqs.items():
        expected[k] = a * np.sqrt(p)
    np.testing.assert_allclose(spectrum, expected, atol=1e-9)
    assert key_frequencies_top_norm(spectrum).tolist() == list(freqs)  # strongest first
    assert key_frequencies_top_norm(spectrum, k=3).tolist() == list(freqs)
    if orientation == "auto":  # same answer with the matrix stored the other way round
        np.testing.assert_allclose(embedding_spectrum(W.T, p), spectrum, atol=1e-12)


def test_frequency_above_nyquist_aliases():
    # 41 mod 59 = −18: cos(w_41 x) = cos(w_18 x), sin flips sign, the norm is unchanged
    spectrum = embedding_spectrum(embedding(59, {41: 1.0}, 8), 59)
    assert key_frequencies_top_norm(spectrum).tolist() == [18]


def test_embedding_spectrum_is_vectorised_over_checkpoints():
    W = np.random.default_rng(0).normal(size=(1000, 117, 128))
    spectra = embedding_spectrum(W, 113, orientation="vocab_first")
    assert spectra.shape == (1000, 57)
    for i in (0, 500, 999):
        np.testing.assert_allclose(spectra[i], embedding_spectrum(W[i], 113, "vocab_first"), rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, (13, 5), elements=st.floats(-10, 10)))
def test_embedding_spectrum_conserves_energy(W):  # Parseval: the basis is orthonormal
    np.testing.assert_allclose(np.sum(embedding_spectrum(W, 11) ** 2), np.sum(W[:11] ** 2), rtol=1e-9, atol=1e-9)


def test_embedding_spectrum_rejects_ambiguous_or_bad_shapes():
    with pytest.raises(ValueError, match="pass orientation explicitly"):
        embedding_spectrum(np.zeros((117, 128)), 113)
    with pytest.raises(ValueError, match="orientation must be"):
        embedding_spectrum(np.zeros((117, 128)), 113, orientation="rows")
    with pytest.raises(ValueError, match="fewer than p"):
        embedding_spectrum(np.zeros((50, 20)), 113)


# --- gini and top-norm selection -------------------------------------------------------------------


@pytest.mark.parametrize(
    "x, expected",
    [
        ([2.0, 2.0, 2.0, 2.0, 2.0], 0.0),  # uniform
        ([0.0, 0.0, 0.0, 0.0, 3.0], 4 / 5),  # one-hot: (n − 1)/n
        ([1.0, 2.0, 3.0], 8 / 36),  # Σ|x_i − x_j| = 8 over ordered pairs, 2·n·Σx = 36
        ([0.0, 0.0, 0.0], 0.0),  # all zero: treated as uniform
    ],
)
def test_gini_known_values(x, expected):
    assert float(gini(x)) == pytest.approx(expected, abs=1e-15)


def test_gini_along_axis_and_rejects_negative():
    x = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]])  # columns: uniform, one-hot
    np.testing.assert_allclose(gini(x, axis=0), [0.0, 2 / 3])
    with pytest.raises(ValueError, match="non-negative"):
        gini([1.0, -1.0])


def test_top_norm_modes():
    spectrum = np.array([50.0, 1.0, 9.0, 0.0, 10.0, 3.0])  # index 0 (constant) never counts
    assert key_frequencies_top_norm(spectrum, k=2).tolist() == [4, 2]
    assert key_frequencies_top_norm(spectrum, threshold=0.3).tolist() == [4, 2, 5]
    assert key_frequencies_top_norm(spectrum).tolist() == [4, 2]  # 181/191 ≥ 90 % of the squared norm
    assert key_frequencies_top_norm(np.ones(57)).size == 10  # flat spectrum: capped at 10
    with pytest.raises(ValueError, match="at most one"):
        key_frequencies_top_norm(spectrum, k=2, threshold=0.5)


# --- neurons ---------------------------------------------------------------------------------------


def grid(p: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(p)
    return x[:, None], x[None, :]  # a (p, 1), b (1, p)


@pytest.mark.parametrize("p", [113, 60])
def test_neuron_key_frequencies_known_neurons(p):
    a, b = grid(p)
    neurons = [
        (np.cos(w(5, p) * (a + b) + 0.3) + 2.0, 5, 1.0),  # cos(w_k(a+b)+φ) plus an offset
        (np.cos(w(12, p) * (a + b) - 1.1), 12, 1.0),
        (np.cos(w(7, p) * a) * np.sin(w(7, p) * b), 7, 1.0),  # any product inside the k block
        (np.cos(w(3, p) * a) + 0.1 * np.cos(w(9, p) * b), 3, 1 / 1.01),  # 1 : 0.01 variance split
        (np.cos(w(p // 2, p) * (a + b)), p // 2, 1.0),  # highest frequency (Nyquist for even p)
    ]
    acts = np.stack([np.broadcast_to(n, (p, p)) for n, _, _ in neurons], axis=-1)  # (p, p, 5)
    key, frac = neuron_key_frequencies(acts)
    assert key.tolist() == [k for _, k, _ in neurons]
    np.testing.assert_allclose(frac, [f for _, _, f in neurons], atol=1e-10)


def test_constant_neuron_explains_nothing():
    _, frac = neuron_key_frequencies(np.full((7, 7, 1), 3.0))
    assert frac.tolist() == [0.0]


@pytest.mark.parametrize(
    "key_freq, frac, kwargs, expected",
    [
        ([4, 4, 9, 2, 9, 4], [0.9, 0.95, 0.99, 0.5, 0.9, 0.9], {}, [4, 9]),  # 2 fails min_frac
        ([4, 4, 9, 2, 9, 4], [0.9] * 6, {"min_neurons": 2}, [4, 9]),  # 2 has one neuron only
        ([7, 3, 3, 7], [1.0] * 4, {}, [3, 7]),  # tie: lower frequency first
        ([4, 9], [0.5, 0.6], {}, []),  # nothing confident
    ],
)
def test_key_frequencies_from_neurons(key_freq, frac, kwargs, expected):
    assert key_frequencies_from_neurons(np.array(key_freq), np.array(frac), **kwargs).tolist() == expected


# --- restricted / excluded logits ------------------------------------------------------------------


@pytest.mark.parametrize("p, keys, other", [(113, [3, 17, 41], 20), (60, [5, 30], 11)])
def test_restricted_and_excluded_logits(p, keys, other):
    a, b = grid(p)
    c = np.arange(p)
    a, b = a[..., None], b[..., None]  # (p, 1, 1), (1, p, 1)
    key_part = sum(np.cos(w(k, p) * (a + b - c)) for k in keys)  # (p, p, p)
    offset = np.linspace(-1, 1, p)  # per-class mean over (a, b)
    noise = 0.5 * np.cos(w(other, p) * (a + b - c)) + 0.3 * np.cos(w(keys[0], p) * a)  # not key (a+b) dirs
    logits = key_part + offset + noise
    restricted, excluded = restricted_and_excluded_logits(logits, keys, p)
    np.testing.assert_allclose(restricted, key_part + offset, atol=1e-9)
    np.testing.assert_allclose(excluded, np.broadcast_to(offset + noise, logits.shape), atol=1e-9)
    r, e = restricted_and_excluded_logits(key_part + offset, keys, p)  # pure key logits
    np.testing.assert_allclose(r, key_part + offset, atol=1e-9)
    np.testing.assert_allclose(e, np.broadcast_to(offset, logits.shape), atol=1e-9)  # constant over (a, b)


def test_restricted_logits_reject_bad_input():
    with pytest.raises(ValueError, match="shape"):
        restricted_and_excluded_logits(np.zeros((7, 6, 7)), [1], 7)
    with pytest.raises(ValueError, match="key_freqs"):
        restricted_and_excluded_logits(np.zeros((7, 7, 7)), [4], 7)


def test_cross_entropy_known_values():
    assert cross_entropy(np.zeros((3, 5)), np.array([0, 2, 4])) == pytest.approx(np.log(5))
    big = np.array([[1000.0, 0.0], [1000.0, 0.0]])  # naive softmax overflows; log-sum-exp does not
    assert cross_entropy(big, np.array([0, 1])) == pytest.approx(500.0)
    logits = np.random.default_rng(0).normal(size=(6, 4))
    naive = -np.log(np.exp(logits) / np.exp(logits).sum(1, keepdims=True))[np.arange(6), [0, 1, 2, 3, 0, 1]]
    assert cross_entropy(logits, np.array([0, 1, 2, 3, 0, 1])) == pytest.approx(naive.mean(), rel=1e-12)
    with pytest.raises(ValueError, match="targets"):
        cross_entropy(logits, np.array([0, 1, 2, 3, 0, 4]))


# --- loss spectrum ---------------------------------------------------------------------------------


def test_loss_spectrum_finds_early_oscillation():
    n = 200
    losses = np.concatenate([3.0 + 0.5 * np.cos(2 * np.pi * 8 * np.arange(n) / n), np.zeros(300)])
    freqs, power = loss_spectrum(losses, n_early=n)
    assert freqs.shape == power.shape == (n // 2 + 1,)
    assert np.argmax(power) == 8 and freqs[8] == 8 / n
    assert power[8] == pytest.approx((0.5 * n / 2) ** 2)  # |rfft| of A·cos at its bin is A·n/2
    assert power[0] == pytest.approx(0.0, abs=1e-18)  # mean removed
    with pytest.raises(ValueError, match="n_early"):
        loss_spectrum(losses, n_early=1000)
