"""PyTorch checkpoint files (``.pth``/``.pt``/``.ckpt``) as an imported run: weights and loss histories.

Shapes understood: a state dict; a dict holding one under ``model``/``state_dict``/``model_state_dict``,
with optional histories (``train_losses``, ``test_losses``, any list of numbers whose name maps to a metric;
index = step), ``checkpoints`` + ``checkpoint_epochs`` (Nanda et al.'s files), ``config``/``hyper_parameters``
and ``train_indices``; a list of checkpoints (state dicts or dicts holding one with ``epoch``/``step``); or a
folder of such files, one checkpoint each.

Files load with ``torch.load(weights_only=True, map_location="cpu")``: tensors and plain containers only.
A file that pickles other objects (a config class, numpy arrays) is refused unless ``trust_pickle=True``
(``--trust-pickle``), because unpickling can run arbitrary code.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grokscope.importers.base import RawRun, Source, SourceError
from grokscope.importers.detect import TORCH_SUFFIXES
from grokscope.importers.params import checkpoint_step, stack_checkpoints
from grokscope.importers.sidecar import sidecar_configs

STATE_KEYS = ("model", "state_dict", "model_state_dict")
CONFIG_KEYS = ("config", "cfg", "hyper_parameters", "hparams", "args")
NOT_HISTORIES = ("checkpoint_epochs", "train_indices", "test_indices", "train_idx", "test_idx")


def load(path: Path, trust_pickle: bool = False) -> Any:
    """``torch.load`` on the CPU; weights only unless ``trust_pickle``.  Failures become one-line errors."""
    try:
        return torch.load(path, weights_only=not trust_pickle, map_location="cpu")
    except Exception as exc:  # torch raises many types for foreign, damaged or truncated files
        text = str(exc)
        if "Weights only load failed" in text:
            found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
            what = f" (it holds {found.group(1)})" if found else ""
            raise SourceError(f"{path}: loading needs arbitrary unpickling{what}; rerun with --trust-pickle "
                              "only if you trust where the file came from") from None
        reason = text.strip().splitlines()[0][:100] if text.strip() else exc.__class__.__name__
        raise SourceError(f"{path}: not a readable PyTorch checkpoint ({reason})") from None


def _is_state(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _numpy(state: Mapping[str, torch.Tensor], where: Path) -> dict[str, np.ndarray]:
    out = {}
    for name, t in state.items():
        try:
            out[str(name)] = (t.detach().float() if t.is_floating_point() else t.detach()).cpu().numpy()
        except (RuntimeError, TypeError) as exc:  # sparse, quantized or meta tensors
            raise SourceError(f"{where}: tensor {name!r} cannot become an array ({exc.__class__.__name__})") \
                from None
    return out


def _int_step(value: Any, where: str) -> int:
    try:
        step = int(value)
    except (TypeError, ValueError, RuntimeError):
        raise SourceError(f"{where}: {value!r} is not a step") from None
    if step != value:
        raise SourceError(f"{where}: {value!r} is not an integer step")
    return step


def _state_of(obj: Any) -> Mapping[str, torch.Tensor] | None:
    if _is_state(obj):
        return obj
    if isinstance(obj, Mapping):
        return next((obj[k] for k in STATE_KEYS if _is_state(obj.get(k))), None)
    return None


def _step_of(obj: Any, relative: str | None = None) -> int | None:
    """A loaded object's own step (:func:`~grokscope.importers.params.checkpoint_step`), else its file's."""
    return checkpoint_step(obj if isinstance(obj, Mapping) and not _is_state(obj) else {}, relative)


def _history(value: Any) -> np.ndarray | None:
    """A list/tuple of numbers (or 0-d tensors), or a 1-D tensor, as float64; else None."""
    if isinstance(value, torch.Tensor):
        return value.detach().double().cpu().numpy() if value.ndim == 1 and len(value) else None
    if isinstance(value, (list, tuple)) and value:
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return np.asarray(value, dtype=np.float64)
        if all(isinstance(v, torch.Tensor) and v.numel() == 1 for v in value):
            return np.array([float(v) for v in value], dtype=np.float64)
    return None


def _config(obj: Any) -> dict[str, Any]:
    for key in CONFIG_KEYS:
        value = obj.get(key)
        if isinstance(value, Mapping):
            return dict(value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        if hasattr(value, "__dict__") and not isinstance(value, type):
            return dict(vars(value))
    return {}


def _from_object(obj: Any, path: Path) -> RawRun:
    """One loaded file's object → a run of histories and checkpoints."""
    if isinstance(obj, (list, tuple)):
        items = []
        for i, entry in enumerate(obj):
            state = _state_of(entry)
            if state is None:
                raise SourceError(f"{path}: item {i} of the list is not a state dict")
            step = _step_of(entry)
            items.append((i if step is None else step, _numpy(state, path), f"{path} [item {i}]"))
        source = "epoch/step keys" if all(_step_of(e) is not None for e in obj) else "list index"
        if source == "list index":
            items = [(i, s, w) for i, (_, s, w) in enumerate(items)]
        return RawRun("", {}, None, checkpoints=stack_checkpoints(items, source))
    if isinstance(obj, torch.nn.Module):  # a whole pickled model (only loads with --trust-pickle)
        obj = obj.state_dict()
    if not isinstance(obj, Mapping):
        raise SourceError(f"{path}: holds a {type(obj).__name__}, not a state dict or a dict of checkpoints")
    if _is_state(obj):
        only = stack_checkpoints([(0, _numpy(obj, path), str(path))], "unknown (0)")
        return RawRun("", {}, None, checkpoints=only)
    series = {}
    for key, value in obj.items():
        values = None if key in NOT_HISTORIES or key in STATE_KEYS else _history(value)
        if values is not None:
            series[str(key)] = (np.arange(len(values), dtype=np.int64), values)
    items, source = [], "unknown (0)"
    listed = obj.get("checkpoints")
    if isinstance(listed, (list, tuple)) and listed:
        epochs = obj.get("checkpoint_epochs")
        if epochs is not None and (not isinstance(epochs, (list, tuple, torch.Tensor))
                                   or len(epochs) != len(listed)):
            raise SourceError(f"{path}: checkpoint_epochs does not list one step per checkpoint "
                              f"({len(listed)} checkpoints)")
        for i, entry in enumerate(listed):
            state = _state_of(entry)
            if state is None:
                raise SourceError(f"{path}: checkpoints[{i}] is not a state dict")
            where = f"{path} [checkpoints[{i}]]"
            step = _int_step(epochs[i], f"{path}: checkpoint_epochs[{i}]") if epochs is not None \
                else _step_of(entry)
            items.append((i if step is None else step, _numpy(state, path), where))
        source = "checkpoint_epochs" if epochs is not None else "list index"
    final = _state_of(obj)
    if final is not None:
        step, why = _step_of(obj), "epoch/step key"
        if step is None and series:  # the model after the last logged entry (Nanda et al.: one update each)
            step, why = max(len(s) for s, _ in series.values()), "history length"
        if step is None and not items:
            step, why = 0, "unknown (0)"
        if step is not None and step not in {s for s, _, _ in items}:  # unknown beside a list: left out
            items.append((step, _numpy(final, path), f"{path} [final model]"))
            source = source if len(items) > 1 else why
    config = _config(obj)
    train_idx = obj.get("train_indices", obj.get("train_idx"))
    if "n_train" not in config and isinstance(train_idx, (list, tuple, torch.Tensor)):
        config["n_train"] = len(train_idx)
    if not items and not series:
        raise SourceError(f"{path}: no state dict (under model/state_dict) and no loss histories")
    checkpoints = stack_checkpoints(items, source) if items else None
    return RawRun("", series, "list index" if series else None, config=config,
                  config_sources=(f"{path.name}: config",) if config else (), checkpoints=checkpoints)


def read_torch(path: str | Path, trust_pickle: bool = False) -> Source:
    """A PyTorch checkpoint file, or a folder of them (one checkpoint per file), as a one-run Source.

    Examples
    --------
    >>> from grokscope.importers import write_source
    >>> write_source(read_torch("final.pth"), "runs/ckpt.zarr")  # doctest: +SKIP
    """
    path = Path(path)
    if path.is_file():
        run = _from_object(load(path, trust_pickle), path)
        folder = path.parent
    else:
        files = sorted(p for p in (*path.glob("*"), *path.glob("*/*")) if p.suffix in TORCH_SUFFIXES)
        if not files:
            raise SourceError(f"{path}: no PyTorch checkpoint files ({', '.join(TORCH_SUFFIXES)}) here")
        items, named = [], True
        for file in files:
            obj = load(file, trust_pickle)
            state = _state_of(obj)
            if state is None:
                raise SourceError(f"{file}: no state dict (under model/state_dict) in this file")
            step = _step_of(obj, file.relative_to(path).as_posix())
            named &= step is not None
            items.append((step, _numpy(state, file), str(file)))
        items = items if named else [(i, s, w) for i, (_, s, w) in enumerate(items)]
        run = RawRun("", {}, None, checkpoints=stack_checkpoints(
            items, "epoch/step keys or file names" if named else "file order"))
        folder = path
    config, used = sidecar_configs(folder)
    run = dataclasses.replace(run, config={**config, **run.config},
                              config_sources=(*used, *run.config_sources))
    return Source(path, "torch", [run], multi=False)
