"""The line index's arithmetic: lines, newlines and time marks. Pure functions, no I/O.

A line is the bytes after a "\\n" up to and including the next one (the last may be
unterminated); lines are numbered from 1. Line N > 1 starts right after the log's (N-1)th
"\\n", so the index needs only each chunk's count of newlines before it.

A line's time is when the runner read its first byte. Bytes carry time marks: (offset, epoch
milliseconds) pairs saying "the bytes from here on were read at this time", one per read or
append batch, never one per line: a flood's thousands of lines share a batch's mark. A
chunk's marks are relative to its start and always begin at 0, so every line's time is
found within the chunk holding its first byte.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

# (offset, epoch milliseconds): the bytes from offset on were read at that time.
Mark = tuple[int, int]
# What an append is told of its bytes' times: one time (epoch seconds) for all of them, or
# marks as (offset within the appended bytes, epoch seconds) in offset order; None: now.
Times = float | Sequence[tuple[int, float]] | None


def line_count(size: int, newlines: int | None, last_line_start: int | None) -> int | None:
    """Lines stored: one per newline, and an unterminated last one (None: not indexed)."""
    if newlines is None or last_line_start is None:
        return None
    return newlines + (1 if size > last_line_start else 0)


# From this size on, numpy counts newlines ~4x faster than bytes.count (1 MiB: 0.08 ms vs
# 0.3 ms here) and lets go of the GIL meanwhile, so a flood's pieces are counted side by side
# with their compression instead of holding up the runner's reader; below it, its call costs
# more than the count.
NUMPY_COUNT_BYTES = 16 * 1024


def count_newlines(data: bytes) -> int:
    """The "\\n"s in data."""
    if len(data) < NUMPY_COUNT_BYTES:
        return data.count(b"\n")
    return int(np.count_nonzero(np.frombuffer(data, np.uint8) == ord("\n")))


def to_ms(seconds: float) -> int:
    return round(seconds * 1000)


def append_marks(length: int, times: Times) -> list[Mark]:
    """The marks of ``length`` appended bytes, beginning at 0, given an append's ``times``."""
    if times is None:
        times = time.time()
    pairs = [(0, times)] if isinstance(times, float | int) else list(times)
    if not pairs or pairs[0][0] > 0:
        # Bytes before the first mark were read no later than it.
        pairs.insert(0, (0, pairs[0][1] if pairs else time.time()))
    marks = ((max(offset, 0), to_ms(seconds)) for offset, seconds in pairs if offset < length)
    return coalesce(marks)


def coalesce(marks: Iterable[Mark]) -> list[Mark]:
    """Marks without repeats: a mark at the same offset as the one before replaces it, and
    one with the same time as the one before says nothing new."""
    out: list[Mark] = []
    for offset, ms in marks:
        if out and out[-1][0] == offset:
            out.pop()
        if not out or out[-1][1] != ms:
            out.append((offset, ms))
    return out


def slice_marks(marks: Sequence[Mark], start: int, end: int) -> list[Mark]:
    """The marks of bytes [start, end) of what ``marks`` describe, relative to start."""
    inside = [(offset - start, ms) for offset, ms in marks if start < offset < end]
    return [(0, mark_at(marks, start)), *inside]


def shift_marks(marks: Sequence[Mark], by: int) -> list[Mark]:
    return [(offset + by, ms) for offset, ms in marks]


def mark_at(marks: Sequence[Mark], offset: int) -> int:
    """The time (epoch ms) of the byte at ``offset``; marks begin at 0."""
    index = bisect.bisect_right(marks, offset, key=lambda mark: mark[0]) - 1
    return marks[max(index, 0)][1]


def encode_marks(marks: Sequence[Mark]) -> bytes:
    """Marks as varints: the first time, then (offset step, zigzag time step) pairs.

    A flood's 1 MiB chunk holds a few marks, a quiet run's one per line: 3-6 bytes each.
    """
    out = bytearray()
    _put_varint(out, marks[0][1])
    for (offset, ms), (previous_offset, previous_ms) in zip(marks[1:], marks, strict=False):
        _put_varint(out, offset - previous_offset)
        step = ms - previous_ms
        _put_varint(out, step * 2 if step >= 0 else -step * 2 - 1)
    return bytes(out)


def decode_marks(data: bytes) -> list[Mark]:
    numbers = _varints(data)
    ms = next(numbers)
    marks = [(0, ms)]
    offset = 0
    for step in numbers:
        offset += step
        zigzag = next(numbers)
        ms += zigzag // 2 if zigzag % 2 == 0 else -(zigzag + 1) // 2
        marks.append((offset, ms))
    return marks


def _put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)


def _varints(data: bytes) -> Iterator[int]:
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            yield value
            value = shift = 0


def nth_newline(data: bytes, n: int, start: int = 0) -> int:
    """The position of the nth (from 1) "\\n" in data at or after ``start``; there must be
    that many. Halved by counting (C speed) down to a short span, then found one by one: a
    1 MiB chunk of 20,000 short lines takes 20 counts, not 20,000 finds."""
    lo, hi = start, len(data)
    while hi - lo > 4096:
        middle = (lo + hi) // 2
        below = data.count(b"\n", lo, middle)
        if below >= n:
            hi = middle
        else:
            n -= below
            lo = middle
    position = lo - 1
    for _ in range(n):
        position = data.index(b"\n", position + 1)
    return position
