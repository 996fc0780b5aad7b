"""``grokscope dynamics`` and ``grokscope fourier``: how and why a run grokked.

Both print a table (or one JSON document with ``--json``) and save their arrays into the store's
``analysis/`` group when the run is complete (a live run is only read).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from grokscope.cli.analyze import TestAcc, TestLoss, TrainAcc, TrainLoss, criteria_from
from grokscope.cli.output import emit_rows
from grokscope.errors import ConfigError

if TYPE_CHECKING:
    from grokscope.store.reader import RunStore

Paths = Annotated[list[Path], typer.Argument(help="Run stores, or directories holding run stores.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document (a list of runs).")]
NoSave = Annotated[bool, typer.Option("--no-save", help="Do not write results into the store.")]

DYNAMICS_COLUMNS = {"run": "run", "memorization_step": "memorized@", "generalization_step": "generalized@",
                    "decay_rate": "decay γ", "fit_r2": "fit R²", "w_star": "w*",
                    "predicted_generalization_step": "predicted@", "l2_initial": "L2 start",
                    "l2_final": "L2 end", "saved": "saved", "error": "error"}
FOURIER_COLUMNS = {"run": "run", "key_frequencies": "key freqs (norm)", "gini": "gini",
                   "gini_initial": "gini@0", "neuron_key_frequencies": "key freqs (neurons)",
                   "restricted_loss": "restricted", "excluded_loss": "excluded", "saved": "saved",
                   "error": "error"}


def _save(store: RunStore, name: str, summary: dict[str, Any], arrays: dict, no_save: bool) -> dict[str, Any]:
    """``summary`` with ``saved``: whether its arrays went into the store (finished runs only)."""
    from grokscope.store.reader import write_analysis

    summary["saved"] = False if no_save else write_analysis(store.path, name, arrays, {"summary": summary})
    if not no_save and not summary["saved"]:
        print(f"{store.path}: run not finished (status {store.status}); results not saved", file=sys.stderr)
    return summary


def dynamics_command(
    paths: Paths,
    fit_start: Annotated[Optional[int], typer.Option(help="Decay-fit window start (default: memorization).")] = None,
    fit_stop: Annotated[Optional[int], typer.Option(help="Window end (default: generalization, else last).")] = None,
    w_star: Annotated[Optional[float], typer.Option(help="Norm w* of eq. 7 (default: the run's norm when it "
                                                          "generalized).")] = None,
    bins: Annotated[int, typer.Option(help="Histogram bins of the classifier weights.")] = 50,
    train_acc: TrainAcc = 0.99, test_acc: TestAcc = 0.95,
    train_loss_below: TrainLoss = None, test_loss_below: TestLoss = None,
    json_: Json = False, no_save: NoSave = False,
) -> None:
    """L2-norm trajectories, the exponential decay fit after memorization and seed 002's predicted
    generalization step (eq. 7) beside the observed one; classifier weight histograms; early loss spectrum."""
    from grokscope.analysis.runners.dynamics import (  # the analysis stack loads on use only
        DynamicsOptions,
        run_dynamics,
    )
    from grokscope.analysis.runners.summary import per_run

    options = DynamicsOptions(criteria=criteria_from(train_acc, test_acc, train_loss_below, test_loss_below),
                              fit_start=fit_start, fit_stop=fit_stop, w_star=w_star, bins=bins)

    def measure(store: RunStore) -> dict[str, Any]:
        summary, arrays = run_dynamics(store, options)
        return _save(store, "dynamics", summary, arrays, no_save)

    emit_rows(per_run(paths, measure), DYNAMICS_COLUMNS, as_json=json_, as_csv=False,
              title="weight-norm dynamics")


def fourier_command(
    paths: Paths,
    param: Annotated[Optional[str], typer.Option(help="Embedding parameter (default: the store's).")] = None,
    p: Annotated[Optional[int], typer.Option("--p", help="Modulus (default: the run's config).")] = None,
    orientation: Annotated[Optional[str], typer.Option(help="vocab_first, vocab_last or auto.")] = None,
    top_k: Annotated[Optional[int], typer.Option(help="Report exactly k key frequencies.")] = None,
    every: Annotated[int, typer.Option(help="Restricted/excluded loss at every k-th checkpoint.")] = 1,
    weights_only: Annotated[bool, typer.Option(help="Skip the measures that run the model.")] = False,
    json_: Json = False, no_save: NoSave = False,
) -> None:
    """Fourier progress measures over checkpoints: embedding spectrum, key frequencies (top-norm and neuron
    methods), Gini sparsity, restricted and excluded loss."""
    if every < 1:
        raise ConfigError(f"--every must be positive, got {every}")
    from grokscope.analysis.runners.spectra import FourierOptions, weight_measures
    from grokscope.analysis.runners.summary import per_run

    options = FourierOptions(param=param, p=p, orientation=orientation, top_k=top_k)

    def measure(store: RunStore) -> dict[str, Any]:
        summary, arrays = weight_measures(store, options)
        model_summary, model_arrays = _model_measures(store, every, weights_only or param is not None)
        return _save(store, "fourier", {**summary, **model_summary}, {**arrays, **model_arrays}, no_save)

    emit_rows(per_run(paths, measure), FOURIER_COLUMNS, as_json=json_, as_csv=False,
              title="Fourier progress measures")


def _model_measures(store: RunStore, every: int, skip: bool) -> tuple[dict, dict]:
    """The model-run measures where a grokscope model of an a + b task can be rebuilt, else why not."""
    reason = None
    if skip:
        reason = "skipped (weights only)"
    elif "vocab" not in store.attrs.get("task", {}):
        reason = "no model to run (imported checkpoints)"
    elif store.config.get("op") != "+":
        reason = "defined for a + b mod p runs"
    else:
        try:
            from grokscope.trainers.probe import model_measures
        except ImportError:
            reason = "needs torch"
        else:
            return model_measures(store, every=every)
    return {"model_measures": f"unavailable: {reason}"}, {}


def register(app: typer.Typer) -> None:
    app.command("dynamics")(dynamics_command)
    app.command("fourier")(fourier_command)
