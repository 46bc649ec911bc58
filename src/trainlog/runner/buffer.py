"""The runner's hand-off between the pipe reader and the database writer."""

from __future__ import annotations

import tempfile
import threading
from typing import BinaryIO


class SpillBuffer:
    """A FIFO of bytes that never blocks the producer.

    Up to ``memory_limit`` bytes are held in memory; beyond that, new bytes go to a temporary
    file until the consumer has caught up, so a slow or unreachable database costs disk space,
    never a stalled child. Bytes come out in the order they went in.
    """

    def __init__(self, memory_limit: int, spill_dir: str | None = None) -> None:
        self._memory_limit = memory_limit
        self._spill_dir = spill_dir
        self._memory = bytearray()
        self._spill: BinaryIO | None = None
        self._spill_read = 0
        self._spill_written = 0
        self._closed = False
        self._ready = threading.Condition()

    @property
    def pending(self) -> int:
        with self._ready:
            return len(self._memory) + self._spill_written - self._spill_read

    @property
    def spilled(self) -> int:
        """Bytes waiting on disk right now."""
        with self._ready:
            return self._spill_written - self._spill_read

    def put(self, data: bytes) -> None:
        with self._ready:
            # Once anything waits on disk, newer bytes must queue behind it there too.
            if self._spill_written > self._spill_read or (
                len(self._memory) + len(data) > self._memory_limit
            ):
                self._write_spill(data)
            else:
                self._memory += data
            self._ready.notify_all()

    def close(self) -> None:
        """No more input; take() returns what is left, then b""."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def take(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Up to max_bytes of the oldest bytes; waits for some unless closed or timed out."""
        with self._ready:
            self._ready.wait_for(lambda: self._closed or self._has_data(), timeout)
            if self._memory:
                out = bytes(self._memory[:max_bytes])
                del self._memory[:max_bytes]
                return out
            if self._spill_written > self._spill_read:
                return self._read_spill(max_bytes)
            return b""

    @property
    def exhausted(self) -> bool:
        with self._ready:
            return self._closed and not self._has_data()

    def _has_data(self) -> bool:
        return bool(self._memory) or self._spill_written > self._spill_read

    def _write_spill(self, data: bytes) -> None:
        if self._spill is None:
            # Lives as long as the buffer; the OS deletes it when closed, even after a crash.
            self._spill = tempfile.TemporaryFile(  # noqa: SIM115
                prefix="trainlog-spill-", dir=self._spill_dir
            )
        self._spill.seek(self._spill_written)
        self._spill.write(data)
        self._spill_written += len(data)

    def _read_spill(self, max_bytes: int) -> bytes:
        assert self._spill is not None
        self._spill.seek(self._spill_read)
        out = self._spill.read(min(max_bytes, self._spill_written - self._spill_read))
        self._spill_read += len(out)
        if self._spill_read == self._spill_written:
            # Caught up: start the file over so it never grows past one backlog.
            self._spill.seek(0)
            self._spill.truncate()
            self._spill_read = self._spill_written = 0
        return out
