"""Where a run came from: host, user, working directory and git state, as a runner sees them.

Gathered once, when a run is recorded (``trainlog run``, ``POST /api/runs``, and remote runners
registering theirs), by ``gather``.

Git is asked with one ``git status`` under settings that keep the repository from running
anything of its own: no hooks, no fsmonitor, no clean/smudge filter processes (a repository's
``.git/config`` can name commands for those, and ``git status`` runs them), no optional
index lock, no prompt, and none of trainlog's settings in its environment. Untracked files do
not make a tree dirty (as with ``git describe --dirty``), and are not listed, which keeps the
call fast in large trees.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

# A slow network file system should not hold up a run's start for long.
GIT_TIMEOUT_SECONDS = 5.0
_SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.untrackedCache=false",
    # A partial clone would fetch missing objects over the network; never for this.
    "protocol.allow=never",
)


class GitState(TypedDict):
    commit: str | None  # None in a repository without a commit yet
    branch: str | None  # None on a detached HEAD
    dirty: bool


@dataclass(frozen=True)
class Provenance:
    host: str | None
    user: str | None
    cwd: str | None
    git: GitState | None


def gather(cwd: Path | None = None) -> Provenance:
    """Host, user, ``cwd`` (default: this process's) and its git state (None outside a work
    tree or without git)."""
    where = cwd if cwd is not None else Path.cwd()
    return Provenance(
        host=socket.gethostname() or None,
        user=_user(),
        cwd=str(where),
        git=git_state(where),
    )


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container), and no USER variable
        return None


def git_state(cwd: Path) -> GitState | None:
    filters = _git(cwd, "config", "--null", "--name-only", "--get-regexp", r"^filter\..*\.")
    if filters is None:
        return None  # no git
    # An empty command is no filter: the file's bytes are compared as they are.
    overrides = [
        f"{name}=" for name in filters.split("\0") if name.endswith((".clean", ".process"))
    ]
    status = _git(
        cwd, "status", "--porcelain=v2", "--branch", "--untracked-files=no", overrides=overrides
    )
    # None: not in a work tree, or not one git will read for us (safe.directory).
    return None if status is None else parse_status(status)


def parse_status(output: str) -> GitState:
    """The state in ``git status --porcelain=v2 --branch`` output."""
    commit: str | None = None
    branch: str | None = None
    dirty = False
    for line in output.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.removeprefix("# branch.oid ")
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.removeprefix("# branch.head ")
            branch = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            dirty = True
    return GitState(commit=commit, branch=branch, dirty=dirty)


def _git(cwd: Path, *args: str, overrides: list[str] | None = None) -> str | None:
    """git's output, or None when it fails, is missing or takes too long."""
    config = [arg for item in (*_SAFE_CONFIG, *(overrides or [])) for arg in ("-c", item)]
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TRAINLOG_")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    try:
        done = subprocess.run(
            ["git", *config, "--no-optional-locks", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    # `git config --get-regexp` exits 1 when nothing matches: no filters, not a failure.
    if done.returncode != 0 and not (args[0] == "config" and done.returncode == 1):
        return None
    return done.stdout.decode("utf-8", "replace")
