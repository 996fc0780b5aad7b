"""The ``grokscope`` command: a thin Typer layer over the library.

Every failure the user can fix (bad flags, bad config, a path that is no run store, a disk error) ends as one
line on stderr, ``grokscope: error: …``, with exit code 2 and no traceback.  Results go to stdout; progress
and messages go to stderr.
"""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from grokscope.errors import GrokscopeError


def fail(message: str, code: int = 2) -> None:
    """Print one line naming the problem on stderr and exit."""
    print(f"grokscope: error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(code)


class _OneLineErrors(TyperGroup):
    """Runs the command group and turns user-fixable errors into one line and exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                                standalone_mode=False, **extra)
        except TyperException as exc:  # usage errors: unknown option, bad value type, missing argument
            fail(exc.format_message())
        except typer.Abort:
            fail("aborted", 130)
        except GrokscopeError as exc:
            fail(str(exc))
        except OSError as exc:  # disk full, permissions, unreadable files
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or exc}")
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="grokscope", cls=_OneLineErrors, no_args_is_help=True, add_completion=False,
    pretty_exceptions_show_locals=False, rich_markup_mode=None,
    help="Train, record and analyse grokking runs and critical data size.",
)

# Each command module registers itself on `app`; one import line per command (keep them sorted).
from grokscope.cli import analyze as _analyze  # noqa: E402
from grokscope.cli import cds as _cds  # noqa: E402
from grokscope.cli import distill as _distill  # noqa: E402
from grokscope.cli import dynamics as _dynamics  # noqa: E402
from grokscope.cli import forecast as _forecast  # noqa: E402
from grokscope.cli import import_ as _import  # noqa: E402
from grokscope.cli import report as _report  # noqa: E402
from grokscope.cli import sweep as _sweep  # noqa: E402
from grokscope.cli import train as _train  # noqa: E402

for _module in (_train, _distill, _sweep, _analyze, _cds, _dynamics, _forecast, _import, _report):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
