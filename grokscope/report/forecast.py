"""The report's forecast chart (docs/forecast.md): for each of a few runs of a page that overlays its runs,
the packaged forecast model asked at several points of the run (:data:`CUTS` of its budget, and the model's
own decision point), drawn over what the run then did (:func:`grokscope.charts.forecast.forecast_chart`).  Runs
the model abstains on at its decision point (no accuracy or loss logged by then, too few evaluations) get no
chart."""

from __future__ import annotations

from typing import Any

import altair as alt

from grokscope.analysis.runners.forecast import forecast_cuts, load_model
from grokscope.charts.forecast import forecast_chart
from grokscope.charts.runs import run_labels
from grokscope.errors import GrokscopeError

MAX_RUNS = 6  # runs with a forecast chart per report (each is forecast len(CUTS) + 1 times)
CUTS = tuple(round(0.05 * i, 2) for i in range(1, 11))  # 5 %, 10 %, …, 50 % of each run's budget


def forecast_builder(inp: Any) -> Any | None:
    """A forecast chart per run (the first :data:`MAX_RUNS` the model can forecast), or None; None for a page
    whose runs are grouped (a sweep: forecast its runs with ``grokscope forecast``)."""
    if inp.group_by is not None:
        return None
    model = load_model()
    charts = []
    for run, label in zip(inp.runs, run_labels(inp.runs)):
        metric = "test_acc" if run.has("test_acc") else "test_loss" if run.has("test_loss") else None
        if metric is None:
            continue
        try:
            rows = forecast_cuts(run, sorted({*CUTS, model.at_frac}), model=model)  # up to its last step
        except GrokscopeError:  # no committed steps
            continue
        decision = next((r for r in rows if r["at_frac"] == round(model.at_frac * r["budget"]) / r["budget"]),
                        None)
        if decision is None or decision["p_generalize"] is None:
            continue
        title = f"{label}: forecast from {model.at_frac:.0%} of {decision['budget']} steps"
        charts.append(forecast_chart(run.read("step"), run.read(metric), rows, decision=decision["at"],
                                     metric=metric, title=title))
        if len(charts) == MAX_RUNS:
            break
    return alt.vconcat(*charts) if charts else None
