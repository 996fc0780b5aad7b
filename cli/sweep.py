"""``grokscope sweep``: a grid over any trainer flags, trained into one run store per run.

Every trainer flag takes a comma list or a ``start:stop:step`` range here; the grid is their cartesian
product (× ``--seeds``).  Runs that share a shape train together as one stacked model (``--no-batch`` trains
each alone).  Rerunning the same command on the same ``--out`` resumes: complete runs are kept.
``--stop-early`` ends the runs a forecast says will not generalize within their steps (docs/forecast.md).
"""

import functools
import inspect
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from grokscope.cli.output import print_json
from grokscope.cli.train import check_device, config_parameters, field_types
from grokscope.config.presets import PRESETS
from grokscope.errors import ConfigError

EXECUTORS = ("local", "dask")


def split_flags(values: dict[str, Any], seeds: Optional[int]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Flags with one value become fixed settings; lists become grid axes (``--seeds N``: seeds 0 … N−1)."""
    from grokscope.sweeps.grid import parse_values

    kinds = field_types()
    fixed, grid = {}, {}
    for name, text in values.items():
        if text is None:
            continue
        parsed = parse_values(text, kinds[name])
        if len(parsed) == 1:
            fixed[name] = parsed[0]
        else:
            grid[name] = parsed
    if seeds is not None:
        if "seed" in fixed or "seed" in grid:
            raise ConfigError("give either --seeds N or --seed LIST, not both")
        if seeds < 1:
            raise ConfigError(f"--seeds must be positive, got {seeds}")
        grid["seed"] = list(range(seeds))
    if not grid:
        raise ConfigError("the sweep grid is empty: give at least one flag a list of values, or --seeds N")
    return fixed, grid


STOP_ATTRS = ("at", "budget", "feature_set", "p_generalize", "stop_threshold", "predicted_generalization_step",
              "interval_80", "compute_saved_steps", "reason")  # a stopped store keeps these of its forecast


def forecast_decision(paths: list[Path], step: int, *, model: Any) -> list[Optional[dict[str, Any]]]:
    """``--stop-early``'s decision in a sweep worker: each store's forecast at ``step`` by ``model``; the
    forecast (its :data:`STOP_ATTRS`) where it advises stopping, else None (continue, or abstain)."""
    from grokscope.analysis.runners.forecast import forecast_store

    verdicts = []
    for path in paths:
        row = forecast_store(path, at=step, model=model)
        verdicts.append({k: row.get(k) for k in STOP_ATTRS} if row.get("advice") == "stop" else None)
    return verdicts


def early_stop_rule(model_path: Optional[Path]):
    """The trainers' :class:`~grokscope.trainers.loop.EarlyStop` for ``--stop-early``: the forecast model's own
    decision point (its ``at_frac`` of each run's steps), the model loaded (and checked) before any training."""
    from grokscope.analysis.runners.forecast import load_model
    from grokscope.trainers.loop import EarlyStop

    model = load_model(model_path)
    return EarlyStop(model.at_frac, functools.partial(forecast_decision, model=model))


def sweep_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Sweep directory (index + runs/).")],
    preset: Annotated[Optional[str], typer.Option(help=f"Start from a preset: {', '.join(PRESETS)}.")] = None,
    seeds: Annotated[Optional[int], typer.Option(help="Seeds 0 … N−1 for every grid point.")] = None,
    executor: Annotated[str, typer.Option(help="local (a process pool) or dask.")] = "local",
    workers: Annotated[int, typer.Option(help="Worker processes (local pool or Dask LocalCluster).")] = 1,
    scheduler: Annotated[Optional[str], typer.Option(help="Dask scheduler address, e.g. tcp://host:8786.")] = None,
    batch: Annotated[bool, typer.Option(help="Train same-shaped runs as one stacked model.")] = True,
    max_batch: Annotated[int, typer.Option(help="Most runs in one stacked group.")] = 64,
    max_padding: Annotated[Optional[float], typer.Option(
        help="Share of a stacked group's rows that may be padding: runs of much smaller data sizes train "
             "in another group (0: equal sizes only, 1: ignore sizes) [default: 0.1].")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the sweep index as one JSON document.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    stop_early: Annotated[bool, typer.Option(
        "--stop-early", help="At the forecast model's decision point (10 % of the steps for the packaged one), "
                             "stop the runs it says will not generalize within their steps; a stopped run "
                             "that would have generalized is lost (docs/forecast.md: the measured miss rate).")
    ] = False,
    forecast_model: Annotated[Optional[Path], typer.Option(
        help="Forecast model JSON for --stop-early (grokscope forecast fit; default: the packaged one).")] = None,
    **values: Any,
) -> None:
    """Train a grid of runs (data size × model size × seeds × …) into a sweep directory."""
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")
    if workers < 1 or max_batch < 1:
        raise ConfigError("--workers and --max-batch must be positive")
    if max_padding is not None and not 0 <= max_padding <= 1:
        raise ConfigError(f"--max-padding must be in [0, 1], got {max_padding}")
    if scheduler and executor != "dask":
        raise ConfigError("--scheduler needs --executor dask")
    if forecast_model is not None and not stop_early:
        raise ConfigError("--forecast-model goes with --stop-early")
    from grokscope.sweeps.grid import MAX_PADDING, plan_sweep

    fixed, grid = split_flags(values, seeds)
    sweep = plan_sweep(out, preset, fixed, grid)  # validates every grid point before anything is written
    for device in sorted({cfg.device for cfg in sweep.runs.values()}):
        check_device(device)
    early_stop = early_stop_rule(forecast_model) if stop_early else None
    from grokscope.cli.progress import TrainingProgress
    from grokscope.trainers.sweep import dask_executor, execute_sweep, local_executor

    client = None
    if executor == "dask":
        pool, client = dask_executor(scheduler, workers)
    else:
        pool = local_executor(workers)
    try:
        with TrainingProgress(len(sweep.runs) - 1, enabled=not quiet, label="runs") as progress:
            index = execute_sweep(sweep, pool, batch=batch, max_batch=max_batch, workers=workers,
                                  max_padding=MAX_PADDING if max_padding is None else max_padding,
                                  on_done=lambda done, total: progress.update(done - 1, {}),
                                  early_stop=early_stop)
    finally:
        pool.shutdown()
        if client is not None:
            client.close()
    failed = [rid for rid, run in index["runs"].items() if run["status"] == "failed"]
    stopped = sum(run["status"] == "stopped_early" for run in index["runs"].values())
    print(f"{out}: {len(index['runs'])} runs ({index['trained']} trained, {index['already_complete']} already "
          f"finished, {len(failed)} failed" + (f", {stopped} stopped early" if stop_early else "") + ")",
          file=sys.stderr)
    if json_:
        print_json(index)
    if failed:
        raise ConfigError(f"{len(failed)} run(s) failed, e.g. {failed[0]}: {index['runs'][failed[0]]['error']}")


_fixed = [p for p in inspect.signature(sweep_command).parameters.values() if p.kind != p.VAR_KEYWORD]
sweep_command.__signature__ = inspect.Signature(_fixed + config_parameters(as_lists=True))  # type: ignore[attr-defined]


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_command)
