"""The SSE response when the transport fails under it.

uvicorn's ``send`` returns quietly once a client has gone, so a real server here cannot make a
send fail; other ASGI servers raise OSError. These tests stand in such a send.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from starlette.types import Message

from trainlog.api.sse_response import EventStreamResponse, resumable

LOG_EVENT = b"event: log\nid: 5\ndata: {}\n\n"


async def one_event(_offset: int) -> AsyncIterator[bytes]:
    yield LOG_EVENT


async def receive() -> Message:
    """A client that never disconnects."""
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


@pytest.mark.anyio
@pytest.mark.parametrize("failing_send", [0, 1, 2], ids=["start", "event", "ending"])
async def test_a_send_that_fails_ends_the_stream_without_an_error(failing_send: int) -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        if len(sent) == failing_send:
            raise OSError("connection reset by peer")
        sent.append(message)

    response = EventStreamResponse(resumable(one_event, 0), send_timeout=30)
    with anyio.fail_after(5):
        await response({"type": "http"}, receive, send)  # returns: no exception reaches uvicorn
    assert len(sent) == failing_send


@pytest.mark.anyio
async def test_the_stream_is_announced_as_events_of_unknown_length() -> None:
    """A Content-Length (even 0) would make browsers and proxies end the stream at once."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    response = EventStreamResponse(resumable(one_event, 0), send_timeout=30)
    with anyio.fail_after(5):
        await response({"type": "http"}, receive, send)
    headers = dict(sent[0]["headers"])
    assert headers[b"content-type"].startswith(b"text/event-stream")
    assert b"content-length" not in headers
    assert [m.get("body") for m in sent[1:]] == [LOG_EVENT, b""]
