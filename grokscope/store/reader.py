"""Reading a run store: every array trimmed to the committed prefix (layout: :mod:`grokscope.store.layout`)."""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from zarr.core.sync import sync as zarr_sync  # runs a coroutine on zarr's own event loop

from grokscope.errors import StoreError

if TYPE_CHECKING:  # xarray loads on first open_run: analyze and --help never pay for it
    import xarray as xr

from grokscope.store.layout import FINISHED, SCHEMA_VERSION, consolidate


def _open_group(path: Path) -> zarr.Group:
    if not (path / "zarr.json").is_file():
        raise StoreError(f"{path} is not a grokscope run store (no zarr.json)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            group = zarr.open_group(str(path), mode="r")
    except Exception as exc:  # zarr raises many types for foreign or damaged metadata
        raise StoreError(f"{path} is not a readable Zarr store ({exc.__class__.__name__})") from None
    meta = group.attrs.get("grokscope")
    if not isinstance(meta, dict) or "schema_version" not in meta:
        raise StoreError(f"{path} is a Zarr store but not a grokscope run store")
    if meta["schema_version"] > SCHEMA_VERSION:
        raise StoreError(f"{path} has store schema {meta['schema_version']}; this grokscope reads up to "
                         f"{SCHEMA_VERSION} (upgrade grokscope)")
    return group


class RunStore:
    """Fast read access to one run store, trimmed to its committed prefix; reads only what is asked for."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._group = _open_group(self.path)
        self.attrs: dict[str, Any] = dict(self._group.attrs)
        committed = self.attrs.get("committed", {})
        self.n_steps: int = int(committed.get("steps", 0))
        self.n_ckpts: int = int(committed.get("ckpts", 0))
        self._array_names: set[str] | None = None

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(".zarr")

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.attrs.get("config", {}))

    @property
    def status(self) -> str:
        return str(self.attrs.get("status", "unknown"))

    def has(self, name: str) -> bool:
        if self._array_names is None:
            with warnings.catch_warnings():  # a live writer's atomic-write temp files show up in listings
                warnings.simplefilter("ignore")
                self._array_names = set(self._group.array_keys())
        return name in self._array_names

    def read(self, name: str) -> np.ndarray:
        """A per-step array (or any root array) trimmed to the committed steps."""
        return self.read_many([name])[name]

    def read_many(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Several root arrays at once, fetched concurrently (long runs: one round of chunk reads)."""

        arrays = [self._group[name]._async_array for name in names]

        async def fetch() -> list[Any]:
            return await asyncio.gather(*(a.getitem(self._selection(a)) for a in arrays))

        return {name: np.asarray(v) for name, v in zip(names, zarr_sync(fetch()))}

    def _selection(self, arr) -> slice | tuple:
        dims = arr.metadata.dimension_names
        return slice(0, self.n_steps) if dims and dims[0] == "step" else slice(None)

    def checkpoint_steps(self) -> np.ndarray:
        return np.asarray(self._group["checkpoints"]["step"][: self.n_ckpts])

    def param_names(self) -> list[str]:
        return sorted(k for k in self._group["checkpoints"].array_keys() if k != "step")

    def read_param(self, name: str, ckpt: int | slice = slice(None)) -> np.ndarray:
        """One parameter at one checkpoint index or a slice of them (committed ones only)."""
        arr = self._group["checkpoints"][name]
        idx = np.arange(self.n_ckpts)[ckpt]
        if np.ndim(idx) == 0:
            return np.asarray(arr[int(idx)])
        if len(idx) == 0:
            return np.empty((0, *arr.shape[1:]), dtype=arr.dtype)
        return np.asarray(arr[idx[0]: idx[-1] + 1])[idx - idx[0]]


def open_run(path: str | os.PathLike) -> xr.Dataset:
    """The per-step metrics of a run as an xarray Dataset (lazy), trimmed to the committed steps.

    Examples
    --------
    >>> ds = open_run("runs/demo.zarr")            # doctest: +SKIP
    >>> ds.test_acc.sel(step=slice(0, 1000)).max()  # doctest: +SKIP
    """
    store = RunStore(path)
    ds = _open_dataset(store.path, group=None)
    return ds.isel(step=slice(0, store.n_steps))


def open_checkpoints(path: str | os.PathLike) -> xr.Dataset:
    """Every saved parameter as ``(ckpt, …)`` arrays with a ``step`` coordinate, trimmed to committed ones."""
    store = RunStore(path)
    ds = _open_dataset(store.path, group="checkpoints")
    return ds.isel(ckpt=slice(0, store.n_ckpts))


def _open_dataset(path: Path, group: str | None) -> xr.Dataset:
    import xarray as xr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no consolidated metadata while a run is live
        warnings.simplefilter("ignore", UserWarning)
        return xr.open_zarr(str(path), group=group, chunks=None, consolidated=None)


def write_analysis(path: str | os.PathLike, name: str, arrays: Mapping[str, tuple[Sequence[str], np.ndarray]],
                   attrs: Mapping[str, Any]) -> bool:
    """Save derived results as group ``analysis/<name>`` (replacing an older one); dims named per array.

    Only a finished store (:data:`~grokscope.store.layout.FINISHED`) is written to, so analysis never races a live
    trainer; returns whether it wrote.  Metadata is re-consolidated afterwards so consolidated readers see
    the new group.
    """
    store = RunStore(path)
    if store.status not in FINISHED:
        return False
    root = zarr.open_group(str(store.path), mode="r+")
    parent = root.require_group("analysis")
    if name in parent:
        del parent[name]
    group = parent.create_group(name, attributes=dict(attrs))
    for array_name, (dims, values) in arrays.items():
        values = np.asarray(values)
        dtype = str if values.dtype.kind == "U" else values.dtype
        arr = group.create_array(array_name, shape=values.shape, dtype=dtype,
                                 chunks=values.shape if values.size else (1,) * values.ndim,
                                 dimension_names=list(dims))
        arr[...] = values
    consolidate(store.path)
    return True
