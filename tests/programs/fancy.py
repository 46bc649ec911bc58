"""A training script as people write them: tqdm bars, rich progress and tables, coloured logs.

Each library draws differently into a terminal than into a pipe. First it prints one line
``facts {json}`` about the terminal it was given, then the same for a grandchild
(``grandchild {json}``), which shares it. Run as ``fancy.py [CONFIG]`` (the config is ignored,
so the server's command template can run it), or ``fancy.py --facts NAME``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from typing import Any

EPOCHS = 2
STEPS = 30


def terminal_facts() -> dict[str, Any]:
    try:
        with open("/dev/tty", "wb"):
            dev_tty = True
    except OSError:
        dev_tty = False
    try:
        size: list[int] | None = list(os.get_terminal_size(sys.stdout.fileno()))
    except OSError:
        size = None
    return {
        "stdin": sys.stdin.isatty(),
        "stdout": sys.stdout.isatty(),
        "stderr": sys.stderr.isatty(),
        "dev_tty": dev_tty,
        "size": size,
        "ttyname": os.ttyname(1) if sys.stdout.isatty() else None,
        "term": os.environ.get("TERM"),
    }


def train() -> None:
    import click
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table
    from tqdm import tqdm
    from uvicorn.logging import DefaultFormatter

    handler = logging.StreamHandler()
    # uvicorn's formatter colours the level when stdout is a terminal, like most such code.
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s"))
    log = logging.getLogger("fancy")
    log.addHandler(handler)
    log.setLevel(logging.INFO)

    log.info("training started")
    for epoch in range(1, EPOCHS + 1):
        for _ in tqdm(range(STEPS), desc=f"epoch {epoch}", mininterval=0):
            pass
    console = Console()
    with Progress(console=console) as progress:
        task = progress.add_task("evaluating", total=STEPS)
        for _ in range(STEPS):
            progress.advance(task)
    table = Table(title="results", expand=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("accuracy", "[green]0.91[/green]")
    table.add_row("loss", "[red]0.27[/red]")
    console.print(table)
    log.warning("done with %d epochs", EPOCHS)
    click.secho("finished", fg="green")


def main() -> int:
    if sys.argv[1:2] == ["--facts"]:
        print(sys.argv[2], json.dumps(terminal_facts()), flush=True)
        return 0
    print("facts", json.dumps(terminal_facts()), flush=True)
    subprocess.run([sys.executable, __file__, "--facts", "grandchild"], check=True)
    train()
    return 0


if __name__ == "__main__":
    sys.exit(main())
