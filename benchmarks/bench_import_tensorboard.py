"""Importing a TensorBoard event file vs merely reading it with TensorBoard's own reader.

Writes one event file of 100k steps × 5 scalar tags with PyTorch's ``SummaryWriter`` (the ``simple_value``
encoding; ~12–20 MB), then times, in this one process:

* ``reader``  — ``plugin_event_accumulator.EventAccumulator`` with every point kept: ``Reload()`` and each
  tag's events fetched (what any script reading the file has to do);
* ``import``  — ``grokscope import FILE --out STORE``: the same reader, plus value extraction, field mapping
  and the block write of the run store.

Prints CPU and wall seconds of both and import / reader (target ≤ ~1.1: the store write must be cheap).
CPU time (this process, all threads) is the figure to compare on a shared machine: wall time there swings
by 2x with the neighbours' load.
Usage: python benchmarks/bench_import_tensorboard.py [--steps 100000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

from typer.testing import CliRunner

from grokscope.cli.main import app

TAGS = ("train/loss", "train/acc", "test/loss", "test/acc", "l2_norm")


def write_events(logdir: Path, steps: int) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(logdir), max_queue=10_000, flush_secs=3600)
    for step in range(steps):
        for j, tag in enumerate(TAGS):
            writer.add_scalar(tag, 1.0 / (1 + step + j), step)
    writer.close()
    (path,) = logdir.glob("*tfevents*")
    return path


def timed(fn, *args) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn(*args)
    return time.process_time() - cpu, time.perf_counter() - wall


def read_all(path: Path) -> None:
    from tensorboard.backend.event_processing import plugin_event_accumulator as pea
    from tensorboard.backend.event_processing import tag_types

    acc = pea.EventAccumulator(str(path), size_guidance={tag_types.TENSORS: 0, tag_types.SCALARS: 0})
    acc.Reload()
    n = sum(len(acc.Tensors(tag)) for tag in acc.Tags()["tensors"])
    assert n == len(TAGS) * STEPS, n


def import_all(path: Path, out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    result = CliRunner().invoke(app, ["import", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.stderr


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1, help="timings per side; the best is reported")
    args = parser.parse_args()
    STEPS = args.steps
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = write_events(Path(tmp) / "logs", args.steps)
        print(f"wrote {path.stat().st_size / 1e6:.1f} MB ({args.steps} steps × {len(TAGS)} tags) "
              f"in {time.perf_counter() - t0:.1f} s on {platform.processor() or platform.machine()}")
        reader, imported = [], []
        for _ in range(args.repeat):  # alternate, so both sides see the same page cache and load
            reader.append(timed(read_all, path))
            imported.append(timed(import_all, path, Path(tmp) / "run.zarr"))
        (r_cpu, r_wall), (i_cpu, i_wall) = min(reader), min(imported)
        print(f"reader  (EventAccumulator, all points): {r_cpu:6.2f} s CPU  {r_wall:6.2f} s wall")
        print(f"import  (grokscope import → run store): {i_cpu:6.2f} s CPU  {i_wall:6.2f} s wall")
        print(f"import / reader: {i_cpu / r_cpu:.3f} (CPU)  {i_wall / r_wall:.3f} (wall)")
