"""The one-page report of a run, a set of runs or a sweep, and chart export (.png, .svg, .html, .json).

The page is self-contained: the Vega, Vega-Lite and Vega-Embed JavaScript (vl-convert's bundle, ~0.9 MB)
is inlined once, every chart's spec and data are inlined, and nothing is fetched, so it opens offline.
It holds the summary table (:func:`grokscope.analysis.runners.summary.analyze`) and then the charts of
:data:`~grokscope.report.builders.CHARTS` that apply, in order.  Layout of the run curves: one run is drawn alone
with its memorization and generalization
steps and the seed-001 intervals shaded; up to ``OVERLAY_MAX`` runs are overlaid; more are grouped by the
first hyperparameter of ``GROUP_KEYS`` that varies (mean line, min/max band over the rest, e.g. seeds).

Adding a chart is one line: ``CHARTS["name"] = builder``, a function of :class:`ReportInput` returning an
altair chart, or ``None`` when it does not apply to the runs.
"""
from __future__ import annotations

import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grokscope import __version__
from grokscope.analysis.measures.onset import Criteria
from grokscope.analysis.measures.stability import StabilityRule
from grokscope.analysis.runners.summary import CONFIG_KEYS
from grokscope.errors import GrokscopeError
from grokscope.report.builders import CHARTS, ReportInput, load_runs
from grokscope.report.export import chart_spec, check_suffix, html_page, render, write_file

TABLE_METRICS = ("memorization_step", "generalization_step", "grokking_delay", "final_train_acc",
                 "final_test_acc", "l2_at_memorization", "l2_at_generalization", "sustained_generalization_step",
                 "stable", "dips_after_generalization", "min_test_acc_after_generalization", "collapse_step",
                 "loss_spikes", "status")  # the stability columns: grokscope.analysis.measures.stability
# --- the page -------------------------------------------------------------------------------------------

def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    return f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))


def summary_table(rows: Sequence[dict[str, Any]]) -> str:
    """The summary rows as an HTML table: run, the config keys that vary (n_train always), the metrics."""
    varying = [k for k in CONFIG_KEYS if len({repr(r.get(k)) for r in rows}) > 1 or
               (k == "n_train" and any(k in r for r in rows))]
    columns = ["run", *varying, *TABLE_METRICS]
    head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in columns)
    body = "\n".join("<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def report_html(inp: ReportInput, title: str = "grokscope report") -> tuple[str, list[str]]:
    """The report page of ``inp`` and the names of the charts it holds."""
    names, specs = [], []
    for name, builder in CHARTS.items():
        chart = builder(inp)
        if chart is not None:
            names.append(name)
            specs.append(chart_spec(chart))
    shared = {k: inp.rows[0][k] for k in CONFIG_KEYS  # None: a field the runs' task does not have
              if inp.rows[0].get(k) is not None and len({repr(r.get(k)) for r in inp.rows}) == 1}
    config = ", ".join(f"{k} = {v}" for k, v in shared.items())
    grouping = f" Curves grouped by {inp.group_by} (mean, min/max band)." if inp.group_by else ""
    c = inp.criteria
    memorized = (f"train loss ≤ {c.train_loss_below:g}" if c.train_loss_below is not None
                 else f"train accuracy ≥ {c.train_acc:g}")
    generalized = (f"test loss ≤ {c.test_loss_below:g}" if c.test_loss_below is not None
                   else f"test accuracy ≥ {c.test_acc:g}")
    r = inp.stability
    sustained = (f"every evaluation within {r.sustain_steps:g} steps" if r.sustain_steps is not None
                 else f"{r.sustain_evals} evaluations in a row")
    collapsed = (f"train loss above {r.collapse_loss(c.train_loss_below):g}"
                 if c.train_loss_below is not None else f"train accuracy below {r.collapse_train_acc:g}")
    body = (f"<h1>{html.escape(title)}</h1>\n"
            f"<p class=\"meta\">{len(inp.runs)} run{'s' * (len(inp.runs) != 1)}; grokscope {__version__}; "
            f"memorized: {memorized}, generalized: {generalized}; sustained: {sustained} generalized; "
            f"dips: evaluations after generalizing that fail it; collapsed: {collapsed} after memorizing."
            f"{grouping}</p>\n"
            + (f"<p class=\"meta\">shared config: {html.escape(config)}</p>\n" if config else "")
            + "".join(f"<p class=\"meta\">not shown: {html.escape(row['run'])}: {html.escape(row['error'])}</p>\n"
                      for row in inp.skipped)
            + "<h2>summary</h2>\n" + summary_table(inp.rows))
    return html_page(title, body, specs, names), names


def build_chart(name: str, inp: ReportInput) -> Any:
    """The named chart of :data:`CHARTS` for ``inp``; GrokscopeError if unknown or not applicable."""
    if name not in CHARTS:
        raise GrokscopeError(f"unknown chart {name!r}; choose from {', '.join(CHARTS)}")
    chart = CHARTS[name](inp)
    if chart is None:
        raise GrokscopeError(f"the {name} chart does not apply to these runs "
                             f"({', '.join(r.name for r in inp.runs[:3])}{' …' * (len(inp.runs) > 3)})")
    return chart


def export_chart(paths: Iterable[str | os.PathLike], name: str, out: str | os.PathLike, *,
                 log_x: bool = False, criteria: Criteria = Criteria(), stability: StabilityRule = StabilityRule(),
                 scale: float = 1.0) -> Path:
    """Write one chart of the runs under ``paths`` to ``out`` (.png, .svg, .html or .json).

    Every check (chart name, suffix, folder, runs) happens before anything is written.
    """
    out = Path(out)
    if name not in CHARTS:
        raise GrokscopeError(f"unknown chart {name!r}; choose from {', '.join(CHARTS)}")
    suffix = check_suffix(out)
    chart = build_chart(name, load_runs(paths, log_x=log_x, criteria=criteria, stability=stability))
    write_file(out, render(chart, suffix, scale))
    return out


def write_report(paths: Iterable[str | os.PathLike], out: str | os.PathLike, *, log_x: bool = False,
                 criteria: Criteria = Criteria(),
                 stability: StabilityRule = StabilityRule()) -> tuple[Path, ReportInput, list[str]]:
    """Write the one-page HTML report of the runs under ``paths`` to ``out`` (which must end in .html).

    Returns the path, the runs and the names of the charts drawn.

    Examples
    --------
    >>> write_report(["runs/sweep/"], "sweep.html")  # doctest: +SKIP
    """
    out = Path(out)
    if out.suffix.lower() != ".html":
        raise GrokscopeError(f"{out}: the report is an HTML page (use .html), or export one chart with "
                             f"--chart NAME")
    check_suffix(out, (".html",))
    inp = load_runs(paths, log_x=log_x, criteria=criteria, stability=stability)
    page, names = report_html(inp)
    write_file(out, page.encode())
    return out, inp, names
