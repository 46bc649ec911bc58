from __future__ import annotations

from fastapi import APIRouter

from trainlog.api.deps import SettingsDep
from trainlog.configs import list_configs

router = APIRouter(tags=["configs"])


@router.get("/configs")
def configs(settings: SettingsDep) -> list[str]:
    """Config names a run can be started with."""
    return list_configs(settings.config_dir)
