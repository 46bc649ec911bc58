"""``trainlog run -- CMD``: run a command as a captured run."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from trainlog.cli.common import EXIT_NOT_STARTED, EXIT_USAGE, CliError, connect, tag

if TYPE_CHECKING:
    from trainlog.cli.common import Subparsers
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
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    run.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    from trainlog import provenance, runs
    from trainlog.models import RunSource
    from trainlog.reaper import RUN_ID_ENV
    from trainlog.runner.service import Runner

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise CliError("nothing to run; usage: trainlog run -- COMMAND [ARGS...]", EXIT_USAGE)
    if args.name is not None and len(args.name) > 255:
        raise CliError("--name is at most 255 characters", EXIT_USAGE)
    if args.pty is not None:
        settings = settings.model_copy(update={"pty": args.pty})
    db = connect(settings, wait=True)
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
