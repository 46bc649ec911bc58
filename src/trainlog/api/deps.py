"""What route handlers are given: the process's settings and database.

Async, though they do no I/O: FastAPI runs a plain function dependency in its thread pool,
a thread hop per dependency and request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from trainlog.db import Database
from trainlog.settings import Settings
from trainlog.tailer import LogHub


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_hub(request: Request) -> LogHub:
    hub: LogHub = request.app.state.hub
    return hub


SettingsDep = Annotated[Settings, Depends(get_settings)]
DbDep = Annotated[Database, Depends(get_db)]
HubDep = Annotated[LogHub, Depends(get_hub)]
