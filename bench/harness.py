"""Shared pieces: fresh databases, a monitored server, timing, the results table and JSON."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import sqlalchemy

from trainlog.reaper import METRIC_FOLLOWER_NAME

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
PYTHON = sys.executable
CHILDREN = str(BENCH_DIR / "children.py")
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
MiB = 1024 * 1024


@dataclass(frozen=True)
class Config:
    quick: bool
    dbs: tuple[str, ...]


@dataclass
class Row:
    """One figure of the table: measured value, its same-run baseline, target and verdict."""

    bench: str
    db: str
    figure: str
    value: str
    baseline: str = ""
    target: str = ""
    status: str = "INFO"  # PASS, FAIL, SKIP or INFO (no target)
    data: dict[str, Any] = field(default_factory=dict)


def verdict(ok: bool | None) -> str:
    return "INFO" if ok is None else ("PASS" if ok else "FAIL")


# --- statistics -----------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; q in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# --- databases ------------------------------------------------------------------------------


def pg_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    engine = sqlalchemy.create_engine(_sa_url(PG_URL))
    try:
        engine.connect().close()
    except sqlalchemy.exc.OperationalError as exc:
        return f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}"
    finally:
        engine.dispose()
    return None


def _sa_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@dataclass(frozen=True)
class FreshDb:
    kind: str
    url: str
    schema: str | None  # PostgreSQL
    path: Path | None  # SQLite file


@contextlib.contextmanager
def fresh_db(kind: str) -> Iterator[FreshDb]:
    """An empty database, removed afterwards: a SQLite file, or a PostgreSQL schema.

    A schema (not a database) keeps the bench off other people's tables in the shared `test`
    database; search_path on the URL makes trainlog create its tables there.
    """
    if kind == "sqlite":
        directory = Path(tempfile.mkdtemp(prefix="trainlog-bench-"))
        path = directory / "bench.db"
        try:
            yield FreshDb(kind, f"sqlite:///{path}", None, path)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(_sa_url(PG_URL))
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in PG_URL else "?"
    try:
        yield FreshDb(kind, f"{PG_URL}{separator}options=-csearch_path%3D{schema}", schema, None)
    finally:
        try:
            with admin.begin() as connection:
                connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        except sqlalchemy.exc.SQLAlchemyError as exc:
            # Do not hide the benchmark's own error; say what is left behind.
            print(f"bench: could not drop schema {schema}: {exc}", file=sys.stderr)
        admin.dispose()


def settle(kind: str = "sqlite") -> None:
    """Write out what earlier repetitions left in the page cache, before timing the next.

    Otherwise the kernel's writeback of the last 256 MiB competes with whatever is timed
    next for this machine's two cores. On PostgreSQL a checkpoint first: what earlier
    benchmarks wrote (the growth benchmark's single-row baseline alone leaves ~460 MiB)
    would otherwise be flushed by the checkpointer while the next one is timed.
    """
    if kind == "postgresql":
        admin = sqlalchemy.create_engine(_sa_url(PG_URL))
        try:
            with admin.connect() as connection:
                connection.exec_driver_sql("CHECKPOINT")
        finally:
            admin.dispose()
    os.sync()


def _followers(t0: Path) -> list[psutil.Process]:
    """The metric followers of the repetition whose child writes its clocks to ``t0``. Forked
    from the runner, a follower keeps the runner's command line, which names t0 (unique to
    the repetition): other people's runs on this shared machine are left alone."""
    return [
        process
        for process in psutil.process_iter(["name", "cmdline"])
        if process.info["name"] == METRIC_FOLLOWER_NAME
        and str(t0) in (process.info["cmdline"] or [])
    ]


def stop_followers(t0: Path) -> None:
    for process in _followers(t0):
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    wait_followers_gone(t0)


def wait_followers_gone(t0: Path, timeout: float = 30) -> None:
    """The run's follower ends a pass after its extraction is complete; until it has, it
    would run into the next repetition, so wait for its exit."""
    deadline = time.monotonic() + timeout
    while _followers(t0):
        if time.monotonic() > deadline:
            raise RuntimeError(f"a metric follower still runs {timeout:.0f} s after its run")
        time.sleep(0.05)


def engine_for(url: str) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(_sa_url(url))


# --- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bench_env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINLOG_")}
    env.update(
        TRAINLOG_DATABASE_URL=url,
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    env.update(extra)
    return env


def start_trainlog_run(
    url: str, child: Sequence[str], pty: bool = False, **env: str
) -> tuple[subprocess.Popen[bytes], uuid.UUID]:
    """`trainlog run -- child` as a subprocess; returns once it has printed its run id.

    Its echo of the child's output goes to /dev/null (a terminal would cost more, and is not
    what we measure); its own messages arrive on stderr.
    """
    process = subprocess.Popen(
        [PYTHON, "-m", "trainlog", "run", "--", *child],
        env=bench_env(url, TRAINLOG_PTY="1" if pty else "0", **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    line = process.stderr.readline().decode(errors="replace")
    found = re.search(r"run ([0-9a-f-]{36})", line)
    if not found:
        rest = process.stderr.read().decode(errors="replace")
        process.wait()
        raise RuntimeError(f"trainlog run did not start: {line}{rest}")
    # Keep draining stderr so a chatty runner never blocks on a full pipe; keep its tail for
    # error messages (see run_error).
    tail = bytearray()
    _STDERR_TAILS[process.pid] = tail

    def drain(stream: Any = process.stderr) -> None:
        for chunk in iter(lambda: stream.read1(4096), b""):
            tail.extend(chunk)
            del tail[:-2000]

    threading.Thread(target=drain, daemon=True).start()
    return process, uuid.UUID(found.group(1))


_STDERR_TAILS: dict[int, bytearray] = {}


def run_error(process: subprocess.Popen[bytes]) -> str:
    """What a failed `trainlog run` said last on stderr."""
    text = bytes(_STDERR_TAILS.get(process.pid, b"")).decode(errors="replace").strip()
    last = text.splitlines()[-1] if text else ""
    return f"trainlog run exited {process.returncode}: {last}"


@dataclass
class Usage:
    cpu_seconds: float
    wall_seconds: float
    rss_start: int
    rss_peak: int

    @property
    def cpu_percent(self) -> float:
        return 100 * self.cpu_seconds / self.wall_seconds if self.wall_seconds else 0.0


class Server:
    """`trainlog serve` via bench.served (which counts SQL statements), watched with psutil."""

    def __init__(self, url: str, workdir: Path, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.counter_file = workdir / f"queries-{self.port}.json"
        self.log_path = workdir / f"server-{self.port}.log"
        config_dir = workdir / "configs"
        config_dir.mkdir(exist_ok=True)
        full_env = bench_env(
            url,
            TRAINLOG_CONFIG_DIR=str(config_dir),
            TRAINLOG_TRAIN_COMMAND=f"python {CHILDREN} ticker 1",
            BENCH_QUERY_FILE=str(self.counter_file),
            **env,
        )
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [PYTHON, "-m", "bench.served", "--port", str(self.port)],
                env=full_env,
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.ps = psutil.Process(self.process.pid)
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/api/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError("server did not become healthy")

    def queries(self) -> dict[str, int]:
        """The server's cumulative SQL statement counts (see bench/served.py)."""
        for _ in range(50):
            with contextlib.suppress(OSError, ValueError):
                counts: dict[str, int] = json.loads(self.counter_file.read_text())
                return counts
            time.sleep(0.02)
        return {}

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    @contextlib.contextmanager
    def watch(self, every: float = 0.02) -> Iterator[Usage]:
        """CPU and peak RSS over the block (RSS sampled every ``every`` seconds)."""
        usage = Usage(0.0, 0.0, self.rss(), self.rss())
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(every):
                with contextlib.suppress(psutil.Error):
                    usage.rss_peak = max(usage.rss_peak, self.rss())

        thread = threading.Thread(target=sample, daemon=True)
        cpu0, t0 = self.cpu(), time.monotonic()
        thread.start()
        try:
            yield usage
        finally:
            stop.set()
            thread.join()
            usage.rss_peak = max(usage.rss_peak, self.rss())
            usage.cpu_seconds = self.cpu() - cpu0
            usage.wall_seconds = time.monotonic() - t0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def server(url: str, **env: str) -> Iterator[Server]:
    workdir = Path(tempfile.mkdtemp(prefix="trainlog-bench-srv-"))
    srv = Server(url, workdir, **env)
    try:
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def browser_script(script: str, *args: str, timeout: float = 300) -> Any:
    """Run one of the bench's Chromium scripts (``bench/<script>``, node with the web app's
    Playwright) and return the JSON it prints on its last line."""
    done = subprocess.run(
        ["node", str(BENCH_DIR / script), *args],
        cwd=REPO / "web",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script}: {done.stderr[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def raise_fd_limit(wanted: int = 8192) -> int:
    """Thousands of viewers need thousands of sockets in the client and the server."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


# --- output ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


COLUMNS = ("bench", "db", "figure", "value", "baseline", "target", "status")


def table(rows: Sequence[Row]) -> str:
    cells = [list(COLUMNS)] + [[str(getattr(r, c)) for c in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def write_json(name: str, rows: Sequence[Row], config: Config, extra: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}{'-quick' if config.quick else ''}.json"
    payload = {
        "benchmark": name,
        "quick": config.quick,
        "machine": machine(),
        **extra,
        "rows": [asdict(r) for r in rows],
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_bytes(n: float) -> str:
    return f"{n / MiB:.1f} MiB"
