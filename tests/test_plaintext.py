"""The plain-text renderer: what a terminal would leave, from bytes fed in any pieces."""

from __future__ import annotations

import io
import logging

import pytest
from tqdm import tqdm

from tests.programs.emit import expected_output
from trainlog.plaintext import MAX_LINE_CHARS, MAX_SEQUENCE_CHARS, PlainText, plain_text

ESC = b"\x1b"


def render(data: bytes, rows: int = 40) -> str:
    return b"".join(plain_text([data], rows)).decode()


def render_bytewise(data: bytes, rows: int = 40) -> str:
    return b"".join(plain_text((data[i : i + 1] for i in range(len(data))), rows)).decode()


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"a\nb\r\nc", "a\nb\nc\n"),
        (b"one\n\n\nthree\n", "one\n\n\nthree\n"),
        (b"loss 0.123\rloss 1\n", "loss 1.123\n"),  # a redraw only overwrites what it writes
        (b"10%\r50%\r100%\r\n", "100%\n"),
        (b"abc\b\bX\n", "aXc\n"),
        (b"a\tb\n", "a       b\n"),
        (b"long old text\r" + ESC + b"[Knew\n", "new\n"),
        (b"long old text" + ESC + b"[2K\rnew\n", "new\n"),
        (b"abcdef" + ESC + b"[3D" + ESC + b"[1K!\n", "   !ef\n"),
        (
            ESC + b"[1;31mred" + ESC + b"[0m " + ESC + b"[38;5;208morange" + ESC + b"[m\n",
            "red orange\n",
        ),
        (
            ESC + b"]0;window title\x07text" + ESC + b"]8;;http://x" + ESC + b"\\link\n",
            "textlink\n",
        ),
        (ESC + b"[?25lhidden cursor" + ESC + b"[?25h\n", "hidden cursor\n"),
        (b"bad \xff\xfe utf-8 \xe2\x98\x83\n", "bad \ufffd\ufffd utf-8 \u2603\n"),
        (b"trailing   \n", "trailing\n"),
        (b"a\x00b\x07c\n", "abc\n"),
        (b"x" + ESC + b"[5Gy" + ESC + b"[2;3Hz\n", "x   y\n  z\n"),
        (b"", ""),
    ],
)
def test_renders_what_a_terminal_shows(raw: bytes, text: str) -> None:
    assert render(raw) == text
    assert render_bytewise(raw) == text  # pieces split anywhere, even inside a sequence


def test_cursor_up_redraws_of_several_bars_leave_their_final_state() -> None:
    # How tqdm and rich redraw a block of lines: up, erase, rewrite.
    frames = [f"bar A {i}%\nbar B {i // 2}%\n".encode() for i in range(0, 101, 20)]
    up = (ESC + b"[1A" + ESC + b"[2K") * 2
    raw = b"header\n" + up.join(frames) + b"footer\n"
    assert render(raw) == "header\nbar A 100%\nbar B 50%\nfooter\n"


def test_lines_are_handed_out_once_they_leave_the_screen() -> None:
    renderer = PlainText(rows=3)
    assert renderer.feed(b"1\n2\n") == ""
    assert renderer.feed(b"3\n") == "1\n"
    assert renderer.feed(b"4\n5\n") == "2\n3\n"
    # The cursor cannot go above the screen, so what was handed out never changes.
    assert renderer.feed(ESC + b"[9A" + b"X") == ""
    assert renderer.finish() == "X\n5\n"


def test_clearing_the_screen_keeps_what_was_shown() -> None:
    assert render(b"before\n" + ESC + b"[2J" + ESC + b"[Hafter\n") == "before\nafter\n"


def test_a_line_that_never_ends_wraps_at_the_cap() -> None:
    renderer = PlainText()
    pieces = [renderer.feed(b"x" * 100_000) for _ in range(10)]
    assert sum(len(piece) for piece in pieces) > 0  # handed out on the way, not at the end
    lines = ("".join(pieces) + renderer.finish()).splitlines()
    assert {len(line) for line in lines[:-1]} == {MAX_LINE_CHARS}
    assert sum(len(line) for line in lines) == 1_000_000


def test_an_endless_escape_string_is_skipped_without_growing() -> None:
    image = ESC + b"]1337;File=inline=1:" + b"QUJD" * (MAX_SEQUENCE_CHARS * 4) + b"\x07"
    pieces = [image[i : i + 1000] for i in range(0, len(image), 1000)]
    assert render(b"before " + b"".join(pieces) + b"after\n") == "before after\n"
    assert b"".join(plain_text([b"a ", *pieces, b"b\n"])).decode() == "a b\n"


def test_an_unfinished_sequence_at_the_end_shows_nothing() -> None:
    assert render(b"text" + ESC + b"[1;3") == "text\n"
    assert render(b"text" + ESC + b"]0;title") == "text\n"


def test_emits_bytes_every_kind_of_program_writes() -> None:
    text = render(expected_output())
    assert "\x1b" not in text and "\r" not in text
    lines = text.splitlines()
    assert lines[:3] == ["plain line", "green on stderr", "epoch 1: 100%|##########|"]
    assert lines[-1] == "final: loss=0.01"
    assert render_bytewise(expected_output()[:5000]) == render(expected_output()[:5000])


def test_a_real_tqdm_log_has_one_line_per_finished_bar() -> None:
    out = io.StringIO()
    for epoch in range(3):
        for _ in tqdm(range(200), desc=f"epoch {epoch}", file=out, ncols=120, mininterval=0):
            pass
    raw = out.getvalue().encode()
    assert raw.count(b"\r") > 600  # every step redrew the bar
    lines = render(raw).splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 0", "epoch 1", "epoch 2"]
    assert all("100%" in line and "200/200" in line for line in lines)


def test_nested_tqdm_bars_leave_only_the_outer_one() -> None:
    out = io.StringIO()
    for _ in tqdm(range(3), desc="outer", file=out, ncols=80, mininterval=0):
        for _ in tqdm(range(5), desc="inner", file=out, ncols=80, mininterval=0, leave=False):
            pass
    assert "\x1b[A" in out.getvalue()  # the inner bar is drawn below, then the cursor goes up
    lines = render(out.getvalue().encode()).splitlines()
    assert len(lines) == 1 and lines[0].startswith("outer: 100%")


def test_coloured_logging_loses_only_its_colours() -> None:
    from uvicorn.logging import DefaultFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s", use_colors=True))
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "careful", None, None)
    handler.emit(record)
    assert "\x1b[" in stream.getvalue()
    assert render(stream.getvalue().encode()) == "WARNING:  careful\n"
