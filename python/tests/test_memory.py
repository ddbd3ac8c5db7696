# SPDX-License-Identifier: MIT
"""1,000,000 messages with no memory growth (resident size and Python's
allocations), and every call path, errors included, with no leak.
EVSHM_TEST_SCALE divides the counts."""
import gc
import os
import tracemalloc

import numpy as np
import pytest

import evshm
from evtest import payload, scale, subscribe_here, unique_name

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class Growth:
    """Resident and traced memory growth since the warm-up ended."""

    def __enter__(self):
        gc.collect()
        tracemalloc.start()
        return self

    def mark(self):
        gc.collect()
        self.rss0, self.traced0 = rss(), tracemalloc.get_traced_memory()[0]

    def __exit__(self, *exc):
        gc.collect()
        self.rss = rss() - self.rss0
        self.traced = tracemalloc.get_traced_memory()[0] - self.traced0
        tracemalloc.stop()


def test_a_million_messages(peer):
    n, warm = scale(1_000_000), scale(100_000)
    name = unique_name("million")
    with evshm.listen(name, ring_size=1 << 22) as listener:
        p = peer("send", name, n, 64)
        ch = listener.accept(timeout=30)
    with Growth() as g:
        recv = ch.recv
        for i in range(n):
            if i == warm:
                g.mark()
            msg = recv(timeout=30)
            if i % 1024 == 0:
                assert msg == payload(i, 64)
    ch.close()
    p.expect(0)
    assert g.rss < 4 << 20, f"resident size grew by {g.rss} bytes"
    assert g.traced < 64 << 10, f"Python allocations grew by {g.traced} bytes"


def no_growth(n, warm, step):
    """Run step(i) for i in range(n): no growth after the first warm."""
    with Growth() as g:
        for i in range(n):
            if i == warm:
                g.mark()
            step(i)
    assert g.rss < 2 << 20, f"resident size grew by {g.rss} bytes"
    assert g.traced < 64 << 10, f"Python allocations grew by {g.traced} bytes"


def shared_path(tx, rx, k, i, into):
    """Path k (0 to 4) of what a channel and a topic share: send/recv,
    reserve/peek, send/recv_into, recv with nothing pending, sends/peek_many;
    tx sends, rx receives."""
    if k == 0:
        tx.send(payload(i, 100))
        assert rx.recv(timeout=30) == payload(i, 100)
    elif k == 1:
        with tx.reserve(100) as buf:
            buf[:] = payload(i, 100)
        with rx.peek(timeout=30) as buf:
            assert buf == payload(i, 100)
    elif k == 2:
        tx.send(payload(i, 200))
        assert rx.recv_into(into, timeout=30) == 200
    elif k == 3:
        with pytest.raises(BlockingIOError):
            rx.recv(timeout=0)
        with pytest.raises(BlockingIOError):
            rx.peek_many(timeout=0)
    else:
        for j in range(3):
            tx.send(payload(i + j, 100))
        n = 0
        while n < 3:
            with rx.peek_many(timeout=30) as views:
                for v in views:
                    assert v == payload(i + n, 100)
                    n += 1


def test_every_call_path(peer):
    """Round trips through an echo peer with each API in turn, plus the
    error paths (BlockingIOError, BufferError, closed objects)."""
    name = unique_name("paths")
    with evshm.listen(name) as listener:
        p = peer("echo", name)
        ch = listener.accept(timeout=30)
    into = bytearray(256)

    def step(i):
        k = i % 8
        if k < 5:
            shared_path(ch, ch, k, i, into)
        elif k == 5:
            ch.send(b"", timeout=None)
            assert ch.recv() == b""
        elif k == 6:
            ch.send(b"v")
            with pytest.raises(BufferError):
                with ch.peek(timeout=30) as buf:
                    keep = np.frombuffer(buf, dtype=np.uint8)
            assert keep[0] == ord("v")
            del keep
            assert ch.stats().msgs_recv > 0
        else:
            ch.send(b"w")
            with pytest.raises(BufferError):
                with ch.peek_many(timeout=30) as views:
                    keep = np.frombuffer(views[0], dtype=np.uint8)
            assert keep[0] == ord("w")
            del keep
            ch.send(b"x")
            with pytest.raises(KeyError):
                with ch.peek_many(timeout=30) as views:
                    raise KeyError
    no_growth(scale(64_000), scale(6_400), step)
    ch.close()
    p.expect(0)


def test_every_topic_call_path():
    """Publisher and subscriber call paths, errors and losses included,
    with no leak (both ends in this process)."""
    into = bytearray(256)
    with evshm.publish(unique_name("tpaths"), policy="latest",
                       ring_size=1 << 12) as pub:
        (sub,) = subscribe_here(pub)

        def step(i):
            k = i % 8
            if k < 5:
                shared_path(pub, sub, k, i, into)
            elif k == 5:
                assert pub.serve() == 1
                assert pub.subscribers()[0].lag == 0
            elif k == 6:
                pub.send(payload(i, 100))
                with pytest.raises(OSError):  # ESTALE
                    with sub.peek_many(timeout=10):
                        for j in range(60):  # laps the 4 KiB ring
                            pub.send(payload(j, 100))
                sub.recv(timeout=10)
                while True:
                    try:
                        sub.recv(timeout=0)
                    except BlockingIOError:
                        break
            else:
                for j in range(60):  # laps the 4 KiB ring: losses
                    pub.send(payload(j, 100))
                sub.recv(timeout=10)
                while True:
                    try:
                        sub.recv(timeout=0)
                    except BlockingIOError:
                        break
                assert pub.stats().msgs_sent > 0 and sub.stats().lost > 0
        no_growth(scale(16_000), scale(1_600), step)
        sub.close()
