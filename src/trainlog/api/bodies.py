"""Response bodies built piece by piece, so no response holds a whole log in memory."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from typing import Any


def base64_pieces(pages: Iterable[bytes]) -> Iterator[bytes]:
    """Base64 of the concatenated pages, emitted as it goes.

    Each piece encodes a multiple of 3 bytes (the rest waits for the next page), so the
    pieces join into exactly the base64 of the whole, padding only at the very end.
    """
    carry = b""
    for page in pages:
        data = carry + page
        cut = len(data) - len(data) % 3
        carry = data[cut:]
        if cut:
            yield base64.b64encode(data[:cut])
    if carry:
        yield base64.b64encode(carry)


def json_with_base64_data(fields: dict[str, Any], pages: Iterable[bytes]) -> Iterator[bytes]:
    """A JSON object of ``fields`` plus ``"data"``: the base64 of ``pages``, written last."""
    head = json.dumps(fields, default=str, separators=(",", ":"))
    yield (head[:-1] + (',"data":"' if fields else '"data":"')).encode()
    yield from base64_pieces(pages)
    yield b'"}'
