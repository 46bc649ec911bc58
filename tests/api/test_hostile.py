"""Schemathesis against a real server: whatever it sends, never a 5xx answer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import (
    Server,
    server_env,
    start_run,
    start_server,
    stop_server,
    wait_until_ended,
    write_config,
)

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


TOKEN = "fuzz-token"


def joined(*parts: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.tuples(*parts).map(b"".join)


# Schemathesis fuzzes only the headers the OpenAPI schema declares, from its own alphabet.
# These are the headers trainlog reads, as raw bytes. Numbers mix ASCII digits with Latin-1
# ones that str.isdigit() takes ("\xb2" is a superscript two, one byte on the wire).
numbers = st.lists(
    st.sampled_from([b"0", b"7", b"9" * 20, b"\xb2", b"\xb3", b"\xb9", b"\xbd"]),
    min_size=1,
    max_size=3,
).map(b"".join)
maybe_number = st.one_of(st.just(b""), numbers)
ranges = joined(
    st.sampled_from([b"bytes=", b"Bytes = ", b"pages=", b""]),
    maybe_number,
    st.sampled_from([b"-", b",", b"=", b""]),
    maybe_number,
)
# What HTTP allows in a field value (RFC 9110: visible ASCII, space, obs-text 0x80-0xFF); the
# server's HTTP layer turns away control bytes with a 400 of its own before trainlog sees them.
FIELD_BYTES = [byte for byte in range(0x20, 0x100) if byte != 0x7F]
noise = st.lists(st.sampled_from(FIELD_BYTES), min_size=1, max_size=8).map(bytes)
cookies = joined(st.sampled_from([b"trainlog_token=", b'trainlog_token="', b""]), noise)
credentials = st.one_of(
    st.just(f"Bearer {TOKEN}".encode()),
    joined(st.sampled_from([b"Bearer ", b"bearer  ", b"Basic ", b""]), noise),
)
header_values = st.one_of(ranges, numbers, noise)
hostile_headers = st.fixed_dictionaries(
    {
        "Range": header_values,
        "Last-Event-ID": header_values,
        "Cookie": st.one_of(cookies, header_values),
        "Authorization": credentials,
    }
).map(
    # h11 refuses values that start or end with whitespace before they leave the client.
    lambda headers: {name: value.strip(b" ") or b"x" for name, value in headers.items()}
)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_hostile_header_bytes_get_a_clear_answer(
    database_url: str, config_dir: Path, tmp_path: Path
) -> None:
    server = start_server(server_env(database_url, config_dir, TRAINLOG_API_TOKEN=TOKEN), tmp_path)
    try:
        with server.client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            run_id = start_run(client, write_config(config_dir, "ok.json"))["id"]
            wait_until_ended(client, run_id)
            paths = [f"/api/runs/{run_id}/logs{tail}" for tail in ("/raw", "/stream", "")]

            @settings(max_examples=300, deadline=None, database=None, derandomize=True)
            @given(headers=hostile_headers, path=st.sampled_from(paths))
            def answers_clearly(headers: dict[str, bytes], path: str) -> None:
                response = client.get(path, headers=headers)
                assert response.status_code < 500, (headers, path, response.text)
                assert response.headers["cache-control"] == "no-store"
                if response.status_code >= 400:
                    assert "detail" in response.json()

            answers_clearly()
    finally:
        stop_server(server)
