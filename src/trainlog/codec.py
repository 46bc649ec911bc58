"""How chunk bytes are encoded at rest: raw, or zstd where that saves space."""

from __future__ import annotations

import zstandard

from trainlog.models import ChunkCodec

# Keep bytes raw unless compression saves at least this share of them.
MIN_SAVING = 0.1
# Level 1 where speed matters (the capture path), 3 in the background (compaction): terminal
# text compresses 10-50x either way, at several hundred MB/s.
FAST = 1
THOROUGH = 3
# At FAST, a hash table of 2^12 entries (level 1's is 2^14 for a 1 MiB chunk): it stays in the
# CPU's cache. Measured on 1 MiB pieces here: 13-17% less time for trainer output (tqdm bars,
# metric lines) with 8-11% more saved, 13% less time and 8% less saved for source code.
# Compressing a flood is most of what capturing it costs (see store._COMPRESSORS).
FAST_HASH_LOG = 12


def encode(data: bytes, level: int) -> tuple[ChunkCodec, bytes]:
    """(codec, stored bytes) for data: zstd when it is worth it, else the data itself."""
    return choose(data, compress(data, level))


def compress(data: bytes, level: int, checksum: bool = False) -> bytes:
    """One zstd frame of data, saying its size (so decode needs nothing else); with
    ``checksum``, also a checksum of data that every decompression verifies."""
    hash_log = {"hash_log": FAST_HASH_LOG} if level == FAST else {}
    params = zstandard.ZstdCompressionParameters.from_level(
        level, source_size=len(data), write_checksum=checksum, **hash_log
    )
    return zstandard.ZstdCompressor(compression_params=params).compress(data)


def choose(data: bytes, packed: bytes) -> tuple[ChunkCodec, bytes]:
    """(codec, stored bytes) given data and a zstd frame of it: the frame if it is worth it."""
    if len(packed) <= len(data) * (1 - MIN_SAVING):
        return ChunkCodec.ZSTD, packed
    return ChunkCodec.RAW, data


def decompress_frame(frame: bytes) -> bytes:
    """The bytes of one whole zstd frame that says its size; anything else is a ZstdError."""
    return zstandard.ZstdDecompressor().decompress(frame, allow_extra_data=False)


def decode(codec: int, data: bytes) -> bytes:
    if codec == ChunkCodec.RAW:
        return data
    if codec == ChunkCodec.ZSTD:
        return zstandard.ZstdDecompressor().decompress(data)
    raise ValueError(f"unknown chunk codec {codec}")
