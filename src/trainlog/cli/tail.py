"""``trainlog tail RUN_ID``: a run's log on standard output."""

from __future__ import annotations

import argparse

from trainlog.cli.common import EXIT_USAGE, CliError, connect, load_settings, run_id

# typing.TYPE_CHECKING without importing typing: `trainlog --help` loads only what it shows.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from trainlog.cli.common import Subparsers


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


def handle(args: argparse.Namespace) -> int:
    import sys
    import time
    from collections.abc import Callable
    from functools import partial

    from trainlog import runs
    from trainlog.logread.follow import follow_bytes
    from trainlog.notify import RunWaker
    from trainlog.plaintext import plain_text

    settings = load_settings()
    if args.offset < 0:
        raise CliError("--offset must not be negative", EXIT_USAGE)
    db = connect(settings.database_url)
    with db.read() as session:
        try:
            run = runs.get(session, args.run_id)
        except runs.RunNotFound as exc:
            raise CliError(str(exc)) from None
        rows = run.term_rows or settings.term_rows
    out = sys.stdout.buffer
    # Woken as the server's streams are (see notify); polling stays as the fallback.
    follow = args.follow
    waker = RunWaker(settings.database_url, args.run_id) if follow and settings.wakeups else None
    wait: Callable[[], None] | None = None
    if waker is not None:
        wait = partial(waker.wait, settings.poll_interval)
    elif follow:
        wait = partial(time.sleep, settings.poll_interval)
    try:
        pages = follow_bytes(db, args.run_id, args.offset, wait)
        # Plain, a line is written once it has left the run's screen, when nothing can
        # change it.
        for data in plain_text(pages, rows) if args.plain else pages:
            out.write(data)
            out.flush()
    finally:
        if waker is not None:
            waker.close()
    return 0
