"""Checkpoints from other tools as store arrays: stacking, safe names, dims, and the embedding's role.

Shared by the safetensors reader here and the PyTorch reader in ``grokscope.trainers.checkpoints`` (which
converts tensors to numpy first).  Only floating-point tensors are kept (as float32); integer and boolean
buffers (masks, position ids) are listed as dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from grokscope.importers.base import Checkpoints, SourceError

EMBEDDING_NAMES = ("embed.W_E", "W_E", "embed.weight", "tokens_embed.weight", "token_embedding.weight",
                   "tok_embeddings.weight", "wte.weight", "embed_tokens.weight", "word_embeddings.weight")
UNEMBEDDING_NAMES = ("unembed.W_U", "W_U", "unembed.weight", "lm_head.weight")
BUFFER_NAMES = ("mask", "IGNORE", "masked_bias", "inv_freq", "position_ids")  # float buffers, not weights


STEP_KEYS = ("global_step", "step", "epoch")  # a checkpoint's own step field; the first present wins


def checkpoint_step(fields: Mapping[str, Any], relative: str | None = None) -> int | None:
    """The training step of one checkpoint: its own step field (:data:`STEP_KEYS`, an int or, in
    safetensors metadata, a string of digits), else the last number of its path ``relative`` to the
    imported folder (``ckpt_500.pt``, ``checkpoint-500/model.safetensors``), else None.

    Examples
    --------
    >>> checkpoint_step({"epoch": 3, "global_step": 1200}), checkpoint_step({}, "run/checkpoint-500/model.pt")
    (1200, 500)
    """
    for key in STEP_KEYS:
        value = fields.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
    numbers = re.findall(r"\d+", relative or "")
    return int(numbers[-1]) if numbers else None


def stack_checkpoints(items: Sequence[tuple[int, Mapping[str, np.ndarray], str]],
                      step_source: str) -> Checkpoints:
    """``[(step, {name: array}, where)]`` → :class:`Checkpoints`, sorted by step.

    Every checkpoint must hold the same float tensors with the same shapes; ``where`` names the checkpoint
    (file, list index) in errors.
    """
    if not items:
        raise SourceError("no checkpoints to import")
    items = sorted(items, key=lambda item: item[0])
    steps = np.array([s for s, _, _ in items], dtype=np.int64)
    if len(np.unique(steps)) != len(steps):
        dup = steps[np.flatnonzero(np.diff(steps) == 0)[0]]
        raise SourceError(f"{items[0][2]}: two checkpoints at step {dup}")
    first_step, first, first_where = items[0]
    kept = [k for k, v in first.items() if np.asarray(v).dtype.kind == "f"]
    dropped = tuple(k for k in first if k not in kept)
    if not kept:
        raise SourceError(f"{first_where}: no floating-point tensors (no weights to import)")
    params = {k: np.empty((len(items), *np.shape(first[k])), dtype=np.float32) for k in kept}
    for i, (_, state, where) in enumerate(items):
        missing = [k for k in kept if k not in state]
        if missing:
            raise SourceError(f"{where}: tensor {missing[0]!r} is missing (present in {first_where})")
        for k in kept:
            value = np.asarray(state[k])
            if value.shape != params[k].shape[1:]:
                raise SourceError(f"{where}: tensor {k!r} has shape {value.shape}, "
                                  f"{params[k].shape[1:]} in {first_where}")
            params[k][i] = value
    return Checkpoints(steps, params, step_source, dropped)


def weight_norm(checkpoints: Checkpoints) -> tuple[np.ndarray, list[str]]:
    """Total L2 norm of the weights at each checkpoint ``(ckpt,)``, as the trainer logs ``l2_norm``.

    Float buffers that are not weights (attention masks, TransformerLens' ``IGNORE``, rotary ``inv_freq``) are
    left out by name; returns the norms and the names left out.
    """
    left_out = [n for n in checkpoints.params if n.rsplit(".", 1)[-1] in BUFFER_NAMES]
    total = np.zeros(len(checkpoints.steps))
    for name, values in checkpoints.params.items():
        if name not in left_out:
            flat = values.reshape(len(values), -1).astype(np.float64)  # (ckpt, size)
            total += np.einsum("ij,ij->i", flat, flat)
    return np.sqrt(total), left_out


def safe_param_names(names: Sequence[str]) -> dict[str, str]:
    """Source tensor name → a Zarr array name (no ``/``, no leading ``__``, not ``step``), unique."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        safe = re.sub(r"[/\\]", ".", name).strip() or "param"
        if safe.startswith("__") or safe in ("step", ".", ".."):
            safe = "param." + safe
        base, n = safe, 2
        while safe in used:
            safe, n = f"{base}.{n}", n + 1
        used.add(safe)
        out[name] = safe
    return out


def _find(names: Sequence[str], candidates: Sequence[str]) -> str | None:
    for candidate in candidates:  # exact names first, then with a wrapper prefix ("model.", "module.")
        if candidate in names:
            return candidate
    for candidate in candidates:
        hits = [n for n in names if n.endswith("." + candidate)]
        if len(hits) == 1:
            return hits[0]
    return None


def embedding_orientation(shape: tuple[int, ...], p: int | None) -> str:
    """``vocab_first`` or ``vocab_last`` for a 2-D embedding matrix.

    With ``p`` the vocabulary axis is the one whose size is closest above ``p`` (a vocabulary is p numbers
    plus a few symbols); without it, the larger axis (ties: ``vocab_first``, PyTorch's ``nn.Embedding``).

    Examples
    --------
    >>> embedding_orientation((128, 114), 113), embedding_orientation((114, 128), 113)
    ('vocab_last', 'vocab_first')
    """
    rows, cols = shape
    if p is not None:
        over = [n - p if n >= p else None for n in (rows, cols)]
        if over[0] is not None and (over[1] is None or over[0] <= over[1]):
            return "vocab_first"
        if over[1] is not None:
            return "vocab_last"
    return "vocab_first" if rows >= cols else "vocab_last"


def param_layout(params: Mapping[str, np.ndarray], p: Any = None) -> tuple[dict[str, tuple[str, ...]],
                                                                           dict[str, str]]:
    """Dims of each stored parameter and the model's ``param_roles`` (names are the safe store names).

    Dims are generic (``<name>.d0`` …) except the embedding's ``vocab``/``d_model``.
    """
    p = int(p) if isinstance(p, (int, float)) and not isinstance(p, bool) and p >= 1 else None
    dims = {name: tuple(f"{name}.d{i}" for i in range(a.ndim - 1)) for name, a in params.items()}
    roles: dict[str, str] = {}
    names = list(params)
    embedding = _find(names, EMBEDDING_NAMES)
    if embedding is not None and params[embedding].ndim == 3:
        orientation = embedding_orientation(params[embedding].shape[1:], p)
        roles = {"embedding": embedding, "embedding_orientation": orientation}
        dims[embedding] = ("vocab", "d_model") if orientation == "vocab_first" else ("d_model", "vocab")
    unembedding = _find(names, UNEMBEDDING_NAMES)
    if roles and unembedding is not None:
        roles["unembedding"] = unembedding
    return dims, roles
