"""Resume state inside a run store: what a stopped run needs to continue bit for bit.

The trainer saves its state (parameters, optimizer state, the batch-order RNG) with every flush into one of
two slots, ``resume/a`` and ``resume/b``, alternately, and only then advances the commit marker, which names
the slot and the step the state belongs to.  A kill while a slot is half-written leaves the other, complete
slot named by the marker, so the last commit is always resumable.  Arrays are plain numpy: the torch side
(:mod:`grokscope.trainers.state`) decides what goes in.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Mapping
from typing import Any

import numpy as np

from grokscope.errors import StoreError
from grokscope.store.reader import RunStore
from grokscope.store.writer import RunWriter

SLOTS = ("a", "b")


class ResumeSlots:
    """Writes a run's resume state into the slot the commit marker does not name."""

    def __init__(self, writer: RunWriter) -> None:
        self.writer = writer
        self.arrays: dict[str, dict[str, Any]] = {slot: {} for slot in SLOTS}
        self.pending: dict[str, Any] | None = None

    def writes(self, step: int, state: Mapping[str, np.ndarray]) -> list[Awaitable]:
        """Writes of ``state`` (the state at the start of ``step``) into the free slot, as awaitables;
        after they have run, :meth:`mark` puts the slot into the next commit."""
        current = (self.writer.resume or {}).get("slot")
        slot = SLOTS[1] if current == SLOTS[0] else SLOTS[0]
        group = self.writer.root.require_group("resume").require_group(slot)
        writes = []
        for name, value in state.items():
            value = np.asarray(value).reshape(np.shape(value) or (1,))
            arr = self.arrays[slot].get(name)
            if arr is None or arr.shape != value.shape:
                arr = group.create_array(name, shape=value.shape, dtype=value.dtype, chunks=value.shape,
                                         overwrite=True)
                self.arrays[slot][name] = arr
            writes.append(arr._async_array.setitem(Ellipsis, value))
        self.pending = {"slot": slot, "step": int(step)}
        return writes

    def mark(self) -> None:
        """Name the freshly written slot in the writer's next commit."""
        self.writer.resume = self.pending


def load_resume_state(path: str | os.PathLike) -> tuple[int, dict[str, np.ndarray]]:
    """``(step, state)`` from the slot the commit marker names; the run continues at ``step``."""
    store = RunStore(path)
    marker = store.attrs.get("committed", {}).get("resume")
    if not marker:
        raise StoreError(f"{store.path} holds no resume state (written by a grokscope version without resume, "
                         f"imported, or stopped before its first flush)")
    group = store._group["resume"][marker["slot"]]
    return int(marker["step"]), {name: np.asarray(arr[...]) for name, arr in group.arrays()}
