"""A training script as people write them: a tqdm-style bar with a loss postfix, then a
``step | lr | loss`` print per step; waits for a go file between steps when told to.

Run as ``metrics_child.py CONFIG.json``: ``steps`` (default 5), ``go_dir`` (wait for
``go_dir/N`` before step N, so a test sees the run live; gives up after a minute, so a failed
test leaves nothing running), ``delay`` between steps.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def line(step: int) -> str:
    return f"step {step} | lr 3e-4 | loss {1 / (step + 1):.4f}\n"


def main() -> int:
    config = json.loads(Path(sys.argv[1]).read_text())
    steps = int(config.get("steps", 5))
    go_dir = config.get("go_dir")
    out = sys.stdout
    out.write("torch 2.13.0, cuda 12.1\n")
    for step in range(steps):
        if go_dir is not None:
            deadline = time.monotonic() + 60
            while not os.path.exists(os.path.join(go_dir, str(step))):
                if time.monotonic() > deadline:
                    return 1
                time.sleep(0.01)
        out.write(f"\r{step}/{steps} [00:00<00:00, acc={step / steps:.2f}]")
        out.write("\n" + line(step))
        out.flush()
        time.sleep(float(config.get("delay", 0)))
    out.write("done loss=0.001")  # no newline at the end
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
