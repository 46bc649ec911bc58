"""Server-Sent Events framing (the text/event-stream wire format). Pure, no transport."""

from __future__ import annotations

import json
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
