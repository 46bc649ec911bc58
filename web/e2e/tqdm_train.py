"""A real tqdm run for the e2e tests (emitter.py runs it for a config with ``program: tqdm``).

Under trainlog's pseudo-terminal tqdm sees a 120-column terminal, so each bar is drawn full
width, redrawn in place with "\\r" many times, and left on its own line when it finishes.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


def run(cfg: dict[str, str]) -> int:
    epochs = int(cfg.get("epochs", "2"))
    steps = int(cfg.get("steps", "40"))
    delay = float(cfg.get("step_delay", "0.02"))
    print(f"\x1b[1;36mtqdm e2e trainer\x1b[0m isatty={sys.stderr.isatty()}", flush=True)
    for epoch in range(1, epochs + 1):
        for _ in tqdm(range(steps), desc=f"epoch {epoch}", mininterval=0, miniters=1, colour="green"):
            time.sleep(delay)
        print(f"\x1b[32mepoch {epoch} done\x1b[0m: loss={1.0 / epoch:.3f}", flush=True)
    print("\x1b[1;32mtraining complete\x1b[0m", flush=True)
    return int(cfg.get("exit_code", "0"))
