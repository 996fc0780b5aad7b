"""What a report draws: the runs it reads and one builder per chart (:data:`CHARTS`).

Adding a chart is one line: ``CHARTS["name"] = builder``, a function of :class:`ReportInput` returning an
altair chart, or ``None`` when it does not apply to the runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import altair as alt
import numpy as np

from grokscope.analysis.measures.fourier import embedding_spectrum, key_frequencies_top_norm
from grokscope.analysis.measures.intervals import grokking_intervals
from grokscope.analysis.measures.onset import Criteria
from grokscope.analysis.measures.stability import StabilityRule
from grokscope.analysis.runners.dynamics import decay_fit
from grokscope.analysis.runners.summary import analyze
from grokscope.charts import (
    ACCURACY,
    LOSS,
    NORM,
    accuracy_chart,
    curves_frame,
    key_frequency_chart,
    l2_chart,
    loss_chart,
    norm_chart,
    spectrum_chart,
)
from grokscope.charts.runs import run_labels
from grokscope.charts.subclasses import subclass_chart, subclass_frame
from grokscope.errors import GrokscopeError
from grokscope.report.forecast import forecast_builder
from grokscope.report.sweeps import SWEEP_CHARTS
from grokscope.store.reader import RunStore

OVERLAY_MAX = 8  # up to this many runs are overlaid; more are grouped by a hyperparameter
MAX_SPECTRA = 4  # Fourier spectra drawn in a report (the first modular runs), to keep the page small
GROUP_KEYS = ("n_train", "frac", "d_model", "n_layers", "weight_decay", "alpha", "lr", "p", "op", "model",
              "input_format", "task")  # candidate hyperparameters to group a sweep by, in this order

@dataclass(frozen=True)
class ReportInput:
    """What chart builders get: the opened runs, their summary rows, and the report's options."""

    runs: tuple[RunStore, ...]
    rows: tuple[dict[str, Any], ...]  # from analyze(), one per run, same order
    log_x: bool = False
    criteria: Criteria = Criteria()
    stability: StabilityRule = StabilityRule()
    skipped: tuple[dict[str, Any], ...] = ()  # error rows of analyze(): runs that could not be summarized

    @property
    def group_by(self) -> str | None:
        """The hyperparameter runs are grouped by (more than OVERLAY_MAX runs), or None (overlay)."""
        if len(self.runs) <= OVERLAY_MAX:
            return None
        for key in GROUP_KEYS:
            if len({repr(row.get(key)) for row in self.rows}) > 1:
                return key
        return "all runs"  # nothing varies but the seed: one group


def load_runs(paths: Iterable[str | os.PathLike], *, log_x: bool = False, criteria: Criteria = Criteria(),
              stability: StabilityRule = StabilityRule()) -> ReportInput:
    """Find the run stores under ``paths`` and summarize them (StoreError if there are none)."""
    rows = analyze(paths, criteria, stability_rule=stability)
    good = [row for row in rows if "error" not in row]
    if not good:  # several runs, none usable: say why for the first
        raise GrokscopeError(f"no run could be summarized: {rows[0]['run']}: {rows[0]['error']}")
    return ReportInput(tuple(RunStore(row["path"]) for row in good), tuple(good), log_x, criteria, stability,
                       skipped=tuple(row for row in rows if "error" in row))


# --- chart builders -------------------------------------------------------------------------------------


def _curves(inp: ReportInput, metrics: dict[str, str], chart: Callable[..., Any]) -> Any | None:
    if not any(run.has(name) for run in inp.runs for name in metrics.values()):
        return None
    df = curves_frame(list(inp.runs), metrics, log_x=inp.log_x)
    if not df["value"].notna().any():  # arrays that exist but hold no values (an import that logged none)
        return None
    group_by = inp.group_by
    if group_by == "all runs":
        df[group_by] = "all runs"
    intervals = None
    if len(inp.runs) == 1 and metrics is ACCURACY:
        intervals = _intervals(inp.runs[0])
    marks = [{**row, "run": label} for row, label in zip(inp.rows, run_labels(inp.runs))]
    return chart(df, log_x=inp.log_x, group_by=group_by, marks=None if group_by else marks,
                 intervals=intervals)


def _intervals(run: RunStore) -> dict[str, Any] | None:
    """Seed-001 intervals on test vs train accuracy, when a transition was found."""
    if not (run.has("train_acc") and run.has("test_acc")) or run.n_steps < 2:
        return None
    try:
        found = grokking_intervals(run.read("step"), run.read("train_acc"), run.read("test_acc")).to_dict()
    except ValueError:  # no finite values
        return None
    return found if found["alpha0"] is not None and found["alpha1"] is not None else None


def accuracy_builder(inp: ReportInput) -> Any | None:
    return _curves(inp, ACCURACY, accuracy_chart)


def loss_builder(inp: ReportInput) -> Any | None:
    return _curves(inp, LOSS, loss_chart)


def l2_builder(inp: ReportInput) -> Any | None:
    """One run: the L2 norm with the decay fit over [memorization, generalization or last step]."""
    if len(inp.runs) > 1:
        return _curves(inp, NORM, norm_chart)
    run, row = inp.runs[0], inp.rows[0]
    if not run.has("l2_norm"):
        return None
    steps, l2 = run.read("step"), run.read("l2_norm")
    if not np.isfinite(l2).any():
        return None
    fit = decay_fit(steps, l2, row["memorization_step"], row["generalization_step"])  # as `dynamics` fits
    return l2_chart(steps, l2, fit, marks=row, log_x=inp.log_x)


FORGETTING = {"test": "test_acc", "previous task (p1)": "p1_test_acc"}  # distilled joint / continual runs


def forgetting_builder(inp: ReportInput) -> Any | None:
    """Distillation (seed 000): test accuracy on the previous task (p1) next to the student's own task —
    forgetting in continual runs, the first task's accuracy in joint ones."""
    if not any(run.has("p1_test_acc") for run in inp.runs):
        return None
    return _curves(inp, FORGETTING, accuracy_chart)


def subclass_builder(inp: ReportInput) -> Any | None:
    """Runs with subclasses (seed 001): the down-sampled subclasses' test accuracy vs the others'."""
    runs = [run for run in inp.runs if run.has("test_acc_subclass")][:OVERLAY_MAX]
    if not runs:
        return None
    df = subclass_frame(runs, run_labels(runs), log_x=inp.log_x)
    return subclass_chart(df, log_x=inp.log_x) if len(df) else None


def _embedding(run: RunStore) -> tuple[str, str, int] | None:
    """(parameter, orientation, p) of a modular run's embedding with checkpoints, else None."""
    roles = run.attrs.get("model", {}).get("param_roles", {})
    name, p = roles.get("embedding"), run.config.get("p")
    if run.config.get("task", "modular") != "modular" or p is None or run.n_ckpts == 0:
        return None
    if name not in run.param_names():
        return None
    return name, roles.get("embedding_orientation", "auto"), int(p)


def spectrum_builder(inp: ReportInput) -> Any | None:
    """For each modular run (at most MAX_SPECTRA): the embedding spectrum over checkpoints and at the end."""
    charts = []
    for run in inp.runs:
        found = _embedding(run)
        if found is None:
            continue
        name, orientation, p = found
        steps = run.checkpoint_steps()  # (n_ckpt,)
        if inp.log_x and not (steps > 0).any():
            continue
        try:
            spectrum = embedding_spectrum(run.read_param(name), p, orientation)  # (n_ckpt, p // 2 + 1)
        except ValueError:  # an embedding that does not fit p or its stated orientation: no spectrum
            continue
        label = f"{run.name}: " if len(inp.runs) > 1 else ""
        charts.append(spectrum_chart(steps, spectrum, log_x=inp.log_x,
                                     title=f"{label}embedding Fourier spectrum over checkpoints"))
        charts.append(key_frequency_chart(
            np.arange(1, spectrum.shape[1]), spectrum[-1, 1:], key=key_frequencies_top_norm(spectrum[-1]),
            title=f"{label}embedding norm per frequency at step {int(steps[-1])}"))
        if len(charts) == 2 * MAX_SPECTRA:
            break
    return alt.vconcat(*charts) if charts else None


Builder = Callable[[ReportInput], Any]
# name → builder, in report order; a builder returns None where the chart does not apply to the runs
CHARTS: dict[str, Builder] = {
    "accuracy": accuracy_builder,
    "loss": loss_builder,
    "l2": l2_builder,
    "subclasses": subclass_builder,
    "forgetting": forgetting_builder,
    "spectrum": spectrum_builder,
    "forecast": forecast_builder,
    **SWEEP_CHARTS,  # stepwise, generalization, cds, landscape: a sweep over data (and model) sizes
}


