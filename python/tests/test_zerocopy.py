# SPDX-License-Identifier: MIT
"""Zero copy: peek and reserve, numpy views, and the lifetime rules: a
view is never left pointing at released or unmapped memory."""
import errno
import gc

import numpy as np
import pytest

import evshm
from evtest import payload


def ring_mappings():
    """How many evshm rings this process has mapped."""
    with open("/proc/self/maps") as f:
        return sum("memfd:evshm" in line for line in f)


def test_peek(echo):
    echo.send(b"hello, ring")
    with echo.peek(timeout=30) as buf:
        assert isinstance(buf, memoryview) and buf.readonly
        assert bytes(buf) == b"hello, ring"
        with pytest.raises(TypeError):
            buf[0] = 1
    # Released: any use raises, nothing reads the ring any more.
    with pytest.raises(ValueError):
        buf[0]
    with pytest.raises(ValueError):
        bytes(buf)
    assert echo.stats().msgs_recv == 1


def test_numpy_frombuffer_is_a_view(echo):
    frame = np.arange(320 * 240, dtype=np.uint32)
    echo.send(frame)
    with echo.peek(timeout=30) as buf:
        a = np.frombuffer(buf, dtype=np.uint32)
        b = np.frombuffer(buf, dtype=np.uint32)
        assert np.shares_memory(a, b)  # a copy would be its own memory
        assert not a.flags.owndata and not a.flags.writeable
        assert np.array_equal(a, frame)
        del a, b


def test_view_outliving_the_block(echo):
    """The message is not released while a derived view lives: BufferError
    at the end of the block, and on the next receive; once the view is
    gone, the next receive releases it and goes on."""
    echo.send(payload(1, 64))
    echo.send(payload(2, 64))
    with pytest.raises(BufferError, match="outlive"):
        with echo.peek(timeout=30) as buf:
            a = np.frombuffer(buf, dtype=np.uint64)
    assert a[0] == 1 and a[-1] == 1  # still valid, never overwritten
    with pytest.raises(BufferError):
        echo.recv(timeout=30)
    del a
    assert echo.recv(timeout=30) == payload(2, 64)
    # A plain slice counts as a view too.
    echo.send(payload(3, 64))
    with pytest.raises(BufferError):
        with echo.peek(timeout=30) as buf:
            s = buf[8:16]
    assert bytes(s) == payload(3, 8)
    del s
    with pytest.raises(BlockingIOError):
        echo.recv(timeout=0)


def test_view_of_the_memoryview_itself(echo):
    """A consumer that holds a buffer of the with-block's memoryview itself
    (pickle.PickleBuffer, a Cython memoryview, ...), not a memoryview of its
    own as numpy makes: the block ends with the same BufferError, and once
    that consumer is gone the next receive releases the message and goes on
    (no garbage collection needed)."""
    import pickle
    echo.send(payload(1, 64))
    echo.send(payload(2, 64))
    with pytest.raises(BufferError, match="outlive"):
        with echo.peek(timeout=30) as buf:
            pb = pickle.PickleBuffer(buf)
    assert bytes(pb.raw()) == payload(1, 64)  # still valid
    with pytest.raises(BufferError):
        echo.recv(timeout=30)
    del pb
    assert echo.recv(timeout=30) == payload(2, 64)
    with pytest.raises(ValueError):
        buf[0]  # released by that receive: nothing reads the ring through it
    # An exception leaving the block: it propagates, the same afterwards.
    echo.send(payload(3, 64))
    echo.send(payload(4, 64))
    with pytest.raises(KeyError):
        with echo.peek(timeout=30) as buf:
            pb = pickle.PickleBuffer(buf)
            raise KeyError("mine")
    del pb
    assert echo.recv(timeout=30) == payload(4, 64)


def test_reservation_view_of_the_memoryview_itself(echo):
    import pickle
    with pytest.raises(BufferError, match="nothing was sent"):
        with echo.reserve(8) as buf:
            buf[:] = b"unsent!!"
            pb = pickle.PickleBuffer(buf)
    with pytest.raises(BufferError):
        echo.reserve(8)
    del pb
    echo.send(b"next")
    with pytest.raises(ValueError):
        buf[0] = 1  # released: cannot write into room given back
    assert echo.recv(timeout=30) == b"next"
    with pytest.raises(BlockingIOError):
        echo.recv(timeout=0)

def test_exception_in_the_block_propagates(echo):
    echo.send(b"abc")
    with pytest.raises(KeyError):
        with echo.peek(timeout=30) as buf:
            a = np.frombuffer(buf, dtype=np.uint8)
            raise KeyError("mine, not a BufferError")
    del a
    echo.send(b"def")
    assert echo.recv(timeout=30) == b"def"


def test_close_with_live_views(echo):
    """close() unmaps only when the last view is gone."""
    echo.send(payload(7, 4096))
    before = ring_mappings()
    assert before >= 2
    msg = echo.peek(timeout=30)
    buf = msg.__enter__()
    a = np.frombuffer(buf, dtype=np.uint64)
    echo.close()
    assert echo.closed
    assert ring_mappings() == before
    assert (a == 7).all()  # readable: still mapped
    with pytest.raises(ValueError):
        msg.__enter__()  # the channel is closed
    del a, buf, msg
    gc.collect()
    assert ring_mappings() == before - 2


def test_messages_in_turn(echo):
    """A new peek releases the message before it (no view left)."""
    echo.send(b"one")
    echo.send(b"two")
    m1 = echo.peek(timeout=30)
    m2 = echo.peek(timeout=30)
    with pytest.raises(ValueError):
        m1.__enter__()
    with m2 as buf:
        assert bytes(buf) == b"two"
    m2.release()  # again: nothing to do
    with pytest.raises(ValueError):
        m2.__enter__()


def test_reserve(echo):
    with echo.reserve(1000) as buf:
        assert isinstance(buf, memoryview) and not buf.readonly
        assert len(buf) == 1000
        a = np.frombuffer(buf, dtype=np.uint8)
        a[:] = 42
        assert buf[999] == 42  # written through the array: a view
        del a
    with pytest.raises(ValueError):
        buf[0] = 1
    assert echo.recv(timeout=30) == bytes([42]) * 1000


def test_commit_a_shorter_message(echo):
    with echo.reserve(100) as buf:
        buf[:5] = b"short"
        echo.commit(5)
        with pytest.raises(ValueError):
            buf[0]  # released by the commit
    assert echo.recv(timeout=30) == b"short"
    with pytest.raises(ValueError):
        echo.commit()  # nothing reserved
    with echo.reserve(10) as buf:
        with pytest.raises(ValueError):
            echo.commit(11)
        buf[:] = b"0123456789"
    assert echo.recv(timeout=30) == b"0123456789"


def test_exception_in_reserve_sends_nothing(echo):
    """The reservation is cancelled: its room is free for any message."""
    with pytest.raises(ZeroDivisionError):
        with echo.reserve(64) as buf:
            buf[:3] = b"bad"
            1 / 0
    echo.send(b"good" * 100)  # larger than what was reserved
    with echo.reserve(64) as buf:
        buf[:] = payload(9, 64)
    assert echo.recv(timeout=30) == b"good" * 100
    assert echo.recv(timeout=30) == payload(9, 64)
    with pytest.raises(BlockingIOError):
        echo.recv(timeout=0)
    # cancel() in the block sends nothing either.
    r = echo.reserve(8)
    with r as buf:
        buf[:] = b"12345678"
        r.cancel()
        with pytest.raises(ValueError):
            buf[0]  # released by the cancel
    echo.send(b"after")
    assert echo.recv(timeout=30) == b"after"


def test_reserve_view_outliving_the_block(echo):
    with pytest.raises(BufferError, match="nothing was sent"):
        with echo.reserve(8) as buf:
            a = np.frombuffer(buf, dtype=np.uint8)
    a[:] = 1  # harmless: that room is sent by nobody while a lives
    with pytest.raises(BufferError):
        echo.reserve(8)
    del a
    echo.send(b"next")
    assert echo.recv(timeout=30) == b"next"
    with pytest.raises(BlockingIOError):
        echo.recv(timeout=0)


def test_one_reservation_at_a_time(echo):
    with echo.reserve(8) as buf:
        with pytest.raises(OSError) as e:
            echo.reserve(8)
        assert e.value.errno == errno.EBUSY
        with pytest.raises(OSError):
            echo.send(b"x")
        buf[:] = b"12345678"
    assert echo.recv(timeout=30) == b"12345678"


def test_peek_echo_zero_copy_both_ways(channel_to):
    """The peer echoes with peek + send(buf): ring to ring."""
    ch, p = channel_to("echo", "peek")
    for i in range(200):
        with ch.reserve(1 + i * 37) as buf:
            buf[:] = payload(i, len(buf))
        with ch.peek(timeout=30) as buf:
            assert buf == payload(i, 1 + i * 37)
    ch.close()
    p.expect(0)


# --- peek_many: a run of messages, zero copy, one release -------------------


def ring_ranges():
    """The address ranges of the evshm rings this process has mapped."""
    with open("/proc/self/maps") as f:
        return [tuple(int(x, 16) for x in line.split()[0].split("-"))
                for line in f if "memfd:evshm" in line]


def address(view):
    a = np.frombuffer(view, dtype=np.uint8)
    try:
        return a.__array_interface__["data"][0]
    finally:
        del a


def test_peek_many(channel_to):
    """A backlog comes as lists of at most max read-only views, in order,
    each a view of the ring itself; all released when the block ends (the
    counters move then, not before), and unusable after."""
    ch, p = channel_to("send", 100, 100)
    p.expect(0)  # all 100 are in the ring now
    with pytest.raises(ValueError):
        ch.peek_many(0)
    rings = ring_ranges()
    got, sizes = [], []
    while len(got) < 100:
        before = ch.stats().msgs_recv
        run = ch.peek_many(16, timeout=30)
        assert type(run) is evshm.MessageRun
        with run as views:
            assert type(views) is list and len(views) == len(run)
            assert all(isinstance(v, memoryview) and v.readonly for v in views)
            with pytest.raises(TypeError):
                views[0][0] = 1
            for v in views:
                assert any(lo <= address(v) and address(v) + len(v) <= hi
                           for lo, hi in rings), "not a view of a ring"
            a, b = (np.frombuffer(views[-1], dtype=np.uint8) for _ in range(2))
            assert np.shares_memory(a, b) and not a.flags.owndata
            del a, b
            assert ch.stats().msgs_recv == before  # nothing released yet
            assert run.nbytes == 100 * len(views)
            got += [bytes(v) for v in views]
            sizes.append(len(views))
        assert ch.stats().msgs_recv == before + len(views)
        for v in views:
            with pytest.raises(ValueError):
                v[0]
        with pytest.raises(ValueError):
            run.__enter__()
    assert got == [payload(i, 100) for i in range(100)]
    assert sizes == [16] * 6 + [4]
    with pytest.raises(BrokenPipeError):
        ch.peek_many()


def test_peek_many_waits_like_peek(echo):
    """The first message waits as peek() does; timeout 0 with nothing
    there raises BlockingIOError."""
    ch = echo
    with pytest.raises(BlockingIOError):
        ch.peek_many(timeout=0)
    with pytest.raises(TimeoutError):
        ch.peek_many(timeout=0.05)
    ch.send(b"one")
    with ch.peek_many(timeout=30) as views:  # waits for the echo
        assert [bytes(v) for v in views] == [b"one"]
    with pytest.raises(BlockingIOError):
        ch.peek_many(timeout=0)


def test_peek_many_stops_at_64_kib(channel_to):
    """A run stops once it holds 64 KiB, as a recv_many list does."""
    ch, p = channel_to("send", 20, 8192)
    p.expect(0)
    got, sizes = [], []
    while len(got) < 20:
        with ch.peek_many(timeout=30) as views:
            got += [bytes(v) for v in views]
            sizes.append(len(views))
    assert got == [payload(i, 8192) for i in range(20)]
    assert sizes == [8, 8, 4]


def test_peek_many_view_outliving_the_block(channel_to):
    """A view derived from any of the run's views (numpy, a slice, a
    buffer of the view itself) keeps the whole run unreleased: BufferError
    at the end of the block and on the next receive; the other views are
    released; once it is gone, the next receive releases the run and goes
    on after it."""
    import pickle
    ch, p = channel_to("send", 8, 64)
    p.expect(0)
    with pytest.raises(BufferError, match="outlive"):
        with ch.peek_many(3, timeout=30) as views:
            a = np.frombuffer(views[1], dtype=np.uint64)
    assert ch.stats().msgs_recv == 0  # not released
    assert (a == 1).all()  # still valid, never overwritten
    with pytest.raises(ValueError):
        views[0][0]  # the views nothing holds are released
    with pytest.raises(BufferError):
        ch.recv(timeout=30)
    with pytest.raises(BufferError):
        ch.peek_many(timeout=30)
    del a
    assert ch.recv(timeout=30) == payload(3, 64)
    assert ch.stats().msgs_recv == 4
    # A slice, and a buffer of the view itself.
    with pytest.raises(BufferError):
        with ch.peek_many(2, timeout=30) as views:
            s = views[0][8:16]
            pb = pickle.PickleBuffer(views[1])
    assert bytes(s) == payload(4, 8) and bytes(pb.raw()) == payload(5, 64)
    del s
    with pytest.raises(BufferError):
        ch.recv(timeout=30)
    del pb
    assert ch.recv(timeout=30) == payload(6, 64)


def test_peek_many_exception_in_the_block(channel_to):
    """An exception leaving the block propagates unchanged and the run is
    released; with a view still alive, it stays (no BufferError hides the
    exception) until the view goes."""
    ch, p = channel_to("send", 6, 64)
    p.expect(0)
    with pytest.raises(KeyError):
        with ch.peek_many(2, timeout=30) as views:
            raise KeyError("mine")
    assert ch.stats().msgs_recv == 2
    with pytest.raises(ValueError):
        views[0][0]
    with pytest.raises(KeyError):
        with ch.peek_many(2, timeout=30) as views:
            a = np.frombuffer(views[0], dtype=np.uint8)
            raise KeyError("mine, not a BufferError")
    assert ch.stats().msgs_recv == 2
    del a
    assert ch.recv_many(timeout=30) == [payload(i, 64) for i in range(4, 6)]


def test_peek_many_release_and_in_turn(channel_to):
    """release() in the block releases the run, every view with it; a new
    receive releases the run before it."""
    ch, p = channel_to("send", 5, 16)
    p.expect(0)
    run = ch.peek_many(2, timeout=30)
    views = run.__enter__()
    assert [bytes(v) for v in views] == [payload(i, 16) for i in range(2)]
    run.release()
    assert ch.stats().msgs_recv == 2
    with pytest.raises(ValueError):
        views[1][0]
    run = ch.peek_many(2, timeout=30)
    views = run.__enter__()
    assert [bytes(v) for v in views] == [payload(i, 16) for i in range(2, 4)]
    with ch.peek(timeout=30) as buf:  # releases the run first
        assert bytes(buf) == payload(4, 16)
    assert ch.stats().msgs_recv == 5
    with pytest.raises(ValueError):
        views[0][0]
    with pytest.raises(ValueError):
        run.__enter__()
    run.release()  # again: nothing to do
