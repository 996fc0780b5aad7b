"""Report charts for sweeps (seed 002): step-wise analysis, steps to generalize with the CDS, CDS vs model
size with its power-law fit, and the accuracy landscape.  Each builder returns ``None`` unless the runs
form a CDS study (several data sizes of one task), so single-run reports simply skip them.  The step-wise
and steps-to-generalize charts mark runs that did not stay generalized (the rows' ``stable``)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grokscope.analysis.measures.onset import Criteria
from grokscope.analysis.runners.cds import CDSAnalysis, PowerLawFit
from grokscope.charts import cds_scaling_chart, generalization_steps_chart, landscape_chart, stepwise_chart
from grokscope.errors import GrokscopeError


def _analysis(inp: Any) -> CDSAnalysis | None:
    """The CDS analysis of the report's runs, or None if they are no study (computed once per report)."""
    return _fit(tuple(str(run.path) for run in inp.runs), inp.criteria)


@functools.lru_cache(maxsize=4)
def _fit(paths: tuple[str, ...], criteria: Criteria) -> CDSAnalysis | None:
    if len(paths) < 2:
        return None
    try:
        est = CDSAnalysis(criteria=criteria, n_bootstrap=200).fit(list(paths))
    except GrokscopeError:  # not one task, no data sizes …: no sweep charts
        return None
    return est if est.runs_[est.size_axis_].nunique() >= 2 else None


def _sized(df, est: CDSAnalysis):
    """The chart functions read the data-size column as ``n_train`` (it may be ``frac``)."""
    return df.rename(columns={est.size_axis_: "n_train"})


def _with_stable(inp: Any, est: CDSAnalysis) -> pd.DataFrame:
    """The analysis' per-run table with each run's ``stable`` from the report's summary rows."""
    stable = {Path(row["path"]).resolve(): row.get("stable") for row in inp.rows}
    return est.runs_.assign(stable=[stable.get(Path(run).resolve()) for run in est.runs_["run"]])


def stepwise_builder(inp: Any) -> Any | None:
    est = _analysis(inp)
    if est is None:
        return None
    keys = ["model", est.size_axis_, "seed"]  # one run each (tabulate_runs refuses duplicates)
    table = est.stepwise_.merge(_with_stable(inp, est)[[*keys, "stable"]], on=keys, how="left")
    return stepwise_chart(_sized(table, est), log_x=inp.log_x)


def generalization_builder(inp: Any) -> Any | None:
    est = _analysis(inp)
    if est is None:
        return None
    steps = _sized(_with_stable(inp, est), est).rename(columns={"generalization_step": "step"})
    return generalization_steps_chart(steps[["n_train", "step", "model_size", "stable"]],
                                      cds=est.cds_[["model_size", "cds"]])


def cds_builder(inp: Any) -> Any | None:
    est = _analysis(inp)
    if est is None or est.cds_["model_size"].nunique() < 2 or not (est.cds_["cds"] > 0).any():
        return None
    fits = est.scaling_fit_[est.scaling_fit_["x"].isin([est.model_size_axis_, "model_size"])]
    fit = None
    if len(fits) and np.isfinite(fits.iloc[0]["exponent"]):
        fit = PowerLawFit(*(fits.iloc[0][field] for field in PowerLawFit._fields))
    return cds_scaling_chart(est.cds_[["model_size", "cds", "cds_lo", "cds_hi"]], fit)


def landscape_builder(inp: Any) -> Any | None:
    est = _analysis(inp)
    if est is None or est.landscape_["model_size"].nunique() < 2:
        return None
    return landscape_chart(_sized(est.landscape_, est)[["model_size", "n_train", "accuracy"]], est.epsilon)


SWEEP_CHARTS = {"stepwise": stepwise_builder, "generalization": generalization_builder, "cds": cds_builder,
                "landscape": landscape_builder}
