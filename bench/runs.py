"""Many runs: listing 100,000 of them, the runs page's first paint, and deleting a 1 GiB run.

- list: 100,000 runs (inserted in bulk, with tags, statuses, configs and names spread as a
  team's month might) behind a real server; each case is ``GET /api/runs?limit=50`` with one
  filter, timed at the client (so the server's time and then some), p99 over the requests;
  ``q`` rare (the trigram index), common (walking the newest runs) and of 2 characters
  (shorter than a trigram: migration 0008's index), absent, the worst case.
- first paint: Chromium (bench/firstpaint.mjs, the repository's Playwright) opens the runs
  page of that server; the page's own clock when the first rows are on screen.
- delete: a finished 1 GiB log (built as hugelog builds it) is deleted through
  ``DELETE /api/runs/{id}`` while a probe follows another live run (bench/children.py
  ticker, a line every 20 ms, wake-ups on); only ticks written while the delete ran count.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
from sqlalchemy import Table, insert

from bench.harness import (
    CHILDREN,
    PYTHON,
    Config,
    MiB,
    Row,
    Server,
    browser_script,
    fresh_db,
    median,
    percentile,
    server,
    settle,
    start_trainlog_run,
    verdict,
)
from bench.hugelog import build
from bench.sse_client import Viewer, all_caught_up, watch
from trainlog.db import Database, migrate
from trainlog.models import ExperimentRun, RunTag, TrainingLog

LIST_P99_MS = 50
FIRST_PAINT_MS = 1000
WAKEUP_P99_MS = 25
BASELINE_SECONDS = 3.0
STATUSES = ["succeeded"] * 85 + ["failed"] * 10 + ["cancelled"] * 4 + ["lost"]
TEAMS = ["vision", "nlp", "speech", "rl", "infra"]
START = datetime(2026, 1, 1, tzinfo=UTC)


def run(config: Config) -> list[Row]:
    count = 5_000 if config.quick else 100_000
    requests = 20 if config.quick else 200
    rows: list[Row] = []
    for db_kind in config.dbs:
        with fresh_db(db_kind) as fresh:
            started = time.monotonic()
            populate(fresh.url, count)
            rows.append(
                Row(
                    "runs", db_kind, f"insert {count:,} runs", f"{time.monotonic() - started:.1f} s"
                )
            )
            settle(db_kind)
            with server(fresh.url) as srv, httpx.Client(base_url=srv.base, timeout=60) as client:
                rows.extend(_list_cases(client, db_kind, count, requests))
                rows.append(_first_paint(srv, db_kind, count, 3 if config.quick else 10))
    return rows + delete_rows(config)


def delete_rows(config: Config) -> list[Row]:
    """The delete row alone (`--only runs_delete`): the list rows' 100,000 runs take minutes
    to build, and a change to how runs are deleted needs only this one."""
    huge = 64 * MiB if config.quick else 1024 * MiB
    rows: list[Row] = []
    for db_kind in config.dbs:
        with fresh_db(db_kind) as fresh:
            huge_id, _ = build(fresh.url, huge)
            settle(db_kind)
            with server(fresh.url, TRAINLOG_WAKEUPS="1") as srv:
                rows.append(_delete_during_live_run(srv, fresh, db_kind, huge_id, huge))
    return rows


def populate(url: str, count: int) -> None:
    db = Database.connect(url)
    migrate(db.engine)
    rng = random.Random(0)
    runs_table = cast(Table, ExperimentRun.__table__)
    logs_table = cast(Table, TrainingLog.__table__)
    tags_table = cast(Table, RunTag.__table__)
    batch = 5_000
    for first in range(0, count, batch):
        run_rows, log_rows, tag_rows = [], [], []
        for i in range(first, min(count, first + batch)):
            run_id = uuid.uuid4()
            created = START + timedelta(seconds=30 * i)
            config = f"c{rng.randrange(20):02d}.yaml"
            name = f"run-{i:06d}"
            command = ["python", "-m", "train", "--config", config]
            tags = {"team": rng.choice(TEAMS), "seed": str(rng.randrange(100))}
            run_rows.append(
                {
                    "id": run_id,
                    "config": config,
                    "command": command,
                    "status": rng.choice(STATUSES),
                    "source": "cli",
                    "exit_code": 0,
                    "created_at": created,
                    "started_at": created,
                    "finished_at": created + timedelta(minutes=20),
                    "cancel_requested": False,
                    "pty": True,
                    "log_truncated": False,
                    "name": name,
                    "tags": tags,
                    "host": f"gpu-{rng.randrange(16):02d}",
                    "user": "bench",
                    "cwd": "/work/project",
                    "git": {
                        "commit": f"{rng.getrandbits(160):040x}",
                        "branch": "main",
                        "dirty": False,
                    },
                    "search_text": f"{name}\n{config}\n{' '.join(command)}".lower(),
                }
            )
            log_rows.append(
                {"run_id": run_id, "size": rng.randrange(1 << 24), "updated_at": created}
            )
            tag_rows += [
                {"run_id": run_id, "key": k, "value": v, "created_at": created}
                for k, v in tags.items()
            ]
        with db.write() as session:
            session.execute(insert(runs_table), run_rows)
            session.execute(insert(logs_table), log_rows)
            session.execute(insert(tags_table), tag_rows)
    if db.engine.dialect.name == "postgresql":
        with db.autocommit() as connection:
            connection.exec_driver_sql("ANALYZE")
    else:
        with db.engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
    db.dispose()


def _list_cases(client: httpx.Client, db: str, count: int, requests: int) -> list[Row]:
    middle = (START + timedelta(seconds=30 * count // 2)).isoformat()
    third = client.get("/api/runs", params={"limit": 50}).json()["next_cursor"]
    cases: dict[str, dict[str, Any]] = {
        "no filter": {},
        "page 2 (cursor)": {"cursor": third},
        "status=failed (10%)": {"status": "failed"},
        "status=lost (1%)": {"status": "lost"},
        "status=running (none)": {"status": "running"},
        "config=c07.yaml (5%)": {"config": "c07.yaml"},
        "tag=team:vision (20%)": {"tag": "team:vision"},
        "tag=seed:42 (1%)": {"tag": "seed:42"},
        "tag=seed:none (none)": {"tag": "seed:none"},
        "q=one run's name, any case (1 run)": {"q": f"RUN-{count // 2:06d}"},
        "q=no-such-text (none)": {"q": "no-such-text"},
        "q=c07, in the config (5%)": {"q": "c07"},
        # Shorter than a trigram (migration 0008): on SQLite every run's entry in an index
        # holding the text is read, on PostgreSQL the grams' index finds none.
        "q=2 characters, absent (none)": {"q": "zq"},
        "since=middle": {"since": middle},
    }
    rows = []
    for name, params in cases.items():
        client.get("/api/runs", params={"limit": 50, **params})  # warm
        times, served = [], []
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get("/api/runs", params={"limit": 50, **params})
            times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{name}: {response.status_code} {response.text[:200]}")
            # The server's own time (Server-Timing: list;dur=MS): query and JSON.
            served.append(float(response.headers["server-timing"].split("dur=")[1]))
        found = len(response.json()["runs"])
        p99 = percentile(served, 99)
        rows.append(
            Row(
                "runs",
                db,
                f"page of 50 of {count:,}: {name}",
                f"server p50 {percentile(served, 50):.1f} / p99 {p99:.1f} ms",
                f"{found} runs; at the client p99 {percentile(times, 99):.1f} ms",
                f"server p99 <= {LIST_P99_MS} ms",
                verdict(p99 <= LIST_P99_MS),
                {"server_ms": served, "client_ms": times},
            )
        )
    return rows


def _first_paint(srv: Server, db: str, count: int, loads: int) -> Row:
    measured = browser_script("firstpaint.mjs", f"{srv.base}/", str(loads))
    painted = [load["rows_ms"] for load in measured]
    worst = max(painted)
    fcp = median([load["fcp_ms"] or 0 for load in measured])
    return Row(
        "runs",
        db,
        f"runs page first paint, {count:,} runs (Chromium)",
        f"median {median(painted):.0f} / max {worst:.0f} ms",
        f"{loads} loads, {measured[0]['rows']} rows, FCP {fcp:.0f} ms",
        f"max <= {FIRST_PAINT_MS} ms",
        verdict(worst <= FIRST_PAINT_MS),
        {"loads": measured},
    )


def _delete_during_live_run(srv: Server, fresh: Any, db: str, huge_id: uuid.UUID, size: int) -> Row:
    file_before = fresh.path.stat().st_size if fresh.path is not None else None
    process, run_id = start_trainlog_run(fresh.url, [PYTHON, CHILDREN, "ticker", "600"])
    probe = Viewer(run_id, mode="probe")
    window: dict[str, Any] = {}

    async def follow() -> None:
        task = asyncio.create_task(watch(srv.port, probe))
        await all_caught_up([probe])
        await asyncio.sleep(1.0)  # settled into following the run
        # The same run's latency for as long again before the delete: the baseline.
        probe.record_after_ns = time.monotonic_ns()
        await asyncio.sleep(BASELINE_SECONDS)
        window["baseline"] = len(probe.latencies_ms)
        window["start"] = time.monotonic_ns()

        def delete() -> None:
            with httpx.Client(timeout=600) as client:
                window["status"] = client.delete(f"{srv.base}/api/runs/{huge_id}").status_code
            window["end"] = time.monotonic_ns()
            # Ticks written after the delete returned do not count.
            window["samples"] = len(probe.latencies_ms)

        deleting = threading.Thread(target=delete)
        deleting.start()
        while deleting.is_alive():
            await asyncio.sleep(0.05)
        task.cancel()

    try:
        asyncio.run(follow())
    finally:
        process.terminate()
        process.wait(30)
    seconds = (window["end"] - window["start"]) / 1e9
    baseline = probe.latencies_ms[: window["baseline"]]
    samples = probe.latencies_ms[window["baseline"] : window["samples"]]
    if window["status"] != 204 or not samples:
        raise RuntimeError(f"delete answered {window['status']}, {len(samples)} samples")
    p99 = percentile(samples, 99)
    freed = ""
    if file_before is not None and fresh.path is not None:
        freed = f", file {file_before / MiB:.0f} -> {fresh.path.stat().st_size / MiB:.0f} MiB"
    return Row(
        "runs",
        db,
        f"wake-up latency of another run while a {size // MiB} MiB run is deleted",
        f"p50 {percentile(samples, 50):.1f} / p99 {p99:.1f} / max {max(samples):.1f} ms",
        f"{len(samples)} samples; delete took {seconds:.1f} s{freed}; before it "
        f"p99 {percentile(baseline, 99):.1f} ms",
        f"p99 <= {WAKEUP_P99_MS} ms",
        verdict(p99 <= WAKEUP_P99_MS),
        {"latencies_ms": samples, "baseline_ms": baseline, "delete_seconds": seconds},
    )
