"""``grokscope report``: a one-page offline HTML report of runs, or one chart as PNG, SVG, HTML or JSON."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from grokscope.cli.analyze import (
    CollapseTrainAcc,
    CollapseTrainLoss,
    SpikeFactor,
    SpikeFloor,
    SustainEvals,
    SustainSteps,
    TestAcc,
    TestLoss,
    TrainAcc,
    TrainLoss,
    criteria_from,
    stability_from,
)
from grokscope.cli.output import print_json

ChartName = Annotated[Optional[str], typer.Option(help="Export only this chart: accuracy, loss, l2, spectrum, the "
                                                        "sweep charts … (docs/report.md; an unknown name lists "
                                                        "them).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document describing what was written.")]


def report_command(
    paths: Annotated[list[Path], typer.Argument(help="Run stores, or directories holding run stores.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .html for the report; with --chart "
                                      "also .png, .svg or .json.")],
    chart: ChartName = None,
    log_x: Annotated[bool, typer.Option("--log-x", help="Log-scaled step axes.")] = False,
    train_acc: TrainAcc = 0.99, test_acc: TestAcc = 0.95,
    train_loss_below: TrainLoss = None, test_loss_below: TestLoss = None,
    sustain_evals: SustainEvals = None, sustain_steps: SustainSteps = None,
    collapse_train_acc: CollapseTrainAcc = 0.5, collapse_train_loss: CollapseTrainLoss = None,
    spike_factor: SpikeFactor = 10.0, spike_floor: SpikeFloor = 1e-6,
    json_: Json = False,
) -> None:
    """One self-contained HTML page (summary table, then the charts that apply) for a run, a set of runs or
    a sweep directory; or, with --chart, one chart.  Works offline: nothing is loaded from the network."""
    from grokscope.report.page import export_chart, write_report  # altair and vl-convert: only when reporting

    rules = {"criteria": criteria_from(train_acc, test_acc, train_loss_below, test_loss_below),
             "stability": stability_from(sustain_evals, sustain_steps, collapse_train_acc, collapse_train_loss,
                                         spike_factor, spike_floor)}  # the marks and table, as analyze computes them
    if chart is None:
        written, inp, names = write_report(paths, out, log_x=log_x, **rules)
        doc = {"out": str(written), "charts": names, "runs": len(inp.runs)}
    else:
        written = export_chart(paths, chart, out, log_x=log_x, **rules)
        doc = {"out": str(written), "charts": [chart]}
    doc["bytes"] = written.stat().st_size
    if json_:
        print_json(doc)
    else:
        print(f"wrote {written} ({', '.join(doc['charts'])}; {doc['bytes'] / 1e6:.2f} MB)", file=sys.stderr)


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
