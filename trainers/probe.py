"""Run a stored model again: rebuild it from a run store's config and checkpoints, and probe it.

Gives :mod:`grokscope.analysis.runners.spectra` the measures that need the model itself (Nanda et al.): each
MLP neuron's key frequency from its activations over all p² inputs, and the restricted / excluded loss over checkpoints.
Defined for ``a + b mod p`` runs trained by grokscope (the Fourier algorithm is about a + b).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from grokscope.analysis.measures.fourier import (
    cross_entropy,
    key_frequencies_from_neurons,
    neuron_key_frequencies,
    restricted_and_excluded_logits,
)
from grokscope.config.run import RunConfig
from grokscope.data.modular import build_task
from grokscope.errors import GrokscopeError
from grokscope.store.reader import RunStore
from grokscope.trainers.models import build_model

CKPT_BLOCK = 32  # checkpoints read together (one shard of each parameter array)


def _blocks(indices: list[int], size: int) -> list[list[int]]:
    """Consecutive runs of sorted ``indices`` that fall into the same ``size``-aligned block."""
    out: list[list[int]] = []
    for i in indices:
        if out and i // size == out[-1][0] // size:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def load_model(store: RunStore, ckpt: int = -1) -> tuple[torch.nn.Module, RunConfig]:
    """The model of a grokscope-trained store with the weights of checkpoint index ``ckpt`` (CPU, eval)."""
    try:
        cfg = RunConfig.from_dict({**store.config, "device": "cpu"})
    except (TypeError, ValueError) as exc:
        raise GrokscopeError(f"{store.path} holds no grokscope training config ({exc})") from None
    vocab = store.attrs.get("task", {}).get("vocab")
    if vocab is None:
        raise GrokscopeError(f"{store.path} records no task vocabulary; was it trained by grokscope?")
    model = build_model(cfg, len(vocab))
    state = {name: torch.from_numpy(store.read_param(name, ckpt)) for name, _ in model.named_parameters()}
    model.load_state_dict(state, strict=True)
    return model.eval(), cfg


def _forward_with_neurons(model: torch.nn.Module, inputs: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Answer logits ``(N, n_out)`` and the MLP neurons' activations at the answer position
    ``(N, n_neurons)`` (the last block's MLP for a transformer, the first layer for the MLP)."""
    hidden: list[torch.Tensor] = []
    with torch.no_grad():
        logits = model(inputs, hidden)
    neurons = hidden[-1].reshape(len(inputs), -1)  # (N, n_neurons)
    return logits.double().numpy(), neurons.double().numpy()


def model_measures(store: RunStore, *, every: int = 1, key_frequencies: list[int] | None = None,
                   min_frac: float = 0.85) -> tuple[dict[str, Any], dict[str, Any]]:
    """Neuron key frequencies at the last checkpoint; restricted and excluded loss at every ``every``-th
    checkpoint (and the last).  Restricted loss is over all p² pairs, excluded loss over the training set.

    The key frequencies used for restricted/excluded loss are the neurons' (frequencies chosen by neurons
    whose best frequency explains ≥ ``min_frac`` of their variance), or ``key_frequencies`` if given.
    """
    if store.n_ckpts == 0:
        raise GrokscopeError(f"{store.path} has no committed checkpoints")
    cfg = RunConfig.from_dict({**store.config, "device": "cpu"})
    if cfg.task != "modular" or cfg.op != "+":
        raise GrokscopeError("restricted/excluded loss and neuron frequencies are defined for a + b mod p runs")
    task = build_task(cfg)  # all p² pairs, row-major in (a, b)
    p = cfg.p
    inputs = torch.as_tensor(task.tokens if cfg.model == "transformer" else task.operands)
    targets = task.targets
    train_idx = np.asarray(store.read("train_idx"))

    model, _ = load_model(store, store.n_ckpts - 1)
    _, neurons = _forward_with_neurons(model, inputs)
    neuron_freq, neuron_frac = neuron_key_frequencies(neurons.reshape(p, p, -1))  # (n_neurons,) each
    voted = key_frequencies_from_neurons(neuron_freq, neuron_frac, min_frac=min_frac)
    keys = [int(k) for k in (key_frequencies if key_frequencies is not None else voted)]

    ckpts = sorted(set(range(0, store.n_ckpts, every)) | {store.n_ckpts - 1})
    restricted_loss, excluded_loss = [], []
    for block in _blocks(ckpts, CKPT_BLOCK):  # one read per parameter per block of checkpoints
        weights = {name: store.read_param(name, slice(block[0], block[-1] + 1))
                   for name, _ in model.named_parameters()}
        for i in block:
            model.load_state_dict({n: torch.from_numpy(w[i - block[0]]) for n, w in weights.items()})
            logits, _ = _forward_with_neurons(model, inputs)  # (p², n_out)
            restricted, excluded = restricted_and_excluded_logits(logits.reshape(p, p, -1), keys, p)
            restricted_loss.append(cross_entropy(restricted.reshape(p * p, -1), targets))
            excluded_loss.append(cross_entropy(excluded.reshape(p * p, -1)[train_idx], targets[train_idx]))
    steps = store.checkpoint_steps()[ckpts]
    summary = {
        "neuron_key_frequencies": [int(k) for k in voted],
        "neurons_explained": float(np.mean(neuron_frac >= min_frac)),
        "loss_key_frequencies": keys,
        "restricted_loss": float(restricted_loss[-1]), "excluded_loss": float(excluded_loss[-1]),
    }
    arrays = {
        "neuron_key_freq": (("neuron",), neuron_freq), "neuron_frac": (("neuron",), neuron_frac),
        "loss_step": (("loss_ckpt",), steps),
        "restricted_loss": (("loss_ckpt",), np.array(restricted_loss)),
        "excluded_loss": (("loss_ckpt",), np.array(excluded_loss)),
    }
    return summary, arrays
