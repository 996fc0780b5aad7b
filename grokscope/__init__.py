"""grokscope: train, record and analyse grokking runs and critical data size.

The analysis layer (this package) never imports torch; training lives in ``grokscope.trainers``.  The names
below load on first use (PEP 562), so ``import grokscope.cli`` or ``grokscope --help`` does not pay for
zarr, xarray and scipy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name → the module that defines it
_EXPORTS = {
    "RunConfig": "grokscope.config", "from_preset": "grokscope.config",
    "ConfigError": "grokscope.errors", "GrokscopeError": "grokscope.errors", "StoreError": "grokscope.errors",
    "Criteria": "grokscope.onset",
    "RunStore": "grokscope.store", "find_runs": "grokscope.runs", "open_checkpoints": "grokscope.store",
    "open_run": "grokscope.store",
    "analyze": "grokscope.summary",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'grokscope' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # static checkers see the eager imports (``X as X``: re-exported)
    from grokscope.config import RunConfig as RunConfig, from_preset as from_preset
    from grokscope.errors import ConfigError as ConfigError, GrokscopeError as GrokscopeError, StoreError as StoreError
    from grokscope.onset import Criteria as Criteria
    from grokscope.store import RunStore as RunStore, open_checkpoints as open_checkpoints, open_run as open_run
    from grokscope.runs import find_runs as find_runs
    from grokscope.summary import analyze as analyze
