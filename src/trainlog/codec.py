"""How chunk bytes are encoded at rest: raw while a log grows, zstd once it is compacted."""

from __future__ import annotations

import zstandard

from trainlog.models import ChunkCodec

# Level 3: most of zstd's ratio on terminal text at several hundred MB/s.
_LEVEL = 3


def encode_zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=_LEVEL).compress(data)


def decode(codec: int, data: bytes) -> bytes:
    if codec == ChunkCodec.RAW:
        return data
    if codec == ChunkCodec.ZSTD:
        return zstandard.ZstdDecompressor().decompress(data)
    raise ValueError(f"unknown chunk codec {codec}")
