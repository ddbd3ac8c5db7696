# SPDX-License-Identifier: MIT
"""Zero copy: peek and reserve, numpy views, and the lifetime rules: a
view is never left pointing at released or unmapped memory."""
import errno
import gc

import numpy as np
import pytest

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
