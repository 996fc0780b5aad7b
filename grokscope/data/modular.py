"""Modular-arithmetic tasks as numpy arrays: all pairs, their token sequences, the split and nested subsets.

Pure numpy, so analysis code (Fourier measures need ``p`` and the token layout) and the trainer share one
definition.  The answer is always read at the *last* input position: the model sees ``a + b % p =`` (zhu),
``a b =`` (nanda) or ``a b @ P`` (singh) and predicts ``c`` there, so the answer token itself is never fed to
the model.

Randomness is layered so that studies compare like with like:

* ``split_seed`` fixes the train pool / test set split once for a study (seed 002 keeps one test set);
* ``seed`` draws the training subset as a prefix of one permutation of the pool, so for a given seed every
  smaller subset is contained in every larger one and a data-size sweep changes only the size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grokscope.config.run import RunConfig
from grokscope.errors import ConfigError

# Streams of numpy's SeedSequence, so the split and the subset never share random numbers.
_SPLIT_STREAM = 0x5EED_0001
_SUBSET_STREAM = 0x5EED_0002
SEQ_LEN = {"zhu": 6, "nanda": 3, "singh": 4}  # input tokens per format
OPERATOR_POSITION = {"zhu": 1, "singh": 2}  # where the operator token sits (nanda has none)


@dataclass(frozen=True)
class ModularTask:
    """All examples of one modular task.

    ``tokens`` feed a transformer, ``operands`` an MLP; ``targets`` are the answers ``c`` (token ids equal the
    numbers, so ``c`` is also its class index).  ``train_idx``/``test_idx`` index the rows.
    """

    operands: np.ndarray  # (N, 2) int64: a, b
    tokens: np.ndarray  # (N, T) int64: the input sequence, answer predicted at position T-1
    targets: np.ndarray  # (N,) int64: c
    vocab: tuple[str, ...]  # token id -> text
    pool_idx: np.ndarray  # (n_pool,) rows available for training
    test_idx: np.ndarray  # (n_test,) the fixed test set
    train_idx: np.ndarray  # (n_train,) the subset trained on, sorted

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def seq_len(self) -> int:
        return self.tokens.shape[1]


def modular_pairs(op: str, p: int) -> tuple[np.ndarray, np.ndarray]:
    """All valid ``(a, b)`` pairs in row-major order and their answers ``c = a ∘ b mod p``.

    Returns ``operands (N, 2)`` and ``targets (N,)``; ÷ skips ``b = 0`` (``N = p·(p−1)``), others ``N = p²``.
    """
    a, b = (g.ravel() for g in np.meshgrid(np.arange(p), np.arange(p), indexing="ij"))
    if op == "/":
        a, b = a[b != 0], b[b != 0]
    if op == "+":
        c = (a + b) % p
    elif op == "-":
        c = (a - b) % p
    elif op == "*":
        c = (a * b) % p
    elif op == "/":
        c = (a * np.array([pow(int(x), -1, p) for x in b])) % p
    else:
        raise ConfigError(f"unknown op {op!r}")
    return np.stack([a, b], axis=1).astype(np.int64), c.astype(np.int64)


def vocabulary(op: str, p: int, input_format: str, moduli: Sequence[int] | None = None) -> tuple[str, ...]:
    """Token texts by id: numbers first (so a number's id is its value), then the format's symbols.

    zhu: ``0 … p`` (``p`` is the written modulus), then the operator, ``=``, ``%`` → ``p + 4`` tokens (seed 002
    writes ``+`` there; other operators take the same slot).  nanda: ``0 … p−1`` then ``=`` → ``p + 1`` tokens.
    singh (seed 000): one vocabulary for every modulus of a study (``moduli``, default ``(p,)``), so teachers
    and students on different moduli share token ids: ``0 … max−1``, ``@``, then ``mod{P}`` per modulus in
    ascending order → ``max + 1 + len(moduli)`` tokens (116 for 107 and 113).

    Examples
    --------
    >>> vocabulary("+", 5, "singh", moduli=(5, 3))
    ('0', '1', '2', '3', '4', '@', 'mod3', 'mod5')
    """
    if input_format == "singh":
        study = sorted(set(moduli or ()) | {p})
        return tuple(str(i) for i in range(study[-1])) + ("@",) + tuple(f"mod{m}" for m in study)
    numbers = tuple(str(i) for i in range(p))
    if input_format == "zhu":
        return numbers + (str(p), op, "=", "%")
    if input_format == "nanda":
        return numbers + ("=",)
    raise ConfigError(f"unknown input_format {input_format!r}")


def encode(operands: np.ndarray, p: int, op: str, input_format: str,
           moduli: Sequence[int] | None = None) -> np.ndarray:
    """Token ids ``(N, T)`` for operand pairs ``(N, 2)``; the answer is predicted at the last position."""
    vocab = vocabulary(op, p, input_format, moduli)
    ids = {t: i for i, t in enumerate(vocab)}
    a, b = operands[:, 0], operands[:, 1]
    n = len(operands)
    const = lambda tok: np.full(n, ids[tok], dtype=np.int64)  # noqa: E731
    if input_format == "zhu":  # a + b % p =
        cols = [a, const(op), b, const("%"), const(str(p)), const("=")]
    elif input_format == "singh":  # a b @ P
        cols = [a, b, const("@"), const(f"mod{p}")]
    else:  # a b =
        cols = [a, b, const("=")]
    return np.stack(cols, axis=1).astype(np.int64)


def split_pool(n: int, train_ratio: float, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``n`` rows into a train pool of ``floor(ratio·n)`` rows and a test set of the rest (both sorted).

    At p = 113 with + and ratio 0.75 this gives seed 002's 9,576 / 3,193.
    """
    rng = np.random.default_rng([split_seed, _SPLIT_STREAM])
    perm = rng.permutation(n)
    n_pool = int(np.floor(train_ratio * n))
    return np.sort(perm[:n_pool]), np.sort(perm[n_pool:])


def nested_subset(pool_idx: np.ndarray, n_train: int, seed: int) -> np.ndarray:
    """The first ``n_train`` rows of a seed-fixed permutation of the pool (sorted): subsets nest across sizes."""
    if not 1 <= n_train <= len(pool_idx):
        raise ConfigError(f"n_train={n_train} is outside the train pool of {len(pool_idx)} examples")
    rng = np.random.default_rng([seed, _SUBSET_STREAM])
    return np.sort(pool_idx[rng.permutation(len(pool_idx))[:n_train]])


def pool_size(cfg: RunConfig) -> int:
    """How many examples the train pool of ``cfg`` holds."""
    n_pairs = cfg.p * (cfg.p - 1) if cfg.op == "/" else cfg.p * cfg.p
    return int(np.floor(cfg.train_ratio * n_pairs))


def build_task(cfg: RunConfig) -> ModularTask:
    """The task a (resolved or not) config describes, with its split and training subset."""
    from grokscope.config.resolve import resolve  # which imports this module for the pool size

    cfg = resolve(cfg)
    operands, targets = modular_pairs(cfg.op, cfg.p)
    pool_idx, test_idx = split_pool(len(targets), cfg.train_ratio, cfg.split_seed)
    return ModularTask(
        operands=operands,
        tokens=encode(operands, cfg.p, cfg.op, cfg.input_format, cfg.study_moduli()),
        targets=targets,
        vocab=vocabulary(cfg.op, cfg.p, cfg.input_format, cfg.study_moduli()),
        pool_idx=pool_idx,
        test_idx=test_idx,
        train_idx=nested_subset(pool_idx, cfg.n_train, cfg.seed),
    )
