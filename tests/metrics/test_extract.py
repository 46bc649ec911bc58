"""Points' lines and offsets point at the bytes they came from, fed in any pieces."""

from __future__ import annotations

from trainlog.metrics.extract import Cursor, Point, extract
from trainlog.metrics.patterns import Rules

RULES = Rules()

LOG = (
    b"starting\r\n"
    b"\x1b[32mepoch 1\x1b[0m: loss 0.9 acc 0.1\r\n"
    b" 10%|#   | 1/10 [00:00<00:01, loss=0.8]\r 20%|##  | 2/10 [00:00<00:01, loss=0.7]\r\n"
    + "épsilon ünïcode lr=1e-3\n".encode()
    + b"last loss=0.5"
)


def line_of(log: bytes, offset: int) -> int:
    return log.count(b"\n", 0, offset) + 1


def test_points_point_at_their_lines_and_bytes() -> None:
    points, cursor = extract(LOG, Cursor(), RULES, final=True)
    assert [(p.name, p.value, p.line) for p in points] == [
        ("loss", 0.9, 2),
        ("acc", 0.1, 2),
        ("loss", 0.8, 3),
        ("loss", 0.7, 3),
        ("lr", 1e-3, 4),
        ("loss", 0.5, 5),
    ]
    for point in points:
        # The offset is the first byte of the frame the value was printed in, in its line.
        assert line_of(LOG, point.offset) == point.line
        frame = LOG[point.offset :].split(b"\r")[0].split(b"\n")[0]
        assert f"{point.name}".encode() in frame
    assert points[2].offset == LOG.index(b" 10%") and points[3].offset == LOG.index(b" 20%")
    assert points[4].offset == LOG.index("épsilon".encode())
    assert cursor.offset == len(LOG)


def test_fed_in_any_pieces_gives_the_same_points() -> None:
    whole, _ = extract(LOG, Cursor(), RULES, final=True)
    for size in (1, 2, 3, 7, 16):
        points: list[Point] = []
        cursor = Cursor()
        stored = b""
        for start in range(0, len(LOG), size):
            stored += LOG[start : start + size]
            found, cursor = extract(stored[cursor.offset :], cursor, RULES)
            points.extend(found)
        found, cursor = extract(stored[cursor.offset :], cursor, RULES, final=True)
        points.extend(found)
        assert points == whole, size


def test_an_unfinished_frame_waits_until_it_ends() -> None:
    points, cursor = extract(b"a=1\nb=2\rb=3", Cursor(), RULES)
    assert [p.value for p in points] == [1, 2]
    assert cursor.offset == len(b"a=1\nb=2\r") and cursor.line == 2
    points, _ = extract(b"b=3", cursor, RULES, final=True)
    assert [(p.value, p.line, p.offset) for p in points] == [(3, 2, 8)]


def test_a_terminals_line_ends_read_as_plain_lines() -> None:
    """Under a pty every line ends in \\r\\n: its one frame, read with the plain lines."""
    log = b"step 1 loss=0.5\r\nstep 2 loss=0.4\r\n\r\nstep 3 loss=0.3\n"
    points, cursor = extract(log, Cursor(), RULES)
    assert [(p.step, p.value, p.line, p.offset) for p in points] == [
        (1, 0.5, 1, 0),
        (2, 0.4, 2, 17),
        (3, 0.3, 4, 36),
    ]
    assert cursor == Cursor(len(log), 5, {"loss": 3})
