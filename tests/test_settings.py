import sys
from pathlib import Path

import pytest

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
