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
    "RunConfig": "grokscope.config.run", "from_preset": "grokscope.config.presets",
    "ConfigError": "grokscope.errors", "GrokscopeError": "grokscope.errors", "StoreError": "grokscope.errors",
    "Criteria": "grokscope.analysis.measures.onset",
    "RunStore": "grokscope.store.reader", "find_runs": "grokscope.store.runs",
    "open_checkpoints": "grokscope.store.reader",
    "open_run": "grokscope.store.reader",
    "analyze": "grokscope.analysis.runners.summary",
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
    from grokscope.analysis.measures.onset import Criteria as Criteria
    from grokscope.analysis.runners.summary import analyze as analyze
    from grokscope.config.presets import from_preset as from_preset
    from grokscope.config.run import RunConfig as RunConfig
    from grokscope.errors import ConfigError as ConfigError
    from grokscope.errors import GrokscopeError as GrokscopeError
    from grokscope.errors import StoreError as StoreError
    from grokscope.store.reader import RunStore as RunStore
    from grokscope.store.reader import open_checkpoints as open_checkpoints
    from grokscope.store.reader import open_run as open_run
    from grokscope.store.runs import find_runs as find_runs
