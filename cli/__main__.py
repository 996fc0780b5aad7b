"""``python -m grokscope.cli …`` runs the grokscope command (same as the ``grokscope`` script)."""

from grokscope.cli.main import main

main()
