"""The ``trainlog`` command: one module per subcommand, each adding its own arguments.

Only argparse is imported to build the parser; a subcommand's handler imports what it needs
when it runs, so ``trainlog --help`` does not pay for SQLAlchemy, Alembic or FastAPI.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from trainlog.cli import gc, ls, rm, run, serve, tail
from trainlog.cli.common import EXIT_SIGNAL_BASE, CliError

COMMANDS = (serve, run, tail, ls, rm, gc)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        # Each handler loads what it needs, settings included: `ls` reads only the database's
        # URL, without pydantic (see envsettings).
        code: int = args.handler(args)
    except CliError as exc:
        print(f"trainlog: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`trainlog tail ID | head -1`): stop quietly, as cat does. What
        # is still buffered for stdout would fail again at exit; it goes nowhere instead.
        import signal

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_SIGNAL_BASE + signal.SIGPIPE
    except Exception as exc:
        # A database that fails after connecting (an outage mid-read): one line, as above.
        from sqlalchemy.exc import SQLAlchemyError

        from trainlog.cli.common import database_error
        from trainlog.envsettings import database_url

        if not isinstance(exc, SQLAlchemyError):
            raise
        print(f"trainlog: {database_error(database_url(), exc)}", file=sys.stderr)
        return 1
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trainlog", description="Live, lossless training-log streaming."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser
