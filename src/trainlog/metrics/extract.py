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
from typing import NamedTuple

from trainlog.metrics.patterns import Rules, line_metrics, shape
from trainlog.plaintext import PlainText

# A frame still open after this many bytes (no \r or \n yet) is read as it stands, and what
# follows as a new frame: the cursor must not wait on a line that never ends.
MAX_FRAME_BYTES = 64 * 1024

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A byte that is not plain ASCII text, a line's end aside (\n, or \r\n as a terminal's line
# discipline stores it): the lines around it are read one frame at a time; the runs of plain
# lines between, most of a log, many lines at once.
_NOT_PLAIN = re.compile(rb"\r(?!\n)|[^\r\n\x20-\x7e]")


class Point(NamedTuple):
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
    base = cursor.offset

    def add(found_step: float | None, values: list[tuple[str, float]], at: int) -> None:
        for name, value in values:
            seen = counts.get(name)
            if seen is None:
                if len(counts) >= rules.max_series:
                    continue
                seen = 0
            step = float(seen) if found_step is None else found_step
            points.append(Point(name, step, value, line, base + at))
            counts[name] = seen + 1

    def read_frame(frame_start: int, frame_end: int) -> None:
        frame = data[frame_start:frame_end]
        if frame:
            found = line_metrics(frame_text(frame), rules)
            if found.values:
                add(found.step, found.values, frame_start)

    def read_plain(start: int, end: int) -> None:
        """Whole lines of plain ASCII text (no \r but at their end): one frame each, read
        together."""
        nonlocal line
        text = data[start:end].decode("ascii")
        at = start
        for text_line, line_shape in zip(text.split("\n"), shape(text).split("\n"), strict=True):
            length = len(text_line)
            if text_line.endswith("\r"):  # its frame ends there; the empty one after is none
                text_line, line_shape = text_line[:-1], line_shape[:-1]
            if text_line:
                found = line_metrics(text_line, rules, line_shape)
                if found.values:
                    add(found.step, found.values, at)
            at += length + 1
            line += 1

    def read_lines(start: int, end: int) -> None:
        """Whole lines, frame by frame (a \r ends a frame inside its line)."""
        nonlocal line
        while start < end:
            newline = data.index(b"\n", start, end)
            frame_start = start
            while True:
                cr = data.find(b"\r", frame_start, newline)
                if cr < 0:
                    break
                read_frame(frame_start, cr)
                frame_start = cr + 1
            read_frame(frame_start, newline)
            line += 1
            start = newline + 1

    # Complete lines: runs of plain ones together, any other one frame by frame.
    complete = data.rfind(b"\n") + 1
    start = 0
    for odd in _NOT_PLAIN.finditer(data, 0, complete):
        if odd.start() < start:
            continue  # in a line already read
        line_start = max(start, data.rfind(b"\n", start, odd.start()) + 1)
        if line_start > start:
            read_plain(start, line_start - 1)
        line_end = data.index(b"\n", odd.start()) + 1
        read_lines(line_start, line_end)
        start = line_end
    if start < complete:
        read_plain(start, complete - 1)

    # The line that goes on past what is stored: its complete frames, and its last one only
    # once the log has ended (or it is too long to wait for).
    start = complete
    while True:
        cr = data.find(b"\r", start)
        if cr < 0:
            break
        read_frame(start, cr)
        start = cr + 1
    if start < len(data) and (final or len(data) - start > MAX_FRAME_BYTES):
        read_frame(start, len(data))
        start = len(data)
    return points, Cursor(base + start, line, counts)
