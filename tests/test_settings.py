import os
import sys
from pathlib import Path

import pytest

from trainlog import envsettings
from trainlog.settings import Settings


def test_command_template_is_split_like_a_shell_and_filled_per_argument() -> None:
    settings = Settings(train_command="python -m train --config {config} --name 'a b'")
    argv = settings.train_argv(Path("/cfg/my config; rm -rf ~.yaml"))
    # A hostile-looking path stays one argument; "python" is trainlog's own interpreter.
    assert argv == [
        sys.executable,
        "-m",
        "train",
        "--config",
        "/cfg/my config; rm -rf ~.yaml",
        "--name",
        "a b",
    ]


def test_a_runner_reads_back_the_servers_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    server = Settings(database_url="sqlite:///x.db", poll_interval=0.5, cancel_grace=3)
    for name, value in server.runner_env().items():
        monkeypatch.setenv(name, value)
    assert Settings() == server


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"TRAINLOG_DATABASE_URL": "postgresql://someone@db.example/runs"},
        {"trainlog_database_url": "sqlite:////srv/runs.db"},  # any case, as pydantic reads it
        {"TRAINLOG_DATABASE_URL": ""},
    ],
)
def test_the_database_url_read_without_pydantic_is_the_settings_one(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in os.environ:
        if name.upper() == "TRAINLOG_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert envsettings.database_url() == Settings().database_url
    if not environment:
        assert envsettings.database_url() == f"sqlite:///{tmp_path}/trainlog/trainlog.db"
