"""Capture throughput: a flooding child under `trainlog run`, vs. the same child into a file.

Time is from the child's first write (it records the clocks in a file just before) to the
run's `finished_at`, which the runner records only after the last byte is committed: "the last
byte is durable" (the compaction `trainlog run` does after that is not counted). Baselines
time the same child from the same moment to the exit of `child | cat > file` (pipe mode) or
of bench/ptyread.py (PTY mode).
Each repetition uses a fresh database; trainlog and baseline alternate, so a busy neighbour
on the shared machine hurts both alike, and each starts once the disk has taken what earlier
ones wrote (see harness.settle).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from bench.harness import (
    BENCH_DIR,
    CHILDREN,
    PYTHON,
    Config,
    MiB,
    Row,
    fmt_s,
    fresh_db,
    median,
    run_error,
    settle,
    start_trainlog_run,
    stop_followers,
    verdict,
)
from trainlog.db import Database
from trainlog.models import ExperimentRun, TrainingLog

RATIO_TARGET = {"sqlite": 0.2, "postgresql": 0.1}
PTY_RATIO_TARGET = 0.8
PTY_REPETITIONS = 5


def sizes(config: Config) -> tuple[int, int]:
    return (1 * MiB, 4 * MiB) if config.quick else (64 * MiB, 256 * MiB)


def repetitions(config: Config) -> int:
    return 1 if config.quick else 3


@dataclass(frozen=True)
class Captured:
    seconds: float
    stored: int
    pty: bool


def _flood(kind: str, size: int, t0: Path) -> list[str]:
    return [PYTHON, CHILDREN, "flood", kind, str(size), str(t0)]


def _since_t0(t0: Path) -> float:
    end = time.monotonic_ns()
    return (end - int(t0.read_text().split()[0])) / 1e9


def _wall_t0(t0: Path) -> datetime:
    return datetime.fromtimestamp(int(t0.read_text().split()[1]) / 1e9, UTC)


def time_trainlog(db_kind: str, size: int, pty: bool = False, kind: str = "tqdm") -> Captured:
    settle(db_kind)
    with fresh_db(db_kind) as fresh, tempfile.TemporaryDirectory() as tmp:
        t0 = Path(tmp) / "t0"
        process, run_id = start_trainlog_run(fresh.url, _flood(kind, size, t0), pty=pty)
        if process.wait() != 0:
            raise RuntimeError(run_error(process))
        stored, used_pty, finished_at = stored_size(fresh.url, run_id)
        # The run's metric follower extracts its flood for minutes after it ended (niced,
        # from a database about to be deleted): left running, it would take CPU from the
        # repetitions timed after this one (bench/metrics.py times extraction itself).
        stop_followers(t0)
        # Durable = the run's end recorded after its last byte; `trainlog run` then goes on
        # to compact the log, which is not part of capture.
        seconds = (finished_at - _wall_t0(t0)).total_seconds()
    return Captured(seconds, stored, used_pty)


def stored_size(url: str, run_id: uuid.UUID) -> tuple[int, bool, datetime]:
    db = Database.connect(url)
    try:
        with db.read() as session:
            size = session.scalar(select(TrainingLog.size).where(TrainingLog.run_id == run_id))
            run = session.get(ExperimentRun, run_id)
            assert run is not None and run.finished_at is not None
            pty, finished_at = run.pty, run.finished_at
    finally:
        db.dispose()
    return int(size or 0), bool(pty), finished_at


def time_pipe_to_file(size: int) -> float:
    settle()
    with tempfile.TemporaryDirectory() as tmp:
        t0, out = Path(tmp) / "t0", Path(tmp) / "out"
        child = " ".join(_flood("tqdm", size, t0))
        subprocess.run(["sh", "-c", f"{child} | cat > {out}"], check=True)
        seconds = _since_t0(t0)
        assert out.stat().st_size == size
    return seconds


def time_bare_pty(size: int) -> float:
    settle()
    with tempfile.TemporaryDirectory() as tmp:
        t0, out = Path(tmp) / "t0", Path(tmp) / "out"
        argv = [PYTHON, str(BENCH_DIR / "ptyread.py"), str(out), *_flood("tqdm", size, t0)]
        subprocess.run(argv, check=True)
        return _since_t0(t0)


# (db, size) -> medians, so the growth benchmark reuses what capture measured in this run.
_TRAINLOG_MEDIANS: dict[tuple[str, int], float] = {}


def trainlog_median(db_kind: str, size: int, reps: int) -> float:
    key = (db_kind, size)
    if key not in _TRAINLOG_MEDIANS:
        _TRAINLOG_MEDIANS[key] = median([_checked(db_kind, size) for _ in range(reps)])
    return _TRAINLOG_MEDIANS[key]


def _checked(db_kind: str, size: int) -> float:
    result = time_trainlog(db_kind, size)
    if result.stored != size:
        raise RuntimeError(f"stored {result.stored} bytes of {size}")
    return result.seconds


def run(config: Config) -> list[Row]:
    rows: list[Row] = []
    reps = repetitions(config)
    for size in sizes(config):
        mb = size / MiB
        pipe: list[float] = []
        per_db: dict[str, list[float]] = {db: [] for db in config.dbs}
        for _ in range(reps):
            pipe.append(time_pipe_to_file(size))
            for db in config.dbs:
                per_db[db].append(_checked(db, size))
        base = median(pipe)
        for db in config.dbs:
            took = median(per_db[db])
            _TRAINLOG_MEDIANS[(db, size)] = took
            ratio = base / took
            rows.append(
                Row(
                    "capture",
                    db,
                    f"{mb:.0f} MiB tqdm, pipe",
                    f"{fmt_s(took)} ({mb / took:.0f} MiB/s)",
                    f"cat>file {fmt_s(base)} ({mb / base:.0f} MiB/s)",
                    f"ratio {ratio:.2f} >= {RATIO_TARGET[db]}",
                    verdict(ratio >= RATIO_TARGET[db]),
                    {"seconds": per_db[db], "baseline_seconds": pipe, "bytes": size},
                )
            )
    rows.extend(_pty_rows(config, sizes(config)[0]))
    return rows


def _pty_rows(config: Config, size: int) -> list[Row]:
    """Bare reader and trainlog alternate, as in pipe mode; more repetitions, as a pty's
    speed varies more from one run to the next on this shared machine."""
    figure = f"{size / MiB:.0f} MiB tqdm, pty"
    bare: list[float] = []
    per_db: dict[str, list[Captured]] = {db: [] for db in config.dbs}
    try:
        for _ in range(1 if config.quick else PTY_REPETITIONS):
            bare.append(time_bare_pty(size))
            for db in config.dbs:
                per_db[db].append(time_trainlog(db, size, pty=True))
    except (subprocess.CalledProcessError, OSError) as exc:
        return [Row("capture", "-", figure, "-", target=f"no bare pty: {exc}", status="SKIP")]
    base = median(bare)
    rows: list[Row] = []
    for db, results in per_db.items():
        took = median([r.seconds for r in results])
        ratio = base / took
        note = f"ratio {ratio:.2f} >= {PTY_RATIO_TARGET}"
        status = verdict(ratio >= PTY_RATIO_TARGET)
        if not all(r.pty for r in results):
            note, status = "the runner fell back to a pipe (no pseudo-terminal)", "SKIP"
        rows.append(
            Row(
                "capture",
                db,
                figure,
                f"{fmt_s(took)} ({size / MiB / took:.0f} MiB/s)",
                f"bare pty {fmt_s(base)} ({size / MiB / base:.0f} MiB/s)",
                note,
                status,
                {"seconds": [r.seconds for r in results], "baseline_seconds": bare},
            )
        )
    return rows
