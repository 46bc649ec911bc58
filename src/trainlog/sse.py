"""Server-Sent Events framing (the text/event-stream wire format). Pure, no transport."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def frame(event: str, data: Any, event_id: str | int | None = None) -> bytes:
    """One SSE message: ``event:``, optional ``id:``, one ``data:`` line of JSON, blank line."""
    return frame_json(event, json.dumps(data, separators=(",", ":")).encode(), event_id)


def frame_json(event: str, data: bytes, event_id: str | int | None = None) -> bytes:
    """One SSE message whose ``data`` is JSON encoded already.

    JSON never contains a raw newline, so the payload always fits one data line.
    """
    id_line = "" if event_id is None else f"id: {event_id}\n"
    return b"".join((f"event: {event}\n{id_line}data: ".encode(), data, b"\n\n"))


def comment(text: str = "") -> bytes:
    """A comment line: ignored by EventSource, but it flushes proxies and starts the stream."""
    return f": {text}\n\n".encode()


_DATA_OBJECT = b"\ndata: {"


def tagger(name: str, value: Any) -> Callable[[bytes], bytes]:
    """Adds ``"name": value`` as the first member of a message's JSON data object (a comment
    passes unchanged), so one stream can carry several sources' messages.

    The bytes are spliced: the data (a whole chunk's base64) is neither parsed nor encoded
    again.
    """
    member = json.dumps({name: value}, separators=(",", ":"))[1:-1].encode()

    def tag(message: bytes) -> bytes:
        if message.startswith(b":"):
            return message
        at = message.index(_DATA_OBJECT) + len(_DATA_OBJECT)
        comma = b"" if message[at : at + 1] == b"}" else b","
        return b"".join((message[:at], member, comma, message[at:]))

    return tag
