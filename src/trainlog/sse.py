"""Server-Sent Events framing (the text/event-stream wire format). Pure, no transport."""

from __future__ import annotations

import json
from typing import Any


def frame(event: str, data: Any, event_id: str | int | None = None) -> bytes:
    """One SSE message: ``event:``, optional ``id:``, one ``data:`` line of JSON, blank line.

    JSON never contains a raw newline, so the payload always fits one data line.
    """
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"data: {json.dumps(data, separators=(',', ':'))}")
    return ("\n".join(lines) + "\n\n").encode()


def comment(text: str = "") -> bytes:
    """A comment line: ignored by EventSource, but it flushes proxies and starts the stream."""
    return f": {text}\n\n".encode()
