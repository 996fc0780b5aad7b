"""``grokscope sweep``: a grid over any trainer flags, trained into one run store per run.

Every trainer flag takes a comma list or a ``start:stop:step`` range here; the grid is their cartesian
product (× ``--seeds``).  Runs that share a shape train together as one stacked model (``--no-batch`` trains
each alone).  Rerunning the same command on the same ``--out`` resumes: complete runs are kept.
"""

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
    from grokscope.sweeps.grid import MAX_PADDING, plan_sweep

    fixed, grid = split_flags(values, seeds)
    sweep = plan_sweep(out, preset, fixed, grid)  # validates every grid point before anything is written
    for device in sorted({cfg.device for cfg in sweep.runs.values()}):
        check_device(device)
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
                                  on_done=lambda done, total: progress.update(done - 1, {}))
    finally:
        pool.shutdown()
        if client is not None:
            client.close()
    failed = [rid for rid, run in index["runs"].items() if run["status"] == "failed"]
    print(f"{out}: {len(index['runs'])} runs ({index['trained']} trained, {index['already_complete']} already "
          f"finished, {len(failed)} failed)", file=sys.stderr)
    if json_:
        print_json(index)
    if failed:
        raise ConfigError(f"{len(failed)} run(s) failed, e.g. {failed[0]}: {index['runs'][failed[0]]['error']}")


_fixed = [p for p in inspect.signature(sweep_command).parameters.values() if p.kind != p.VAR_KEYWORD]
sweep_command.__signature__ = inspect.Signature(_fixed + config_parameters(as_lists=True))  # type: ignore[attr-defined]


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_command)
