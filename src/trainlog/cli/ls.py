"""``trainlog ls``: runs, newest first."""

from __future__ import annotations

import argparse
import shlex
from datetime import datetime
from typing import TYPE_CHECKING

from trainlog.cli.common import connect, positive_int, tag

if TYPE_CHECKING:
    from trainlog.cli.common import Subparsers
    from trainlog.settings import Settings


def add_parser(commands: Subparsers) -> None:
    ls = commands.add_parser("ls", help="list runs, newest first")
    ls.add_argument("-n", "--limit", type=positive_int, default=50)
    ls.add_argument(
        "--status",
        action="append",
        default=[],
        choices=["queued", "running", "succeeded", "failed", "cancelled", "lost"],
        help="only runs with this status (repeatable: any of them)",
    )
    ls.add_argument("--config", help="only runs of this config")
    ls.add_argument(
        "--tag", type=tag, action="append", default=[], metavar="KEY=VALUE", help="repeatable"
    )
    ls.add_argument("-q", "--query", help="text in the name, config or command (any case)")
    ls.add_argument("--all", action="store_true", help="every match, not only the first --limit")
    ls.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    from trainlog import runs
    from trainlog.models import RunStatus

    filters = runs.RunFilter(
        statuses=tuple(RunStatus(s) for s in args.status),
        config=args.config,
        tags=tuple(args.tag),
        q=args.query,
    )
    db = connect(settings)
    views: list[runs.RunView] = []
    after: runs.Cursor | None = None
    # With --all, page by page (500 at a time), so a long history never sits in one query.
    while True:
        with db.read() as session:
            page = runs.page(session, filters, 500 if args.all else args.limit, after)
        views += page.views
        after = page.next_cursor
        if not args.all or after is None:
            break
    # Times in the user's own zone, named in the header.
    started = f"STARTED ({datetime.now().astimezone().tzname()})"
    rows = [("ID", "STATUS", "EXIT", "SIZE", started, "DURATION", "NAME", "CONFIG/COMMAND")]
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
                (run.name or "").replace("\n", "\\n")[:40],
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
    return "" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _duration(started: datetime | None, finished: datetime | None) -> str:
    from trainlog.models import utcnow

    if started is None:
        return ""
    seconds = int(((finished or utcnow()) - started).total_seconds())
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
