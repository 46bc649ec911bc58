"""The per-run log cap: the child keeps running, the log says where it stopped, once."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.faults.conftest import StartServer, fault_env
from tests.helpers import read_stream, start_run, wait_until_ended, write_config
from tests.programs.emit import expected_output
from trainlog.runner.capture import limit_notice

CAP = 100_000


def test_output_past_the_cap_is_drained_not_stored_with_one_notice(
    servers: StartServer, database_url: str, config_dir: Path
) -> None:
    env = {**fault_env(database_url, config_dir), "TRAINLOG_MAX_LOG_BYTES": str(CAP)}
    server = servers(env)
    config = write_config(config_dir, "big.json", repeat=3, exit_code=4)
    notice = limit_notice(CAP)
    with server.client() as client:
        run_id = start_run(client, config)["id"]
        stream = read_stream(client, run_id)
        run = wait_until_ended(client, run_id)
        # The child wrote 3 MiB and ran to its own end (its exit code, not a broken pipe).
        assert run["exit_code"] == 4 and run["status"] == "failed"
        assert run["log_truncated"] is True and run["log_size"] == CAP
        log = base64.b64decode(client.get(f"/api/runs/{run_id}/logs").json()["data"])
        assert log == expected_output(repeat=3)[: CAP - len(notice)] + notice
        assert b"[trainlog] log limit of 100000 bytes reached" in notice
        assert stream.data == log and stream.done == {"exit_code": 4, "final_size": CAP}
        # The notice is indexed like any append: its two lines end the count.
        assert run["line_count"] == log.count(b"\n")
        last = client.get(f"/api/runs/{run_id}/logs/lines", params={"start": run["line_count"]})
        assert base64.b64decode(last.json()["data"]) == notice.split(b"\r\n")[1] + b"\r\n"
