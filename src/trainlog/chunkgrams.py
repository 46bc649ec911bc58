"""Chunk summaries for whole-log search: which trigrams a chunk's lines may hold (pure).

A search for a literal skips, without reading or decompressing it, a chunk whose summary
lacks one of the query's trigrams. A summary is a set of 2^15 bits (4 KiB) with bit h(t)
set for every trigram t (three consecutive bytes) of the chunk's *searchable text*: its
bytes from the start of the line holding its first byte to its end, with colour escapes
(SGR) removed and then folded (below). That is the text search looks for a literal in
(logread/search.py: a line is a match only if the literal is found there, contiguous, and
then in the line's plain text), so a line holding a match puts every trigram of the folded
literal into the summary of the chunk holding the line's end. Building it from the raw
bytes instead would miss a literal written in colours (``\\x1b[1mER\\x1b[0mROR``), and from
the chunk's bytes alone a literal in a line that starts in an earlier chunk. A trigram that
is in the set only by a hash collision costs a needless read, never a missed match.

Folding: ASCII letters to lower case, and the two other characters that RE2's
case-insensitive matching equates with an ASCII letter (KELVIN SIGN with k, LONG S with s)
to that letter, so a case-insensitive literal's ASCII trigrams are found folded whatever
the case of the text it matched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

SGR = re.compile(rb"\x1b\[[0-9;:]*m")
# A line longer than this (a progress bar redrawn for days) is searched in pieces this long
# (logread/search.py), and the pieces are not what a summary describes: a chunk holding the
# end of such a line gets no summary.
LONG_LINE_BYTES = 8 * 1024 * 1024

_BIT_SHIFT = 15
BITS = 1 << _BIT_SHIFT
SUMMARY_BYTES = BITS // 8
# Fibonacci hashing of a trigram's 24-bit code: the top bits of code * this (mod 2^32).
_MULTIPLIER = 0x9E3779B1
_FOLDS = ((b"\xe2\x84\xaa", b"k"), (b"\xc5\xbf", b"s"))  # KELVIN SIGN, LATIN SMALL LONG S
_PAD = b"\n\n\n"  # see summarize: makes every trigram the start of a 4-byte word's


def searchable(data: bytes) -> bytes:
    """The bytes search looks for a literal in: colour escapes removed."""
    return SGR.sub(b"", data) if b"\x1b" in data else data


def fold(text: bytes) -> bytes:
    for character, letter in _FOLDS:
        if character in text:
            text = text.replace(character, letter)
    return text.lower()


def summarize(data: bytes, inherited: bytes | None = None) -> bytes:
    """The summary of ``data`` (a chunk's bytes from the start of the line holding its first
    byte), with the bits of ``inherited`` (the previous chunk's summary, when that line
    starts before it) too.

    Vectorised with numpy: 1 MiB takes ~4 ms here.
    """
    text = fold(searchable(data)) + _PAD
    bits = np.zeros(BITS, np.bool_)
    if inherited is not None:
        bits |= np.unpackbits(np.frombuffer(inherited, np.uint8), bitorder="little").astype(
            np.bool_
        )
    multiplier, shift = np.uint32(_MULTIPLIER), np.uint32(32 - _BIT_SHIFT)
    # Little-endian 4-byte words at offsets 0, 4, ... and 2, 6, ...: each holds the trigram
    # starting at its first byte (word & 0xFFFFFF) and at its second (word >> 8). The padding
    # makes the last real trigrams start a whole word; the ones it adds only set more bits.
    for skip in (0, 2):
        count = (len(text) - skip) // 4
        words = np.frombuffer(text, "<u4", count, skip)
        for codes in (words & np.uint32(0xFFFFFF), words >> np.uint32(8)):
            codes *= multiplier
            codes >>= shift
            # Indexing converts to intp anyway, and more slowly than astype does.
            bits[codes.astype(np.intp)] = True
    return np.packbits(bits, bitorder="little").tobytes()


def query_bits(query: str, case: bool) -> list[int] | None:
    """The summary bits a chunk must all have for a line of it to match the literal
    ``query`` (case-sensitive or not); None when no trigram narrows it (shorter than 3
    characters, or, ignoring case, no trigram of ASCII characters only)."""
    folded = fold(query.encode())
    trigrams = {folded[at : at + 3] for at in range(len(folded) - 2)}
    if not case:
        # RE2 equates a non-ASCII character with others whose bytes fold differently.
        trigrams = {trigram for trigram in trigrams if trigram.isascii()}
    if not trigrams:
        return None
    return sorted({_bit(int.from_bytes(trigram, "little")) for trigram in trigrams})


def _bit(code: int) -> int:
    return ((code * _MULTIPLIER) & 0xFFFFFFFF) >> (32 - _BIT_SHIFT)


def lacks(summary: bytes, bits: Iterable[int]) -> bool:
    """Whether the summary lacks one of these bits (no line it covers can match)."""
    return any(not summary[bit >> 3] >> (bit & 7) & 1 for bit in bits)
