"""The forecast of one run (``grokscope forecast``, docs/forecast.md) drawn over what the run then did.

Top: the observed curve (test accuracy, or test loss for runs that log only losses) over the whole run, the
decision point, the predicted generalization step with its 80 % interval as made there, and the first step at
which the advice turned to stop.  Bottom: P(generalizes within the budget) at each forecast point, against the
model's stop threshold.  Inputs are arrays and forecast rows (dicts as
:func:`grokscope.analysis.runners.forecast.forecast_store` returns them), never stores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from grokscope.charts.base import HEIGHT, WIDTH, round_sig, sized, step_x, tidy_table
from grokscope.charts.thinning import MAX_POINTS, decimate
from grokscope.errors import GrokscopeError

__all__ = ["forecast_chart", "stop_step"]

PANEL = 110  # height of the P(generalize) panel in pixels


def stop_step(forecasts: Sequence[Mapping[str, Any]]) -> int | None:
    """The first forecast point (``at``) whose advice is stop; None if the advice never turned."""
    stops = [int(f["at"]) for f in forecasts if f.get("advice") == "stop"]
    return min(stops) if stops else None


def forecast_chart(
    steps: np.ndarray, values: np.ndarray, forecasts: Sequence[Mapping[str, Any]], *, decision: int,
    metric: str = "test_acc", width: int = WIDTH, height: int = HEIGHT, title: str | None = None,
) -> alt.VConcatChart:
    """The observed ``values`` vs ``steps`` with the forecast made at step ``decision`` and the advice over time.

    Parameters
    ----------
    steps, values : array_like, shape (n,)
        The run's whole curve of ``metric`` (NaN where not evaluated); thinned to ``MAX_POINTS`` real points.
    forecasts : forecast rows at increasing ``at``: ``at``, ``p_generalize``, ``stop_threshold``, ``advice``,
        ``predicted_generalization_step``, ``interval_80``; abstaining rows (``p_generalize`` None) are skipped.
    decision : the forecast point whose prediction is drawn (the model's decision point); it must be one of
        the rows' ``at``.

    Examples
    --------
    >>> rows = [{"at": 100, "p_generalize": 0.9, "stop_threshold": 0.1, "advice": "continue",
    ...          "predicted_generalization_step": 800, "interval_80": [500, 1200]}]
    >>> chart = forecast_chart(np.arange(2000), np.linspace(0, 1, 2000), rows, decision=100)
    """
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if steps.ndim != 1 or values.shape != steps.shape or steps.size == 0:
        raise GrokscopeError(f"forecast_chart needs steps and values of one equal length, got {steps.shape} "
                             f"and {values.shape}")
    made = [f for f in forecasts if f.get("p_generalize") is not None]
    chosen = [f for f in made if int(f["at"]) == decision]
    if not chosen:
        raise GrokscopeError(f"forecast_chart: no forecast was made at the decision step {decision}")
    at = chosen[0]
    s, v = decimate(steps, values, MAX_POINTS)
    curve = pd.DataFrame({"kind": "curve", "step": s, "value": round_sig(v)})
    lo, hi = at["interval_80"]
    rules = [("decision", decision, f"forecast made at step {decision}: P = {at['p_generalize']:.2f}"),
             ("predicted", at["predicted_generalization_step"],
              f"predicted generalization: step {at['predicted_generalization_step']} (80 %: {lo}–{hi})")]
    stopped = stop_step(made)
    if stopped is not None:
        rules.append(("stop", stopped, f"advice turned to stop at step {stopped}"))
    marks = pd.DataFrame([{"kind": kind, "step": step, "label": label} for kind, step, label in rules])
    band = pd.DataFrame([{"kind": "band", "lo": lo, "hi": min(hi, steps[-1])}])
    top = tidy_table([curve, marks, band])

    base = alt.Chart()
    y = alt.Y("value:Q", title=metric, scale=alt.Scale(zero=metric.endswith("acc")))
    kinds = [kind for kind, _, _ in rules]
    color = alt.Color("label:N", title=None, legend=alt.Legend(orient="top", labelLimit=500, columns=1),
                      scale=alt.Scale(domain=[label for _, _, label in rules],
                                      range=[{"decision": "#888", "predicted": "#f58518", "stop": "#e45756"}[k]
                                             for k in kinds]))
    layers = [
        base.transform_filter("datum.kind == 'band'").mark_rect(opacity=0.15, color="#f58518")
        .encode(x=step_x(False, "lo"), x2="hi:Q"),
        base.transform_filter("datum.kind == 'curve'").mark_line(strokeWidth=1.6, color="#4c78a8")
        .encode(x=step_x(False), y=y, tooltip=["step:Q", alt.Tooltip("value:Q", format=".4g")]),
        base.transform_filter("datum.kind != 'curve' && datum.kind != 'band'").mark_rule(strokeDash=[5, 3])
        .encode(x="step:Q", color=color, tooltip=["label:N"]),
    ]
    upper = sized(alt.layer(*layers, data=top), width, height, title)

    trend = pd.DataFrame({"at": [int(f["at"]) for f in made], "p": round_sig([f["p_generalize"] for f in made]),
                          "advice": [f["advice"] for f in made],
                          "threshold": round_sig([f["stop_threshold"] for f in made])})
    p_axis = alt.Y("p:Q", title="P(generalize)", scale=alt.Scale(domain=[0, 1]))
    x = alt.X("at:Q", title="forecast made at step", scale=alt.Scale(domain=[float(steps[0]), float(steps[-1])]))
    lower = alt.layer(
        alt.Chart(trend).mark_line(point=True, color="#54a24b").encode(x=x, y=p_axis,
                                                                       tooltip=["at:Q", "p:Q", "advice:N"]),
        alt.Chart(trend).mark_line(strokeDash=[2, 2], color="#e45756").encode(x=x, y="threshold:Q"),
    ).properties(width=width, height=PANEL, title=alt.TitleParams(
        "P(generalize within the budget) at each forecast point; dotted: the stop threshold", fontSize=11))
    return alt.vconcat(upper, lower)
