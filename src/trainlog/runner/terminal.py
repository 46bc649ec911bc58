"""The pseudo-terminal a run's child writes to, so it behaves as it would in a real terminal.

Through a pipe, libraries see ``isatty()`` false and drop colours, draw 10-character progress
bars or print a line per update. Under a pty of a fixed size they draw what a user would see.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios
from typing import NamedTuple

# What xterm.js in the viewer understands; libraries pick 256 colours and cursor moves from it.
TERM = "xterm-256color"


class TerminalSize(NamedTuple):
    cols: int
    rows: int


def open_terminal(size: TerminalSize) -> tuple[int, int]:
    """A new pty of ``size``: (master, slave), neither inherited by children on its own.

    The caller gives the slave to the child as stdout and stderr, then closes its own copy:
    only then does reading the master end (EIO) once the child and its descendants are gone.
    """
    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size.rows, size.cols, 0, 0))
    except OSError:
        os.close(master)
        os.close(slave)
        raise
    return master, slave


def terminal_env(size: TerminalSize) -> dict[str, str]:
    # COLUMNS/LINES too: some libraries (shutil.get_terminal_size, rich) read them first.
    return {"TERM": TERM, "COLUMNS": str(size.cols), "LINES": str(size.rows)}


def take_controlling_terminal() -> None:
    """Make the child's stdout (the slave) its controlling terminal; a ``preexec_fn``.

    Runs in the child between fork and exec, after ``setsid`` (``start_new_session``), so the
    child leads a session without a terminal and may take this one. Then ``/dev/tty`` opens,
    its process group is the terminal's foreground group (so it gets SIGWINCH on a resize and
    may change terminal modes), and its descendants share the terminal. It is one system call
    through an already imported module, which is what keeps a ``preexec_fn`` safe in a
    process that has threads.
    """
    fcntl.ioctl(1, termios.TIOCSCTTY, 0)
