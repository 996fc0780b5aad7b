"""What a run must save to continue exactly: parameters, optimizer state and the batch-order RNG.

:func:`capture` turns the live training state into numpy arrays for :class:`grokscope.store.resume.ResumeSlots`;
:func:`restore` puts them back.  Parameters and optimizer moments are float32 copies of the tensors, so a
resumed CPU run reproduces an uninterrupted one bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from grokscope.errors import StoreError


def capture(params: Mapping[str, torch.Tensor], optimizer: torch.optim.Optimizer,
            rng_state: torch.Tensor) -> dict[str, np.ndarray]:
    """The state at the start of a step: ``param.<name>``, ``opt.<name>.<key>``, ``rng.batch``."""
    state = {f"param.{name}": p.detach().cpu().numpy().copy() for name, p in params.items()}
    per_param = optimizer.state_dict()["state"]  # index -> {"step", "exp_avg", …}
    for i, name in enumerate(params):
        for key, value in per_param.get(i, {}).items():
            state[f"opt.{name}.{key}"] = torch.as_tensor(value).detach().cpu().numpy().copy()
    state["rng.batch"] = rng_state.numpy().copy()
    return state


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
        entries = {key[len(f"opt.{name}."):]: value for key, value in state.items()
                   if key.startswith(f"opt.{name}.")}
        if entries:
            saved["state"][i] = {key: torch.from_numpy(value.copy()).reshape(() if key == "step" else p.shape)
                                 for key, value in entries.items()}
    optimizer.load_state_dict(saved)
    generator.set_state(torch.from_numpy(state["rng.batch"].copy()))
