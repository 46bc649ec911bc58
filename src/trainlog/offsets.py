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

    Headers we do not understand (other units, several ranges, garbage) are ignored as
    RFC 9110 allows, so the client gets the whole log; a well-formed range that lies past the
    end raises RangeNotSatisfiable (416).
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if first == "":
        if last == "" or int(last) == 0:
            raise RangeNotSatisfiable(header)
        return ByteRange(max(0, size - int(last)), size)
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(header)
    return ByteRange(start, end)


def news_in_page(offset: int, start: int, data: bytes) -> tuple[int | None, bytes]:
    """What a viewer at ``offset`` does with a page of bytes beginning at ``start``.

    Returns the end of a gap it must first fill from the store (None if there is none:
    the page begins at or before the viewer) and the page's bytes it has not seen yet.
    """
    if start > offset:
        return start, data
    return None, data[offset - start :]
