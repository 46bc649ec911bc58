"""Which numbers in a line of plain text are metrics, and at which step (pure).

The default rules read what training scripts print:

- ``name=value`` and ``name: value`` pairs (tqdm postfixes ``loss=0.4656``, Keras
  ``- loss: 0.41 - accuracy: 0.87``, Lightning ``v_num=0, train_loss=0.41``, HF Trainer's
  ``{'loss': 0.41, 'epoch': 0.5}``), with a name of letters, digits, ``_``, ``/``, ``.``,
  ``-`` (starting with a letter, at most 64 characters, optionally quoted);
- ``name value`` pairs in segments separated by ``|`` or ``,`` (``step 1200 | lr 3e-4 |
  grad_norm 1.02``, ``epoch 3: loss 0.412 acc 0.871``), taken only when a line holds at least
  two of them, so a lone ``cuda 12.1`` is not a metric.

A value is a whole token: an int, a float, scientific notation, ``nan`` or ``inf``, optionally
followed by ``%``. So a version (``2.13.0``), a date (``2026-12-06``), a time (``23:45:01``), a
size with a unit (``3.2GB``) or a tensor shape (``(32, 3, 224)``, ``32x3x224``) is not one.
Names that are identifiers rather than measurements (``v_num``, ``version``, ``pid``,
``port``, ``seed``) are left out.

The step of a line's points: its ``step``/``global_step``/``iteration``/``iter``/``it`` value
(a pair, or ``step 5`` in words), else a tqdm counter ``N/M`` (N), else its ``epoch`` (a pair,
or ``Epoch N`` as tqdm and Keras print it); the key used as the step is not a series itself.
A line with none of these gives each point its series' order (0, 1, 2, ...), filled in by
the extractor.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

MAX_NAME_CHARS = 64

_NAME = r"[A-Za-z][\w/.\-]*"
# Spelled out rather than IGNORECASE, which slows every character class down.
_NUMBER = (
    r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?"
    r"|[nN][aA][nN]|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
)
_VALUE = re.compile(rf"({_NUMBER})%?\Z")
_PAIR = re.compile(
    rf"""
    (?<![^\s{{,|\[(;])          # at the start, or after a space or an opening separator
    (['"]?)({_NAME})\1          # the name, optionally quoted (a printed dict)
    (?:\s*=\s*|:\s+)            # '=' or ': ' (a bare ':' is a URL's port or a time)
    ({_NUMBER})(?:%(?!\|))?       # not a bar's percentage ("train:  73%|####")
    (?=$|[\s,|}})\];'"])          # the value is a whole token
    """,
    re.VERBOSE,
)
_SEGMENT_SEPARATORS = re.compile(r"[|,]")
# A segment made only of name-value pairs (a ':' may follow either: "epoch 3: loss 0.4").
_WORD_SEGMENT = re.compile(rf"\s*(?:{_NAME}:?\s+{_NUMBER}%?:?(?:\s+|\Z))+")
_WORD_PAIR = re.compile(rf"({_NAME}):?\s+({_NUMBER})")
# What any value needs: a digit, or a NaN or an infinity.
_MAYBE_VALUE = re.compile(r"\d|[nN][aA][nN]|[iI][nN][fF]")
_COUNTER = re.compile(r"(?:^|[\s|])(\d+)/(\d+)(?=\s|$)")
_STEP_WORD = re.compile(r"\b(?:global_step|step|iteration|iter)\s+(\d+)\b", re.IGNORECASE)
_EPOCH_WORD = re.compile(r"\bepoch\s+(\d+)(?:/\d+)?\b", re.IGNORECASE)

# In order of preference when a line has several.
STEP_KEYS = ("step", "global_step", "iteration", "iter", "it")
EPOCH_KEY = "epoch"
NOT_METRICS = frozenset({"v_num", "version", "pid", "port", "seed"})


def parse_value(text: str) -> float | None:
    """A value token as a float (``nan``, ``inf``, ``87%`` -> 87.0), or None if not one."""
    match = _VALUE.match(text)
    return float(match.group(1)) if match else None


def _key(name: str) -> str:
    """What a name means for step detection: its last path part, lower case (train/step)."""
    return name.rsplit("/", 1)[-1].lower()


def _word_pairs(text: str) -> list[tuple[str, float]]:
    """``name value`` pairs of segments made only of such pairs (a trailing ':' allowed)."""
    pairs = [
        (name, float(value))
        for segment in _SEGMENT_SEPARATORS.split(text)
        if _WORD_SEGMENT.fullmatch(segment)
        for name, value in _WORD_PAIR.findall(segment)
    ]
    return pairs if len(pairs) >= 2 else []


def default_pairs(text: str) -> list[tuple[str, float]]:
    """Every (name, value) the default rules find in a line, in the order printed."""
    pairs = []
    if "=" in text or ": " in text:
        pairs = [(m.group(2), float(m.group(3))) for m in _PAIR.finditer(text)]
    if not pairs:
        pairs = _word_pairs(text)
    return [
        (name, value)
        for name, value in pairs
        if len(name) <= MAX_NAME_CHARS and name.lower() not in NOT_METRICS
    ]


@dataclass(frozen=True)
class UserPattern:
    """``NAME=REGEX`` from the user: the first capture group of each match is a value of NAME."""

    name: str
    regex: re.Pattern[str]

    @classmethod
    def parse(cls, spec: str) -> UserPattern:
        """``NAME=REGEX``; a ValueError says what is wrong with it."""
        name, sep, source = spec.partition("=")
        name = name.strip()
        if not sep or not name or not source:
            raise ValueError(f"metric pattern {spec!r}: expected NAME=REGEX")
        if len(name) > MAX_NAME_CHARS:
            raise ValueError(f"metric pattern {spec!r}: the name is over {MAX_NAME_CHARS} chars")
        try:
            regex = re.compile(source)
        except re.error as exc:
            raise ValueError(f"metric pattern {spec!r}: {exc}") from None
        if regex.groups != 1:
            raise ValueError(f"metric pattern {spec!r}: needs exactly one capture group")
        return cls(name, regex)


@dataclass(frozen=True)
class Rules:
    """What one run extracts: user patterns (their names taken from them alone), then the
    defaults unless switched off; at most ``max_series`` series."""

    patterns: tuple[UserPattern, ...] = ()
    defaults: bool = True
    max_series: int = 50
    _user_names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_user_names", frozenset(p.name for p in self.patterns))

    @classmethod
    def from_specs(cls, specs: list[str], defaults: bool = True, max_series: int = 50) -> Rules:
        return cls(tuple(UserPattern.parse(s) for s in specs), defaults, max_series)

    def specs(self) -> list[str]:
        return [f"{p.name}={p.regex.pattern}" for p in self.patterns]


@dataclass(frozen=True)
class LineMetrics:
    """The metrics of one line: its step (None: each point's order) and (name, value) pairs."""

    step: float | None
    values: list[tuple[str, float]]


NO_METRICS = LineMetrics(None, [])


def line_metrics(text: str, rules: Rules) -> LineMetrics:
    """The metrics one line of plain text holds under ``rules``."""
    if not _MAYBE_VALUE.search(text):
        return NO_METRICS
    values: list[tuple[str, float]] = []
    for pattern in rules.patterns:
        for match in pattern.regex.finditer(text):
            value = parse_value(match.group(1) or "")
            if value is not None:
                values.append((pattern.name, value))
    pairs = default_pairs(text) if rules.defaults else []
    if not values and not pairs:
        return NO_METRICS
    step, step_key = _step(text, pairs)
    values.extend(
        (name, value)
        for name, value in pairs
        if name not in rules._user_names and _key(name) != step_key
    )
    return LineMetrics(step, values)


def _step(text: str, pairs: list[tuple[str, float]]) -> tuple[float | None, str | None]:
    """The line's step and the key it came from (that key is then not a series)."""
    keyed = {_key(name): value for name, value in pairs if math.isfinite(value)}
    for key in STEP_KEYS:
        if key in keyed:
            return keyed[key], key
    word = _STEP_WORD.search(text)
    if word:
        return float(word.group(1)), None
    counter = _COUNTER.search(text)
    if counter:
        return float(counter.group(1)), None
    if EPOCH_KEY in keyed:
        return keyed[EPOCH_KEY], EPOCH_KEY
    epoch = _EPOCH_WORD.search(text)
    if epoch:
        return float(epoch.group(1)), None
    return None, None
