#!/usr/bin/env python3
"""A fake training program for the e2e tests: what a real trainer writes to a pipe.

It prints ANSI-coloured lines, a tqdm-style progress bar redrawn in place with a bare "\\r",
a multi-byte character split across two flushed writes with a pause between (so the server
stores and streams the halves separately), and exits with the code the config asks for.
The config is "key: value" lines: exit_code, epochs, steps, step_delay,
preamble_lines, traceback_at (a Python traceback after that preamble line); with
"program: tqdm" it runs tqdm_train.py (real tqdm bars) instead.
"""

import argparse
import sys
import time


def write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    cfg: dict[str, str] = {}
    with open(args.config, encoding="utf-8") as fh:
        for line in fh:
            key, sep, value = line.partition(":")
            if sep:
                cfg[key.strip()] = value.strip()
    if cfg.get("program") == "tqdm":
        import tqdm_train  # next to this file, so on sys.path

        return tqdm_train.run(cfg)
    exit_code = int(cfg.get("exit_code", "0"))
    epochs = int(cfg.get("epochs", "3"))
    steps = int(cfg.get("steps", "20"))
    delay = float(cfg.get("step_delay", "0.15"))
    preamble = int(cfg.get("preamble_lines", "0"))
    traceback_at = int(cfg.get("traceback_at", "-1"))

    write(b"\x1b[1;36mtrainlog e2e emitter\x1b[0m config=" + args.config.encode() + b"\n")
    write(b"\x1b[33mwarning:\x1b[0m this is a \x1b[32mgreen\x1b[0m and \x1b[31mred\x1b[0m test\n")
    # "loss → ok" with the arrow (e2 86 92) split across two writes.
    if preamble:
        lines = [f"\x1b[2mwarmup {i:04d}\x1b[0m data shard {i % 7} ok\n".encode() for i in range(preamble)]
        if 0 <= traceback_at < preamble:
            lines[traceback_at] += (
                b"Traceback (most recent call last):\n"
                b'  File "train.py", line 7, in <module>\n'
                b"ValueError: e2e: a shard failed and was retried\n"
            )
        write(b"".join(lines))
    # A pause first, so a viewer opened right after the start is streaming by then.
    arrow = "→".encode()
    time.sleep(1.5)
    write(b"split char: loss " + arrow[:1])
    time.sleep(1.0)
    write(arrow[1:] + b" ok \xe2\x9c\x93\n")
    for epoch in range(1, epochs + 1):
        write(f"\x1b[1mepoch {epoch}/{epochs}\x1b[0m\n".encode())
        for step in range(steps + 1):
            width = 30
            filled = width * step // steps
            bar = "█" * filled + " " * (width - filled)
            pct = 100 * step // steps
            write(f"\rtrain: {pct:3d}%|{bar}| {step}/{steps} [loss={1.0 / (epoch + step * 0.1):.4f}]".encode())
            time.sleep(delay)
        write(b"\n")
        colour = b"\x1b[32m" if epoch < epochs or exit_code == 0 else b"\x1b[31m"
        write(colour + f"epoch {epoch} done: val_acc={0.5 + epoch * 0.1:.2f}".encode() + b"\x1b[0m\n")
    if exit_code:
        write(f"\x1b[1;31merror:\x1b[0m exiting with code {exit_code}\n".encode())
    else:
        write(b"\x1b[1;32mtraining complete\x1b[0m\n")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
