"""A log's bytes to metric points, incrementally, from a cursor (pure).

The unit is a **frame**: the bytes of a line up to a ``\\r`` or ``\\n``. A tqdm bar redrawn
with ``\\r`` is one line of many frames, and each frame that was drawn gives its points (a
bar's postfix gives a point per refresh), as soon as the next ``\\r`` or ``\\n`` ends it, so a
bar that runs for an hour on one line charts live. A frame is read as plain text the way
``/logs/text`` renders it (``plaintext.py``: colours and escapes dropped); frames without
control characters, most of them, are their own text.

Lines are numbered as the line index numbers them (from 1, a line ending at its ``\\n``);
a point's offset is the first byte of its frame, a byte inside that line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from trainlog.metrics.patterns import Rules, line_metrics
from trainlog.plaintext import PlainText

# A frame still open after this many bytes (no \r or \n yet) is read as it stands, and what
# follows as a new frame: the cursor must not wait on a line that never ends.
MAX_FRAME_BYTES = 64 * 1024

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Point:
    name: str
    step: float
    value: float
    line: int
    offset: int


@dataclass(frozen=True)
class Cursor:
    """Where extraction stands: ``offset`` is the first byte of the first frame not yet read
    (in line ``line``); ``counts`` the points per series so far (a step-less point's step
    and the series cap need them)."""

    offset: int = 0
    line: int = 1
    counts: Mapping[str, int] = field(default_factory=dict)


def frame_text(frame: bytes) -> str:
    text = frame.decode("utf-8", "replace")
    if not _CONTROL.search(text):
        return text
    renderer = PlainText(rows=1)
    return (renderer.feed(frame) + renderer.finish()).rstrip("\n")


def extract(
    data: bytes, cursor: Cursor, rules: Rules, final: bool = False
) -> tuple[list[Point], Cursor]:
    """The points of the frames ``data`` (the log's bytes from ``cursor.offset``) completes.

    With ``final`` (the log has ended) an unterminated last frame is read too. Returns the
    points in the order printed and the cursor to continue from.
    """
    points: list[Point] = []
    counts = dict(cursor.counts)
    line = cursor.line
    start = 0

    def read_frame(frame_start: int, frame_end: int) -> None:
        frame = data[frame_start:frame_end]
        if not frame:
            return
        found = line_metrics(frame_text(frame), rules)
        for name, value in found.values:
            seen = counts.get(name)
            if seen is None and len(counts) >= rules.max_series:
                continue
            seen = seen or 0
            step = float(seen) if found.step is None else found.step
            points.append(Point(name, step, value, line, cursor.offset + frame_start))
            counts[name] = seen + 1

    while start < len(data):
        newline = data.find(b"\n", start)
        end = len(data) if newline < 0 else newline
        frame_start = start
        while True:
            cr = data.find(b"\r", frame_start, end)
            if cr < 0:
                break
            read_frame(frame_start, cr)
            frame_start = cr + 1
        if newline < 0:
            # The line goes on past what is stored: its last frame is still being drawn.
            if final or end - frame_start > MAX_FRAME_BYTES:
                read_frame(frame_start, end)
                frame_start = end
            start = frame_start
            break
        read_frame(frame_start, end)
        line += 1
        start = newline + 1
    return points, Cursor(cursor.offset + start, line, counts)
