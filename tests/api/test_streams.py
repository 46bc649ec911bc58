"""Several runs on one SSE stream (``/api/streams``) through a real server: each run's bytes
exact, each resumable by its own offset, each ending with its ``done``."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import (
    Server,
    StreamResult,
    parse_sse,
    server_env,
    sse_events,
    start_run,
    start_server,
    stop_server,
    wait_until_ended,
    write_config,
)
from tests.programs.emit import expected_output


@pytest.fixture
def busy_server(database_url: str, config_dir: Path, tmp_path: Path) -> Iterator[Server]:
    """A server that runs three runs at once."""
    env = server_env(database_url, config_dir, TRAINLOG_MAX_ACTIVE_RUNS="3")
    running = start_server(env, tmp_path)
    yield running
    stop_server(running)


def read_streams(
    client: httpx.Client, starts: dict[str, int], *, stop_after_bytes: int | None = None
) -> tuple[dict[str, StreamResult], bool]:
    """Read ``/api/streams`` for runs from their offsets until the response ends (then True),
    or until every run has ``stop_after_bytes`` or its ``done`` (then disconnect, False).
    Checks each run's ids: the offset after its chunk, from where it started."""
    results = {run_id: StreamResult() for run_id in starts}
    params = [("run", f"{run_id}:{offset}") for run_id, offset in starts.items()]
    with client.stream("GET", "/api/streams", params=params) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in parse_sse(response.iter_lines()):
            run_id = event.data.pop("run")
            run = results[run_id]
            assert run.done is None, "nothing comes for a run after its done"
            if event.event == "log":
                run.data += base64.b64decode(event.data["chunk"])
                assert event.id == str(starts[run_id] + len(run.data))
                run.ids.append(int(event.id))
            elif event.event == "heartbeat":
                run.heartbeats += 1
            elif event.event == "done":
                run.done = event.data
            if stop_after_bytes is not None and all(
                run.done is not None or len(run.data) >= stop_after_bytes
                for run in results.values()
            ):
                return results, False
    return results, True


def test_one_stream_carries_each_runs_exact_bytes_and_done(
    busy_server: Server, config_dir: Path
) -> None:
    configs = {
        "ok.json": ({"delay": 0.02}, 0, 1),
        "fail.json": ({"delay": 0.01, "exit_code": 3}, 3, 1),
        "twice.json": ({"delay": 0.01, "repeat": 2}, 0, 2),
    }
    with busy_server.client() as client:
        expected: dict[str, tuple[bytes, int]] = {}
        for name, (values, exit_code, repeat) in configs.items():
            run_id = start_run(client, write_config(config_dir, name, **values))["id"]
            expected[run_id] = (expected_output(repeat=repeat), exit_code)
        results, ended = read_streams(client, dict.fromkeys(expected, 0))
    assert ended, "the response ends once every run is done"
    for run_id, (data, exit_code) in expected.items():
        assert results[run_id].data == data
        assert results[run_id].done == {"exit_code": exit_code, "final_size": len(data)}
        assert len(results[run_id].ids) > 1  # live, in several events


def test_each_run_resumes_from_its_own_offset(busy_server: Server, config_dir: Path) -> None:
    with busy_server.client() as client:
        slow = start_run(client, write_config(config_dir, "slow.json", delay=0.05, repeat=2))["id"]
        fast = start_run(client, write_config(config_dir, "fast.json"))["id"]
        expected = {slow: expected_output(repeat=2), fast: expected_output()}
        first, ended = read_streams(client, {slow: 0, fast: 0}, stop_after_bytes=100)
        assert not ended and first[slow].done is None
        # Resume each where it stopped; one run also from an offset it never read to.
        wait_until_ended(client, fast)
        starts = {slow: len(first[slow].data), fast: len(expected[fast]) - 7}
        rest, ended = read_streams(client, starts)
        assert ended
        assert bytes(first[slow].data + rest[slow].data) == expected[slow]
        assert rest[fast].data == expected[fast][-7:]
        assert rest[fast].done == {"exit_code": 0, "final_size": len(expected[fast])}
        # A run asked for from its end gets its done alone; without an offset, from 0.
        again, _ = read_streams(client, {fast: len(expected[fast])})
        assert again[fast].data == b"" and again[fast].done is not None
        response = client.get("/api/streams", params={"run": fast})
        assert (
            b"".join(
                base64.b64decode(event.data["chunk"])
                for event in sse_events(response.text)
                if event.event == "log"
            )
            == expected[fast]
        )


def test_bad_stream_requests_get_clear_errors(server: Server, config_dir: Path) -> None:
    with server.client() as client:
        run_id = start_run(client, write_config(config_dir, "ok.json"))["id"]
        bad = [
            [],
            ["not-a-run"],
            [f"{run_id}:-1"],
            [f"{run_id}:1.5"],
            [f"{run_id}:\u00b2"],  # a superscript two: str.isdigit() says yes, int() no
            [f"{run_id}:{2**64}"],
            [f"{run_id}:0:1"],
            [f"{run_id}:1", f"{run_id}:2"],
            [str(uuid.uuid4()) for _ in range(101)],
        ]
        for runs in bad:
            response = client.get("/api/streams", params=[("run", run) for run in runs])
            assert response.status_code == 422, runs
            assert isinstance(response.json()["detail"], str), runs
        missing = client.get("/api/streams", params={"run": [run_id, str(uuid.uuid4())]})
        assert missing.status_code == 404 and "detail" in missing.json()
        wait_until_ended(client, run_id)
