"""Where a run came from: git state read from a real repository, without running its hooks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from trainlog.provenance import gather, git_state, parse_status


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "train.py").write_text("print('hi')\n")
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_clean_then_dirty(repo: Path) -> None:
    commit = git(repo, "rev-parse", "HEAD")
    assert git_state(repo) == {"commit": commit, "branch": "main", "dirty": False}
    # An untracked file does not make the tree dirty (as with git describe --dirty).
    (repo / "notes.txt").write_text("scratch\n")
    assert git_state(repo) == {"commit": commit, "branch": "main", "dirty": False}
    (repo / "train.py").write_text("print('changed')\n")
    assert git_state(repo) == {"commit": commit, "branch": "main", "dirty": True}
    # A subdirectory is inside the same work tree.
    (repo / "sub").mkdir()
    assert git_state(repo / "sub") == {"commit": commit, "branch": "main", "dirty": True}


def test_detached_head(repo: Path) -> None:
    commit = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach")
    assert git_state(repo) == {"commit": commit, "branch": None, "dirty": False}


def test_outside_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert git_state(plain) is None
    found = gather(plain)
    assert found.cwd == str(plain) and found.git is None and found.host and found.user


def test_a_repository_cannot_run_commands_through_git(repo: Path) -> None:
    """A hostile .git/config (fsmonitor hook, clean filter) runs nothing."""
    marker = repo.parent / "ran"
    git(repo, "config", "core.fsmonitor", f"touch {marker}; false")
    git(repo, "config", "filter.evil.clean", f"touch {marker}; cat")
    git(repo, "config", "filter.evil.process", f"touch {marker}")
    (repo / ".gitattributes").write_text("*.py filter=evil\n")
    # Same size and time as the index records: git has to hash it, through the filter.
    script = repo / "train.py"
    before = script.stat()
    script.write_text("print('ho')\n")
    os.utime(script, ns=(before.st_atime_ns, before.st_mtime_ns))
    state = git_state(repo)
    assert not marker.exists()
    assert state is not None and state["dirty"] is True


def test_parse_status() -> None:
    output = "# branch.oid (initial)\n# branch.head main\n"
    assert parse_status(output) == {"commit": None, "branch": "main", "dirty": False}
