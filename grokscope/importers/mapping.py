"""Which source field is which grokscope metric: common names, ``--map`` overrides, the step field, percent.

A field name is split into lowercase words (``Loss/train`` → ``loss train``, ``valAcc`` → ``val acc``).  It
maps to ``<split>_<kind>`` when its words are one split word and one kind word in either order, optionally
with one qualifier word (``train_loss_step``, ``epoch_accuracy``); a kind word alone is the training metric
(Keras' ``loss``/``accuracy``).  When several fields fit one metric the best-ranked wins (exact before
qualified, ``test`` before ``val`` before ``eval``); a tie is an error asking for ``--map``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from grokscope.errors import ConfigError
from grokscope.importers.base import SourceError, split_option
from grokscope.importers.norm_fields import is_norm_target

METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "l2_norm")  # the store's per-step scalars
MAP_TARGETS = (*METRICS, "step")
STEP_FIELDS = ("step", "_step", "Step", "global_step", "iteration", "iter", "epoch")  # first present wins

_TRAIN = {"train": 0, "training": 0, "trn": 1, "tr": 1}
_TEST = {"test": 0, "testing": 0, "val": 1, "valid": 1, "validation": 1, "eval": 2, "evaluation": 2,
         "dev": 3, "heldout": 3}
_KIND = {"loss": "loss", "losses": "loss", "nll": "loss", "xent": "loss",
         "acc": "acc", "accs": "acc", "accuracy": "acc", "accuracies": "acc"}
_QUALIFIER = {"step": 10, "epoch": 11, "mean": 12, "avg": 12, "total": 12, "all": 12, "overall": 12,
              "pct": 12, "percent": 12}
_NORM_NAMES = {"l2_norm", "l2", "norm_l2", "weight_norm", "weights_norm", "param_norm", "params_norm",
               "parameter_norm", "parameters_norm", "l2_weight_norm", "weight_l2_norm", "total_weight_norm"}
_NORM_SCOPES = {"train", "training", "model", "global", "total", "overall", "all"}
_PERCENT_WORDS = {"pct", "percent", "percentage"}


def words(field: str) -> list[str]:
    """Lowercase words of a field name: separators and camelCase boundaries split.

    Examples
    --------
    >>> words("Loss/train"), words("valAcc"), words("eval_accuracy")
    (['loss', 'train'], ['val', 'acc'], ['eval', 'accuracy'])
    """
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", field)
    return [w for w in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if w]


def classify(field: str) -> tuple[str, int] | None:
    """The metric a field name stands for and its rank (lower is better), or ``None``.

    Examples
    --------
    >>> classify("train/loss"), classify("val_acc"), classify("Accuracy/test"), classify("lr")
    (('train_loss', 0), ('test_acc', 1), ('test_acc', 0), None)
    """
    ws = words(field)
    if "_".join(ws) in _NORM_NAMES:
        return "l2_norm", 0
    if len(ws) > 1 and ws[0] in _NORM_SCOPES and "_".join(ws[1:]) in _NORM_NAMES:  # train/weight_norm
        return "l2_norm", 1
    kinds = [w for w in ws if w in _KIND]
    if len(kinds) != 1:
        return None
    kind = _KIND[kinds[0]]
    rest = [w for w in ws if w != kinds[0]]
    split, rank = "train", 20  # a kind word alone: the training metric (Keras' loss / accuracy)
    splits = [w for w in rest if w in _TRAIN or w in _TEST]
    if len(splits) > 1:
        return None
    if splits:
        split = "train" if splits[0] in _TRAIN else "test"
        rank = _TRAIN.get(splits[0], _TEST.get(splits[0], 0))
        rest = [w for w in rest if w != splits[0]]
    if len(rest) > 1 or (rest and rest[0] not in _QUALIFIER):
        return None
    if rest:
        rank += _QUALIFIER[rest[0]]
    return f"{split}_{kind}", rank


def parse_maps(items: Sequence[str]) -> dict[str, str]:
    """``--map NAME=field`` options → ``{NAME: field}``; NAME is a store metric, ``step``, or a norm
    (``param_norm:<name>``, ``grad_norm``, ``grad_param_norm:<name>``; :mod:`grokscope.importers.norm_fields`)."""
    maps: dict[str, str] = {}
    for item in items:
        name, field = split_option(item, "--map", "NAME=FIELD", "test_acc=val_top1")
        if name not in MAP_TARGETS and not is_norm_target(name):
            raise ConfigError(f"--map {item!r}: NAME must be one of {', '.join(MAP_TARGETS)}, grad_norm, "
                              "param_norm:<parameter> or grad_param_norm:<parameter>")
        maps[name] = field
    return maps


def find_step_field(fields: Iterable[str], override: str | None = None) -> str | None:
    """The field holding steps: ``override`` if given (must exist), else the first of :data:`STEP_FIELDS`."""
    fields = list(fields)
    if override is not None:
        if override not in fields:
            raise ConfigError(f"--map step={override}: no field {override!r} (fields: {_listing(fields)})")
        return override
    lower = {f.lower(): f for f in reversed(fields)}
    for name in STEP_FIELDS:
        if name in fields:
            return name
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def map_fields(fields: Iterable[str], maps: Mapping[str, str] | None = None,
               where: str = "") -> dict[str, str]:
    """``{metric: field}`` for the fields present: explicit ``maps`` first, then the naming rules.

    Examples
    --------
    >>> map_fields(["step", "train/loss", "val_acc", "test_acc", "lr"])
    {'train_loss': 'train/loss', 'test_acc': 'test_acc'}
    """
    fields = list(fields)
    maps = {k: v for k, v in (maps or {}).items() if k != "step"}
    chosen = {name: field for name, field in maps.items() if field in fields}
    best: dict[str, list[tuple[int, str]]] = {}
    for field in fields:
        if field in chosen.values():
            continue
        hit = classify(field)
        if hit and hit[0] not in maps:
            best.setdefault(hit[0], []).append((hit[1], field))
    for name, candidates in best.items():
        candidates.sort()
        top = [f for r, f in candidates if r == candidates[0][0]]
        if len(top) > 1:
            raise ConfigError(f"{where}fields {', '.join(map(repr, top))} all look like {name}; "
                              f"choose one with --map {name}=FIELD")
        chosen[name] = top[0]
    return {name: chosen[name] for name in METRICS if name in chosen}


def rescale_percent(metrics: dict[str, np.ndarray], mapped: Mapping[str, str], where: str) -> list[str]:
    """Accuracy given in percent → fractions, in place; returns the fields rescaled.

    One unit for every accuracy field of a run: percent when any value exceeds 1 or a field name says so
    (``acc_pct``).  Values below 0 or above 100 are an error.
    """
    acc = [name for name in ("train_acc", "test_acc") if name in metrics]
    peak = 0.0
    for name in acc:
        values = metrics[name][np.isfinite(metrics[name])]
        if len(values) and (values.min() < 0 or values.max() > 100):
            bad = values.min() if values.min() < 0 else values.max()
            raise SourceError(f"{where}field {mapped[name]!r} holds {bad:g}: not an accuracy "
                              "(neither a fraction nor a percent)")
        peak = max(peak, float(values.max()) if len(values) else 0.0)
    named = any(_PERCENT_WORDS & set(words(mapped[name])) or "%" in mapped[name] for name in acc)
    if peak <= 1 and not named:
        return []
    for name in acc:
        metrics[name] = metrics[name] / 100.0
    return [mapped[name] for name in acc]


def _listing(fields: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(fields[:limit])
    return shown + (f", … ({len(fields)} in all)" if len(fields) > limit else "")
