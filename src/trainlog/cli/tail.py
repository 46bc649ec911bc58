"""``trainlog tail RUN_ID``: a run's log on standard output."""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from trainlog.cli.common import EXIT_USAGE, CliError, connect, run_id

if TYPE_CHECKING:
    from trainlog.cli.common import Subparsers
    from trainlog.db import Database
    from trainlog.settings import Settings


def add_parser(commands: Subparsers) -> None:
    tail = commands.add_parser("tail", help="write a run's raw log to standard output")
    tail.add_argument("run_id", type=run_id)
    tail.add_argument("-f", "--follow", action="store_true", help="keep writing until it ends")
    tail.add_argument("--offset", type=int, default=0, help="first byte to write")
    tail.add_argument(
        "--plain",
        action="store_true",
        help="write the text a terminal would show: no colours, redraws collapsed",
    )
    tail.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    import sys

    from trainlog import runs
    from trainlog.plaintext import plain_text

    if args.offset < 0:
        raise CliError("--offset must not be negative", EXIT_USAGE)
    db = connect(settings)
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
    from trainlog import store
    from trainlog.stream import Step, next_step, read_snapshot

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
