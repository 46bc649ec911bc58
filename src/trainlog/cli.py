"""The ``trainlog`` command: serve, run, tail, ls."""

from __future__ import annotations

import argparse
import copy
import ipaddress
import os
import shlex
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from types import FrameType
from typing import Any

from pydantic import ValidationError

from trainlog import runs, store
from trainlog.db import Database, migrate
from trainlog.models import RunSource, utcnow
from trainlog.plaintext import plain_text
from trainlog.reaper import RUN_ID_ENV
from trainlog.settings import Settings, get_settings
from trainlog.stream import Step, next_step, read_snapshot

# Shell conventions: 127 when the command cannot be started, 128+N when killed by signal N.
EXIT_NOT_STARTED = 127
EXIT_USAGE = 2


class CliError(Exception):
    """A message for the user and an exit code; never a traceback."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"trainlog: bad configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        code: int = args.handler(args, settings)
    except CliError as exc:
        print(f"trainlog: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trainlog", description="Live, lossless training-log streaming."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="start the web server and API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=_serve)

    run = commands.add_parser("run", help="run a command and capture its output as a run")
    run.add_argument("--config", help="a label to record as the run's config")
    run.add_argument(
        "--pty",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run CMD under a pseudo-terminal (default: TRAINLOG_PTY, on) or a pipe",
    )
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    run.set_defaults(handler=_run)

    tail = commands.add_parser("tail", help="write a run's raw log to standard output")
    tail.add_argument("run_id", type=_run_id)
    tail.add_argument("-f", "--follow", action="store_true", help="keep writing until it ends")
    tail.add_argument("--offset", type=int, default=0, help="first byte to write")
    tail.add_argument(
        "--plain",
        action="store_true",
        help="write the text a terminal would show: no colours, redraws collapsed",
    )
    tail.set_defaults(handler=_tail)

    ls = commands.add_parser("ls", help="list runs, newest first")
    ls.add_argument("-n", "--limit", type=int, default=50)
    ls.set_defaults(handler=_ls)
    return parser


def _run_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a run id (a UUID)") from None


def _connect(settings: Settings) -> Database:
    db = Database.connect(settings.database_url)
    migrate(db.engine)
    return db


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may well resolve to a public address


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from trainlog.api.sse_response import begin_draining
    from trainlog.app import create_app

    if not settings.api_token and not _is_loopback(args.host):
        raise CliError(
            f"refusing to serve on {args.host} without an API token: anyone who can reach it "
            "could start runs and read logs. Set one, e.g.\n"
            "  export TRAINLOG_API_TOKEN=$(python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(32))')\n"
            "and open the web UI once at http://HOST:PORT/?token=<the token>",
            EXIT_USAGE,
        )

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Open SSE streams never end on their own: end them cleanly at once, so a restart
            # is quick and browsers reconnect with Last-Event-ID, missing nothing.
            begin_draining()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        create_app(settings),
        host=args.host,
        port=args.port,
        # Streams end within a moment of the drain; whatever has not by then is cut.
        timeout_graceful_shutdown=2,
        log_config=_log_config(),
    )
    Server(config).run()
    return 0


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, with trainlog's own messages (info and up) in the same format."""
    import uvicorn.config

    from trainlog.api.sse_response import HideDeliberateDrops

    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"deliberate_drops": {"()": HideDeliberateDrops}}
    config["loggers"]["uvicorn.error"]["filters"] = ["deliberate_drops"]
    config["loggers"]["trainlog"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from trainlog.runner.service import Runner

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise CliError("nothing to run; usage: trainlog run -- COMMAND [ARGS...]", EXIT_USAGE)
    if args.pty is not None:
        settings = settings.model_copy(update={"pty": args.pty})
    db = _connect(settings)
    with db.write() as session:
        run = runs.create(session, command, args.config, RunSource.CLI)
    print(f"trainlog: run {run.id}", file=sys.stderr, flush=True)
    # Inherited by the child and its descendants: how a server finds them if this process dies.
    os.environ[RUN_ID_ENV] = str(run.id)
    runner = Runner(db, settings, run.id, echo=sys.stdout.buffer)
    runner.stop_on_signals()
    returncode = runner.execute()
    db.dispose()
    if returncode is None:
        return EXIT_NOT_STARTED
    return 128 - returncode if returncode < 0 else returncode


def _tail(args: argparse.Namespace, settings: Settings) -> int:
    if args.offset < 0:
        raise CliError("--offset must not be negative", EXIT_USAGE)
    db = _connect(settings)
    with db.read() as session:
        try:
            run = runs.get(session, args.run_id)
        except runs.RunNotFound as exc:
            raise CliError(str(exc)) from None
        rows = run.term_rows or settings.term_rows
    out = sys.stdout.buffer
    pages = _log_bytes(db, args.run_id, args.offset, args.follow, settings.poll_interval)
    # Plain, a line is written once it has left the run's screen, when nothing can change it.
    for data in plain_text(pages, rows) if args.plain else pages:
        out.write(data)
        out.flush()
    return 0


def _log_bytes(
    db: Database, run_id: uuid.UUID, offset: int, follow: bool, poll_interval: float
) -> Iterator[bytes]:
    while True:
        snapshot = read_snapshot(db, run_id)
        step = next_step(offset, snapshot)
        if step is Step.READ:
            for data in store.iter_bytes(db, run_id, offset, snapshot.size):
                offset += len(data)
                yield data
        elif step is Step.DONE or not follow:
            return
        else:
            time.sleep(poll_interval)


def _ls(args: argparse.Namespace, settings: Settings) -> int:
    db = _connect(settings)
    with db.read() as session:
        views = runs.list_views(session, limit=args.limit)
    rows = [("ID", "STATUS", "EXIT", "SIZE", "STARTED", "DURATION", "CONFIG/COMMAND")]
    for view in views:
        run = view.run
        rows.append(
            (
                str(run.id),
                run.status,
                "" if run.exit_code is None else str(run.exit_code),
                _human_size(view.log_size),
                _short_time(run.started_at),
                _duration(run.started_at, run.finished_at),
                run.config or shlex.join(run.command).replace("\n", "\\n"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1][:60]]))
    return 0


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _short_time(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def _duration(started: datetime | None, finished: datetime | None) -> str:
    if started is None:
        return ""
    seconds = int(((finished or utcnow()) - started).total_seconds())
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
