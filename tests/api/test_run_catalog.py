"""Thousands of runs through a real server: names, tags and origin; paging and filters;
deleting (and what an open stream of a deleted run sees)."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path

from tests.helpers import (
    Server,
    parse_sse,
    start_run,
    wait_for,
    wait_until_ended,
    write_config,
)
from trainlog import runs
from trainlog.db import Database
from trainlog.models import ExperimentRun, RunSource, utcnow


def test_a_run_records_name_tags_and_where_it_ran(server: Server, config_dir: Path) -> None:
    config = write_config(config_dir, "ok.json")
    with server.client() as client:
        body = {"config": config, "name": "Baseline", "tags": {"team": "vision", "seed": "3"}}
        created = client.post("/api/runs", json=body)
        assert created.status_code == 201, created.text
        run = wait_until_ended(client, created.json()["id"])
    assert run["name"] == "Baseline" and run["tags"] == {"team": "vision", "seed": "3"}
    # The server's runs run in its working directory, on its machine.
    assert run["cwd"] == str(server.workdir) and run["host"] and run["user"]
    assert run["git"] is None  # the test's temporary directory is no work tree


def test_list_pages_and_filters(server: Server, config_dir: Path) -> None:
    db = Database.connect(server.env["TRAINLOG_DATABASE_URL"])
    try:
        ids = []
        for i in range(7):
            with db.write() as session:
                tags = {"team": "vision" if i % 2 else "nlp"}
                ids.append(runs.create(session, ["x"], None, RunSource.CLI, tags=tags).id)
    finally:
        db.dispose()
    with server.client() as client:
        seen: list[str] = []
        params: dict[str, str | int] = {"limit": 3}
        while True:
            page = client.get("/api/runs", params=params).json()
            assert len(page["runs"]) <= 3
            seen += [run["id"] for run in page["runs"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert seen == [str(run_id) for run_id in reversed(ids)]
        vision = client.get("/api/runs", params={"tag": "team:vision"}).json()["runs"]
        assert [run["id"] for run in vision] == [str(ids[i]) for i in (5, 3, 1)]
        queued = client.get("/api/runs", params=[("status", "queued"), ("status", "failed")])
        assert len(queued.json()["runs"]) == 7
        assert client.get("/api/runs", params={"status": "failed"}).json()["runs"] == []


def test_bad_list_requests_are_refused(server: Server) -> None:
    with server.client() as client:
        for params in (
            {"limit": 0},
            {"limit": 501},
            {"cursor": "garbage"},
            {"status": "sleeping"},
            {"tag": "no-separator"},
            {"tag": ":value"},
            {"since": "yesterday"},
        ):
            response = client.get("/api/runs", params=params)
            assert response.status_code == 422, params
            assert "detail" in response.json()


def test_an_unchanged_page_answers_304(server: Server, config_dir: Path) -> None:
    config = write_config(config_dir, "ok.json")
    with server.client() as client:
        first = client.get("/api/runs")
        etag = first.headers["etag"]
        again = client.get("/api/runs", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        wait_until_ended(client, start_run(client, config)["id"])
        changed = client.get("/api/runs", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and len(changed.json()["runs"]) == 1


def test_delete_a_finished_run_and_refuse_an_active_one(server: Server, config_dir: Path) -> None:
    slow = write_config(config_dir, "slow.json", linger=30)
    with server.client() as client:
        run = start_run(client, slow)
        refused = client.delete(f"/api/runs/{run['id']}")
        assert refused.status_code == 409 and "cancel it first" in refused.json()["detail"]
        assert client.get(f"/api/runs/{run['id']}").status_code == 200
        client.post(f"/api/runs/{run['id']}/cancel")
        wait_until_ended(client, run["id"])
        deleted = client.delete(f"/api/runs/{run['id']}")
        assert deleted.status_code == 204
        for path in ("", "/logs", "/logs/raw", "/logs/stream"):
            assert client.get(f"/api/runs/{run['id']}{path}").status_code == 404, path
        assert client.get("/api/runs").json()["runs"] == []
        again = client.delete(f"/api/runs/{run['id']}")
        assert again.status_code == 404
        assert client.delete("/api/runs/not-a-uuid").status_code == 422


def test_an_open_stream_of_a_deleted_run_ends_with_deleted(server: Server) -> None:
    """A delete landing while a viewer follows the run (here: marked deleted under an open
    stream, as a delete between two of the tailer's looks would be)."""
    db = Database.connect(server.env["TRAINLOG_DATABASE_URL"])
    try:
        with db.write() as session:
            run_id = runs.create(session, ["x"], None, RunSource.CLI).id
        events: list[str] = []
        with server.client() as client:
            opened = threading.Event()

            def watch() -> None:
                with client.stream("GET", f"/api/runs/{run_id}/logs/stream") as response:
                    opened.set()
                    events.extend(event.event for event in parse_sse(response.iter_lines()))

            watcher = threading.Thread(target=watch)
            watcher.start()
            opened.wait(10)
            wait_for(lambda: "heartbeat" in events)  # the stream is following the run
            with db.write() as session:
                session.get_one(ExperimentRun, run_id).deleted_at = utcnow()
            watcher.join(10)
            assert not watcher.is_alive(), "the stream did not end"
        assert events[-1] == "deleted" and "done" not in events
    finally:
        db.dispose()


def test_cli_rm_and_gc(server: Server, config_dir: Path) -> None:
    config = write_config(config_dir, "ok.json")
    slow = write_config(config_dir, "slow.json", linger=30)
    env = {**server.env, "PATH": "/usr/bin:/bin"}

    def trainlog(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_python(), "-m", "trainlog", *args], env=env, capture_output=True, text=True
        )

    with server.client() as client:
        done = [wait_until_ended(client, start_run(client, config)["id"])["id"] for _ in range(2)]
        active = start_run(client, slow)["id"]
        # Running, with its runner reporting: an old queued run would count as lost.
        wait_for(lambda: client.get(f"/api/runs/{active}").json()["status"] == "running")
        db = Database.connect(server.env["TRAINLOG_DATABASE_URL"])
        try:
            with db.write() as session:
                for run_id in (*done, active):
                    old = utcnow().replace(year=utcnow().year - 1)
                    session.get_one(ExperimentRun, uuid.UUID(run_id)).created_at = old
        finally:
            db.dispose()
        dry = trainlog("gc", "--older-than", "30d", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert all(f"would delete {run_id}" in dry.stdout for run_id in done)
        assert active not in dry.stdout and "2 runs would be deleted" in dry.stdout
        assert len(client.get("/api/runs").json()["runs"]) == 3  # a dry run changes nothing
        bad = trainlog("gc", "--older-than", "soon")
        assert bad.returncode == 2 and "not a duration" in bad.stderr and not bad.stdout
        removed = trainlog("rm", done[0], active)
        assert removed.returncode == 1
        assert f"deleted {done[0]}" in removed.stdout and "cancel it first" in removed.stderr
        assert "Traceback" not in removed.stderr
        collected = trainlog("gc", "--older-than", "30d")
        assert collected.returncode == 0 and f"deleted {done[1]}" in collected.stdout
        left = client.get("/api/runs").json()["runs"]
        assert [run["id"] for run in left] == [active]
        client.post(f"/api/runs/{active}/cancel")
        wait_until_ended(client, active)


def _python() -> list[str]:
    return [sys.executable]
