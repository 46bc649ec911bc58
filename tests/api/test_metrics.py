"""The metrics API on a real server with real runs: live, exact, linked to its bytes."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import (
    Server,
    parse_sse,
    server_env,
    start_run,
    start_server,
    stop_server,
    wait_for,
    wait_until_ended,
    write_config,
)

STEPS = 6

pytestmark = pytest.mark.usefixtures("metrics_on")


@pytest.fixture
def metrics_server(database_url: str, config_dir: Path, tmp_path: Path) -> Iterator[Server]:
    running = start_server(server_env(database_url, config_dir, "metrics_child.py"), tmp_path)
    yield running
    stop_server(running)


def read_metric_events(
    client: httpx.Client, run_id: str, seen: list[dict[str, Any]], last_event_id: str | None = None
) -> dict[str, Any] | None:
    """Collect ``metric`` points into ``seen`` until ``done`` (returned)."""
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    url = f"/api/runs/{run_id}/metrics-stream"
    with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        for event in parse_sse(response.iter_lines()):
            if event.event == "metric":
                points = event.data["points"]
                assert event.id == str(points[-1]["seq"] + 1)
                seen.extend(points)
            elif event.event == "done":
                return event.data
    return None


def test_a_live_runs_series_grow_and_point_at_their_lines(
    metrics_server: Server, config_dir: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    go.mkdir()
    config = write_config(config_dir, "m.json", steps=STEPS, go_dir=str(go))
    with metrics_server.client() as client:
        run_id = start_run(client, config)["id"]
        seen: list[dict[str, Any]] = []
        done: list[dict[str, Any] | None] = []
        reader = threading.Thread(
            target=lambda: done.append(read_metric_events(client, run_id, seen))
        )
        reader.start()
        for step in range(STEPS):
            (go / str(step)).touch()

            def charted(step: int = step) -> bool:
                names = {p["name"] for p in seen if p["step"] == step}
                return {"lr", "loss"} <= names

            # Each step's points arrive while the run is still going (waiting for the next).
            wait_for(charted, timeout=20)
            if step < STEPS - 1:
                assert client.get(f"/api/runs/{run_id}").json()["status"] == "running"
        wait_until_ended(client, run_id)
        reader.join(30)
        assert done and done[0] is not None

        raw = client.get(f"/api/runs/{run_id}/logs/raw").content
        series = client.get(f"/api/runs/{run_id}/metrics").json()["series"]
        loss = client.get(f"/api/runs/{run_id}/metrics/loss").json()

    assert [p["seq"] for p in seen] == list(range(len(seen)))  # every point once, in order
    by_name = {s["name"]: s for s in series}
    assert set(by_name) == {"acc", "lr", "loss"}  # "torch 2.13.0, cuda 12.1" is no metric
    assert by_name["loss"]["points"] == STEPS + 1
    assert by_name["loss"]["last"]["value"] == 0.001  # the unterminated last line
    assert [p["value"] for p in loss["points"]][:3] == [1.0, 0.5, 0.3333]
    assert [p["step"] for p in loss["points"]][:STEPS] == list(range(STEPS))
    streamed = [{k: v for k, v in p.items() if k != "name"} for p in seen]
    assert loss["points"] == [s for s, p in zip(streamed, seen, strict=True) if p["name"] == "loss"]
    for point in seen:
        # The line a point names holds its offset, and the value was printed there.
        assert raw.count(b"\n", 0, point["offset"]) + 1 == point["line"]
        line_start = raw.rfind(b"\n", 0, point["offset"]) + 1
        line_end = raw.find(b"\n", point["offset"])
        line = raw[line_start : line_end if line_end >= 0 else len(raw)]
        assert point["name"].encode() in line
        assert isinstance(point["time"], float)


def test_the_stream_resumes_exactly_from_last_event_id(
    metrics_server: Server, config_dir: Path
) -> None:
    config = write_config(config_dir, "m.json", steps=STEPS)
    with metrics_server.client() as client:
        run_id = start_run(client, config)["id"]
        wait_until_ended(client, run_id)
        whole: list[dict[str, Any]] = []
        read_metric_events(client, run_id, whole)
        tail: list[dict[str, Any]] = []
        read_metric_events(client, run_id, tail, last_event_id="5")
    assert len(whole) == 2 * STEPS + STEPS + 1
    assert tail == whole[5:]


def test_latest_values_and_downsampling(metrics_server: Server, config_dir: Path) -> None:
    config = write_config(config_dir, "m.json", steps=STEPS)
    with metrics_server.client() as client:
        run_id = start_run(client, config)["id"]
        wait_until_ended(client, run_id)
        # The runner's last pass may still be running: this one finishes the extraction.
        assert client.get(f"/api/runs/{run_id}/metrics").status_code == 200
        other = str(uuid.uuid4())
        latest = client.get("/api/metrics/latest", params={"name": "loss", "run": [run_id, other]})
        few = client.get(f"/api/runs/{run_id}/metrics/loss", params={"max_points": 4})
        later = client.get(f"/api/runs/{run_id}/metrics/loss", params={"after_step": 3})
    assert latest.status_code == 200
    assert list(latest.json()["runs"]) == [run_id]
    assert latest.json()["runs"][run_id]["value"] == 0.001
    values = [p["value"] for p in few.json()["points"]]
    assert len(values) <= 4 and values[0] == 1.0 and 0.001 in values
    # The last line has no step of its own: its order in the series, 6.
    assert [p["step"] for p in later.json()["points"]] == [4, 5, 6]


def test_errors_are_clear_and_change_nothing(metrics_server: Server) -> None:
    missing = uuid.uuid4()
    with metrics_server.client() as client:
        for path in (
            f"/api/runs/{missing}/metrics",
            f"/api/runs/{missing}/metrics/loss",
            f"/api/runs/{missing}/metrics-stream",
        ):
            response = client.get(path)
            assert response.status_code == 404, path
            assert response.json() == {"detail": f"run {missing} not found"}
        bad = client.get(f"/api/runs/{missing}/metrics/loss", params={"max_points": 1})
        assert bad.status_code == 422 and "detail" in bad.json()
        resumed = client.get(f"/api/runs/{missing}/metrics-stream", headers={"Last-Event-ID": "x"})
        assert resumed.status_code == 422
        assert "seq" in resumed.json()["detail"]
