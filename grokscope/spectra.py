"""Fourier progress measures of a run store, over every checkpoint (Nanda et al.; modular tasks).

Weight-only measures work on any store with checkpoints, native or imported: the embedding (and
unembedding) spectrum over the p number tokens, the Gini sparsity of the frequency norms, and the top-norm
key frequencies at the last checkpoint.  Measures that need the model run (neuron key frequencies,
restricted and excluded loss) come from :mod:`grokscope.trainers.probe` and are merged in by the CLI;
without torch or a native model they are reported as unavailable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from grokscope.errors import GrokscopeError
from grokscope.fourier import embedding_spectrum, gini, key_frequencies_top_norm
from grokscope.store import RunStore

ORIENTATIONS = ("auto", "vocab_first", "vocab_last")


@dataclass(frozen=True)
class FourierOptions:
    param: str | None = None  # the embedding parameter (default: the store's embedding role)
    p: int | None = None  # the modulus (default: the run's config)
    orientation: str | None = None  # vocab_first | vocab_last | auto (default: the store's role, else auto)
    top_k: int | None = None  # report exactly k key frequencies (default: those explaining 90% of the norm)


def _resolve(store: RunStore, options: FourierOptions) -> tuple[str, int, str]:
    task = store.config.get("task", "modular")
    if task != "modular":
        raise GrokscopeError(f"Fourier measures are for modular-arithmetic runs (a basis over Z_p); {store.path} "
                             f"is a {task!r} run: use grokscope analyze or dynamics")
    roles = store.attrs.get("model", {}).get("param_roles", {})
    name = options.param or roles.get("embedding")
    if not name:
        raise GrokscopeError(f"{store.path} names no embedding parameter; pass --param")
    if name not in store.param_names():
        raise GrokscopeError(f"{store.path} has no checkpointed parameter {name!r} "
                             f"(it has: {', '.join(store.param_names()) or 'none'})")
    p = options.p or store.config.get("p")
    if not p:
        raise GrokscopeError(f"{store.path} records no modulus p; pass --p")
    orientation = options.orientation or (roles.get("embedding_orientation") if name == roles.get("embedding")
                                          else None) or "auto"
    if orientation not in ORIENTATIONS:
        raise GrokscopeError(f"unknown orientation {orientation!r}; choose from {', '.join(ORIENTATIONS)}")
    return name, int(p), orientation


def _spectrum(weights: np.ndarray, p: int, orientation: str, name: str) -> np.ndarray:
    try:
        return embedding_spectrum(weights, p, orientation)  # (ckpt, n_freq + 1)
    except ValueError as exc:
        raise GrokscopeError(f"parameter {name!r}: {exc}") from None


def weight_measures(store: RunStore, options: FourierOptions = FourierOptions()) -> tuple[dict, dict]:
    """``(summary, arrays)``: spectra over checkpoints, Gini, and key frequencies at the last checkpoint.

    Examples
    --------
    >>> summary, arrays = weight_measures(RunStore("runs/demo.zarr"))  # doctest: +SKIP
    >>> summary["key_frequencies"], summary["gini"]                    # doctest: +SKIP
    """
    if store.n_ckpts == 0:
        raise GrokscopeError(f"{store.path} has no committed checkpoints")
    name, p, orientation = _resolve(store, options)
    steps = store.checkpoint_steps()
    spectrum = _spectrum(store.read_param(name), p, orientation, name)  # (ckpt, n_freq + 1)
    sparsity = gini(spectrum[:, 1:], axis=-1)  # (ckpt,)
    try:
        keys = key_frequencies_top_norm(spectrum[-1], k=options.top_k)
    except ValueError as exc:
        raise GrokscopeError(str(exc)) from None
    arrays: dict[str, tuple[tuple[str, ...], np.ndarray]] = {
        "step": (("ckpt",), steps),
        "frequency": (("freq",), np.arange(spectrum.shape[1])),
        "embedding_spectrum": (("ckpt", "freq"), spectrum),
        "gini": (("ckpt",), sparsity),
    }
    summary: dict[str, Any] = {
        "run": store.name, "path": str(store.path), "param": name, "p": p, "orientation": orientation,
        "n_checkpoints": int(len(steps)), "last_checkpoint_step": int(steps[-1]),
        "key_frequencies": [int(k) for k in keys],
        "key_frequency_norms": [float(spectrum[-1, k]) for k in keys],
        "gini": float(sparsity[-1]), "gini_initial": float(sparsity[0]),
    }
    unembed = store.attrs.get("model", {}).get("param_roles", {}).get("unembedding")
    if options.param is None and unembed and unembed != name and unembed in store.param_names():
        u = _spectrum(store.read_param(unembed), p, "vocab_first", unembed)
        arrays["unembedding_spectrum"] = (("ckpt", "freq"), u)
        summary["unembedding_key_frequencies"] = [int(k) for k in key_frequencies_top_norm(u[-1], k=options.top_k)]
    return summary, arrays
