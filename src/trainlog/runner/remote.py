"""HttpSink: a runner that writes its run through a trainlog server (``trainlog run --server``).

The node needs no database access: the run is registered with the API or ingest token, and
everything after that uses the run token the server answered, which can write this run and
nothing else. It is kept in this process's memory only: never in an environment variable,
an argument or a log line, so the child cannot see it.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from trainlog import store
from trainlog.ingest import CAPTURE_TIMES_HEADER, ENDS_LOG_HEADER
from trainlog.lineindex import Mark, Times, append_marks, slice_marks
from trainlog.models import RunStatus
from trainlog.runner.compactor import Compactor
from trainlog.runner.retry import Refused, Unavailable
from trainlog.runner.terminal import TerminalSize

if TYPE_CHECKING:
    from trainlog.metrics.patterns import Rules

log = logging.getLogger(__name__)

# A request that has not connected in this long is retried (the server is down or cut off);
# one that has may take longer to answer while a big batch is stored.
TIMEOUT = httpx.Timeout(60.0, connect=5.0)
NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
# Refusals a request may get past later, as it may every 5xx (the server, or a proxy before
# it, restarting, overloaded, its database away): any other is for good.
RETRIED_STATUSES = frozenset({408, 429})


class RegistrationFailed(Exception):
    """The server refused to register the run, or could not be reached."""


@dataclass(frozen=True)
class Patch:
    """An append to send: the bytes from ``offset`` and when they were read."""

    offset: int
    data: bytes
    marks: list[Mark]  # relative to offset, beginning at 0
    # A flood's bytes as zstd frames cut as the store cuts chunks, which the server keeps
    # without compressing them again (see ingest.decode_body); None: sent as they are.
    frames: bytes | None
    # A flood's PATCH, sent as soon as it was prepared (see HttpSink.prepare).
    ahead: Future[httpx.Response] | None


def capture_times_header(marks: list[Mark], start: int, end: int, offset: int) -> str:
    """The marks of bytes [start, end) of an append at ``offset``, as Trainlog-Capture-Times
    (absolute offsets, Unix seconds)."""
    return ",".join(
        f"{offset + start + at}={ms / 1000:.3f}" for at, ms in slice_marks(marks, start, end)
    )


@dataclass(frozen=True)
class Registration:
    run_id: uuid.UUID
    token: str
    max_log_bytes: int
    max_body_bytes: int


def register(
    server: str, token: str | None, command: list[str], config: str | None, **metadata: Any
) -> Registration:
    """Register a run started here on ``server``; its id, run token and the server's limits."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"command": command, "config": config, "clock": datetime.now(UTC).isoformat()}
    try:
        response = httpx.post(
            f"{server.rstrip('/')}/api/runs/ingest",
            json={**body, **metadata},
            headers=headers,
            timeout=TIMEOUT,
        )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise RegistrationFailed(f"cannot reach {server}: {exc}") from None
    if response.status_code != 201:
        raise RegistrationFailed(f"{server} refused the run: {_detail(response)}")
    answer = response.json()
    return Registration(
        uuid.UUID(answer["run"]["id"]),
        answer["token"],
        int(answer["max_log_bytes"]),
        int(answer["max_body_bytes"]),
    )


class HttpSink:
    """The run's writes as requests to the server (see docs/ingest.md for the protocol)."""

    def __init__(self, server: str, registration: Registration, command: list[str]) -> None:
        self.run_id = registration.run_id
        self._server = server
        self._command = command
        self._max_body_bytes = registration.max_body_bytes
        self._client = httpx.Client(
            base_url=f"{server.rstrip('/')}/api/runs/{self.run_id}",
            headers={"Authorization": f"Bearer {registration.token}"},
            timeout=TIMEOUT,
            # A PATCH's headers and body go out as two writes: with Nagle's algorithm the
            # body waits for the server's delayed ACK of the headers (40 ms on Linux), which
            # was most of a quiet line's way from the child to a viewer.
            transport=httpx.HTTPTransport(socket_options=NO_DELAY),
        )
        # A flood's next PATCH goes out while the one before is stored: at most two in
        # flight, as the capture prepares one append ahead at most.
        self._sender = ThreadPoolExecutor(max_workers=2, thread_name_prefix="patch-ahead")
        # Until the server refuses a zstd body (415): then every PATCH goes as it is.
        self._compress = True

    def close(self) -> None:
        # Every PATCH sent ahead was waited for by its append.
        self._sender.shutdown()
        self._client.close()

    def command(self) -> list[str]:
        return self._command

    def mark_running(self, host: str, pid: int, terminal: TerminalSize | None) -> None:
        cols, rows = terminal if terminal is not None else (None, None)
        body = {"host": host, "pid": pid, "term_cols": cols, "term_rows": rows}
        self._request("POST", "/started", json=body)

    def prepare(self, offset: int, data: bytes, times: Times, ends_log: bool) -> Patch:
        # A quiet line goes as it is, at once: compressing it would save nothing worth its
        # time. A flood's append is prepared in the capture's encoder thread while the one
        # before is stored, as a local runner compresses its next append while one commits:
        # compressed here, the server only decompresses it (several times faster) to check
        # and index it.
        marks = append_marks(len(data), times)
        if not (
            self._compress and store.COMPRESS_ON_WRITE_BYTES <= len(data) <= self._max_body_bytes
        ):
            return Patch(offset, data, marks, None, None)
        frames = b"".join(store.compress_pieces(data))
        if len(frames) >= len(data):
            # Output that does not compress: its frames are a little larger than itself and
            # could pass the server's body limit where the bytes do not (413 on every retry).
            return Patch(offset, data, marks, None, None)
        flood = Patch(offset, data, marks, frames, None)
        # And sent now, so the server decodes it while it commits the one before. Offsets
        # keep it exact: arriving before that one is stored, it is refused (416, nothing
        # stored), and append sends it again. With the log-limit mark if it carries the
        # notice: the server stores the two in one transaction.
        ahead = self._sender.submit(self._send_patch, flood, flood.offset, ends_log)
        return dataclasses.replace(flood, ahead=ahead)

    def append(self, prepared: Patch, ends_log: bool) -> int:
        end = prepared.offset + len(prepared.data)
        # Waited for first in any case, so no PATCH is left in flight.
        if self._stored_ahead(prepared) == end:
            return end
        offset = prepared.offset
        while True:
            response = self._send_patch(prepared, offset, ends_log)
            # 416: the server holds a different size; if part of this append is stored
            # already (a replica took it, its answer lost), the rest is sent from there.
            answer = response.json() if response.status_code == 416 else _answer(response)
            stored: int = answer["size"]
            if not offset <= stored <= end:
                # The server holds less than it acknowledged, or disagrees: nothing this
                # runner still has can mend it. Retried (with a warning), never dropped.
                raise Unavailable(f"the server's log ({stored} bytes) does not meet {offset}")
            if stored == end:
                return stored
            offset = stored

    def _stored_ahead(self, prepared: Patch) -> int | None:
        """The log's size the server answered the PATCH sent ahead with, if it took it."""
        if prepared.ahead is None:
            return None
        try:
            response = prepared.ahead.result()
        except Unavailable:
            return None
        try:
            size: int | None = response.json()["size"] if response.is_success else None
        except (ValueError, KeyError, TypeError):
            return None  # not the server's answer (a proxy's page, say): append sends again
        return size

    def _send_patch(self, prepared: Patch, offset: int, ends_log: bool) -> httpx.Response:
        """PATCH the append's bytes from ``offset`` on."""
        # In pieces the server takes (a runner's batch is 4 MiB at most, the server's default
        # limit 8 MiB).
        start = offset - prepared.offset
        piece = prepared.data[start : start + self._max_body_bytes]
        times = capture_times_header(prepared.marks, start, start + len(piece), prepared.offset)
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"bytes {offset}-{offset + len(piece) - 1}/*",
            CAPTURE_TIMES_HEADER: times,
        }
        if ends_log and start + len(piece) == len(prepared.data):
            # On the piece that stores the notice only, so the run is marked with it.
            headers[ENDS_LOG_HEADER] = "1"
        body = piece
        # The frames hold the whole append: once the server holds part of it (a 416), the
        # rest goes as it is.
        if prepared.frames is not None and start == 0 and self._compress:
            body = prepared.frames
            headers["Content-Encoding"] = "zstd"
        response = self._send("PATCH", "/log", content=body, headers=headers)
        if response.status_code == 415 and "Content-Encoding" in headers:
            # A server (or a proxy before it) that takes no zstd body: the output goes as it
            # is, this PATCH's too, rather than not at all.
            if self._compress:
                log.warning("%s takes no compressed output: sending it as it is", self._server)
            self._compress = False
            return self._send_patch(prepared, offset, ends_log)
        return response

    def append_failed(self, exc: Exception, held: int) -> None:
        pass  # the server notes nothing it has not been told; the runner's log says why

    def note_loss(self, message: str) -> None:
        self._request("POST", "/heartbeat", json={"error": message})

    def heartbeat(self) -> bool:
        cancel_requested: bool = self._request("POST", "/heartbeat", json={})["cancel_requested"]
        return cancel_requested

    def finish(
        self, status: RunStatus, exit_code: int | None, error: str | None, size: int
    ) -> None:
        body = {"status": str(status), "exit_code": exit_code, "error": error, "size": size}
        self._request("POST", "/finish", json=body)

    def compactor(self, stored: Callable[[], int]) -> Compactor | None:
        return None  # the server compacts the log once the run has ended

    def follow_metrics(self, rules: Rules) -> None:
        # The server extracts a remote run's metrics on first use once it has ended.
        return None

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        return _answer(self._send(method, path, **kwargs))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(f"{method} {path}: {type(exc).__name__}") from None


def _answer(response: httpx.Response) -> Any:
    """The JSON answer of a request that succeeded. A refusal that may pass (5xx, 429, 408:
    restarting behind a proxy, a database outage) raises Unavailable, retried, with the
    runner's log saying why meanwhile; any other raises Refused: retrying cannot fix a
    request the server does not know (an older one: 404, 405) or says is wrong."""
    if response.is_success:
        return response.json() if response.content else None
    why = (
        f"{response.request.method} {response.request.url.path}: "
        f"{response.status_code} {_detail(response)}"
    )
    if response.status_code >= 500 or response.status_code in RETRIED_STATUSES:
        raise Unavailable(why)
    raise Refused(why)


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
