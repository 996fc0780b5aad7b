"""Writing a run store: the atomic build, block writes and the commit marker (layout: :mod:`grokscope.store.layout`)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from zarr.core.sync import sync as zarr_sync  # runs a coroutine on zarr's own event loop

from grokscope.errors import StoreError

if TYPE_CHECKING:  # xarray loads on first open_run: analyze and --help never pay for it
    pass

from grokscope.store.layout import METRIC_CHUNK, SCHEMA_VERSION, ParamSpec, checkpoint_chunking, consolidate
from grokscope.store.reader import RunStore


def run_writes(writes: Sequence[Awaitable]) -> None:
    """Run many block writes (of one or many stores) concurrently on zarr's event loop, and wait for all."""
    if writes:

        async def gather() -> None:
            await asyncio.gather(*writes)

        zarr_sync(gather())



def build_folder(target: Path, tag: str) -> Path:
    """The hidden sibling ``.<name>.<tag>-<pid>`` in which this process builds ``target`` before renaming it."""
    return target.parent / f".{target.name}.{tag}-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) is no liveness probe elsewhere: never delete another's build
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, owned by another user
        return True
    return True


def remove_stale_builds(target: Path, tag: str) -> list[Path]:
    """Delete the build folders ``.<name>.<tag>-<pid>`` of ``target`` left by this process or by a process
    that no longer exists (a writer killed mid-build); a live process's folder is left alone."""
    prefix = f".{target.name}.{tag}-"
    try:
        entries = [e for e in target.parent.iterdir() if e.name.startswith(prefix)]
    except OSError:
        return []
    removed = []
    for entry in entries:
        pid = entry.name[len(prefix):]
        if pid.isdigit() and (int(pid) == os.getpid() or not _pid_alive(int(pid))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


class RunWriter:
    """Creates a run store and fills it block by block; the single writer of that store.

    Parameters
    ----------
    path : the store directory; must not exist (the caller handles ``--overwrite``).
    attrs : root attributes (config, versions, device …); ``grokscope`` and ``committed`` are added.
    n_steps : rows of every per-step array (steps ``0 … n_steps − 1``).
    metrics : per-step arrays: name → extra trailing dims as ``((dim, size), …)`` (``()`` for scalars).
    coords : 1-D coordinate arrays written once: name → values (their dim is their name).
    params : the parameters saved at each checkpoint.
    ckpt_steps : the training step of each checkpoint, ascending.
    data : 1-D int arrays written once (e.g. the exact train/test indices): name → (dim, values).
    step_values : the step of each row, ascending (default ``0 … n_steps − 1``; imported runs keep the
        steps their logger used).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        attrs: Mapping[str, Any],
        n_steps: int,
        metrics: Mapping[str, Sequence[tuple[str, int]]],
        params: Sequence[ParamSpec],
        ckpt_steps: np.ndarray,
        coords: Mapping[str, np.ndarray] | None = None,
        data: Mapping[str, tuple[str, np.ndarray]] | None = None,
        step_values: np.ndarray | None = None,
    ) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise StoreError(f"{self.path} already exists")
        ckpt_steps = np.asarray(ckpt_steps, dtype=np.int64)
        if step_values is not None and len(step_values) != n_steps:
            raise StoreError(f"step_values has {len(step_values)} entries for {n_steps} steps")
        # Built in a hidden sibling and renamed into place: a store appears whole or not at all.
        building = build_folder(self.path, "creating")
        remove_stale_builds(self.path, "creating")  # ours from an earlier try, and those of killed writers
        try:
            self._create(building, attrs, n_steps, metrics, params, ckpt_steps, coords, data, step_values)
            os.rename(building, self.path)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        self._attach()

    @staticmethod
    def _create(building, attrs, n_steps, metrics, params, ckpt_steps, coords, data, step_values) -> None:
        """Every array of the layout, preallocated (NaN fill), in the directory ``building``."""
        root_attrs = {
            **attrs,
            "grokscope": {"schema_version": SCHEMA_VERSION, "kind": "run"},
            "committed": {"steps": 0, "ckpts": 0},
            "status": "running",
        }
        root = zarr.open_group(str(building), mode="w-", zarr_format=3, attributes=root_attrs)
        step = root.create_array("step", shape=(n_steps,), dtype="int64", chunks=(METRIC_CHUNK,),
                                 dimension_names=["step"], attributes={"units": "optimizer steps"})
        step[:] = np.arange(n_steps) if step_values is None else np.asarray(step_values, dtype=np.int64)
        for name, values in (coords or {}).items():
            values = np.asarray(values)
            dtype = str if values.dtype.kind == "U" else values.dtype  # variable-length strings: a v3 dtype
            arr = root.create_array(name, shape=values.shape, dtype=dtype, chunks=values.shape,
                                    dimension_names=[name])
            arr[:] = values
        for name, (dim, values) in (data or {}).items():
            values = np.asarray(values)
            arr = root.create_array(name, shape=values.shape, dtype=values.dtype,
                                    chunks=(max(1, len(values)),), dimension_names=[dim])
            arr[:] = values
        for name, extra in metrics.items():
            shape = (n_steps, *(size for _, size in extra))
            rows = max(1024, METRIC_CHUNK // max(1, int(np.prod(shape[1:]))))  # chunks of ≤ ~128 KiB raw
            root.create_array(
                name, shape=shape, dtype="float64", chunks=(rows, *shape[1:]), fill_value=np.nan,
                dimension_names=["step", *(dim for dim, _ in extra)])
        ckpt = root.create_group("checkpoints", attributes={"description": "parameters at checkpoints"})
        n_ckpt = len(ckpt_steps)
        ckpt_step = ckpt.create_array("step", shape=(n_ckpt,), dtype="int64", chunks=(max(1, n_ckpt),),
                                      dimension_names=["ckpt"], attributes={"units": "optimizer steps"})
        ckpt_step[:] = ckpt_steps
        for spec in params:
            per_chunk, per_shard = checkpoint_chunking(n_ckpt, spec.shape)
            ckpt.create_array(
                spec.name, shape=(n_ckpt, *spec.shape), dtype="float32", chunks=(per_chunk, *spec.shape),
                shards=None if per_shard is None else (per_shard, *spec.shape), fill_value=np.nan,
                dimension_names=["ckpt", *spec.dims], attributes={"coordinates": "step"})

    @classmethod
    def reopen(cls, path: str | os.PathLike) -> RunWriter:
        """The writer of an existing store, positioned at its commit marker (to resume a run)."""
        writer = cls.__new__(cls)
        writer.path = Path(path)
        RunStore(writer.path)  # refuses anything that is not a readable grokscope store
        writer._attach()
        return writer

    def _attach(self) -> None:
        self.root = zarr.open_group(str(self.path), mode="r+")
        ckpt = self.root["checkpoints"]
        self.ckpt_steps = np.asarray(ckpt["step"][...])
        self.metrics = {name: arr for name, arr in self.root.arrays()
                        if name != "step" and (arr.metadata.dimension_names or ("",))[0] == "step"}
        self.params = {name: arr for name, arr in ckpt.arrays() if name != "step"}
        committed = self.root.attrs.get("committed", {})
        self.steps_written = int(committed.get("steps", 0))
        self.ckpts_written = int(committed.get("ckpts", 0))
        self.resume: dict[str, Any] | None = committed.get("resume")

    def metric_writes(self, start: int, block: Mapping[str, np.ndarray]) -> list[Awaitable]:
        """Writes of rows ``start : start + len`` of each named per-step array (not yet committed), as
        awaitables: run them with :func:`run_writes`, together with other stores' writes."""
        self.steps_written = max(self.steps_written, start + len(next(iter(block.values()))))
        return [self.metrics[name]._async_array.setitem(slice(start, start + len(v)), np.asarray(v))
                for name, v in block.items()]

    def checkpoint_writes(self, start: int, block: Mapping[str, np.ndarray]) -> list[Awaitable]:
        """Writes of checkpoints ``start : start + k`` of each parameter (name → ``(k, *shape)``), as
        awaitables (not yet committed)."""
        self.ckpts_written = max(self.ckpts_written, start + len(next(iter(block.values()))))
        return [self.params[name]._async_array.setitem(slice(start, start + len(v)), np.asarray(v))
                for name, v in block.items()]

    def commit_write(self) -> Awaitable:
        """The commit (an atomic rewrite of the root metadata), as an awaitable: run it only after the
        writes it covers have finished."""
        return self.root._async_group.update_attributes({"committed": self._marker()})

    def _marker(self) -> dict[str, Any]:
        marker: dict[str, Any] = {"steps": self.steps_written, "ckpts": self.ckpts_written}
        if self.resume is not None:
            marker["resume"] = self.resume
        return marker

    def write_metrics(self, start: int, block: Mapping[str, np.ndarray]) -> None:
        """Write rows ``start : start + len`` of each named per-step array (not yet committed)."""
        run_writes(self.metric_writes(start, block))

    def write_checkpoints(self, start: int, block: Mapping[str, np.ndarray]) -> None:
        """Write checkpoints ``start : start + k`` of each parameter: name → ``(k, *shape)`` (not committed)."""
        run_writes(self.checkpoint_writes(start, block))

    def commit(self) -> None:
        """Make everything written so far visible to readers."""
        run_writes([self.commit_write()])

    def finalize(self, status: str = "complete", **attrs: Any) -> None:
        """Commit, record the final status (and any summary attrs) and consolidate metadata once."""
        self.root.attrs.update({"committed": self._marker(), "status": status, **attrs})
        consolidate(self.path)

