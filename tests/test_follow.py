"""Following a growing log: the tailer's look (read_news) and what a follower does next."""

import random
import uuid

from tests.helpers import new_log
from trainlog import runs
from trainlog.db import Database
from trainlog.logread import READ_PAGE_BYTES
from trainlog.logread.follow import GONE, LogSnapshot, Step, next_step, read_news
from trainlog.models import RunStatus
from trainlog.offsets import MAX_CHUNK_BYTES


def test_next_step() -> None:
    running = LogSnapshot(size=10, ended=False, exit_code=None)
    ended = LogSnapshot(size=10, ended=True, exit_code=0)
    assert next_step(5, running) is Step.READ
    assert next_step(10, running) is Step.WAIT
    assert next_step(5, ended) is Step.READ  # every byte goes out before done
    assert next_step(10, ended) is Step.DONE
    assert next_step(50, ended) is Step.DONE


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
