"""Config resolution: every default and every derived size in one place.

A :class:`~grokscope.config.run.RunConfig` leaves ``None`` where the value depends on the task or on other
fields; :func:`resolve` fills each one before training, and the store keeps the resolved values, so a
store's config rebuilds its run exactly.  The rules:

* data size: ``n_train = round(frac · pool)`` (at least 1; ``frac`` None: the whole pool), then
  ``frac = n_train / pool`` exactly; the pool is the task's (:func:`pool_size`); seed 001's hierarchies draw
  fresh samples (``n_train`` 2000 unless given);
* per task: the hierarchies' ``downsample_frac`` 1, ``n_downsampled`` 1, ``noise_std`` 0.25, ``n_test``
  10,000; text's ``max_len`` 256 and ``vocab_size`` 30,522; a vector task's encoder ``n_tokens`` (9 Gaussian
  pairs, 8 rows of digits);
* model: ``d_mlp = 4 · d_model``; ``n_ctx`` = the input length (:func:`input_length`);
* schedule: ``ckpt_every = steps // 100`` (at least 1); mini-batches when ``batch_size`` is below the
  training-set size (:func:`mini_batched`).

Pure numpy; the task sizes come from :mod:`grokscope.data`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from grokscope.config.run import HIERARCHY_TASKS, RunConfig
from grokscope.data import build as data_build
from grokscope.data import hierarchy, modular
from grokscope.errors import ConfigError

DEFAULT_FRAC = 1.0
HIERARCHY_N_TRAIN = 2000
DEFAULT_DOWNSAMPLE_FRAC, DEFAULT_N_DOWNSAMPLED = 1.0, 1
DEFAULT_N_TEST = 10_000
DEFAULT_MAX_LEN, DEFAULT_VOCAB = 256, 30_522
DIGITS_TOKENS = 8  # one encoder token per row of an 8×8 image
MLP_RATIO = 4  # d_mlp = 4 · d_model (GPT-1)
CKPTS_PER_RUN = 100  # ckpt_every = steps // 100


def default_ckpt_every(steps: int) -> int:
    """The checkpoint cadence of a run of ``steps`` steps that gives none: about 100 checkpoints."""
    return max(1, steps // CKPTS_PER_RUN)


def derived(cfg: RunConfig) -> dict[str, Any]:
    """The values :func:`resolve` gives ``d_mlp``, ``n_ctx`` and ``ckpt_every`` when they are left None:
    what a config derived rather than chose (a distilled student re-derives these for its own run)."""
    return {"d_mlp": MLP_RATIO * cfg.d_model, "n_ctx": input_length(cfg),
            "ckpt_every": default_ckpt_every(cfg.steps)}


def input_length(cfg: RunConfig) -> int | None:
    """Tokens per example the model reads: the modular format's length, text's ``max_len``, or the vector
    tasks' encoder tokens plus [CLS] (``n_tokens`` resolved); None for MLPs on vectors."""
    if cfg.task == "modular":
        return modular.SEQ_LEN[cfg.input_format]
    if cfg.task == "text":
        return cfg.max_len if cfg.max_len is not None else DEFAULT_MAX_LEN
    if cfg.model == "transformer":
        return _n_tokens(cfg) + 1
    return None


def pool_size(cfg: RunConfig) -> int | None:
    """Examples in the task's train pool (None for seed 001's hierarchies, which sample fresh ones)."""
    if cfg.task == "modular":
        return modular.pool_size(cfg)
    if cfg.task == "text":
        return data_build.text_pool_size(cfg)
    if cfg.task == "digits":
        return int(np.floor(cfg.train_ratio * data_build.DIGITS_ROWS))
    return None


def resolve(cfg: RunConfig) -> RunConfig:
    """``cfg`` with every ``None`` field the task decides filled in (sizes, widths, cadences).

    Raises :class:`ConfigError` when a size does not fit the task (``n_train`` beyond the pool, ``n_ctx``
    shorter than the input, ``n_tokens`` not dividing the features, impossible hierarchy counts).

    Examples
    --------
    >>> r = resolve(RunConfig(p=13, frac=0.5, d_model=32, steps=500))
    >>> r.n_train, r.d_mlp, r.n_ctx, r.ckpt_every  # pool: floor(0.75 · 13²) = 126
    (63, 128, 6, 5)
    """
    cfg = dataclasses.replace(cfg, **_task_defaults(cfg))
    cfg = dataclasses.replace(cfg, **_data_size(cfg))
    n_ctx = None
    length = input_length(cfg)
    if length is not None:
        n_ctx = cfg.n_ctx if cfg.n_ctx is not None else length
        if n_ctx < length:
            raise ConfigError(f"n_ctx={n_ctx} is shorter than the {length}-token input")
    rules = derived(cfg)
    return dataclasses.replace(cfg, n_ctx=n_ctx, d_mlp=_given(cfg.d_mlp, rules["d_mlp"]),
                               ckpt_every=_given(cfg.ckpt_every, rules["ckpt_every"]))


def _task_defaults(cfg: RunConfig) -> dict[str, Any]:
    """The task's own fields, defaulted; checked where a task's sizes constrain each other."""
    if cfg.task in HIERARCHY_TASKS:
        values = {"n_train": _given(cfg.n_train, HIERARCHY_N_TRAIN),
                  "downsample_frac": _given(cfg.downsample_frac, DEFAULT_DOWNSAMPLE_FRAC),
                  "n_downsampled": _given(cfg.n_downsampled, DEFAULT_N_DOWNSAMPLED),
                  "noise_std": _given(cfg.noise_std, hierarchy.DEFAULT_NOISE_STD),
                  "n_test": _given(cfg.n_test, DEFAULT_N_TEST)}
        hierarchy.check_sizes(cfg.task, values["n_train"], values["downsample_frac"], values["n_downsampled"],
                              values["noise_std"], values["n_test"])
    elif cfg.task == "text":
        values = {"max_len": _given(cfg.max_len, DEFAULT_MAX_LEN), "vocab_size": _given(cfg.vocab_size, DEFAULT_VOCAB)}
    else:
        values = {}
    if cfg.model == "transformer" and cfg.task in ("digits", *HIERARCHY_TASKS):
        values["n_tokens"] = _n_tokens(cfg)
    return values


def _n_tokens(cfg: RunConfig) -> int:
    """Encoder tokens of a vector task (given, or one per Gaussian pair / image row); must divide the width."""
    n_tokens = _given(cfg.n_tokens, DIGITS_TOKENS if cfg.task == "digits" else hierarchy.N_PAIRS)
    width = data_build.DIGITS_FEATURES if cfg.task == "digits" else hierarchy.N_PAIRS * hierarchy.PAIR_DIM
    if width % n_tokens:
        raise ConfigError(f"n_tokens={n_tokens} does not divide the {width} input features")
    return n_tokens


def _data_size(cfg: RunConfig) -> dict[str, Any]:
    """``n_train`` and ``frac`` of a task with a pool: from ``frac`` (or the whole pool), checked to fit."""
    pool = pool_size(cfg)
    if pool is None:  # hierarchies: n_train defaulted with the task's fields
        return {}
    if pool < 1:
        raise ConfigError(f"the train pool is empty (task {cfg.task}, train_ratio={cfg.train_ratio})")
    n_train = cfg.n_train if cfg.n_train is not None else max(1, int(round(_given(cfg.frac, DEFAULT_FRAC) * pool)))
    if n_train > pool:
        raise ConfigError(f"n_train={n_train} exceeds the train pool of {pool} examples")
    return {"n_train": n_train, "frac": n_train / pool}


def train_size(cfg: RunConfig) -> int:
    """Training examples a resolved config trains on: ``n_train``, or eq. 1's ``s_s·γ_s + s_r·γ_r`` for the
    class hierarchies (which may differ from the requested ``n_train`` by the rounding of eq. 1)."""
    if cfg.task not in HIERARCHY_TASKS:
        return int(cfg.n_train)
    counts = hierarchy.check_sizes(cfg.task, cfg.n_train, cfg.downsample_frac, cfg.n_downsampled, cfg.noise_std,
                                   cfg.n_test)
    return hierarchy.n_samples(cfg.task, cfg.n_downsampled, counts)


def mini_batched(batch_size: int | None, n_train: int) -> bool:
    """The one rule of every training loop: mini-batches when ``batch_size`` is below the training-set
    size, else full batch."""
    return batch_size is not None and batch_size < n_train


def uses_mini_batches(cfg: RunConfig) -> bool:
    """Whether a run (resolved or not) draws mini-batches, from its config alone (:func:`mini_batched`)."""
    return cfg.batch_size is not None and mini_batched(cfg.batch_size, train_size(resolve(cfg)))


def checkpoint_steps(cfg: RunConfig) -> np.ndarray:
    """Steps whose parameters are saved: 0, ``ckpt_early`` log-spaced steps below ``ckpt_every``, every
    multiple of ``ckpt_every``, and the final step.  Sorted, unique, int64.  ``cfg`` resolved or not."""
    every = _given(cfg.ckpt_every, default_ckpt_every(cfg.steps))
    early = np.unique(np.geomspace(1, every, num=cfg.ckpt_early + 1)[:-1].astype(np.int64))
    early = early[: cfg.ckpt_early]
    regular = np.arange(0, cfg.steps + 1, every, dtype=np.int64)
    steps = np.concatenate([[0], early[early < every], regular, [cfg.steps]])
    return np.unique(steps[steps <= cfg.steps])


def _given(value: Any, default: Any) -> Any:
    return default if value is None else value
