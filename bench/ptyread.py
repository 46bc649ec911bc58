"""The bare PTY reader, the baseline for PTY capture: `ptyread.py OUTFILE CMD...`.

Runs CMD on a fresh pseudo-terminal and copies the master side to OUTFILE, 64 KiB reads,
nothing else; what a terminal emulator would have to do at the least.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys


def main(out_path: str, argv: list[str]) -> int:
    master, slave = pty.openpty()
    child = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, start_new_session=True
    )
    os.close(slave)
    with open(out_path, "wb") as out:
        while True:
            try:
                data = os.read(master, 64 * 1024)
            except OSError:  # EIO: every writer has gone
                break
            if not data:
                break
            out.write(data)
    os.close(master)
    return child.wait()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2:]))
