import random
import threading
import time

from trainlog.runner.buffer import SpillBuffer


def drain(buffer: SpillBuffer) -> bytes:
    out = bytearray()
    while piece := buffer.take(1000, timeout=0):
        out += piece
    return bytes(out)


def test_order_is_kept_across_memory_and_disk(tmp_path: object) -> None:
    buffer = SpillBuffer(memory_limit=100)
    rng = random.Random(3)
    written = bytearray()
    taken = bytearray()
    for _ in range(300):
        data = rng.randbytes(rng.randrange(1, 80))
        buffer.put(data)
        written += data
        if rng.random() < 0.3:
            taken += buffer.take(rng.randrange(1, 200), timeout=0)
    taken += drain(buffer)
    assert taken == written
    assert buffer.pending == 0


def test_beyond_the_memory_limit_bytes_wait_on_disk() -> None:
    buffer = SpillBuffer(memory_limit=10)
    buffer.put(b"0123456789")
    buffer.put(b"abc")
    assert buffer.spilled == 3
    # Newer bytes queue behind the spilled ones even after memory has room again.
    assert buffer.take(100) == b"0123456789"
    buffer.put(b"d")
    assert drain(buffer) == b"abcd"
    assert buffer.spilled == 0


def test_take_waits_for_data_and_ends_after_close() -> None:
    buffer = SpillBuffer(memory_limit=10)
    threading.Timer(0.05, buffer.put, args=(b"late",)).start()
    assert buffer.take(10, timeout=5) == b"late"
    buffer.put(b"rest")
    buffer.close()
    assert not buffer.exhausted
    assert buffer.take(10) == b"rest"
    assert buffer.take(10) == b""
    assert buffer.exhausted


def test_wait_for_ends_once_enough_is_held_or_input_ends() -> None:
    # The writer gathering a flood: small puts do not end the wait, the one that makes up
    # the amount does, and so does the end of input; the timeout bounds it either way.
    buffer = SpillBuffer(memory_limit=100)
    buffer.put(b"abc")
    for piece in (b"d", b"efghij"):
        threading.Timer(0.05, buffer.put, args=(piece,)).start()
    started = time.monotonic()
    buffer.wait_for(10, timeout=5)
    assert buffer.pending == 10 and time.monotonic() - started < 2.5

    threading.Timer(0.05, buffer.close).start()
    started = time.monotonic()
    buffer.wait_for(1000, timeout=5)
    assert time.monotonic() - started < 2.5

    quiet = SpillBuffer(memory_limit=100)
    started = time.monotonic()
    quiet.wait_for(10, timeout=0.05)
    assert time.monotonic() - started < 2.5


def test_a_full_spill_disk_drops_new_bytes_and_says_so_in_order(tmp_path: object) -> None:
    # A spill "disk" that cannot be written: a directory that does not exist.
    buffer = SpillBuffer(memory_limit=10, spill_dir="/nonexistent/trainlog-spill")
    buffer.put(b"0123456789")
    buffer.put(b"lost")  # memory full, cannot spill: dropped
    buffer.put(b"also lost")  # still held bytes ahead of it: dropped too
    assert buffer.take(100) == b"0123456789"
    notice = buffer.take(1000)
    assert notice.startswith(b"\r\n[trainlog] 13 bytes of output lost: ")
    assert buffer.first_loss is not None and "could not spill" in buffer.first_loss
    buffer.put(b"kept")
    buffer.put(b"!")
    buffer.close()
    assert drain(buffer) == b"kept!"
    assert buffer.exhausted


def test_bytes_come_out_with_the_times_they_were_put() -> None:
    buffer = SpillBuffer(memory_limit=8)
    buffer.put(b"a\n", [(0, 1.0)])
    buffer.put(b"b\n", [(0, 2.0)])
    buffer.put(b"spilled to disk\n", [(0, 3.0), (8, 4.0)])
    assert buffer.take_timed(3) == (b"a\nb", [(0, 1.0), (2, 2.0)])
    # The rest of a put keeps its time, wherever a take cut it.
    assert buffer.take_timed(100) == (b"\n", [(0, 2.0)])
    assert buffer.take_timed(100) == (b"spilled to disk\n", [(0, 3.0), (8, 4.0)])
