"""The SSE response: one viewer's events, sent with limits a long-lived stream needs.

- **Send timeout.** A client that stops reading (a stuck proxy, a suspended laptop) makes a
  send wait once the connection's write buffer is full; after ``send_timeout`` the stream is
  dropped, so such a client holds at most one buffer and one event, and never a task forever.
  Other viewers are never held up: every stream waits on its own. Sends have no timer of
  their own (at 1,000 viewers a timer per event is a good part of the server's work); a
  watch per stream looks at the send in progress every few seconds instead.
- **Database outages.** If reading the store fails mid-stream the viewer gets one
  ``reconnecting`` event and the stream stays open, retrying with backoff from the last offset
  it sent; when the store answers again the events simply continue (no gap, no duplicate).
- **Graceful shutdown.** When the server is told to stop, open streams end cleanly (with a
  ``retry`` hint) instead of being cut; browsers reconnect with Last-Event-ID on their own.
- **Several runs on one stream.** ``together`` sends several runs' events on one response
  (browsers allow six connections per host), each run resumed and retried on its own; the
  limits above hold for the response as a whole.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import anyio
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from trainlog import sse
from trainlog.api.schemas import ErrorOut
from trainlog.stream import reconnect_delay, reconnecting_event

log = logging.getLogger(__name__)

OpenEvents = Callable[[int], AsyncIterator[bytes]]
# Sends one frame to the client (waiting while the client's buffer is full).
Body = Callable[[bytes], Awaitable[None]]
# Sends a stream's events through ``body`` until the stream has nothing more to say.
Pump = Callable[[Body], Awaitable[None]]

# Every SSE response's headers: no proxy buffering, and the connection kept open.
STREAM_HEADERS = {"X-Accel-Buffering": "no", "Connection": "keep-alive"}
# A stream route's answers, for the OpenAPI document.
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}},
    404: {"model": ErrorOut},
    422: {"model": ErrorOut},
}
# How soon a browser should come back after a shutdown closed its stream.
RETRY_AFTER_SHUTDOWN_MS = 1000
# How many times per send timeout a stream's watch looks at the send in progress.
SEND_CHECKS_PER_TIMEOUT = 4

_LOG_EVENT_PREFIX = b"event: log\nid: "

_draining = threading.Event()
# Every open stream's cancel scope, with its event loop, so a shutdown can end them all at
# once without each stream polling a flag.
_open_streams: dict[anyio.CancelScope, asyncio.AbstractEventLoop] = {}


# Set in a request's task when its stream ended with a send still waiting: the client read
# nothing and was dropped (or left). The server then reports the response as never completed,
# at error level: true, but done on purpose, and already logged at info (HideDeliberateDrops).
_dropped_on_purpose: ContextVar[bool] = ContextVar("dropped_on_purpose", default=False)
UNCOMPLETED_RESPONSE = "ASGI callable returned without completing response"


class HideDeliberateDrops(logging.Filter):
    """A logging filter for uvicorn's error log: leaves out its "returned without completing
    response" for streams that dropped a client on purpose, and nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            _dropped_on_purpose.get() and record.getMessage().startswith(UNCOMPLETED_RESPONSE)
        )


def begin_draining() -> None:
    """The server is shutting down: every open stream ends at its next chance."""
    _draining.set()
    for scope, loop in list(_open_streams.items()):
        loop.call_soon_threadsafe(scope.cancel)


def event_id(frame: bytes, prefix: bytes = _LOG_EVENT_PREFIX) -> int:
    """The id of an event whose frame starts with ``prefix`` (``event: NAME\nid: ``): for a
    ``log`` event, the offset it ends at."""
    end = frame.index(b"\n", len(prefix))
    return int(frame[len(prefix) : end])


class _ClientGone(Exception):
    pass


class EventStreamResponse(StreamingResponse):
    """A streaming response whose body is sent by ``pump`` (see ``__call__``): a
    StreamingResponse for its headers (no Content-Length), with sends that are watched."""

    media_type = "text/event-stream"

    def __init__(
        self,
        pump: Pump,
        send_timeout: float,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # The body iterator stays empty: ``__call__`` sends what ``pump`` produces instead.
        super().__init__(content=(), headers=headers)
        self._pump = pump
        self._send_timeout = send_timeout
        # When the event being sent began to be sent (None: no send in progress).
        self._sending_since: float | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watched(message: Message) -> None:
            self._sending_since = time.monotonic()
            try:
                await send(message)
            except OSError:
                raise _ClientGone from None
            self._sending_since = None

        async def body(data: bytes) -> None:
            await watched({"type": "http.response.body", "body": data, "more_body": True})

        # Once a client is gone, nothing more can be said to it; the server closes the socket.
        try:
            async with anyio.create_task_group() as group:
                # Either ends the whole stream: the client left, or it stopped reading.
                group.start_soon(self._until_disconnect, receive, group.cancel_scope)
                group.start_soon(self._watch_sends, group.cancel_scope)
                await watched(
                    {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
                )
                with anyio.CancelScope() as events:
                    # A shutdown ends the events, not the stream: the retry hint still goes out.
                    _open_streams[events] = asyncio.get_running_loop()
                    try:
                        if not _draining.is_set():
                            await self._pump(body)
                    finally:
                        del _open_streams[events]
                if _draining.is_set():
                    await body(f"retry: {RETRY_AFTER_SHUTDOWN_MS}\n\n".encode())
                await watched({"type": "http.response.body", "body": b"", "more_body": False})
                group.cancel_scope.cancel()
        except* _ClientGone:
            pass  # raised inside the task group, so it arrives in an exception group
        if self._sending_since is not None:
            _dropped_on_purpose.set(True)

    async def _watch_sends(self, scope: anyio.CancelScope) -> None:
        """End the stream once one send has waited ``send_timeout`` (the client reads nothing)."""
        while True:
            await anyio.sleep(self._send_timeout / SEND_CHECKS_PER_TIMEOUT)
            since = self._sending_since
            if since is not None and time.monotonic() - since >= self._send_timeout:
                log.info("dropping an SSE client that read nothing for %ss", self._send_timeout)
                scope.cancel()
                return

    @staticmethod
    async def _until_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()


def resumable(open_events: OpenEvents, start: int, event: str = "log") -> Pump:
    """One stream's events from ``start``, resumed whenever reading the store fails (after one
    ``reconnecting`` event, with backoff) from the id of the last ``event`` sent: the log's
    byte offset, a metric stream's next seq. The one retry loop of every stream."""
    resume_prefix = f"event: {event}\nid: ".encode()

    async def pump(body: Body) -> None:
        at = start
        failures = 0
        while True:
            events = open_events(at)
            # The last resumable event sent: where to resume from if the database goes away.
            # Its id is read only then, not on every event.
            last: bytes | None = None
            try:
                async for frame in events:
                    await body(frame)
                    if frame.startswith(resume_prefix):
                        last = frame
                        failures = 0
                return  # the events end once everything (and ``done``) is sent
            except SQLAlchemyError as exc:
                if last is not None:
                    at = event_id(last, resume_prefix)
                if failures == 0:
                    log.warning("stream lost the database (%s); retrying", type(exc).__name__)
                    await body(reconnecting_event(at))
                delay = reconnect_delay(failures)
                failures += 1
                # A comment keeps proxies and the browser from timing the stream out meanwhile.
                await body(sse.comment("waiting for the database"))
                await anyio.sleep(delay)
            finally:
                if isinstance(events, AsyncGenerator):
                    await events.aclose()

    return pump


def together(pumps: Sequence[tuple[Pump, Callable[[bytes], bytes]]]) -> Pump:
    """Several streams on one response, each frame passed through its stream's ``tag``; ends
    once every stream has ended.

    Frames are sent one at a time (so the send watch sees one send, and no frame is cut into
    another); each stream waits for its turn with at most one frame in hand.
    """

    async def pump(body: Body) -> None:
        turn = anyio.Lock()

        async def run(one: Pump, tag: Callable[[bytes], bytes]) -> None:
            async def tagged(frame: bytes) -> None:
                async with turn:
                    await body(tag(frame))

            await one(tagged)

        async with anyio.create_task_group() as group:
            for one, tag in pumps:
                group.start_soon(run, one, tag)

    return pump
