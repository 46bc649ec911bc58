"""A child that writes incompressible bytes (seeded, so tests know them): ``noise.py CONFIG``.

Config: ``mib`` (how many MiB), ``seed``, ``delay`` (seconds after each MiB).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

MIB = 1024 * 1024


def expected_noise(mib: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    return b"".join(rng.randbytes(MIB) for _ in range(mib))


def main() -> int:
    config = json.loads(Path(sys.argv[1]).read_text())
    rng = random.Random(int(config.get("seed", 0)))
    for _ in range(int(config["mib"])):
        view = memoryview(rng.randbytes(MIB))
        while view:
            view = view[os.write(1, view[: 64 * 1024]) :]
        time.sleep(float(config.get("delay", 0.0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
