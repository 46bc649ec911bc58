"""A child that prints its environment, as experiment trackers and config dumps do, and has a
grandchild that does the same.

Run as ``environ.py CONFIG.json``; both wait until the file named by the config's "release"
exists, so a test can look at the run's processes while they are alive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def print_environ_and_wait(release: Path) -> None:
    for name, value in sorted(os.environ.items()):
        print(f"{name}={value}", flush=True)
    while not release.exists():
        time.sleep(0.05)


def main() -> int:
    if sys.argv[1] == "--grandchild":
        print_environ_and_wait(Path(sys.argv[2]))
        return 0
    release = Path(json.loads(Path(sys.argv[1]).read_text())["release"])
    grandchild = subprocess.Popen([sys.executable, __file__, "--grandchild", str(release)])
    print_environ_and_wait(release)
    return grandchild.wait()


if __name__ == "__main__":
    sys.exit(main())
