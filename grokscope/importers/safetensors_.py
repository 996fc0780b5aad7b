"""safetensors checkpoints (numpy only): one file is one checkpoint; a folder of them is a run's history.

Steps come from a ``step``/``global_step`` entry in a file's metadata, else from the last number in its path
relative to the folder (``step_1000.safetensors``, ``checkpoint-1000/model.safetensors``), else file order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grokscope.importers.base import RawRun, Source, SourceError
from grokscope.importers.params import checkpoint_step, stack_checkpoints
from grokscope.importers.sidecar import sidecar_configs


def load_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Tensors and metadata of one safetensors file."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # SafetensorError, bfloat16 without numpy support, truncated files
        reason = str(exc).splitlines()[0][:120] if str(exc) else exc.__class__.__name__
        raise SourceError(f"{path}: not a readable safetensors file ({reason})") from None
    return tensors, metadata


def read_safetensors(path: Path) -> Source:
    """A safetensors file or a folder of them (searched two levels deep) as one run's checkpoints."""
    files = [path] if path.is_file() else [*sorted(path.glob("*.safetensors")),
                                           *sorted(path.glob("*/*.safetensors"))]
    if not files:
        raise SourceError(f"{path}: no .safetensors files here")
    items, sources = [], set()
    for index, file in enumerate(files):
        tensors, metadata = load_safetensors(file)
        relative = file.name if path.is_file() else file.relative_to(path).as_posix()
        step = checkpoint_step(metadata, relative)
        sources.add("metadata/file names" if step is not None else "file order")
        items.append((index if step is None else step, tensors, str(file)))
    if len(sources) > 1:  # mixing numbered and unnumbered files would interleave nonsense
        items = [(i, t, w) for i, (_, t, w) in enumerate(items)]
        sources = {"file order"}
    if len(files) == 1 and sources == {"file order"}:
        sources = {"unknown (0)"}
    checkpoints = stack_checkpoints(items, sources.pop())
    config, used = sidecar_configs(path.parent if path.is_file() else path)
    run = RawRun(name="", series={}, step_field=None, config=config, config_sources=tuple(used),
                 checkpoints=checkpoints)
    return Source(path, "safetensors", [run], multi=False)
