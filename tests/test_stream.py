import base64
import random

import pytest

from trainlog import sse
from trainlog.stream import BadResumePoint, done_event, log_event, resume_offset


def test_last_event_id_wins_over_the_query_offset() -> None:
    # On reconnect a browser repeats the original URL and adds the id it last saw.
    assert resume_offset("1500", 200) == 1500
    assert resume_offset(None, 200) == 200
    assert resume_offset("", 200) == 200
    assert resume_offset(None, None) == 0


@pytest.mark.parametrize("bad", ["abc", "-5", "1e3", "12 34", str(2**63)])
def test_malformed_last_event_id_is_rejected(bad: str) -> None:
    with pytest.raises(BadResumePoint):
        resume_offset(bad, None)


def test_event_framing_matches_the_design() -> None:
    assert log_event(b"\r\x1b[0m\xff", 42) == (
        b'event: log\nid: 42\ndata: {"chunk":"DRtbMG3/"}\n\n'
    )
    assert done_event(3, 42) == b'event: done\ndata: {"exit_code":3,"final_size":42}\n\n'


@pytest.mark.parametrize("size", [0, 1, 2, 3, 1000, 256 * 1024])
def test_a_log_event_is_the_json_of_its_base64_chunk(size: int) -> None:
    # log_event assembles its JSON by hand; json.dumps of the same object is the reference.
    chunk = random.Random(size).randbytes(size)
    text = base64.b64encode(chunk).decode()
    assert log_event(chunk, 7 + size) == sse.frame("log", {"chunk": text}, event_id=7 + size)
