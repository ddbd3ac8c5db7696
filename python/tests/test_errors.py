# SPDX-License-Identifier: MIT
"""Every error maps to the exception Python users expect, each one
provoked for real where a test can provoke it, and timeouts."""
import errno
import gc
import os
import time

import pytest

import evshm
from evtest import connect_in_thread, connect_retry, subscribe_retry, unique_name

# errno -> the exception class it must raise (the mapping, as a table).
MAPPING = [
    (errno.ETIMEDOUT, TimeoutError),
    (errno.EAGAIN, BlockingIOError),
    (errno.EPIPE, BrokenPipeError),
    (errno.ECONNRESET, ConnectionResetError),
    (errno.EPROTO, evshm.ProtocolError),
    (errno.EACCES, PermissionError),
    (errno.ENOENT, FileNotFoundError),
    (errno.ECONNREFUSED, ConnectionRefusedError),
    (errno.EINTR, InterruptedError),
    (errno.EADDRINUSE, OSError),
    (errno.EMSGSIZE, OSError),
    (errno.EUSERS, OSError),
    (errno.EFBIG, OSError),
    (errno.EPROTONOSUPPORT, OSError),
    (errno.EINVAL, OSError),
    (errno.EOVERFLOW, OSError),
    (errno.ECONNABORTED, ConnectionAbortedError),
    (errno.ESTALE, OSError),
    (errno.EOPNOTSUPP, OSError),
    (errno.EPROTOTYPE, OSError),
    (errno.EBUSY, OSError),
    (errno.EMFILE, OSError),
]


@pytest.mark.parametrize("err,exc", MAPPING, ids=[errno.errorcode[e] for e, _ in MAPPING])
def test_mapping_table(err, exc):
    e = evshm._evshm._exception_for(err)
    assert type(e) is exc
    assert isinstance(e, OSError) and e.errno == err and e.strerror


def test_protocol_error_is_an_oserror():
    assert issubclass(evshm.ProtocolError, OSError)


@pytest.fixture
def pair(channel_to):
    """A channel to a peer that holds it open and does nothing."""
    return channel_to("hold")


def test_timeouts(pair):
    ch, _ = pair
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        ch.recv(timeout=0.2)
    assert time.monotonic() - t0 >= 0.2
    with pytest.raises(BlockingIOError):
        ch.recv(timeout=0)
    with pytest.raises(BlockingIOError):
        ch.peek(0)
    with pytest.raises(BlockingIOError):
        ch.recv_into(bytearray(10), timeout=0)
    with pytest.raises(TimeoutError):
        ch.recv_fds(timeout=0.01)
    with pytest.raises(TypeError):
        ch.recv(timeout="1")
    with pytest.raises(ValueError):
        ch.recv(timeout=-1)
    with pytest.raises(ValueError):
        ch.recv(timeout=float("nan"))
    listener = evshm.listen(unique_name("t"))
    with pytest.raises(BlockingIOError):
        listener.accept(timeout=0)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        listener.accept(timeout=0.1)
    assert time.monotonic() - t0 >= 0.1
    listener.close()


def test_send_on_a_full_ring(pair):
    ch, _ = pair
    msg = b"x" * 1000
    n = 0
    with pytest.raises(BlockingIOError):
        while True:
            ch.send(msg, timeout=0)
            n += 1
    assert n > 0
    with pytest.raises(TimeoutError):
        ch.send(msg, timeout=0.05)
    with pytest.raises(OSError) as e:
        ch.send(b"x" * (ch.max_msg + 1))
    assert e.value.errno == errno.EMSGSIZE


def test_peer_death(channel_to):
    """What a peer committed before SIGKILL is delivered, then
    BrokenPipeError; a send then fails the same way."""
    ch, p = channel_to("send-then-die", 100, ready=False)
    assert p.wait() == -9
    for i in range(100):
        ch.recv(timeout=30)
    with pytest.raises(BrokenPipeError):
        ch.recv(timeout=30)
    with pytest.raises(BrokenPipeError):
        while True:  # until the ring is full and the send has to wait
            ch.send(b"y" * 1000, timeout=30)
    ch.close()


def test_peer_death_while_waiting(pair):
    """A blocked recv learns of the death at once, not at its timeout."""
    ch, p = pair
    os.kill(p.pid, 9)
    t0 = time.monotonic()
    with pytest.raises(BrokenPipeError):
        ch.recv(timeout=60)
    assert time.monotonic() - t0 < 30


def test_nobody_listens(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        evshm.connect(str(tmp_path / "nobody"))
    assert e.value.filename == str(tmp_path / "nobody")
    with pytest.raises(ConnectionRefusedError):
        evshm.connect(unique_name("nobody"))


def test_name_in_use():
    name = unique_name("busy")
    with evshm.listen(name):
        with pytest.raises(OSError) as e:
            evshm.listen(name)
        assert e.value.errno == errno.EADDRINUSE


def test_authorize(peer):
    """authorize=False refuses (PermissionError on both sides); an
    exception raised by it comes out of accept(); True admits."""
    seen = []

    def policy(pid, uid, gid):
        seen.append((pid, uid, gid))
        if len(seen) == 2:
            raise LookupError("policy failed")
        return len(seen) == 3
    name = unique_name("auth")
    with evshm.listen(name, authorize=policy) as listener:
        for want in (PermissionError, LookupError):
            p = peer("echo", name)
            with pytest.raises(want):
                listener.accept(timeout=30)
            p.expect(1)
            assert "PermissionError" in p.err
        p = peer("echo", name)
        ch = listener.accept(timeout=30)
        assert seen[-1] == (p.pid, os.getuid(), os.getgid())
        ch.close()
        p.expect(0)


def test_listener_in_a_cycle_is_collected():
    """authorize refers to its listener: the collector still frees it, and
    with it the name."""
    def make(name):
        listener = evshm.listen(name, authorize=lambda *cred: listener is not None)
    name = unique_name("cycle")
    make(name)
    gc.collect()
    evshm.listen(name).close()  # free again: EADDRINUSE if still alive


def test_authorize_on_connect(peer):
    name = unique_name("cauth")
    with evshm.listen(name):
        with pytest.raises(PermissionError):
            evshm.connect(name, timeout=10, authorize=lambda pid, uid, gid: False)
    name = unique_name("cauth2")
    p = peer("sink", name, 0, 0).wait_ready()
    seen = []
    ch = connect_retry(name, authorize=lambda *cred: seen.append(cred) or True)
    assert ch.recv(timeout=30) == b"ok"
    assert seen == [(p.pid, os.getuid(), os.getgid())]
    ch.close()
    p.expect(0)


def test_max_clients(peer):
    name = unique_name("max")
    with evshm.listen(name, max_clients=1) as listener:
        p = peer("hold", name)
        ch = listener.accept(timeout=30)
        p.wait_ready()
        refused = connect_in_thread(name)
        with pytest.raises(OSError) as e:
            listener.accept(timeout=30)
        assert e.value.errno == errno.EUSERS
        assert refused.exception(10).errno == errno.EUSERS
        ch.close()


def test_ring_size_refused():
    name = unique_name("fbig")
    with evshm.listen(name, max_ring_size=1 << 16) as listener:
        refused = connect_in_thread(name, ring_size=1 << 20)
        with pytest.raises(OSError) as e:
            listener.accept(timeout=30)
        assert e.value.errno == errno.EFBIG
        assert refused.exception(10).errno == errno.EFBIG


def test_protocol_error_on_connect(peer):
    """A server that answers garbage: evshm.ProtocolError."""
    name = unique_name("garbage-srv")
    peer("garbage-server", name).wait_ready()
    with pytest.raises(evshm.ProtocolError) as e:
        connect_retry(name)
    assert e.value.errno == errno.EPROTO


def test_protocol_error_on_accept(peer):
    """A client that sends garbage: accept() raises evshm.ProtocolError,
    and the next accept serves the next client."""
    name = unique_name("garbage-cli")
    with evshm.listen(name) as listener:
        peer("garbage-client", name).wait_ready()
        with pytest.raises(evshm.ProtocolError):
            listener.accept(timeout=30)
        p = peer("send", name, 1, 5)
        ch = listener.accept(timeout=30)
        assert ch.recv(timeout=30) == b"\0" * 5
        ch.close()
        p.expect(0)


def test_protocol_error_in_a_channel(channel_to):
    """A peer that corrupts a record it published: evshm.ProtocolError,
    with the check that failed (evshm_error_reason()) in its message;
    sticky."""
    ch, p = channel_to("corrupt-channel")
    with pytest.raises(evshm.ProtocolError) as e:
        ch.recv(timeout=30)
    assert e.value.errno == errno.EPROTO
    assert e.value.strerror.startswith("peer broke the protocol: ring: ")
    with pytest.raises(evshm.ProtocolError):
        ch.recv(timeout=0)
    ch.close()
    p.expect(0)


def test_protocol_error_in_a_topic(peer):
    name = unique_name("corrupt-pub")
    p = peer("corrupt-publisher", name)
    sub = subscribe_retry(name, 20)
    p.wait_ready()
    with pytest.raises(evshm.ProtocolError) as e:
        sub.recv(timeout=30)
    assert e.value.strerror.startswith("peer broke the protocol: ")
    assert len(e.value.strerror) > len("peer broke the protocol: ")
    sub.close()
    p.expect(0)
