"""Several API replicas on one database: a run started through one streams live through
another, since nothing but the database is shared."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import (
    Server,
    read_stream,
    start_run,
    start_server,
    stop_server,
    wait_for,
    write_config,
)
from tests.programs.emit import expected_output


def test_a_run_started_through_one_replica_streams_live_through_another(
    server: Server, config_dir: Path, tmp_path: Path
) -> None:
    replica = start_server(server.env, tmp_path)
    try:
        config = write_config(config_dir, "slow.json", delay=0.05, exit_code=5)
        expected = expected_output()
        with server.client() as first, replica.client() as second:
            run_id = start_run(first, config)["id"]
            # Joined while the run is live: the replica has no memory of it but the database.
            wait_for(lambda: second.get(f"/api/runs/{run_id}").json()["status"] == "running")
            live = read_stream(second, run_id)
            assert live.done == {"exit_code": 5, "final_size": len(expected)}
            assert bytes(live.data) == expected
            assert len(live.ids) > 3  # it arrived in pieces, as it was written
            assert [run["id"] for run in second.get("/api/runs").json()["runs"]] == [run_id]
    finally:
        stop_server(replica)
