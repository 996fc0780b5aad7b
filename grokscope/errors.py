"""The errors grokscope raises for bad input.  The CLI turns each into one line on stderr and exit code 2."""


class GrokscopeError(ValueError):
    """Input that grokscope cannot use; the message names the problem in one line."""


class ConfigError(GrokscopeError):
    """A configuration that cannot describe a run (bad value, unknown name, impossible size)."""


class StoreError(GrokscopeError):
    """A path that is not a readable grokscope run store (or cannot become one)."""
