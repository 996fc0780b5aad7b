"""Finding run stores on disk: which folders are stores, every store under a folder, labels that tell
stores apart, and removing one (``--overwrite``).  Readers and the writer live in :mod:`grokscope.store.reader`."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from grokscope.errors import StoreError
from grokscope.store.reader import RunStore


def is_run_store(path: Path) -> bool:
    """True for a directory whose root Zarr metadata carries grokscope's schema attribute."""
    meta = path / "zarr.json"
    if not meta.is_file():
        return False
    try:
        doc = json.loads(meta.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc.get("attributes", {}).get("grokscope"), dict)


def _stores_under(root: Path) -> list[Path]:
    """Run stores below ``root``, not descending into stores nor into hidden folders (``.x.zarr.creating-<pid>``
    build folders of writers, ``.git``), nor following symbolic links to folders."""
    found = []
    for here, dirs, files in os.walk(root):
        if "zarr.json" in files and is_run_store(Path(here)):
            found.append(Path(here))
            dirs.clear()
        else:
            dirs[:] = [d for d in dirs if not d.startswith(".")]
    return sorted(found)


def find_runs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Run stores named directly or found under directories (not descending into stores or hidden folders),
    sorted per path.

    A named path that is neither a store nor a directory holding one raises :class:`StoreError`.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise StoreError(f"{path} does not exist")
        if (path / "zarr.json").is_file():
            RunStore(path)  # a clear error for foreign Zarr stores and newer schemas
            found.append(path)
            continue
        if not path.is_dir():
            raise StoreError(f"{path} is not a grokscope run store")
        inside = _stores_under(path)
        if not inside:
            raise StoreError(f"{path} holds no grokscope run store")
        found.extend(inside)
    return found


def run_labels(paths: Sequence[str | os.PathLike]) -> list[str]:
    """A short label per store that tells it apart from the others: its name, with as many folders above it
    as repeated names need (``seed0/run``), a sweep's own ``runs/`` folder left out
    (``equidistant/downsample_frac=0.0``); the whole path when folders cannot tell two apart."""
    def chain(path: Path) -> list[str]:  # the name, then the folders above it, innermost first
        above = [q.name for q in path.parents
                 if q.name and not (q.name == "runs" and (q.parent / "sweep.json").is_file())]  # sweep.INDEX
        return [path.name.removesuffix(".zarr"), *above]

    chains = [chain(Path(p).absolute()) for p in paths]
    out: list[str | None] = [None] * len(chains)
    # labels of different depths never collide (their "/" counts differ), so depths are settled one by one
    for depth in range(1, max((len(c) for c in chains), default=0) + 1):
        labels = ["/".join(reversed(c[:depth])) if len(c) >= depth else None for c in chains]
        seen = Counter(labels)
        for i, lab in enumerate(labels):
            if out[i] is None and lab is not None and seen[lab] == 1:
                out[i] = lab
    return [lab if lab is not None else str(p) for lab, p in zip(out, paths)]


def remove_store(path: Path) -> None:
    """Delete an existing run store (for ``--overwrite``); refuses anything that is not one."""
    if not is_run_store(path):
        raise StoreError(f"{path} exists and is not a grokscope run store; refusing to overwrite it")
    shutil.rmtree(path)
