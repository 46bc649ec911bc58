from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from trainlog.api.deps import DbDep
from trainlog.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health")
def health(db: DbDep) -> Health:
    with db.read() as session:
        session.execute(text("SELECT 1"))
    return Health(status="ok")
