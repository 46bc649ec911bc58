"""A log as plain text: what a terminal would leave on screen, computed as the bytes stream by.

A small terminal emulator that keeps only text: colours and other escape sequences are
dropped; carriage returns, backspaces, erases and cursor moves (tqdm and rich redraw their
bars with them) overwrite text the way a terminal does, so a progress bar that was redrawn a
thousand times leaves one line, in its final state.

Memory is bounded whatever the input: only the last ``rows`` lines (the screen, the only
lines a cursor can still move back to) are held; older lines are final and handed out. A
line is capped at MAX_LINE_CHARS, and an unfinished escape sequence at MAX_SEQUENCE_CHARS.

This is for the text export only: bytes are decoded with errors="replace" here, while stored
and streamed bytes are never altered.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator

DEFAULT_ROWS = 40
# A line that never ends must not grow without bound: at this many characters it wraps onto
# a new line, as a (very wide) terminal would wrap it. Nothing is dropped.
MAX_LINE_CHARS = 16 * 1024
# An escape sequence still open after this many characters is given up: a CSI is dropped, a
# string (OSC, DCS: titles, hyperlinks, inline images) is skipped to its terminator.
MAX_SEQUENCE_CHARS = 4096
TAB_WIDTH = 8

# Colour and style only: removed in one pass before anything else (the common case, fast).
_SGR = re.compile(r"\x1b\[[0-9;:]*m")
_CONTROL = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]                               # CSI: cursor moves, erases, modes
  | \x1b[\]P_^X][^\x07\x1b]*(?:\x07|\x1b\\|(?=\x1b))      # OSC, DCS, APC, PM, SOS strings
  | \x1b[ -/]*[0-~]                                       # other escapes (charsets, save, ...)
  | [\x00-\x09\x0b-\x1f\x7f\x80-\x9f]                     # other C0 and C1 controls
    """,
    re.VERBOSE,
)
# The start of a sequence the input ends in the middle of (an OSC may end in its ST's ESC).
_UNFINISHED = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|[\]P_^X][^\x07\x1b]*\x1b?|[ -/]*)\Z")
_STRING_START = re.compile(r"\x1b[\]P_^X]")
_STRING_END = re.compile(r"\x07|\x1b")


def _numbers(params: str) -> list[int]:
    """CSI parameters; an empty or malformed one is 0, which each command reads as its default."""
    return [int(p) if p.isdigit() else 0 for p in params.split(";")]


class PlainText:
    """Feed a log's bytes in pieces of any size; get its finished lines of text back.

    ``feed`` returns the lines that can no longer change, each ending in "\\n"; ``finish``
    returns the rest (the screen as the log left it).
    """

    def __init__(self, rows: int = DEFAULT_ROWS) -> None:
        self._rows = max(rows, 1)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lines: list[str] = [""]
        self._row = 0
        self._col = 0
        self._saved = (0, 0)
        self._pending = ""
        self._skipping_string = False
        self._out: list[str] = []

    def feed(self, data: bytes) -> str:
        text = self._pending + self._decoder.decode(data)
        self._pending = ""
        if self._skipping_string:
            text = self._skip_string(text)
        unfinished = self._unfinished_start(text)
        if unfinished is not None:
            text, self._pending = text[:unfinished], text[unfinished:]
            if len(self._pending) > MAX_SEQUENCE_CHARS:
                self._skipping_string = bool(_STRING_START.match(self._pending))
                self._pending = ""
        self._apply(text)
        return self._take_output()

    def finish(self) -> str:
        # An escape sequence cut off by the end of the log shows nothing, as in a terminal.
        self._pending = ""
        self._apply(self._decoder.decode(b"", final=True))
        lines = [line.rstrip(" ") for line in self._lines]
        end = len(lines)
        # Blank lines from the cursor down (the empty line after a final newline, a bar
        # erased when it finished) are screen, not text.
        while end > self._row and not lines[end - 1]:
            end -= 1
        self._out.extend(lines[:end])
        self._lines, self._row, self._col = [""], 0, 0
        return self._take_output()

    def _take_output(self) -> str:
        if not self._out:
            return ""
        text = "\n".join(self._out) + "\n"
        self._out = []
        return text

    def _skip_string(self, text: str) -> str:
        """The rest of text after the end of an over-long string sequence being skipped."""
        end = _STRING_END.search(text)
        if end is None:
            return ""
        self._skipping_string = False
        # A BEL ends the string; an ESC is kept, to be read as the ST (ESC \\) or what follows.
        return text[end.end() :] if end.group() == "\x07" else text[end.start() :]

    @staticmethod
    def _unfinished_start(text: str) -> int | None:
        last = text.rfind("\x1b")
        if last < 0:
            return None
        # An OSC ending in the ESC of its terminator: the sequence starts at the ESC before.
        before = text.rfind("\x1b", 0, last)
        for start in (before, last):
            if start >= 0 and _UNFINISHED.match(text, start):
                return start
        return None

    def _apply(self, text: str) -> None:
        # CR LF and LF leave the same screen here (LF also returns the cursor to column 0, as
        # a pipe's LF means), so the common line ending needs no control handling at all.
        text = _SGR.sub("", text).replace("\r\n", "\n")
        position = 0
        for match in _CONTROL.finditer(text):
            if match.start() > position:
                self._print(text[position : match.start()])
            self._control(match.group())
            position = match.end()
        if position < len(text):
            self._print(text[position:])

    def _print(self, text: str) -> None:
        """Text with line feeds but no other control characters."""
        parts = text.split("\n")
        self._put(parts[0])
        for part in parts[1:]:
            self._line_feed()
            self._put(part)

    def _put(self, text: str) -> None:
        while text:
            room = MAX_LINE_CHARS - self._col
            if room <= 0:
                self._line_feed()
                room = MAX_LINE_CHARS
            piece, text = text[:room], text[room:]
            line = self._lines[self._row]
            col = self._col
            if col >= len(line):
                self._lines[self._row] = line + " " * (col - len(line)) + piece
            else:
                self._lines[self._row] = line[:col] + piece + line[col + len(piece) :]
            self._col = col + len(piece)

    def _line_feed(self) -> None:
        self._row += 1
        self._col = 0
        if self._row == len(self._lines):
            self._lines.append("")
            if len(self._lines) > self._rows:
                self._out.append(self._lines.pop(0).rstrip(" "))
                self._row -= 1
                self._saved = (max(self._saved[0] - 1, 0), self._saved[1])

    def _move_to(self, row: int, col: int) -> None:
        """Moves within the screen; a row below the last line written adds empty lines."""
        row = min(max(row, 0), self._rows - 1)
        while len(self._lines) <= row:
            self._lines.append("")
        self._row = row
        self._col = min(max(col, 0), MAX_LINE_CHARS)

    def _control(self, seq: str) -> None:
        if seq[0] != "\x1b":
            self._control_char(seq)
        elif seq.startswith("\x1b["):
            self._csi(seq)
        elif len(seq) == 2:
            self._escape(seq[1])

    def _control_char(self, char: str) -> None:
        if char == "\r":
            self._col = 0
        elif char == "\b":
            self._col = max(self._col - 1, 0)
        elif char == "\t":
            self._col = min((self._col // TAB_WIDTH + 1) * TAB_WIDTH, MAX_LINE_CHARS)
        elif char in "\x0b\x0c":
            # Vertical tab and form feed move down like a line feed, in every terminal.
            self._line_feed()

    def _escape(self, final: str) -> None:
        if final == "7":
            self._saved = (self._row, self._col)
        elif final == "8":
            self._move_to(*self._saved)
        elif final == "M":
            self._move_to(self._row - 1, self._col)
        elif final in "DE":
            col = self._col
            self._line_feed()
            if final == "D":
                self._col = col
        elif final == "c":
            self._clear_screen()

    def _csi(self, seq: str) -> None:
        params, final = seq[2:-1], seq[-1]
        if params.strip("0123456789;"):
            # Private modes (cursor shown, alternate screen, ...) and sequences with
            # intermediates (cursor style, ...) change no text.
            return
        numbers = _numbers(params)
        count = max(numbers[0], 1)
        row, col, line = self._row, self._col, self._lines[self._row]
        if final == "A":
            self._move_to(row - count, col)
        elif final == "B":
            self._move_to(min(row + count, len(self._lines) - 1), col)
        elif final == "C":
            self._move_to(row, col + count)
        elif final == "D":
            self._move_to(row, col - count)
        elif final == "E":
            self._move_to(min(row + count, len(self._lines) - 1), 0)
        elif final == "F":
            self._move_to(row - count, 0)
        elif final == "G":
            self._move_to(row, count - 1)
        elif final in "Hf":
            target_col = numbers[1] if len(numbers) > 1 else 1
            self._move_to(count - 1, max(target_col, 1) - 1)
        elif final == "d":
            self._move_to(count - 1, col)
        elif final == "K":
            self._erase_in_line(numbers[0])
        elif final == "J":
            self._erase_in_display(numbers[0])
        elif final == "X":
            self._lines[row] = line[:col] + " " * len(line[col : col + count]) + line[col + count :]
        elif final == "P":
            self._lines[row] = line[:col] + line[col + count :]
        elif final == "@" and col < len(line):
            self._lines[row] = (line[:col] + " " * count + line[col:])[:MAX_LINE_CHARS]
        elif final == "s":
            self._saved = (row, col)
        elif final == "u":
            self._move_to(*self._saved)

    def _erase_in_line(self, mode: int) -> None:
        line, col = self._lines[self._row], self._col
        if mode == 0:
            self._lines[self._row] = line[:col]
        elif mode == 1:
            self._lines[self._row] = " " * min(col + 1, len(line)) + line[col + 1 :]
        elif mode == 2:
            self._lines[self._row] = ""

    def _erase_in_display(self, mode: int) -> None:
        if mode == 0:
            self._lines[self._row] = self._lines[self._row][: self._col]
            del self._lines[self._row + 1 :]
        elif mode == 1:
            for row in range(self._row):
                self._lines[row] = ""
            self._erase_in_line(1)
        else:
            self._clear_screen()

    def _clear_screen(self) -> None:
        # What was on screen is kept, as terminals keep it in their scrollback: an export
        # that lost everything before a `clear` would be worse than useless.
        self._out.extend(line.rstrip(" ") for line in self._lines if line.strip(" "))
        self._lines, self._row, self._col = [""], 0, 0


def plain_text(pages: Iterable[bytes], rows: int = DEFAULT_ROWS) -> Iterator[bytes]:
    """The plain text (UTF-8) of a log given as pages of bytes, produced as they come."""
    renderer = PlainText(rows)
    for page in pages:
        text = renderer.feed(page)
        if text:
            yield text.encode()
    text = renderer.finish()
    if text:
        yield text.encode()
