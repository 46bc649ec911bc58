"""The API token, the refusal to serve openly without one, and configs that try to escape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import sqlalchemy

from tests.faults.conftest import StartServer, fault_env
from tests.helpers import (
    PROGRAMS,
    read_stream,
    start_run,
    wait_for,
    wait_until_ended,
    write_config,
)
from trainlog.reaper import run_processes

TOKEN = "s3cret-token-for-tests"


def test_every_api_route_needs_the_token(
    servers: StartServer, tmp_path: Path, config_dir: Path
) -> None:
    env = {**fault_env(f"sqlite:///{tmp_path}/t.db", config_dir), "TRAINLOG_API_TOKEN": TOKEN}
    server = servers(env)
    config = write_config(config_dir, "ok.json")
    with server.client() as anonymous:
        assert anonymous.get("/api/health").status_code == 200  # open for load balancers
        for method, path in [
            ("GET", "/api/runs"),
            ("POST", "/api/runs"),
            ("GET", "/api/configs"),
            ("DELETE", "/api/runs/00000000-0000-0000-0000-000000000000"),
        ]:
            response = anonymous.request(method, path, json={"config": config})
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"] == "Bearer"
        wrong = anonymous.get("/api/runs", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        refused = anonymous.get("/?token=nope")
        assert refused.status_code == 303 and "set-cookie" not in refused.headers
        assert refused.headers["location"] == "/"
        # Never off-site, whatever the path looks like.
        offsite = anonymous.get(f"{server.url}//evil.example/?token=nope")
        assert offsite.headers["location"] == "/evil.example/"

    with server.client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        run_id = start_run(client, config)["id"]
        wait_until_ended(client, run_id)

    # The browser's way: /?token= sets the cookie and strips the token from the address.
    with server.client() as browser:
        landing = browser.get("/runs/x?token=" + TOKEN + "&tab=log")
        assert landing.status_code == 303 and landing.headers["location"] == "/runs/x?tab=log"
        cookie = landing.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        elsewhere = browser.get(f"{server.url}//evil.example/?token={TOKEN}")
        assert elsewhere.headers["location"] == "/evil.example/"
        assert browser.get(f"/api/runs/{run_id}").status_code == 200
        assert read_stream(browser, run_id).done is not None  # EventSource sends no headers


def test_serve_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRAINLOG_API_TOKEN"}
    env["TRAINLOG_DATABASE_URL"] = f"sqlite:///{tmp_path}/t.db"
    result = subprocess.run(
        [sys.executable, "-m", "trainlog", "serve", "--host", "0.0.0.0", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "without an API token" in result.stderr and "TRAINLOG_API_TOKEN" in result.stderr


def test_crafted_config_names_cannot_escape_or_run_anything(
    servers: StartServer, tmp_path: Path, config_dir: Path
) -> None:
    server = servers(fault_env(f"sqlite:///{tmp_path}/t.db", config_dir))
    pwned = tmp_path / "pwned"
    (tmp_path / "secret.json").write_text("{}")
    (config_dir / "link.json").symlink_to(tmp_path / "secret.json")
    # A real config whose name is shell syntax: it must reach the command as one argument.
    # (The server runs in tmp_path, so a relative "touch pwned" would create the file above.)
    shellish = write_config(config_dir, "x; touch pwned; $(touch pwned) `touch pwned`.json")
    with server.client() as client:
        for name in [
            "../secret.json",
            "link.json",
            str(tmp_path / "secret.json"),
            "sub/../../secret.json",
            f"$(touch {pwned})",
            f"`touch {pwned}`",
            "ok.json\x00",
        ]:
            response = client.post("/api/runs", json={"config": name})
            assert response.status_code == 422, (name, response.text)
        assert client.get("/api/runs").json() == {"runs": [], "next_cursor": None}
        run = start_run(client, shellish)
        assert run["command"][-1] == str((config_dir / shellish).resolve())
        assert wait_until_ended(client, run["id"])["status"] == "succeeded"
    assert not pwned.exists()


def test_oversized_bodies_get_413(servers: StartServer, tmp_path: Path, config_dir: Path) -> None:
    server = servers(fault_env(f"sqlite:///{tmp_path}/t.db", config_dir))
    with server.client() as client:
        big = client.post("/api/runs", content=b"{" + b" " * 100_000 + b"}")
        assert big.status_code == 413 and "request body" in big.json()["detail"]

        def chunks() -> object:
            for _ in range(100):
                yield b" " * 1024

        chunked = client.post("/api/runs", content=chunks())  # type: ignore[arg-type]
        assert chunked.status_code == 413
        assert client.get("/api/health").status_code == 200


def test_hostile_headers_and_offsets_get_clear_4xx(
    servers: StartServer, tmp_path: Path, config_dir: Path
) -> None:
    server = servers(fault_env(f"sqlite:///{tmp_path}/t.db", config_dir))
    with server.client() as client:
        run_id = start_run(client, write_config(config_dir, "ok.json"))["id"]
        wait_until_ended(client, run_id)
        base = f"/api/runs/{run_id}/logs"
        # Bytes as sent: "\xb2" is a superscript two in Latin-1, a digit to str.isdigit().
        for bad in (b"-1", b"abc", b"1e9", b"9" * 40, b"0x10", b"1 2", b"\xb2", b"1\xb9"):
            stream = client.get(f"{base}/stream", headers={"Last-Event-ID": bad})
            assert stream.status_code == 422 and "byte offset" in stream.json()["detail"]
        for offset in ("-5", "x", str(2**70), "1.5"):
            assert client.get(base, params={"offset": offset}).status_code == 422
            assert client.get(f"{base}/stream", params={"offset": offset}).status_code == 422
        assert client.get(f"{base}/raw", headers={"Range": f"bytes={10**30}-"}).status_code == 416
        for bogus in (b"bytes=-0", b"bytes=5-1", b"pages=1", b"bytes=0-1,2-3", b"garbage"):
            assert client.get(f"{base}/raw", headers={"Range": bogus}).status_code == 416
        for latin1 in (b"bytes=\xb2-", b"bytes=0-\xb9", b"bytes=-\xb3"):
            ranged = client.get(f"{base}/raw", headers={"Range": latin1})
            assert ranged.status_code == 416 and "not understood" in ranged.json()["detail"]
        assert client.get("/api/runs/not-a-uuid").status_code == 422
        assert client.get(f"/api/runs/{run_id}/logs", params={"limit": -1}).status_code == 422
        assert client.get(base, headers={"Cookie": '"; bad=\\x00'}).status_code == 200
        assert httpx.get(f"{server.url}/api/health").status_code == 200


PASSWORD = "pg-pass-for-tests"


def with_password(pg_url: str) -> str:
    """The test PostgreSQL URL with a password in it. The test cluster trusts local
    connections, so it is never checked, but the runner hands it to the driver as it would
    any password."""
    return pg_url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@", 1)


def assert_no_secret_reaches_the_run(
    run_id: str, release: Path, marked: int, other_pids: list[int]
) -> None:
    """Once ``marked`` processes carry the run id (the child, the grandchild, and the runner
    if it was started with it), none of them nor other_pids has a secret in its argv; then
    they are let go."""

    def all_started() -> list[int] | None:
        pids = run_processes(uuid.UUID(run_id))
        return pids if len(pids) >= marked else None

    pids = wait_for(all_started)
    for pid in [*pids, *other_pids]:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert PASSWORD.encode() not in argv and TOKEN.encode() not in argv, argv
    release.touch()


def assert_only_the_run_id_was_printed(log: bytes) -> None:
    assert PASSWORD.encode() not in log and TOKEN.encode() not in log
    # Child and grandchild each printed their environment: the run id, and the user's own.
    trainlog_names = [line.split(b"=")[0] for line in log.splitlines() if b"TRAINLOG" in line]
    assert trainlog_names == [b"TRAINLOG_RUN_ID"] * 2
    assert log.count(b"USER_SETTING=kept as is\n") == 2


def test_a_run_started_by_the_server_gets_none_of_its_secrets(
    servers: StartServer, pg_schema_url: str, tmp_path: Path, config_dir: Path
) -> None:
    env = {
        **fault_env(with_password(pg_schema_url), config_dir, "environ.py"),
        "TRAINLOG_API_TOKEN": TOKEN,
        "USER_SETTING": "kept as is",
    }
    server = servers(env)
    release = tmp_path / "release"
    config = write_config(config_dir, "env.json", release=str(release))
    with server.client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        run_id = start_run(client, config)["id"]
        assert_no_secret_reaches_the_run(run_id, release, 3, [server.process.pid])
        assert wait_until_ended(client, run_id)["status"] == "succeeded"
        assert_only_the_run_id_was_printed(client.get(f"/api/runs/{run_id}/logs/raw").content)


def test_a_run_started_by_trainlog_run_gets_none_of_its_secrets(
    pg_schema_url: str, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    config = tmp_path / "env.json"
    config.write_text(json.dumps({"release": str(release)}))
    env = {
        **os.environ,
        "TRAINLOG_DATABASE_URL": with_password(pg_schema_url),
        "TRAINLOG_API_TOKEN": TOKEN,
        "USER_SETTING": "kept as is",
    }
    argv = ["run", "--no-pty", "--", sys.executable, str(PROGRAMS / "environ.py"), str(config)]
    run = subprocess.Popen(
        [sys.executable, "-m", "trainlog", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert run.stderr is not None
    run_id = run.stderr.readline().decode().strip().removeprefix("trainlog: run ")
    # trainlog run is the runner: it sets the run id after it started, for its child.
    assert_no_secret_reaches_the_run(run_id, release, 2, [run.pid])
    echoed, _ = run.communicate(timeout=30)
    assert run.returncode == 0
    assert_only_the_run_id_was_printed(echoed)
    tail = subprocess.run(
        [sys.executable, "-m", "trainlog", "tail", run_id], env=env, capture_output=True
    )
    assert tail.stdout == echoed


def test_a_server_error_is_json_and_never_cached(
    servers: StartServer, pg_schema_url: str, config_dir: Path, pg_admin: sqlalchemy.Engine
) -> None:
    server = servers(fault_env(pg_schema_url, config_dir))
    # A real fault no handler expects: the runs table is gone (PostgreSQL says UndefinedTable,
    # a ProgrammingError, where an outage would be an OperationalError and a 503).
    schema = pg_schema_url.rsplit("%3D", 1)[1]
    with pg_admin.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE {schema}.experiment_runs CASCADE")
    with server.client() as client:
        response = client.get("/api/runs")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert response.headers["cache-control"] == "no-store"
