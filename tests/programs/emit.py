"""A child process whose output is every kind of byte a terminal program writes.

Run as ``emit.py CONFIG.json``; the config says how to behave. Tests import PARTS to know
exactly which bytes were written, in which order, to which stream.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

ESC = b"\x1b"
SNOWMAN = "☃".encode()  # 3 bytes, written in two pieces below

# (file descriptor, bytes), written in this order with a flush (os.write) each.
PARTS: list[tuple[int, bytes]] = [
    (1, b"plain line\n"),
    (2, ESC + b"[32mgreen on stderr" + ESC + b"[0m\n"),
    *[(2, f"\repoch 1: {pct:3d}%|{'#' * (pct // 10):<10}|".encode()) for pct in range(0, 101, 10)],
    (2, b"\n"),
    (1, b"invalid utf-8: \xff\xfe\xc3\x28 and a NUL: \x00 end\n"),
    (1, b"split char: " + SNOWMAN[:1]),
    (1, SNOWMAN[1:] + b" done\n"),
    (1, ESC + b"[1;31mbold red" + ESC + b"[0m " + ESC + b"[38;5;208morange" + ESC + b"[0m\n"),
    (1, bytes(range(256)) * 4096),  # a 1 MiB line of every byte value, no newline
    (1, b"\nfinal: loss=0.01\n"),
]


def expected_output(repeat: int = 1) -> bytes:
    return b"".join(data for _fd, data in PARTS) * repeat


def main() -> int:
    config = json.loads(Path(sys.argv[1]).read_text()) if len(sys.argv) > 1 else {}
    if config.get("ignore_sigterm"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    delay = float(config.get("delay", 0.0))
    # Whole repeats only: it stops before the first one that starts after this file exists
    # (and ends a linger early).
    stop_when = config.get("stop_when")
    for _ in range(int(config.get("repeat", 1))):
        if stop_when and Path(stop_when).exists():
            break
        for fd, data in PARTS:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            time.sleep(delay)
    # Lingers (silent) for `linger` seconds, or until the stop file exists.
    linger_until = time.monotonic() + float(config.get("linger", 0.0))
    while time.monotonic() < linger_until and not (stop_when and Path(stop_when).exists()):
        time.sleep(min(0.05, max(linger_until - time.monotonic(), 0)))
    return int(config.get("exit_code", 0))


if __name__ == "__main__":
    sys.exit(main())
