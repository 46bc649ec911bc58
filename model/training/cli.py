"""Train a tiny two-layer MLP on two interleaved spirals, written in plain numpy.

Run from the repository root as::

    python -m model.training.cli train --config configs/demo.yaml

This is an example *user* program: trainlog launches it and captures its raw terminal output,
so the output deliberately looks like a real trainer's - tqdm bars redrawn with ``\\r`` on
stderr, ANSI-coloured log lines on stdout, and a little non-ASCII text.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import FrameType
from typing import Any, TextIO, get_type_hints

import numpy as np
import numpy.typing as npt
import yaml
from tqdm import tqdm

Array = npt.NDArray[np.float64]

EXIT_OK = 0
EXIT_BAD_CONFIG = 2  # the same status argparse uses for a bad command line
VAL_FRACTION = 0.2
SPIRAL_TURNS = 1.25
SPIRAL_NOISE = 0.04

GREEN, YELLOW, CYAN, RED, DIM = "32", "33", "36", "31", "2"


# -- output ---------------------------------------------------------------------------------


def colour_enabled() -> bool:
    # Colour even when stdout is a pipe, not a TTY: trainlog keeps the raw bytes and the browser
    # renders the escapes. NO_COLOR (https://no-color.org) is the way to opt out.
    return not os.environ.get("NO_COLOR")


def paint(text: str, code: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour_enabled() else text


def log(level: str, code: str, message: str, stream: TextIO | None = None) -> None:
    stamp = time.strftime("%H:%M:%S")
    # flush=True so every line reaches trainlog as it happens, even without PYTHONUNBUFFERED.
    print(f"{paint(stamp, DIM)} {paint(f'{level:<5}', code)} {message}", file=stream, flush=True)


def info(message: str) -> None:
    log("INFO", GREEN, message)


def warn(message: str) -> None:
    log("WARN", YELLOW, message)


def error(message: str) -> None:
    log("ERROR", RED, message, stream=sys.stderr)


# -- config ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    epochs: int = 8
    lr: float = 0.01
    seed: int = 0
    # Seconds slept after each batch; the model trains in milliseconds, so this is what lets a
    # human watch the bar move.
    sleep: float = 0.0
    batch_size: int = 32
    n_samples: int = 1000
    hidden: int = 32


class ConfigError(Exception):
    """A config the trainer cannot run; main() reports it and exits with EXIT_BAD_CONFIG."""


def load_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config path is a directory, not a file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if raw is None:  # an empty file means "all defaults"
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    return parse_config(raw, source=str(path))


def parse_config(raw: Mapping[Any, Any], source: str) -> Config:
    types = get_type_hints(Config)
    # Rejecting unknown keys catches typos such as "learning_rate", which would otherwise be
    # silently ignored and leave the run on a default the user never chose.
    unknown = sorted(str(key) for key in raw if key not in types)
    if unknown:
        raise ConfigError(
            f"{source}: unknown config key(s): {', '.join(unknown)} (allowed: {', '.join(types)})"
        )
    values: dict[str, Any] = {
        name: check_type(source, name, value, types[name]) for name, value in raw.items()
    }
    config = Config(**values)
    check_ranges(config, source)
    return config


def check_type(source: str, name: str, value: object, expected: type) -> object:
    # bool is a subclass of int, but "epochs: yes" is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = ""
        if isinstance(value, str) and expected is float:
            hint = " (PyYAML reads 1e-3 as text; write 1.0e-3)"
        raise ConfigError(f"{source}: {name} must be a number, got {value!r}{hint}")
    if expected is int and not isinstance(value, int):
        raise ConfigError(f"{source}: {name} must be a whole number, got {value!r}")
    return expected(value)


def check_ranges(config: Config, source: str) -> None:
    problems = [
        f"{name} must be {rule}, got {getattr(config, name)}"
        for name, ok, rule in [
            ("epochs", config.epochs >= 1, ">= 1"),
            ("lr", config.lr > 0 and math.isfinite(config.lr), "a positive number"),
            ("seed", config.seed >= 0, ">= 0"),
            ("sleep", config.sleep >= 0, ">= 0"),
            ("batch_size", config.batch_size >= 1, ">= 1"),
            # Both sides of the train/val split need at least a handful of points.
            ("n_samples", config.n_samples >= 10, ">= 10"),
            ("hidden", config.hidden >= 1, ">= 1"),
        ]
        if not ok
    ]
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))


# -- data -----------------------------------------------------------------------------------


def make_spirals(n_samples: int, rng: np.random.Generator) -> tuple[Array, Array]:
    """Two interleaved spirals: not linearly separable, so the hidden layer has to earn its keep."""
    labels = (np.arange(n_samples) % 2).astype(np.float64)
    # sqrt spreads points evenly over the area instead of bunching them at the centre.
    radius = np.sqrt(rng.uniform(0.02, 1.0, n_samples))
    angle = radius * SPIRAL_TURNS * 2 * math.pi + labels * math.pi
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    points += rng.normal(0.0, SPIRAL_NOISE, points.shape)
    order = rng.permutation(n_samples)
    return points[order], labels[order]


def split(x: Array, y: Array) -> tuple[Array, Array, Array, Array]:
    n_val = max(1, round(len(x) * VAL_FRACTION))
    return x[n_val:], y[n_val:], x[:n_val], y[:n_val]


# -- model ----------------------------------------------------------------------------------


@dataclass
class MLP:
    """2 inputs -> tanh hidden layer -> 1 logit."""

    w1: Array
    b1: Array
    w2: Array
    b2: Array

    @classmethod
    def init(cls, hidden: int, rng: np.random.Generator) -> MLP:
        # Xavier-style scaling keeps tanh out of saturation at the start.
        return cls(
            w1=rng.normal(0.0, 1.0 / math.sqrt(2), (2, hidden)),
            b1=np.zeros(hidden),
            w2=rng.normal(0.0, 1.0 / math.sqrt(hidden), (hidden, 1)),
            b2=np.zeros(1),
        )

    def params(self) -> list[Array]:
        return [self.w1, self.b1, self.w2, self.b2]

    def hidden(self, x: Array) -> Array:
        return np.tanh(x @ self.w1 + self.b1)

    def logits(self, x: Array) -> Array:
        return (self.hidden(x) @ self.w2 + self.b2)[:, 0]


def bce_from_logits(logits: Array, y: Array) -> float:
    # log(1 + e^z) - y*z is binary cross-entropy without overflowing for large |z|.
    return float(np.mean(np.logaddexp(0.0, logits) - y * logits))


def gradients(model: MLP, x: Array, y: Array) -> tuple[float, list[Array]]:
    h = model.hidden(x)
    logits = (h @ model.w2 + model.b2)[:, 0]
    d_logits = (1.0 / (1.0 + np.exp(-logits)) - y)[:, None] / len(x)
    d_h = (d_logits @ model.w2.T) * (1.0 - h**2)
    grads = [x.T @ d_h, d_h.sum(axis=0), h.T @ d_logits, d_logits.sum(axis=0)]
    return bce_from_logits(logits, y), grads


class Adam:
    """Adam, because plain SGD needs far more epochs to untangle the spirals."""

    def __init__(self, params: Sequence[Array], lr: float) -> None:
        self.params = list(params)
        self.lr = lr
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def step(self, grads: Sequence[Array], beta1: float = 0.9, beta2: float = 0.999) -> None:
        self.t += 1
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g**2
            m_hat = m / (1 - beta1**self.t)
            v_hat = v / (1 - beta2**self.t)
            p -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)  # in place: self.params alias model


def evaluate(model: MLP, x: Array, y: Array) -> tuple[float, float]:
    logits = model.logits(x)
    accuracy = float(np.mean((logits > 0) == (y > 0.5)))
    return bce_from_logits(logits, y), accuracy


# -- training -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metrics:
    loss: float
    acc: float
    val_loss: float
    val_acc: float

    def __str__(self) -> str:
        return (
            f"loss={self.loss:.4f} acc={self.acc:.4f} "
            f"val_loss={self.val_loss:.4f} val_acc={self.val_acc:.4f}"
        )


def train_epoch(
    model: MLP,
    optimizer: Adam,
    x: Array,
    y: Array,
    config: Config,
    epoch: int,
    rng: np.random.Generator,
) -> None:
    order = rng.permutation(len(x))
    starts = range(0, len(x), config.batch_size)
    bar = tqdm(
        total=len(starts),
        desc=f"epoch {epoch}/{config.epochs}",
        unit="batch",
        file=sys.stderr,
        # A fixed width: under trainlog there is no terminal to ask for its size.
        ncols=90,
        colour="cyan" if colour_enabled() else None,
    )
    with bar:
        seen, loss_sum = 0, 0.0
        for start in starts:
            batch = order[start : start + config.batch_size]
            loss, grads = gradients(model, x[batch], y[batch])
            optimizer.step(grads)
            seen += len(batch)
            loss_sum += loss * len(batch)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", refresh=False)
            bar.update()
            time.sleep(config.sleep)


def train(config: Config, source: str) -> Metrics:
    started = time.monotonic()
    rng = np.random.default_rng(config.seed)
    x, y = make_spirals(config.n_samples, rng)
    x_train, y_train, x_val, y_val = split(x, y)
    model = MLP.init(config.hidden, rng)
    optimizer = Adam(model.params(), config.lr)

    settings = " ".join(f"{f.name}={getattr(config, f.name)}" for f in fields(config))
    info(f"config {source} — {settings}")
    info(f"data: two spirals, {len(x_train)} train / {len(x_val)} val (seed {config.seed})")
    n_params = sum(p.size for p in model.params())
    info(f"model: 2 → {config.hidden} → 1 MLP (tanh), {n_params} parameters")

    best_val_loss, best_epoch = math.inf, 0
    metrics = Metrics(*evaluate(model, x_train, y_train), *evaluate(model, x_val, y_val))
    for epoch in range(1, config.epochs + 1):
        train_epoch(model, optimizer, x_train, y_train, config, epoch, rng)
        metrics = Metrics(*evaluate(model, x_train, y_train), *evaluate(model, x_val, y_val))
        info(f"epoch {epoch}/{config.epochs} — {paint(str(metrics), CYAN)}")
        if metrics.val_loss < best_val_loss:
            best_val_loss, best_epoch = metrics.val_loss, epoch
        else:
            warn(f"val_loss did not improve (best {best_val_loss:.4f} at epoch {best_epoch})")

    elapsed = time.monotonic() - started
    # Uncoloured and at the start of the line, so a script can grep for it.
    print(
        f"final: val_acc={metrics.val_acc:.4f} val_loss={metrics.val_loss:.4f} "
        f"acc={metrics.acc:.4f} loss={metrics.loss:.4f} "
        f"epochs={config.epochs} elapsed={elapsed:.1f}s",
        flush=True,
    )
    info(f"{paint('✓', GREEN)} training finished in {elapsed:.1f}s")
    return metrics


# -- command line ---------------------------------------------------------------------------


class Cancelled(Exception):
    """Raised from the SIGTERM handler so the run can say it was stopped, then exit."""


def raise_cancelled(signum: int, frame: FrameType | None) -> None:
    raise Cancelled(signal.Signals(signum).name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m model.training.cli",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train_parser = commands.add_parser("train", help="train the spiral classifier")
    train_parser.add_argument("--config", required=True, type=Path, help="YAML config file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        error(str(exc))
        return EXIT_BAD_CONFIG
    # trainlog cancels a run with SIGTERM; turning it into an exception lets tqdm close its bar
    # and the log end with a line saying why, instead of stopping mid-redraw.
    signal.signal(signal.SIGTERM, raise_cancelled)
    try:
        train(config, str(args.config))
    except Cancelled as exc:
        warn(f"stopped by {exc} — training cancelled")
        return 128 + signal.SIGTERM
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
