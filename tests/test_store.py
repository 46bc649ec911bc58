"""The log store on SQLite and PostgreSQL: append-only chunks, reads by offset."""

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from tests.helpers import new_run
from trainlog import logread, store
from trainlog.db import Database, normalize_url
from trainlog.models import ChunkCodec, LogChunk
from trainlog.notify import CHANNEL
from trainlog.offsets import MAX_CHUNK_BYTES


def append(db: Database, run_id: uuid.UUID, offset: int, data: bytes) -> int:
    """As the runner appends: in one statement where it can, else in a transaction."""
    encoded = store.encode_append(run_id, offset, data)
    size = store.append_at_once(db, encoded)
    if size is not None:
        return size
    with db.write() as session:
        return store.append_encoded(session, encoded)


def test_an_append_at_once_stores_and_wakes_viewers(db: Database, database_url: str) -> None:
    run_id = new_run(db)
    encoded = store.encode_append(run_id, 0, b"line\n")
    if db.engine.dialect.name == "postgresql":
        conninfo = normalize_url(database_url).set(drivername="postgresql")
        url = conninfo.render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(f"LISTEN {CHANNEL}")
            assert store.append_at_once(db, encoded) == 5
            heard = [notice.payload for notice in pg.notifies(timeout=5, stop_after=1)]
        assert heard == [str(run_id)]
    else:
        assert store.append_at_once(db, encoded) == 5
    # Not as long as expected any more: nothing is stored, and the caller is told so.
    assert store.append_at_once(db, encoded) is None
    # Several chunks (a transaction on either database), and again once it is stored.
    flood = b"x" * (MAX_CHUNK_BYTES + 10)
    several = store.encode_append(run_id, 5, flood)
    assert store.append_at_once(db, several) == 5 + len(flood)
    assert store.append_at_once(db, several) is None
    with db.read() as session:
        assert logread.read(session, run_id, 0, 100) == b"line\n" + flood[:95]
        assert store.log_size(session, run_id) == 5 + len(flood)


def test_bytes_in_equal_bytes_out_at_any_range(db: Database) -> None:
    run_id = new_run(db)
    rng = random.Random(1)
    written = bytearray()
    for _ in range(40):
        data = rng.randbytes(rng.choice([1, 7, 4096, 70_000]))
        assert append(db, run_id, len(written), data) == len(written) + len(data)
        written += data
    with db.read() as session:
        assert store.log_size(session, run_id) == len(written)
        for _ in range(50):
            start = rng.randrange(0, len(written))
            end = rng.randrange(start, len(written) + 10)
            assert logread.read(session, run_id, start, end) == bytes(written[start:end])
    assert b"".join(logread.iter_bytes(db, run_id, 0, len(written))) == written


def test_a_retried_append_is_stored_once(db: Database) -> None:
    run_id = new_run(db)
    append(db, run_id, 0, b"hello ")
    # The runner retries when a commit's answer was lost: same offset, same bytes.
    assert append(db, run_id, 0, b"hello ") == 6
    assert append(db, run_id, 0, b"hello world") == 11
    with db.read() as session:
        assert logread.read(session, run_id, 0, 100) == b"hello world"


def test_concurrent_appends_of_the_same_bytes_store_them_once(db: Database) -> None:
    # A runner whose retry races its own first attempt (still committing on the server).
    run_id = new_run(db)
    append(db, run_id, 0, b"start ")
    barrier = threading.Barrier(8)

    def attempt() -> int:
        barrier.wait()
        return append(db, run_id, 6, b"the same line\n")

    with ThreadPoolExecutor(8) as pool:
        sizes = list(pool.map(lambda _: attempt(), range(8)))
    assert sizes == [20] * 8
    with db.read() as session:
        assert logread.read(session, run_id, 0, 100) == b"start the same line\n"


def test_an_append_that_would_leave_a_gap_changes_nothing(db: Database) -> None:
    run_id = new_run(db)
    append(db, run_id, 0, b"abc")
    with pytest.raises(ValueError, match="gap"):
        append(db, run_id, 10, b"xyz")
    with db.read() as session:
        assert store.log_size(session, run_id) == 3


def test_large_appends_become_bounded_chunks(db: Database) -> None:
    run_id = new_run(db)
    data = random.Random(2).randbytes(3 * MAX_CHUNK_BYTES + 5)
    append(db, run_id, 0, data)
    with db.read() as session:
        sizes = [
            len(chunk.data)
            for chunk in session.query(LogChunk).filter_by(run_id=run_id).order_by("start_offset")
        ]
        assert max(sizes) <= MAX_CHUNK_BYTES and sum(sizes) == len(data)
        tail_start = len(data) - 10
        assert logread.read(session, run_id, tail_start, len(data)) == data[tail_start:]


def test_appends_never_rewrite_earlier_chunks(db: Database) -> None:
    run_id = new_run(db)
    append(db, run_id, 0, b"first")
    with db.read() as session:
        before = session.query(LogChunk).filter_by(run_id=run_id).one().data
    append(db, run_id, 5, b"second")
    with db.read() as session:
        chunks = session.query(LogChunk).filter_by(run_id=run_id).order_by("start_offset").all()
        assert [(c.start_offset, c.data) for c in chunks] == [(0, before), (5, b"second")]


def test_unknown_run(db: Database) -> None:
    with db.read() as session, pytest.raises(store.UnknownLog):
        store.log_size(session, uuid.uuid4())


def test_a_flood_is_compressed_as_it_is_written_and_reads_back_exactly(db: Database) -> None:
    run_id = new_run(db)
    bar = b"".join(b"\r 42%%|####      | %d/1000 [00:01<00:02]" % i for i in range(40000))
    append(db, run_id, 0, bar)
    with db.read() as session:
        chunks = session.query(LogChunk).filter_by(run_id=run_id).all()
        assert {chunk.codec for chunk in chunks} == {ChunkCodec.ZSTD}
        assert sum(len(chunk.data) for chunk in chunks) < len(bar) / 10
        assert logread.read(session, run_id, 1000, 5000) == bar[1000:5000]
    assert b"".join(logread.iter_bytes(db, run_id, 0, len(bar))) == bar
