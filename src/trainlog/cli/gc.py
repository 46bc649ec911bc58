"""``trainlog gc --older-than DURATION``: delete finished runs created before then."""

from __future__ import annotations

import argparse

from trainlog.cli.common import EXIT_USAGE, CliError, connect, load_settings

# typing.TYPE_CHECKING without importing typing: `trainlog --help` loads only what it shows.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from trainlog.cli.common import Subparsers
    from trainlog.retention import Doomed


def add_parser(commands: Subparsers) -> None:
    gc = commands.add_parser(
        "gc", help="delete finished runs older than a duration (never an active one)"
    )
    gc.add_argument(
        "--older-than", required=True, metavar="DURATION", help="like 30d, 12h, 90m, 2w"
    )
    gc.add_argument(
        "--status",
        action="append",
        default=[],
        choices=["succeeded", "failed", "cancelled", "lost"],
        help="only runs that ended so (repeatable; default: every finished run)",
    )
    gc.add_argument("--dry-run", action="store_true", help="print what would go; delete nothing")
    gc.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from trainlog.models import RunStatus, utcnow
    from trainlog.retention import collect, parse_duration, select_expired

    settings = load_settings()
    try:
        age = parse_duration(args.older_than)
    except ValueError as exc:
        raise CliError(f"--older-than: {exc}", EXIT_USAGE) from None
    before = utcnow() - age
    statuses = [RunStatus(s) for s in args.status]
    db = connect(settings.database_url)
    if args.dry_run:
        doomed = select_expired(db, before, statuses)
        for run in doomed:
            print(f"would delete {_line(run)}")
        print(f"{len(doomed)} runs would be deleted (dry run)")
    else:
        count = 0
        for run in collect(db, before, statuses):
            print(f"deleted {_line(run)}", flush=True)
            count += 1
        print(f"{count} runs deleted")
    db.dispose()
    return 0


def _line(run: Doomed) -> str:
    created = run.created_at.strftime("%Y-%m-%d %H:%M:%SZ")
    return f"{run.run_id}  {run.status:<9}  {created}  {run.label[:60]}"
