"""Seed 001's distribution shift, read from a run: test accuracy on the down-sampled subclasses vs the rest.

Runs of the class-hierarchy tasks log ``test_acc_subclass (step, subclass)``; the store's ``task`` attribute
flags which subclasses were down-sampled.  Averaging the two sets per step shows the shift: at f = 0 the
down-sampled subclasses of the equidistant task stay low while the rest generalize.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grokscope.analysis.measures.onset import Criteria, first_step
from grokscope.store.reader import RunStore

METRIC = "test_acc_subclass"


def subclass_curves(store: RunStore) -> dict[str, np.ndarray] | None:
    """``{"step", "downsampled", "rest"}``: per-step mean test accuracy of the down-sampled subclasses and of
    the others (NaN where not evaluated, or where a set is empty); None for runs without subclasses."""
    flags = store.attrs.get("task", {}).get("downsampled")
    if flags is None or not store.has(METRIC):
        return None
    data = store.read_many(["step", METRIC])
    acc, down = data[METRIC], np.asarray(flags, dtype=bool)  # (steps, G), (G,)
    mean = lambda cols: acc[:, cols].mean(1) if cols.any() else np.full(len(acc), np.nan)  # noqa: E731
    return {"step": data["step"], "downsampled": mean(down), "rest": mean(~down)}


def subclass_summary(store: RunStore, criteria: Criteria = Criteria()) -> dict[str, Any]:
    """Final test accuracy of both sets and the step the down-sampled set generalizes (the test accuracy
    threshold of ``criteria`` applied to its curve; None: never).  Empty for runs without subclasses."""
    curves = subclass_curves(store)
    if curves is None:
        return {}
    out: dict[str, Any] = {}
    for name in ("downsampled", "rest"):
        valid = curves[name][~np.isnan(curves[name])]
        out[f"final_test_acc_{name}"] = float(valid[-1]) if len(valid) else None
    out["generalization_step_downsampled"] = first_step(curves["step"], curves["downsampled"], criteria.test_acc)
    return out
