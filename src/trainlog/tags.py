"""Run tags: string keys to string values, and how they are written as text.

Kept free of heavy imports: the command line parses tags before it loads the database layer.
"""

from __future__ import annotations

from collections.abc import Mapping

TAG_TEXT_MAX = 255
MAX_TAGS = 64


def parse_tag(text: str) -> tuple[str, str]:
    """``key=value`` or ``key:value`` (split at the first of either) as (key, value)."""
    cut = min((i for i in (text.find("="), text.find(":")) if i >= 0), default=-1)
    if cut <= 0:
        raise ValueError(f"tag {text!r} is not key=value (or key:value)")
    key, value = text[:cut], text[cut + 1 :]
    check_tags({key: value})
    return key, value


def check_tags(tags: Mapping[str, str]) -> None:
    """Raise ValueError unless every key is 1-255 characters without ``=`` or ``:`` (so a tag
    written as text splits one way only) and every value at most 255."""
    if len(tags) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    for key, value in tags.items():
        if not key or len(key) > TAG_TEXT_MAX or "=" in key or ":" in key:
            raise ValueError(f"tag key {key!r} must be 1-255 characters without '=' or ':'")
        if len(value) > TAG_TEXT_MAX:
            raise ValueError(f"tag {key!r}: a value is at most {TAG_TEXT_MAX} characters")
