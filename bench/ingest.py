"""HTTP ingest: a remote `trainlog run --server` against the same child captured directly.

Throughput: the capture benchmark's flooding child (tqdm-style text, pipe mode), timed from
its first write to the run's `finished_at` (recorded only once the server holds the last
byte), once through a server on loopback and once with a direct database connection, in
alternation in the same run. Latency: the latency benchmark's ticker under a remote runner,
with wake-ups, one viewer on the same server, then under a direct runner to the same server.
Metric extraction is off for both kinds of runner (see NO_METRICS).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.capture import _flood, _wall_t0, stored_size
from bench.harness import (
    Config,
    MiB,
    Row,
    fmt_s,
    fresh_db,
    median,
    run_error,
    server,
    settle,
    start_trainlog_run,
    verdict,
)
from bench.latency import Mode, measure

RATIO_TARGET = 0.5
LATENCY = Mode("remote runner, wake-ups", True, 1, 10, 50)


# A direct runner starts a metric follower that goes on reading the log for a minute or two
# after its run (a remote run's metrics are extracted by the server on first use): left on,
# it competed with the next repetitions and with the latency rows for the two cores.
NO_METRICS = {"TRAINLOG_METRICS": "0"}


def time_run(db_kind: str, size: int, remote: bool) -> float:
    """The flood's first write to its run's recorded end, through a server on loopback
    (``remote``) or with a direct database connection."""
    settle(db_kind)
    with (
        fresh_db(db_kind) as fresh,
        server(fresh.url) as srv,
        tempfile.TemporaryDirectory() as tmp,
    ):
        t0 = Path(tmp) / "t0"
        env = {"TRAINLOG_SERVER": srv.base} if remote else {}
        process, run_id = start_trainlog_run(
            fresh.url, _flood("tqdm", size, t0), **NO_METRICS, **env
        )
        if process.wait() != 0:
            raise RuntimeError(run_error(process))
        stored, _pty, finished_at = stored_size(fresh.url, run_id)
        if stored != size:
            raise RuntimeError(f"stored {stored} bytes of {size}")
        return (finished_at - _wall_t0(t0)).total_seconds()


def run(config: Config) -> list[Row]:
    size = 4 * MiB if config.quick else 64 * MiB
    reps = 1 if config.quick else 3
    rows: list[Row] = []
    for db in config.dbs:
        remote: list[float] = []
        direct: list[float] = []
        for _ in range(reps):
            remote.append(time_run(db, size, remote=True))
            direct.append(time_run(db, size, remote=False))
        took, base = median(remote), median(direct)
        ratio = base / took
        mb = size / MiB
        rows.append(
            Row(
                "ingest",
                db,
                f"{mb:.0f} MiB tqdm over HTTP",
                f"{fmt_s(took)} ({mb / took:.0f} MiB/s)",
                f"direct database {fmt_s(base)} ({mb / base:.0f} MiB/s)",
                f"ratio {ratio:.2f} >= {RATIO_TARGET}",
                verdict(ratio >= RATIO_TARGET),
                {"seconds": remote, "baseline_seconds": direct, "bytes": size},
            )
        )
        rows.append(_latency_row(config, db))
    return rows


def _latency_row(config: Config, db: str) -> Row:
    """The remote runner's latency, next to a local runner's to the same server in the same
    run (this shared machine's load moves both)."""
    seconds = 0.5 if config.quick else 8.0
    with fresh_db(db) as fresh, server(fresh.url, TRAINLOG_WAKEUPS="1") as srv:
        settle(db)
        result = measure(srv, fresh.url, LATENCY, seconds, TRAINLOG_SERVER=srv.base, **NO_METRICS)
        direct = measure(srv, fresh.url, LATENCY, seconds, **NO_METRICS)
    ok = result.p50 <= (LATENCY.p50_ms or 0) and result.p99 <= LATENCY.p99_ms and not result.errors
    return Row(
        "ingest",
        db,
        "latency, remote child -> viewer",
        f"p50 {result.p50:.1f} / p99 {result.p99:.1f} / max {result.max:.1f} ms",
        f"direct p50 {direct.p50:.1f} / p99 {direct.p99:.1f} ms; {result.samples} samples",
        f"p50 <= {LATENCY.p50_ms:.0f} ms, p99 <= {LATENCY.p99_ms:.0f} ms",
        verdict(ok),
        {"result": result.__dict__, "direct": direct.__dict__},
    )
