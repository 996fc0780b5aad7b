"""``grokscope analyze``: memorization and generalization per run, as a table, JSON or CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from grokscope.cli.output import emit_rows
from grokscope.onset import Criteria
from grokscope.summary import analyze

TABLE_COLUMNS = {"run": "run", "n_train": "n_train", "memorization_step": "memorized@",
                 "generalization_step": "generalized@", "grokking_delay": "delay", "final_train_acc": "train acc",
                 "final_test_acc": "test acc", "l2_at_memorization": "L2@mem", "l2_at_generalization": "L2@gen",
                 "status": "status"}

TrainAcc = Annotated[float, typer.Option(help="Memorized: first step with train accuracy at or above this.")]
TestAcc = Annotated[float, typer.Option(help="Generalized: first step with test accuracy at or above this.")]
TrainLoss = Annotated[Optional[float], typer.Option(help="Memorized instead: train loss at or below this.")]
TestLoss = Annotated[Optional[float], typer.Option(help="Generalized instead: test loss at or below this.")]


def criteria_from(train_acc: float, test_acc: float, train_loss_below: float | None,
                  test_loss_below: float | None) -> Criteria:
    return Criteria(train_acc=train_acc, test_acc=test_acc, train_loss_below=train_loss_below,
                    test_loss_below=test_loss_below)


def analyze_command(
    paths: Annotated[list[Path], typer.Argument(help="Run stores, or directories holding run stores.")],
    train_acc: TrainAcc = 0.99,
    test_acc: TestAcc = 0.95,
    train_loss_below: TrainLoss = None,
    test_loss_below: TestLoss = None,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON document (a list of runs).")] = False,
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """Memorization step, generalization step, grokking delay and final metrics of each run.

    A threshold a run never reached is shown as null (JSON) or empty, never 0.
    """
    rows = analyze(paths, criteria_from(train_acc, test_acc, train_loss_below, test_loss_below))
    emit_rows(rows, TABLE_COLUMNS, as_json=json_, as_csv=csv, title="grokking onset")


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze_command)
