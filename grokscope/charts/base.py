"""Helpers shared by the chart modules: sizes, input checks and axes.  Public charts live in ``charts``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import altair as alt
import numpy as np
import pandas as pd

from grokscope.errors import GrokscopeError

WIDTH = 560  # default chart size in pixels (exports of single and layered views fit axes and legend inside)
HEIGHT = 300

C = TypeVar("C", bound=alt.TopLevelMixin)


def sized(chart: C, width: int, height: int, title: str | None = None) -> C:
    """Set the view's size (and title).  No ``autosize`` here: charts must stay composable with ``|``/``&``;
    :func:`grokscope.report.export.save_chart` fits single and layered views to exactly this size on export."""
    props: dict[str, Any] = dict(width=width, height=height)
    if title:
        props["title"] = title
    return chart.properties(**props)


def require_columns(df: Any, columns: Iterable[str], what: str) -> pd.DataFrame:
    """``df`` as a DataFrame holding ``columns``; a GrokscopeError naming the missing ones otherwise."""
    if not isinstance(df, pd.DataFrame):
        raise GrokscopeError(f"{what} needs a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise GrokscopeError(f"{what} needs columns {', '.join(missing)}; the table has "
                             f"{', '.join(map(str, df.columns)) or 'none'}")
    return df


def step_x(log_x: bool, field: str = "step", title: str = "step", grid: bool = True) -> alt.X:
    """The optimizer-step axis, linear or log (a log axis cannot show step 0: callers drop it)."""
    scale = alt.Scale(type="log", nice=False) if log_x else alt.Scale(zero=False, nice=False)
    return alt.X(f"{field}:Q", title=title, scale=scale, axis=alt.Axis(grid=grid, labelOverlap=True))


def round_sig(values: Any, digits: int = 6) -> list[float | None]:
    """Values rounded to ``digits`` significant digits (NaN → None): a chart needs no more, and the page's
    JSON gets much shorter."""
    return [None if v != v else float(f"{v:.{digits}g}") for v in np.asarray(values, dtype=np.float64)]


def tidy_table(parts: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate chart tables; missing text cells become None (altair writes NaN in text columns as NaN,
    which is not JSON)."""
    parts = list(parts)
    table = pd.concat([p for i, p in enumerate(parts) if i == 0 or len(p)], ignore_index=True)
    for column in table.columns:
        if table[column].dtype == object:
            table[column] = table[column].astype(object).where(table[column].notna(), None)
    return table
