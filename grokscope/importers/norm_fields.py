"""Which source fields are per-parameter weight norms or gradient norms, and under which store names.

Rule (docs/import.md, "Norms"):

* ``<name>_parameter_norm``, ``<name>_param_norm``, ``<name>_weight_norm`` (also ``params``/``weights``, any
  separator or camelCase: ``embed.weight/param_norm``, ``embedParamNorm``) and ``norm/<name>``,
  ``param_norm/<name>``, ``weight_norm/<name>``, ``l2_norm/<name>`` are the L2 norm of parameter ``<name>``
  → the store's ``param_norm (step, param)``; without a logged total, ``l2_norm`` is their root-sum-square.
* ``grad_norm``, ``gradient_norm``, ``grad_l2_norm`` (optionally behind a total word: ``train/grad_norm``,
  ``global_grad_norm``) are the total gradient norm → ``grad_norm (step,)``; ``<name>_grad_norm`` and
  ``grad_norm/<name>`` are one parameter's → ``grad_param_norm (step, grad_param)``; without a logged total,
  ``grad_norm`` is their root-sum-square.
* PyTorch parameter names keep their dots whole: ``fc.weight_norm`` and ``fc.bias/norm`` are the norms of
  ``fc.weight`` and ``fc.bias`` (a dotted ``<name>`` before ``_norm``/``/norm``).
* PyTorch Lightning's ``grad_2.0_norm/<name>`` and ``grad_2.0_norm_total`` (any p-norm order written as a
  number) are gradient norms like ``grad_norm/<name>`` and ``grad_norm``.
* A trailing logging qualifier (``_step``, ``/epoch``, ``/mean``, ``_avg``: Lightning's and Composer's
  ``grad_norm_step``, ``grad_l2_norm/step``) is dropped first; a name ending in ``max``/``min`` is a different
  statistic and is left alone.
* A ``<name>`` that is only a total word (``total``, ``global``, ``model``, ``train`` …) is no parameter: such a
  field is the total, ``l2_norm`` for weights (``weight_norm/total``; ``total_weight_norm`` is found by
  :mod:`grokscope.importers.mapping` already) and ``grad_norm`` for gradients.

``--map param_norm:<name>=FIELD``, ``--map grad_norm=FIELD`` and ``--map grad_param_norm:<name>=FIELD``
override the rule.  Keys are ``param_norm:<name>``, ``grad_norm`` and ``grad_param_norm:<name>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from grokscope.errors import ConfigError

PER_PARAM = ("param_norm", "grad_param_norm")  # store arrays (step, <coord>) with their coordinate below
COORDS = {"param_norm": "param", "grad_param_norm": "grad_param"}
TOTAL_WORDS = {"total", "l2", "global", "model", "all", "overall", "sum", "train", "training", "net",
               "network", "weights", "weight", "params", "param", "parameters", "parameter"}

SPLIT_WORDS = {"val", "valid", "validation", "test", "eval", "dev"}
_SEP = r"[._/\- ]*"
_GRAD = r"(?:grad|grads|gradient|gradients)(?:[._/\- ]*\d+(?:\.\d+)?(?=[._/\- ]*norm))?"  # grad_2.0_norm
_QUALIFIED = re.compile(r"^(?P<base>.+?)[._/\- ](?:step|epoch|mean|avg)$", re.I)
_STATISTIC = re.compile(r"[._/\- ](?:max|min|std)$", re.I)
_PARAM = r"(?:parameters?|params?|weights?)"
_DOTTED = re.compile(r"^(?P<name>[^/\s]*[^._/\- ]\.[^._/\- ][^/\s]*?)[_/.]norms?$", re.I)  # fc.weight_norm
_RULES = (  # (kind, regex with an optional group `name`), first match wins; case-insensitive
    ("grad", re.compile(rf"^(?:(?P<name>.*?[^._/\- ]){_SEP})?{_GRAD}{_SEP}(?:l2{_SEP})?norms?$", re.I)),
    ("grad", re.compile(rf"^{_GRAD}{_SEP}(?:l2{_SEP})?norms?/(?P<name>.+)$", re.I)),
    ("param", _DOTTED),
    ("param", re.compile(rf"^(?P<name>.*?[^._/\- ]){_SEP}{_PARAM}{_SEP}(?:l2{_SEP})?norms?$", re.I)),
    ("param", re.compile(rf"^(?:(?:{_PARAM}|l2){_SEP})?norms?/(?P<name>.+)$", re.I)),
)


def classify_norm(field: str) -> str | None:
    """The store key a norm field stands for, or ``None``.

    Examples
    --------
    >>> classify_norm("embed_parameter_norm"), classify_norm("norm/blocks.0.mlp"), classify_norm("grad_norm")
    ('param_norm:embed', 'param_norm:blocks.0.mlp', 'grad_norm')
    >>> classify_norm("mlp_grad_norm"), classify_norm("weight_norm/total"), classify_norm("train_loss")
    ('grad_param_norm:mlp', 'l2_norm', None)
    >>> classify_norm("fc.weight_norm"), classify_norm("grad_2.0_norm_total"), classify_norm("grad_norm/step")
    ('param_norm:fc.weight', 'grad_norm', 'grad_norm')
    """
    if _STATISTIC.search(field):
        return None
    qualified = _QUALIFIED.match(field)
    if qualified:
        field = qualified.group("base")
    total_suffix = re.match(r"^(?P<base>.+?)[._/\- ]total$", field, re.I)
    if total_suffix:  # grad_2.0_norm_total, weight_norm/total
        field = total_suffix.group("base")
    for kind, rule in _RULES:
        hit = rule.match(field)
        if not hit:
            continue
        name = (hit.group("name") or "").strip()
        if rule is _DOTTED and re.search(rf"[_\- ]{_PARAM}$", name, re.I):
            continue  # blocks.0.mlp_param_norm: the <name>_param_norm rule below
        if name.lower() in SPLIT_WORDS:  # val_grad_norm: a split's statistic, not a parameter (left unmapped)
            return None
        total = bool(total_suffix) or not name or all(w in TOTAL_WORDS for w in re.split(r"[^0-9a-z]+", name.lower())
                                                       if w)
        if kind == "grad":
            return "grad_norm" if total else f"grad_param_norm:{name}"
        return "l2_norm" if total else f"param_norm:{name}"
    if total_suffix and re.fullmatch(rf"(?:{_PARAM}|l2){_SEP}norms?", field, re.I):
        return "l2_norm"  # weight_norm/total
    return None


def is_norm_target(name: str) -> bool:
    """Whether ``--map NAME=…`` names a norm: ``grad_norm``, ``param_norm:<name>``, ``grad_param_norm:<name>``."""
    kind, sep, param = name.partition(":")
    return name == "grad_norm" or (kind in PER_PARAM and bool(sep) and bool(param.strip()))


def map_norm_fields(fields: Iterable[str], maps: Mapping[str, str] | None = None, taken: Iterable[str] = (),
                    where: str = "") -> dict[str, str]:
    """``{key: field}`` for the norm fields present: ``--map`` norm targets first, then the naming rule.

    ``taken`` are fields already mapped to a metric (never reused).  Two fields naming one key are an error.

    Examples
    --------
    >>> map_norm_fields(["step", "embed_param_norm", "mlp_param_norm", "grad_norm", "lr"])
    {'param_norm:embed': 'embed_param_norm', 'param_norm:mlp': 'mlp_param_norm', 'grad_norm': 'grad_norm'}
    """
    fields = list(fields)
    explicit = {k: v for k, v in (maps or {}).items() if is_norm_target(k)}
    chosen = {k: v for k, v in explicit.items() if v in fields}
    used = set(taken) | set(chosen.values()) | set((maps or {}).values())
    found: dict[str, list[str]] = {}
    for field in fields:
        key = None if field in used else classify_norm(field)
        if key is not None and key not in explicit:
            found.setdefault(key, []).append(field)
    for key, hits in found.items():
        if len(hits) > 1:
            raise ConfigError(f"{where}fields {', '.join(map(repr, hits))} all look like {key}; choose one with "
                              f"--map {key}=FIELD")
        chosen[key] = hits[0]
    return chosen


def split_key(key: str) -> tuple[str, str | None]:
    """``"param_norm:embed"`` → ``("param_norm", "embed")``; ``"grad_norm"`` → ``("grad_norm", None)``."""
    kind, _, name = key.partition(":")
    return kind, (name or None)
