"""The ASGI application: API under /api, the web UI at /."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI

from trainlog.api import errors
from trainlog.api.auth import TokenAuth
from trainlog.api.middleware import BodyLimit, NoStoreForApi
from trainlog.api.routes import configs, health, logs, runs, streams
from trainlog.db import Database, migrate
from trainlog.notify import Listener, make_listener
from trainlog.retention import RETENTION_INTERVAL_SECONDS, apply_retention, parse_duration
from trainlog.settings import Settings, get_settings
from trainlog.tailer import LogHub
from trainlog.watchdog import watch_runners
from trainlog.web import mount_web

log = logging.getLogger(__name__)


def _start_wakeups(settings: Settings, hub: LogHub) -> Listener | None:
    loop = asyncio.get_running_loop()

    def on_change(run_id: uuid.UUID | None) -> None:
        loop.call_soon_threadsafe(hub.wake, run_id)

    listener = make_listener(settings.database_url, on_change, lambda: hub.active_runs > 0)
    if listener is not None:
        listener.start()
    return listener


# Collector thresholds for a server (CPython's defaults are 700, 10, 10): a young collection
# once 50,000 more objects are alive than at the last one; a middle one every 5 young ones.
COLLECTION_THRESHOLDS = (50_000, 5, 10)


def _keep_collections_short() -> None:
    """Keep the garbage collector from stopping every stream for a tenth of a second.

    A collection stops the whole server while it scans, and a full one scans every open
    stream's objects (about 200 each: over 100 ms at 1,000 viewers). Full collections follow
    once enough objects have survived young ones. With the default threshold young
    collections ran several times a second during fan-outs to 1,000 viewers, while the
    futures and messages in flight were alive, so those survived and a full collection
    followed every few seconds. With this one they are freed (as soon as they are sent)
    before any collection sees them: once the viewers have connected, collections are rare
    (none in 8 s of a traced 1,000-viewer run).
    """
    # What is alive now (modules, the app, the engine) lives as long as the server.
    gc.freeze()
    gc.set_threshold(*COLLECTION_THRESHOLDS)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database.connect(settings.database_url)
        migrate(db.engine)
        hub = LogHub(db, settings.poll_interval, settings.heartbeat_interval)
        app.state.settings = settings
        app.state.db = db
        app.state.hub = hub
        listener = _start_wakeups(settings, hub) if settings.wakeups else None
        _keep_collections_short()
        watch = asyncio.create_task(
            watch_runners(
                db,
                settings.runner_heartbeat_interval,
                settings.runner_lost_after,
                settings.cancel_grace,
            )
        )
        background = [watch]
        if settings.retention is not None:
            keep = parse_duration(settings.retention)
            log.info("retention: finished runs older than %s are deleted", settings.retention)
            background.append(
                asyncio.create_task(apply_retention(db, keep, RETENTION_INTERVAL_SECONDS))
            )
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if listener is not None:
                listener.stop()
            await hub.close()
            db.dispose()

    app = FastAPI(title="trainlog", version="0.1.0", lifespan=lifespan)
    api = APIRouter(prefix="/api")
    for module in (runs, logs, streams, configs, health):
        api.include_router(module.router)
    app.include_router(api)
    errors.install(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(TokenAuth, token=settings.api_token)
    app.add_middleware(NoStoreForApi)
    mount_web(app, settings.web_dist)
    return app
