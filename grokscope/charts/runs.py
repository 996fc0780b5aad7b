"""Charts of training curves: accuracy, loss and weight norm vs step for one run, several runs overlaid or
faceted, or runs grouped by a hyperparameter (mean line, min/max band over seeds).

Every chart takes either run stores (paths, directories, :class:`RunStore`) or a tidy table with columns
``run, split, step, value`` (optionally ``lo, hi`` and hyperparameter columns) as :func:`curves_frame`
returns, and is downsampled (:mod:`grokscope.charts.thinning`) so it never exceeds altair's row limit.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, Union

import altair as alt
import numpy as np
import pandas as pd

from grokscope.analysis.measures.onset import Criteria
from grokscope.analysis.runners.summary import CONFIG_KEYS, summarize_run
from grokscope.charts.base import HEIGHT, WIDTH, require_columns, round_sig, sized, step_x, tidy_table
from grokscope.charts.thinning import CHART_ROWS, MAX_POINTS, MIN_POINTS, decimate, downsample_frame, points_per_curve
from grokscope.errors import GrokscopeError
from grokscope.store.reader import RunStore
from grokscope.store.runs import find_runs
from grokscope.store.runs import run_labels as store_labels

__all__ = ["ACCURACY", "LOSS", "NORM", "as_stores", "run_labels", "curves_frame", "curves_chart",
           "accuracy_chart", "loss_chart", "norm_chart"]

RunLike = Union[str, os.PathLike, RunStore]
Runs = Union[RunLike, Sequence[RunLike]]
ACCURACY = {"train": "train_acc", "test": "test_acc"}  # split → per-step array of the store
LOSS = {"train": "train_loss", "test": "test_loss"}
NORM = {"l2": "l2_norm"}
SPLIT_COLORS = {"train": "#4c78a8", "test": "#e45756", "l2": "#4c78a8"}
LEGEND = alt.Legend(symbolType="stroke", symbolStrokeWidth=2.5, symbolOpacity=1)
EVENTS = {"memorization": ("memorization_step", [2, 3], "memorized"),  # event → (summary key, dash, label)
          "generalization": ("generalization_step", [7, 3], "generalized"),
          "sustained": ("sustained_generalization_step", [1, 2], "sustained"),  # grokscope.analysis.measures.stability
          "collapse": ("collapse_step", [8, 2, 2, 2], "collapsed")}


def as_stores(runs: Runs) -> list[RunStore]:
    """Open the run stores named by one path / store, or a sequence of them (directories are searched)."""
    items = [runs] if isinstance(runs, (str, os.PathLike, RunStore)) else list(runs)
    stores = [store for item in items
              for store in ([item] if isinstance(item, RunStore) else map(RunStore, find_runs([item])))]
    if not stores:
        raise GrokscopeError("no run stores given")
    return stores


def run_labels(stores: Sequence[RunStore]) -> list[str]:
    """A unique label per store (:func:`grokscope.store.runs.run_labels`): ``seed0/run``, ``equidistant/frac=0.2`` …"""
    return store_labels([s.path for s in stores])


def curves_frame(runs: Runs, metrics: Mapping[str, str] = ACCURACY, *, log_x: bool = False,
                 max_points: int = MAX_POINTS) -> pd.DataFrame:
    """Tidy, downsampled curves of run stores: columns ``run, split, step, value, lo, hi`` + config keys
    (``run`` from :func:`run_labels`).

    ``metrics`` maps a split name to a per-step array of the store (e.g. ``{"train": "train_acc"}``); a
    run lacking an array contributes no rows for it.  Each curve keeps at most ``max_points`` real points,
    the extremes of each bucket among them (:func:`grokscope.charts.thinning.decimate`), the buckets spanning
    the runs' common range of *step values* (linear, or log-spaced with ``log_x``); ``lo = hi = value``.

    Examples
    --------
    >>> df = curves_frame("runs/demo.zarr", LOSS)  # doctest: +SKIP
    >>> sorted(df.split.unique())                  # doctest: +SKIP
    ['test', 'train']
    """
    stores = as_stores(runs)
    steps_of = [store.read("step") for store in stores]  # (n_steps,) each: step values, not row numbers
    logged = [s for s in steps_of if len(s)]
    first = max(0.0, float(min(s[0] for s in logged))) if logged else 0.0
    last = float(max(s[-1] for s in logged)) if logged else 1.0
    span = (first, max(first, last))
    parts = []
    for store, label, steps in zip(stores, run_labels(stores), steps_of):
        config = {k: store.config[k] for k in CONFIG_KEYS if k in store.config}
        for split, name in metrics.items():
            if not store.has(name):
                continue
            s, v = decimate(steps, store.read(name), max_points, log=log_x, span=span)
            parts.append(pd.DataFrame({"run": label, "split": split, "step": s.astype(np.int64),
                                       "value": v, "lo": v, "hi": v, **config}))
    columns = ["run", "split", "step", "value", "lo", "hi"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def marks_frame(marks: Any, runs: Sequence[str]) -> pd.DataFrame:
    """Rows ``run, event, step, label`` from summary rows (``run, memorization_step,
    generalization_step``, and ``sustained_generalization_step``, ``collapse_step`` where present); a row
    without ``run`` belongs to the only run.  The sustained mark is left out where it coincides with the
    generalization step (a run that stayed generalized from its first crossing)."""
    rows = marks.to_dict("records") if isinstance(marks, pd.DataFrame) else list(marks)
    out = []
    for row in rows:
        run = row.get("run", runs[0] if len(runs) == 1 else None)
        for event, (key, _, label) in EVENTS.items():
            step = row.get(key)
            if event == "sustained" and step is not None and step == row.get("generalization_step"):
                continue
            if run in runs and step is not None and np.isfinite(step):
                out.append({"run": run, "event": event, "step": int(step), "label": f"{label} {int(step)}"})
    return pd.DataFrame(out, columns=["run", "event", "step", "label"])


def _interval_frame(intervals: Mapping[str, Any] | None) -> pd.DataFrame:
    """Shaded spans from seed-001 intervals: transition [α0, α1] and support [α1, α1 + S]."""
    rows = []
    if intervals and intervals.get("alpha1") is not None:
        a1 = float(intervals["alpha1"])
        if intervals.get("alpha0") is not None:
            rows.append({"event": "transition", "start": float(intervals["alpha0"]), "end": a1})
        end = intervals.get("support_end")
        if end is None and intervals.get("support") is not None:
            end = a1 + float(intervals["support"])
        if end is not None:
            rows.append({"event": "support", "start": a1, "end": float(end)})
    return pd.DataFrame(rows, columns=["event", "start", "end"])


def _group(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean over runs per (keys, split) on the union of their steps, each run's curve linearly
    interpolated there (inside its own step range; decimated runs keep different points); the band spans
    the runs' ``lo`` and ``hi``; ``runs`` counts the runs covering each step."""
    out = []
    for key, part in df.groupby([*keys, "split"], sort=True, dropna=False):
        grid = np.unique(part["step"].to_numpy())  # (n_grid,)
        x = grid.astype(np.float64)
        curves = [run.sort_values("step", kind="stable") for _, run in part.groupby("run", sort=False)]
        on_grid = {c: np.stack([np.interp(x, r["step"].to_numpy(np.float64), r[c].to_numpy(np.float64),
                                          left=np.nan, right=np.nan) for r in curves])  # (n_runs, n_grid)
                   for c in ("value", "lo", "hi")}
        covered = ~np.isnan(on_grid["value"])  # every grid step is some run's own step: ≥ 1 run each
        out.append(pd.DataFrame({**dict(zip([*keys, "split"], key)), "step": grid,
                                 "value": np.nanmean(on_grid["value"], axis=0),
                                 "lo": np.nanmin(on_grid["lo"], axis=0), "hi": np.nanmax(on_grid["hi"], axis=0),
                                 "runs": covered.sum(axis=0)}))
    return pd.concat(out, ignore_index=True)


def _group_label(value: Any) -> str:
    """A grouping value as a legend label: whole numbers without ``.0`` (a column with missing values is
    float), a missing value as ``none`` (imported runs without that config key)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _series_sort(values: pd.Series) -> list[str]:
    """Legend order: numeric labels by value, then the others in order of first appearance."""
    labels = list(dict.fromkeys(values.astype(str)))

    def number(label: str) -> float | None:
        try:
            value = float(label)
        except ValueError:
            return None
        return value if math.isfinite(value) else None

    numeric = sorted((lab for lab in labels if number(lab) is not None), key=number)
    return numeric + [lab for lab in labels if number(lab) is None]


def mark_layers(base: alt.Chart, color: Any, table: pd.DataFrame) -> list[alt.Chart]:
    """Rules (and, with a fixed colour, labels) at the steps of :data:`EVENTS` (memorized, generalized,
    sustained, collapsed): the rows of ``table`` with ``kind == 'mark'``.  Only events present get layers
    (an empty layer makes Vega warn)."""
    present = set(table.loc[table["kind"] == "mark", "event"]) if "event" in table else set()
    layers = []
    for i, (event, (_, dash, _)) in enumerate(EVENTS.items()):
        if event not in present:
            continue
        rows = base.transform_filter(f"datum.kind == 'mark' && datum.event == '{event}'")
        tooltip = [alt.Tooltip("series:N", title="run"), "event:N", "step:Q"]
        layers.append(rows.mark_rule(strokeDash=dash, strokeWidth=1.5).encode(
            x="step:Q", color=color, tooltip=tooltip))
        if not isinstance(color, alt.Color):  # one run: label the rules
            layers.append(rows.mark_text(align="left", dx=3, fontSize=10, color="#444").encode(
                x="step:Q", y=alt.value(8 + 13 * i), text="label:N"))
    return layers


def _split_order(splits: Sequence[str]) -> list[str]:
    """train, test, l2 first (in that order), then any other split names alphabetically."""
    known = list(SPLIT_COLORS)
    rank = {s: i for i, s in enumerate(known)}
    return sorted(dict.fromkeys(splits), key=lambda s: (rank.get(s, len(known)), s))


def _curve_rows(data: Runs | pd.DataFrame, metrics: Mapping[str, str], marks: Any, criteria: Criteria,
                log_x: bool, log_y: bool) -> tuple[pd.DataFrame, Any]:
    """The curves as a table with ``run, split, step, value, lo, hi``, and the marks to draw (or None)."""
    if isinstance(data, pd.DataFrame):
        df = require_columns(data, ["step", "split", "value"], "curves_chart")
        df = df if "run" in df else df.assign(run="run")
    else:
        stores = as_stores(data)
        df = curves_frame(stores, metrics, log_x=log_x)
        if marks is None:
            labels = run_labels(stores)
            marks = [{**summarize_run(s, criteria), "run": label} for s, label in zip(stores, labels)]
    df = df[df["value"].notna()]
    df = df.assign(lo=df["lo"].fillna(df["value"]) if "lo" in df else df["value"],
                   hi=df["hi"].fillna(df["value"]) if "hi" in df else df["value"])
    if log_x:
        df = df[df["step"] > 0]
    if log_y:  # a log axis cannot show values ≤ 0
        df = df[df["value"] > 0]
        df = df.assign(lo=df["lo"].where(df["lo"] > 0, df["value"]))
    if df.empty:
        raise GrokscopeError("no curve values to chart")
    return df, (None if marks is None or marks is False else marks)


def curves_chart(
    data: Runs | pd.DataFrame, metrics: Mapping[str, str] = ACCURACY, *, y_title: str = "accuracy",
    log_x: bool = False, log_y: bool = False, y_domain: tuple[float, float] | None = None,
    group_by: str | None = None, facet: str | None = None, marks: Any = None,
    intervals: Mapping[str, Any] | None = None, criteria: Criteria = Criteria(),
    width: int = WIDTH, height: int = HEIGHT, title: str | None = None,
) -> alt.LayerChart | alt.FacetChart:
    """Curves vs step: one run (coloured by split), several overlaid (coloured by run, dashed by split),
    grouped by a hyperparameter (mean line and min/max band over the runs of each value) or faceted.

    Parameters
    ----------
    data : run store path(s) / :class:`RunStore` (s), or a tidy table as :func:`curves_frame` returns.
    metrics : split → per-step array, used when ``data`` are run stores.
    log_x, log_y : log axes (rows with step 0, or values ≤ 0 on a log y axis, are dropped).
    group_by : a column (e.g. ``"n_train"``) whose runs are averaged.
    facet : a column to facet by (e.g. ``"run"``), three facets a row.
    marks : summary rows (``run, memorization_step, generalization_step``, optionally
        ``sustained_generalization_step, collapse_step``, e.g. from ``analyze``) to mark with rules;
        ``None`` computes them from run stores with ``criteria``; ``False`` draws none.
        Not drawn when grouping.
    intervals : seed-001 intervals of the run (``alpha0, alpha1, support`` as
        ``GrokkingIntervals.to_dict()`` gives, or ``support_end``), shaded.
    """
    df, marks = _curve_rows(data, metrics, marks, criteria, log_x, log_y)
    for column in (group_by, facet):
        if column is not None and column not in df and column != "series":
            raise GrokscopeError(f"cannot group or facet by {column!r}: the curves have no such column")
    keys = [k for k in dict.fromkeys([group_by, facet]) if k not in (None, "run", "series")]
    facet_field = "series" if facet in ("run", "series") else facet
    if group_by is not None:
        df = _group(df, keys).assign(series=lambda d: d[group_by].map(_group_label))
        marks = None
    else:
        df = df.assign(series=df["run"].astype(str))
    by = ["series", "split", *[k for k in keys if k != group_by]]  # one curve each
    n_curves = df.groupby(by).ngroups
    if n_curves * MIN_POINTS > CHART_ROWS:
        raise GrokscopeError(f"{n_curves} curves are too many for one chart; group them (group_by=…)")
    df = downsample_frame(df, by, points_per_curve(n_curves), log=log_x)
    band = bool(((df["lo"] != df["value"]) | (df["hi"] != df["value"])).any())
    df = df.assign(**{c: round_sig(df[c]) for c in ("value", "lo", "hi")})
    df = df[["series", "split", "step", "value", *(["lo", "hi"] if band else []),
             *(["runs"] if group_by is not None else []), *keys]].assign(kind="curve")

    parts = [df]
    if marks is not None:
        run_info = df.drop_duplicates("series")[["series", *keys]]
        m = marks_frame(marks, list(run_info["series"])).rename(columns={"run": "series"})
        m = m[m["step"] > 0] if log_x else m
        parts.append(m.merge(run_info, on="series").assign(kind="mark"))
    spans = _interval_frame(intervals)
    if log_x:
        spans["start"] = spans["start"].clip(lower=max(1.0, float(df["step"].min())))
    if len(spans):
        facet_values = df[[facet_field]].drop_duplicates() if facet else pd.DataFrame(index=[0])
        parts.append(spans.merge(facet_values, how="cross").assign(kind="interval"))
    table = tidy_table(parts)

    splits = _split_order(df["split"])
    if df["series"].nunique() == 1:  # one run: colour by split, grey labelled rules
        color: Any = alt.Color("split:N", title="split", sort=splits, legend=LEGEND, scale=alt.Scale(
            domain=splits, range=[SPLIT_COLORS.get(s, "#72b7b2") for s in splits]))
        rule_color: Any = alt.value("#555")
        dash: Any = alt.Undefined
    else:  # colour by run or group, dash by split
        color = alt.Color("series:N", title=group_by or "run", sort=_series_sort(df["series"]), legend=LEGEND)
        rule_color = color
        dash = alt.StrokeDash("split:N", title="split", sort=splits) if len(splits) > 1 else alt.Undefined
    y_scale = alt.Scale(type="log") if log_y else alt.Scale(domain=list(y_domain) if y_domain
                                                            else alt.Undefined)
    base = alt.Chart()
    curves = base.transform_filter("datum.kind == 'curve'")
    tooltip = ["series:N", "split:N", "step:Q", alt.Tooltip("value:Q", format=".4g"),
               *(["runs:Q"] if group_by is not None else [])]
    layers = [base.transform_filter(f"datum.kind == 'interval' && datum.event == '{event}'")
              .mark_rect(opacity=0.12, color=shade)
              .encode(x=alt.X("start:Q"), x2="end:Q", tooltip=["event:N", "start:Q", "end:Q"])
              for event, shade in (("transition", "#f58518"), ("support", "#54a24b"))
              if event in set(spans["event"])]
    layers.append(curves.mark_line(strokeWidth=1.6).encode(  # before the band: the legend takes its symbols
        x=step_x(log_x), y=alt.Y("value:Q", title=y_title, scale=y_scale), color=color, strokeDash=dash,
        detail="split:N", tooltip=tooltip))
    if band:  # min/max over the runs of a group (or a band the table brought)
        layers.append(curves.mark_area(opacity=0.18).encode(
            x=step_x(log_x), y=alt.Y("lo:Q", scale=y_scale), y2="hi:Q", color=color, detail="split:N"))
    if marks is not None:
        layers += mark_layers(base, rule_color, table)
    chart = alt.layer(*layers, data=table)
    if facet:
        return chart.properties(width=width // 2, height=height // 2).facet(
            facet=alt.Facet(f"{facet_field}:N", title=facet), columns=3, title=title or "")
    return sized(chart, width, height, title)


def accuracy_chart(data: Runs | pd.DataFrame, *, log_x: bool = False, **kwargs: Any) -> alt.LayerChart:
    """Train and test accuracy vs step (y from 0 to 1); see :func:`curves_chart` for every option.

    Examples
    --------
    >>> accuracy_chart("runs/demo.zarr", log_x=True)                  # doctest: +SKIP
    >>> accuracy_chart("runs/sweep/", group_by="n_train")              # doctest: +SKIP
    """
    kwargs.setdefault("title", "accuracy")
    return curves_chart(data, ACCURACY, y_title="accuracy", log_x=log_x, y_domain=(0, 1), **kwargs)


def loss_chart(data: Runs | pd.DataFrame, *, log_x: bool = False, **kwargs: Any) -> alt.LayerChart:
    """Train and test loss vs step on a log y axis; see :func:`curves_chart` for every option."""
    kwargs.setdefault("title", "loss")
    return curves_chart(data, LOSS, y_title="loss", log_x=log_x, log_y=True, **kwargs)


def norm_chart(data: Runs | pd.DataFrame, *, log_x: bool = False, **kwargs: Any) -> alt.LayerChart:
    """Total L2 norm of the weights vs step for several runs (one run with its decay fit: ``l2_chart``)."""
    kwargs.setdefault("title", "L2 norm of the weights")
    return curves_chart(data, NORM, y_title="L2 norm", log_x=log_x, **kwargs)
