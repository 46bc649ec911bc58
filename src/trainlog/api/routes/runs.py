from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter, HTTPException, status

from trainlog import runs
from trainlog.api.deps import DbDep, SettingsDep
from trainlog.api.schemas import ErrorOut, RunCreate, RunOut
from trainlog.configs import resolve_config
from trainlog.launcher import launch_runner
from trainlog.models import RunSource, RunStatus

log = logging.getLogger(__name__)

router = APIRouter(prefix="/runs", tags=["runs"])


@router.get("")
def list_runs(db: DbDep) -> list[RunOut]:
    """Runs, newest first."""
    with db.read() as session:
        return [RunOut.from_view(view) for view in runs.list_views(session)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def start_run(body: RunCreate, db: DbDep, settings: SettingsDep) -> RunOut:
    """Start the server's training command on a config from the config directory."""
    argv = settings.train_argv(resolve_config(settings.config_dir, body.config))
    with db.write() as session:
        run = runs.create(
            session, argv, body.config, RunSource.SERVER, max_active=settings.max_active_runs
        )
    try:
        launch_runner(settings, run.id)
    except OSError as exc:
        log.exception("could not start the runner for %s", run.id)
        with db.write() as session:
            runs.finish(session, run.id, RunStatus.FAILED, None, error="could not start runner")
        raise HTTPException(500, f"could not start the runner: {exc.strerror}") from exc
    with db.read() as session:
        return RunOut.from_view(runs.view(session, run.id))


@router.get("/{run_id}", responses={404: {"model": ErrorOut}})
def get_run(run_id: uuid.UUID, db: DbDep) -> RunOut:
    with db.read() as session:
        return RunOut.from_view(runs.view(session, run_id))


@router.post(
    "/{run_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
def cancel_run(run_id: uuid.UUID, db: DbDep) -> RunOut:
    """Ask the run's runner to end the child's whole process group (SIGTERM, then SIGKILL)."""
    with db.write() as session:
        runs.request_cancel(session, run_id)
    with db.read() as session:
        return RunOut.from_view(runs.view(session, run_id))
