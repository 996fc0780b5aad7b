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

from grokscope.analysis.measures.fourier import embedding_spectrum, gini, key_frequencies_top_norm
from grokscope.errors import ConfigError, StoreError
from grokscope.store.reader import RunStore

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
        raise StoreError(f"Fourier measures are for modular-arithmetic runs (a basis over Z_p); {store.path} "
                             f"is a {task!r} run: use grokscope analyze or dynamics")
    roles = store.attrs.get("model", {}).get("param_roles", {})
    name = options.param or roles.get("embedding")
    if not name:
        raise StoreError(f"{store.path} names no embedding parameter; pass --param")
    if name not in store.param_names():
        raise ConfigError(f"{store.path} has no checkpointed parameter {name!r} "
                             f"(it has: {', '.join(store.param_names()) or 'none'})")
    if options.p is not None and options.p < 2:
        raise ConfigError(f"--p must be a modulus of at least 2, got {options.p}")
    recorded = store.config.get("p")
    if options.p is not None and recorded and options.p != recorded:  # --p is for runs that record none
        raise ConfigError(f"--p {options.p} contradicts {store.path}'s own p = {recorded}; drop --p")
    p = options.p or recorded
    if not p:
        raise StoreError(f"{store.path} records no modulus p; pass --p")
    orientation = options.orientation or (roles.get("embedding_orientation") if name == roles.get("embedding")
                                          else None) or "auto"
    if orientation not in ORIENTATIONS:
        raise ConfigError(f"unknown orientation {orientation!r}; choose from {', '.join(ORIENTATIONS)}")
    return name, int(p), orientation


def _spectrum(store: RunStore, name: str, p: int, orientation: str) -> np.ndarray:
    """The spectrum of parameter ``name`` at every checkpoint ``(ckpt, n_freq + 1)``; weights must be finite."""
    weights = store.read_param(name)
    bad = ~np.isfinite(weights.reshape(len(weights), -1)).all(axis=1)  # (ckpt,)
    if bad.any():
        raise StoreError(f"{store.path}: parameter {name!r} holds non-finite values at checkpoint step "
                         f"{store.checkpoint_steps()[bad][0]} (a diverged run?); Fourier measures need finite "
                         "weights")
    try:
        return embedding_spectrum(weights, p, orientation)
    except ValueError as exc:
        raise ConfigError(f"parameter {name!r}: {exc}") from None


def _keys(spectrum: np.ndarray, top_k: int | None) -> np.ndarray:
    try:
        return key_frequencies_top_norm(spectrum, k=top_k)
    except ValueError as exc:
        raise ConfigError(f"top_k: {exc}") from None


def weight_measures(store: RunStore, options: FourierOptions = FourierOptions()) -> tuple[dict, dict]:
    """``(summary, arrays)``: spectra over checkpoints, Gini, and key frequencies at the last checkpoint.

    Examples
    --------
    >>> summary, arrays = weight_measures(RunStore("runs/demo.zarr"))  # doctest: +SKIP
    >>> summary["key_frequencies"], summary["gini"]                    # doctest: +SKIP
    """
    if store.n_ckpts == 0:
        raise StoreError(f"{store.path} has no committed checkpoints")
    name, p, orientation = _resolve(store, options)
    steps = store.checkpoint_steps()
    spectrum = _spectrum(store, name, p, orientation)  # (ckpt, n_freq + 1)
    sparsity = gini(spectrum[:, 1:], axis=-1)  # (ckpt,)
    keys = _keys(spectrum[-1], options.top_k)
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
        u = _spectrum(store, unembed, p, "vocab_first")
        arrays["unembedding_spectrum"] = (("ckpt", "freq"), u)
        summary["unembedding_key_frequencies"] = [int(k) for k in _keys(u[-1], options.top_k)]
    return summary, arrays
