"""Every task as one shape of data: train/test arrays, the output width and the store's task description.

The trainer asks :func:`build` for a :class:`TaskData` and never looks at the task again, so a new task is a
builder here plus its size rules in :mod:`grokscope.config.resolve`.  Pure numpy (with pandas/tokenizers for text and
scikit-learn for the digits); no torch, so analysis code can rebuild a run's data without it.

Tasks:

* ``modular`` (seeds 002 and 000): :mod:`grokscope.data.modular`;
* ``equidistant`` / ``equivariant`` (seed 001): :mod:`grokscope.data.hierarchy`, with per-subclass test groups;
* ``text`` (seed 002's IMDB/Yelp setup): :mod:`grokscope.data.text`, a WordPiece vocabulary learned from the
  training pool (not from the subset, so every data fraction of a study shares one vocabulary);
* ``digits`` (Omnigrok's image task at CPU scale): scikit-learn's bundled 8×8 digits, pixels scaled to [0, 1].

Sizes follow one rule everywhere: a fixed test set per ``split_seed``, and a training subset of ``n_train``
examples (or ``frac`` of the pool) that nests across sizes for one ``seed``.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grokscope.config.run import TEXT, RunConfig, field_names
from grokscope.data import hierarchy
from grokscope.data import modular as tasks
from grokscope.errors import ConfigError

DIGITS_ROWS = 1797  # scikit-learn's bundled copy of the UCI 8×8 digits
DIGITS_FEATURES = 64  # 8×8 pixels


@dataclass(frozen=True)
class TaskData:
    """One run's examples.  Inputs are token ids ``(N, T)`` int64 or features ``(N, D)`` float32."""

    train_x: np.ndarray  # (n_train, …)
    train_y: np.ndarray  # (n_train,) int64 class ids
    test_x: np.ndarray  # (n_test, …)
    test_y: np.ndarray  # (n_test,)
    n_classes: int  # the model's output width
    train_idx: np.ndarray  # (n_train,) the task's rows trained on (stored for provenance)
    test_idx: np.ndarray  # (n_test,)
    attrs: dict[str, Any]  # JSON for the store's ``task`` attribute
    test_groups: np.ndarray | None = None  # (n_test,) subclass of each test example (seed 001)
    group_names: tuple[str, ...] = field(default=())  # one per group


# --- builders -------------------------------------------------------------------------------------------

def build(cfg: RunConfig) -> TaskData:
    """The data ``cfg`` (resolved or not) describes: its split, training subset and test set."""
    from grokscope.config.resolve import resolve  # which imports this module for the task sizes

    cfg = resolve(cfg)
    builder = {"modular": _modular, "text": _text, "digits": _digits}.get(cfg.task, _hierarchy)
    return builder(cfg)


def _modular(cfg: RunConfig) -> TaskData:
    task = tasks.build_task(cfg)
    inputs = task.tokens if cfg.model == "transformer" else task.operands
    return TaskData(
        inputs[task.train_idx], task.targets[task.train_idx], inputs[task.test_idx], task.targets[task.test_idx],
        n_classes=task.vocab_size if cfg.model == "transformer" else cfg.p,  # argmax over the whole vocabulary
        train_idx=task.train_idx, test_idx=task.test_idx,
        attrs={"kind": "modular", "vocab": list(task.vocab), "seq_len": task.seq_len,
               "answer_position": task.seq_len - 1, "pool_size": len(task.pool_idx), "n_test": len(task.test_idx)})


def _hierarchy(cfg: RunConfig) -> TaskData:
    h = hierarchy.build_hierarchy(cfg.task, cfg.n_train, cfg.downsample_frac, cfg.n_downsampled, cfg.noise_std,
                                  cfg.n_test, cfg.seed, cfg.split_seed)
    return TaskData(
        h.train_x, h.train_y, h.test_x, h.test_y, n_classes=h.n_classes,
        train_idx=np.arange(len(h.train_y)), test_idx=np.arange(len(h.test_y)),
        attrs={"kind": cfg.task, **h.attrs(), "pool_size": None, "n_test": len(h.test_y)},
        test_groups=h.test_sub, group_names=tuple(str(c) for c in h.codes))


def _stamp(path: str | None) -> tuple:
    """A file's version (mtime, size), so caches see edits; ``()`` for hf:NAME or a missing file."""
    try:
        st = os.stat(path)
        return (st.st_mtime_ns, st.st_size)
    except (OSError, TypeError):
        return ()


@functools.lru_cache(maxsize=8)
def _read_table(path: str, stamp: tuple, text_col: str | None, label_col: str | None,
                classes: tuple[str, ...] | None):
    from grokscope.data import text as textdata  # pandas + tokenizers: only text runs pay for the import

    return textdata.read_text_table(path, text_col, label_col, classes)


def _text_split(cfg: RunConfig):
    """``(train table, test table or None, pool rows, test rows)`` of a text run (tables cached per file
    version: resolve and build read each file once)."""
    train = _read_table(cfg.data, _stamp(cfg.data), cfg.text_col, cfg.label_col, None)
    if cfg.test_data is not None:
        test = _read_table(cfg.test_data, _stamp(cfg.test_data), cfg.text_col, cfg.label_col, train.classes)
        return train, test, np.arange(len(train.texts)), np.arange(len(test.texts))
    pool_idx, test_idx = tasks.split_pool(len(train.texts), cfg.train_ratio, cfg.split_seed)
    if len(test_idx) == 0 or len(pool_idx) == 0:
        raise ConfigError(f"{cfg.data}: {len(train.texts)} rows leave no train pool or no test set at "
                          f"train_ratio {cfg.train_ratio}; give --test-data or more rows")
    return train, None, pool_idx, test_idx


def text_pool_size(cfg: RunConfig) -> int:
    return len(_text_split(cfg)[2])


_TEXT_KEYS = (*field_names(tasks=TEXT), "train_ratio", "split_seed")  # what the encoded text depends on


@functools.lru_cache(maxsize=2)
def _encoded_text(key: tuple) -> tuple:
    """The whole pool and test set tokenized once per study (a sweep's runs share them)."""
    from grokscope.data import text as textdata

    cfg = RunConfig(task="text", **dict(zip(_TEXT_KEYS, key[:len(_TEXT_KEYS)])))
    train, test, pool_idx, test_idx = _text_split(cfg)
    tokenizer = textdata.build_tokenizer([train.texts[i] for i in pool_idx], cfg.vocab_size)
    pool_x = textdata.encode_texts(tokenizer, [train.texts[i] for i in pool_idx], cfg.max_len)  # (n_pool, L)
    test_texts = test.texts if test is not None else [train.texts[i] for i in test_idx]
    test_y = test.labels if test is not None else train.labels[test_idx]
    return (train, test, pool_idx, test_idx, pool_x, textdata.encode_texts(tokenizer, test_texts, cfg.max_len),
            test_y, tokenizer.get_vocab_size())


def _text(cfg: RunConfig) -> TaskData:
    key = tuple(getattr(cfg, k) for k in _TEXT_KEYS) + (_stamp(cfg.data), _stamp(cfg.test_data))
    train, test, pool_idx, test_idx, pool_x, test_x, test_y, vocab_size = _encoded_text(key)
    subset = tasks.nested_subset(pool_idx, cfg.n_train, cfg.seed)  # sorted rows of the file
    rows = np.searchsorted(pool_idx, subset)  # their positions in the (sorted) pool
    return TaskData(
        pool_x[rows], train.labels[subset], test_x, test_y, n_classes=len(train.classes), train_idx=subset,
        test_idx=test_idx,
        attrs={"kind": "text", "classes": list(train.classes), "source": train.source,
               "test_source": test.source if test is not None else None, "seq_len": cfg.max_len,
               "vocab_size": vocab_size, "tokenizer": "WordPiece learned from the train pool (BERT normalizer, "
               "lowercase); [PAD] 0, [UNK] 1, [CLS] 2 first", "pool_size": len(pool_idx), "n_test": len(test_idx)})


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits: pixels ``(1797, 64)`` float32 in [0, 1] and labels ``(1797,)``."""
    try:
        from sklearn.datasets import load_digits as sk_load
    except ImportError:
        raise ConfigError("task digits needs scikit-learn (its bundled copy; nothing downloads): "
                          "pip install scikit-learn") from None
    x, y = sk_load(return_X_y=True)
    return (x / 16.0).astype(np.float32), y.astype(np.int64)


def _digits(cfg: RunConfig) -> TaskData:
    x, y = load_digits()
    pool_idx, test_idx = tasks.split_pool(len(y), cfg.train_ratio, cfg.split_seed)
    subset = tasks.nested_subset(pool_idx, cfg.n_train, cfg.seed)
    return TaskData(x[subset], y[subset], x[test_idx], y[test_idx], n_classes=10, train_idx=subset,
                    test_idx=test_idx, attrs={"kind": "digits", "source": "sklearn.datasets.load_digits",
                                              "image_shape": [8, 8], "pool_size": len(pool_idx),
                                              "n_test": len(test_idx)})
