"""``trainlog ls``: runs, newest first."""

from __future__ import annotations

import argparse
import shlex
from datetime import datetime
from typing import TYPE_CHECKING

from trainlog.cli.common import connect, positive_int

if TYPE_CHECKING:
    from trainlog.cli.common import Subparsers
    from trainlog.settings import Settings


def add_parser(commands: Subparsers) -> None:
    ls = commands.add_parser("ls", help="list runs, newest first")
    ls.add_argument("-n", "--limit", type=positive_int, default=50)
    ls.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    from trainlog import runs

    db = connect(settings)
    with db.read() as session:
        views = runs.list_views(session, limit=args.limit)
    # Times in the user's own zone, named in the header.
    started = f"STARTED ({datetime.now().astimezone().tzname()})"
    rows = [("ID", "STATUS", "EXIT", "SIZE", started, "DURATION", "CONFIG/COMMAND")]
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
    return "" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _duration(started: datetime | None, finished: datetime | None) -> str:
    from trainlog.models import utcnow

    if started is None:
        return ""
    seconds = int(((finished or utcnow()) - started).total_seconds())
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
