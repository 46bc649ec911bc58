"""``trainlog run -- CMD``: run a command as a captured run."""

from __future__ import annotations

import argparse
import os
import sys

from trainlog.cli.common import (
    EXIT_NOT_STARTED,
    EXIT_USAGE,
    CliError,
    connect,
    load_settings,
    tag,
)

# typing.TYPE_CHECKING without importing typing: `trainlog --help` loads only what it shows.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import uuid
    from typing import Any

    from trainlog.cli.common import Subparsers
    from trainlog.runner.service import Runner
    from trainlog.settings import Settings


def add_parser(commands: Subparsers) -> None:
    run = commands.add_parser("run", help="run a command and capture its output as a run")
    run.add_argument("--config", help="a label to record as the run's config")
    run.add_argument("--name", help="a name for the run, shown in lists and searched by -q")
    run.add_argument(
        "--tag",
        type=tag,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a tag to record on the run (repeatable)",
    )
    run.add_argument(
        "--pty",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run CMD under a pseudo-terminal (default: TRAINLOG_PTY, on) or a pipe",
    )
    run.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="NAME=REGEX",
        help="extract metric NAME from each line REGEX matches (its one capture group is the "
        "value), on top of the default rules; repeatable",
    )
    run.add_argument(
        "--no-default-metrics",
        action="store_true",
        help="extract only the --metric patterns (and TRAINLOG_METRIC_PATTERNS)",
    )
    run.add_argument(
        "--server",
        help="send the run to this trainlog server over HTTP instead of writing the database "
        "(default: TRAINLOG_SERVER)",
    )
    run.add_argument(
        "--token",
        help="with --server: its API or ingest token (default: TRAINLOG_INGEST_TOKEN, then "
        "TRAINLOG_API_TOKEN; prefer those: arguments are visible to every user of the machine)",
    )
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    run.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from trainlog import provenance, runs
    from trainlog.metrics.follower import fork_follower
    from trainlog.models import RunSource
    from trainlog.runner.service import Runner
    from trainlog.runner.sink import DatabaseSink

    settings = load_settings()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise CliError("nothing to run; usage: trainlog run -- COMMAND [ARGS...]", EXIT_USAGE)
    if args.name is not None and len(args.name) > 255:
        raise CliError("--name is at most 255 characters", EXIT_USAGE)
    if args.pty is not None:
        settings = settings.model_copy(update={"pty": args.pty})
    if args.no_default_metrics:
        settings = settings.model_copy(update={"metric_defaults": False})
    try:
        metric_rules = settings.metric_rules(args.metric)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    server = args.server or settings.server
    if server:
        return _run_remote(server, args, command, settings)
    # Forked first: before this process has a database connection or a thread.
    follower = fork_follower(settings) if settings.metrics else None
    db = connect(settings.database_url, wait=settings.start_timeout)
    origin = provenance.gather()
    with db.write() as session:
        run = runs.create(
            session,
            command,
            args.config,
            RunSource.CLI,
            name=args.name,
            tags=dict(args.tag),
            provenance=origin,
        )
    _announce(run.id)
    runner = Runner(
        DatabaseSink(db, run.id, follower),
        settings,
        echo=sys.stdout.buffer,
        metric_rules=metric_rules,
    )
    returncode = _execute(runner)
    db.dispose()
    return _exit_code(returncode)


def _run_remote(
    server: str, args: argparse.Namespace, command: list[str], settings: Settings
) -> int:
    """The run registered on ``server`` and written through it: no database here."""
    from trainlog import provenance
    from trainlog.runner.remote import HttpSink, RegistrationFailed, register
    from trainlog.runner.retry import Refused
    from trainlog.runner.service import Runner

    token = args.token or settings.ingest_token or settings.api_token
    # trainlog's secrets are this process's alone: the child inherits its environment.
    for name in ("TRAINLOG_API_TOKEN", "TRAINLOG_INGEST_TOKEN", "TRAINLOG_SERVER"):
        os.environ.pop(name, None)
    try:
        origin = provenance.gather()
        registration = register(
            server,
            token,
            command,
            args.config,
            name=args.name,
            tags=dict(args.tag),
            host=origin.host,
            user=origin.user,
            cwd=origin.cwd,
            git=origin.git,
        )
    except RegistrationFailed as exc:
        raise CliError(str(exc)) from None
    _announce(registration.run_id)
    if registration.max_log_bytes < settings.max_log_bytes:
        settings = settings.model_copy(update={"max_log_bytes": registration.max_log_bytes})
    sink = HttpSink(server, registration, command)
    try:
        return _exit_code(_execute(Runner(sink, settings, echo=sys.stdout.buffer)))
    except Refused as exc:
        raise CliError(f"{server} refused the run, and retrying cannot help: {exc}") from None
    finally:
        sink.close()


def _announce(run_id: uuid.UUID) -> None:
    from trainlog.reaper import RUN_ID_ENV

    print(f"trainlog: run {run_id}", file=sys.stderr, flush=True)
    # Inherited by the child and its descendants: how a server finds them if this process dies.
    os.environ[RUN_ID_ENV] = str(run_id)


def _execute(runner: Runner[Any]) -> int | None:
    runner.stop_on_signals()
    return runner.execute()


def _exit_code(returncode: int | None) -> int:
    if returncode is None:
        return EXIT_NOT_STARTED
    return 128 - returncode if returncode < 0 else returncode
