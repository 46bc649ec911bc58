"""Every setting, read once from the environment (prefix ``TRAINLOG_``)."""

from __future__ import annotations

import os
import shlex
import sys
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from trainlog.envsettings import ENV_PREFIX, default_database_url
from trainlog.metrics.patterns import Rules, UserPattern

REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    database_url: str = Field(default_factory=default_database_url)
    config_dir: Path = Path("./configs")
    train_command: str = "python -m model.training.cli train --config {config}"
    max_active_runs: int = Field(default=1, ge=1)
    poll_interval: float = Field(default=0.2, gt=0)
    heartbeat_interval: float = Field(default=15.0, gt=0)
    # A viewer that reads nothing for this long is dropped (its browser reconnects if alive).
    send_timeout: float = Field(default=30.0, gt=0)
    # How long a cancelled child gets between SIGTERM and SIGKILL.
    cancel_grace: float = Field(default=10.0, ge=0)
    # Bytes the runner holds in memory while the database lags; beyond it they spill to disk.
    buffer_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024)
    # How often a runner reports that it is alive, and after how long without a report the
    # server declares its run lost.
    runner_heartbeat_interval: float = Field(default=2.0, gt=0)
    # 12 s: with the server's check every runner_heartbeat_interval, a dead runner's run is
    # marked lost within 15 s.
    runner_lost_after: float = Field(default=12.0, gt=0)
    # Where the runner's spill file goes (default: the system's temporary directory).
    spill_dir: Path | None = None
    # Bytes stored per run at most; further output is drained and dropped, with a notice.
    max_log_bytes: int = Field(default=2 * 1024**3, ge=1024)
    # Run the child under a pseudo-terminal (as in a real terminal) rather than a pipe.
    pty: bool = True
    term_cols: int = Field(default=120, ge=20, le=1000)
    term_rows: int = Field(default=40, ge=5, le=1000)
    # Wake streams as soon as bytes are stored (PostgreSQL LISTEN/NOTIFY, SQLite change
    # counter); polling at poll_interval stays as the fallback.
    wakeups: bool = True
    # How long `trainlog run` waits for the database at start (unreachable, or locked by
    # others' first starts) before giving up without running its command.
    start_timeout: float = Field(default=60.0, ge=0)
    # When set, every /api route needs it (Authorization: Bearer, or the cookie set by /?token=).
    api_token: str | None = None
    # A token that may only register runs through POST /api/runs/ingest (see docs/ingest.md).
    ingest_token: str | None = None
    # ``trainlog run`` sends the run to this server over HTTP instead of writing the database.
    server: str | None = None
    # Request bodies of PATCH /api/runs/{id}/log at most (after decompression too); 413 beyond.
    ingest_max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    web_dist: Path = REPO_ROOT / "web" / "dist"
    # Finished runs older than this (a duration: 30d, 12h) are deleted by the server, checked
    # hourly; unset keeps every run.
    retention: str | None = None
    # Metrics extracted from each run's output by its runner (docs/metrics.md); 0: none live
    # (runs are still extracted on first use once they have ended).
    metrics: bool = True
    # The user's metric patterns, one NAME=REGEX (one capture group) a line, on top of the
    # default rules unless metric_defaults is off; at most max_metric_series series a run.
    metric_patterns: str = ""
    metric_defaults: bool = True
    max_metric_series: int = Field(default=50, ge=1, le=1000)

    @field_validator("train_command")
    @classmethod
    def _template_must_parse(cls, value: str) -> str:
        argv = shlex.split(value)
        if not argv:
            raise ValueError("TRAINLOG_TRAIN_COMMAND is empty")
        return value

    @field_validator("retention")
    @classmethod
    def _retention_must_parse(cls, value: str | None) -> str | None:
        if value is not None:
            # Only then: retention's module brings the database layer, which every command
            # would otherwise load to read its settings (`ls` took 1.2 s, most of it this).
            from trainlog.retention import parse_duration

            parse_duration(value)
        return value

    @field_validator("metric_patterns")
    @classmethod
    def _patterns_must_parse(cls, value: str) -> str:
        cls.metric_specs_of(value)
        return value

    @staticmethod
    def metric_specs_of(value: str) -> list[str]:
        specs = [line for line in value.splitlines() if line.strip()]
        for spec in specs:
            UserPattern.parse(spec)
        return specs

    def metric_rules(self, extra_patterns: list[str] | None = None) -> Rules:
        """The rules runs extract metrics by: these settings' patterns, then ``extra_patterns``."""
        specs = self.metric_specs_of(self.metric_patterns) + (extra_patterns or [])
        return Rules.from_specs(specs, self.metric_defaults, self.max_metric_series)

    def runner_env(self) -> dict[str, str]:
        """The environment for a runner process: this process's, with these settings in it."""
        env = dict(os.environ)
        for name, value in self.model_dump().items():
            key = f"TRAINLOG_{name.upper()}"
            if value is None:
                env.pop(key, None)
            else:
                env[key] = str(value)
        return env

    def train_argv(self, config_path: Path) -> list[str]:
        """The command template split like a shell would, with ``{config}`` filled in.

        Substitution happens per argument after splitting, so a config path with spaces or
        quotes stays one argument and can never add arguments of its own.
        """
        template = shlex.split(self.train_command)
        argv = [arg.replace("{config}", str(config_path)) for arg in template]
        # A bare "python" means the interpreter trainlog runs under, so the server's virtualenv
        # (where the trainer's packages live) is used even when it is not on PATH.
        if argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        return argv


@lru_cache
def get_settings() -> Settings:
    return Settings()
