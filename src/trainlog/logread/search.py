"""Whole-log search: the lines whose plain text (what a terminal shows) matches a query.

Rendering every line's plain text would run at the renderer's 40-50 MB/s; instead the raw
bytes are scanned first, a chunk at a time, with colour escapes (SGR) taken out and carriage
returns read as line breaks, and only the lines with a hit there are rendered and matched
for real. What the pre-filter cannot see is missed: text that only a terminal puts together
(written in pieces joined by cursor moves or backspaces, or split by other escapes than
colours), and a match across the cut of a line longer than LONG_LINE_BYTES.

A literal of 3 characters or more does not even read most of a big log: chunks whose
summaries (chunkgrams) lack one of its trigrams are skipped without being read or
decompressed, with the same result as reading them.

Regular expressions run on RE2 (linear time: no pattern can hold a worker), and a search
stops after a time budget with what it found and where to resume, so memory and time per
request stay bounded whatever the log's size.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import re2  # google-re2

from trainlog.chunkgrams import LONG_LINE_BYTES, SGR, lacks, query_bits
from trainlog.db import Database
from trainlog.lineindex import nth_newline
from trainlog.logread import (
    ChunkReader,
    LineTotals,
    Skipped,
    iter_chunks,
    line_at,
    line_offset,
    line_time,
    line_totals,
    time_in,
)
from trainlog.plaintext import PlainText

MAX_MATCHES = 1000
TEXT_CHARS = 500
# A search answers within about this long; the client resumes at next_after.
SEARCH_SECONDS = 3.0
# ... and sooner once it has found something: the first hits show while the rest is scanned.
FIRST_ANSWER_SECONDS = 0.2
# Chunks decompressed ahead, in threads, while one is searched: a scan is bound by
# decompression (zstd here: 0.6-0.8 GB/s a core), so both cores of a small server do it.
DECODE_AHEAD = 2


class BadQuery(ValueError):
    pass


@dataclass(frozen=True)
class Match:
    line: int
    offset: int
    time: float | None
    text: str


@dataclass
class Found:
    matches: list[Match] = field(default_factory=list)
    next_after: int | None = None  # where to resume; None: the end was reached
    scanned_to: int = 0  # lines starting before this were searched


@dataclass(frozen=True)
class Matcher:
    """Where a page of pre-filtered bytes may hold a match, and whether a text does."""

    candidates: Callable[[bytes, int, int], Iterator[int]]  # page, from, to
    matches: Callable[[str], bool]
    # A regex's ^ may match where a redraw's \r starts the text over: candidates are then
    # looked for with \r read as a line break.
    redraws_break: bool
    # Whether a chunk summary (chunkgrams) shows that no line it covers can match; None:
    # summaries cannot tell (a regex, or a literal without a trigram to look for).
    absent: Callable[[bytes], bool] | None = None


def matcher(query: str, regex: bool, case: bool) -> Matcher:
    """The matcher for a query; BadQuery (naming the problem) for a pattern RE2 refuses."""
    if not query:
        raise BadQuery("q must not be empty")
    bits = None if regex else query_bits(query, case)
    absent = None if bits is None else partial(lacks, bits=bits)
    if not regex and case:
        # The common literal: bytes.find, as fast as a scan gets here (RE2 for the rest).
        needle = query.encode()
        return Matcher(
            lambda page, lo, hi: _finds(page, needle, lo, hi),
            lambda text: query in text,
            False,
            absent,
        )
    options = re2.Options()
    options.case_sensitive = case
    options.log_errors = False
    pattern = query if regex else re2.escape(query)
    try:
        on_text = re2.compile(pattern, options)
        # On a page of many lines, ^ and $ are a line's ends.
        on_bytes = re2.compile(b"(?m)" + pattern.encode(), options)
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args else str(exc)
        raise BadQuery(f"q is not a valid regular expression: {detail}") from None
    return Matcher(
        lambda page, lo, hi: (hit.start() for hit in on_bytes.finditer(page, lo, hi)),
        lambda text: on_text.search(text) is not None,
        redraws_break=regex,
        absent=absent,
    )


def _finds(page: bytes, needle: bytes, lo: int, hi: int) -> Iterator[int]:
    position = page.find(needle, lo, hi)
    while position != -1:
        yield position
        position = page.find(needle, position + 1, hi)


def plain_line(raw: bytes) -> str:
    """One line's plain text, as /logs/text shows it (redraws collapsed, escapes dropped)."""
    renderer = PlainText()
    return (renderer.feed(raw) + renderer.finish()).rstrip("\n").replace("\n", " ")


def search(
    db: Database,
    run_id: uuid.UUID,
    query: Matcher,
    after: int,
    limit: int,
    budget: float = SEARCH_SECONDS,
) -> Found:
    """Up to ``limit`` matching lines among those starting at or after byte ``after``."""
    started = time.monotonic()
    totals = line_totals(db, run_id)
    with db.statement_reads() as connection:
        chunks = ChunkReader(connection, run_id)
        line = 1 if after <= 0 else line_at(chunks, after - 1, totals) + 1
        begin = line_offset(chunks, line, totals)
    found = Found(scanned_to=begin)
    carry = b""  # the start of a line whose end is in a later chunk
    carry_at = begin  # where carry starts: every line before it was searched
    position = begin
    dropping = False  # inside a line that skipped bytes are part of: not wanted
    previous: tuple[int, bytes] = (begin, b"")  # the last chunk read, and where it starts
    # Where each match is in the chunk it was found in (see _located), to number it.
    located: dict[int, Located] = {}
    pieces = iter_chunks(
        db, run_id, begin, totals.size, decode_ahead=DECODE_AHEAD, cleared=query.absent
    )
    # Chunk by chunk, in place: only a line across two chunks is put together.
    for chunk in pieces:
        if isinstance(chunk, Skipped):
            # No time check here: next_after stays a line start.
            position += chunk.length
            carry, carry_at, dropping = b"", position, True
            found.scanned_to = position
            continue
        chunk_at = position
        position += len(chunk)
        at_end = position >= totals.size
        lo = 0  # where chunk's wanted lines start
        if dropping:
            lo = chunk.find(b"\n") + 1 or (len(chunk) if at_end else 0)
            if lo == 0:
                carry_at = found.scanned_to = position
                continue
            carry_at, dropping = chunk_at + lo, False
        first = chunk.find(b"\n", lo) + 1 or (len(chunk) if at_end else 0)
        if first == 0:
            carry += chunk[lo:] if lo else chunk  # inside one long line
            if len(carry) < LONG_LINE_BYTES:
                continue
            units, rest = [(carry, 0, len(carry))], b""
        else:
            last = len(chunk) if at_end else chunk.rfind(b"\n") + 1
            # The line across the cut, put together; then the chunk's own lines, in place.
            units = [(carry + chunk[:first], 0, len(carry) + first)] if carry else []
            units.append((chunk, first if carry else lo, last))
            rest = chunk[last:]
        at = carry_at
        had = len(found.matches)
        for data, lo, hi in units:
            if hi > lo:
                _search_lines(data, lo, hi, at - lo, query, limit, found)
                at += hi - lo
            if len(found.matches) >= limit:
                break
        _locate(found.matches[had:], previous, (chunk_at, chunk), located)
        previous = (chunk_at, chunk)
        if len(found.matches) >= limit:
            if found.scanned_to >= totals.size:
                found.next_after = None
            break
        carry = rest
        carry_at = found.scanned_to = at
        elapsed = time.monotonic() - started
        if elapsed > budget or (found.matches and elapsed > min(budget, FIRST_ANSWER_SECONDS)):
            found.next_after = carry_at if carry_at < totals.size else None
            break
    if found.matches:
        # Numbered and timed from the index, afterwards: counting every page's newlines as
        # it is scanned would cost more than finding the matches.
        with db.statement_reads() as connection:
            chunks = ChunkReader(connection, run_id)
            found.matches = _numbered(chunks, found.matches, totals, located)
    return found


@dataclass(frozen=True)
class Located:
    """Where a match was found: the piece of log read (a whole chunk, if its length is the
    chunk's), and the newlines in it before the match."""

    start: int
    length: int
    newlines: int


def _locate(
    matches: list[Match],
    previous: tuple[int, bytes],
    current: tuple[int, bytes],
    located: dict[int, Located],
) -> None:
    """Note where each of the matches just found is: in the piece just read, or (its line
    starts before the cut) the one before. Counted now, while the piece is at hand: on
    PostgreSQL reading each match's chunk again to number it cost more than the rest of a
    scan that skips most of the log."""
    last: tuple[int, Located] | None = None  # the last match noted and where
    for match in matches:
        at, data = current if match.offset >= current[0] else previous
        if match.offset < at or match.offset > at + len(data):
            continue  # not in either (a long line's piece): numbered from the index
        if last is not None and last[1].start == at:
            newlines = last[1].newlines + data.count(b"\n", last[0] - at, match.offset - at)
        else:
            newlines = data.count(b"\n", 0, match.offset - at)
        last = (match.offset, Located(at, len(data), newlines))
        located[match.offset] = last[1]


def _whole(row: Any, where: Located) -> bool:
    """Whether a match was located in the whole chunk of this index row (and it has one)."""
    return bool(row.length == where.length and row.newlines_before is not None)


def _numbered(
    chunks: ChunkReader, matches: list[Match], totals: LineTotals, located: dict[int, Located]
) -> list[Match]:
    """The matches (in offset order) with their line numbers and times: from the chunk's
    line index columns (one statement for all) where the match was located in a whole
    chunk; else read from the index, where matches in one chunk count its newlines once
    between them, not from its start each time."""
    index = chunks.index_columns({where.start for where in located.values()})
    numbered: list[Match] = []
    previous: tuple[int, int] | None = None  # the last match's (offset, line)
    for match in matches:
        where = located.get(match.offset)
        row = None if where is None else index.get(where.start)
        if where is not None and row is not None and _whole(row, where):
            line = row.newlines_before + where.newlines + 1
            time = time_in(row.times, match.offset - where.start)
            previous = (match.offset, line)
            numbered.append(Match(line, match.offset, time, match.text))
            continue
        chunk = chunks.holding(match.offset)
        if previous is not None and chunk is not None and chunk.start_offset <= previous[0]:
            between = chunk.data.count(
                b"\n", previous[0] - chunk.start_offset, match.offset - chunk.start_offset
            )
            line = previous[1] + between
        else:
            line = line_at(chunks, match.offset, totals)
        previous = (match.offset, line)
        numbered.append(Match(line, match.offset, line_time(chunks, match.offset), match.text))
    return numbered


def _search_lines(
    data: bytes, lo: int, hi: int, start: int, query: Matcher, limit: int, found: Found
) -> None:
    """Add the matches among the lines of data[lo:hi] (lo is a line start; data begins at
    offset ``start``) to found, numbered 0 (see search), up to limit; then found.next_after
    says where to resume."""
    text_lines = data  # what the query is looked for in: data, in place, when it can be
    if query.redraws_break or data.find(b"\x1b", lo, hi) >= 0:
        if lo > 0 or hi < len(data):
            data, start, lo, hi = data[lo:hi], start + lo, 0, hi - lo
        # Lines stay where they were without colours (an SGR holds no newline): a hit in
        # line i of text_lines is in line i of data.
        text_lines = SGR.sub(b"", data) if b"\x1b" in data else data
    scan = text_lines.replace(b"\r", b"\n") if query.redraws_break else text_lines
    text_hi = hi if text_lines is data else len(text_lines)
    raw_at = lo  # where the line being looked at starts, in data
    text_at = lo  # and in text_lines
    for hit in query.candidates(scan, lo, text_hi):
        if hit < text_at:
            continue  # in a line already looked at
        line_start = max(text_lines.rfind(b"\n", lo, hit) + 1, lo)
        if text_lines is data:
            raw_at = line_start
        elif line_start > text_at:
            raw_at = nth_newline(data, text_lines.count(b"\n", text_at, line_start), raw_at) + 1
        text_at = line_start
        raw_end = data.find(b"\n", raw_at, hi) + 1 or hi
        text = plain_line(data[raw_at:raw_end])
        if query.matches(text):
            found.matches.append(Match(0, start + raw_at, None, text[:TEXT_CHARS]))
            if len(found.matches) >= limit:
                found.next_after = found.scanned_to = start + raw_end
                return
        # On to the next line.
        text_at = text_lines.find(b"\n", text_at, text_hi) + 1 or text_hi
        raw_at = raw_end
