"""The run store: one Zarr v3 directory per run.  This module alone knows its layout (see docs/store.md).

Writing goes through :class:`RunWriter`: every array is preallocated at its full length (NaN fill), data
arrive in blocks, and the root attribute ``committed`` advances only after the blocks it covers are written.
Readers (:func:`open_run`, :class:`RunStore`) trim every array to ``committed``, so a store that is being
written, or whose writer was killed, reads as a consistent prefix.  Plain ``xarray.open_zarr`` opens any
store too (the NaN tail is visible there; trim with ``ds.attrs["committed"]``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import zarr

if TYPE_CHECKING:  # xarray loads on first open_run: analyze and --help never pay for it
    pass

SCHEMA_VERSION = 1
FINISHED = ("complete", "diverged", "stopped_early")  # statuses no trainer will write to again
METRIC_CHUNK = 16384  # steps per chunk of a per-step scalar (fewer chunks: faster reads of long runs)
CKPT_SHARD = 32  # checkpoints per shard file of each parameter array
CKPT_CHUNK_BYTES = 256 * 1024  # small parameters pack several checkpoints per chunk (fewer, cheaper writes)


def checkpoint_chunking(n_ckpt: int, shape: tuple[int, ...]) -> tuple[int, int | None]:
    """``(checkpoints per chunk, checkpoints per shard or None)`` for one parameter array.

    A chunk holds the largest power of two of checkpoints that fits in ``CKPT_CHUNK_BYTES`` (at most
    ``CKPT_SHARD``), so reading one checkpoint decodes at most that much; chunks of fewer than
    ``CKPT_SHARD`` checkpoints are grouped into shards of ``CKPT_SHARD`` to keep the file count low.
    """
    nbytes = 4 * max(1, int(np.prod(shape)))
    per_chunk = 1
    while per_chunk * 2 <= CKPT_SHARD and per_chunk * 2 * nbytes <= CKPT_CHUNK_BYTES:
        per_chunk *= 2
    per_chunk = min(per_chunk, max(1, n_ckpt))
    if per_chunk >= min(CKPT_SHARD, max(1, n_ckpt)):
        return per_chunk, None
    return per_chunk, CKPT_SHARD


@dataclass(frozen=True)
class ParamSpec:
    """One model parameter saved at every checkpoint: its shape and named dimensions."""

    name: str
    shape: tuple[int, ...]
    dims: tuple[str, ...]



def consolidate(path: Path) -> None:
    with warnings.catch_warnings():  # consolidated metadata is a zarr-python extension in v3: expected
        warnings.simplefilter("ignore", UserWarning)
        zarr.consolidate_metadata(str(path))

