"""The API token, the refusal to serve openly without one, and configs that try to escape."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.faults.conftest import StartServer, fault_env
from tests.helpers import read_stream, start_run, wait_until_ended, write_config

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
        for bad in ("-1", "abc", "1e9", "9" * 40, "0x10", "1 2"):
            assert client.get(f"{base}/stream", headers={"Last-Event-ID": bad}).status_code == 422
        for offset in ("-5", "x", str(2**70), "1.5"):
            assert client.get(base, params={"offset": offset}).status_code == 422
            assert client.get(f"{base}/stream", params={"offset": offset}).status_code == 422
        assert client.get(f"{base}/raw", headers={"Range": f"bytes={10**30}-"}).status_code == 416
        for bogus in ("bytes=-0", "bytes=5-1", "pages=1", "bytes=0-1,2-3", "garbage"):
            assert client.get(f"{base}/raw", headers={"Range": bogus}).status_code == 416
        assert client.get("/api/runs/not-a-uuid").status_code == 422
        assert client.get(f"/api/runs/{run_id}/logs", params={"limit": -1}).status_code == 422
        assert client.get(base, headers={"Cookie": '"; bad=\\x00'}).status_code == 200
        assert httpx.get(f"{server.url}/api/health").status_code == 200
