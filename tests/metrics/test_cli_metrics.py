"""``trainlog run --metric NAME=REGEX``: a user's pattern, end to end through a real run."""

from __future__ import annotations

import sys
import uuid

import pytest
from sqlalchemy import func, select

from tests.helpers import wait_for
from tests.test_cli import run_id_from, trainlog
from trainlog.db import Database
from trainlog.metrics.store import extraction_complete, series_points
from trainlog.models import ExperimentRun

SCRIPT = "print('perplexity 12.5 after warmup'); print('loss=0.5 acc=0.25')"

pytestmark = pytest.mark.usefixtures("metrics_on")


def extracted(db: Database, run_id: uuid.UUID, name: str) -> list[float]:
    def complete() -> bool:
        with db.read() as session:
            return extraction_complete(session, run_id)

    wait_for(complete)  # the run's metrics follower ends once all is extracted
    with db.read() as session:
        return [p["value"] for p in series_points(session, run_id, name)]


def test_a_user_pattern_extends_the_defaults(db: Database, database_url: str) -> None:
    result = trainlog(
        database_url,
        "run",
        "--no-pty",
        "--metric",
        r"ppl=perplexity (\d+\.\d+)",
        "--",
        sys.executable,
        "-c",
        SCRIPT,
    )
    assert result.returncode == 0, result.stderr
    run_id = uuid.UUID(run_id_from(result.stderr))
    assert extracted(db, run_id, "ppl") == [12.5]
    assert extracted(db, run_id, "loss") == [0.5]


def test_no_default_metrics_leaves_only_the_users(db: Database, database_url: str) -> None:
    result = trainlog(
        database_url,
        "run",
        "--no-pty",
        "--no-default-metrics",
        "--metric",
        r"ppl=perplexity (\d+\.\d+)",
        "--",
        sys.executable,
        "-c",
        SCRIPT,
    )
    run_id = uuid.UUID(run_id_from(result.stderr))
    assert extracted(db, run_id, "ppl") == [12.5]
    assert extracted(db, run_id, "loss") == []


def test_a_bad_pattern_is_one_line_and_starts_nothing(db: Database, database_url: str) -> None:
    result = trainlog(database_url, "run", "--metric", "loss=(", "--", "true")
    assert result.returncode == 2
    assert result.stderr.decode().count("\n") == 1
    assert "loss=(" in result.stderr.decode() and "missing" in result.stderr.decode()
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(ExperimentRun)) == 0
