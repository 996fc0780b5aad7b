"""grokscope: train, record and analyse grokking runs and critical data size.

The analysis layer (this package) never imports torch; training lives in ``grokscope.trainers``.
"""

from grokscope.config import RunConfig, from_preset
from grokscope.errors import ConfigError, GrokscopeError, StoreError
from grokscope.onset import Criteria
from grokscope.store import RunStore, find_runs, open_checkpoints, open_run
from grokscope.summary import analyze

__version__ = "0.1.0"

__all__ = ["ConfigError", "Criteria", "GrokscopeError", "RunConfig", "RunStore", "StoreError", "analyze", "find_runs",
           "from_preset", "open_checkpoints", "open_run"]
