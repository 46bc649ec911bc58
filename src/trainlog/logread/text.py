"""A log as plain text with each line's time before it (``/logs/text?timestamps=1``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

from trainlog.db import Database
from trainlog.logread import WINDOW_BYTES, timed_lines
from trainlog.plaintext import PlainText

# Where a line's time is unknown (stored before lines had times): as wide as a time.
NO_TIME = " " * len("2026-01-01T00:00:00.000Z")


def stamp(seconds: float | None) -> str:
    """ISO 8601 UTC with milliseconds, or blanks."""
    if seconds is None:
        return NO_TIME
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def timestamped_text(
    db: Database, run_id: uuid.UUID, end: int, page_bytes: int = WINDOW_BYTES
) -> Iterator[bytes]:
    """Each line's plain text after its time. Lines are rendered one by one (a one-row
    terminal): a cursor moved up into an earlier line does not change it, as it does in the
    plain export without times, where a redraw across lines (several bars) is collapsed."""
    renderer = PlainText(rows=1)
    seconds: float | None = None
    for line, seconds in timed_lines(db, run_id, end, page_bytes):
        text = renderer.feed(line)
        if text:
            yield _stamped(text, seconds)
    text = renderer.finish()  # an unterminated last line
    if text:
        yield _stamped(text, seconds)


def _stamped(text: str, seconds: float | None) -> bytes:
    # A line the renderer wrapped (very long, or a vertical tab) continues under blanks.
    first, *rest = text.rstrip("\n").split("\n")
    out = [f"{stamp(seconds)} {first}", *(f"{NO_TIME} {more}" for more in rest)]
    return ("\n".join(out) + "\n").encode()
