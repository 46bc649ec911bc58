"""Schemathesis against a real server: whatever it sends, never a 5xx answer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import Server, start_run, wait_until_ended, write_config

ST = Path(shutil.which("st") or Path(__file__).parents[2] / ".venv" / "bin" / "st")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_schemathesis_finds_no_server_errors(
    server: Server, config_dir: Path, tmp_path: Path
) -> None:
    if not ST.exists():
        pytest.fail("schemathesis is not installed: pip install -e '.[dev]'")
    # One quick config, so whatever runs it starts end at once (others get 409 or 422).
    config = write_config(config_dir, "ok.json")
    with server.client() as client:
        wait_until_ended(client, start_run(client, config)["id"])
    result = subprocess.run(
        [
            str(ST),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--phases",
            "examples,coverage,fuzzing",
            "--request-timeout",
            "20",
            "--generation-deterministic",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
