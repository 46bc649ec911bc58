"""The runner's hand-off between the pipe reader and the database writer."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from trainlog.lineindex import to_ms


def loss_notice(lost: int, reason: str) -> bytes:
    # On lines of its own: the child may have been mid-line, and \r\n is what a terminal needs.
    return f"\r\n[trainlog] {lost} bytes of output lost: {reason}\r\n".encode()


class SpillBuffer:
    """A FIFO of bytes that never blocks the producer.

    Up to ``memory_limit`` bytes are held in memory; beyond that, new bytes go to a temporary
    file until the consumer has caught up, so a slow or unreachable database costs disk space,
    never a stalled child. Bytes come out in the order they went in.

    If the spill file cannot be written (disk full), new bytes are dropped, never the producer
    blocked, until everything held has been taken; then a notice saying how many bytes were
    lost, and why, takes their place in the stream, and buffering resumes.

    Each put's time is kept beside its bytes (one mark per put, not per byte): take_timed
    hands them out with the bytes, so a line's time is when it was read, not stored.
    """

    def __init__(self, memory_limit: int, spill_dir: str | Path | None = None) -> None:
        self._memory_limit = memory_limit
        self._spill_dir = spill_dir
        # Pieces as they were put: taking from the front never moves the bytes behind it.
        self._memory: deque[bytes] = deque()
        self._memory_bytes = 0
        self._spill: BinaryIO | None = None
        self._spill_read = 0
        self._spill_written = 0
        self._closed = False
        self._dropped = 0
        self._drop_reason: str | None = None
        self._first_loss: str | None = None
        # (position in the stream of bytes put, epoch seconds): bytes from there on were put
        # at that time. Only the last one at or before the next byte to take is kept of those
        # already taken.
        self._marks: deque[tuple[int, float]] = deque()
        self._put_total = 0
        self._taken_total = 0
        self._ready = threading.Condition()

    @property
    def pending(self) -> int:
        with self._ready:
            return self._pending()

    @property
    def spilled(self) -> int:
        """Bytes waiting on disk right now."""
        with self._ready:
            return self._spill_written - self._spill_read

    @property
    def first_loss(self) -> str | None:
        """Why bytes were first dropped, if ever."""
        with self._ready:
            return self._first_loss

    def put(self, data: bytes, marks: Sequence[tuple[int, float]] | None = None) -> None:
        """Add bytes read at the times ``marks`` say: (offset in data, epoch seconds) pairs,
        the first at 0 (None: all now)."""
        with self._ready:
            if self._drop_reason is not None and not self._resume():
                self._dropped += len(data)
                return
            for offset, at in marks or [(0, time.time())]:
                self._mark(self._put_total + offset, at)
            # Once anything waits on disk, newer bytes must queue behind it there too.
            if self._spill_written > self._spill_read or (
                self._memory_bytes + len(data) > self._memory_limit
            ):
                self._write_spill(data)
            else:
                self._hold(data)
            self._ready.notify_all()

    def close(self) -> None:
        """No more input; take() returns what is left, then b""."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def take(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Up to max_bytes of the oldest bytes; waits for some unless closed or timed out."""
        return self.take_timed(max_bytes, timeout)[0]

    def take_timed(
        self, max_bytes: int, timeout: float | None = None
    ) -> tuple[bytes, list[tuple[int, float]]]:
        """As take, with when they were put: (offset in the bytes, epoch seconds) marks, the
        first at 0."""
        with self._ready:
            self._ready.wait_for(
                lambda: self._closed or self._has_data() or self._drop_reason is not None,
                timeout,
            )
            self._resume()
            if self._memory:
                parts = self._take_memory(max_bytes)
            elif self._spill_written > self._spill_read:
                parts = [self._read_spill(max_bytes)]
            else:
                return b"", []
            marks = self._taken_marks(sum(map(len, parts)))
        # Joined once the lock is let go: a flood's take copies megabytes, and the reader
        # must not wait to put meanwhile (the child would then wait on a full pipe).
        return (parts[0] if len(parts) == 1 else b"".join(parts)), marks

    def _mark(self, position: int, at: float) -> None:
        # Reads in the same millisecond share a mark: times are kept to the ms.
        if not self._marks or to_ms(at) != to_ms(self._marks[-1][1]):
            self._marks.append((position, at))

    def _taken_marks(self, length: int) -> list[tuple[int, float]]:
        start, end = self._taken_total, self._taken_total + length
        self._taken_total = end
        while len(self._marks) > 1 and self._marks[1][0] <= start:
            self._marks.popleft()
        marks = [(max(position - start, 0), at) for position, at in self._marks if position < end]
        while len(self._marks) > 1 and self._marks[1][0] <= end:
            self._marks.popleft()
        return marks

    def wait_for(self, min_bytes: int, timeout: float) -> None:
        """Wait until at least min_bytes are held or input has ended, for timeout at most."""
        with self._ready:
            self._ready.wait_for(lambda: self._closed or self._pending() >= min_bytes, timeout)

    @property
    def exhausted(self) -> bool:
        with self._ready:
            return self._closed and not self._has_data() and self._drop_reason is None

    def _hold(self, data: bytes) -> None:
        self._memory.append(data)
        self._memory_bytes += len(data)
        self._put_total += len(data)

    def _take_memory(self, max_bytes: int) -> list[bytes]:
        """The oldest pieces held, up to max_bytes in all (the last one cut to fit)."""
        parts = []
        budget = max_bytes
        while self._memory and budget > 0:
            piece = self._memory.popleft()
            if len(piece) > budget:
                self._memory.appendleft(piece[budget:])
                piece = piece[:budget]
            parts.append(piece)
            budget -= len(piece)
        self._memory_bytes -= max_bytes - budget
        return parts

    def _pending(self) -> int:
        return self._memory_bytes + self._spill_written - self._spill_read

    def _has_data(self) -> bool:
        return bool(self._memory) or self._spill_written > self._spill_read

    def _resume(self) -> bool:
        """After a loss, once all that was held is taken: the notice, then normal service."""
        if self._drop_reason is None or self._has_data():
            return False
        self._mark(self._put_total, time.time())
        self._hold(loss_notice(self._dropped, self._drop_reason))
        self._dropped, self._drop_reason = 0, None
        return True

    def _write_spill(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            if self._spill is None:
                # Unbuffered, so a failed write leaves nothing half-held in a Python buffer.
                # The OS deletes the file when it is closed, even after a crash.
                self._spill = tempfile.TemporaryFile(  # noqa: SIM115
                    buffering=0, prefix="trainlog-spill-", dir=self._spill_dir
                )
            while view:
                written = os.pwrite(self._spill.fileno(), view, self._spill_written)
                self._spill_written += written
                self._put_total += written
                view = view[written:]
        except OSError as exc:
            reason = f"the runner could not spill them to disk ({exc.strerror or exc})"
            self._dropped += len(view)
            self._drop_reason = reason
            self._first_loss = self._first_loss or reason

    def _read_spill(self, max_bytes: int) -> bytes:
        assert self._spill is not None
        size = min(max_bytes, self._spill_written - self._spill_read)
        out = os.pread(self._spill.fileno(), size, self._spill_read)
        self._spill_read += len(out)
        if self._spill_read == self._spill_written:
            # Caught up: start the file over so it never grows past one backlog.
            os.ftruncate(self._spill.fileno(), 0)
            self._spill_read = self._spill_written = 0
        return out
