"""``grokscope analyze``: memorization and generalization per run, as a table, JSON or CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from grokscope.analysis.measures.onset import Criteria
from grokscope.analysis.measures.stability import SUSTAIN_EVALS, StabilityRule
from grokscope.cli.output import emit_rows
from grokscope.errors import ConfigError

TABLE_COLUMNS = {"run": "run", "n_train": "n_train", "memorization_step": "memorized@",
                 "generalization_step": "generalized@", "grokking_delay": "delay", "final_train_acc": "train acc",
                 "final_test_acc": "test acc", "l2_at_memorization": "L2@mem", "l2_at_generalization": "L2@gen",
                 "sustained_generalization_step": "sustained@", "stable": "stable",
                 "dips_after_generalization": "dips", "collapse_step": "collapse@", "loss_spikes": "spikes",
                 "status": "status", "error": "error"}

INTERVAL_COLUMNS = {"alpha0": "α0", "alpha1": "α1", "sigma_s": "σ_S", "sigma_e": "σ_E", "support": "S",
                    "support_ratio": "S/(α1−α0)", "grokked": "grokked (Def. 3.1)"}

SUBCLASS_COLUMNS = {"final_test_acc_downsampled": "down-sampled acc", "final_test_acc_rest": "other acc",
                    "generalization_step_downsampled": "down-sampled gen@"}  # seed 001 hierarchies

TrainAcc = Annotated[float, typer.Option(help="Memorized: first step with train accuracy at or above this.")]
TestAcc = Annotated[float, typer.Option(help="Generalized: first step with test accuracy at or above this.")]
TrainLoss = Annotated[Optional[float], typer.Option(help="Memorized instead: train loss at or below this.")]
TestLoss = Annotated[Optional[float], typer.Option(help="Generalized instead: test loss at or below this.")]


SustainEvals = Annotated[Optional[int], typer.Option(
    help=f"Sustained generalization: the criterion holds at this many evaluations in a row "
         f"[default: {SUSTAIN_EVALS}].")]
SustainSteps = Annotated[Optional[float], typer.Option(
    help="Sustained generalization instead: the criterion holds at every evaluation within this many "
         "steps (the run evaluated that long after).")]
CollapseTrainAcc = Annotated[float, typer.Option(
    help="Collapse: first evaluation after memorization with train accuracy below this.")]
CollapseTrainLoss = Annotated[Optional[float], typer.Option(
    help="Collapse under --train-loss-below: train loss above this [default: 10 × that threshold].")]
SpikeFactor = Annotated[float, typer.Option(
    help="Loss spikes: episodes of train loss above this × its running minimum.")]
SpikeFloor = Annotated[float, typer.Option(
    help="Loss spikes: the running minimum counts as at least this (a loss logged as 0 is no baseline).")]


def criteria_from(train_acc: float, test_acc: float, train_loss_below: float | None,
                  test_loss_below: float | None) -> Criteria:
    return Criteria(train_acc=train_acc, test_acc=test_acc, train_loss_below=train_loss_below,
                    test_loss_below=test_loss_below)


def stability_from(sustain_evals: int | None, sustain_steps: float | None, collapse_train_acc: float,
                   collapse_train_loss: float | None, spike_factor: float, spike_floor: float) -> StabilityRule:
    """The stability rule of the flags (``--sustain-evals`` and ``--sustain-steps`` exclude each other)."""
    if sustain_evals is not None and sustain_steps is not None:
        raise ConfigError("give --sustain-evals or --sustain-steps, not both")
    return StabilityRule(sustain_evals=SUSTAIN_EVALS if sustain_evals is None else sustain_evals,
                         sustain_steps=sustain_steps, collapse_train_acc=collapse_train_acc,
                         collapse_train_loss=collapse_train_loss, spike_factor=spike_factor,
                         spike_floor=spike_floor)


def analyze_command(
    paths: Annotated[list[Path], typer.Argument(help="Run stores, or directories holding run stores.")],
    train_acc: TrainAcc = 0.99,
    test_acc: TestAcc = 0.95,
    train_loss_below: TrainLoss = None,
    test_loss_below: TestLoss = None,
    intervals: Annotated[bool, typer.Option("--intervals", help="Add seed 001's Definition 3.1: α0, α1, σ_S, "
                                            "σ_E, Δ_S, Δ_T, support S (docs/intervals.md).")] = False,
    band: Annotated[float, typer.Option(help="Intervals: σ_E = lim T_R − band.")] = 0.05,
    tail: Annotated[float, typer.Option(help="Intervals: share of the last train points averaged into "
                                             "lim T_R.")] = 0.1,
    low_frac: Annotated[float, typer.Option(help="Intervals: low region is T_E ≤ min T_E + low_frac·(σ_E − "
                                                 "min T_E).")] = 0.1,
    min_support_ratio: Annotated[float, typer.Option(help="Intervals: grokked needs S/(α1−α0) ≥ this.")] = 2.0,
    smooth: Annotated[Optional[str], typer.Option(help="Intervals: smoothing, ema or gaussian.")] = None,
    smooth_amount: Annotated[float, typer.Option(help="EMA weight in [0, 1), or Gaussian σ in logged "
                                                      "points.")] = 0.0,
    sustain_evals: SustainEvals = None,
    sustain_steps: SustainSteps = None,
    collapse_train_acc: CollapseTrainAcc = 0.5,
    collapse_train_loss: CollapseTrainLoss = None,
    spike_factor: SpikeFactor = 10.0,
    spike_floor: SpikeFloor = 1e-6,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON document (a list of runs).")] = False,
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """Memorization step, generalization step, grokking delay, final metrics and stability (sustained
    generalization, dips, collapse, loss spikes; docs/intervals.md) of each run.

    A threshold a run never reached is shown as null (JSON) or empty, never 0.
    """
    from grokscope.analysis.measures.intervals import IntervalRule  # scipy: only when analyzing, never for --help
    from grokscope.analysis.runners.summary import analyze

    stable_rule = stability_from(sustain_evals, sustain_steps, collapse_train_acc, collapse_train_loss,
                                 spike_factor, spike_floor)
    rule = None
    if intervals:
        try:
            rule = IntervalRule(band=band, tail=tail, low_frac=low_frac, min_support_ratio=min_support_ratio,
                                smoothing=smooth, smoothing_amount=smooth_amount)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    rows = analyze(paths, criteria_from(train_acc, test_acc, train_loss_below, test_loss_below), rule,
                   stable_rule)
    columns = {**TABLE_COLUMNS, **(INTERVAL_COLUMNS if intervals else {})}
    if any("final_test_acc_downsampled" in row for row in rows):
        columns.update(SUBCLASS_COLUMNS)
    emit_rows(rows, columns, as_json=json_, as_csv=csv, title="grokking onset")


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze_command)
