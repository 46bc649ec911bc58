"""HTTP ingest: runs registered and written by remote runners with a token of their own.

A remote ``trainlog run --server`` registers its run (``POST /api/runs/ingest``) and gets a
run token that can append to that run, report on it and end it, and nothing else. Appends
name their offset (``Content-Range``), so a resend is harmless: bytes already stored are
compared and skipped; a gap, or an overlap that disagrees with the log, is refused with the
stored size and the runner resends from there.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import secrets
import threading
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import zstandard
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from trainlog import logread, runs, store
from trainlog.db import Database
from trainlog.lineindex import Times
from trainlog.models import (
    ACTIVE_STATUSES,
    ExperimentRun,
    RunSource,
    RunStatus,
    RunToken,
    TrainingLog,
)
from trainlog.offsets import MAX_CHUNK_BYTES, MAX_OFFSET, parse_decimal
from trainlog.provenance import Provenance

# 256 bits from the OS's generator; URL-safe text so it fits an Authorization header.
TOKEN_BYTES = 32
# Runs whose token a server process remembers having checked (see KnownTokens): a few
# hundred bytes each.
KNOWN_TOKENS = 4096
# A remote clock this far off the server's is noted on the run: its line times are its own.
CLOCK_SKEW_NOTE_SECONDS = 2.0
CAPTURE_TIMES_HEADER = "Trainlog-Capture-Times"
ENDS_LOG_HEADER = "Trainlog-Ends-Log"
# Runs a run token may still write. ``lost`` is the server's guess that the runner died: one
# that was only cut off (a network split longer than TRAINLOG_RUNNER_LOST_AFTER) sends the
# rest and records the real end, as a local runner does after a database outage.
WRITABLE = ACTIVE_STATUSES | {RunStatus.LOST}


# The append's own check that the log's run may be written (see append).
_RUN_WRITABLE = (
    exists()
    .where(ExperimentRun.id == TrainingLog.run_id, ExperimentRun.status.in_(WRITABLE))
    .correlate(TrainingLog)
)


class IngestRefused(Exception):
    """A request the run token does not allow (403)."""


class LogMismatch(Exception):
    """An append that leaves a gap or disagrees with the stored bytes (416)."""

    def __init__(self, size: int, why: str) -> None:
        super().__init__(f"{why}; the log holds {size} bytes: resend from offset {size}")
        self.size = size


class FinalSizeMismatch(Exception):
    """A finish whose final size is not what is stored (409): the runner resends first."""

    def __init__(self, size: int, final: int) -> None:
        super().__init__(
            f"the log holds {size} bytes, not the {final} reported: send the rest, then finish"
        )
        self.size = size


class OverLogLimit(Exception):
    """An append past TRAINLOG_MAX_LOG_BYTES (413)."""


class BadIngestRequest(ValueError):
    """A malformed header or body (400)."""


class UnsupportedEncoding(BadIngestRequest):
    """A Content-Encoding the server does not decode (415, as RFC 9110 has it): a client
    that knows more than this server sends its bytes as they are instead."""


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    # A run token is random and long, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def clock_skew(runner_clock: datetime | None, now: datetime) -> float | None:
    """The runner's clock minus the server's, when far enough off to note on the run."""
    if runner_clock is None:
        return None
    if runner_clock.tzinfo is None:
        raise BadIngestRequest("clock must carry a time zone (UTC)")
    skew = (runner_clock - now).total_seconds()
    return round(skew, 3) if abs(skew) >= CLOCK_SKEW_NOTE_SECONDS else None


def register(
    session: Session,
    command: list[str],
    config: str | None,
    skew: float | None,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    provenance: Provenance | None = None,
) -> tuple[ExperimentRun, str]:
    """A queued remote run and its run token (returned once; only its hash is kept)."""
    run = runs.create(
        session, command, config, RunSource.REMOTE, name=name, tags=tags, provenance=provenance
    )
    run.clock_skew = skew
    token = new_token()
    session.add(RunToken(run_id=run.id, token_hash=token_hash(token)))
    return run, token


class KnownTokens:
    """Run tokens this process has checked against the database, so a run's appends need not
    look its token up again: a run's token never changes, so once it matched it matches for
    good. Whether the run may still be written is not remembered: each append checks that
    in its own statement (see append). Bounded; the least recently used are forgotten."""

    def __init__(self, limit: int = KNOWN_TOKENS) -> None:
        self._limit = limit
        self._hashes: OrderedDict[uuid.UUID, str] = OrderedDict()
        self._lock = threading.Lock()  # appends run in a thread pool

    def matches(self, run_id: uuid.UUID, token: str) -> bool:
        with self._lock:
            known = self._hashes.get(run_id)
            if known is not None:
                self._hashes.move_to_end(run_id)
        return known is not None and hmac.compare_digest(known, token_hash(token))

    def remember(self, run_id: uuid.UUID, token: str) -> None:
        with self._lock:
            self._hashes[run_id] = token_hash(token)
            self._hashes.move_to_end(run_id)
            while len(self._hashes) > self._limit:
                self._hashes.popitem(last=False)


def authorize(
    session: Session, run_id: uuid.UUID, token: str, allow_ended: bool = False
) -> ExperimentRun:
    """The run, if ``token`` is its run token and the run may be written (or ``allow_ended``)."""
    row = session.execute(
        select(ExperimentRun, RunToken.token_hash)
        .join(RunToken, RunToken.run_id == ExperimentRun.id)
        .where(ExperimentRun.id == run_id)
    ).one_or_none()
    # Constant time, and the same answer for an unknown run as for a wrong token: a token
    # tells nothing about runs it cannot write.
    if row is None or not hmac.compare_digest(row.token_hash, token_hash(token)):
        raise IngestRefused(f"this token cannot write run {run_id}")
    run: ExperimentRun = row.ExperimentRun
    if not allow_ended and run.status not in WRITABLE:
        raise IngestRefused(f"run {run_id} has ended ({run.status}); its token no longer works")
    return run


def check_token(db: Database, tokens: KnownTokens, run_id: uuid.UUID, token: str) -> None:
    """Refuse (IngestRefused) a token that cannot write the run, before anything is done for
    its request: the server decodes a body for the run's own token only. A token this process
    has checked already costs no query; the append checks again that the run may be written."""
    if tokens.matches(run_id, token):
        return
    with db.read() as session:
        authorize(session, run_id, token)
    tokens.remember(run_id, token)


@dataclass(frozen=True)
class ContentRange:
    start: int
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start


def parse_content_range(header: str | None) -> ContentRange:
    """``bytes START-END/*`` (END inclusive, as HTTP has it; a total instead of * is ignored)."""
    if header is None:
        raise BadIngestRequest("Content-Range is required: bytes START-END/*")
    unit, _, rest = header.strip().partition(" ")
    span, slash, _total = rest.partition("/")
    first, dash, last = span.partition("-")
    start, last_byte = parse_decimal(first), parse_decimal(last)
    if not (unit == "bytes" and slash and dash and start is not None and last_byte is not None):
        raise BadIngestRequest(f"Content-Range {header!r} not understood: bytes START-END/*")
    end = last_byte + 1
    if end <= start or end > MAX_OFFSET:
        raise BadIngestRequest(f"Content-Range {header!r} is empty or out of range")
    return ContentRange(start, end)


def parse_capture_times(header: str | None, span: ContentRange) -> list[tuple[int, float]]:
    """``OFFSET=UNIX_SECONDS,...``: when the runner read the bytes from each offset on.

    Offsets rise and lie inside the PATCH's range; times are the runner's clock. Returned as
    the store's times (offsets within the PATCH's bytes); none given: the time of receipt.
    """
    if not header:
        return []
    marks: list[tuple[int, float]] = []
    for item in header.split(","):
        offset_text, eq, time_text = item.strip().partition("=")
        try:
            offset, seconds = int(offset_text), float(time_text)
            datetime.fromtimestamp(seconds, UTC)  # a time a clock could show
        except (ValueError, OverflowError, OSError):
            raise BadIngestRequest(f"{CAPTURE_TIMES_HEADER} item {item!r} not understood") from None
        in_order = not marks or offset - span.start > marks[-1][0]
        if not (eq and span.start <= offset < span.end and in_order):
            raise BadIngestRequest(
                f"{CAPTURE_TIMES_HEADER}: offsets must rise within {span.start}-{span.end - 1}"
            )
        marks.append((offset - span.start, seconds))
    return marks


@dataclass(frozen=True)
class Body:
    """A PATCH's bytes, and the zstd frames they came in when the store can keep those as
    they are (see store.encode_append)."""

    data: bytes
    frames: list[bytes] | None = None


def decode_body(body: bytes, encoding: str | None, limit: int) -> Body:
    """The body with its Content-Encoding undone, refused past ``limit`` bytes decoded."""
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return Body(body)
    try:
        if name == "gzip":
            data = gzip.GzipFile(fileobj=io.BytesIO(body)).read(limit + 1)
        elif name == "zstd":
            framed = _chunk_frames(body, limit)
            if framed is not None:
                return framed
            reader = zstandard.ZstdDecompressor().stream_reader(body, read_across_frames=True)
            data = reader.read(limit + 1)
        else:
            raise UnsupportedEncoding(f"Content-Encoding {encoding!r} not supported: gzip, zstd")
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        raise BadIngestRequest(f"the {name} body could not be decoded: {exc}") from None
    if len(data) > limit:
        raise OverLogLimit(f"request body over {limit} bytes once decoded")
    return Body(data)


# RFC 8878 3.1.1.2: a block's header says its type and size; an RLE block holds one byte.
_RLE_BLOCK = 1
_CHECKSUM_BYTES = 4
# zstd cuts a frame into blocks of up to 128 KiB: a frame of MAX_CHUNK_BYTES in more blocks
# than this is left to the stream decoder, so a body of tiny blocks cannot keep the loop
# below (Python) busy.
_MAX_BLOCKS = 1024


def _chunk_frames(body: bytes, limit: int) -> Body | None:
    """A zstd body cut as the store cuts chunks (as a remote runner sends a flood): frames
    that each say their size, MAX_CHUNK_BYTES each but the last. Each is decompressed on its
    own (the bytes, their size and line index come from that, never from the frame's word)
    and kept whole, so the store need not compress again. None for any other body, damaged
    ones included: the stream decoder then decodes it or says what is wrong."""
    view = memoryview(body)
    frames: list[bytes] = []
    sizes: list[int] = []
    position = 0
    try:
        while position < len(body):
            size = zstandard.frame_content_size(view[position:])
            after_short = sizes and sizes[-1] != MAX_CHUNK_BYTES
            # Checked before decompressing: a frame never makes more than it says.
            if after_short or not 0 < size <= MAX_CHUNK_BYTES or sum(sizes) + size > limit:
                return None
            length = _frame_length(view[position:])
            if length is None:
                return None
            frames.append(body[position : position + length])
            sizes.append(size)
            position += length
        # Each frame alone and whole: a length misread above is an error here, not bytes.
        parts = store.decompress_pieces(frames)
    except zstandard.ZstdError:
        return None
    return Body(b"".join(parts), frames)


def _frame_length(frame: memoryview) -> int | None:
    """The length of the zstd frame ``frame`` begins with, read off its header and its
    blocks' headers (RFC 8878); None if it runs past the end or has too many blocks."""
    at = zstandard.frame_header_size(frame)
    for _ in range(_MAX_BLOCKS):
        header = frame[at : at + 3]
        if len(header) < 3:
            return None
        block = int.from_bytes(header, "little")
        at += 3 + (1 if (block >> 1) & 3 == _RLE_BLOCK else block >> 3)
        if block & 1:  # the last block
            break
    else:
        return None
    if zstandard.get_frame_parameters(frame).has_checksum:
        at += _CHECKSUM_BYTES
    return at if at <= len(frame) else None


def append(
    db: Database,
    tokens: KnownTokens,
    run_id: uuid.UUID,
    token: str,
    offset: int,
    body: Body,
    times: Times,
    ends_log: bool,
    max_log_bytes: int,
) -> int:
    """Store ``body``'s bytes at ``offset``, read at ``times``, unless they are there
    already, if ``token`` may write the run; the log's new size."""
    data = body.data
    over_limit = offset + len(data) > max_log_bytes
    # Cut and compressed once, before any transaction (as a local runner does), but only for
    # a token known to be the run's: nobody else gets the server to compress for them.
    encoded = None
    if not (ends_log or over_limit) and tokens.matches(run_id, token):
        encoded = store.encode_append(run_id, offset, data, times, body.frames)
        # The log as long as expected: stored as a local runner's append is (on PostgreSQL,
        # one chunk: one statement), the same statement checking that the run may still be
        # written, so a line's way to its viewers takes no other round trip. Anything else
        # is looked at in the transaction below.
        size = store.append_at_once(db, encoded, only_if=_RUN_WRITABLE)
        if size is not None:
            return size
    with db.write() as session:
        # Checked and stored in one transaction (on SQLite, under the write lock).
        authorize(session, run_id, token)
        tokens.remember(run_id, token)
        if over_limit:
            raise OverLogLimit(
                f"bytes up to {offset + len(data)} would pass the log limit of {max_log_bytes}"
            )
        size = _locked_size(session, run_id)
        if offset > size:
            raise LogMismatch(size, f"an append at {offset} would leave a gap")
        overlap_end = min(size, offset + len(data))
        if _stored(session, run_id, offset, overlap_end) != data[: overlap_end - offset]:
            raise LogMismatch(size, f"bytes {offset}-{overlap_end - 1} differ from the stored ones")
        if offset + len(data) > size:
            # Stores only what is not there yet (see store.append_encoded).
            encoded = encoded or store.encode_append(run_id, offset, data, times, body.frames)
            size = store.append_encoded(session, encoded)
        if ends_log:
            # With the limit's notice, so no reader sees one without the other.
            runs.mark_truncated(session, run_id)
        return size


def finish(
    session: Session,
    run: ExperimentRun,
    status: RunStatus,
    exit_code: int | None,
    error: str | None,
    final_size: int,
) -> None:
    """Record the end, only once the log holds exactly ``final_size`` bytes.

    A resent finish (its answer was lost) that says the same again is accepted unchanged.
    """
    size = _locked_size(session, run.id)
    if size != final_size:
        raise FinalSizeMismatch(size, final_size)
    if run.status not in WRITABLE:
        if (run.status, run.exit_code) != (status, exit_code):
            raise IngestRefused(f"run {run.id} has ended ({run.status}); its token no longer works")
        return
    runs.finish(session, run.id, status, exit_code, error)


def _locked_size(session: Session, run_id: uuid.UUID) -> int:
    size = session.scalar(
        select(TrainingLog.size).where(TrainingLog.run_id == run_id).with_for_update()
    )
    if size is None:
        raise store.UnknownLog(run_id)
    return size


def _stored(session: Session, run_id: uuid.UUID, start: int, end: int) -> bytes:
    parts: list[bytes] = []
    position = start
    while position < end:
        page = logread.read(session, run_id, position, end)
        if not page:
            break
        parts.append(page)
        position += len(page)
    return b"".join(parts)
