import pytest

from trainlog.offsets import (
    ByteRange,
    RangeNotSatisfiable,
    parse_decimal,
    parse_range_header,
    slice_chunks,
    split_chunks,
    unseen_part,
)

CHUNKS = [(0, b"abc"), (3, b"defg"), (7, b"hi")]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(0, 9, b"abcdefghi"), (2, 5, b"cde"), (3, 7, b"defg"), (8, 100, b"i"), (5, 5, b"")],
)
def test_slice_chunks_returns_exactly_the_range(start: int, end: int, expected: bytes) -> None:
    assert slice_chunks(CHUNKS, start, end) == expected


def test_split_chunks_covers_the_data_in_bounded_pieces() -> None:
    pieces = list(split_chunks(100, b"x" * 10, max_size=4))
    assert [(start, len(data)) for start, data in pieces] == [(100, 4), (104, 4), (108, 2)]


def test_unseen_part_makes_retried_appends_idempotent() -> None:
    assert unseen_part(stored_size=10, offset=10, data=b"new") == b"new"
    assert unseen_part(stored_size=13, offset=10, data=b"new") == b""
    assert unseen_part(stored_size=11, offset=10, data=b"new") == b"ew"


def test_unseen_part_refuses_a_gap() -> None:
    with pytest.raises(ValueError, match="gap"):
        unseen_part(stored_size=5, offset=6, data=b"x")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", ByteRange(0, 10)),
        ("bytes=5-", ByteRange(5, 100)),
        ("bytes=-10", ByteRange(90, 100)),
        ("bytes=-1000", ByteRange(0, 100)),
        ("bytes=95-1000", ByteRange(95, 100)),
    ],
)
def test_parse_range_header(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range_header(header, 100) == expected


@pytest.mark.parametrize(
    "header",
    [
        "bytes=100-",
        "bytes=200-300",
        "bytes=-0",
        "",
        "items=0-1",
        "bytes=0-1,5-6",
        "bytes=abc",
        "bytes=9-3",
        "bytes=-",
        "bytes=1-2-3",
        # Digits to str.isdigit, but not ASCII: "²" (one Latin-1 byte on the wire), "٣".
        "bytes=\xb2-",
        "bytes=0-\xb9",
        "bytes=-\xb3",
        "bytes=\u0663-",
    ],
)
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range_header(header, 100)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("0042", 42),
        (str(2**70), 2**70),
        *[(text, None) for text in ("", "-1", "+1", " 1", "1_000", "\xb2", "\u0663", "1\xb2")],
    ],
)
def test_parse_decimal_reads_ascii_digits_only(text: str, expected: int | None) -> None:
    assert parse_decimal(text) == expected
