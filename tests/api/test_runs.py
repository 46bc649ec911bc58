"""Runs through a real server: start, list, cancel, and every bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Server, start_run, wait_for, wait_until_ended, write_config


def test_start_a_run_and_see_it_finish(server: Server, config_dir: Path) -> None:
    config = write_config(config_dir, "ok.json", exit_code=0)
    with server.client() as client:
        assert client.get("/api/configs").json() == ["ok.json"]
        run = start_run(client, config)
        assert run["status"] in ("queued", "running") and run["config"] == "ok.json"
        assert run["command"][-1] == str((config_dir / "ok.json").resolve())
        ended = wait_until_ended(client, run["id"])
        assert ended["status"] == "succeeded" and ended["exit_code"] == 0
        assert ended["log_size"] > 1024 * 1024
        listed = client.get("/api/runs").json()["runs"]
        assert [r["id"] for r in listed] == [run["id"]]
        for moment in ("created_at", "started_at", "finished_at"):
            assert ended[moment].endswith("Z") or ended[moment].endswith("+00:00")


def test_a_second_run_is_refused_while_one_is_active(server: Server, config_dir: Path) -> None:
    slow = write_config(config_dir, "slow.json", linger=30)
    with server.client() as client:
        first = start_run(client, slow)
        response = client.post("/api/runs", json={"config": slow})
        assert response.status_code == 409
        assert first["id"] in response.json()["detail"]
        assert len(client.get("/api/runs").json()["runs"]) == 1
        cancelled = client.post(f"/api/runs/{first['id']}/cancel")
        assert cancelled.status_code == 202
        ended = wait_until_ended(client, first["id"])
        assert ended["status"] == "cancelled"
        again = client.post(f"/api/runs/{first['id']}/cancel")
        assert again.status_code == 409 and "not active" in again.json()["detail"]


def test_cancel_ends_a_child_that_ignores_sigterm(server: Server, config_dir: Path) -> None:
    stubborn = write_config(config_dir, "stubborn.json", ignore_sigterm=True, linger=60)
    with server.client() as client:
        run = start_run(client, stubborn)
        # Output means the child has set up its SIGTERM handler.
        wait_for(lambda: client.get(f"/api/runs/{run['id']}").json()["log_size"] > 0)
        client.post(f"/api/runs/{run['id']}/cancel")
        ended = wait_until_ended(client, run["id"], timeout=20)
        assert ended["status"] == "cancelled" and ended["exit_code"] == -9


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"config": "../trainlog.db"}, 422, "outside the config directory"),
        ({"config": "/etc/passwd"}, 422, "inside the config directory"),
        ({"config": "missing.json"}, 422, "not found"),
        ({"config": ""}, 422, None),
        ({}, 422, None),
        ({"config": "x", "command": ["rm", "-rf", "/"]}, 422, None),
    ],
)
def test_bad_run_requests_change_nothing(
    server: Server, body: dict[str, object], status: int, message: str | None
) -> None:
    with server.client() as client:
        response = client.post("/api/runs", json=body)
        assert response.status_code == status
        if message:
            assert message in response.json()["detail"]
        assert client.get("/api/runs").json() == {"runs": [], "next_cursor": None}


def test_unknown_and_malformed_ids(server: Server) -> None:
    with server.client() as client:
        unknown = "00000000-0000-0000-0000-000000000000"
        for path in ("", "/logs", "/logs/raw", "/logs/stream"):
            response = client.get(f"/api/runs/{unknown}{path}")
            assert response.status_code == 404, path
            assert response.json() == {"detail": f"run {unknown} not found"}
            assert client.get(f"/api/runs/not-a-uuid{path}").status_code == 422
        assert client.post(f"/api/runs/{unknown}/cancel").status_code == 404


def test_api_answers_are_never_cached(server: Server) -> None:
    with server.client() as client:
        for path in ("/api/runs", "/api/health", "/api/configs", "/api/runs/x"):
            assert client.get(path).headers["cache-control"] == "no-store"


def test_openapi_is_served(server: Server) -> None:
    with server.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
        assert "/api/runs/{run_id}/logs/stream" in paths
