"""Tables of logged metrics: CSV/TSV, JSONL and Parquet, in every layout the common loggers write.

Layouts, told apart by their header:

- wide: one row per logging call, a step column and one column per metric (pandas, W&B history exports
  with ``_step``, ``wandb-history.jsonl``, PyTorch Lightning's sparse ``metrics.csv``);
- long: ``[run,] metric, step, value`` rows (tidy tables, tbparse output);
- wandb-panel: a chart's CSV export, ``Step`` plus ``"<run> - <metric>"`` columns and ``__MIN``/``__MAX``
  bands (dropped); its values are bucketed, so its runs are marked sampled.

A ``run`` column (any layout) splits the table into runs.  Empty cells and JSON ``null`` are "not logged";
rows repeating a step merge, the later non-empty value winning.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from grokscope.importers.base import RawRun, Source, SourceError, check_steps
from grokscope.importers.mapping import find_step_field
from grokscope.importers.sidecar import sidecar_configs

RUN_FIELDS = ("run", "run_id", "run_name", "run_uuid")
METRIC_FIELDS = ("metric", "key", "tag", "name")
HISTORY = "wandb-history.jsonl"
PANEL_BAND = re.compile(r"__(MIN|MAX)$")


@dataclass(frozen=True)
class Table:
    """Parsed cells before any meaning: field → one value per row, and each row's place in the file."""

    fields: list[str]
    columns: dict[str, list[Any]]  # text cells (str) or JSON values
    where: list[str]  # "line 7" / "row 7", per row
    json_cells: bool = False  # cells are JSON values, not text


# --- parsing ---------------------------------------------------------------------------------------------


def decode(data: bytes, path: Path) -> str:
    """UTF-8 text (a byte-order mark is skipped); anything else is an error naming the byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def parse_delimited(text: str, path: Path, delimiter: str | None = None) -> Table:
    """CSV (or TSV) text with a header row.  ``delimiter=None``: a tab if the header has one and no comma.

    Examples
    --------
    >>> parse_delimited("step,loss\\n0,1.5\\n", Path("m.csv")).columns
    {'step': ['0'], 'loss': ['1.5']}
    """
    if not text.strip():
        raise SourceError(f"{path}: empty file")
    if delimiter is None:
        header = text.split("\n", 1)[0]
        delimiter = "\t" if "\t" in header and "," not in header else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    fields: list[str] | None = None
    rows: list[list[str]] = []
    where: list[str] = []
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if fields is None:
                fields = _header(row, path)
                continue
            if len(row) != len(fields):
                raise SourceError(f"{path}: line {reader.line_num}: {len(row)} fields, the header has "
                                  f"{len(fields)}")
            rows.append(row)
            where.append(f"line {reader.line_num}")
    except csv.Error as exc:
        raise SourceError(f"{path}: line {reader.line_num}: {exc}") from None
    if fields is None:
        raise SourceError(f"{path}: empty file")
    if not rows:
        raise SourceError(f"{path}: a header but no data rows")
    return Table(fields, {f: [r[i] for r in rows] for i, f in enumerate(fields)}, where)


def parse_jsonl(text: str, path: Path) -> Table:
    """One JSON object per line (nested objects flattened with ``.``); blank lines are skipped."""
    records: list[dict[str, Any]] = []
    where: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:
            reason = getattr(exc, "msg", "not valid JSON")
            raise SourceError(f"{path}: line {number}: not a complete JSON object ({reason})") from None
        if not isinstance(record, dict):
            raise SourceError(f"{path}: line {number}: expected a JSON object, found {type(record).__name__}")
        records.append(_flatten(record))
        where.append(f"line {number}")
    if not records:
        raise SourceError(f"{path}: empty file")
    fields = list(dict.fromkeys(k for r in records for k in r))
    if not fields:
        raise SourceError(f"{path}: no fields in any line")
    return Table(fields, {f: [r.get(f) for r in records] for f in fields}, where, json_cells=True)


def read_parquet(path: Path) -> Table:
    """A Parquet file (W&B history exports) through pandas/pyarrow."""
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for damaged or foreign files
        raise SourceError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0][:120]})") from None
    if frame.shape[1] == 0:
        raise SourceError(f"{path}: empty file")
    if frame.shape[0] == 0:
        raise SourceError(f"{path}: a header but no data rows")
    fields = [str(c) for c in frame.columns]
    if len(set(fields)) != len(fields):
        raise SourceError(f"{path}: duplicate column names")
    columns = {}
    for name, column in zip(fields, frame.columns):
        values = frame[column]
        numeric = values.dtype.kind in "iuf"
        columns[name] = (values.to_numpy(dtype=np.float64, na_value=np.nan) if numeric
                         else values.astype(object).where(values.notna(), None).tolist())
    return Table(fields, columns, [f"row {i + 1}" for i in range(frame.shape[0])], json_cells=True)


def _header(row: list[str], path: Path) -> list[str]:
    fields = [c.strip() or f"column {i + 1}" for i, c in enumerate(row)]
    seen = set()
    for name in fields:
        if name in seen:
            raise SourceError(f"{path}: line 1: field {name!r} appears twice in the header")
        seen.add(name)
    return fields


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


# --- cells to numbers ------------------------------------------------------------------------------------


def floats(values: Sequence[Any] | np.ndarray, json_cells: bool) -> tuple[np.ndarray, int | None]:
    """Cells → float64 (empty / null → NaN) and the index of the first cell that is no number (or None)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return values, None
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        try:
            if json_cells:
                if v is None or (isinstance(v, float) and v != v):
                    out[i] = np.nan
                    continue
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    return out, i
                out[i] = float(v)
            else:
                s = v.strip()
                out[i] = float(s) if s else np.nan
        except (ValueError, OverflowError):
            return out, i
    return out, None


def _cell_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _numbers(table: Table, field: str, rows: np.ndarray, path: Path) -> np.ndarray:
    """A field that must be numeric (step, value): the first bad cell raises, naming its line."""
    column = table.columns[field]
    cells = column[rows] if isinstance(column, np.ndarray) else [column[i] for i in rows]
    values, bad = floats(cells, table.json_cells)
    if bad is not None:
        i = int(rows[bad])
        raise SourceError(f"{path}: {table.where[i]}: field {field!r}: {_cell_text(column[i])} "
                          "is not a number")
    return values


def _labels(table: Table, field: str, path: Path) -> list[str]:
    out = []
    for i, v in enumerate(table.columns[field]):
        text = v if isinstance(v, str) else ("" if v is None else json.dumps(v, default=str))
        if not text.strip():
            raise SourceError(f"{path}: {table.where[i]}: field {field!r} is empty")
        out.append(text.strip())
    return out


# --- layouts ---------------------------------------------------------------------------------------------


def runs_from_table(table: Table, path: Path, step_field: str | None = None) -> Source:
    """Split a parsed table into runs of ``field → (steps, values)`` series.  ``step_field`` overrides."""
    fields = table.fields
    run_field = next((f for f in RUN_FIELDS if f in fields), None)
    metric_field = next((f for f in METRIC_FIELDS if f in fields), None)
    rest = [f for f in fields if f != run_field]
    if "value" in fields and metric_field is not None:
        return _long(table, path, run_field, metric_field, step_field)
    step = find_step_field(rest, step_field)
    others = [f for f in rest if f != step]
    if step is not None and others and all(" - " in f for f in others):
        return _panel(table, path, step, others)
    groups = _groups(table, run_field, path)
    runs = []
    for name, rows in groups.items():
        steps = (check_steps(_numbers(table, step, rows, path), [table.where[i] for i in rows], path, step)
                 if step else np.arange(len(rows), dtype=np.int64))
        series, invalid = {}, {}
        for field in others:
            column = table.columns[field]
            cells = column[rows] if isinstance(column, np.ndarray) else [column[i] for i in rows]
            values, bad = floats(cells, table.json_cells)
            if bad is not None:
                invalid[field] = f"{table.where[rows[bad]]}: {_cell_text(column[rows[bad]])} is not a number"
                continue
            keep = ~np.isnan(values)
            series[field] = (steps[keep], values[keep])
        runs.append(RawRun(name=name, series=series, step_field=step or "row order", invalid=invalid))
    layout = ("lightning" if path.name == "metrics.csv" and {"epoch", "step"} <= set(fields)
              else "wandb-history" if "_step" in fields else "wide")
    return Source(path, "", runs, multi=run_field is not None, layout=layout)


def _groups(table: Table, run_field: str | None, path: Path) -> dict[str, np.ndarray]:
    n = len(table.where)
    if run_field is None:
        return {"": np.arange(n)}
    groups: dict[str, list[int]] = {}
    for i, label in enumerate(_labels(table, run_field, path)):
        groups.setdefault(label, []).append(i)
    return {k: np.asarray(v) for k, v in groups.items()}


def _long(table: Table, path: Path, run_field: str | None, metric_field: str,
          step_field: str | None) -> Source:
    fields = [f for f in table.fields if f not in (run_field, metric_field, "value")]
    step = find_step_field(fields, step_field)
    if step is None:
        raise SourceError(f"{path}: a long table (metric, value) needs a step column")
    every = np.arange(len(table.where))
    steps = check_steps(_numbers(table, step, every, path), table.where, path, step)
    values = _numbers(table, "value", every, path)
    metrics = _labels(table, metric_field, path)
    runs = []
    for name, rows in _groups(table, run_field, path).items():
        by_metric: dict[str, list[int]] = {}
        for i in rows:
            by_metric.setdefault(metrics[i], []).append(i)
        series = {m: (steps[np.asarray(idx)], values[np.asarray(idx)]) for m, idx in by_metric.items()}
        runs.append(RawRun(name=name, series=series, step_field=step))
    return Source(path, "", runs, multi=run_field is not None, layout="long")


def _panel(table: Table, path: Path, step: str, columns: list[str]) -> Source:
    every = np.arange(len(table.where))
    steps = check_steps(_numbers(table, step, every, path), table.where, path, step)
    runs: dict[str, dict[str, Any]] = {}
    for column in columns:
        run, _, metric = column.rpartition(" - ")
        entry = runs.setdefault(run, {"series": {}, "invalid": {}, "dropped": []})
        if PANEL_BAND.search(metric):
            entry["dropped"].append(column)
            continue
        values, bad = floats(table.columns[column], table.json_cells)
        if bad is not None:
            cell = _cell_text(table.columns[column][bad])
            entry["invalid"][metric] = f"{table.where[bad]}: {cell} is not a number"
            continue
        keep = ~np.isnan(values)
        entry["series"][metric] = (steps[keep], values[keep])
    out = [RawRun(name=run, series=e["series"], step_field=step, invalid=e["invalid"],
                  dropped=tuple(e["dropped"]), sampled=True) for run, e in runs.items()]
    return Source(path, "", out, multi=True, layout="wandb-panel")


# --- files -----------------------------------------------------------------------------------------------


def read_table(path: Path, fmt: str, step_field: str | None = None) -> Source:
    """A CSV, TSV, JSONL or Parquet file as a :class:`Source`, with sidecar configs from its folder."""
    if fmt == "parquet":
        table = read_parquet(path)
    else:
        text = decode(path.read_bytes(), path)
        table = parse_jsonl(text, path) if fmt == "jsonl" else \
            parse_delimited(text, path, "\t" if fmt == "tsv" else None)
    source = runs_from_table(table, path, step_field)
    config, used = sidecar_configs(path.parent)
    runs = [_with_config(r, config, used) for r in source.runs]
    return Source(path, fmt, runs, source.multi, source.layout)


def read_wandb(path: Path, step_field: str | None = None) -> Source:
    """A W&B run directory (``files/wandb-history.jsonl``), or a folder of them (one store per run)."""
    history = [p for p in (path / "files" / HISTORY, path / HISTORY) if p.is_file()]
    if history:
        source = read_table(history[0], "jsonl", step_field)
        runs = [_named(r, _wandb_id(path), path) for r in source.runs]
        return Source(path, "wandb", runs, multi=False, layout="wandb-history")
    runs = []
    for file in sorted(path.glob("*/files/wandb-history.jsonl")) + sorted(path.glob("*/wandb-history.jsonl")):
        run_dir = file.parent.parent if file.parent.name == "files" else file.parent
        (run,) = read_table(file, "jsonl", step_field).runs
        runs.append(_named(run, _wandb_id(run_dir), run_dir))
    if not runs:
        raise SourceError(f"{path}: no wandb-history.jsonl in this folder or its run folders")
    return Source(path, "wandb", runs, multi=True, layout="wandb-history")


def _wandb_id(run_dir: Path) -> str:
    match = re.match(r"^(?:offline-)?run-\d{8}_\d{6}-(.+)$", run_dir.name)
    return match.group(1) if match else run_dir.name


def _named(run: RawRun, name: str, run_dir: Path) -> RawRun:
    return replace(run, name=name, extra={**run.extra, "run_dir": str(run_dir)})


def _with_config(run: RawRun, config: dict[str, Any], used: list[str]) -> RawRun:
    return replace(run, config={**config, **run.config}, config_sources=(*used, *run.config_sources))
