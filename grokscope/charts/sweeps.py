"""Charts of sweeps over data size and model size (seed 002): step-wise analysis, steps to generalize with
the critical data size (CDS), CDS vs model size with its power-law fit, and the accuracy landscape.

Each takes a tidy table (one row per run, or per run and threshold) with the columns named below; a step
that was never reached is NaN (missing), never 0.  An optional ``stable`` column (True / False / None, as
:mod:`grokscope.analysis.measures.stability` gives it) draws the points of runs that generalized but did not stay
generalized as triangles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from grokscope.charts.base import HEIGHT, WIDTH, require_columns, sized, tidy_table
from grokscope.errors import GrokscopeError

__all__ = ["stepwise_chart", "generalization_steps_chart", "cds_scaling_chart", "landscape_chart"]

FIT_POINTS = 50  # points along a drawn power law
STABILITY = {"stable": "circle", "unstable": "triangle-down", "not generalized": "square"}  # label → shape


def _stability(df: pd.DataFrame) -> pd.DataFrame:
    """``stable`` (True / False / None) as a ``stability`` label column, when the table has it."""
    if "stable" not in df:
        return df
    labels = [("not generalized" if v is None or v != v else "stable" if bool(v) else "unstable")
              for v in df["stable"].astype(object)]
    return df.drop(columns="stable").assign(stability=labels)


def _point_encoding(df: pd.DataFrame) -> dict[str, Any]:
    """Shape by stability (triangles: generalized, then fell below the threshold again), when known."""
    if "stability" not in df:
        return {}
    present = [k for k in STABILITY if k in set(df["stability"])]
    return {"shape": alt.Shape("stability:N", title="stability", sort=present, scale=alt.Scale(
        domain=present, range=[STABILITY[k] for k in present]))}


def _by_model_size(chart: alt.LayerChart, df: pd.DataFrame, width: int, height: int,
                   title: str | None) -> alt.LayerChart | alt.FacetChart:
    """Facet by ``model_size`` (three a row) when the table has several, else one sized view."""
    if "model_size" in df and df["model_size"].nunique() > 1:
        return chart.properties(width=width // 2, height=height // 2).facet(
            facet=alt.Facet("model_size:O", title="model size"), columns=3, title=title or "")
    return sized(chart, width, height, title)


def stepwise_chart(df: pd.DataFrame, *, log_x: bool = False, width: int = WIDTH, height: int = HEIGHT,
                   title: str | None = "first step reaching each test-accuracy threshold") -> alt.Chart:
    """Seed 002's step-wise analysis: for each threshold, the first step the (smoothed) test accuracy reaches
    it, vs the training-set size.

    ``df`` columns: ``n_train, threshold, step`` (NaN: never reached; several seeds are averaged by the
    line, each shown as a point) and optionally ``model_size`` (one facet each) and ``stable`` (the run's
    :mod:`grokscope.analysis.measures.stability` verdict: unstable runs' points are triangles).

    Examples
    --------
    >>> df = pd.DataFrame({"n_train": [1000, 2000, 1000, 2000], "threshold": [0.5, 0.5, 0.9, 0.9],
    ...                    "step": [np.nan, 900.0, np.nan, 3500.0]})
    >>> chart = stepwise_chart(df)
    """
    df = require_columns(df, ["n_train", "threshold", "step"], "stepwise_chart")
    df = _stability(df[[c for c in ("model_size", "n_train", "threshold", "step", "stable") if c in df]])
    shape = _point_encoding(df)
    x = alt.X("n_train:Q", title="training examples", scale=alt.Scale(type="log" if log_x else "linear",
                                                                       zero=False))
    color = alt.Color("threshold:O", title="threshold", scale=alt.Scale(scheme="viridis"))
    base = alt.Chart().transform_filter("isValid(datum.step)")
    chart = alt.layer(
        base.mark_line(strokeWidth=1.6).encode(x=x, y=alt.Y("mean(step):Q", title="first step reaching it"),
                                               color=color),
        base.mark_point(filled=True, size=30).encode(
            x=x, y="step:Q", color=color, **shape,
            tooltip=["n_train:Q", "threshold:O", "step:Q", *(["stability:N"] if shape else [])]),
        data=tidy_table([df]),
    )
    return _by_model_size(chart, df, width, height, title)


def _cds_rows(cds: Any) -> pd.DataFrame:
    """``model_size, cds`` rows from a number, a mapping model_size → CDS, or a table with those columns."""
    if cds is None:
        return pd.DataFrame(columns=["cds"])
    if isinstance(cds, pd.DataFrame):
        return require_columns(cds, ["cds"], "the CDS table")[[c for c in ("model_size", "cds") if c in cds]]
    if isinstance(cds, Mapping):
        return pd.DataFrame({"model_size": list(cds), "cds": [float(v) for v in cds.values()]})
    return pd.DataFrame({"cds": [float(cds)]})


def generalization_steps_chart(df: pd.DataFrame, cds: Any = None, *, log_y: bool = False, width: int = WIDTH,
                               height: int = HEIGHT, title: str | None = "steps to generalize") -> alt.Chart:
    """Steps to generalize vs training-set size, the critical data size marked by a vertical rule.

    ``df`` columns: ``n_train, step`` (NaN: never generalized, drawn as × along the top) and optionally
    ``model_size`` (one facet each) and ``stable`` (runs that did not stay generalized: triangles).
    ``cds``: a number, a mapping model_size → CDS, or a table with ``cds`` (and ``model_size``).  The
    line joins the mean over seeds.

    Examples
    --------
    >>> df = pd.DataFrame({"n_train": [1000, 1500, 2000, 3000], "step": [np.nan, np.nan, 3500.0, 600.0]})
    >>> chart = generalization_steps_chart(df, cds=2000)
    """
    df = require_columns(df, ["n_train", "step"], "generalization_steps_chart")
    df = _stability(df[[c for c in ("model_size", "n_train", "step", "stable") if c in df]]).assign(kind="run")
    shape = _point_encoding(df[df["step"].notna()])
    marks = _cds_rows(cds).assign(kind="cds")
    marks = marks[np.isfinite(marks["cds"].astype(float))]
    if "model_size" in marks and "model_size" not in df:
        raise GrokscopeError("the CDS is given per model_size but the table has no model_size column")
    marks["label"] = [f"CDS {v:g}" for v in marks["cds"]]
    x = alt.X("n_train:Q", title="training examples", scale=alt.Scale(zero=False))
    base = alt.Chart()
    runs = base.transform_filter("datum.kind == 'run' && isValid(datum.step)")
    never = base.transform_filter("datum.kind == 'run' && !isValid(datum.step)")
    rule = base.transform_filter("datum.kind == 'cds'")
    layers = []  # only layers with data: an empty one makes Vega warn
    if df["step"].notna().any():
        layers += [
            runs.mark_line(color="#4c78a8").encode(
                x=x, y=alt.Y("mean(step):Q", title="generalization step",
                             scale=alt.Scale(type="log" if log_y else "linear"))),
            runs.mark_point(filled=True, color="#4c78a8").encode(
                x=x, y="step:Q", **shape, tooltip=["n_train:Q", "step:Q", *(["stability:N"] if shape else [])])]
    if df["step"].isna().any():
        layers.append(never.mark_point(shape="cross", color="#e45756", size=60, filled=True).encode(
            x=x, y=alt.value(6), tooltip=["n_train:Q", alt.Tooltip("kind:N", title="never generalized")]))
    if len(marks):
        layers += [rule.mark_rule(color="#f58518", strokeWidth=2).encode(x="cds:Q", tooltip=["cds:Q"]),
                   rule.mark_text(align="left", dx=4, dy=-4, color="#f58518").encode(
                       x="cds:Q", y=alt.value(20), text="label:N")]
    if not layers:
        raise GrokscopeError("generalization_steps_chart: the table has no rows")
    return _by_model_size(alt.layer(*layers, data=tidy_table([df, marks])), df, width,
                          height, title)


def _power_law(fit: Any) -> tuple[float, float, tuple[float, float] | None]:
    """``(c, exponent, exponent CI or None)`` from ``{c, exponent, exponent_ci}`` or a
    :class:`grokscope.analysis.runners.cds.PowerLawFit` (``coefficient, exponent, exponent_lo, exponent_hi``)."""
    if isinstance(fit, Mapping):
        c, e, ci = fit["c"], fit["exponent"], fit.get("exponent_ci")
    else:
        c, e, ci = fit.coefficient, fit.exponent, (fit.exponent_lo, fit.exponent_hi)
    ci = None if ci is None or not np.all(np.isfinite(np.asarray(ci, dtype=float))) else tuple(map(float, ci))
    return float(c), float(e), ci


def cds_scaling_chart(df: pd.DataFrame, fit: Any = None, *, width: int = WIDTH,
                      height: int = HEIGHT, title: str | None = None) -> alt.LayerChart:
    """Critical data size vs model size on log-log axes, with error bars and the power-law fit.

    ``df`` columns: ``model_size, cds, cds_lo, cds_hi`` (rows with NaN ``cds`` are left out; a NaN interval
    end draws no bar).  ``fit``: ``{c, exponent, exponent_ci: [lo, hi]}`` or a
    :class:`grokscope.analysis.runners.cds.PowerLawFit` draws ``CDS = c·N^exponent`` and, shaded, the lines of the CI's
    exponents through the fit at the geometric mean of the model sizes (where a least-squares fit on
    log-log axes pivots).

    Examples
    --------
    >>> df = pd.DataFrame({"model_size": [1e4, 1e5, 1e6], "cds": [1e3, 3e3, 1e4],
    ...                    "cds_lo": [8e2, 2.5e3, 9e3], "cds_hi": [1.2e3, 3.5e3, 1.1e4]})
    >>> chart = cds_scaling_chart(df, {"c": 10.0, "exponent": 0.5, "exponent_ci": [0.45, 0.55]})
    """
    df = require_columns(df, ["model_size", "cds", "cds_lo", "cds_hi"], "cds_scaling_chart")
    df = df[["model_size", "cds", "cds_lo", "cds_hi"]].astype(float)
    df = df[np.isfinite(df["cds"]) & (df["model_size"] > 0) & (df["cds"] > 0)].assign(kind="cds")
    if df.empty:
        raise GrokscopeError("cds_scaling_chart: no model size with a positive CDS to draw")
    parts = [df]
    if fit is not None:
        c, e, ci = _power_law(fit)
        n = np.geomspace(df["model_size"].min(), df["model_size"].max(), FIT_POINTS)  # (FIT_POINTS,)
        pivot = float(np.exp(np.log(df["model_size"]).mean()))
        fit_row = {"kind": "fit", "model_size": n, "cds": c * n**e}
        if ci is not None:
            slopes = np.asarray(ci, dtype=float)[None, :]  # (1, 2)
            lines = c * pivot**e * (n[:, None] / pivot) ** slopes  # (FIT_POINTS, 2)
            fit_row.update(cds_lo=lines.min(axis=1), cds_hi=lines.max(axis=1))
        parts.append(pd.DataFrame(fit_row))
        ci_text = f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci is not None else ""
        title = title or f"CDS = {c:.3g}·N^{e:.3g}{ci_text}"
    table = tidy_table(parts)
    log = alt.Scale(type="log")
    x = alt.X("model_size:Q", title="model size N (parameters)", scale=log)
    y = alt.Y("cds:Q", title="critical data size", scale=log)
    base = alt.Chart()
    points = base.transform_filter("datum.kind == 'cds'")
    fitted = base.transform_filter("datum.kind == 'fit'")
    layers = []  # only layers with data: an empty one makes Vega warn
    if fit is not None:
        if "cds_lo" in parts[-1]:
            layers.append(fitted.mark_area(opacity=0.15, color="#f58518").encode(
                x=x, y=alt.Y("cds_lo:Q", scale=log), y2="cds_hi:Q"))
        layers.append(fitted.mark_line(color="#f58518", strokeWidth=2).encode(x=x, y=y))
    layers += [
        points.mark_rule(color="#4c78a8").encode(x=x, y=alt.Y("cds_lo:Q", scale=log), y2="cds_hi:Q"),
        points.mark_point(filled=True, size=50, color="#4c78a8").encode(
            x=x, y=y, tooltip=["model_size:Q", "cds:Q", "cds_lo:Q", "cds_hi:Q"]),
    ]
    return sized(alt.layer(*layers, data=table), width, height, title or "critical data size vs model size")


def landscape_chart(df: pd.DataFrame, epsilon: float = 0.95, *, width: int = WIDTH, height: int = HEIGHT,
                    title: str | None = None) -> alt.LayerChart:
    """Accuracy over model size × data size; cells with mean accuracy ≥ ε outlined, the ε boundary drawn.

    ``df`` columns: ``model_size, n_train, accuracy`` (several seeds per cell are averaged: Definition 1's
    expectation).  The boundary joins, for each model size, the smallest ``n_train`` whose mean accuracy
    is ≥ ε (the CDS of that model in the sense of Definition 1).

    Examples
    --------
    >>> df = pd.DataFrame({"model_size": [16, 16, 32, 32], "n_train": [1000, 2000, 1000, 2000],
    ...                    "accuracy": [0.3, 0.97, 0.96, 0.99]})
    >>> chart = landscape_chart(df, 0.95)
    """
    df = require_columns(df, ["model_size", "n_train", "accuracy"], "landscape_chart")
    if not 0 < epsilon <= 1:
        raise GrokscopeError(f"epsilon must be in (0, 1], got {epsilon}")
    cells = df.groupby(["model_size", "n_train"], as_index=False)["accuracy"].mean()
    cells["kind"] = "cell"
    cells["reached"] = cells["accuracy"] >= epsilon
    boundary = cells[cells["reached"]].groupby("model_size", as_index=False)["n_train"].min()
    boundary["kind"] = "cds"
    x_order = sorted(cells["n_train"].unique())
    y_order = sorted(cells["model_size"].unique(), reverse=True)
    x = alt.X("n_train:O", title="training examples", sort=x_order,
              axis=alt.Axis(labelAngle=0, labelOverlap=True))
    y = alt.Y("model_size:O", title="model size", sort=y_order)
    base = alt.Chart()
    cell = base.transform_filter("datum.kind == 'cell'")
    color = alt.Color("accuracy:Q", scale=alt.Scale(scheme="viridis", domain=[0, 1]))
    tooltip = ["model_size:O", "n_train:O", alt.Tooltip("accuracy:Q", format=".3f")]
    layers = [cell.mark_rect().encode(x=x, y=y, color=color, tooltip=tooltip)]
    if len(boundary):  # some cell reached ε (an empty layer makes Vega warn)
        layers += [
            cell.transform_filter("datum.reached").mark_rect(fillOpacity=0, stroke="white", strokeWidth=1.5)
            .encode(x=x, y=y),
            base.transform_filter("datum.kind == 'cds'").mark_line(color="#e45756", strokeWidth=2,
                                                                   point=alt.OverlayMarkDef(color="#e45756"))
            .encode(x=x, y=y, order="model_size:Q",
                    tooltip=["model_size:O", alt.Tooltip("n_train:O", title="CDS")]),
        ]
    table = tidy_table([cells, boundary])
    title = title or f"test accuracy (outlined: ≥ ε = {epsilon:g})"
    return sized(alt.layer(*layers, data=table), width, height, title)
