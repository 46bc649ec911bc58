"""Logs through a real server: history, raw download and the SSE stream all equal the bytes
the child wrote, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.helpers import (
    Server,
    read_stream,
    start_run,
    start_server,
    stop_server,
    wait_until_ended,
    write_config,
)
from tests.programs.emit import expected_output


def test_stream_history_and_download_equal_the_childs_bytes(
    server: Server, config_dir: Path
) -> None:
    config = write_config(config_dir, "fail.json", exit_code=3, delay=0.02)
    with server.client() as client:
        run = start_run(client, config)
        live = read_stream(client, run["id"])
        expected = expected_output()
        assert live.data == expected
        assert live.done == {"exit_code": 3, "final_size": len(expected)}
        assert len(live.ids) > 1  # it really streamed, in several events

        history = client.get(f"/api/runs/{run['id']}/logs").json()
        assert base64.b64decode(history["data"]) == expected
        assert history["size"] == len(expected) and history["offset"] == 0

        raw = client.get(f"/api/runs/{run['id']}/logs/raw")
        assert raw.content == expected
        assert raw.headers["content-type"] == "application/octet-stream"
        assert f"trainlog-{run['id']}.log" in raw.headers["content-disposition"]


def test_offsets_limits_and_ranges(server: Server, config_dir: Path) -> None:
    config = write_config(config_dir, "ok.json")
    expected = expected_output()
    with server.client() as client:
        run_id = start_run(client, config)["id"]
        wait_until_ended(client, run_id)
        page = client.get(f"/api/runs/{run_id}/logs", params={"offset": 10, "limit": 25}).json()
        assert base64.b64decode(page["data"]) == expected[10:35] and page["offset"] == 10
        past = client.get(f"/api/runs/{run_id}/logs", params={"offset": 10**12}).json()
        assert past["data"] == "" and past["size"] == len(expected)

        ranged = client.get(f"/api/runs/{run_id}/logs/raw", headers={"Range": "bytes=100-199"})
        assert ranged.status_code == 206 and ranged.content == expected[100:200]
        assert ranged.headers["content-range"] == f"bytes 100-199/{len(expected)}"
        suffix = client.get(f"/api/runs/{run_id}/logs/raw", headers={"Range": "bytes=-7"})
        assert suffix.content == expected[-7:]
        for bogus in ("bytes=10-5", "items=0-1", "bytes=0-1,5-6", "bytes=x"):
            refused = client.get(f"/api/runs/{run_id}/logs/raw", headers={"Range": bogus})
            assert refused.status_code == 416 and "not understood" in refused.json()["detail"]
        beyond = client.get(f"/api/runs/{run_id}/logs/raw", headers={"Range": f"bytes={10**9}-"})
        assert beyond.status_code == 416
        assert beyond.headers["content-range"] == f"bytes */{len(expected)}"

        tail = read_stream(client, run_id, offset=len(expected) - 5)
        assert tail.data == expected[-5:]
        assert read_stream(client, run_id, offset=10**9).done == {
            "exit_code": 0,
            "final_size": len(expected),
        }


def test_bad_log_requests_get_clear_errors(server: Server, config_dir: Path) -> None:
    with server.client() as client:
        run_id = start_run(client, write_config(config_dir, "ok.json"))["id"]
        for params in ({"offset": -1}, {"offset": "abc"}, {"limit": -5}, {"offset": 2**64}):
            response = client.get(f"/api/runs/{run_id}/logs", params=params)
            assert response.status_code == 422, params
            if "offset" in params:
                response = client.get(f"/api/runs/{run_id}/logs/stream", params=params)
                assert response.status_code == 422, params
        for bad in ("abc", "-3", "1.5"):
            response = client.get(f"/api/runs/{run_id}/logs/stream", headers={"Last-Event-ID": bad})
            assert response.status_code == 422
            assert "Last-Event-ID" in response.json()["detail"]
        wait_until_ended(client, run_id)


def test_a_viewer_that_disconnects_resumes_with_nothing_lost_or_repeated(
    server: Server, config_dir: Path
) -> None:
    config = write_config(config_dir, "slow.json", delay=0.05, repeat=2)
    expected = expected_output(repeat=2)
    with server.client() as client:
        run_id = start_run(client, config)["id"]
        first = read_stream(client, run_id, stop_after_bytes=100)
        assert not first.done
        resumed = read_stream(client, run_id, offset=0, last_event_id=str(first.ids[-1]))
        assert bytes(first.data + resumed.data) == expected
        assert resumed.done == {"exit_code": 0, "final_size": len(expected)}


def test_heartbeats_keep_a_quiet_stream_alive(server: Server, config_dir: Path) -> None:
    config = write_config(config_dir, "quiet.json", linger=2.5)
    with server.client() as client:
        run_id = start_run(client, config)["id"]
        result = read_stream(client, run_id)
        assert result.heartbeats >= 1 and result.done is not None


def test_restarting_the_server_mid_run_loses_nothing(
    server: Server, config_dir: Path, tmp_path: Path
) -> None:
    # About 6 s of output and 8 s more of waiting: still running after the restart, even on a
    # busy machine running tests in parallel, where a server takes seconds to start.
    config = write_config(config_dir, "long.json", delay=0.1, repeat=4, linger=8, exit_code=7)
    expected = expected_output(repeat=4)
    with server.client() as client:
        run_id = start_run(client, config)["id"]
        before = read_stream(client, run_id, stop_after_bytes=200)
    port = server.port
    stop_server(server)
    restarted = start_server(server.env, tmp_path, port=port)
    try:
        with restarted.client() as client:
            assert client.get(f"/api/runs/{run_id}").json()["status"] == "running"
            after = read_stream(client, run_id, last_event_id=str(before.ids[-1]))
            assert bytes(before.data + after.data) == expected
            assert after.done == {"exit_code": 7, "final_size": len(expected)}
            assert client.get(f"/api/runs/{run_id}/logs/raw").content == expected
    finally:
        stop_server(restarted)
