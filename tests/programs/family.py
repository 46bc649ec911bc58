"""A child with children of its own, like a trainer with DataLoader workers or torchrun ranks.

Run as ``family.py CONFIG.json``: starts ``children`` workers in its process group and one
that leaves it (setsid), writes every pid to ``pidfile``, then prints a tick every
``interval`` seconds for ``ticks`` ticks (or forever with 0) and exits 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

WORKER = "import time\nwhile True: time.sleep(0.2)"


def main() -> int:
    config = json.loads(Path(sys.argv[1]).read_text())
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER]) for _ in range(int(config["children"]))
    ]
    workers.append(subprocess.Popen([sys.executable, "-c", WORKER], start_new_session=True))
    pids = [os.getpid(), *(worker.pid for worker in workers)]
    Path(config["pidfile"]).write_text(json.dumps(pids))
    ticks = int(config.get("ticks", 0))
    tick = 0
    while ticks == 0 or tick < ticks:
        print(f"tick {tick}", flush=True)
        tick += 1
        time.sleep(float(config.get("interval", 0.2)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
