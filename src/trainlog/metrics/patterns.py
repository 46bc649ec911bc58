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


def _step_key(name: str) -> str:
    """The step key a name is (its last path part, lower case: train/step is step), or ""."""
    key = name.rsplit("/", 1)[-1].lower()
    return key if key in STEP_KEYS or key == EPOCH_KEY else ""


def _word_pairs(text: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The (name, value) spans of ``name value`` pairs of segments made only of such pairs (a
    trailing ':' allowed)."""
    pairs: list[tuple[tuple[int, int], tuple[int, int]]] = []
    start = 0
    for separator in [*_SEGMENT_SEPARATORS.finditer(text), None]:
        end = len(text) if separator is None else separator.start()
        if _WORD_SEGMENT.fullmatch(text, start, end):
            pairs.extend((m.span(1), m.span(2)) for m in _WORD_PAIR.finditer(text, start, end))
        start = end + 1
    return pairs if len(pairs) >= 2 else []


# A name-value pair found in a line: where its name and its value are (the value without a
# '%'), and the step key its name is ("" if none: see _step_key).
_Span = tuple[int, int]


@dataclass(frozen=True)
class _Pair:
    name: _Span
    value: _Span
    key: str


def _default_pairs(text: str) -> list[_Pair]:
    """Every pair the default rules find in a line, in the order printed."""
    found: list[tuple[_Span, _Span]] = []
    if "=" in text or ": " in text:
        found = [(m.span(2), m.span(3)) for m in _PAIR.finditer(text)]
    if not found:
        found = _word_pairs(text)
    return [
        _Pair(name, value, _step_key(text[name[0] : name[1]]))
        for name, value in found
        if name[1] - name[0] <= MAX_NAME_CHARS
        and text[name[0] : name[1]].lower() not in NOT_METRICS
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

# Digits 1-9 as 0: a line's *shape*. Every default rule treats digits alike (classes such as
# \d and \w, never a particular digit or a bounded count of them), and the shape keeps each
# character where it was, so two lines of one shape have their pairs, names and values at the
# same places. The rules run once per shape (a training log prints a handful) and each line
# only reads its numbers out of the places its shape's plan names.
_SHAPE = str.maketrans("123456789", "000000000")


def shape(text: str) -> str:
    return text.translate(_SHAPE)


@dataclass(frozen=True)
class _StepSource:
    """Where a line's step may come from, in order of preference: a value's place; ``key``
    the pair's step key (that series is then not charted), or None for words and counters;
    a pair's value counts only if finite (``step=nan`` is no step)."""

    span: _Span
    key: str | None


@dataclass(frozen=True)
class Plan:
    """What the default rules find in every line of one shape."""

    pairs: tuple[_Pair, ...]
    steps: tuple[_StepSource, ...]


# Plans kept at most (a tqdm bar's shape changes as it fills: thousands of them in a long run).
MAX_PLANS = 20_000
_plans: dict[str, Plan] = {}


def plan(line_shape: str) -> Plan:
    """The default rules' plan for lines of this shape (made once, then looked up)."""
    found = _plans.get(line_shape)
    if found is None:
        if len(_plans) >= MAX_PLANS:
            _plans.clear()
        found = _plans[line_shape] = _make_plan(line_shape)
    return found


_EMPTY_PLAN = Plan((), ())


def _make_plan(text: str) -> Plan:
    if not _MAYBE_VALUE.search(text):
        return _EMPTY_PLAN
    pairs = _default_pairs(text)
    by_key: dict[str, list[_Pair]] = {}
    for pair in pairs:
        by_key.setdefault(pair.key, []).append(pair)

    def keyed(key: str) -> list[_StepSource]:
        # The last finite one wins, as in a dict of them: latest first.
        return [_StepSource(p.value, key) for p in reversed(by_key.get(key, []))]

    steps: list[_StepSource] = [s for key in STEP_KEYS for s in keyed(key)]
    for regex in (_STEP_WORD, _COUNTER):
        word = regex.search(text)
        if word:
            steps.append(_StepSource(word.span(1), None))
    steps.extend(keyed(EPOCH_KEY))
    epoch = _EPOCH_WORD.search(text)
    if epoch:
        steps.append(_StepSource(epoch.span(1), None))
    return Plan(tuple(pairs), tuple(steps))


def line_metrics(text: str, rules: Rules, line_shape: str | None = None) -> LineMetrics:
    """The metrics one line of plain text holds under ``rules`` (``line_shape``: its shape,
    when the caller made the shapes of many lines at once)."""
    found = plan(shape(text) if line_shape is None else line_shape)
    values: list[tuple[str, float]] = []
    for pattern in rules.patterns:
        for match in pattern.regex.finditer(text):
            value = parse_value(match.group(1) or "")
            if value is not None:
                values.append((pattern.name, value))
    pairs = found.pairs if rules.defaults else ()
    if not values and not pairs:
        return NO_METRICS
    step: float | None = None
    step_key: str | None = None
    for source in found.steps:
        if source.key is not None and not rules.defaults:
            continue  # no pairs without the defaults: only words and counters
        number = float(text[source.span[0] : source.span[1]])
        if source.key is None or math.isfinite(number):
            step, step_key = number, source.key
            break
    user_names = rules._user_names
    for pair in pairs:
        if pair.key == step_key:
            continue
        name = text[pair.name[0] : pair.name[1]]
        if name not in user_names:
            values.append((name, float(text[pair.value[0] : pair.value[1]])))
    return LineMetrics(step, values)
