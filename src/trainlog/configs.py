"""Training configs: the only thing an HTTP client chooses about what a run executes."""

from __future__ import annotations

from pathlib import Path


class ConfigRejected(ValueError):
    pass


def resolve_config(config_dir: Path, name: str) -> Path:
    """The file ``name`` names inside config_dir, after following ``..`` and symlinks.

    Anything that lands outside the directory, or is not a regular file, is rejected, so a
    crafted name can neither read nor run anything the operator did not put there.
    """
    if not name or "\x00" in name or Path(name).is_absolute():
        raise ConfigRejected(f"config {name!r} must be a file name inside the config directory")
    base = config_dir.resolve()
    candidate = (base / name).resolve()
    if not candidate.is_relative_to(base):
        raise ConfigRejected(f"config {name!r} is outside the config directory")
    if not candidate.is_file():
        raise ConfigRejected(f"config {name!r} not found; see GET /api/configs")
    return candidate


def list_configs(config_dir: Path) -> list[str]:
    """Config names a client may start a run with, as paths relative to config_dir."""
    base = config_dir.resolve()
    if not base.is_dir():
        return []
    names = []
    for path in base.rglob("*"):
        relative = path.relative_to(base)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and path.resolve().is_relative_to(base):
            names.append(relative.as_posix())
    return sorted(names)
