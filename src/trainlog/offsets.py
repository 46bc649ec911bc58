"""Byte-offset arithmetic: the log's only cursor. Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# Upper bound on one stored chunk. Reads rely on it: the chunk holding offset X starts after
# X - MAX_CHUNK_BYTES, so a lookup never scans the run's earlier chunks.
MAX_CHUNK_BYTES = 1024 * 1024
# The largest offset anyone may name: PostgreSQL's BIGINT.
MAX_OFFSET = 2**63 - 1


def split_chunks(
    offset: int, data: bytes, max_size: int = MAX_CHUNK_BYTES
) -> Iterator[tuple[int, bytes]]:
    """Cut ``data`` (which starts at ``offset``) into (start, bytes) pieces of at most max_size."""
    for start in range(0, len(data), max_size):
        yield offset + start, data[start : start + max_size]


def slice_chunks(chunks: Iterable[tuple[int, bytes]], start: int, end: int) -> bytes:
    """The bytes [start, end) out of chunks given as (start_offset, data), in offset order."""
    parts: list[bytes] = []
    for chunk_start, data in chunks:
        lo = max(start, chunk_start) - chunk_start
        hi = min(end, chunk_start + len(data)) - chunk_start
        if hi > lo:
            parts.append(data[lo:hi])
    return b"".join(parts)


def unseen_part(stored_size: int, offset: int, data: bytes) -> bytes:
    """What of an append at ``offset`` is not stored yet, given the log's current size.

    Appends are idempotent by offset: a retry after an ambiguous commit finds its bytes (or
    some of them) already there and stores only the rest. An append that would leave a hole
    is a bug in the caller, never something to paper over.
    """
    if offset > stored_size:
        raise ValueError(f"append at {offset} would leave a gap after {stored_size} stored bytes")
    return data[stored_size - offset :]


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start


class RangeNotSatisfiable(ValueError):
    pass


def parse_range_header(header: str | None, size: int) -> ByteRange | None:
    """The single byte range an HTTP ``Range`` header asks for, or None for the whole body.

    Anything else is refused with RangeNotSatisfiable (416), saying why: other units, several
    ranges or garbage (RFC 9110 would let us ignore those, but a client that sent one should
    learn it got no range rather than receive a whole 2 GiB log), and ranges past the end.
    """
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    first, dash, last = spec.strip().partition("-")
    start, final = parse_decimal(first), parse_decimal(last)
    well_formed = (
        unit.strip().lower() == "bytes"
        and dash == "-"
        and (start is not None or first == "")
        and (final is not None or last == "")
        and (start, final) != (None, None)
        and (start is None or final is None or final >= start)
    )
    if not well_formed:
        raise RangeNotSatisfiable(
            f"Range {header!r} not understood: send one range, bytes=START-END, bytes=START- "
            "or bytes=-LENGTH"
        )
    if start is None:
        assert final is not None
        if final == 0:
            raise RangeNotSatisfiable(f"Range {header!r} asks for no bytes")
        return ByteRange(max(0, size - final), size)
    if start >= size:
        raise RangeNotSatisfiable(f"Range {header!r} starts past the end of the log ({size} bytes)")
    end = size if final is None else min(final + 1, size)
    return ByteRange(start, end)


def parse_decimal(text: str) -> int | None:
    """The number ``text`` writes in ASCII digits, or None for anything else ("" too).

    Every number read from a request goes through this: ``str.isdigit`` alone also accepts
    digits of other scripts ("²", which int() refuses: a 500; "٣", which it reads as 3).
    """
    return int(text) if text.isascii() and text.isdigit() else None


def news_in_page(offset: int, start: int, data: bytes) -> tuple[int | None, bytes]:
    """What a viewer at ``offset`` does with a page of bytes beginning at ``start``.

    Returns the end of a gap it must first fill from the store (None if there is none:
    the page begins at or before the viewer) and the page's bytes it has not seen yet.
    """
    if start > offset:
        return start, data
    return None, data[offset - start :]
