"""The log stream's protocol: where a viewer resumes, and its SSE events (pure).

What is new in the store is read by trainlog.logread.follow."""

from __future__ import annotations

import base64
from collections.abc import Iterator

from trainlog import sse
from trainlog.offsets import MAX_OFFSET, parse_decimal

# Largest chunk in one ``log`` event; big enough for fast replay, small enough for a browser
# to decode and render without a visible hitch.
EVENT_BYTES = 256 * 1024


class BadResumePoint(ValueError):
    pass


def resume_offset(last_event_id: str | None, query_offset: int | None) -> int:
    """Where a stream starts: the browser's Last-Event-ID wins over ``?offset=``.

    On an automatic reconnect the browser repeats the original URL (with its original offset)
    and adds Last-Event-ID, the offset after the last event it received: that one is current.
    """
    if last_event_id is not None and last_event_id.strip() != "":
        offset = parse_decimal(last_event_id.strip())
        if offset is None or offset > MAX_OFFSET:
            raise BadResumePoint(f"Last-Event-ID must be a byte offset, got {last_event_id!r}")
        return offset
    if query_offset is not None and query_offset < 0:
        raise BadResumePoint("offset must not be negative")
    return query_offset or 0


def log_event(chunk: bytes, end_offset: int) -> bytes:
    # Base64 needs no JSON escaping, so its JSON is put together as bytes: json.dumps would
    # scan and copy the encoded chunk again, which took twice as long as encoding it.
    data = b'{"chunk":"' + base64.b64encode(chunk) + b'"}'
    return sse.frame_json("log", data, event_id=end_offset)


def log_frames(start: int, data: bytes) -> Iterator[bytes]:
    """``log`` events carrying data (which begins at offset start), EVENT_BYTES at most each.

    Made one at a time, as they are sent: a viewer whose client stops reading holds one
    event, not a whole read's worth.
    """
    for cut in range(0, len(data), EVENT_BYTES):
        chunk = data[cut : cut + EVENT_BYTES]
        yield log_event(chunk, start + cut + len(chunk))


def heartbeat_event() -> bytes:
    return sse.frame("heartbeat", {})


# Backoff between looks at a store that cannot be read, for a tailer or an open stream.
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)


def reconnect_delay(failures: int) -> float:
    """Seconds to wait after ``failures`` failed looks in a row (the first is failures=0)."""
    return RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]


def reconnecting_event(offset: int) -> bytes:
    """The store cannot be read right now; the stream stays open and resumes from offset."""
    return sse.frame("reconnecting", {"offset": offset})


def done_event(exit_code: int | None, final_size: int) -> bytes:
    return sse.frame("done", {"exit_code": exit_code, "final_size": final_size})


def deleted_event() -> bytes:
    """The run was deleted while streaming: nothing more will come; then the response ends."""
    return sse.frame("deleted", {})
