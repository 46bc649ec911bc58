"""The runs benchmark's delete row alone: `python -m bench --only runs_delete`."""

from __future__ import annotations

from bench import runs
from bench.harness import Config, Row


def run(config: Config) -> list[Row]:
    return runs.delete_rows(config)
