"""The training children the benchmarks capture. Run as a script: no trainlog imports.

children.py flood tqdm|metrics|random NBYTES T0FILE   write NBYTES as fast as possible
children.py ticker SECONDS [INTERVAL] [PAD]    a timestamped line every INTERVAL seconds
"""

from __future__ import annotations

import os
import random
import sys
import time

WRITE_BYTES = 64 * 1024


def tqdm_text(size: int, seed: int = 0) -> bytes:
    """Terminal output of a typical trainer: `\\r` progress-bar redraws, now and then a line.

    The numbers change on every redraw (like the real thing) so the text is not trivially
    repetitive; it compresses about as well as real tqdm output does.
    """
    rng = random.Random(seed)
    parts: list[bytes] = []
    total, step, epoch, length = 50_000, 0, 0, 0
    while length < size:
        step += 1
        if step > total:
            step, epoch = 1, epoch + 1
            line = f"\nepoch {epoch}: val_loss={rng.uniform(0.1, 2):.4f} acc={rng.random():.4f}\n"
        else:
            pct = 100 * step // total
            filled = pct // 10
            bar = "█" * filled + " " * (10 - filled)
            rate = rng.uniform(300, 400)
            remaining = (total - step) / rate
            line = (
                f"\repoch {epoch}: {pct:3d}%|{bar}| {step}/{total} "
                f"[{step // 360:02d}:{step // 6 % 60:02d}<{int(remaining) // 60:02d}:"
                f"{int(remaining) % 60:02d}, {rate:.2f}it/s, loss={rng.uniform(0.05, 3):.4f}]"
            )
        data = line.encode()
        parts.append(data)
        length += len(data)
    return b"".join(parts)[:size]


def metrics_text(size: int, seed: int = 0) -> bytes:
    """A metrics-heavy log: every line prints a step and three metrics, as plain prints do."""
    rng = random.Random(seed)
    parts: list[bytes] = []
    step, length = 0, 0
    while length < size:
        step += 1
        line = (
            f"step {step} | loss {rng.uniform(0.05, 3):.4f} | lr {3e-4 * rng.random():.3e}"
            f" | grad_norm {rng.uniform(0, 2):.4f}\n"
        ).encode()
        parts.append(line)
        length += len(line)
    return b"".join(parts)[:size]


TEXTS = {"tqdm": tqdm_text, "metrics": metrics_text}


def flood(kind: str, size: int, t0_file: str) -> None:
    # A 4 MiB block, written over and over: generating text must not be what we measure.
    block = TEXTS[kind](4 * 1024 * 1024) if kind in TEXTS else b""
    with open(t0_file, "w") as f:
        # Monotonic for baselines timed by process exit; wall clock to compare with the run's
        # finished_at, which the runner records once the last byte is committed.
        f.write(f"{time.monotonic_ns()} {time.time_ns()}")
    written = 0
    view = memoryview(block)
    while written < size:
        n = min(WRITE_BYTES, size - written)
        if block:
            at = written % len(block)
            piece = view[at : at + n]
        else:
            piece = memoryview(os.urandom(n))
        while piece:
            piece = piece[os.write(1, piece) :]
        written += n


def ticker(seconds: float, interval: float, pad: int) -> None:
    """`tick <monotonic ns> <n> <pad>` lines; CLOCK_MONOTONIC is shared by all processes."""
    filler = "." * pad
    deadline = time.monotonic() + seconds
    n = 0
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        os.write(1, f"tick {time.monotonic_ns()} {n} {filler}\n".encode())
        n += 1
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


def main(argv: list[str]) -> None:
    if argv[0] == "flood":
        flood(argv[1], int(argv[2]), argv[3])
    elif argv[0] == "ticker":
        seconds = float(argv[1])
        interval = float(argv[2]) if len(argv) > 2 else 0.02
        pad = int(argv[3]) if len(argv) > 3 else 0
        ticker(seconds, interval, pad)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
