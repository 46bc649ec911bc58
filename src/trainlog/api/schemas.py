"""Request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trainlog.models import RunStatus
from trainlog.runs import RunPage, RunView
from trainlog.tags import check_tags


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: str = Field(min_length=1, max_length=255, examples=["demo.yaml"])
    name: str | None = Field(default=None, max_length=255, examples=["baseline lr 3e-4"])
    tags: dict[str, str] = Field(default_factory=dict, examples=[{"team": "vision"}])

    @field_validator("tags")
    @classmethod
    def _tags_must_be_valid(cls, value: dict[str, str]) -> dict[str, str]:
        check_tags(value)
        return value


class GitOut(BaseModel):
    commit: str | None = Field(default=None, description="null before the first commit")
    branch: str | None = Field(default=None, description="null on a detached HEAD")
    dirty: bool = Field(description="tracked files differ from the commit")


class RunOut(BaseModel):
    id: uuid.UUID
    status: RunStatus
    config: str | None
    command: list[str]
    exit_code: int | None = Field(description="negative: the child was killed by that signal")
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    log_size: int
    log_truncated: bool = Field(description="output past TRAINLOG_MAX_LOG_BYTES was not stored")
    pty: bool = Field(description="the child ran under a pseudo-terminal")
    term_cols: int | None = Field(description="the terminal's width, when under a pty")
    term_rows: int | None
    line_count: int | None = Field(
        default=None, description="lines stored so far (null: an old log not indexed yet)"
    )
    name: str | None
    tags: dict[str, str]
    host: str | None = Field(description="where the runner ran (null for older runs)")
    user: str | None
    cwd: str | None
    git: GitOut | None = Field(description="null outside a git work tree, or without git")
    clock_skew: float | None = Field(
        default=None,
        description="a remote runner's clock minus the server's in seconds, when 2 s or more "
        "off: the run's line times are the runner's clock",
    )

    @classmethod
    def from_view(cls, view: RunView) -> RunOut:
        run = view.run
        return cls(
            id=run.id,
            status=RunStatus(run.status),
            config=run.config,
            command=run.command,
            exit_code=run.exit_code,
            error=run.error,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            log_size=view.log_size,
            log_truncated=run.log_truncated,
            pty=run.pty,
            term_cols=run.term_cols,
            term_rows=run.term_rows,
            line_count=view.line_count,
            name=run.name,
            tags=run.tags or {},
            host=run.host,
            user=run.user,
            cwd=run.cwd,
            git=GitOut.model_validate(run.git) if run.git is not None else None,
            clock_skew=run.clock_skew,
        )


class RunListOut(BaseModel):
    runs: list[RunOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null: last")

    @classmethod
    def from_page(cls, page: RunPage) -> RunListOut:
        cursor = page.next_cursor.encode() if page.next_cursor is not None else None
        return cls(runs=[RunOut.from_view(view) for view in page.views], next_cursor=cursor)


class LogPage(BaseModel):
    """The shape of GET /api/runs/{id}/logs (streamed out, so documented here)."""

    run_id: uuid.UUID
    offset: int
    size: int = Field(description="total bytes stored so far")
    updated_at: datetime
    data: str = Field(description="base64 of the bytes [offset, offset+limit) that exist")


class LineWindowOut(BaseModel):
    """The shape of GET /api/runs/{id}/logs/lines."""

    run_id: uuid.UUID
    start: int = Field(description="the first returned line's number (from 1)")
    offset: int = Field(description="the byte offset where that line starts")
    end_offset: int = Field(description="the byte offset after the last returned byte")
    total_lines: int = Field(description="lines stored so far")
    size: int = Field(description="bytes stored so far")
    data: str = Field(description="base64 of the bytes [offset, end_offset): whole lines")
    times: list[float | None] = Field(
        description="per returned line: when its first byte was read, epoch seconds (ms)"
    )


class SearchMatch(BaseModel):
    line: int
    offset: int = Field(description="where the matching line starts")
    time: float | None
    text: str = Field(description="the line's plain text, cut to 500 characters")


class SearchOut(BaseModel):
    """The shape of GET /api/runs/{id}/logs/search."""

    matches: list[SearchMatch]
    next_after: int | None = Field(description="pass as after= to go on; null: the end")
    scanned_to: int = Field(description="lines starting before this offset were searched")


class Health(BaseModel):
    status: str


class ErrorOut(BaseModel):
    detail: str
