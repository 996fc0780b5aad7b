"""The grokscope command line (installed as grokscope.cli)."""
