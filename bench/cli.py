"""The command line's start-up: `trainlog --help` and `trainlog ls`, timed as whole processes.

What a user waits for at the shell, imports included, against `python -c pass` (the
interpreter's own start) in the same run. `ls` lists a database holding 50 runs, already
migrated by an earlier command, as a user's is.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.harness import Config, Row, bench_env, fresh_db, median, verdict
from trainlog import runs
from trainlog.db import Database
from trainlog.models import RunSource

TRAINLOG = Path(sys.executable).parent / "trainlog"
TARGETS = {"--help": 0.1, "ls": 0.4}
RUNS_LISTED = 50


def run(config: Config) -> list[Row]:
    repetitions = 3 if config.quick else 15
    rows: list[Row] = []
    for db_kind in config.dbs:
        with fresh_db(db_kind) as fresh:
            env = bench_env(fresh.url)
            _fill(fresh.url, env)
            python, _ = _median_of(repetitions, [sys.executable, "-c", "pass"], env)
            for args, target in TARGETS.items():
                seconds, cpu = _median_of(repetitions, [str(TRAINLOG), args], env)
                rows.append(
                    Row(
                        "cli",
                        db_kind,
                        f"trainlog {args}",
                        f"{seconds * 1000:.0f} ms (CPU {cpu * 1000:.0f} ms)",
                        f"python -c pass {python * 1000:.0f} ms",
                        f"<= {target * 1000:.0f} ms",
                        verdict(seconds <= target),
                        {"seconds": seconds, "cpu_seconds": cpu, "python_seconds": python},
                    )
                )
    return rows


def _fill(url: str, env: dict[str, str]) -> None:
    """Migrate the database as a user's first command does, then add runs for ls to list."""
    subprocess.run([str(TRAINLOG), "run", "--no-pty", "--", "true"], env=env, check=True)
    db = Database.connect(url)
    try:
        with db.write() as session:
            for _ in range(RUNS_LISTED - 1):
                runs.create(session, ["true"], None, RunSource.CLI)
    finally:
        db.dispose()


def _median_of(repetitions: int, argv: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    walls, cpus = zip(*(_timed(argv, env) for _ in range(repetitions)), strict=True)
    return median(walls), median(cpus)


def _timed(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run: on a busy machine the second
    says more about trainlog than the first."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
