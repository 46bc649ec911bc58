"""What the subcommands share: errors for the user, exit codes, argument types, connecting."""

from __future__ import annotations

import argparse

# typing.TYPE_CHECKING without importing typing: `trainlog --help` loads only what it shows.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import uuid

    from trainlog.db import Database
    from trainlog.settings import Settings

# Shell conventions: 127 when the command cannot be started, 128+N when killed by signal N.
EXIT_NOT_STARTED = 127
EXIT_SIGNAL_BASE = 128
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
    import uuid

    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a run id (a UUID)") from None


def positive_int(text: str) -> int:
    from trainlog.offsets import parse_decimal

    value = parse_decimal(text)
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def load_settings() -> Settings:
    """Every setting, checked; a bad one is a usage error naming it, never a traceback."""
    from pydantic import ValidationError

    from trainlog.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        raise CliError(f"bad configuration: {exc}", EXIT_USAGE) from None


def connect(database_url: str, wait: float | None = None) -> Database:
    """The database, its schema brought up to date; a CliError when it cannot be reached.

    With ``wait`` (seconds), it is tried again (with the runner's backoff) for up to that long
    first: a sweep's runs may start while the database does, or while they migrate it.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from trainlog.db import Database, migrate
    from trainlog.runner.retry import until_done

    try:
        db = Database.connect(database_url)
        until_done(lambda: migrate(db.engine), "reaching the database", give_up_after=wait or 0)
    except (SQLAlchemyError, OSError) as exc:
        waited = "" if wait is None else f" (gave up after {wait:g} s)"
        raise database_error(database_url, exc, waited) from None
    return db


def database_error(database_url: str, exc: Exception, note: str = "") -> CliError:
    """One line saying which database failed and why: never its password, never a traceback.

    ``exc`` is SQLAlchemy's error or the driver's own (``trainlog ls`` may use the driver alone).
    """
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError

    try:
        where = make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        where = "TRAINLOG_DATABASE_URL (not a database URL)"
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return CliError(f"cannot use the database at {where}{note}: {reason}")


def tag(text: str) -> tuple[str, str]:
    from trainlog.tags import parse_tag

    try:
        return parse_tag(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
