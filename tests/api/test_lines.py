"""Windows of lines through a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

from tests.helpers import Server, start_run, wait_until_ended, write_config
from tests.programs.emit import expected_output
from tests.test_lines import lines_of


def test_lines_windows_are_the_childs_lines_with_their_times(
    server: Server, config_dir: Path
) -> None:
    config = write_config(config_dir, "ok.json", repeat=2)
    expected = expected_output(2)
    lines = lines_of(expected)
    with server.client() as client:
        run_id = start_run(client, config)["id"]
        run = wait_until_ended(client, run_id)
        assert run["line_count"] == len(lines)
        assert client.get("/api/runs").json()["runs"][0]["line_count"] == len(lines)

        whole = client.get(f"/api/runs/{run_id}/logs/lines", params={"count": 10_000}).json()
        assert base64.b64decode(whole["data"]) == expected
        assert (whole["start"], whole["offset"], whole["end_offset"]) == (1, 0, len(expected))
        assert (whole["total_lines"], whole["size"]) == (len(lines), len(expected))
        times = whole["times"]
        assert len(times) == len(lines) and times == sorted(times) and None not in times

        window = client.get(f"/api/runs/{run_id}/logs/lines", params={"start": 3, "count": 2})
        offset = len(b"".join(lines[:2]))
        assert window.json()["offset"] == offset and window.json()["times"] == times[2:4]
        assert base64.b64decode(window.json()["data"]) == b"".join(lines[2:4])
        by_offset = client.get(
            f"/api/runs/{run_id}/logs/lines", params={"offset": offset + 3, "count": 2}
        ).json()
        assert by_offset["start"] == 3 and by_offset["data"] == window.json()["data"]
        past = client.get(f"/api/runs/{run_id}/logs/lines", params={"start": len(lines) + 5})
        assert past.json()["data"] == "" and past.json()["times"] == []

        stamped = client.get(f"/api/runs/{run_id}/logs/text", params={"timestamps": 1}).text
        first_time = datetime.fromtimestamp(times[0], UTC).isoformat(timespec="milliseconds")
        assert stamped.startswith(first_time[:-6] + "Z plain line\n")
        assert client.get(f"/api/runs/{run_id}/logs/text").text.startswith("plain line\n")

        for bad in ({"count": 0}, {"count": 10_001}, {"start": 0}, {"start": 1, "offset": 0}):
            refused = client.get(f"/api/runs/{run_id}/logs/lines", params=bad)
            assert refused.status_code == 422 and "detail" in refused.json()
        missing = client.get("/api/runs/00000000-0000-0000-0000-000000000000/logs/lines")
        assert missing.status_code == 404 and "not found" in missing.json()["detail"]


def test_search_answers_matches_and_refuses_bad_patterns(server: Server, config_dir: Path) -> None:
    config = write_config(config_dir, "ok.json")
    expected = expected_output()
    with server.client() as client:
        run_id = start_run(client, config)["id"]
        wait_until_ended(client, run_id)
        found = client.get(f"/api/runs/{run_id}/logs/search", params={"q": "LOSS="}).json()
        final = expected.rindex(b"final")
        assert found["next_after"] is None and found["scanned_to"] == len(expected)
        [match] = found["matches"]
        assert (match["offset"], match["text"]) == (final, "final: loss=0.01")
        assert match["line"] == expected[:final].count(b"\n") + 1
        assert isinstance(match["time"], float)
        bad = client.get(f"/api/runs/{run_id}/logs/search", params={"q": "(", "regex": 1})
        assert bad.status_code == 422 and "missing )" in bad.json()["detail"]
        empty = client.get(f"/api/runs/{run_id}/logs/search", params={"q": ""})
        assert empty.status_code == 422
        missing = client.get(
            "/api/runs/00000000-0000-0000-0000-000000000000/logs/search", params={"q": "x"}
        )
        assert missing.status_code == 404
