"""Import runs logged by other tools (tables, TensorBoard, W&B, MLflow, Lightning, checkpoints) as run stores.

Two steps, both numpy-only: :func:`read_source` parses a path into runs of per-field series (and checkpoint
arrays); :func:`write_source` maps field names, attaches hyperparameters and writes native run stores.
PyTorch checkpoint files need torch and are read by ``grokscope.trainers.checkpoints.read_torch``.

Examples
--------
>>> from grokscope.importers import read_source, write_source
>>> written = write_source(read_source("tb_logdir/"), "runs/tb/")  # doctest: +SKIP
>>> [run["path"] for run in written["runs"]]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from grokscope.errors import ConfigError
from grokscope.importers.base import Checkpoints, RawRun, Source, SourceError
from grokscope.importers.detect import FORMATS, detect_format
from grokscope.importers.mapping import map_fields, parse_maps
from grokscope.importers.sidecar import parse_hparams
from grokscope.importers.write import prepare_source, write_source

__all__ = ["FORMATS", "Checkpoints", "RawRun", "Source", "SourceError", "detect_format", "map_fields",
           "parse_hparams", "parse_maps", "prepare_source", "read_source", "write_source"]


def read_source(path: str | os.PathLike, fmt: str | None = None, *, step_field: str | None = None) -> Source:
    """Parse a log file or folder into a :class:`Source` (``fmt`` as from :func:`detect_format`).

    ``step_field`` names the step column of a table (``--map step=FIELD``).
    """
    from grokscope.importers import mlflow, safetensors_, tables, tensorboard

    path = Path(path)
    fmt = detect_format(path, fmt)
    if step_field is not None and fmt not in ("csv", "tsv", "jsonl", "parquet", "wandb"):
        raise ConfigError(f"--map step=… applies to tables only, not to {fmt}")
    if fmt in ("csv", "tsv", "jsonl", "parquet"):
        if path.is_dir():
            raise SourceError(f"{path} is a folder; name the {fmt} file")
        return tables.read_table(path, fmt, step_field)
    if fmt == "wandb":
        return tables.read_wandb(path, step_field)
    if fmt == "tensorboard":
        return tensorboard.read_tensorboard(path)
    if fmt == "mlflow":
        return mlflow.read_mlruns(path)
    if fmt == "mlflow-db":
        return mlflow.read_mlflow_db(path)
    if fmt == "safetensors":
        return safetensors_.read_safetensors(path)
    raise ConfigError(f"{path}: {fmt} files need torch: use grokscope.trainers.checkpoints.read_torch")
