# SPDX-License-Identifier: MIT
"""Descriptors riding with messages, both ways, between two processes.
Opt-in on each side (fds=True): a side accepts descriptors only if it
asked for them."""
import errno
import os

import pytest

import evshm
from conftest import ending_well, fd_count, fd_count_back_to
from evtest import connect_in_thread, unique_name


@pytest.fixture
def fds_peer(channel_to):
    yield from ending_well(channel_to, "fds", fds=True)


def test_both_ways(fds_peer):
    ch = fds_peer
    pipes = [os.pipe() for _ in range(3)]
    with open(pipes[2][1], "wb", closefd=False) as f:  # any object with fileno()
        ch.send_fds(b"through the pipe", [pipes[0][1], pipes[1][1], f], timeout=30)
    for r, w in pipes:
        os.close(w)  # ours; the peer writes through its own copies
        assert os.read(r, 100) == b"through the pipe"
        os.close(r)
    data, fds = ch.recv_fds(timeout=30)
    assert data == b"read me" and len(fds) == 1
    assert not os.get_inheritable(fds[0])  # close-on-exec
    assert os.read(fds[0], 100) == b"from peer"
    os.close(fds[0])


def test_recv_many_stops_before_descriptors():
    """recv_many never takes a message with descriptors into a list: the
    list ends before it, recv_fds takes it, the next list goes on."""
    with evshm.listen(unique_name("many-fds"), fds=True) as listener:
        fut = connect_in_thread(listener.name, fds=True)
        a = listener.accept(timeout=10)
    b = fut.result(10)
    r, w = os.pipe()
    for i in range(3):
        a.send(b"before %d" % i)
    a.send_fds(b"with fd", [w])
    os.close(w)
    for i in range(2):
        a.send(b"after %d" % i)
    assert b.recv_many(timeout=10) == [b"before %d" % i for i in range(3)]
    data, fds = b.recv_fds(timeout=10)
    assert data == b"with fd" and len(fds) == 1
    os.write(fds[0], b"!")
    assert os.read(r, 10) == b"!"
    for fd in fds + [r]:
        os.close(fd)
    assert b.recv_many(timeout=10) == [b"after 0", b"after 1"]
    a.close()
    b.close()


def test_plain_recv_closes_them(fds_peer):
    """A message with descriptors taken by recv(): they are closed."""
    ch = fds_peer
    r, w = os.pipe()
    ch.send_fds(b"x", [w])
    os.close(w)
    assert os.read(r, 10) == b"x"
    os.close(r)
    before = fd_count()
    assert ch.recv(timeout=30) == b"read me"
    # A peer's pipe end is closed by a short-lived thread (its close takes
    # the pipe's mutex, which the peer may hold).
    assert fd_count_back_to(before)


def test_bad_descriptors(fds_peer):
    ch = fds_peer
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as e:
        ch.send_fds(b"x", [w])
    assert e.value.errno == errno.EBADF
    with pytest.raises(ValueError):
        ch.send_fds(b"x", [])
    with pytest.raises(ValueError):
        ch.send_fds(b"x", [0] * (evshm.MAX_FDS + 1))
    with pytest.raises(TypeError):
        ch.send_fds(b"x", ["not a descriptor"])
    # The channel is fine: the peer still does its job.
    r, w = os.pipe()
    ch.send_fds(b"ok", [w])
    os.close(w)
    assert os.read(r, 10) == b"ok"
    os.close(r)
    data, fds = ch.recv_fds(timeout=30)
    for fd in fds:
        os.close(fd)


def test_refused_without_the_option(channel_to):
    """Towards a peer that did not ask for descriptors: OSError
    EOPNOTSUPP, and the channel goes on; this side without the option
    never receives any."""
    ch, p = channel_to("echo")  # neither side set fds
    r, w = os.pipe()
    with pytest.raises(OSError) as e:
        ch.send_fds(b"x", [w])
    assert e.value.errno == errno.EOPNOTSUPP
    os.close(r)
    os.close(w)
    ch.send(b"still fine")
    assert ch.recv_fds(timeout=30) == (b"still fine", [])
    ch.close()
    p.expect(0)


def test_peek_many_stops_before_descriptors():
    """peek_many never takes a message with descriptors into a run either."""
    with evshm.listen(unique_name("peek-fds"), fds=True) as listener:
        fut = connect_in_thread(listener.name, fds=True)
        a = listener.accept(timeout=10)
    b = fut.result(10)
    r, w = os.pipe()
    a.send(b"before")
    a.send_fds(b"with fd", [w])
    os.close(w)
    a.send(b"after")
    with b.peek_many(timeout=10) as views:
        assert [bytes(v) for v in views] == [b"before"]
    data, fds = b.recv_fds(timeout=10)
    assert data == b"with fd" and len(fds) == 1
    for fd in fds + [r]:
        os.close(fd)
    with b.peek_many(timeout=10) as views:
        assert [bytes(v) for v in views] == [b"after"]
    a.close()
    b.close()
