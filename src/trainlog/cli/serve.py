"""``trainlog serve``: the API and web UI."""

from __future__ import annotations

import argparse

from trainlog.cli.common import EXIT_USAGE, CliError, connect, load_settings

# typing.TYPE_CHECKING without importing typing: `trainlog --help` loads only what it shows.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import Any

    from trainlog.cli.common import Subparsers


def add_parser(commands: Subparsers) -> None:
    serve = commands.add_parser("serve", help="start the web server and API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=handle)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may well resolve to a public address


def handle(args: argparse.Namespace) -> int:
    import uvicorn

    from trainlog.api.sse_response import begin_draining
    from trainlog.app import create_app

    settings = load_settings()
    if not settings.api_token and not _is_loopback(args.host):
        raise CliError(
            f"refusing to serve on {args.host} without an API token: anyone who can reach it "
            "could start runs and read logs. Set one, e.g.\n"
            "  export TRAINLOG_API_TOKEN=$(python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(32))')\n"
            "and open the web UI once at http://HOST:PORT/?token=<the token>",
            EXIT_USAGE,
        )

    # Reach the database (and bring its schema up to date) before serving: if it cannot be,
    # one line and exit 1, where the app's startup would print a traceback.
    connect(settings.database_url).dispose()

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
    server = Server(config)
    server.run()
    return 0 if server.started else 1  # uvicorn has said why (the port is taken, say)


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, with trainlog's own messages (info and up) in the same format."""
    import copy

    import uvicorn.config

    from trainlog.api.sse_response import HideDeliberateDrops

    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"deliberate_drops": {"()": HideDeliberateDrops}}
    config["loggers"]["uvicorn.error"]["filters"] = ["deliberate_drops"]
    config["loggers"]["trainlog"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
