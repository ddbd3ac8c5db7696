# SPDX-License-Identifier: MIT
"""Channels between two Python processes: the copy API, iteration,
counters, credentials, options, context managers."""
import array
import errno
import os
import threading
import time

import numpy as np
import pytest

import evshm
from evtest import others_run_while, payload, unique_name


def test_echo_sizes(echo):
    ch = echo
    for size in (0, 1, 7, 64, 4096, 65536, ch.max_msg):
        msg = payload(size, size)
        ch.send(msg)
        assert ch.recv(timeout=30) == msg


def test_bytes_like(echo):
    ch = echo
    a = np.arange(1000, dtype=np.float64)
    for data in (b"bytes", bytearray(b"bytearray"), memoryview(b"view"),
                 array.array("i", [1, 2, 3]), a):
        ch.send(data)
        assert ch.recv(timeout=30) == bytes(memoryview(data).cast("B"))
    with pytest.raises((BufferError, ValueError)):  # numpy: ValueError
        ch.send(a[::2])  # not contiguous
    with pytest.raises(TypeError):
        ch.send("a str")


def test_recv_into(echo):
    ch = echo
    ch.send(b"0123456789")
    buf = bytearray(4)
    with pytest.raises(OSError) as e:
        ch.recv_into(buf, timeout=30)
    assert e.value.errno == errno.EMSGSIZE
    big = bytearray(100)
    # The message stayed: it arrives in full into a buffer that fits.
    assert ch.recv_into(big) == 10
    assert big[:10] == b"0123456789"
    a = np.zeros(16, dtype=np.uint8)
    ch.send(bytes(range(16)))
    assert ch.recv_into(a, timeout=30) == 16
    assert list(a) == list(range(16))


def test_recv_many(channel_to):
    """recv_many: everything in order, in lists of at most max; a backlog
    comes in full lists, one release each."""
    ch, p = channel_to("send", 1000, 100)
    p.expect(0)  # all 1000 are in the ring now (120 KB of 1 MiB)
    with pytest.raises(ValueError):
        ch.recv_many(0)
    sizes, got = [], []
    while len(got) < 1000:
        batch = ch.recv_many(64, timeout=30)
        assert all(type(m) is bytes for m in batch)
        sizes.append(len(batch))
        got += batch
    assert got == [payload(i, 100) for i in range(1000)]
    assert sizes == [64] * 15 + [40]
    with pytest.raises(BrokenPipeError):
        ch.recv_many()
    st = ch.stats()
    assert st.msgs_recv == 1000


def test_recv_many_waits_and_mixes(echo):
    """The first message waits as recv() does; max=1 is recv(); a list
    stops before a message with descriptors is not needed here (see
    test_fds); timeout 0 with nothing there raises BlockingIOError."""
    ch = echo
    with pytest.raises(BlockingIOError):
        ch.recv_many(timeout=0)
    with pytest.raises(TimeoutError):
        ch.recv_many(timeout=0.05)
    for i in range(5):
        ch.send(payload(i, 64))
    got = []
    while len(got) < 5:
        got += ch.recv_many(1, timeout=30) if not got else ch.recv_many(timeout=30)
    assert got == [payload(i, 64) for i in range(5)]
    # A large message is copied without the GIL, in a list like any other.
    big = payload(7, ch.max_msg)
    ch.send(big)
    assert ch.recv_many(timeout=30) == [big]


def test_iteration_until_peer_closes(channel_to):
    ch, p = channel_to("send", 1000, 100)
    got = [m for m in ch]
    assert got == [payload(i, 100) for i in range(1000)]
    with pytest.raises(BrokenPipeError):
        ch.recv()
    ch.close()
    p.expect(0)


def test_stats_and_peer_cred(channel_to):
    ch, p = channel_to("echo")
    for i in range(10):
        ch.send(b"x" * 100)
    for i in range(10):
        ch.recv(timeout=30)
    st = ch.stats()
    assert isinstance(st, evshm.Stats)
    assert (st.msgs_sent, st.bytes_sent, st.msgs_recv, st.bytes_recv) == \
        (10, 1000, 10, 1000)
    cred = ch.peer_cred()
    assert cred == (p.pid, os.getuid(), os.getgid())
    assert cred.pid == p.pid


def test_options_reach_the_library(channel_to):
    ch, p = channel_to("send", 1, 10, 1 << 20,  # the client's ring: 1 MiB
                       ring_size=1 << 16, max_clients=4,
                       spin_ns=evshm.SPIN_NEVER, handshake_timeout_ms=5000)
    assert ch.max_msg == (1 << 16) // 2 - 16
    assert ch.recv(timeout=30) == payload(0, 10)
    ch.close()
    p.expect(0)


def test_option_errors():
    with pytest.raises(TypeError, match="unexpected keyword argument 'ringsize'"):
        evshm.listen(unique_name("x"), ringsize=4096)
    with pytest.raises(TypeError, match=r"an option of connect\(\)\)"):
        evshm.listen(unique_name("x"), peer_ring_size=4096)
    with pytest.raises(TypeError, match=r"an option of listen\(\), publish\(\)"):
        evshm.connect(unique_name("x"), max_clients=1)
    with pytest.raises(TypeError, match=r"an option of publish\(\)\)"):
        evshm.listen(unique_name("x"), policy="latest")
    with pytest.raises(TypeError):
        evshm.listen(unique_name("x"), ring_size=4096.0)
    with pytest.raises(ValueError):
        evshm.listen(unique_name("x"), ring_size=-1)
    with pytest.raises(ValueError):
        evshm.listen(unique_name("x"), ring_size=1 << 40)
    with pytest.raises(TypeError):
        evshm.listen(unique_name("x"), authorize=42)
    with pytest.raises(OSError) as e:
        evshm.listen(unique_name("x"), ring_size=5000)  # not a power of two
    assert e.value.errno == errno.EINVAL


def test_listen_on_a_path(tmp_path, peer):
    path = str(tmp_path / "sock")
    with evshm.listen(path, mode=0o600) as listener:
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert listener.name == path
        p = peer("send", path, 3, 8)
        ch = listener.accept(timeout=30)
        assert [m for m in ch] == [payload(i, 8) for i in range(3)]
        ch.close()
    assert not os.path.exists(path)
    p.expect(0)


def test_closed_objects_raise(echo):
    ch = echo
    listener = evshm.listen(unique_name("closed"))
    listener.close()
    listener.close()  # twice is fine
    with pytest.raises(ValueError):
        listener.accept()
    with pytest.raises(ValueError):
        listener.fileno()
    ch.close()
    assert ch.closed
    for call in (lambda: ch.send(b"x"), ch.recv, lambda: ch.recv_into(bytearray(1)),
                 ch.peek, ch.peek_many, lambda: ch.reserve(1), ch.fileno, ch.stats,
                 ch.peer_cred, lambda: ch.max_msg):
        with pytest.raises(ValueError):
            call()


def test_other_threads_run_while_waiting(echo):
    """The GIL is released while recv waits."""
    assert others_run_while(lambda: pytest.raises(TimeoutError, echo.recv,
                                                  timeout=0.3)) > 1000


def sleeping(ch, sleeps):
    """Wait (up to 10 s) until a call on ch has gone to sleep once more
    than sleeps times: then another thread is inside it."""
    for _ in range(1000):
        if ch.stats().sleeps > sleeps:
            return
        time.sleep(0.01)
    raise AssertionError("the other thread never waited")


def test_one_thread_per_side(echo):
    """A second thread on a side in use gets RuntimeError, not a crash;
    close() from another thread ends the wait."""
    ch = echo
    errors = []

    def waiter():
        try:
            ch.recv()
        except Exception as e:  # noqa: BLE001 - recorded and checked
            errors.append(e)
    t = threading.Thread(target=waiter)
    sleeps = ch.stats().sleeps
    t.start()
    sleeping(ch, sleeps)
    with pytest.raises(RuntimeError, match="another thread"):
        ch.recv(timeout=0)
    ch.send(b"the send side is free")  # its echo ends the waiter
    t.join(10)
    assert not t.is_alive() and not errors
    t = threading.Thread(target=waiter)
    sleeps = ch.stats().sleeps
    t.start()
    sleeping(ch, sleeps)
    ch.close()
    t.join(10)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ValueError)
