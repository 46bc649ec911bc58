"""Numbers read from requests and the environment the child gets: the cases a review found."""

from __future__ import annotations

import pytest

from trainlog.ingest import BadIngestRequest, parse_content_range
from trainlog.metrics.stream import BadMetricResumePoint, resume_seq
from trainlog.runner.process import child_env


@pytest.mark.parametrize(
    "header", ["bytes 0-\u00b2/*", "bytes \u0663-9/*", "bytes 0-99999999999999999999/*"]
)
def test_a_content_range_with_non_ascii_or_huge_numbers_is_a_clear_error(header: str) -> None:
    with pytest.raises(BadIngestRequest):
        parse_content_range(header)


def test_a_content_range_in_ascii_digits_is_read() -> None:
    span = parse_content_range("bytes 10-19/*")
    assert (span.start, span.end) == (10, 20)


@pytest.mark.parametrize("last_event_id", ["\u00b2", "\u0663", str(2**63)])
def test_a_metric_resume_point_that_is_not_a_seq_is_refused(last_event_id: str) -> None:
    with pytest.raises(BadMetricResumePoint):
        resume_seq(last_event_id, None)


def test_trainlogs_settings_never_reach_the_child_whatever_their_case() -> None:
    base = {
        "TRAINLOG_API_TOKEN": "a",
        "trainlog_api_token": "b",
        "Trainlog_Database_Url": "c",
        "TRAINLOG_RUN_ID": "run",
        "MY_TRAINLOG_NOTE": "mine",
    }
    env = child_env(base, None)
    assert {k: v for k, v in env.items() if k in base} == {
        "TRAINLOG_RUN_ID": "run",
        "MY_TRAINLOG_NOTE": "mine",
    }
