"""The SSE response: one viewer's events, sent with limits a long-lived stream needs.

- **Send timeout.** A client that stops reading (a stuck proxy, a suspended laptop) makes a
  send wait once the connection's write buffer is full; after ``send_timeout`` the stream is
  dropped, so such a client holds at most one buffer and one event, and never a task forever.
  Other viewers are never held up: every stream waits on its own.
- **Database outages.** If reading the store fails mid-stream the viewer gets one
  ``reconnecting`` event and the stream stays open, retrying with backoff from the last offset
  it sent; when the store answers again the events simply continue (no gap, no duplicate).
- **Graceful shutdown.** When the server is told to stop, open streams end cleanly (with a
  ``retry`` hint) instead of being cut; browsers reconnect with Last-Event-ID on their own.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping

import anyio
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from trainlog import sse
from trainlog.stream import reconnecting_event

log = logging.getLogger(__name__)

OpenEvents = Callable[[int], AsyncIterator[bytes]]

RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)
# How soon a browser should come back after a shutdown closed its stream.
RETRY_AFTER_SHUTDOWN_MS = 1000

_LOG_EVENT_PREFIX = b"event: log\nid: "
_DONE_EVENT_PREFIX = b"event: done\n"

_draining = threading.Event()
# Every open stream's cancel scope, with its event loop, so a shutdown can end them all at
# once without each stream polling a flag.
_open_streams: dict[anyio.CancelScope, asyncio.AbstractEventLoop] = {}


def begin_draining() -> None:
    """The server is shutting down: every open stream ends at its next chance."""
    _draining.set()
    for scope, loop in list(_open_streams.items()):
        loop.call_soon_threadsafe(scope.cancel)


def event_offset(frame: bytes) -> int | None:
    """The offset a ``log`` event ends at (its id), or None for any other frame."""
    if not frame.startswith(_LOG_EVENT_PREFIX):
        return None
    end = frame.index(b"\n", len(_LOG_EVENT_PREFIX))
    return int(frame[len(_LOG_EVENT_PREFIX) : end])


class _ClientGone(Exception):
    pass


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        open_events: OpenEvents,
        start: int,
        send_timeout: float,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # No super().__init__(): that would declare a Content-Length for an empty body.
        self.status_code = 200
        self.background = None
        self.init_headers(headers)
        self._open_events = open_events
        self._offset = start
        self._send_timeout = send_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_in_time(message: dict[str, object]) -> None:
            try:
                with anyio.fail_after(self._send_timeout):
                    await send(message)
            except TimeoutError:
                log.info("dropping an SSE client that read nothing for %ss", self._send_timeout)
                raise _ClientGone from None
            except OSError:
                raise _ClientGone from None

        async def body(data: bytes) -> None:
            await send_in_time({"type": "http.response.body", "body": data, "more_body": True})

        # Once a client is gone, nothing more can be said to it; the server closes the socket.
        try:
            await send_in_time(
                {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
            )
            async with anyio.create_task_group() as group:
                group.start_soon(self._until_disconnect, receive, group.cancel_scope)
                _open_streams[group.cancel_scope] = asyncio.get_running_loop()
                try:
                    if not _draining.is_set():
                        await self._pump(body)
                finally:
                    del _open_streams[group.cancel_scope]
                    group.cancel_scope.cancel()
            if _draining.is_set():
                await body(f"retry: {RETRY_AFTER_SHUTDOWN_MS}\n\n".encode())
            await send_in_time({"type": "http.response.body", "body": b"", "more_body": False})
        except _ClientGone:
            return

    async def _pump(self, body: Callable[[bytes], Awaitable[None]]) -> None:
        failures = 0
        while True:
            events = self._open_events(self._offset)
            try:
                async for frame in events:
                    await body(frame)
                    offset = event_offset(frame)
                    if offset is not None:
                        self._offset = offset
                        failures = 0
                    elif frame.startswith(_DONE_EVENT_PREFIX):
                        return
                return
            except SQLAlchemyError as exc:
                if failures == 0:
                    log.warning("stream lost the database (%s); retrying", type(exc).__name__)
                    await body(reconnecting_event(self._offset))
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                # A comment keeps proxies and the browser from timing the stream out meanwhile.
                await body(sse.comment("waiting for the database"))
                await anyio.sleep(delay)
            finally:
                if isinstance(events, AsyncGenerator):
                    await events.aclose()

    @staticmethod
    async def _until_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()
