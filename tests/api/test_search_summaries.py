"""Whole-log search over a compacted multi-chunk log, whose chunks carry search summaries, on
SQLite and PostgreSQL through a real server: the answers are those of a brute-force search
of every stored line's plain text, with the summaries and without them."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from sqlalchemy import delete, func, select

from tests.api.test_ingest import new_remote_run, patch
from tests.helpers import Server, wait_for
from tests.test_lines import lines_of
from trainlog.db import Database
from trainlog.logread.search import TEXT_CHARS, plain_line
from trainlog.models import ChunkSummary, LogChunk
from trainlog.offsets import MAX_CHUNK_BYTES

MIB = MAX_CHUNK_BYTES
ESC = b"\x1b"
CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


def filler(start_step: int, until: int) -> bytes:
    lines, step, size = [], start_step, 0
    while size < until:
        line = f"step {step} loss=0.{step % 9973:04d} {'.' * 60} ok\n".encode()
        lines.append(line)
        size += len(line)
        step += 1
    return b"".join(lines)[:until]


def the_log() -> bytes:
    """5.5 MiB in six 1 MiB chunks (as PATCHed below), a rare word in a few of them."""
    log = bytearray(b"Kelvin: the \xe2\x84\xaaELVIN scale\n")  # K is KELVIN SIGN
    log += filler(1, MIB // 2 - len(log)) + b"\n"
    log += b"Narwhal-Sighting at dawn\n"
    log += filler(50_000, MIB + MIB // 3 - len(log)) + b"\n"
    # A tqdm redraw: the line shows its last frame only.
    log += b"epoch 1:  10%|#         | zebra\repoch 1: 100%|##########| quokka-found\n"
    # A match across the cut between chunks 1 and 2.
    straddle = b"first half walrus-straddle second half\n"
    log += filler(90_000, 2 * MIB - straddle.index(b"-") - len(log)) + b"\n"
    log += straddle
    # A match written in colours: not contiguous in the raw bytes.
    log += filler(150_000, 3 * MIB - 9_000 - len(log)) + b"\n"
    log += ESC + b"[31mCARI" + ESC + b"[0mBOU-herd: colours\n"
    # A line from chunk 3 to chunk 5, through chunk 4 (which holds no newline).
    log += filler(200_000, 3 * MIB + MIB // 2 - len(log)) + b"\n"
    log += b"okapi-early " + b"x" * (MIB + MIB // 2) + b" okapi-late\n"
    log += filler(300_000, 5 * MIB + MIB // 2 - len(log)) + b"\n"
    log += b"the end: ibex-final"  # unterminated
    return bytes(log)


QUERIES: list[tuple[str, bool]] = [
    ("kelvin", False),
    ("narwhal-sighting", False),
    ("Narwhal-Sighting", True),
    ("narwhal-sighting", True),
    ("quokka-found", False),
    ("zebra", False),  # only in a frame drawn over
    ("walrus-straddle", False),
    ("caribou-herd", False),
    ("CARIBOU-herd", True),
    ("caribou-herd", True),
    ("okapi-early", False),
    ("okapi-late", False),
    ("ibex-final", False),
    ("step 1234", False),  # in many chunks
    ("ib", False),  # too short for a trigram
]


def plain_lines(log: bytes) -> list[tuple[int, str]]:
    """(offset, plain text) of each line; rendered only where a terminal would change it."""
    lines, offset = [], 0
    for line in lines_of(log):
        quiet = len(line) < 16_000 and not CONTROL.search(line.rstrip(b"\n"))
        lines.append((offset, line.decode().rstrip("\n") if quiet else plain_line(line)))
        offset += len(line)
    return lines


FOUND = {"kelvin", "Narwhal-Sighting", "quokka-found", "walrus-straddle", "CARIBOU-herd"}
FOUND |= {"okapi-early", "okapi-late", "ibex-final", "step 1234", "ib"}


def brute_force(lines: list[tuple[int, str]], query: str, case: bool) -> list[Any]:
    """(line, offset, text) of every line whose plain text holds query."""
    return [
        (number, offset, text[:TEXT_CHARS])
        for number, (offset, text) in enumerate(lines, 1)
        if (query in text if case else query.lower() in text.lower())
    ]


def searched(client: httpx.Client, run_id: str, query: str, case: bool, limit: int) -> Any:
    """Every match, page by page, resuming at next_after."""
    matches, after = [], 0
    while True:
        params = {"q": query, "case": int(case), "after": after, "limit": limit}
        page = client.get(f"/api/runs/{run_id}/logs/search", params=params)
        assert page.status_code == 200, page.text
        answer = page.json()
        matches += answer["matches"]
        if answer["next_after"] is None:
            assert answer["scanned_to"] == len(the_log())
            return matches
        after = answer["next_after"]


def summarized(db: Database, run_id: str) -> tuple[int, int]:
    with db.read() as session:
        chunks = session.scalar(select(func.count()).where(LogChunk.run_id == uuid.UUID(run_id)))
        summaries = session.scalar(
            select(func.count()).where(ChunkSummary.run_id == uuid.UUID(run_id))
        )
    return chunks or 0, summaries or 0


def test_summaries_skip_chunks_and_change_no_answer(server: Server, db: Database) -> None:
    log = the_log()
    with server.client() as client:
        run_id, auth = new_remote_run(client)
        for start in range(0, len(log), MIB):
            assert patch(client, run_id, auth, start, log[start : start + MIB]).is_success
        end = {"status": "succeeded", "exit_code": 0, "size": len(log)}
        assert client.post(f"/api/runs/{run_id}/finish", json=end, headers=auth).is_success
        # The server compacts an ended remote run's log, summaries included.
        wait_for(lambda: summarized(db, run_id) == (6, 6) or None)

        lines = plain_lines(log)
        expected = {(query, case): brute_force(lines, query, case) for query, case in QUERIES}
        assert all(found for (query, _), found in expected.items() if query in FOUND)
        assert expected["zebra", False] == [] and expected["caribou-herd", True] == []
        answers = {}
        for query, case in QUERIES:
            matches = searched(client, run_id, query, case, limit=25)
            got = [(m["line"], m["offset"], m["text"]) for m in matches]
            assert got == expected[query, case], query
            assert all(isinstance(m["time"], float) for m in matches)
            answers[query, case] = matches

        # Chunks without summaries (as stored before them) are read: the same answers.
        with db.write() as session:
            session.execute(
                delete(ChunkSummary).where(
                    ChunkSummary.run_id == uuid.UUID(run_id),
                    ChunkSummary.start_offset.in_([MIB, 4 * MIB]),
                )
            )
        for query, case in QUERIES:
            assert searched(client, run_id, query, case, limit=25) == answers[query, case], query
