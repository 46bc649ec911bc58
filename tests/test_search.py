"""Whole-log search on SQLite and PostgreSQL: every matching line, by its plain text, with
its number, offset and time; resumable; bad patterns refused."""

from __future__ import annotations

import pytest

from tests.helpers import new_run
from tests.test_lines import append, lines_of
from trainlog.db import Database
from trainlog.logread import search
from trainlog.logread.search import BadQuery, matcher

ESC = b"\x1b"


def test_search_finds_the_first_and_last_byte_and_inside_redraws(db: Database) -> None:
    run_id = new_run(db)
    log = (
        b"Needle at the very first byte\n"
        + b"".join(f"step {i} loss 0.{i:04d}\n".encode() for i in range(20_000))
        + b"epoch 3:  10%|#  |\repoch 3: 100%|###|\n"  # a tqdm redraw: one line
        + ESC + b"[31mERR" + ESC + b"[0mOR: coloured in pieces\n"
        + b"x" * 3_000_000 + b"\n"  # a long line, then more chunks
        + b"the last line ends in a needle"
    )  # fmt: skip
    offset = 0
    for cut in range(0, len(log), 700_000):
        offset = append(db, run_id, offset, log[cut : cut + 700_000], 1_700_000_000.0 + cut)
    lines = lines_of(log)
    starts = [sum(len(line) for line in lines[:i]) for i in (0, 20_001, 20_002, len(lines) - 1)]

    found = search.search(db, run_id, matcher("needle", False, False), 0, 100)
    assert [(m.line, m.offset) for m in found.matches] == [
        (1, 0),
        (len(lines), starts[3]),
    ]
    assert found.matches[0].text == "Needle at the very first byte"
    assert found.matches[0].time == 1_700_000_000.0
    assert found.next_after is None and found.scanned_to == len(log)
    # Case, when asked for.
    assert len(search.search(db, run_id, matcher("needle", False, True), 0, 9).matches) == 1

    # The redrawn line shows its last frame only: the first is not what a terminal shows.
    redraw = search.search(db, run_id, matcher("100%", False, False), 0, 9).matches
    assert [(m.line, m.offset, m.text) for m in redraw] == [
        (20_002, starts[1], "epoch 3: 100%|###|")
    ]
    assert search.search(db, run_id, matcher(" 10%", False, False), 0, 9).matches == []
    assert search.search(db, run_id, matcher(r"^epoch \d+: 100", True, False), 0, 9).matches
    # Colours are not text.
    coloured = search.search(db, run_id, matcher("ERROR:", False, True), 0, 9).matches
    assert [(m.line, m.offset) for m in coloured] == [(20_003, starts[2])]

    # Resuming: pages of 3 through 40 matches, no gap, no repeat.
    everything = search.search(db, run_id, matcher(r"loss 0\.00[0-3]", True, False), 0, 1000)
    assert len(everything.matches) == 40
    pages, after = [], 0
    while True:
        page = search.search(db, run_id, matcher(r"loss 0\.00[0-3]", True, False), after, 3)
        pages.extend(page.matches)
        if page.next_after is None:
            break
        after = page.next_after
    assert pages == everything.matches


def test_a_search_out_of_time_says_where_to_resume(db: Database) -> None:
    run_id = new_run(db)
    log = b"".join(f"line {i}\n".encode() for i in range(600_000))
    append(db, run_id, 0, log, 1_700_000_000.0)
    found = search.search(db, run_id, matcher("line 599999", False, False), 0, 10, budget=0)
    assert found.matches == [] and found.next_after == found.scanned_to
    assert 0 < found.next_after < len(log) and log[found.next_after - 1 : found.next_after] == b"\n"
    rest = search.search(db, run_id, matcher("line 599999", False, False), found.next_after, 10)
    assert [m.line for m in rest.matches] == [600_000]


@pytest.mark.parametrize("pattern", ["(", "a{2,1}", "x**"])
def test_a_bad_pattern_is_refused_naming_the_problem(pattern: str) -> None:
    with pytest.raises(BadQuery, match="not a valid regular expression"):
        matcher(pattern, True, False)
