"""SSE framing: a message tagged with its source stays one valid message."""

from __future__ import annotations

import json

from tests.helpers import sse_events
from trainlog import sse
from trainlog.stream import done_event, heartbeat_event, log_event


def test_a_tag_is_the_first_member_of_every_events_data_and_leaves_the_rest_as_it_was() -> None:
    tag = sse.tagger("run", "r-1")
    for message in (log_event(b"\x00\xff\r\n", 9), heartbeat_event(), done_event(3, 9)):
        [before] = sse_events(message)
        [after] = sse_events(tag(message))
        assert after.event == before.event and after.id == before.id
        assert after.data == {"run": "r-1", **before.data}
        assert next(iter(after.data)) == "run"
    assert json.loads(tag(heartbeat_event()).split(b"data: ")[1]) == {"run": "r-1"}
    assert tag(sse.comment("trainlog")) == sse.comment("trainlog")
