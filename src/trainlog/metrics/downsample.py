"""Fewer points for a chart, keeping what the eye looks for (pure)."""

from __future__ import annotations

from collections.abc import Sequence


def keep_extremes(values: Sequence[float | None], max_points: int) -> list[int]:
    """Indices of at most ``max_points`` (at least 2) of ``values`` that draw the same outline.

    Min/max per bucket: the points, in the order printed, are cut into buckets of consecutive
    points and each keeps its lowest and its highest (a bucket of NaNs, given as None, keeps
    its first), so a one-point spike anywhere survives; the first and last points are always
    kept. With ``max_points`` or fewer points, all are kept.
    """
    count = len(values)
    if count <= max_points:
        return list(range(count))
    buckets = max((max_points - 2) // 2, 1)
    kept = {0, count - 1}
    for bucket in range(buckets):
        start = bucket * count // buckets
        end = (bucket + 1) * count // buckets
        numbers = [
            (value, index)
            for index, value in enumerate(values[start:end], start)
            if value is not None
        ]
        if numbers:
            kept.add(min(numbers)[1])
            kept.add(max(numbers)[1])
        else:
            kept.add(start)
    return sorted(kept)
