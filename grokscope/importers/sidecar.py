"""Hyperparameters for imported runs: ``--hparam KEY=VALUE``, sidecar config files, aliases.

Later sources override earlier ones: values embedded in the source (a checkpoint's ``config``), then sidecar
files beside it (``config.json``, ``config.yaml``, Lightning's ``hparams.yaml``, W&B's ``config.yaml`` whose
keys each hold ``{value: …}``), then MLflow params, then ``--hparam``.  Common spellings are copied onto the
names grokscope reads (``frac_train`` → ``frac``, ``num_layers`` → ``n_layers`` …), so ``analyze`` and CDS
fits group imported runs with native ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from grokscope.importers.base import SourceError, split_option

SIDECARS = ("config.json", "config.yaml", "config.yml", "hparams.yaml", "hparams.yml")
ALIASES = {  # grokscope's config name <- other spellings, first found wins
    "p": ("modulus", "prime", "mod", "P"),
    "frac": ("frac_train", "train_frac", "train_fraction", "training_fraction", "data_fraction",
             "fraction"),
    "n_train": ("train_size", "num_train", "n_train_samples", "training_size"),
    "n_layers": ("num_layers", "n_layer", "num_hidden_layers", "layers"),
    "d_model": ("n_embd", "hidden_size", "d_embed", "embed_dim", "width"),
    "n_heads": ("num_heads", "n_head", "num_attention_heads"),
    "d_mlp": ("n_inner", "intermediate_size", "ffn_dim"),
    "lr": ("learning_rate",),
    "weight_decay": ("wd",),
    "seed": ("random_seed",),
    "op": ("operation", "operator"),
}


def parse_value(text: str) -> Any:
    """A command-line or MLflow-param string as the number, bool, null or string it spells.

    Examples
    --------
    >>> parse_value("113"), parse_value("1e-3"), parse_value("true"), parse_value("+")
    (113, 0.001, True, '+')
    """
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        return value if kind is int or math.isfinite(value) else text
    if text[:1] in "[{":
        try:
            return json_safe(json.loads(text))
        except ValueError:
            pass
    return text


def parse_hparams(items: Sequence[str]) -> dict[str, Any]:
    """``--hparam KEY=VALUE`` options → ``{KEY: value}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, value = split_option(item, "--hparam", "KEY=VALUE", "frac=0.3", allow_empty=True)
        out[key] = parse_value(value)
    return out


def json_safe(value: Any) -> Any:
    """Plain JSON types only: numpy scalars unwrapped, non-finite floats and other objects as strings."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return str(value)


def unwrap_wandb(config: Mapping[str, Any]) -> dict[str, Any]:
    """W&B's ``config.yaml`` keeps each key as ``{value: …, desc: …}``; drop its own ``_wandb`` entries."""
    out = {}
    for key, entry in config.items():
        if str(key).startswith("_wandb") or key == "wandb_version":
            continue
        if isinstance(entry, Mapping) and "value" in entry and set(entry) <= {"value", "desc"}:
            entry = entry["value"]
        out[key] = entry
    return out


def read_config_file(path: Path) -> dict[str, Any]:
    """One JSON or YAML config file as a dict (W&B's ``value`` wrapping removed)."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        raise SourceError(f"{path}: not a readable config file ({_first_line(exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SourceError(f"{path}: a config file must hold a mapping, found {type(data).__name__}")
    return json_safe(unwrap_wandb(data))


def sidecar_configs(folder: Path) -> tuple[dict[str, Any], list[str]]:
    """Configs beside a source in ``folder`` (and W&B's ``files/``), merged in :data:`SIDECARS` order."""
    config: dict[str, Any] = {}
    used: list[str] = []
    for base in (folder, folder / "files"):
        for name in SIDECARS:
            path = base / name
            if path.is_file():
                config.update(read_config_file(path))
                used.append(str(path))
    return config, used


def with_aliases(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``config`` plus grokscope's names copied from common spellings (top level or nested one deep).

    Returns the new config and ``{grokscope name: source key}`` for the copies made.
    """
    out = dict(config)
    flat = dict(config)
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}.{k}": v for k, v in value.items() if f"{key}.{k}" not in flat})
    copied = {}
    for name, spellings in ALIASES.items():
        if name in out:
            continue
        for key, value in flat.items():
            leaf = key.rsplit(".", 1)[-1]
            if (leaf == name or leaf in spellings) and isinstance(value, (int, float)) \
                    and not isinstance(value, bool):
                out[name], copied[name] = value, key
                break
        else:
            if name == "op":
                for key in ("op", *spellings):
                    if isinstance(flat.get(key), str):
                        out[name], copied[name] = flat[key], key
                        break
    return out, copied


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:120] if text else exc.__class__.__name__
