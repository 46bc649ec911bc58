"""The tailer's memory of a log's tail (pure)."""

from __future__ import annotations

from trainlog.tailer import RecentBytes


def test_recent_bytes_hold_at_least_the_last_limit_bytes_in_order() -> None:
    recent = RecentBytes(limit=10)
    data = bytes(range(100))
    position = 0
    for size in (3, 7, 1, 12, 5, 9, 30, 2):
        recent.extend(position, data[position : position + size])
        position += size
        # Never less than the limit (once that much was seen), never more than twice it.
        assert recent.end == position
        assert min(position, 10) <= len(recent.data) <= 20
        assert bytes(recent.data) == data[recent.start : position]


def test_recent_bytes_answer_only_from_a_start_they_hold() -> None:
    recent = RecentBytes(limit=100)
    recent.extend(1000, b"abcdef")
    assert recent.get(1000, 1006) == b"abcdef"
    assert recent.get(1002, 1004) == b"cd"
    # Up to what it holds: the rest is the caller's to read from the store.
    assert recent.get(1004, 5000) == b"ef"
    assert recent.get(999, 1006) == b""
    assert recent.get(1006, 1010) == b""


def test_recent_bytes_begin_afresh_after_a_jump() -> None:
    recent = RecentBytes(limit=100)
    recent.extend(0, b"abc")
    recent.extend(50, b"xyz")  # not where the last read ended
    assert (recent.start, bytes(recent.data)) == (50, b"xyz")
    assert recent.get(1, 3) == b""
