"""Which reader a path needs: by name and folder layout first, then by the file's first bytes."""

from __future__ import annotations

from pathlib import Path

from grokscope.errors import ConfigError
from grokscope.importers.base import SourceError

FORMATS = ("csv", "tsv", "jsonl", "parquet", "tensorboard", "mlflow", "mlflow-db", "wandb", "torch",
           "safetensors")
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
             ".parquet": "parquet", ".pq": "parquet", ".safetensors": "safetensors", ".db": "mlflow-db",
             ".sqlite": "mlflow-db", ".sqlite3": "mlflow-db", **{s: "torch" for s in TORCH_SUFFIXES}}
_MAGIC = ((b"SQLite format 3\x00", "mlflow-db"), (b"PK\x03\x04", "torch"), (b"PAR1", "parquet"),
          (b"\x80", "torch"))


def detect_format(path: str | Path, forced: str | None = None) -> str:
    """The format of a file or folder (one of :data:`FORMATS`); ``forced`` is checked and returned.

    Examples
    --------
    >>> detect_format("runs/metrics.csv")  # doctest: +SKIP
    'csv'
    """
    path = Path(path)
    if forced is not None:
        if forced not in FORMATS:
            raise ConfigError(f"unknown --format {forced!r}; choose from {', '.join(FORMATS)}")
        if not path.exists():
            raise SourceError(f"{path} does not exist")
        return forced
    if not path.exists():
        raise SourceError(f"{path} does not exist")
    if path.is_dir():
        return _detect_folder(path)
    if "tfevents" in path.name:
        return "tensorboard"
    if path.name == "wandb-history.jsonl":
        return "jsonl"
    if path.suffix.lower() in _SUFFIXES:
        return _SUFFIXES[path.suffix.lower()]
    with path.open("rb") as f:
        head = f.read(512)
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    text = head.lstrip()
    if text.startswith(b"{"):
        return "jsonl"
    if text and b"\x00" not in head and (b"," in head or b"\t" in head):
        return "csv"
    raise SourceError(f"{path}: cannot tell its format from its name or contents; pass --format "
                      f"({', '.join(FORMATS)})")


def _detect_folder(path: Path) -> str:
    if any(path.rglob("*tfevents*")):
        return "tensorboard"
    if (path / "mlflow.db").is_file():
        return "mlflow-db"
    if any(path.glob("meta.yaml")) or any(path.glob("*/meta.yaml")) or any(path.glob("*/*/meta.yaml")):
        return "mlflow"
    for pattern in ("files/wandb-history.jsonl", "wandb-history.jsonl", "*/files/wandb-history.jsonl"):
        if any(path.glob(pattern)):
            return "wandb"
    if any(path.glob("*.safetensors")) or any(path.glob("*/*.safetensors")):
        return "safetensors"
    if any(p.suffix in TORCH_SUFFIXES for p in (*path.glob("*"), *path.glob("*/*"))):
        return "torch"
    raise SourceError(f"{path}: holds no log or checkpoint grokscope can read (event files, mlruns, W&B run "
                      "folders, safetensors or PyTorch checkpoints); name a file, or pass --format")
