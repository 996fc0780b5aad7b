"""What a run must save to continue exactly: parameters, optimizer state and the batch-order RNG.

:func:`capture` turns one member's live training state into numpy arrays for
:class:`grokscope.store.resume.ResumeSlots`; :func:`restore` puts them back into a module and its torch
optimizer.  Keys: ``param.<name>``, ``opt.<name>.<key>`` (torch's per-parameter state: ``step``, Adam's
``exp_avg``/``exp_avg_sq``, SGD's ``momentum_buffer``) and ``rng.batch``.  Values are float32 copies of the
tensors, so a resumed CPU run reproduces an uninterrupted one bit for bit.  A stacked member's state (its
slice of the stacked parameters and Adam moments) has the same keys, so it resumes alone as well.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from grokscope.errors import StoreError


def _numpy(t: torch.Tensor) -> np.ndarray:
    return torch.as_tensor(t).detach().cpu().numpy().copy()


def capture(params: Mapping[str, torch.Tensor], moments: Mapping[str, Mapping[str, torch.Tensor]],
            rng_state: torch.Tensor) -> dict[str, np.ndarray]:
    """The state at the start of a step: the parameters, each one's optimizer state ``moments[name]`` and the
    batch generator's state."""
    state = {f"param.{name}": _numpy(p) for name, p in params.items()}
    for name, per_param in moments.items():
        state.update({f"opt.{name}.{key}": _numpy(value) for key, value in per_param.items()})
    state["rng.batch"] = rng_state.numpy().copy()
    return state


def torch_moments(params: Mapping[str, torch.Tensor], optimizer: torch.optim.Optimizer) -> dict[str, dict]:
    """A torch optimizer's state per parameter name (empty before its first step)."""
    per_index = optimizer.state_dict()["state"]  # index -> {"step", "exp_avg", …}
    return {name: per_index[i] for i, name in enumerate(params) if i in per_index}


def restore(state: Mapping[str, np.ndarray], params: Mapping[str, torch.Tensor],
            optimizer: torch.optim.Optimizer, generator: torch.Generator) -> None:
    """Load ``state`` (from :func:`capture`) into the parameters, optimizer and batch generator."""
    missing = [f"param.{n}" for n in params if f"param.{n}" not in state]
    if missing:
        raise StoreError(f"the resume state lacks {missing[0]}; it was saved by another model")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(torch.from_numpy(state[f"param.{name}"]).reshape(p.shape))
    saved = optimizer.state_dict()
    for i, (name, p) in enumerate(params.items()):
        entries = moments(state, name)
        if entries:
            saved["state"][i] = {key: torch.from_numpy(value).reshape(() if key == "step" else p.shape)
                                 for key, value in entries.items()}
    optimizer.load_state_dict(saved)
    generator.set_state(torch.from_numpy(state["rng.batch"].copy()))


def moments(state: Mapping[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    """Parameter ``name``'s optimizer state in ``state``: key (``step``, ``exp_avg``, …) → array (a copy)."""
    prefix = f"opt.{name}."
    return {key[len(prefix):]: value.copy() for key, value in state.items() if key.startswith(prefix)}
