"""The example trainer (model/training/cli.py), run as a subprocess the way trainlog runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ANSI_SGR = re.compile(rb"\x1b\[[0-9;]*m")
FINAL = re.compile(
    r"^final: val_acc=(?P<val_acc>[0-9.]+) val_loss=[0-9.]+ acc=(?P<acc>[0-9.]+)", re.M
)


def run_trainer(config: str | Path, **env: str) -> subprocess.CompletedProcess[bytes]:
    # Like trainlog: unbuffered, no TTY, and no NO_COLOR inherited from whoever runs pytest.
    environment = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    environment.update(PYTHONUNBUFFERED="1", **env)
    return subprocess.run(
        [sys.executable, "-m", "model.training.cli", "train", "--config", str(config)],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def quick_run() -> subprocess.CompletedProcess[bytes]:
    return run_trainer("configs/quick.yaml")


def test_quick_config_trains_and_exits_cleanly(
    quick_run: subprocess.CompletedProcess[bytes],
) -> None:
    assert quick_run.returncode == 0, quick_run.stderr.decode(errors="replace")
    plain = ANSI_SGR.sub(b"", quick_run.stdout).decode()
    final = FINAL.search(plain)
    assert final, plain
    # Two interleaved spirals: guessing scores 0.5, a linear model not much more.
    assert float(final["val_acc"]) >= 0.75
    assert float(final["acc"]) >= 0.75


def test_output_looks_like_a_terminal_program(
    quick_run: subprocess.CompletedProcess[bytes],
) -> None:
    out, err = quick_run.stdout, quick_run.stderr
    # Colour although stdout is a pipe, since trainlog keeps the bytes for the browser.
    assert b"\x1b[32mINFO" in out
    assert b"\x1b[36mloss=" in out
    # tqdm's bars on stderr redraw in place with carriage returns.
    assert err.count(b"\r") >= 5
    assert b"epoch 5/5: 100%" in err
    assert "✓".encode() in out and "—".encode() in out


def test_no_color_turns_escapes_off(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text("epochs: 1\nn_samples: 100\nsleep: 0\n")
    result = run_trainer(config, NO_COLOR="1")
    assert result.returncode == 0
    assert b"\x1b[" not in result.stdout + result.stderr
    assert b"\r" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("epochs: 1\nlearning_rate: 0.1\n", "unknown config key(s): learning_rate"),
        (None, "config file not found"),
        ("epochs: 0\n", "epochs must be >= 1"),
    ],
)
def test_bad_config_is_reported_with_exit_status_2(
    tmp_path: Path, content: str | None, message: str
) -> None:
    config = tmp_path / "bad.yaml"
    if content is not None:
        config.write_text(content)
    result = run_trainer(config)
    stderr = ANSI_SGR.sub(b"", result.stderr).decode()
    assert result.returncode == 2
    assert message in stderr and str(config) in stderr
    assert "Traceback" not in stderr
    assert result.stdout == b""
