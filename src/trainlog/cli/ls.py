"""``trainlog ls``: runs, newest first (the query and the table: listing.py)."""

from __future__ import annotations

import argparse

from trainlog.cli.common import positive_int, tag

# typing.TYPE_CHECKING without importing typing: `trainlog --help` loads only what it shows.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from trainlog.cli.common import Subparsers


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


def handle(args: argparse.Namespace) -> int:
    from trainlog.cli import driver, listing
    from trainlog.cli.common import database_error
    from trainlog.envsettings import database_url

    filters = listing.Filters(args.status, args.config, args.tag, args.query)
    url = database_url()
    db = driver.connect(url)
    try:
        runs = listing.list_runs(db, filters, args.limit, every=args.all)
    except db.error as exc:
        raise database_error(url, exc) from None
    finally:
        db.close()
    listing.print_table(runs)
    return 0
