"""Imported runs → native run stores, with provenance.  Everything is checked before anything is written.

Each run becomes one store with the native schema: the five per-step scalars (``train_loss``, ``train_acc``,
``test_loss``, ``test_acc``, ``l2_norm``; NaN where the source logged nothing), plus logged norms
(``param_norm (step, param)``, ``grad_norm``, ``grad_param_norm (step, grad_param)``; see
:mod:`grokscope.importers.norm_fields`), on the union of the steps its mapped metrics were logged at (the
``step`` array holds those real steps, uneven or sparse), checkpoints as ``(ckpt, …)`` float32 arrays,
``config`` from the hyperparameters found, and an ``import`` attribute saying where it all came from.
Stores are built in a hidden sibling of ``out`` and renamed into place at the end; on any failure the
partial output is deleted.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import grokscope
from grokscope.errors import StoreError
from grokscope.importers.base import Checkpoints, RawRun, Source, SourceError, align
from grokscope.importers.mapping import METRICS, map_fields, rescale_percent
from grokscope.importers.norm_fields import COORDS, PER_PARAM, map_norm_fields, split_key
from grokscope.importers.params import param_layout, safe_param_names, weight_norm
from grokscope.importers.sidecar import json_safe, with_aliases
from grokscope.store.layout import ParamSpec
from grokscope.store.writer import RunWriter, build_folder, remove_stale_builds


@dataclass(frozen=True)
class PreparedRun:
    """One run ready to write: steps, the metric columns (the five, ``grad_norm`` if logged), per-parameter
    norms, checkpoints and root attributes."""

    store_name: str  # file name inside a multi-run OUT ("" for a single store)
    steps: np.ndarray  # (n,) int64
    metrics: dict[str, np.ndarray]  # metric -> (n,) float64
    checkpoints: Checkpoints | None
    param_names: dict[str, str]  # source tensor name -> store array name
    attrs: dict[str, Any]
    per_param: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)  # param_norm -> names, (n, k)


def safe_store_name(name: str) -> str:
    """A file name made from a run id: letters, digits, ``._-`` only, no leading dot, never empty.

    Examples
    --------
    >>> safe_store_name("../../etc/passwd"), safe_store_name("lr=0.1/seed 0"), safe_store_name("..")
    ('etc_passwd', 'lr_0.1_seed_0', 'run')
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")
    safe = re.sub(r"\.{2,}", ".", safe)[:100].strip("._-")
    return safe or "run"


def prepare_run(raw: RawRun, source: Source, *, maps: Mapping[str, str] | None = None,
                hparams: Mapping[str, Any] | None = None, store_name: str = "") -> PreparedRun:
    """Map fields, rescale percent accuracy, merge hyperparameters and build the attributes of one run."""
    where = f"{source.path}: " + (f"run {raw.name!r}: " if source.multi else "")
    mapped = map_fields(_fields(raw), maps, where)
    norm_map = {k: v for k, v in map_norm_fields(_fields(raw), maps, mapped.values(), where).items()
                if k not in mapped}  # a total the metric mapping already found stays its
    for name in (*mapped.values(), *norm_map.values()):
        if name in raw.invalid:
            raise SourceError(f"{source.path}: {raw.invalid[name]} (field {name!r})")
    if not mapped and raw.checkpoints is None:
        fields = sorted(raw.series)
        listing = ", ".join(fields[:8]) + (", …" if len(fields) > 8 else "")
        raise SourceError(f"{where}no field looks like a loss or accuracy (fields: {listing or 'none'}); "
                          "name one with --map test_acc=FIELD")
    series = {name: raw.series[f] for name, f in {**mapped, **norm_map}.items()}
    derived: dict[str, Any] = {}
    logged_param_norms = any(split_key(k)[0] == "param_norm" for k in norm_map)
    if "l2_norm" not in mapped and raw.checkpoints is not None and not logged_param_norms:
        norms, left_out = weight_norm(raw.checkpoints)  # what the trainer logs, at checkpoints
        series["l2_norm"] = (raw.checkpoints.steps, norms)
        derived["l2_norm"] = {"from": "checkpoints", "left_out": left_out}
    steps, columns = align(series)
    rescaled = rescale_percent(columns, mapped, where)
    per_param = _per_param(norm_map, columns)
    for total, kind in (("l2_norm", "param_norm"), ("grad_norm", "grad_param_norm")):
        if total not in columns and kind in per_param:  # root-sum-square; NaN where a parameter is missing
            names, values = per_param[kind]
            columns[total] = np.sqrt(np.sum(np.square(values), axis=1))
            derived[total] = {"from": kind, "params": names}
    metrics = {name: columns.get(name, np.full(len(steps), np.nan)) for name in METRICS}
    if "grad_norm" in columns:
        metrics["grad_norm"] = columns["grad_norm"]
    mapped = {**mapped, **norm_map}

    config = {**raw.config, **(hparams or {})}
    config, aliased = with_aliases(json_safe(config))
    dropped = sorted((set(raw.series) | set(raw.invalid)) - set(mapped.values())) + list(raw.dropped)
    provenance = {
        "source": str(source.path.resolve()), "format": source.format, "layout": source.layout,
        "run": raw.name, "step_field": raw.step_field, "mapped": mapped, "dropped": dropped,
        "percent_rescaled": rescaled, "derived": derived, "sampled": raw.sampled,
        "config_sources": [*raw.config_sources, *(["--hparam"] if hparams else [])],
        "config_aliases": aliased,
        "imported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "grokscope_version": grokscope.__version__,
    }
    provenance.update({k: v for k, v in json_safe(raw.extra).items() if k not in provenance})
    attrs: dict[str, Any] = {"config": config, "import": provenance, "task": {},
                             "versions": {"grokscope": grokscope.__version__}}
    names: dict[str, str] = {}
    if raw.checkpoints is not None:
        names = safe_param_names(list(raw.checkpoints.params))
        stored = {names[k]: v for k, v in raw.checkpoints.params.items()}
        _, roles = param_layout(stored, config.get("p"))
        attrs["model"] = {"n_params": int(sum(v[0].size for v in stored.values())), "param_roles": roles}
        provenance["checkpoint_steps_from"] = raw.checkpoints.step_source
        provenance["checkpoint_dropped"] = list(raw.checkpoints.dropped)
        if any(k != v for k, v in names.items()):
            provenance["param_names"] = {k: v for k, v in names.items() if k != v}
    return PreparedRun(store_name, steps, metrics, raw.checkpoints, names, attrs, per_param)


def _per_param(norm_map: Mapping[str, str], columns: dict[str, np.ndarray]) -> dict[str, tuple[list[str],
                                                                                              np.ndarray]]:
    """Per-parameter norm columns → ``{array: (parameter names, (n, k) values)}``, in source field order."""
    out = {}
    for kind in PER_PARAM:
        keys = [k for k in norm_map if split_key(k)[0] == kind]
        if keys:
            out[kind] = ([str(split_key(k)[1]) for k in keys], np.stack([columns.pop(k) for k in keys], axis=1))
    return out


def _fields(raw: RawRun) -> list[str]:
    return [*raw.series, *(f for f in raw.invalid if f not in raw.series)]


Skipped = list[dict[str, str]]  # [{"run": …, "reason": …}]


def prepare_source(source: Source, *, maps: Mapping[str, str] | None = None,
                   hparams: Mapping[str, Any] | None = None) -> tuple[list[PreparedRun], Skipped]:
    """:func:`prepare_run` for every run, with unique safe store names when the source holds several.

    Returns the prepared runs and the runs skipped: in a multi-run source, a run with no loss, accuracy or
    checkpoint is skipped (with its reason) rather than failing the import, unless every run is.
    """
    fields = {f for raw in source.runs for f in _fields(raw)}
    for name, column in (maps or {}).items():
        if name != "step" and column not in fields:
            raise SourceError(f"{source.path}: --map {name}={column}: no field {column!r} in any run")
    prepared, used, skipped = [], set(), list(source.skipped)
    for raw in source.runs:
        if source.multi and raw.checkpoints is None and len(source.runs) > 1 \
                and not map_fields(_fields(raw), maps, f"{source.path}: run {raw.name!r}: "):
            skipped.append({"run": raw.name, "reason": "no field looks like a loss or accuracy"})
            continue
        name = ""
        if source.multi:
            base = safe_store_name(raw.name or source.path.name)
            name, n = base, 2
            while name.lower() in used:
                name, n = f"{base}-{n}", n + 1
            used.add(name.lower())
            name += ".zarr"
        prepared.append(prepare_run(raw, source, maps=maps, hparams=hparams, store_name=name))
    if not prepared and source.runs:  # no run has a metric: fail naming the first run's fields
        prepare_run(source.runs[0], source, maps=maps, hparams=hparams)
    if not prepared:
        raise SourceError(f"{source.path}: no runs to import")
    return prepared, skipped


def write_store(run: PreparedRun, path: Path) -> Path:
    """One prepared run as a run store at ``path`` (which must not exist), in one block write per array."""
    ckpt = run.checkpoints
    params = {run.param_names[k]: v for k, v in ckpt.params.items()} if ckpt is not None else {}
    dims, _ = param_layout(params, run.attrs["config"].get("p"))
    metrics: dict[str, Any] = {name: () for name in run.metrics}
    metrics.update({kind: [(COORDS[kind], len(names))] for kind, (names, _) in run.per_param.items()})
    writer = RunWriter(
        path, attrs=run.attrs, n_steps=len(run.steps), metrics=metrics,
        params=[ParamSpec(name, v.shape[1:], dims[name]) for name, v in params.items()],
        ckpt_steps=ckpt.steps if ckpt is not None else np.empty(0, dtype=np.int64), step_values=run.steps,
        coords={COORDS[kind]: np.array(names) for kind, (names, _) in run.per_param.items()})
    if len(run.steps):
        writer.write_metrics(0, {**run.metrics, **{kind: v for kind, (_, v) in run.per_param.items()}})
    if params:
        writer.write_checkpoints(0, params)
    writer.finalize("complete")
    return path


def write_source(source: Source, out: str | os.PathLike, *, maps: Mapping[str, str] | None = None,
                 hparams: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Import every run of ``source`` to ``out``: one store, or a directory of stores for multi-run sources.

    Returns a JSON-able description of what was written.

    Examples
    --------
    >>> from grokscope.importers import read_source
    >>> write_source(read_source("metrics.csv"), "runs/theirs.zarr", hparams={"frac": 0.3})  # doctest: +SKIP
    """
    out = Path(out)
    prepared, skipped = prepare_source(source, maps=maps, hparams=hparams)
    empty_dir = source.multi and out.is_dir() and not any(out.iterdir())
    if out.exists() and not empty_dir:
        raise StoreError(f"{out} already exists; choose a new --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = build_folder(out, "importing")
    remove_stale_builds(out, "importing")  # ours from an earlier try, and those of killed imports
    try:
        if source.multi:
            tmp.mkdir()
            for run in prepared:
                write_store(run, tmp / run.store_name)
        else:
            write_store(prepared[0], tmp)
        if empty_dir:
            out.rmdir()
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return describe(source, out, prepared, skipped)


def describe(source: Source, out: Path, prepared: list[PreparedRun],
             skipped: Skipped) -> dict[str, Any]:
    """What :func:`write_source` wrote, one entry per store."""
    runs = []
    for run in prepared:
        info = run.attrs["import"]
        runs.append({
            "run": info["run"] or out.name.removesuffix(".zarr"),
            "path": str(out / run.store_name if run.store_name else out),
            "n_steps": len(run.steps), "first_step": int(run.steps[0]) if len(run.steps) else None,
            "last_step": int(run.steps[-1]) if len(run.steps) else None, "step_field": info["step_field"],
            "mapped": info["mapped"], "dropped": info["dropped"],
            "percent_rescaled": info["percent_rescaled"],
            "sampled": info["sampled"], "n_checkpoints": len(run.checkpoints.steps) if run.checkpoints else 0,
            "config": run.attrs["config"],
        })
    return {"source": str(source.path), "format": source.format, "layout": source.layout, "out": str(out),
            "multi": source.multi, "runs": runs, "skipped": skipped}
