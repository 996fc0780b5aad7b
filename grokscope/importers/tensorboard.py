"""TensorBoard event files and logdirs, read with TensorBoard's own ``EventAccumulator``.

Every point is kept (size guidance 0: the accumulator's default keeps 500 per tag).  Scalars arrive either as
``simple_value`` (PyTorch's ``SummaryWriter``, TF1), which the plugin accumulator migrates to tensors, or as
rank-0 tensors under the ``scalars`` plugin (TF2, ``tensorboard.summary.Writer``); both read the same.  A run
is a folder holding event files; its files are read oldest first (by the timestamp in their names) and a
step logged by several files takes the newest file's value, as a resumed run expects.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from grokscope.importers.base import RawRun, Series, Source, SourceError
from grokscope.importers.sidecar import sidecar_configs

EVENT_NAME = "tfevents"


def _accumulator(path: Path):
    from tensorboard.backend.event_processing import plugin_event_accumulator as pea
    from tensorboard.backend.event_processing import tag_types

    keep_all = {tag_types.TENSORS: 0, tag_types.SCALARS: 0}
    return pea.EventAccumulator(str(path), size_guidance=keep_all, purge_orphaned_data=False)


def _values(events: list) -> np.ndarray:
    """Scalar values of a tag's ``TensorEvent``s: the common ``float_val`` encoding in one pass."""
    try:
        return np.fromiter((e.tensor_proto.float_val[0] for e in events), np.float64, len(events))
    except IndexError:  # another encoding (double_val, tensor_content, int_val …): TensorBoard decodes it
        from tensorboard.util import tensor_util

        return np.array([float(np.asarray(tensor_util.make_ndarray(e.tensor_proto)).reshape(-1)[0])
                         for e in events], dtype=np.float64)


def read_event_file(path: Path) -> dict[str, Series]:
    """Every scalar tag of one event file: ``tag → (steps, values)`` in file order."""
    acc = _accumulator(path)
    try:
        acc.Reload()  # a damaged record ends the file, as for a file still being written
        acc.FirstEventTimestamp()  # raises ValueError when the file held no readable event
    except ValueError:
        raise SourceError(f"{path}: no readable TensorBoard events (not an event file, or damaged)") from None
    except Exception as exc:  # the record reader's own errors for unreadable files
        raise SourceError(f"{path}: not a readable event file ({exc.__class__.__name__})") from None
    out = {}
    for tag in acc.Tags()["tensors"]:
        meta = acc.SummaryMetadata(tag)
        if meta.plugin_data.plugin_name != "scalars":
            continue  # histograms, images, text, hparams …
        events = acc.Tensors(tag)
        steps = np.fromiter((e.step for e in events), np.int64, len(events))
        try:
            out[tag] = (steps, _values(events))
        except (ValueError, TypeError, IndexError):
            raise SourceError(f"{path}: tag {tag!r} holds a value that is not a scalar") from None
    return out


def event_files(path: Path) -> dict[str, list[Path]]:
    """Run name (folder relative to ``path``, ``.`` for ``path`` itself) → its event files, oldest first."""
    files = [path] if path.is_file() else [p for p in path.rglob(f"*{EVENT_NAME}*") if p.is_file()]
    runs: dict[str, list[Path]] = {}
    for file in files:
        name = "." if path.is_file() else file.parent.relative_to(path).as_posix()
        runs.setdefault(name, []).append(file)
    return {name: sorted(fs, key=_file_time) for name, fs in sorted(runs.items())}


def _file_time(path: Path) -> tuple[int, str]:
    match = re.search(r"tfevents\.(\d+)", path.name)
    return (int(match.group(1)) if match else 0, path.name)


def read_tensorboard(path: Path) -> Source:
    """One event file (a single run) or a logdir (one run per folder holding event files)."""
    runs_files = event_files(path)
    if not runs_files:
        raise SourceError(f"{path}: no TensorBoard event files (*tfevents*) here")
    runs, skipped = [], []
    for name, files in runs_files.items():
        series: dict[str, list[Series]] = {}
        for file in files:  # oldest first: later files' values win on shared steps
            for tag, s in read_event_file(file).items():
                series.setdefault(tag, []).append(s)
        if not series:
            skipped.append({"run": name, "reason": "no scalar summaries"})
            continue
        merged = {tag: (np.concatenate([s for s, _ in parts]), np.concatenate([v for _, v in parts]))
                  for tag, parts in series.items()}
        folder = files[0].parent
        config, used = sidecar_configs(folder)
        runs.append(RawRun(name=name, series=merged, step_field="event step", config=config,
                           config_sources=tuple(used),
                           extra={"event_files": [f.name for f in files]}))
    if not runs:
        raise SourceError(f"{path}: event files hold no scalar summaries")
    return Source(path, "tensorboard", runs, multi=path.is_dir(), skipped=skipped)
