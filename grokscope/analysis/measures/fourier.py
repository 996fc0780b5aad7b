"""Fourier progress measures for modular addition (Nanda et al.), numpy only, any modulus p.

A network that groks ``(a + b) mod p`` embeds each number x as cos/sin(w_k x), w_k = 2πk/p, for a few
key frequencies k and computes the logit of c from cos(w_k(a + b − c)). The measures below read this
off weights and activations: the embedding's spectrum and its Gini sparsity, each MLP neuron's key
frequency, and the logits split into the key-frequency part ("restricted") and the rest ("excluded").
:func:`loss_spectrum` is Notsawo et al.'s early predictor of grokking from the training-loss curve.

Frequencies are 1-based (k = 1 … p//2); index 0 of a spectrum is the constant component.
"""

from __future__ import annotations

import numpy as np

from grokscope.errors import ConfigError

__all__ = [
    "fourier_basis", "embedding_spectrum", "gini", "key_frequencies_top_norm", "neuron_key_frequencies",
    "key_frequencies_from_neurons", "restricted_and_excluded_logits", "cross_entropy", "loss_spectrum",
]  # fmt: skip


def _check_p(p: int) -> int:
    if not isinstance(p, (int, np.integer)) or p < 3:
        raise ConfigError(f"p must be an integer >= 3, got {p!r}")
    return int(p)


def fourier_basis(p: int) -> tuple[np.ndarray, list[str]]:
    """Orthonormal Fourier basis on Z_p, rows ``const, cos 1, sin 1, …, cos p//2[, sin p//2]``.

    Row 0 is 1/√p; then cos(2πkx/p), sin(2πkx/p) for k = 1 … p//2, each normalised. For even p the
    Nyquist frequency k = p/2 has only its cos row (its sin is identically 0), so there are always p rows.

    Returns ``basis`` (p, p) with ``basis @ basis.T == I`` and its p row ``labels``.

    Examples
    --------
    >>> basis, labels = fourier_basis(5)
    >>> labels
    ['const', 'cos 1', 'sin 1', 'cos 2', 'sin 2']
    >>> bool(np.allclose(basis @ basis.T, np.eye(5)))
    True
    """
    p = _check_p(p)
    x = np.arange(p)
    rows, labels = [np.ones(p)], ["const"]
    for k in range(1, p // 2 + 1):
        rows.append(np.cos(2 * np.pi * k * x / p))
        labels.append(f"cos {k}")
        if 2 * k != p:
            rows.append(np.sin(2 * np.pi * k * x / p))
            labels.append(f"sin {k}")
    basis = np.stack(rows)  # (p, p)
    return basis / np.linalg.norm(basis, axis=1, keepdims=True), labels


def _row_to_freq(p: int) -> np.ndarray:
    """One-hot map of each basis row to its frequency (0 = constant), shape (p, p//2 + 1)."""
    return np.eye(p // 2 + 1)[(np.arange(p) + 1) // 2]


def embedding_spectrum(W: np.ndarray, p: int, orientation: str = "auto") -> np.ndarray:
    """Norm of the number-token embeddings per Fourier frequency, cos and sin paired.

    Parameters
    ----------
    W : array_like, shape (..., vocab, d) or (..., d, vocab)
        Embedding matrix, optionally stacked over leading checkpoint axes. Only the first p token rows
        (the numbers 0 … p−1) are used; extra tokens (operators, "=") are ignored.
    orientation : {"auto", "vocab_first", "vocab_last"}
        Which of the last two axes is the vocabulary. "auto" picks the only one of length ≥ p and raises
        if both are (e.g. vocab 117, d 128 with p = 113): pass it explicitly then.

    Returns shape (..., p//2 + 1): index 0 constant, index k = sqrt(‖cos k‖² + ‖sin k‖²).

    Examples
    --------
    >>> x = np.arange(7)
    >>> W = np.stack([np.cos(2 * np.pi * 2 * x / 7), np.sin(2 * np.pi * 2 * x / 7)], axis=1)  # (7, 2)
    >>> embedding_spectrum(W, 7).round(3).tolist()
    [0.0, 0.0, 2.646, 0.0]
    """
    p = _check_p(p)
    W = np.asarray(W, dtype=np.float64)
    if W.ndim < 2:
        raise ConfigError(f"W must have at least 2 dims (..., vocab, d), got shape {W.shape}")
    if orientation == "auto":
        fits = [n >= p for n in W.shape[-2:]]
        if fits == [True, True]:
            raise ConfigError(f"both axes of W {W.shape[-2:]} are >= p={p}; pass orientation explicitly")
        orientation = "vocab_first" if fits[0] else "vocab_last"
    if orientation == "vocab_last":
        W = np.swapaxes(W, -1, -2)
    elif orientation != "vocab_first":
        raise ConfigError(f"orientation must be 'auto', 'vocab_first' or 'vocab_last', got {orientation!r}")
    if W.shape[-2] < p:
        raise ConfigError(f"vocab axis has {W.shape[-2]} tokens, fewer than p={p}")
    basis, _ = fourier_basis(p)
    coef = np.tensordot(basis, W[..., :p, :], axes=([1], [-2]))  # (p, ..., d), one matmul
    power = np.einsum("f...d,f...d->...f", coef, coef)  # (..., p) squared norm per basis row
    return np.sqrt(power @ _row_to_freq(p))  # (..., n_freq + 1)


def gini(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Gini coefficient of non-negative values along ``axis``: sparsity of a spectrum.

    ``G = Σ_i Σ_j |x_i − x_j| / (2 n Σ_i x_i)``: 0 for uniform (and all-zero) input, (n − 1)/n for one-hot.

    Examples
    --------
    >>> float(gini([1.0, 1.0, 1.0, 1.0])), float(gini([0.0, 0.0, 0.0, 5.0]))
    (0.0, 0.75)
    """
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)  # (..., n)
    if x.shape[-1] == 0 or np.any(~np.isfinite(x)) or np.any(x < 0):
        raise ConfigError("gini needs a non-empty axis of finite, non-negative values")
    n = x.shape[-1]
    xs = np.sort(x, axis=-1)
    rank_weight = 2 * np.arange(1, n + 1) - n - 1  # (n,) sorted-form of the mean absolute difference
    total = xs.sum(axis=-1)
    return np.where(total > 0, (xs @ rank_weight) / (n * np.where(total > 0, total, 1.0)), 0.0)


def key_frequencies_top_norm(
    spectrum: np.ndarray, k: int | None = None, threshold: float | None = None, *,
    explained: float = 0.9, max_freqs: int = 10,
) -> np.ndarray:  # fmt: skip
    """Key frequencies (1-based, constant excluded) from a spectrum, strongest first.

    With ``k``: the top k. With ``threshold``: those with norm ≥ threshold × the largest. With neither
    (default): the smallest strongest-first set whose squared norms explain ≥ ``explained`` (0.9) of the
    non-constant squared norm, capped at ``max_freqs`` (10).

    ``spectrum`` has shape (n_freq + 1,), e.g. from :func:`embedding_spectrum`; returns int (n_key,).

    Examples
    --------
    >>> key_frequencies_top_norm([9.0, 0.1, 3.0, 0.0, 4.0]).tolist()
    [4, 2]
    """
    s = np.asarray(spectrum, dtype=np.float64)
    if s.ndim != 1 or s.size < 2 or np.any(~np.isfinite(s)) or np.any(s < 0):
        raise ConfigError(f"spectrum must be 1-D, length >= 2, finite and >= 0, got shape {s.shape}")
    if k is not None and threshold is not None:
        raise ConfigError("pass at most one of k and threshold")
    norms = s[1:]  # (n_freq,)
    order = np.argsort(-norms, kind="stable")  # strongest first, ties by lower frequency
    if k is not None:
        if not 1 <= k <= norms.size:
            raise ConfigError(f"k must be in [1, {norms.size}], got {k}")
        chosen = order[:k]
    elif threshold is not None:
        if not 0 < threshold <= 1:
            raise ConfigError(f"threshold must be in (0, 1], got {threshold}")
        chosen = order[norms[order] >= threshold * norms.max()]
    else:
        if not 0 < explained <= 1 or max_freqs < 1:
            raise ConfigError(f"need 0 < explained <= 1 and max_freqs >= 1, got {explained}, {max_freqs}")
        share = np.cumsum(norms[order] ** 2) / max(np.sum(norms**2), np.finfo(float).tiny)
        n_key = int(np.searchsorted(share, explained * (1 - 1e-12))) + 1
        chosen = order[: min(n_key, max_freqs, norms.size)]
    return chosen + 1


def neuron_key_frequencies(acts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each MLP neuron's key frequency and the fraction of its variance that frequency explains.

    The activation over all inputs, acts[a, b, n], is transformed with basis ⊗ basis. For frequency k the
    block {const, cos k, sin k} × {const, cos k, sin k} minus const⊗const is compared with the total
    squared norm minus const⊗const (the variance). A neuron with zero variance gets frac 0.

    ``acts`` has shape (p, p, n_neurons); returns ``key_freq`` (n_neurons,) int, the 1-based argmax
    frequency, and ``frac_explained`` (n_neurons,).

    Examples
    --------
    >>> a = np.arange(7)
    >>> acts = np.cos(2 * np.pi * 3 * (a[:, None] + a[None, :]) / 7)[..., None]  # (7, 7, 1)
    >>> key, frac = neuron_key_frequencies(acts)
    >>> key.tolist(), frac.round(6).tolist()
    ([3], [1.0])
    """
    acts = np.asarray(acts, dtype=np.float64)
    if acts.ndim != 3 or acts.shape[0] != acts.shape[1]:
        raise ConfigError(f"acts must have shape (p, p, n_neurons), got {acts.shape}")
    p = _check_p(acts.shape[0])
    basis, _ = fourier_basis(p)
    coef2 = np.einsum("ia,abn,jb->ijn", basis, acts, basis, optimize=True) ** 2  # (p, p, n)
    const = coef2[0, 0]  # (n,)
    member = _row_to_freq(p)  # (p, n_freq + 1): row i belongs to frequency k
    member[0, :] = 1.0  # the constant row joins every block
    block = np.einsum("ik,ijn,jk->kn", member, coef2, member)[1:] - const  # (n_freq, n)
    variance = coef2.sum(axis=(0, 1)) - const  # (n,)
    frac = block / np.where(variance > 0, variance, 1.0)  # (n_freq, n)
    best = np.argmax(frac, axis=0)  # (n,)
    return best + 1, np.where(variance > 0, frac[best, np.arange(frac.shape[1])], 0.0)


def key_frequencies_from_neurons(
    key_freq: np.ndarray, frac: np.ndarray, min_frac: float = 0.85, min_neurons: int = 1
) -> np.ndarray:
    """Key frequencies voted by neurons: those picked by ≥ ``min_neurons`` neurons with frac ≥ ``min_frac``.

    Sorted by the number of such neurons, most first (ties: lower frequency first).

    Examples
    --------
    >>> key_frequencies_from_neurons([4, 4, 9, 2, 9, 4], [0.9, 0.95, 0.99, 0.5, 0.9, 0.9]).tolist()
    [4, 9]
    """
    key_freq, frac = np.asarray(key_freq), np.asarray(frac, dtype=np.float64)
    if key_freq.ndim != 1 or frac.shape != key_freq.shape:
        raise ConfigError(f"key_freq and frac must be 1-D of equal length, got {key_freq.shape}, {frac.shape}")
    if min_neurons < 1:
        raise ConfigError(f"min_neurons must be >= 1, got {min_neurons}")
    freqs, counts = np.unique(key_freq[frac >= min_frac].astype(np.int64), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return freqs[order][counts[order] >= min_neurons]


def restricted_and_excluded_logits(
    logits: np.ndarray, key_freqs: np.ndarray, p: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split logits into key-frequency cos/sin(w_k(a + b)) components and the rest (Nanda et al.).

    For each key k the unit directions cos(w_k(a + b)) and sin(w_k(a + b)) over the p² grid (sin is
    absent at the Nyquist frequency of even p) are mutually orthogonal and orthogonal to the constant.
    restricted = the projection of each class's logits onto them plus the class's mean over (a, b);
    excluded = logits minus the projection (it keeps the mean).
    ``logits[a, b, c]``: (p, p, n_out); ``key_freqs``: 1-based, in 1 … p//2. Returns restricted, excluded.

    Examples
    --------
    >>> a = np.arange(7)
    >>> logits = np.cos(2 * np.pi * 2 * (a[:, None, None] + a[None, :, None] - a) / 7)  # (7, 7, 7)
    >>> r, e = restricted_and_excluded_logits(logits, [2], 7)
    >>> bool(np.allclose(r, logits)), bool(np.allclose(e, 0.0))
    (True, True)
    """
    p = _check_p(p)
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 3 or logits.shape[:2] != (p, p):
        raise ConfigError(f"logits must have shape ({p}, {p}, n_out), got {logits.shape}")
    ks = np.unique(np.asarray(key_freqs, dtype=np.int64).ravel())
    if ks.size and (ks.min() < 1 or ks.max() > p // 2):
        raise ConfigError(f"key_freqs must lie in 1..{p // 2}, got {ks.tolist()}")
    x = np.arange(p)
    angle = 2 * np.pi * ks[:, None, None] * (x[:, None] + x[None, :]) / p  # (n_key, p, p)
    dirs = np.concatenate([np.cos(angle), np.sin(angle[2 * ks != p])]).reshape(-1, p * p)  # (n_dir, p²)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    flat = logits.reshape(p * p, -1)  # (p², n_out)
    component = (dirs.T @ (dirs @ flat)).reshape(logits.shape)  # (p, p, n_out)
    restricted = component + logits.mean(axis=(0, 1), keepdims=True)
    return restricted, logits - component


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean cross-entropy in float64 with a stable log-sum-exp.

    Examples
    --------
    >>> round(cross_entropy(np.zeros((2, 4)), np.array([0, 3])), 6)  # log 4
    1.386294
    """
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets)
    if logits.ndim != 2 or targets.shape != logits.shape[:1]:
        raise ConfigError(f"need logits (N, C) and targets (N,), got {logits.shape} and {targets.shape}")
    if not np.issubdtype(targets.dtype, np.integer) or np.any((targets < 0) | (targets >= logits.shape[1])):
        raise ConfigError(f"targets must be integers in [0, {logits.shape[1]})")
    shift = logits.max(axis=1, keepdims=True)  # (N, 1)
    lse = shift[:, 0] + np.log(np.exp(logits - shift).sum(axis=1))  # (N,)
    return float(np.mean(lse - logits[np.arange(logits.shape[0]), targets]))


def loss_spectrum(losses: np.ndarray, n_early: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Power spectrum of the early training-loss curve (Notsawo et al.'s predictor of later grokking).

    ``|rfft(l − mean l)|²`` of the first ``n_early`` losses (default all); frequencies in cycles per
    logged point. Oscillations in the early loss signal that the run will grok later.

    Returns freqs, power, each of shape (n_early // 2 + 1,).

    Examples
    --------
    >>> freqs, power = loss_spectrum(1 + np.cos(2 * np.pi * 5 * np.arange(100) / 100))
    >>> float(freqs[np.argmax(power)])
    0.05
    """
    x = np.asarray(losses, dtype=np.float64)
    if x.ndim != 1:
        raise ConfigError(f"losses must be 1-D, got shape {x.shape}")
    n = x.size if n_early is None else n_early
    if not 2 <= n <= x.size:
        raise ConfigError(f"n_early must be in [2, {x.size}], got {n_early}")
    x = x[:n]
    if not np.all(np.isfinite(x)):
        raise ConfigError("losses must be finite in the early window")
    return np.fft.rfftfreq(n), np.abs(np.fft.rfft(x - x.mean())) ** 2
