"""A setting as the environment gives it, read without pydantic.

``settings.Settings`` reads and checks every setting, but importing pydantic-settings takes
longer on a small machine than ``trainlog ls`` may take in all; a command that needs only the
database's URL reads it here. ``Settings`` takes its prefix and that default from this module,
and tests/test_settings.py holds ``database_url()`` to ``Settings().database_url``.
"""

from __future__ import annotations

import os

ENV_PREFIX = "TRAINLOG_"


def default_database_url() -> str:
    """One SQLite database per user, whichever folder a command runs in (on Linux
    ``~/.local/share/trainlog/trainlog.db``); its folder is created on first use."""
    from platformdirs import user_data_path

    return f"sqlite:///{user_data_path('trainlog') / 'trainlog.db'}"


def database_url() -> str:
    """``TRAINLOG_DATABASE_URL``, else the user's own database: ``Settings().database_url``."""
    # As pydantic-settings reads the environment: names in any case, the last spelling wins.
    environment = {name.lower(): value for name, value in os.environ.items()}
    value = environment.get(f"{ENV_PREFIX}database_url".lower())
    return default_database_url() if value is None else value
