"""MLflow tracking stores, read without MLflow: the ``mlruns/`` file store and the ``mlflow.db`` SQLite store.

File store: ``mlruns/<experiment>/<run>/meta.yaml`` (``run_id``, ``run_name``, ``status``),
``metrics/<key>`` with lines ``"<timestamp_ms> <value> [<step>]"`` (no step means 0; a ``/`` in a key is a
sub-folder), ``params/<key>`` (raw text) and ``tags/mlflow.runName``.  SQLite store: tables ``metrics(key,
value, timestamp, step, is_nan, run_uuid)``, ``runs``, ``params``, ``experiments``.  Deleted runs are skipped.
A step logged twice keeps the later value.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from grokscope.importers.base import MAX_STEP, RawRun, Series, Source, SourceError
from grokscope.importers.sidecar import parse_value

STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}


def parse_metric_lines(text: str, where: str) -> Series:
    """One metric file's lines → ``(steps, values)`` in file order; a malformed line raises naming it.

    Examples
    --------
    >>> s, v = parse_metric_lines("1700000000000 0.5 10\\n1700000000001 0.25\\n", "m")
    >>> s.tolist(), v.tolist()
    ([10, 0], [0.5, 0.25])
    """
    steps, values = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) not in (2, 3):
                raise ValueError
            int(parts[0])  # the timestamp must be an integer too
            step = int(parts[2]) if len(parts) == 3 else 0
            if abs(step) > MAX_STEP:
                raise ValueError
            values.append(float(parts[1]))
            steps.append(step)
        except (ValueError, OverflowError):
            shown = line if len(line) <= 40 else line[:37] + "..."
            raise SourceError(f"{where}: line {number}: expected '<timestamp_ms> <value> <step>', "
                              f"got {shown!r}") from None
    return np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64)


def _yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: not readable YAML ({str(exc).splitlines()[0][:100]})") from None
    if not isinstance(data, dict):
        raise SourceError(f"{path}: expected a mapping of run metadata")
    return data


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SourceError(f"{path}: not UTF-8 text") from None


def _keyed_files(folder: Path) -> dict[str, Path]:
    """``metrics/`` or ``params/``: key (``a/b`` for sub-folders) → file."""
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def run_folders(path: Path) -> list[Path]:
    """Run folders under an ``mlruns`` root, an experiment folder, or ``path`` itself if it is a run."""
    def is_run(p: Path) -> bool:
        return (p / "meta.yaml").is_file() and ((p / "metrics").is_dir() or (p / "params").is_dir())

    if is_run(path):
        return [path]
    found = [p for p in sorted(path.glob("*")) if p.is_dir() and is_run(p)]
    found += [p for p in sorted(path.glob("*/*")) if p.is_dir() and is_run(p) and p.parent.name != ".trash"]
    return found


def read_mlruns(path: Path) -> Source:
    """Every live run of an MLflow file store (or one experiment folder, or one run folder)."""
    folders = run_folders(path)
    if not folders:
        raise SourceError(f"{path}: no MLflow runs (no <run>/meta.yaml with metrics/ or params/)")
    runs, skipped = [], []
    for folder in folders:
        meta = _yaml(folder / "meta.yaml")
        run_id = str(meta.get("run_id") or meta.get("run_uuid") or folder.name)
        if meta.get("lifecycle_stage") == "deleted":
            skipped.append({"run": run_id, "reason": "deleted in MLflow"})
            continue
        tag = folder / "tags" / "mlflow.runName"
        name = str(meta.get("run_name") or (_text(tag).strip() if tag.is_file() else "") or "")
        metrics = _keyed_files(folder / "metrics")
        series = {key: parse_metric_lines(_text(f), str(f)) for key, f in metrics.items()}
        params = {key: parse_value(_text(f)) for key, f in _keyed_files(folder / "params").items()}
        experiment = folder.parent / "meta.yaml"
        status = meta.get("status")
        extra = {"run_id": run_id, "run_name": name, "status": STATUS.get(status, status),
                 "experiment": _yaml(experiment).get("name") if experiment.is_file() else None}
        runs.append(RawRun(name=_store_name(name, run_id), series=series, step_field="mlflow step",
                           config=params, config_sources=("mlflow params",) if params else (), extra=extra))
    if not runs:
        raise SourceError(f"{path}: every MLflow run here is deleted")
    return Source(path, "mlflow", runs, multi=path not in folders, skipped=skipped)


def _store_name(name: str, run_id: str) -> str:
    return f"{name}-{run_id[:8]}" if name else run_id


def read_mlflow_db(path: Path) -> Source:
    """Every live run of an MLflow SQLite store (``mlflow.db``), opened read-only."""
    if path.is_dir():
        path = path / "mlflow.db"
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise SourceError(f"{path}: cannot open as SQLite ({exc})") from None
    try:
        return _read_db(db, path)
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"{path}: not a readable MLflow SQLite store ({exc})") from None
    finally:
        db.close()


def _read_db(db: sqlite3.Connection, path: Path) -> Source:
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "metrics" not in tables:
        raise SourceError(f"{path}: no 'metrics' table: not an MLflow tracking store")
    columns = {r[1] for r in db.execute("PRAGMA table_info(metrics)")}
    is_nan = "is_nan" if "is_nan" in columns else "0"
    rows = db.execute(f"SELECT run_uuid, key, step, value, {is_nan} FROM metrics "
                      "ORDER BY run_uuid, key, step, timestamp").fetchall()
    info: dict[str, dict[str, Any]] = {}
    if "runs" in tables:
        experiments = dict(db.execute("SELECT experiment_id, name FROM experiments")) \
            if "experiments" in tables else {}
        for uuid, name, status, stage, exp in db.execute(
                "SELECT run_uuid, name, status, lifecycle_stage, experiment_id FROM runs"):
            info[uuid] = {"run_name": name or "", "status": status, "deleted": stage == "deleted",
                          "experiment": experiments.get(exp)}
    params: dict[str, dict[str, Any]] = {}
    if "params" in tables:
        for uuid, key, value in db.execute("SELECT run_uuid, key, value FROM params"):
            params.setdefault(uuid, {})[key] = parse_value(str(value))
    grouped: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
    for uuid, key, step, value, nan in rows:
        try:
            step_i, value_f = int(step or 0), float("nan") if nan else float(value)
        except (TypeError, ValueError, OverflowError):
            raise SourceError(f"{path}: metrics row (run {uuid}, key {key!r}, step {step!r}): "
                              f"value {value!r} is not a number") from None
        steps, values = grouped.setdefault(str(uuid), {}).setdefault(str(key), ([], []))
        steps.append(step_i)
        values.append(value_f)
    runs, skipped = [], []
    for uuid in sorted(set(grouped) | set(params)):
        meta = info.get(uuid, {})
        if meta.get("deleted"):
            skipped.append({"run": uuid, "reason": "deleted in MLflow"})
            continue
        series = {k: (np.asarray(s, dtype=np.int64), np.asarray(v, dtype=np.float64))
                  for k, (s, v) in grouped.get(uuid, {}).items()}
        extra = {"run_id": uuid, "run_name": meta.get("run_name", ""), "status": meta.get("status"),
                 "experiment": meta.get("experiment")}
        runs.append(RawRun(name=_store_name(meta.get("run_name", ""), uuid), series=series,
                           step_field="mlflow step", config=params.get(uuid, {}),
                           config_sources=("mlflow params",) if uuid in params else (), extra=extra))
    if not runs:
        raise SourceError(f"{path}: no MLflow runs with metrics or params")
    return Source(path, "mlflow-db", runs, multi=True, skipped=skipped)
