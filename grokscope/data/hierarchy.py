"""Seed 001's class-hierarchy datasets: grokking made by a train/test shift from down-sampled subclasses.

Carvalho et al. build inputs from ``p = 9`` pairs of ``r = 13``-dimensional Gaussians whose two means are 1 apart.
A code ``j`` in 0…511 takes from pair ``i`` the member given by bit ``i`` of ``j`` (bit 0 least significant), so a
sample is the concatenation over the pairs of ``mean[i, bit_i(j)] + noise`` (``x ∈ R^117``) and the squared distance
between two codes' means is their Hamming distance.  Classes are groups of codes (subclasses); training
down-samples some subclasses by a fraction ``f`` (eq. 1) while the test set stays balanced.

Choices the paper leaves open, made here and recorded by :meth:`Hierarchy.attrs`:

* pair means: for pair ``i`` a random unit vector ``u_i ∈ R^13`` (seeded by ``split_seed``), members at ``∓u_i/2``.
  The pairs fill disjoint coordinate blocks, so the geometry between codes does not depend on the ``u_i``;
* the noise is isotropic, ``N(0, noise_std² I)``, shared by all Gaussians;
* the down-sampled subclasses are the *last* ``n_downsampled`` of each class (equidistant: the second of each
  pair; equivariant: distance-1 neighbours, never the centre unless all 10 are down-sampled).

Randomness is layered like :mod:`grokscope.data.modular`: ``split_seed`` fixes the means and the test set of a study;
``seed`` draws each subclass's training samples from its own stream, so for one seed smaller training sets nest
inside larger ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from grokscope.errors import ConfigError

N_PAIRS, PAIR_DIM = 9, 13
HIERARCHIES = ("equidistant", "equivariant")
# Bayes accuracy (exact class posterior with the true means, 200,000 balanced test samples) for noise_std
# 0.1 / 0.2 / 0.25 / 0.3 / 0.4 / 0.5: equidistant 100.00 / 99.89 / 98.85 / 95.90 / 86.07 / 75.60 %, equivariant
# 100.00 / 100.00 / 99.98 / 99.78 / 97.48 / 92.40 % (nearest subclass mean: within 0.3 points).  Code means lie
# sqrt(Hamming) apart whatever the u_i, so these hold for every split_seed.  0.25: clean but not trivial.
DEFAULT_NOISE_STD = 0.25
MEAN_RULE = "pair i: random unit vector u_i in R^13 (seeded by split_seed); members at -u_i/2 (bit 0), +u_i/2 (bit 1)"
_EQUIVARIANT_CENTRES = (63, 240, 323, 396)  # pairwise Hamming distance 6
# Streams of numpy's SeedSequence, so means, test set and training samples never share random numbers.
_MEANS_STREAM = 0x5EED_0101
_TEST_STREAM = 0x5EED_0102
_TRAIN_STREAM = 0x5EED_0103
_REL_TOL = 1e-12  # eq. 1's ceil/floor: float error is ~1e-16 relative, so exact integers stay exact


def subclass_codes(kind: str) -> np.ndarray:
    """Codes of each class's subclasses, ``(n_classes, n_sub)`` int64.

    >>> subclass_codes("equidistant").tolist()
    [[1, 2], [4, 8], [16, 32], [64, 128]]
    """
    if kind == "equidistant":  # the weight-1 codes: a clique at pairwise distance 2
        return (2 ** np.arange(8, dtype=np.int64)).reshape(4, 2)
    if kind == "equivariant":  # each centre, then centre ^ 2^i for i = 0…8
        c = np.array(_EQUIVARIANT_CENTRES, dtype=np.int64)[:, None]
        return np.concatenate([c, c ^ (2 ** np.arange(N_PAIRS, dtype=np.int64))], axis=1)
    raise ConfigError(f"unknown hierarchy {kind!r} (choose from {', '.join(HIERARCHIES)})")


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise Hamming distance (popcount of ``a ^ b``) of non-negative integer codes, broadcast.

    >>> hamming(np.array([63, 0]), np.array([240, 7])).tolist()
    [6, 3]
    """
    x = np.ascontiguousarray(np.bitwise_xor(np.asarray(a, np.int64), np.asarray(b, np.int64)))  # (...)
    bits = np.unpackbits(x.reshape(*x.shape, 1).view(np.uint8), axis=-1)  # (..., 64)
    return bits.sum(axis=-1, dtype=np.int64)


def pair_means(split_seed: int) -> np.ndarray:
    """The two means of every pair, ``(9, 2, 13)`` float64: member 0 at ``-u_i/2``, member 1 at ``+u_i/2``."""
    u = np.random.default_rng([split_seed, _MEANS_STREAM]).standard_normal((N_PAIRS, PAIR_DIM))
    u /= np.linalg.norm(u, axis=1, keepdims=True)  # (9, 13) unit vectors
    return np.stack([-u / 2, u / 2], axis=1)


def code_means(codes: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Mean input of each code, ``(*codes.shape, 117)``: pair ``i`` contributes ``means[i, bit_i(code)]``."""
    codes = np.asarray(codes, np.int64)
    bits = (codes[..., None] >> np.arange(N_PAIRS)) & 1  # (..., 9)
    return means[np.arange(N_PAIRS), bits].reshape(*codes.shape, N_PAIRS * PAIR_DIM)


def imbalance_counts(n_train: int, f: float, n_down: int, n_rest: int) -> tuple[int, int]:
    """Eq. 1: samples per down-sampled subclass ``s_s = ⌈fγ_D/(fγ_s+γ_r)⌉`` and per other ``s_r = ⌊γ_D/(fγ_s+γ_r)⌋``.

    >>> imbalance_counts(2000, 0.2, 4, 4)
    (84, 416)
    """
    denom = f * n_down + n_rest
    if denom <= 0:
        raise ConfigError(f"no subclass can be sampled: f={f} with {n_down} down-sampled and {n_rest} other subclasses")
    s_s = math.ceil(f * n_train / denom * (1 - _REL_TOL))
    s_r = math.floor(n_train / denom * (1 + _REL_TOL))
    return s_s, s_r


def downsampled(kind: str, n_downsampled: int) -> np.ndarray:
    """Which subclasses are down-sampled, ``(n_classes, n_sub)`` bool: the last ``n_downsampled`` of each class."""
    n_classes, n_sub = subclass_codes(kind).shape
    if not 0 <= n_downsampled <= n_sub:
        raise ConfigError(f"n_downsampled must be in 0..{n_sub} for {kind}, got {n_downsampled}")
    return np.broadcast_to(np.arange(n_sub) >= n_sub - n_downsampled, (n_classes, n_sub)).copy()


def check_sizes(kind: str, n_train: int, downsample_frac: float, n_downsampled: int, noise_std: float,
                n_test: int) -> tuple[int, int]:
    """Validate a hierarchy's sizes without drawing anything; returns eq. 1's ``(s_s, s_r)``.

    Config resolution calls this, so a bad size is refused before a store or a progress bar exists.
    """
    n_subclasses = subclass_codes(kind).size
    if not 0 <= downsample_frac <= 1:
        raise ConfigError(f"downsample_frac must be in [0, 1], got {downsample_frac}")
    if not noise_std > 0 or not math.isfinite(noise_std):
        raise ConfigError(f"noise_std must be positive and finite, got {noise_std}")
    if n_test < n_subclasses:
        raise ConfigError(f"n_test={n_test} is smaller than the {n_subclasses} subclasses of {kind}")
    down = downsampled(kind, n_downsampled)  # (n_classes, n_sub)
    counts = imbalance_counts(n_train, downsample_frac, int(down.sum()), int((~down).sum()))
    if n_samples(kind, n_downsampled, counts) == 0:
        raise ConfigError(f"n_train={n_train} gives every subclass 0 training samples (s_s, s_r = {counts})")
    return counts


def n_samples(kind: str, n_downsampled: int, counts: tuple[int, int]) -> int:
    """The actual training size of eq. 1's counts: ``s_s·γ_s + s_r·γ_r``."""
    down = downsampled(kind, n_downsampled)
    return int(counts[0] * down.sum() + counts[1] * (~down).sum())


@dataclass(frozen=True)
class Hierarchy:
    """One hierarchy dataset: training rows ordered class by class, subclass by subclass; a balanced test set.

    Subclasses are flat indices ``class * n_sub + j``; ``codes`` and ``is_downsampled`` are indexed by them.
    """

    kind: str
    train_x: np.ndarray  # (n_train, 117) float32
    train_y: np.ndarray  # (n_train,) int64 class
    train_sub: np.ndarray  # (n_train,) int64 flat subclass
    test_x: np.ndarray  # (n_test, 117) float32
    test_y: np.ndarray  # (n_test,) int64
    test_sub: np.ndarray  # (n_test,) int64
    codes: np.ndarray  # (n_classes * n_sub,) int64
    is_downsampled: np.ndarray  # (n_classes * n_sub,) bool
    counts: tuple[int, int]  # (s_s, s_r) training samples per down-sampled / other subclass
    noise_std: float
    downsample_frac: float
    n_downsampled: int  # per class
    seed: int
    split_seed: int

    @property
    def n_classes(self) -> int:
        return len(self.codes) // self.n_sub

    @property
    def n_sub(self) -> int:
        return subclass_codes(self.kind).shape[1]

    def attrs(self) -> dict[str, Any]:
        """JSON-able description for the run store."""
        return {
            "kind": self.kind,
            "codes": self.codes.tolist(),
            "subclass_class": (np.arange(len(self.codes)) // self.n_sub).tolist(),
            "downsampled": self.is_downsampled.tolist(),
            "counts": list(self.counts),
            "n_train": len(self.train_y),
            "n_test": len(self.test_y),
            "downsample_frac": self.downsample_frac,
            "n_downsampled": self.n_downsampled,
            "noise_std": self.noise_std,
            "seed": self.seed,
            "split_seed": self.split_seed,
            "mean_rule": MEAN_RULE,
        }


def build_hierarchy(kind: str, n_train: int, downsample_frac: float, n_downsampled: int,
                    noise_std: float, n_test: int, seed: int, split_seed: int) -> Hierarchy:
    """Draw a hierarchy's training set (eq. 1 imbalance) and its balanced test set.

    The actual training size is ``s_s·γ_s + s_r·γ_r``, which may differ slightly from ``n_train``.

    >>> h = build_hierarchy("equidistant", 2000, 0.2, 1, DEFAULT_NOISE_STD, 10_000, seed=0, split_seed=0)
    >>> h.counts, h.train_x.shape, h.test_x.shape
    ((84, 416), (2000, 117), (10000, 117))
    """
    table = subclass_codes(kind)  # (n_classes, n_sub)
    n_sub = table.shape[1]
    counts = check_sizes(kind, n_train, downsample_frac, n_downsampled, noise_std, n_test)
    if seed < 0 or split_seed < 0:
        raise ConfigError(f"seeds must be non-negative, got seed={seed}, split_seed={split_seed}")
    down = downsampled(kind, n_downsampled).ravel()  # (n_subclasses,)
    per_sub = np.where(down, counts[0], counts[1])  # (n_subclasses,)
    codes = table.ravel()
    mu = code_means(codes, pair_means(split_seed))  # (n_subclasses, 117)
    dim = N_PAIRS * PAIR_DIM

    # training: one stream per subclass, so sample k of a subclass is the same whatever the count
    noise = [np.random.default_rng([seed, _TRAIN_STREAM, s]).standard_normal((int(k), dim))
             for s, k in enumerate(per_sub)]
    train_sub = np.repeat(np.arange(codes.size, dtype=np.int64), per_sub)  # (n_train,)
    train_x = mu[train_sub] + noise_std * np.concatenate(noise)

    # test: balanced, n_test // n_subclasses each, the remainder to the first subclasses
    test_per = np.full(codes.size, n_test // codes.size) + (np.arange(codes.size) < n_test % codes.size)
    test_sub = np.repeat(np.arange(codes.size, dtype=np.int64), test_per)  # (n_test,)
    test_noise = np.random.default_rng([split_seed, _TEST_STREAM]).standard_normal((n_test, dim))
    test_x = mu[test_sub] + noise_std * test_noise

    return Hierarchy(
        kind=kind, train_x=train_x.astype(np.float32), train_y=train_sub // n_sub, train_sub=train_sub,
        test_x=test_x.astype(np.float32), test_y=test_sub // n_sub, test_sub=test_sub, codes=codes,
        is_downsampled=down, counts=counts, noise_std=float(noise_std), downsample_frac=float(downsample_frac),
        n_downsampled=int(n_downsampled), seed=int(seed), split_seed=int(split_seed),
    )
