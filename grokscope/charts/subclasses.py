"""Seed 001's distribution shift as a chart: test accuracy of the down-sampled subclasses vs the others.

One line per run and subset over steps, the training accuracy for reference; runs without subclasses (every
task but the class hierarchies) give no chart.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

from grokscope.analysis.runners.subclasses import subclass_curves
from grokscope.charts.base import HEIGHT, WIDTH, round_sig, sized, step_x, tidy_table
from grokscope.charts.thinning import downsample_frame, points_per_curve
from grokscope.store.reader import RunStore

SUBSETS = {"train (all)": "#4c78a8", "test: other subclasses": "#54a24b", "test: down-sampled": "#e45756"}


def subclass_frame(runs: Sequence[RunStore], labels: Sequence[str], *, log_x: bool = False) -> pd.DataFrame:
    """Tidy ``run, subset, step, value`` rows of every run with subclasses (empty if none has them)."""
    parts = []
    for run, label in zip(runs, labels):
        curves = subclass_curves(run)
        if curves is None:
            continue
        steps = curves["step"]
        series = {"train (all)": run.read("train_acc"), "test: other subclasses": curves["rest"],
                  "test: down-sampled": curves["downsampled"]}
        for subset, values in series.items():
            parts.append(pd.DataFrame({"run": label, "subset": subset, "step": steps, "value": values}))
    if not parts:
        return pd.DataFrame(columns=["run", "subset", "step", "value"])
    df = pd.concat(parts, ignore_index=True)
    if log_x:
        df = df[df["step"] > 0]
    n_curves = df.groupby(["run", "subset"]).ngroups  # up to 8 runs × 3 subsets share altair's row limit
    df = downsample_frame(df, ["run", "subset"], points_per_curve(n_curves), log=log_x)
    df["value"] = round_sig(df["value"])
    return tidy_table([df[["run", "subset", "step", "value"]]])


def subclass_chart(df: pd.DataFrame, *, log_x: bool = False, width: int = WIDTH,
                   height: int = HEIGHT) -> alt.Chart:
    """Accuracy vs step, colour = subset, dash = run (up to a handful of runs read well)."""
    chart = alt.Chart(df).mark_line(strokeWidth=1.6).encode(
        x=step_x(log_x),
        y=alt.Y("value:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("subset:N", title=None, scale=alt.Scale(domain=list(SUBSETS), range=list(SUBSETS.values()))),
        strokeDash=alt.StrokeDash("run:N", title="run"),
        tooltip=["run:N", "subset:N", "step:Q", alt.Tooltip("value:Q", format=".3f")],
    )
    return sized(chart, width, height, "test accuracy: down-sampled subclasses vs the rest (seed 001)")
