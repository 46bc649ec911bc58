import base64
import random
import uuid

import pytest

from tests.helpers import new_log
from trainlog import runs, sse
from trainlog.db import Database
from trainlog.models import RunStatus
from trainlog.offsets import MAX_CHUNK_BYTES
from trainlog.store import READ_PAGE_BYTES
from trainlog.stream import (
    GONE,
    BadResumePoint,
    LogSnapshot,
    Step,
    done_event,
    log_event,
    next_step,
    read_news,
    resume_offset,
)


def test_last_event_id_wins_over_the_query_offset() -> None:
    # On reconnect a browser repeats the original URL and adds the id it last saw.
    assert resume_offset("1500", 200) == 1500
    assert resume_offset(None, 200) == 200
    assert resume_offset("", 200) == 200
    assert resume_offset(None, None) == 0


@pytest.mark.parametrize("bad", ["abc", "-5", "1e3", "12 34", str(2**63)])
def test_malformed_last_event_id_is_rejected(bad: str) -> None:
    with pytest.raises(BadResumePoint):
        resume_offset(bad, None)


def test_next_step() -> None:
    running = LogSnapshot(size=10, ended=False, exit_code=None)
    ended = LogSnapshot(size=10, ended=True, exit_code=0)
    assert next_step(5, running) is Step.READ
    assert next_step(10, running) is Step.WAIT
    assert next_step(5, ended) is Step.READ  # every byte goes out before done
    assert next_step(10, ended) is Step.DONE
    assert next_step(50, ended) is Step.DONE


def test_event_framing_matches_the_design() -> None:
    assert log_event(b"\r\x1b[0m\xff", 42) == (
        b'event: log\nid: 42\ndata: {"chunk":"DRtbMG3/"}\n\n'
    )
    assert done_event(3, 42) == b'event: done\ndata: {"exit_code":3,"final_size":42}\n\n'


@pytest.mark.parametrize("size", [0, 1, 2, 3, 1000, 256 * 1024])
def test_a_log_event_is_the_json_of_its_base64_chunk(size: int) -> None:
    # log_event assembles its JSON by hand; json.dumps of the same object is the reference.
    chunk = random.Random(size).randbytes(size)
    text = base64.b64encode(chunk).decode()
    assert log_event(chunk, 7 + size) == sse.frame("log", {"chunk": text}, event_id=7 + size)


def test_a_look_returns_what_is_new_from_any_offset_and_the_runs_state(db: Database) -> None:
    rng = random.Random(11)
    run_id, whole = new_log(db, [rng.randbytes(rng.randrange(1, 5000)) for _ in range(40)])
    for position in [0, 1, 4999, len(whole) // 2, len(whole) - 1, len(whole)]:
        snapshot, start, data = read_news(db, run_id, position, tail_bytes=100)
        assert (start, data) == (position, whole[position:])
        assert snapshot == LogSnapshot(len(whole), ended=False, exit_code=None)
    with db.write() as session:
        runs.finish(session, run_id, RunStatus.FAILED, 3)
    assert read_news(db, run_id, None, tail_bytes=100) == (
        LogSnapshot(len(whole), ended=True, exit_code=3),
        len(whole) - 100,
        whole[-100:],
    )


def test_a_look_returns_at_most_a_page(db: Database) -> None:
    piece = random.Random(5).randbytes(MAX_CHUNK_BYTES)
    run_id, whole = new_log(db, [piece] * (READ_PAGE_BYTES // MAX_CHUNK_BYTES + 2))
    _, start, data = read_news(db, run_id, 10, tail_bytes=0)
    assert (start, data) == (10, whole[10 : 10 + READ_PAGE_BYTES])


def test_a_look_at_an_unknown_run_is_a_deleted_one(db: Database) -> None:
    # A run whose rows are gone was deleted (a delete removes the run's row last): its
    # viewers are told so and the tailer stops, rather than retrying a store that answers.
    assert read_news(db, uuid.uuid4(), 0, tail_bytes=0) == (GONE, 0, b"")
