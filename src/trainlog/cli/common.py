"""What the subcommands share: errors for the user, exit codes, argument types, connecting."""

from __future__ import annotations

import argparse
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trainlog.db import Database
    from trainlog.settings import Settings

# Shell conventions: 127 when the command cannot be started, 128+N when killed by signal N.
EXIT_NOT_STARTED = 127
EXIT_USAGE = 2

# The type of ``commands`` in ``add_parser(commands)`` (argparse names it only privately).
if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


class CliError(Exception):
    """A message for the user and an exit code; never a traceback."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def run_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a run id (a UUID)") from None


def connect(settings: Settings) -> Database:
    from trainlog.db import Database, migrate

    db = Database.connect(settings.database_url)
    migrate(db.engine)
    return db


def tag(text: str) -> tuple[str, str]:
    from trainlog.tags import parse_tag

    try:
        return parse_tag(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
