"""HttpSink, a remote runner's writes, against a real server: a flood's PATCHes are sent
ahead, and may reach the server in the wrong order."""

from __future__ import annotations

from tests.helpers import Server
from trainlog.runner.remote import HttpSink, register


def test_a_patch_that_arrives_before_the_one_before_it_is_sent_again(server: Server) -> None:
    registration = register(server.url, None, ["train.py"], None)
    sink = HttpSink(server.url, registration, ["train.py"])
    first = bytes(range(256)) * 2048  # 512 KiB: a flood's append, sent as soon as prepared
    second = b"step 1 loss 0.5\r\n" * 40_000
    try:
        # The later append prepared, so sent, first: refused (416), nothing stored.
        later = sink.prepare(len(first), second, None, ends_log=False)
        assert later.ahead is not None and later.ahead.result().status_code == 416
        earlier = sink.prepare(0, first, None, ends_log=False)
        assert sink.append(earlier, ends_log=False) == len(first)
        assert sink.append(later, ends_log=False) == len(first) + len(second)
    finally:
        sink.close()
    with server.client() as client:
        raw = client.get(f"/api/runs/{registration.run_id}/logs/raw").content
    assert raw == first + second
