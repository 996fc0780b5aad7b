"""``grokscope forecast``: will a run generalize within its budget, when, and should it stop now?

One command, three uses; the first argument picks one (a run store literally named ``fit`` or ``backtest``
is given as ``./fit``)::

    grokscope forecast PATHS… [--at N | --at-frac F] [--model m.json] [--json]
    grokscope forecast fit PATHS… --out m.json [--at-frac 0.1] [--miss-rate 0.05]
    grokscope forecast backtest PATHS… [--model m.json] [--at-frac F] [--json]

docs/forecast.md describes the signals, the model and its limits.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from grokscope.analysis.measures.onset import Criteria
from grokscope.cli.analyze import TestAcc, TestLoss, TrainAcc, TrainLoss, criteria_from
from grokscope.cli.output import emit_rows, print_json
from grokscope.errors import ConfigError

MODES = ("fit", "backtest")
FORECAST_COLUMNS = {"run": "run", "at": "at", "budget": "budget", "known": "known", "feature_set": "signals",
                    "p_generalize": "P(gen)", "predicted_generalization_step": "predicted@",
                    "interval_80": "80 % interval", "advice": "advice", "compute_saved_steps": "saves",
                    "reason": "why", "status": "status", "error": "error"}
SCORE_COLUMNS = {"feature_set": "signals", "n_scored": "runs", "n_known": "known", "n_abstained": "abstained",
                 "auroc": "AUROC", "median_abs_log_ratio": "med |ln ratio|", "interval_coverage": "80 % coverage",
                 "compute_saved": "compute saved", "waste_saved": "no-grok compute saved",
                 "groks_missed": "groks missed", "n_groks": "groks"}


def forecast_command(
    paths: Annotated[list[str], typer.Argument(
        metavar="[fit|backtest] PATH",
        help="Run stores or folders of them; first `fit` or `backtest` to fit a model or score one.")],
    at: Annotated[Optional[int], typer.Option(help="Forecast from the metrics up to this step.")] = None,
    at_frac: Annotated[Optional[float], typer.Option(
        help="… or up to this share of each run's budget [default: the model's, 0.1 for fit].")] = None,
    model: Annotated[Optional[Path], typer.Option(
        help="A model from `grokscope forecast fit` [default: the one shipped with grokscope].")] = None,
    out: Annotated[Optional[Path], typer.Option(help="fit: where to write the model (JSON).")] = None,
    miss_rate: Annotated[float, typer.Option(
        help="fit: the stop threshold stops at most this share of the fit set's groks.")] = 0.05,
    train_acc: TrainAcc = 0.99, test_acc: TestAcc = 0.95,
    train_loss_below: TrainLoss = None, test_loss_below: TestLoss = None,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """P(the run generalizes within its configured steps), the predicted generalization step with an 80 %
    interval, and stop/continue advice with the compute a stop saves, from each run's first steps only.

    `forecast fit PATHS --out m.json` fits a model on finished runs; `forecast backtest PATHS` scores one on
    runs it was not fitted on.  A run the model cannot read (no signals it needs) is abstained on, with why.
    """
    from grokscope.analysis.runners import forecast as runner  # sklearn loads on use only, never for --help

    mode = paths[0] if paths and paths[0] in MODES else None
    targets = [Path(p) for p in (paths[1:] if mode else paths)]
    if not targets:
        raise ConfigError(f"forecast {mode}: name the run stores or folders")
    criteria = criteria_from(train_acc, test_acc, train_loss_below, test_loss_below)
    if mode != "fit" and out is not None:
        raise ConfigError("--out is for `grokscope forecast fit`")
    if mode == "fit":
        _fit(runner, targets, at, at_frac, model, out, miss_rate, criteria, json_)
        return
    chosen = runner.load_model(model)
    if criteria == Criteria():
        criteria = None  # the default flags: the model's own criteria
    if mode == "backtest":
        if at is not None:
            raise ConfigError("backtest cuts every run at --at-frac of its budget; --at is for forecasts")
        result = runner.backtest(targets, model=chosen, at_frac=at_frac, criteria=criteria)
        if json_:
            print_json(result)
            return
        rows = [{"feature_set": "chosen per run", **_scores(result)},
                *({"feature_set": f"{name} (forced)", **s} for name, s in result["by_feature_set"].items())]
        emit_rows(rows, SCORE_COLUMNS, as_json=False, as_csv=False,
                  title=f"forecast backtest at {result['at_frac']:g} of the budget")
        met = ", ".join(f"{k} {'met' if v else 'missed' if v is not None else 'n/a'}"
                        for k, v in result["targets_met"].items())
        print(f"targets (docs/forecast.md): {met}", file=sys.stderr)
        return
    rows = runner.forecast_runs(targets, at=at, at_frac=at_frac, model=chosen, criteria=criteria)
    emit_rows(rows, FORECAST_COLUMNS, as_json=json_, as_csv=False, title="forecast")


def _scores(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in ("by_feature_set", "runs", "model", "targets_met")}


def _fit(runner, targets, at, at_frac, model, out, miss_rate, criteria, json_) -> None:
    if out is None:
        raise ConfigError("forecast fit: give --out model.json")
    if at is not None or model is not None:
        raise ConfigError("forecast fit takes --at-frac (not --at) and no --model")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; name the model file")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: no folder {out.parent}")
    fitted = runner.fit_model(targets, at_frac=0.1 if at_frac is None else at_frac, criteria=criteria,
                              miss_rate=miss_rate)
    runner.save_model(fitted, out)
    summary = {"model": str(out), "at_frac": fitted.at_frac, "provenance": dict(fitted.provenance),
               "submodels": [{"feature_set": s.name, "n_fit": s.n_fit, "n_groks": s.n_groks,
                              "oof_auroc": s.oof_auroc, "stop_threshold": s.stop_threshold} for s in fitted.submodels]}
    print(f"wrote {out}: {len(fitted.submodels)} feature sets fitted on {fitted.provenance.get('n_runs')} runs",
          file=sys.stderr)
    if json_:
        print_json(summary)


def register(app: typer.Typer) -> None:
    app.command("forecast")(forecast_command)
