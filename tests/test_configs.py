from pathlib import Path

import pytest

from trainlog.configs import ConfigRejected, list_configs, resolve_config


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    directory = tmp_path / "configs"
    (directory / "sub").mkdir(parents=True)
    (directory / "demo.yaml").write_text("epochs: 1")
    (directory / "sub" / "big.yaml").write_text("epochs: 9")
    (directory / ".hidden.yaml").write_text("")
    (tmp_path / "secret.yaml").write_text("token: x")
    (directory / "escape.yaml").symlink_to(tmp_path / "secret.yaml")
    return directory


def test_resolves_files_inside(configs: Path) -> None:
    assert resolve_config(configs, "demo.yaml") == (configs / "demo.yaml").resolve()
    assert resolve_config(configs, "sub/big.yaml") == (configs / "sub/big.yaml").resolve()


@pytest.mark.parametrize(
    "name",
    [
        "../secret.yaml",
        "sub/../../secret.yaml",
        "escape.yaml",  # a symlink pointing outside
        "/etc/passwd",
        "missing.yaml",
        "sub",
        "",
        "demo.yaml\x00.txt",
        "demo.yaml; rm -rf /",
        "$(touch pwned)",
    ],
)
def test_rejects_anything_else(configs: Path, name: str) -> None:
    with pytest.raises(ConfigRejected):
        resolve_config(configs, name)


def test_lists_only_what_can_be_started(configs: Path) -> None:
    assert list_configs(configs) == ["demo.yaml", "sub/big.yaml"]
    assert list_configs(configs / "nope") == []
