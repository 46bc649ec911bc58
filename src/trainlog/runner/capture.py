"""LogCapture: drain a child's output into the log store, never slowing the child.

Two threads meet at a SpillBuffer. The reader only reads the pipe (and echoes, for
``trainlog run``), so the child's writes never wait on the database (or the server: the
writes go to a LogSink, which is either). The writer appends
whatever has accumulated: right away when output is quiet, in larger batches when it floods.
While a flood's append commits, an encoder thread gathers and compresses the next one, so a
flood costs the slower of the two, not their sum; a quiet line never changes threads.

Past ``max_log_bytes`` the child is still drained but its bytes are dropped: the log ends with
one notice saying so (counted in the limit) and the run is flagged ``log_truncated``.

While the database's disk is full, appends are retried like any failed append (the buffer
holds the output meanwhile) and the run's ``error`` says why its log has stopped growing,
until an append goes through again (see DatabaseSink). An append refused for good (a server
that does not know the request) stops the writer, and the runner gives up the run.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO, Generic

from trainlog.offsets import MAX_CHUNK_BYTES
from trainlog.runner.buffer import SpillBuffer
from trainlog.runner.retry import Refused, until_done
from trainlog.runner.sink import LogSink, Prepared

# A read shorter than this found the pipe all but empty (see _pass_on_available).
SMALL_READ_BYTES = 64 * 1024
READ_BATCH_BYTES = 1024 * 1024
# The most one append transaction stores; several chunks of MAX_CHUNK_BYTES each.
WRITE_BATCH_BYTES = 4 * 1024 * 1024
STOP_CHECK_SECONDS = 0.1
# A batch this big means the child floods (a quiet one's line is far smaller): the writer
# then lets up to GATHER_BYTES gather, waiting GATHER_SECONDS at most, before its next append.
FLOOD_BYTES = 64 * 1024
GATHER_BYTES = MAX_CHUNK_BYTES
GATHER_SECONDS = 0.02

log = logging.getLogger(__name__)


def limit_notice(max_log_bytes: int) -> bytes:
    return (
        f"\r\n[trainlog] log limit of {max_log_bytes} bytes reached; further output not stored\r\n"
    ).encode()


@dataclass(frozen=True)
class _Batch(Generic[Prepared]):
    prepared: Prepared
    # Taken from a flood: more is coming, so the next append is prepared meanwhile.
    flood: bool
    # Carries the log-limit notice: the run is marked truncated in the same transaction.
    ends_log: bool


class LogCapture(Generic[Prepared]):
    def __init__(
        self,
        sink: LogSink[Prepared],
        read_fd: int,
        buffer: SpillBuffer,
        max_log_bytes: int,
        echo: BinaryIO | None = None,
        *,
        on_refused: Callable[[Refused], None],
    ) -> None:
        self._sink = sink
        self._on_refused = on_refused
        self._read_fd = read_fd
        self._buffer = buffer
        self._echo = echo
        self._stored = 0
        # Bytes taken from the buffer for appends, stored or not yet: where the next begins.
        self._planned = 0
        self._max_log_bytes = max_log_bytes
        self._limit_notice = limit_notice(max_log_bytes)
        self._truncated = False
        # Prepares a flood's next append while the writer commits one: never more than one
        # ahead, so memory stays bounded.
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="capture-encoder")
        self._loss_noted = False
        # The last read found the pipe full enough to call it a flood: the next asks for all
        # the batch's room at once (see _pass_on_available).
        self._flooding = False
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, name="capture-reader", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="capture-writer", daemon=True)

    @property
    def stored(self) -> int:
        """Bytes durably in the store so far."""
        return self._stored

    def start(self) -> None:
        self._reader.start()
        self._writer.start()

    def wait_for_eof(self, timeout: float | None = None) -> bool:
        self._reader.join(timeout)
        return not self._reader.is_alive()

    def stop_reading(self) -> None:
        """Give up waiting for EOF (a descendant that left the group still holds the pipe)."""
        self._stop.set()
        self._reader.join()

    def wait_stored(self) -> int:
        """Block until every byte read has been stored; return the final size."""
        self._writer.join()
        return self._stored

    def _read_loop(self) -> None:
        os.set_blocking(self._read_fd, False)
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([self._read_fd], [], [], STOP_CHECK_SECONDS)
                if readable and self._pass_on_available():
                    break
            else:
                # Given up on: what is in the pipe already was written in time, so it is kept.
                self._pass_on_available()
        finally:
            os.close(self._read_fd)
            self._buffer.close()

    def _pass_on_available(self) -> bool:
        """Buffer (and echo) what can be read right now; whether the output has ended.

        A quiet child's line goes on at once; a flood is handed over in pieces of up to
        READ_BATCH_BYTES, so the per-read cost is not paid again downstream.
        """
        parts: list[bytes] = []
        marks: list[tuple[int, float]] = []  # when each part was read
        total = 0
        ended = False
        while total < READ_BATCH_BYTES:
            # In a flood, all the pipe holds up to the batch's room: a full pipe (1 MiB, see
            # service._big_pipe) is one system call and one piece, with nothing to join.
            # Otherwise SMALL_READ_BYTES: a read's buffer is allocated at the size asked for,
            # and 1 MiB for a quiet line's hundred bytes costs ~15x the read (16 vs 1.1 us).
            size = READ_BATCH_BYTES - total if self._flooding else SMALL_READ_BYTES
            try:
                data = os.read(self._read_fd, size)
            except BlockingIOError:
                break
            if not data:
                ended = True
                break
            parts.append(data)
            marks.append((total, time.time()))
            total += len(data)
            self._flooding = len(data) >= SMALL_READ_BYTES
            if not self._flooding:
                # The pipe was all but empty: a quiet child's line goes on now. After a bigger
                # read the child is flooding, and has likely written more meanwhile.
                break
        if parts:
            batch = b"".join(parts)
            self._buffer.put(batch, marks)
            self._echo_out(batch)
        return ended

    def _echo_out(self, data: bytes) -> None:
        if self._echo is None:
            return
        try:
            self._echo.write(data)
            self._echo.flush()
        except (OSError, ValueError):
            # The user's terminal went away; capture goes on regardless.
            self._echo = None

    def _write_loop(self) -> None:
        try:
            batch = self._next_batch(gather=False)
            while batch is not None:
                ahead = self._encoder.submit(self._next_batch, gather=True) if batch.flood else None
                self._store(batch)
                self._note_loss()
                batch = ahead.result() if ahead is not None else self._next_batch(gather=False)
        except Refused as exc:
            # Nothing more can be stored: the runner gives up the run, and the reader drains
            # the child (and echoes it) until it has ended.
            self._on_refused(exc)
        finally:
            self._encoder.shutdown(wait=False)

    def _next_batch(self, gather: bool) -> _Batch[Prepared] | None:
        """The next append, cut and compressed; None once the output has ended and all of it
        is taken."""
        while True:
            if gather:
                # Output streams in faster than appends go: a bigger batch costs one commit
                # and is compressed as it is written, where chasing the stream would make
                # many small raw appends. Viewers see a flood GATHER_SECONDS late at most.
                self._buffer.wait_for(GATHER_BYTES, GATHER_SECONDS)
            data, marks = self._buffer.take_timed(WRITE_BATCH_BYTES)
            if not data:
                if self._buffer.exhausted:
                    return None
                continue
            if not self._truncated:
                return self._encode(data, marks, flood=len(data) >= FLOOD_BYTES)
            # Past the limit: drained and dropped, the notice is in the log already.

    def _encode(self, data: bytes, marks: list[tuple[int, float]], flood: bool) -> _Batch[Prepared]:
        room = self._max_log_bytes - len(self._limit_notice) - self._planned
        if len(data) > room:
            data = data[: max(room, 0)] + self._limit_notice
            self._truncated = True
        # The limit notice gets the time of the bytes it follows.
        prepared = self._sink.prepare(self._planned, data, marks, self._truncated)
        # Bytes held are in `_planned - _stored` or in the buffer (see _append_failed).
        self._planned += len(data)
        return _Batch(prepared, flood, self._truncated)

    def _store(self, batch: _Batch[Prepared]) -> None:
        # Appends are idempotent by offset, so retrying one whose commit answer was lost
        # cannot store its bytes twice.
        self._stored = until_done(
            partial(self._sink.append, batch.prepared, batch.ends_log),
            "append",
            on_error=self._append_failed,
        )

    def _append_failed(self, exc: Exception) -> None:
        self._sink.append_failed(exc, self._planned - self._stored + self._buffer.pending)

    def _note_loss(self) -> None:
        if self._loss_noted:
            return  # said once; no need to ask the buffer (and take its lock) again
        loss = self._buffer.first_loss
        if loss is None:
            return
        until_done(
            partial(self._sink.note_loss, f"output was lost: {loss}; see the log"),
            "note lost output",
        )
        self._loss_noted = True
