"""Fewer points for a chart, keeping what the eye looks for (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """Consecutive points of a series, summarised: how many, the first and last one's seq,
    the lowest value and the first point with it, the highest and the last point with it
    (``lo``/``hi`` None while every value is NaN). A single point is a span of one."""

    count: int
    first_seq: int
    last_seq: int
    lo: float | None
    lo_seq: int | None
    hi: float | None
    hi_seq: int | None

    @classmethod
    def point(cls, seq: int, value: float | None) -> Span:
        return cls(1, seq, seq, value, seq, value, seq)


def keep_extremes(spans: Sequence[Span], max_points: int) -> list[int]:
    """The seqs of at most ``max_points`` (at least 2) points of ``spans`` (in the order
    printed) that draw the same outline.

    Min/max per bucket: the points are cut into buckets of about equal counts along span
    boundaries, and each bucket keeps its lowest and its highest point (a bucket of NaNs keeps
    its first), so a one-point spike anywhere survives; the first and last points are always
    kept. Fed single points, every bucket is exact; fed block summaries (at least one per
    bucket), each bucket is a whole number of blocks.
    """
    if not spans:
        return []
    total = sum(span.count for span in spans)
    buckets = max((max_points - 2) // 2, 1)
    kept = {spans[0].first_seq, spans[-1].last_seq}
    before = 0
    bucket = 0
    first = spans[0].first_seq
    lo: tuple[float, int] | None = None
    hi: tuple[float, int] | None = None
    for span in spans:
        at = before * buckets // total
        if at != bucket:
            _keep(kept, first, lo, hi)
            bucket, first, lo, hi = at, span.first_seq, None, None
        if span.lo is not None and span.lo_seq is not None and (lo is None or span.lo < lo[0]):
            lo = (span.lo, span.lo_seq)
        if span.hi is not None and span.hi_seq is not None and (hi is None or span.hi >= hi[0]):
            hi = (span.hi, span.hi_seq)
        before += span.count
    _keep(kept, first, lo, hi)
    return sorted(kept)


def _keep(
    kept: set[int], first: int, lo: tuple[float, int] | None, hi: tuple[float, int] | None
) -> None:
    """A bucket's lowest and highest point, or its first if every value in it is NaN."""
    if lo is None or hi is None:
        kept.add(first)
    else:
        kept.update((lo[1], hi[1]))
