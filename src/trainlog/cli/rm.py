"""``trainlog rm RUN_ID...``: delete finished runs and their logs."""

from __future__ import annotations

import argparse
import sys

from trainlog.cli.common import CliError, connect, load_settings, run_id

# typing.TYPE_CHECKING without importing typing: `trainlog --help` loads only what it shows.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from trainlog.cli.common import Subparsers


def add_parser(commands: Subparsers) -> None:
    rm = commands.add_parser("rm", help="delete finished runs, their logs and all derived data")
    rm.add_argument("run_ids", type=run_id, nargs="+", metavar="RUN_ID")
    rm.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from trainlog import runs
    from trainlog.retention import delete_run

    settings = load_settings()
    db = connect(settings.database_url)
    failed = 0
    # Each id on its own: one that cannot go (active, unknown) does not stop the others.
    for target in args.run_ids:
        try:
            delete_run(db, target)
        except (runs.RunNotFound, runs.RunIsActive) as exc:
            print(f"trainlog: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"deleted {target}")
    db.dispose()
    if failed:
        raise CliError(f"{failed} of {len(args.run_ids)} runs not deleted")
    return 0
