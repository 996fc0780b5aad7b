"""Running a sweep: groups of runs submitted to an executor (a local process pool or a Dask cluster).

The coordinator (:func:`execute_sweep`) writes the sweep index and submits one task per group; a task
(:func:`run_group`) trains its runs — as one stacked model when they share a shape, else one by one — and
writes only its own run stores.  Any ``concurrent.futures.Executor`` works: ``ProcessPoolExecutor`` here,
``distributed.Client.get_executor()`` on a Dask cluster (local, or Slurm through dask-jobqueue).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from grokscope.config.run import RunConfig
from grokscope.store.layout import FINISHED
from grokscope.store.reader import RunStore
from grokscope.store.runs import is_run_store
from grokscope.sweeps.grid import MAX_PADDING, Sweep, groups
from grokscope.trainers.loop import EarlyStop


def run_group(configs: list[dict[str, Any]], outs: list[str], threads: int | None = None,
              early_stop: EarlyStop | None = None) -> list[dict[str, Any]]:
    """Train one group of runs (a worker task).  Returns one ``{store, status[, error]}`` per run.

    Finished stores (:data:`~grokscope.store.layout.FINISHED`: complete, diverged, stopped early) are kept; stores left
    incomplete by a stopped sweep are removed and trained again.  Each run's status is read from its own
    store afterwards, so a failure (of the stacked group, or of one run trained alone) marks only the runs it
    left unfinished as failed.
    """
    from grokscope.trainers.batched import train_batched
    from grokscope.trainers.train import train

    if threads:
        torch.set_num_threads(threads)
    todo = []
    for cfg, out in zip(configs, outs):
        path = Path(out)
        if path.exists():
            if is_run_store(path) and RunStore(path).status in FINISHED:
                continue
            shutil.rmtree(path)  # a run stopped mid-way: train it again from the start
        path.parent.mkdir(parents=True, exist_ok=True)
        todo.append((RunConfig.from_dict(cfg), path))
    errors: dict[Path, str] = {}
    if len(todo) > 1 and todo[0][0].optimizer in ("adam", "adamw"):
        try:
            train_batched([c for c, _ in todo], [p for _, p in todo], early_stop=early_stop)
        except Exception as exc:  # report, don't kill the sweep: other groups go on
            errors = {p: f"{type(exc).__name__}: {exc}" for _, p in todo}
    else:
        for cfg, path in todo:
            try:
                train(cfg, path, early_stop=early_stop)
            except Exception as exc:  # this run fails; the group's other runs still train
                errors[path] = f"{type(exc).__name__}: {exc}"
    return [_result(out, errors.get(Path(out))) for out in outs]


def _result(out: str, error: str | None) -> dict[str, Any]:
    """A run's outcome from its own store: its status if finished, else failed (with the error, if any)."""
    path = Path(out)
    status = RunStore(path).status if path.exists() and is_run_store(path) else "missing"
    if status in FINISHED:
        return {"store": out, "status": status}
    return {"store": out, "status": "failed", "error": error or f"the store is {status} after training"}


def local_executor(workers: int) -> cf.Executor:
    """A process pool (spawned workers: safe with torch's thread pools)."""
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def dask_executor(scheduler: str | None, workers: int):
    """An executor on a Dask cluster: the scheduler at ``scheduler``, or a LocalCluster of ``workers``
    single-threaded worker processes.  Returns ``(executor, client)``; close the client when done."""
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
    else:
        client = Client(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                     dashboard_address=None))
    return client.get_executor(), client


def execute_sweep(sweep: Sweep, executor: cf.Executor, *, batch: bool = True, max_batch: int = 64,
                  max_padding: float = MAX_PADDING, workers: int = 1,
                  on_done: Callable[[int, int], None] | None = None,
                  early_stop: EarlyStop | None = None) -> dict[str, Any]:
    """Train every run of ``sweep`` that is not finished (:data:`~grokscope.store.layout.FINISHED`); returns the
    final index.  ``early_stop`` (picklable) ends the runs a forecast advises to stop.

    Runs are stacked in groups of at most ``max_batch`` whose data sizes differ by at most ``max_padding``
    padding (:func:`grokscope.sweeps.grid.groups`).  ``on_done(done, total)`` is called as groups finish
    (the CLI's progress bar).
    """
    sweep.root.mkdir(parents=True, exist_ok=True)
    sweep.write_index()
    pending = {rid: cfg for rid, cfg in sweep.runs.items() if sweep.status(rid) not in FINISHED}
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    futures = {}
    for ids in groups(pending, max_batch if batch else 1, max_padding):
        args = ([pending[rid].to_dict() for rid in ids], [str(sweep.store_path(rid)) for rid in ids], threads,
                early_stop)
        futures[executor.submit(run_group, *args)] = ids
    failures: dict[str, str] = {}
    done = 0
    for future in cf.as_completed(futures):
        for result in future.result():
            if result["status"] == "failed":
                failures[Path(result["store"]).stem] = result["error"]
        done += len(futures[future])
        if on_done:
            on_done(done, len(pending))
    index = sweep.index()
    for rid, error in failures.items():
        index["runs"][rid].update(status="failed", error=error)
    sweep.write_index(index)
    return {**index, "trained": len(pending), "already_complete": len(sweep.runs) - len(pending)}
