"""HTTP ingest's protocol against a real server: registering, appending by offset (replayed,
reordered, overlapping), 416 recovery, finishing, and what a run token may not do."""

from __future__ import annotations

import gzip
import itertools
import random
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import zstandard
from sqlalchemy import select

from tests.helpers import Server, server_env, start_server, stop_server, wait_for
from trainlog import store
from trainlog.db import Database
from trainlog.models import ChunkCodec, LogChunk


def register(client: httpx.Client, token: str | None = None, **body: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/api/runs/ingest", json={"command": ["train.py"], **body}, headers=headers)


def new_remote_run(client: httpx.Client) -> tuple[str, dict[str, str]]:
    """A registered run and the headers that carry its run token."""
    response = register(client)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["run"]["status"] == "queued"
    return answer["run"]["id"], {"Authorization": f"Bearer {answer['token']}"}


def patch(
    client: httpx.Client, run_id: str, auth: dict[str, str], start: int, data: bytes, **headers: str
) -> httpx.Response:
    return client.patch(
        f"/api/runs/{run_id}/log",
        content=data,
        headers={**auth, "Content-Range": f"bytes {start}-{start + len(data) - 1}/*", **headers},
    )


def patch_zstd(
    client: httpx.Client, run_id: str, auth: dict[str, str], start: int, length: int, body: bytes
) -> httpx.Response:
    """A PATCH of ``length`` bytes from ``start`` sent as the zstd ``body``."""
    return client.patch(
        f"/api/runs/{run_id}/log",
        content=body,
        headers={
            **auth,
            "Content-Range": f"bytes {start}-{start + length - 1}/*",
            "Content-Encoding": "zstd",
        },
    )


def flood(size: int) -> bytes:
    """Progress bars and figures, with every byte value in among them, ``size`` bytes."""
    lines = (
        f"\rtrain {i}: {i % 100:3d}%|{'#' * (i % 100 // 4):<25}| loss {1 / (i + 1):.6f}\n".encode()
        + (bytes(range(256)) if i % 97 == 0 else b"")
        for i in itertools.count()
    )
    data = b""
    while len(data) < size:
        data += next(lines)
    return data[:size]


def stored(client: httpx.Client, run_id: str) -> bytes:
    return client.get(f"/api/runs/{run_id}/logs/raw").content


def test_appends_by_offset_are_idempotent_and_gaps_answer_the_stored_size(server: Server) -> None:
    data = bytes(range(256)) * 8  # every byte value: nothing decoded on the way
    with server.client() as client:
        run_id, auth = new_remote_run(client)
        assert patch(client, run_id, auth, 0, data[:1000]).json() == {"size": 1000}
        # Replayed (its answer lost): accepted, not stored twice.
        assert patch(client, run_id, auth, 0, data[:1000]).json() == {"size": 1000}
        # Reordered: the later piece first leaves a gap, refused with the size to resend from.
        gap = patch(client, run_id, auth, 1500, data[1500:])
        assert gap.status_code == 416
        assert gap.json()["size"] == 1000
        assert gap.headers["range"] == "bytes=0-999"
        # Overlapping what is stored, agreeing with it: only the new part is stored.
        assert patch(client, run_id, auth, 500, data[500:1500]).json() == {"size": 1500}
        # Overlapping, disagreeing: refused, nothing changed.
        wrong = patch(client, run_id, auth, 1400, b"X" * 200)
        assert wrong.status_code == 416 and wrong.json()["size"] == 1500
        assert patch(client, run_id, auth, 1500, data[1500:]).json() == {"size": len(data)}
        assert stored(client, run_id) == data


def test_compressed_and_big_bodies(server: Server) -> None:
    big = b"step 1 loss 0.5\r\n" * (3 * 1024 * 1024 // 17)  # 3 MiB: several chunks
    with server.client() as client:
        run_id, auth = new_remote_run(client)
        assert patch(client, run_id, auth, 0, big).json() == {"size": len(big)}
        compressors = {"gzip": gzip.compress, "zstd": zstandard.ZstdCompressor().compress}
        size = len(big)
        for encoding, compress in compressors.items():
            part = f"{encoding} part\n".encode()
            response = client.patch(
                f"/api/runs/{run_id}/log",
                content=compress(part),
                headers={
                    **auth,
                    "Content-Range": f"bytes {size}-{size + len(part) - 1}/*",
                    "Content-Encoding": encoding,
                },
            )
            size += len(part)
            assert response.json() == {"size": size}
        assert stored(client, run_id) == big + b"gzip part\nzstd part\n"


def test_a_runners_compressed_flood_is_stored_as_it_came(server: Server, db: Database) -> None:
    """A remote runner sends a flood as zstd frames, one per chunk the store keeps: the
    server decompresses them (the size, the line index and the checks come from the bytes)
    and stores the frames themselves instead of compressing again. Any other zstd body is
    decoded whole. Either way the log holds exactly the child's bytes."""
    data = flood(2_500_000)
    frames = store.compress_pieces(data)
    assert len(frames) == 3  # 1 MiB, 1 MiB and the rest
    more = flood(300_000)
    with server.client() as client:
        run_id, auth = new_remote_run(client)
        body = b"".join(frames)
        assert patch_zstd(client, run_id, auth, 0, len(data), body).json() == {"size": len(data)}
        # Replayed (its answer lost): accepted, not stored twice.
        assert patch_zstd(client, run_id, auth, 0, len(data), body).json() == {"size": len(data)}
        # One frame for another client's body, cut otherwise than the store's chunks.
        single = zstandard.ZstdCompressor().compress(more)
        answer = patch_zstd(client, run_id, auth, len(data), len(more), single)
        assert answer.json() == {"size": len(data) + len(more)}
        assert stored(client, run_id) == data + more
        run = client.get(f"/api/runs/{run_id}").json()
        whole = data + more
        assert run["line_count"] == whole.count(b"\n") + (not whole.endswith(b"\n"))

        # Overlapping what is stored: only the rest is stored, exactly.
        other_id, other_auth = new_remote_run(client)
        assert patch(client, other_id, other_auth, 0, data[:1_500_000]).is_success
        answer = patch_zstd(client, other_id, other_auth, 0, len(data), body)
        assert answer.json() == {"size": len(data)}
        assert stored(client, other_id) == data
    with db.read() as session:
        chunks = session.execute(
            select(LogChunk.codec, LogChunk.data)
            .where(LogChunk.run_id == uuid.UUID(run_id))
            .order_by(LogChunk.start_offset)
        ).all()
    # The runner's frames, byte for byte: the server did not compress them again.
    assert [(codec, data) for codec, data in chunks[:3]] == [(ChunkCodec.ZSTD, f) for f in frames]


def test_damaged_compressed_bodies_are_refused_and_change_nothing(server: Server) -> None:
    # Bytes that do not compress: zstd keeps them as they are inside its frames, so a flipped
    # bit still decodes, to other bytes; only the frame's checksum tells.
    data = random.Random(17).randbytes(2_500_000)
    body = b"".join(store.compress_pieces(data))
    flipped = bytearray(body)
    flipped[len(body) // 2] ^= 0x10
    with server.client() as client:
        run_id, auth = new_remote_run(client)
        cases = [
            (len(data), body[:-7]),  # cut short
            (len(data), bytes(flipped)),
            (len(data), body + b"trailing"),
            (len(data), b"\x28\xb5\x2f\xfd" + b"not zstd" * 10),  # zstd's magic number, then not
            (len(data) + 1, body),  # not the bytes Content-Range says
        ]
        for length, bad in cases:
            response = patch_zstd(client, run_id, auth, 0, length, bad)
            assert response.status_code == 400, response.text
            assert "detail" in response.json()
        assert stored(client, run_id) == b""
        assert client.get(f"/api/runs/{run_id}").json()["log_size"] == 0
        assert patch_zstd(client, run_id, auth, 0, len(data), body).json() == {"size": len(data)}
        assert stored(client, run_id) == data


def test_bad_requests_are_clear_errors_that_change_nothing(server: Server) -> None:
    with server.client() as client:
        run_id, auth = new_remote_run(client)
        cases = [
            ({"Content-Range": "bytes 0-9/*"}, b"short", 400),  # length disagrees
            ({"Content-Range": "items 0-4/*"}, b"12345", 400),
            ({}, b"12345", 400),  # no Content-Range
            # An encoding this server does not decode: 415, so a client can send it plain.
            ({"Content-Range": "bytes 0-4/*", "Content-Encoding": "br"}, b"12345", 415),
            ({"Content-Range": "bytes 0-4/*", "Content-Encoding": "gzip"}, b"12345", 400),
            ({"Content-Range": "bytes 0-4/*", "Trainlog-Capture-Times": "9=1.0"}, b"12345", 400),
            ({"Content-Range": "bytes 0-4/*", "Trainlog-Capture-Times": "x"}, b"12345", 400),
        ]
        for headers, body, status in cases:
            response = client.patch(
                f"/api/runs/{run_id}/log", content=body, headers={**auth, **headers}
            )
            assert response.status_code == status, (headers, response.text)
            assert "detail" in response.json()
        assert stored(client, run_id) == b""
        # The runner's read times become the lines' times, not the time of receipt.
        times = {"Trainlog-Capture-Times": "0=1765000000.5,3=1765000000.75"}
        assert patch(client, run_id, auth, 0, b"12\n45", **times).json() == {"size": 5}
        lines = client.get(f"/api/runs/{run_id}/logs/lines").json()
        assert lines["times"] == [1765000000.5, 1765000000.75]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_replicas_take_alternating_patches(server: Server, tmp_path: Path) -> None:
    replica = start_server(server.env, tmp_path)
    data = b"".join(f"epoch {i}: loss {i / 7:.4f}\r\n".encode() for i in range(400))
    pieces = [(start, data[start : start + 397]) for start in range(0, len(data), 397)]
    try:
        with server.client() as first, replica.client() as second:
            run_id, auth = new_remote_run(first)
            for index, (start, piece) in enumerate(pieces):
                one, other = (first, second) if index % 2 else (second, first)
                assert patch(one, run_id, auth, start, piece).is_success
                # The same PATCH resent through the other replica: stored once.
                assert patch(other, run_id, auth, start, piece).is_success
            end = {"status": "succeeded", "exit_code": 0, "size": len(data)}
            assert second.post(f"/api/runs/{run_id}/finish", json=end, headers=auth).is_success
            assert stored(first, run_id) == data and stored(second, run_id) == data
    finally:
        stop_server(replica)


def test_finish_needs_the_final_size_then_the_token_stops_working(server: Server) -> None:
    with server.client() as client:
        run_id, auth = new_remote_run(client)
        started = {"host": "gpu-7", "pid": 4242, "term_cols": 120, "term_rows": 40}
        assert client.post(f"/api/runs/{run_id}/started", json=started, headers=auth).is_success
        run = client.get(f"/api/runs/{run_id}").json()
        assert (run["status"], run["pty"], run["term_cols"]) == ("running", True, 120)
        assert patch(client, run_id, auth, 0, b"hello\n").is_success
        end = {"status": "failed", "exit_code": 3, "size": 99}
        short = client.post(f"/api/runs/{run_id}/finish", json=end, headers=auth)
        assert short.status_code == 409 and short.json()["size"] == 6
        assert client.get(f"/api/runs/{run_id}").json()["status"] == "running"
        end["size"] = 6
        finished = client.post(f"/api/runs/{run_id}/finish", json=end, headers=auth)
        assert finished.status_code == 200, finished.text
        assert (finished.json()["status"], finished.json()["exit_code"]) == ("failed", 3)
        # Resent (its answer lost): the same end again is fine; anything else is refused.
        assert client.post(f"/api/runs/{run_id}/finish", json=end, headers=auth).is_success
        other = {**end, "status": "succeeded", "exit_code": 0}
        assert (
            client.post(f"/api/runs/{run_id}/finish", json=other, headers=auth).status_code == 403
        )
        late = patch(client, run_id, auth, 6, b"more\n")
        assert late.status_code == 403 and "has ended" in late.json()["detail"]
        beat = client.post(f"/api/runs/{run_id}/heartbeat", json={}, headers=auth)
        assert beat.status_code == 403
        assert stored(client, run_id) == b"hello\n"


def test_a_run_token_writes_its_own_run_and_nothing_else(server: Server) -> None:
    with server.client() as client:
        run_id, auth = new_remote_run(client)
        other_id, other_auth = new_remote_run(client)
        assert patch(client, other_id, auth, 0, b"intruder").status_code == 403
        unknown = str(uuid.uuid4())
        assert patch(client, unknown, auth, 0, b"intruder").status_code == 403
        assert patch(client, run_id, {}, 0, b"anonymous").status_code == 401
        bad = {"Authorization": "Bearer not-the-token"}
        assert patch(client, run_id, bad, 0, b"guess").status_code == 403
        # Once both runs have appended (the server remembers their tokens), still the same.
        assert patch(client, run_id, auth, 0, b"mine\n").is_success
        assert patch(client, other_id, other_auth, 0, b"theirs\n").is_success
        assert patch(client, other_id, auth, 7, b"intruder").status_code == 403
        assert patch(client, run_id, bad, 5, b"guess").status_code == 403
        assert stored(client, other_id) == b"theirs\n" and stored(client, run_id) == b"mine\n"


def test_a_body_is_decoded_only_for_the_runs_own_token(server: Server) -> None:
    """Whatever the body, a token that cannot write the run is refused (403) before the
    server decodes it: nobody else gets it to decompress (a bomb) or to say the body is bad."""
    with server.client() as client:
        run_id, auth = new_remote_run(client)
        other_id, other_auth = new_remote_run(client)
        # The other run's token, remembered by the server once it has appended.
        assert patch(client, other_id, other_auth, 0, b"theirs\n").is_success
        ended_id, ended_auth = new_remote_run(client)
        end = {"status": "succeeded", "exit_code": 0, "size": 0}
        assert client.post(f"/api/runs/{ended_id}/finish", json=end, headers=ended_auth).is_success
        bomb = zstandard.ZstdCompressor().compress(b"x" * (64 * 1024 * 1024))  # 64 MiB
        bodies = [
            ("zstd", bomb),  # over the body limit once decoded: 413 for the run's own token
            ("gzip", gzip.compress(b"x" * (64 * 1024 * 1024))),
            ("zstd", b"\x28\xb5\x2f\xfd" + b"not zstd" * 10),  # 400 for the run's own token
            ("br", b"12345"),
        ]
        refused = [
            (run_id, {"Authorization": "Bearer not-the-token"}, "cannot write"),
            (run_id, other_auth, "cannot write"),
            (str(uuid.uuid4()), auth, "cannot write"),
            (ended_id, ended_auth, "has ended"),
        ]
        for encoding, body in bodies:
            for target, headers, why in refused:
                response = client.patch(
                    f"/api/runs/{target}/log",
                    content=body,
                    headers={
                        **headers,
                        "Content-Range": "bytes 0-4/*",
                        "Content-Encoding": encoding,
                    },
                )
                assert response.status_code == 403, (encoding, why, response.text)
                assert why in response.json()["detail"]
        assert stored(client, run_id) == b""
        answer = patch_zstd(client, run_id, auth, 0, 64 * 1024 * 1024, bomb)
        assert answer.status_code == 413


def test_with_an_api_token_registering_needs_it_or_the_ingest_token(
    database_url: str, config_dir: Path, tmp_path: Path
) -> None:
    env = server_env(
        database_url, config_dir, TRAINLOG_API_TOKEN="api-secret", TRAINLOG_INGEST_TOKEN="ingest"
    )
    server = start_server(env, tmp_path)
    try:
        with server.client() as client:
            assert register(client).status_code == 403
            assert register(client, "wrong").status_code == 403
            assert register(client, "api-secret").status_code == 201
            answer = register(client, "ingest").json()
            run_id, run_token = answer["run"]["id"], answer["token"]
            # The ingest token and the run token register and write; they read nothing.
            for token in ("ingest", run_token):
                headers = {"Authorization": f"Bearer {token}"}
                assert client.get("/api/runs", headers=headers).status_code == 401
                assert client.get(f"/api/runs/{run_id}/logs", headers=headers).status_code == 401
            auth = {"Authorization": f"Bearer {run_token}"}
            assert patch(client, run_id, auth, 0, b"ok\n").json() == {"size": 3}
            ingest_auth = {"Authorization": "Bearer ingest"}
            assert patch(client, run_id, ingest_auth, 3, b"no\n").status_code == 403
    finally:
        stop_server(server)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_limits_answer_413(database_url: str, config_dir: Path, tmp_path: Path) -> None:
    env = server_env(
        database_url,
        config_dir,
        TRAINLOG_INGEST_MAX_BODY_BYTES=str(64 * 1024),
        TRAINLOG_MAX_LOG_BYTES="100000",
    )
    server = start_server(env, tmp_path)
    try:
        with server.client() as client:
            run_id, auth = new_remote_run(client)
            assert patch(client, run_id, auth, 0, b"x" * (64 * 1024 + 1)).status_code == 413
            bomb = gzip.compress(b"x" * (1024 * 1024))
            response = client.patch(
                f"/api/runs/{run_id}/log",
                content=bomb,
                headers={**auth, "Content-Range": "bytes 0-1048575/*", "Content-Encoding": "gzip"},
            )
            assert response.status_code == 413
            # The same as a remote runner's frames: each one's size is checked before it is
            # decompressed.
            frames = b"".join(store.compress_pieces(b"x" * (2 * 1024 * 1024)))
            assert patch_zstd(client, run_id, auth, 0, 2 * 1024 * 1024, frames).status_code == 413
            assert patch(client, run_id, auth, 0, b"x" * 60000).is_success
            over = patch(client, run_id, auth, 60000, b"y" * 50000)
            assert over.status_code == 413 and "log limit" in over.json()["detail"]
            assert len(stored(client, run_id)) == 60000
    finally:
        stop_server(server)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_without_tokens_only_this_machine_may_register(database_url: str, config_dir: Path) -> None:
    from starlette.testclient import TestClient

    from trainlog.app import create_app
    from trainlog.settings import Settings

    settings = Settings(database_url=database_url, config_dir=config_dir)
    # A server reached through its network address, from another machine: only an in-process
    # client can claim a non-loopback peer here.
    with TestClient(create_app(settings), client=("192.0.2.10", 50000)) as remote:
        refused = register(remote)
        assert refused.status_code == 403 and "TRAINLOG_INGEST_TOKEN" in refused.json()["detail"]
        assert remote.get("/api/runs").json()["runs"] == []
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as local:
        assert register(local).status_code == 201
        # What `trainlog run` gathers about a run (issue 16) is taken; malformed, refused.
        origin = {"host": "gpu-7", "user": "ml", "cwd": "/job", "git": {"dirty": False}}
        tagged = register(local, name="sweep-3", tags={"lr": "3e-4"}, **origin)
        assert tagged.status_code == 201
        recorded = tagged.json()["run"]
        assert (recorded["name"], recorded["tags"], recorded["host"], recorded["cwd"]) == (
            "sweep-3",
            {"lr": "3e-4"},
            "gpu-7",
            "/job",
        )
        assert recorded["git"] == {"commit": None, "branch": None, "dirty": False}
        assert register(local, tags=["lr"]).status_code == 422
        assert register(local, command=[]).status_code == 422


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_run_thought_lost_takes_the_rest_and_its_real_end(
    database_url: str, config_dir: Path, tmp_path: Path
) -> None:
    """A runner cut off longer than TRAINLOG_RUNNER_LOST_AFTER is not dead: when it is heard
    from again, its output and its end are recorded, as a local runner's are."""
    env = server_env(database_url, config_dir, TRAINLOG_RUNNER_LOST_AFTER="1")
    server = start_server(env, tmp_path)
    try:
        with server.client() as client:
            run_id, auth = new_remote_run(client)
            assert patch(client, run_id, auth, 0, b"before\n").is_success
            wait_for(lambda: client.get(f"/api/runs/{run_id}").json()["status"] == "lost")
            assert patch(client, run_id, auth, 7, b"after\n").json() == {"size": 13}
            end = {"status": "succeeded", "exit_code": 0, "size": 13}
            finished = client.post(f"/api/runs/{run_id}/finish", json=end, headers=auth)
            assert finished.json()["status"] == "succeeded"
            assert stored(client, run_id) == b"before\nafter\n"
    finally:
        stop_server(server)
