"""Printing result rows: a rich table for people, one JSON document or CSV for programs (all on stdout)."""

from __future__ import annotations

import csv as csv_module
import json
import math
import sys
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null; numpy scalars become Python numbers."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def print_json(document: Any) -> None:
    """Exactly one JSON document on stdout."""
    sys.stdout.write(json.dumps(_clean(document), allow_nan=False) + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _csv_value(value: Any) -> Any:
    """Full precision for numbers (CSV is for programs); empty for missing; JSON for lists and dicts."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


def emit_rows(rows: list[dict[str, Any]], columns: Mapping[str, str], *, as_json: bool, as_csv: bool,
              title: str) -> None:
    """Rows as JSON (all keys), CSV (all keys) or a table of ``columns`` (row key → header); runs that could
    not be measured (an ``error`` key) are counted in a note on stderr."""
    failed = sum("error" in row for row in rows)
    if failed:
        print(f"{failed} of {len(rows)} runs could not be measured; their rows say why (error)", file=sys.stderr)
    if as_json:
        print_json(rows)
        return
    if as_csv:
        keys = list(dict.fromkeys(k for row in rows for k in row))
        writer = csv_module.DictWriter(sys.stdout, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _csv_value(_clean(v)) for k, v in row.items()} for row in rows)
        return
    table = Table(title=title)
    shown = [c for c in columns if any(c in row for row in rows)]
    for column in shown:
        table.add_column(columns[column], no_wrap=True)
    for row in rows:
        table.add_row(*(Text(_cell(row.get(c))) for c in shown))  # Text: "[3, 4]" is data, not markup
    console = Console()
    if not console.is_terminal:  # pipes and logs: don't squeeze the table into 80 columns
        console = Console(width=240)
    console.print(table)
