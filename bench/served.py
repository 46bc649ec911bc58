"""`trainlog serve`, unchanged, plus a count of the SQL statements it sends.

The server is a separate process, so the bench cannot attach SQLAlchemy events to it from
outside; this wrapper attaches one listener to every Engine before the server starts and
writes the counts to $BENCH_QUERY_FILE ten times a second. It works the same on SQLite and
PostgreSQL (pg_stat_statements is not loaded on the bench machine). Statements sent outside
SQLAlchemy (a raw LISTEN connection, say) are not seen.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

COUNTS = {"statements": 0, "selects": 0, "store_reads": 0, "chunk_reads": 0}
_lock = threading.Lock()


@event.listens_for(Engine, "before_cursor_execute")
def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    head = statement.lstrip()[:6].upper()
    with _lock:
        COUNTS["statements"] += 1
        if head == "SELECT":
            COUNTS["selects"] += 1
            # A "store read": any SELECT of the log's size or its chunks.
            if "log_chunks" in statement:
                COUNTS["chunk_reads"] += 1
                COUNTS["store_reads"] += 1
            elif "training_logs" in statement:
                COUNTS["store_reads"] += 1


def _publish(path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    while True:
        with _lock:
            text = json.dumps(COUNTS)
        tmp.write_text(text)
        os.replace(tmp, path)
        threading.Event().wait(0.1)


def main() -> int:
    target = os.environ.get("BENCH_QUERY_FILE")
    if target:
        threading.Thread(target=_publish, args=(Path(target),), daemon=True).start()
    from trainlog.cli import main as trainlog_main

    return trainlog_main(["serve", *sys.argv[1:]])


if __name__ == "__main__":
    raise SystemExit(main())
