"""Many runs: paging, filters, and deleting, on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import Connection, func, select, text, update

from tests.conftest import PG_URL
from tests.helpers import new_log
from trainlog import logread, retention, runs
from trainlog.db import Database, migrate
from trainlog.metrics import store as metrics_store
from trainlog.models import (
    ExperimentRun,
    LogChunk,
    MetricCursor,
    MetricPoint,
    RunSource,
    RunStatus,
    RunTag,
    TrainingLog,
)

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def make_run(
    db: Database,
    *,
    minutes: int = 0,
    status: RunStatus = RunStatus.SUCCEEDED,
    config: str | None = None,
    name: str | None = None,
    tags: dict[str, str] | None = None,
    command: list[str] | None = None,
) -> uuid.UUID:
    with db.write() as session:
        run = runs.create(
            session, command or ["python", "train.py"], config, RunSource.CLI, name=name, tags=tags
        )
        session.flush()
        created_at = BASE + timedelta(minutes=minutes)
        session.execute(
            update(ExperimentRun)
            .where(ExperimentRun.id == run.id)
            .values(status=status, created_at=created_at)
        )
        session.execute(update(RunTag).where(RunTag.run_id == run.id).values(created_at=created_at))
        return run.id


def listed(db: Database, filters: runs.RunFilter, limit: int = 500) -> list[uuid.UUID]:
    with db.read() as session:
        return [view.run.id for view in runs.page(session, filters, limit).views]


def test_paging_returns_every_run_once_in_order_while_runs_are_created(db: Database) -> None:
    # Several runs share a creation time: the id breaks the tie, so none is skipped or repeated.
    existing = [make_run(db, minutes=i // 3) for i in range(60)]
    expected = [
        run_id
        for _, run_id in sorted(
            ((i // 3, run_id) for i, run_id in enumerate(existing)), reverse=True
        )
    ]
    stop = threading.Event()

    def create_more() -> None:
        while not stop.is_set():
            with db.write() as session:
                runs.create(session, ["new"], None, RunSource.CLI)

    creator = threading.Thread(target=create_more)
    seen: list[uuid.UUID] = []
    with db.read() as session:
        first = runs.page(session, runs.RunFilter(), 7)
    newer = {view.run.id for view in first.views} - set(existing)
    seen += [view.run.id for view in first.views if view.run.id not in newer]
    creator.start()
    try:
        after = first.next_cursor
        while after is not None:
            with db.read() as session:
                page = runs.page(session, runs.RunFilter(), 7, after)
            seen += [view.run.id for view in page.views]
            after = page.next_cursor
    finally:
        stop.set()
        creator.join()
    assert not newer  # nothing but the 60 existed when paging began
    assert seen == expected


def test_each_filter(db: Database) -> None:
    a = make_run(db, minutes=1, config="a.yaml", name="Baseline LR", tags={"team": "vision"})
    b = make_run(db, minutes=2, status=RunStatus.FAILED, tags={"team": "nlp", "seed": "1"})
    c = make_run(db, minutes=3, status=RunStatus.RUNNING, command=["python", "50%_off.py"])
    d = make_run(db, minutes=4, config="a.yaml", tags={"team": "vision", "seed": "1"})
    everything = runs.RunFilter()
    assert listed(db, everything) == [d, c, b, a]
    assert listed(db, runs.RunFilter(statuses=(RunStatus.FAILED,))) == [b]
    assert listed(db, runs.RunFilter(statuses=(RunStatus.FAILED, RunStatus.RUNNING))) == [c, b]
    assert listed(db, runs.RunFilter(config="a.yaml")) == [d, a]
    assert listed(db, runs.RunFilter(tags=(("team", "vision"),))) == [d, a]
    assert listed(db, runs.RunFilter(tags=(("team", "vision"), ("seed", "1")))) == [d]
    assert listed(db, runs.RunFilter(tags=(("team", "visio"),))) == []
    assert listed(db, runs.RunFilter(q="baseline lr")) == [a]  # the name, any case
    assert listed(db, runs.RunFilter(q="A.YAML")) == [d, a]  # the config
    assert listed(db, runs.RunFilter(q="50%_")) == [c]  # the command; % and _ are plain text
    assert listed(db, runs.RunFilter(q="%")) == [c]
    assert listed(db, runs.RunFilter(since=BASE + timedelta(minutes=2))) == [d, c, b]
    assert listed(db, runs.RunFilter(until=BASE + timedelta(minutes=2))) == [a]
    combined = runs.RunFilter(statuses=(RunStatus.SUCCEEDED,), tags=(("seed", "1"),), q="train")
    assert listed(db, combined) == [d]
    # Paged one at a time through a tag (read off the tag's own rows).
    vision = runs.RunFilter(tags=(("team", "vision"),))
    with db.read() as session:
        first = runs.page(session, vision, 1)
        second = runs.page(session, vision, 1, first.next_cursor)
    assert [v.run.id for v in first.views + second.views] == [d, a]
    assert second.next_cursor is None


# Names a search must treat as plain text, in any script and case.
SEARCH_NAMES = [
    "Größe-Ablation",
    "ÉCOLE normale",
    "日本語モデル v2",
    "lr_0.1 50% warmup",
    'say "hi"',
    "a/b\\c",
    "ΣΊΣΥΦΟΣ",
]
SEARCH_QUERIES = [
    # 1 and 2 characters (shorter than a trigram: a scan)
    "g",
    "ß",
    "日",
    "%",
    "_",
    "é",
    "gr",
    "50",
    "本語",
    "/b",
    # 3 and more (the index, when there is one)
    "größe",
    "GRÖSSE",
    "école",
    "ÉCOLE N",
    "語モデ",
    "0.1 50%",
    "lr_0",
    "r_0.",
    "% w",
    'y "h',
    '"',
    'hi"',
    "a/b\\c",
    "/b\\",
    "σίσυφος",
    "ΣΊΣ",
    "train.py",
    "python",
    "no such text",
    "ablation\nmain",
    "zzz",
]


def expected_matches(ids: dict[uuid.UUID, str], q: str) -> list[uuid.UUID]:
    """What q must find: a case-insensitive substring, as Python reads the run's text."""
    return sorted(
        (run_id for run_id, text in ids.items() if q.lower() in text), key=str, reverse=True
    )


@pytest.mark.parametrize("index_limit", [runs.INDEXED_SEARCH_MAX, 2])
def test_text_search_finds_what_a_scan_finds(
    db: Database, monkeypatch: pytest.MonkeyPatch, index_limit: int
) -> None:
    # With a limit of 2, a q matching more runs is answered by walking the runs in order.
    monkeypatch.setattr(runs, "INDEXED_SEARCH_MAX", index_limit)
    texts = {}
    for name in SEARCH_NAMES:
        run_id = make_run(db, name=name, config="c.yaml")  # all created at the same minute
        texts[run_id] = runs.search_text(name, "c.yaml", ["python", "train.py"])
    for q in SEARCH_QUERIES:
        found = sorted(listed(db, runs.RunFilter(q=q)), key=str, reverse=True)
        assert found == expected_matches(texts, q), q


def test_a_search_of_one_or_two_characters_pages_through_its_runs_newest_first(
    db: Database,
) -> None:
    # Shorter than a trigram (migration 0008: SQLite walks an index holding the text,
    # PostgreSQL reads an index of each text's 1- and 2-character substrings). "z" is in a
    # name, a config or a command, "ze" in a name or a command; pairs of runs share their
    # creation time (the id orders them); a deleted run that matches is not listed.
    kinds: list[dict[str, Any]] = [
        {"name": "Zeta"},
        {"config": "z.yaml"},
        {"command": ["python", "ze.py"]},
        {"name": "other"},
    ]
    texts: dict[uuid.UUID, tuple[int, str]] = {}
    for i in range(16):
        kind = kinds[i % 4]
        run_id = make_run(db, minutes=i // 2, **kind)
        command = kind.get("command", ["python", "train.py"])
        texts[run_id] = (i // 2, runs.search_text(kind.get("name"), kind.get("config"), command))
    gone = make_run(db, minutes=20, name="zeta, deleted")
    with db.write() as session:
        runs.begin_delete(session, gone)
    for q, matching in (("Z", 12), ("zE", 8), ("e", 12), ("é", 0)):
        found = [run_id for run_id, (_, text) in texts.items() if q.lower() in text]
        expected = sorted(found, key=lambda run_id: (texts[run_id][0], str(run_id)), reverse=True)
        assert len(expected) == matching, q
        seen: list[uuid.UUID] = []
        after = None
        while True:
            with db.read() as session:
                page = runs.page(session, runs.RunFilter(q=q), 3, after)
            assert len(page.views) <= 3
            seen += [view.run.id for view in page.views]
            after = page.next_cursor
            if after is None:
                break
        assert seen == expected, q


def test_sqlite_reads_a_search_of_three_characters_off_its_trigram_index(
    db: Database,
) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's planner chooses its index itself (see the next test)")
    hidden = make_run(db, minutes=1, name="hidden-from-the-index")
    shown = make_run(db, minutes=2, name="hidden-but-indexed")
    with db.write() as session:
        session.execute(
            text(
                "DELETE FROM run_search WHERE rowid = "
                "(SELECT rowid FROM experiment_runs WHERE id = :id)"
            ),
            {"id": hidden.hex},
        )
    # The index narrows q of 3 characters or more; shorter ones scan every run.
    assert listed(db, runs.RunFilter(q="hidden")) == [shown]
    assert listed(db, runs.RunFilter(q="hi")) == [shown, hidden]


def test_the_search_index_follows_runs_created_and_deleted(db: Database) -> None:
    kept = make_run(db, minutes=1, name="alpha-kept")
    gone = make_run(db, name="alpha-gone")
    retention.delete_run(db, gone)
    assert listed(db, runs.RunFilter(q="alpha")) == [kept]
    with db.read() as session:
        if db.engine.dialect.name == "sqlite":
            indexed = session.scalar(text("SELECT count(*) FROM run_search"))
            assert indexed == 1  # the deleted run's row went with it
        else:
            names = session.scalars(
                text("SELECT indexname FROM pg_indexes WHERE tablename = 'experiment_runs'")
            ).all()
            assert "ix_experiment_runs_search_trgm" in names


def test_without_pg_trgm_the_migration_goes_on_and_q_scans(
    pg_admin: sqlalchemy.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    # A database of its own: in the test database pg_trgm is installed (in public, which
    # every role may use), and a role without CREATE there would still find it.
    suffix = uuid.uuid4().hex[:12]
    role, database = f"trainlog_nopriv_{suffix}", f"trainlog_nopriv_{suffix}"
    admin = pg_admin.execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        connection.exec_driver_sql(f"CREATE DATABASE {database}")
    base = PG_URL.rsplit("/", 1)[0]
    own_admin = sqlalchemy.create_engine(f"{base}/{database}".replace("://", "+psycopg://", 1))
    try:
        with own_admin.begin() as connection:
            # No CREATE on the database: CREATE EXTENSION (even a trusted one) is refused.
            connection.exec_driver_sql(f"CREATE SCHEMA trainlog AUTHORIZATION {role}")
        url = f"{base}/{database}".replace("postgres@", f"{role}@", 1)
        db = Database.connect(f"{url}?options=-csearch_path%3Dtrainlog")
        try:
            with caplog.at_level(logging.WARNING, logger="trainlog.migrations"):
                migrate(db.engine)
            warnings = [r.getMessage() for r in caplog.records if r.name == "trainlog.migrations"]
            assert len(warnings) == 1 and "q) scans every run" in warnings[0]
            run_id = make_run(db, name="Größe-Ablation")
            assert listed(db, runs.RunFilter(q="GRÖßE")) == [run_id]
            with db.read() as session:
                names = session.scalars(
                    text("SELECT indexname FROM pg_indexes WHERE schemaname = 'trainlog'")
                ).all()
            assert "ix_experiment_runs_search_trgm" not in names
        finally:
            db.dispose()
    finally:
        own_admin.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE {database} WITH (FORCE)")
            connection.exec_driver_sql(f"DROP ROLE {role}")


def test_a_bad_cursor_is_refused() -> None:
    for token in ("nope", "", "bm90LWEtY3Vyc29y", runs.Cursor(BASE, uuid.uuid4()).encode()[:-3]):
        with pytest.raises(runs.BadCursor):
            runs.Cursor.decode(token)
    cursor = runs.Cursor(BASE, uuid.uuid4())
    assert runs.Cursor.decode(cursor.encode()) == cursor


def rows_of(db: Database, run_id: uuid.UUID) -> dict[str, int]:
    with db.read() as session:
        return {
            table.__tablename__: session.scalar(
                select(func.count()).select_from(table).where(column == run_id)
            )
            or 0
            for table, column in (
                (ExperimentRun, ExperimentRun.id),
                (TrainingLog, TrainingLog.run_id),
                (LogChunk, LogChunk.run_id),
                (RunTag, RunTag.run_id),
                (MetricPoint, MetricPoint.run_id),
                (MetricCursor, MetricCursor.run_id),
            )
        }


def test_delete_removes_the_run_its_log_and_tags_in_batches(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows of 1,000 bytes: the 40 chunks go in 12 batches.
    monkeypatch.setattr(retention, "DELETE_WINDOW_BYTES", 1000)
    doomed, _ = new_log(db, [bytes([i]) * 300 for i in range(40)])
    with db.write() as session:
        session.add(RunTag(run_id=doomed, key="team", value="vision", created_at=BASE))
    kept, kept_bytes = new_log(db, [b"keep me\n"] * 5)
    with db.write() as session:
        session.execute(
            update(ExperimentRun)
            .where(ExperimentRun.id.in_([doomed, kept]))
            .values(status=RunStatus.SUCCEEDED)
        )
    # 25 metric points, taken in windows of 10 from the last backwards.
    monkeypatch.setattr(retention, "DELETE_WINDOW_POINTS", 10)
    with db.write() as session:
        session.add(MetricCursor(run_id=doomed, offset=0, line=1, counts={"loss": 25}, last={}))
        session.add_all(
            MetricPoint(run_id=doomed, seq=i, name="loss", step=i, value=1.0, line=i, offset=i)
            for i in range(25)
        )
    batches: list[tuple[int, int]] = []
    delete_points = metrics_store.delete_points

    def spy(connection: Connection, run_id: uuid.UUID, first: int, end: int) -> None:
        def count() -> int:
            points = select(func.count()).select_from(MetricPoint)
            return connection.scalar(points.where(MetricPoint.run_id == run_id)) or 0

        left = count()
        batches.append((first, end))
        delete_points(connection, run_id, first, end)
        assert left - count() == end - first  # each batch removes its window's points

    monkeypatch.setattr(metrics_store, "delete_points", spy)
    assert rows_of(db, doomed) == {
        "experiment_runs": 1,
        "training_logs": 1,
        "log_chunks": 40,
        "run_tags": 1,
        "metric_points": 25,
        "metric_cursors": 1,
    }
    retention.delete_run(db, doomed)
    assert batches == [(15, 25), (5, 15), (0, 5)]
    assert set(rows_of(db, doomed).values()) == {0}
    with db.read() as session:
        with pytest.raises(runs.RunNotFound):
            runs.get(session, doomed)
        assert logread.read(session, kept, 0, 1000) == kept_bytes


def test_delete_gives_sqlite_pages_back(tmp_path: Path) -> None:
    db = Database.connect(f"sqlite:///{tmp_path}/space.db")
    migrate(db.engine)
    try:
        # Incompressible, so the pages really hold 8 MiB.
        run_id, _ = new_log(db, [os.urandom(256 * 1024) for _ in range(32)])
        with db.write() as session:
            runs.finish(session, run_id, RunStatus.SUCCEEDED, 0)

        def pages() -> tuple[int, int]:
            with db.engine.connect() as connection:
                count = connection.exec_driver_sql("PRAGMA page_count").scalar_one()
                free = connection.exec_driver_sql("PRAGMA freelist_count").scalar_one()
                return count, free

        before, _ = pages()
        file_before = (tmp_path / "space.db").stat().st_size
        retention.delete_run(db, run_id)
        after, free = pages()
        assert free == 0
        assert before - after > (8 * 1024 * 1024) // 4096 * 0.9
        # The file on disk too, once the delete returns (not at some later checkpoint).
        assert file_before - (tmp_path / "space.db").stat().st_size > 8 * 1024 * 1024 * 0.9
    finally:
        db.dispose()


def test_an_active_run_is_not_deleted(db: Database) -> None:
    for status in (RunStatus.QUEUED, RunStatus.RUNNING):
        run_id = make_run(db, status=status, tags={"k": "v"})
        with pytest.raises(runs.RunIsActive):
            retention.delete_run(db, run_id)
        assert rows_of(db, run_id) == {
            "experiment_runs": 1,
            "training_logs": 1,
            "log_chunks": 0,
            "run_tags": 1,
            "metric_points": 0,
            "metric_cursors": 0,
        }
        with db.read() as session:
            assert runs.get(session, run_id).deleted_at is None


def test_gc_selects_finished_old_runs_and_finishes_cut_short_deletes(db: Database) -> None:
    old_ok = make_run(db, minutes=0)
    old_failed = make_run(db, minutes=1, status=RunStatus.FAILED)
    old_running = make_run(db, minutes=2, status=RunStatus.RUNNING)
    new_ok = make_run(db, minutes=100)
    half_deleted = make_run(db, minutes=200)
    with db.write() as session:
        runs.begin_delete(session, half_deleted)  # as if the process died right after
    cutoff = BASE + timedelta(minutes=50)
    chosen = [d.run_id for d in retention.select_expired(db, cutoff)]
    assert chosen == [old_ok, old_failed]
    failed_only = retention.select_expired(db, cutoff, [RunStatus.FAILED])
    assert [d.run_id for d in failed_only] == [old_failed]
    assert [d.run_id for d in retention.collect(db, cutoff)] == [old_ok, old_failed]
    assert listed(db, runs.RunFilter()) == [new_ok, old_running]
    assert set(rows_of(db, half_deleted).values()) == {0}


@pytest.mark.parametrize(
    ("text", "seconds"), [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("2w", 1209600)]
)
def test_durations(text: str, seconds: int) -> None:
    assert retention.parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "0d", "-1d", "1.5h", "3 days", "1y"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        retention.parse_duration(text)
