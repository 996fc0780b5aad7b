"""``grokscope import``: runs logged by other tools (tables, TensorBoard, W&B, MLflow, PyTorch) → stores."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from grokscope.cli.output import print_json
from grokscope.errors import ConfigError
from grokscope.importers import FORMATS, detect_format, parse_hparams, parse_maps, read_source, write_source

Src = Annotated[Path, typer.Argument(
    metavar="SRC", help="A log file, TensorBoard logdir, mlruns/ folder, mlflow.db, W&B run folder, "
                        "checkpoint file or folder of checkpoints.")]
Out = Annotated[Path, typer.Option(
    "--out", metavar="OUT", help="The store to write, or a directory of stores for multi-run sources; "
                                 "must not exist.")]
Format = Annotated[Optional[str], typer.Option(
    "--format", metavar="FORMAT", help=f"Read as this format instead of guessing: {', '.join(FORMATS)}.")]
Hparam = Annotated[Optional[list[str]], typer.Option(
    "--hparam", metavar="KEY=VALUE", help="A hyperparameter for the store's config (repeatable), e.g. "
                                          "frac=0.3.")]
Map = Annotated[Optional[list[str]], typer.Option(
    "--map", metavar="NAME=FIELD", help="Read NAME (train_loss, train_acc, test_loss, test_acc, l2_norm, "
                                        "step, grad_norm, param_norm:<parameter>, "
                                        "grad_param_norm:<parameter>) from FIELD (repeatable).")]
TrustPickle = Annotated[bool, typer.Option(
    "--trust-pickle", help="Allow PyTorch files that need arbitrary unpickling (runs code: trusted files "
                           "only).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document describing what was written.")]


def import_command(src: Src, out: Out, format_: Format = None, hparam: Hparam = None, map_: Map = None,
                   trust_pickle: TrustPickle = False, json_: Json = False) -> None:
    """Import runs logged by other tools as run stores that every other command reads.

    Formats are detected from names and contents; metric names are mapped (train/loss, val_acc, …) and
    accuracy in percent is rescaled.  Each store records its source, the mapping and what was dropped.
    """
    maps = parse_maps(map_ or [])
    hparams = parse_hparams(hparam or [])
    fmt = detect_format(src, format_)
    if fmt == "torch":  # the only reader that needs torch
        if "step" in maps:
            raise ConfigError("--map step=… applies to tables only, not to torch")
        try:
            from grokscope.trainers.checkpoints import read_torch
        except ImportError:
            raise ConfigError(f"{src}: PyTorch checkpoints need torch (pip install 'grokscope[train]'); "
                              "safetensors files do not") from None
        source = read_torch(src, trust_pickle=trust_pickle)
    else:
        source = read_source(src, fmt, step_field=maps.get("step"))
    written = write_source(source, out, maps=maps, hparams=hparams)
    if json_:
        print_json(written)
        return
    for run in written["runs"]:
        span = f" ({run['first_step']}…{run['last_step']})" if run["n_steps"] else ""
        steps = f"{run['n_steps']} steps{span}"
        mapped = ", ".join(f"{k}←{v}" for k, v in run["mapped"].items()) or "no metrics"
        ckpts = f", {run['n_checkpoints']} checkpoints" if run["n_checkpoints"] else ""
        print(f"{run['path']}: {steps}, {mapped}{ckpts}")
    for skipped in written["skipped"]:
        print(f"skipped run {skipped['run']}: {skipped['reason']}", file=sys.stderr)


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
