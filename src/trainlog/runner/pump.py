"""The PTY pump: a process of its own that copies a pty master into a pipe for the runner.

A pty holds only a few KiB in flight, so a flooding child stalls unless its master is read
within a fraction of a millisecond, every time. A thread of the runner cannot promise that:
after each read it must win back the GIL from the threads that store and compress, which can
take milliseconds each time (one busy thread made 64 MiB take 84 s instead of 0.6 s here).
The pump has an interpreter to itself and does nothing but read and write; the pipe it
feeds holds up to 1 MiB, which absorbs the runner's pauses.

Run as a script (``python -I -S pump.py MASTER_FD PIPE_FD``): it imports nothing of trainlog,
so it starts in milliseconds.
"""

from __future__ import annotations

import os
import subprocess
import sys

READ_SIZE = 64 * 1024


def pump(master: int, out: int) -> None:
    """Copy master to out until the pty ends (EIO once every writer has gone) or out closes."""
    while True:
        try:
            data = os.read(master, READ_SIZE)
        except OSError:
            return
        if not data:
            return
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(out, view) :]
            except OSError:
                return  # the runner is gone; nobody is left to read


def start_pump(master: int, out: int) -> subprocess.Popen[bytes]:
    """The pump process for ``master``, writing to ``out``; the caller then closes both.

    It ends with the pty, or when stopped, and nothing else may end it before the child's
    last words are through: it has a session of its own, so a Ctrl-C at ``trainlog run``'s
    terminal does not reach it, and an empty environment, so ending the run's processes (found
    by the run id in their environment) leaves it be.
    """
    return subprocess.Popen(
        [sys.executable, "-I", "-S", __file__, str(master), str(out)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        env={},
        pass_fds=(master, out),
        start_new_session=True,
    )


if __name__ == "__main__":
    pump(int(sys.argv[1]), int(sys.argv[2]))
