"""A light SSE client on raw asyncio streams, so one process can hold 1,000 viewers.

httpx per viewer costs far more CPU than the server work being measured on a 2-core
machine; this reads HTTP/1.1 chunked bodies and splits events itself. Three depths of work:
"drain" only finds event boundaries, "verify" checks that every byte arrives exactly once
(ids are offsets, so each id must equal the previous one plus the chunk's length) and keeps
a CRC, "probe" also timestamps `tick <ns>` lines from bench/children.py on arrival.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Viewer:
    run_id: uuid.UUID
    mode: str = "verify"  # drain | verify | probe
    offset: int = 0
    # Probe: only ticks written at or after this CLOCK_MONOTONIC time count; none until the
    # measurement sets it (so the replay of what came before never does).
    record_after_ns: int | None = None
    position: int = 0
    crc: int = 0
    events: int = 0
    errors: list[str] = field(default_factory=list)
    done: dict[str, Any] | None = None
    latencies_ms: list[float] = field(default_factory=list)
    # Set at the first log event (the replay of what was written before it came), or on failure.
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    _line: bytes = b""

    def __post_init__(self) -> None:
        self.position = self.offset

    @property
    def ok(self) -> bool:
        return not self.errors and self.done is not None

    def on_event(self, block: bytes, arrived_ns: int) -> None:
        self.events += 1
        kind, event_id, data = b"", b"", b""
        for line in block.split(b"\n"):
            if line.startswith(b"event: "):
                kind = line[7:]
            elif line.startswith(b"id: "):
                event_id = line[4:]
            elif line.startswith(b"data: "):
                data = line[6:]
        if kind == b"done":
            self.done = json.loads(data)
            if self.mode != "drain" and self.done.get("final_size") != self.position:
                self.errors.append(f"done at {self.position}, final_size {self.done}")
        elif kind == b"log":
            self.caught_up.set()
            if self.mode != "drain":
                self._check(event_id, data, arrived_ns)

    def _check(self, event_id: bytes, data: bytes, arrived_ns: int) -> None:
        chunk = base64.b64decode(json.loads(data)["chunk"])
        self.position += len(chunk)
        if int(event_id) != self.position:
            self.errors.append(f"id {event_id!r} after {self.position} bytes")
        self.crc = zlib.crc32(chunk, self.crc)
        if self.mode == "probe":
            self._timestamp(chunk, arrived_ns)

    def _timestamp(self, chunk: bytes, arrived_ns: int) -> None:
        lines = (self._line + chunk).split(b"\n")
        self._line = lines.pop()
        if self.record_after_ns is None:
            return
        for line in lines:
            if line.startswith(b"tick "):
                sent = int(line.split(b" ", 2)[1])
                if sent >= self.record_after_ns:
                    self.latencies_ms.append((arrived_ns - sent) / 1e6)


async def watch(port: int, viewer: Viewer, host: str = "127.0.0.1") -> Viewer:
    """Follow the stream until `done` (or until cancelled); errors land in viewer.errors."""
    try:
        await _watch(host, port, viewer)
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        viewer.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        viewer.caught_up.set()
    return viewer


async def all_caught_up(viewers: list[Viewer]) -> None:
    """Until every viewer is connected and has had its first log event: the server has set up
    every stream and replayed what came before, and only live fan-out remains."""
    await asyncio.gather(*(v.caught_up.wait() for v in viewers))


async def _watch(host: str, port: int, viewer: Viewer) -> None:
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
    path = f"/api/runs/{viewer.run_id}/logs/stream?offset={viewer.offset}"
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    try:
        status = await reader.readline()
        if b" 200 " not in status:
            raise ValueError(f"status {status!r}")
        headers = (await reader.readuntil(b"\r\n\r\n")).lower()
        if b"transfer-encoding: chunked" not in headers:
            raise ValueError("expected a chunked body")
        pending = b""
        while viewer.done is None:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                break
            piece = await reader.readexactly(size + 2)
            arrived = time.monotonic_ns()
            pending += piece[:-2]
            while b"\n\n" in pending:
                block, pending = pending.split(b"\n\n", 1)
                viewer.on_event(block, arrived)
        if viewer.done is None:
            raise ValueError(f"stream ended without done at {viewer.position}")
    finally:
        writer.close()
