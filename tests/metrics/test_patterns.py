"""The default metric rules on what real training libraries print, and a user's patterns."""

from __future__ import annotations

import io
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tqdm import tqdm

from trainlog.metrics.extract import Cursor, extract
from trainlog.metrics.patterns import (
    LineMetrics,
    Rules,
    UserPattern,
    _make_plan,
    line_metrics,
    shape,
)

DEFAULTS = Rules()


def metrics(text: str, rules: Rules = DEFAULTS) -> LineMetrics:
    return line_metrics(text, rules)


def test_tqdm_postfix_each_frame_drawn_is_a_point() -> None:
    out = io.StringIO()
    bar = tqdm(total=3, file=out, mininterval=0, miniters=1, ascii=True)
    for loss in (0.5, 0.4656, 0.41):
        bar.set_postfix(loss=loss, refresh=False)
        bar.update(1)
    bar.close()
    log = out.getvalue().encode()
    assert b"\r" in log and b"loss=0.466" in log
    points, _ = extract(log, Cursor(), DEFAULTS, final=True)
    by_step = [(p.step, p.value) for p in points if p.name == "loss"]
    # Each refresh is a frame of its own; the counter N/M gives the step.
    assert (1.0, 0.5) in by_step and (2.0, 0.466) in by_step and (3.0, 0.41) in by_step
    assert {p.name for p in points} == {"loss"}


def test_keras_progress_line() -> None:
    line = "100/100 [==========] - 2s 20ms/step - loss: 0.4100 - accuracy: 0.8700"
    assert metrics(line) == LineMetrics(100.0, [("loss", 0.41), ("accuracy", 0.87)])


def test_lightning_progress_bar_leaves_out_v_num() -> None:
    line = "Epoch 0:  50%|█████     | 50/100 [00:01<00:01, 40.00it/s, v_num=0, train_loss=0.410]"
    assert metrics(line) == LineMetrics(50.0, [("train_loss", 0.41)])


def test_hf_trainer_dict_takes_its_step_from_epoch() -> None:
    line = "{'loss': 0.41, 'learning_rate': 5e-05, 'epoch': 0.5}"
    assert metrics(line) == LineMetrics(0.5, [("loss", 0.41), ("learning_rate", 5e-05)])


def test_pipe_separated_name_value_segments() -> None:
    line = "step 1200 | lr 3e-4 | grad_norm 1.02"
    assert metrics(line) == LineMetrics(1200.0, [("lr", 3e-4), ("grad_norm", 1.02)])


def test_plain_print_with_epoch_prefix() -> None:
    assert metrics("epoch 3: loss 0.412 acc 0.871") == LineMetrics(
        3.0, [("loss", 0.412), ("acc", 0.871)]
    )


def test_values_nan_inf_percent_and_slashed_names() -> None:
    found = metrics("train/loss=nan val/acc: 87.5% grad=inf global_step=7")
    assert found.step == 7.0
    names = [name for name, _ in found.values]
    assert names == ["train/loss", "val/acc", "grad"]
    assert math.isnan(found.values[0][1])
    assert found.values[1][1] == 87.5
    assert found.values[2][1] == math.inf


def test_no_step_key_leaves_the_step_to_the_series_order() -> None:
    points, _ = extract(b"loss=0.5\nloss=0.4\nacc=0.9\n", Cursor(), DEFAULTS)
    assert [(p.name, p.step) for p in points] == [("loss", 0.0), ("loss", 1.0), ("acc", 0.0)]


@pytest.mark.parametrize(
    "line",
    [
        "torch 2.13.0",
        "versions: torch 2.1, cuda 12.1",
        "2026-12-06 23:45:01 starting",
        "date: 2026-12-06 time: 23:45:01",
        "input shape: (32, 3, 224, 224)",
        "tensor size 32x3x224x224",
        "Serving on http://localhost:8080/",
        "host localhost:8080",
        "checkpoint saved: 3.2GB",
        "version=2 pid=4242 seed: 7",
        "Saved 3 files, loaded 5 models",
        "Downloading model 3",
        "train:  73%|██████    | 22/30",
    ],
)
def test_not_metrics(line: str) -> None:
    assert metrics(line).values == []


def test_user_pattern_extends_the_defaults_and_owns_its_name() -> None:
    rules = Rules.from_specs([r"loss=Loss is ([\d.]+)", r"ppl=perplexity\s+(\d+\.\d+)"])
    found = metrics("step 5: Loss is 0.25, perplexity 12.5 acc=0.5 loss=9", rules)
    # loss comes from the user's pattern only (the default pair loss=9 is not added twice).
    assert found == LineMetrics(5.0, [("loss", 0.25), ("ppl", 12.5), ("acc", 0.5)])


def test_user_patterns_alone_when_defaults_are_off() -> None:
    rules = Rules.from_specs([r"loss=Loss is (\S+)"], defaults=False)
    assert metrics("Loss is 0.25 acc=0.5", rules) == LineMetrics(None, [("loss", 0.25)])


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("loss", "expected NAME=REGEX"),
        ("=x(1)", "expected NAME=REGEX"),
        ("loss=(", r"missing \)"),
        ("loss=no group", "exactly one capture group"),
        ("loss=(a)(b)", "exactly one capture group"),
    ],
)
def test_bad_user_pattern_says_what_is_wrong(spec: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        UserPattern.parse(spec)


def test_series_cap() -> None:
    rules = Rules(max_series=2)
    points, cursor = extract(b"a=1 b=2 c=3\nc=4 a=5\n", Cursor(), rules)
    assert [(p.name, p.value) for p in points] == [("a", 1), ("b", 2), ("a", 5)]
    assert dict(cursor.counts) == {"a": 2, "b": 1}


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789.eE-+ =:,|/%_'{}[]()abnpstio\t", max_size=60))
def test_a_lines_shape_finds_what_the_line_itself_finds(line: str) -> None:
    """The rules run once per shape (digits 1-9 as 0) and every line of that shape reads its
    numbers from the places found: so the places must be the same as in the line itself."""
    assert _make_plan(shape(line)) == _make_plan(line)


def test_lines_of_one_shape_read_their_own_numbers() -> None:
    assert metrics("step 10 | loss 0.25 | top1 0.5") == LineMetrics(
        10.0, [("loss", 0.25), ("top1", 0.5)]
    )
    # The same shape: each line's own names, numbers and step.
    assert metrics("step 93 | loss 0.71 | top5 0.8") == LineMetrics(
        93.0, [("loss", 0.71), ("top5", 0.8)]
    )
    # A step too large for a float is no step: the next way of finding one is taken.
    assert metrics("it=1e999 epoch=2 loss=0.5").step == 2.0
    assert metrics("it=1e9 epoch=2 loss=0.5").step == 1e9
