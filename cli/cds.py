"""``grokscope cds``: critical data size per model size, the grokking-time fit and the CDS-vs-size fit."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from grokscope.cli.analyze import TestAcc, TestLoss, TrainAcc, TrainLoss, criteria_from
from grokscope.cli.output import emit_rows, print_json
from grokscope.errors import ConfigError


def _thresholds(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"--thresholds must be a comma list of numbers, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise ConfigError(f"--thresholds must be finite numbers, got {text!r}")
    return values


def _interval(lo: float | None, hi: float | None) -> str | None:
    """``lo – hi`` (no square brackets: rich would read them as markup); an end beyond the grid is "open"."""
    if lo is None and hi is None:
        return None
    return " – ".join("open" if v is None else f"{v:.4g}" for v in (lo, hi))


def _pm(value: float | None, se: float | None) -> str | None:
    if value is None:
        return None
    return f"{value:.3g} ± {se:.2g}" if se is not None else f"{value:.3g}"


def _number(value: float | None) -> float | int | None:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _tables(doc: dict[str, Any]) -> None:
    axis = doc["size_axis"]
    models = [{"model": m["model"], doc["model_size_axis"]: _number(m["model_size"]), "cds": m["cds"],
               "cds_ci": _interval(*m["cds_ci"]) if doc["n_bootstrap"] else None,
               "stepwise_peak": m["stepwise_peak"],
               "gamma": _pm(m["time_fit"]["gamma"], m["time_fit"]["gamma_se"]), "runs": m["n_runs"],
               "note": m["reason"] or m["time_fit"]["reason"]} for m in doc["models"]]
    emit_rows(models, {k: k for k in models[0]}, as_json=False, as_csv=False,
              title=f"critical data size ({axis}, epsilon {doc['epsilon']}, {doc['criterion']})")
    if doc["scaling"]:
        fits = [{"setting": f["setting"] or None, "CDS vs": f["x"], "exponent": f["exponent"],
                 "exponent_ci": _interval(*f["exponent_ci"]), "coefficient": f["coefficient"],
                 "r_squared": f["r_squared"], "points": f["n_points"], "note": f["reason"]}
                for f in doc["scaling"]]
        emit_rows(fits, {k: k for k in fits[0]}, as_json=False, as_csv=False, title="CDS = c·N^exponent")
    sizes = sorted({row[axis] for row in doc["landscape"]})
    grid: dict[str, dict[str, Any]] = {}
    for row in doc["landscape"]:
        grid.setdefault(row["model"], {"model": row["model"]})[f"{row[axis]:g}"] = row["accuracy"]
    columns = {k: k for k in ["model", *(f"{n:g}" for n in sizes)]}
    emit_rows(list(grid.values()), columns, as_json=False, as_csv=False,
              title=f"mean {doc['score']} test score by {axis}")


def cds_command(
    paths: Annotated[list[Path], typer.Argument(help="Sweep directories, run stores, or folders of them.")],
    epsilon: Annotated[float, typer.Option(help="Definition 1's level for the mean over seeds.")] = 0.95,
    train_acc: TrainAcc = 0.99,
    test_acc: TestAcc = 0.95,
    train_loss_below: TrainLoss = None,
    test_loss_below: TestLoss = None,
    smooth: Annotated[float, typer.Option(help="Gaussian sigma in steps for step-wise curves.")] = 0,
    clip: Annotated[Optional[int], typer.Option(help="Only steps up to this one count.")] = None,
    thresholds: Annotated[Optional[str], typer.Option(help="Step-wise thresholds, comma list (default "
                                                      "0.1,…,0.9 of test acc).")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap replicates over seeds (0: no interval).")] = 1000,
    level: Annotated[float, typer.Option(help="Coverage of the intervals.")] = 0.95,
    interp: Annotated[str, typer.Option(help="Interpolate the CDS in log n (log) or n (linear).")] = "log",
    score: Annotated[str, typer.Option(help="final (Definition 1) or max (best smoothed) score.")] = "final",
    model_size: Annotated[Optional[str], typer.Option(help="Config key for model size (default n_params, "
                                                      "else d_model).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    csv: Annotated[bool, typer.Option("--csv", help="Print the per-model CDS table as CSV.")] = False,
) -> None:
    """Critical data size per model size (Definition 1, bootstrap CI over seeds), step-wise generalization
    steps, grokking time t = a·r^(-gamma) + b, and CDS = c·N^exponent across model sizes.

    A CDS that is never reached is null, with the reason.  See docs/cds.md for every rule.
    """
    if clip is not None and clip < 0:
        raise ConfigError(f"--clip must be a step >= 0, got {clip}")
    criteria = criteria_from(train_acc, test_acc, train_loss_below, test_loss_below)
    from grokscope.analysis.runners.cds import CDSAnalysis  # scipy and pandas: only when fitting

    est = CDSAnalysis(epsilon=epsilon, criteria=criteria, smoothing_sigma=smooth, clip=clip,
                      thresholds=_thresholds(thresholds), n_bootstrap=bootstrap, level=level,
                      interpolation=interp, score=score, model_size=model_size, seed=seed).fit(paths)
    if json_:
        print_json(est.to_dict())
    elif csv:
        rows = est.cds_.to_dict("records")
        emit_rows(rows, {c: c for c in est.cds_.columns}, as_json=False, as_csv=True, title="")
    else:
        _tables(est.to_dict())


def register(app: typer.Typer) -> None:
    app.command("cds")(cds_command)
