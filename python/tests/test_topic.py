# SPDX-License-Identifier: MIT
"""Topics: one publisher, subscribers in other processes (subprocess) and
in this one; fan-out, policies (reliable: stalls dropped; latest: losses
counted, nothing torn), history, counters, zero copy, the errors that
belong to topics."""
import errno
import gc
import os
import select
import signal
import threading
import time

import numpy as np
import pytest

import evshm
from evtest import (connect_in_thread, others_run_while, payload, scale,
                    subscribe_here, subscribe_retry, unique_name)


def numbered(i, size=64):
    return payload(i, size)


def test_fan_out_to_python_subscribers(peer):
    """Each of three subscriber processes gets every message, in order."""
    n, size = scale(20_000), 256
    with evshm.publish(unique_name("fan"), ring_size=1 << 18,
                       stall_timeout_ms=30_000) as pub:
        procs = [peer("subscriber", pub.name, size) for _ in range(3)]
        assert pub.wait_subscribers(3, timeout=30) == 3
        for p in procs:
            p.wait_ready()
        for i in range(n):
            pub.send(numbered(i, size))
        pub.send(b"")
        for p in procs:
            assert p.line(30) == f"got {n} lost 0 first 0"
            p.expect(0)
        st = pub.stats()
        assert (st.msgs_sent, st.bytes_sent) == (n + 1, n * size)
        assert st.joined == 3 and st.dropped == 0
        # They left; serving notices it.
        end = time.monotonic() + 10
        while pub.serve(timeout=0.1) and time.monotonic() < end:
            pass
        assert pub.stats().left == 3 and pub.subscribers() == []


def test_python_publisher_process(peer):
    """The other way: a publisher process, a subscriber here, and the
    publisher's departure ends the iteration after everything it sent."""
    name = unique_name("pubproc")
    p = peer("publisher", name, 1, 5000, 100).wait_ready()
    sub = subscribe_retry(name)
    assert sub.policy == evshm.RELIABLE
    assert sub.peer_cred() == (p.pid, os.getuid(), os.getgid())
    got = [m for m in sub]  # until the publisher has gone
    assert got == [numbered(i, 100) for i in range(5000)] + [b""]
    with pytest.raises(BrokenPipeError):
        sub.recv(timeout=0)
    p.expect(0)
    assert sub.stats().msgs_recv == 5001
    sub.close()


def test_subscribers_list_and_counters():
    with evshm.publish(unique_name("info")) as pub:
        a, b = subscribe_here(pub, 2)
        for i in range(10):
            pub.send(numbered(i, 100))
        for _ in range(10):
            a.recv(timeout=10)
        for _ in range(4):
            b.recv(timeout=10)
        info = sorted(pub.subscribers(), key=lambda s: -s.msgs_recv)
        assert all(isinstance(s, evshm.SubscriberInfo) for s in info)
        assert [(s.pid, s.uid, s.gid) for s in info] == \
            [(os.getpid(), os.getuid(), os.getgid())] * 2
        assert [(s.msgs_recv, s.bytes_recv, s.lag, s.lost) for s in info] == \
            [(10, 1000, 0, 0), (4, 400, 6, 0)]
        assert isinstance(info[0].asleep, bool)
        st = pub.stats()
        assert isinstance(st, evshm.PublisherStats)
        assert (st.msgs_sent, st.subscribers, st.joined) == (10, 2, 2)
        sst = b.stats()
        assert (sst.msgs_recv, sst.bytes_recv, sst.msgs_sent, sst.lost) == (4, 400, 0, 0)
        a.close()
        b.close()


def test_latest_counts_what_it_loses():
    """Latest: the publisher never waits; a subscriber that fell behind
    gets intact messages, in order, and counts the rest as lost."""
    n, size = scale(5000), 1000
    with evshm.publish(unique_name("latest"), policy="latest",
                       ring_size=1 << 16) as pub:
        assert pub.policy == evshm.LATEST
        (sub,) = subscribe_here(pub)
        assert sub.policy == evshm.LATEST
        for i in range(n):
            pub.send(numbered(i, size), timeout=0)  # never waits
        pub.send(b"")
        got = []
        for msg in sub:
            if not msg:
                break
            got.append(int.from_bytes(msg[:8], "little"))
            assert msg == numbered(got[-1], size)  # never torn
        assert got == sorted(got) and got[-1] == n - 1
        assert 0 < sub.lost < n
        assert len(got) + 1 + sub.lost == n + 1  # each one: read or lost
        assert sub.stats().lost == sub.lost
        assert pub.subscribers()[0].lost == sub.lost
        sub.close()


def test_recv_many_reliable_and_latest():
    """recv_many on topics: reliable delivers everything in order, in
    lists of at most max; latest delivers intact messages in order and
    counts the rest lost, each one read or lost exactly once."""
    with evshm.publish(unique_name("many"), ring_size=1 << 20) as pub:
        (sub,) = subscribe_here(pub)
        for i in range(500):
            pub.send(numbered(i, 200))
        got, sizes = [], []
        while len(got) < 500:
            batch = sub.recv_many(100, timeout=10)
            sizes.append(len(batch))
            got += batch
        assert got == [numbered(i, 200) for i in range(500)]
        assert sizes == [100] * 5
        assert sub.stats().msgs_recv == 500
        with pytest.raises(BlockingIOError):
            sub.recv_many(timeout=0)
        # A list stops once it holds 64 KiB: 16 messages of 4 KiB.
        for i in range(100):
            pub.send(numbered(i, 4096))
        got, sizes = [], []
        while len(got) < 100:
            batch = sub.recv_many(timeout=10)
            sizes.append(len(batch))
            got += batch
        assert got == [numbered(i, 4096) for i in range(100)]
        assert sizes == [16] * 6 + [4]
        sub.close()
    n, size = scale(5000), 1000
    with evshm.publish(unique_name("many-latest"), policy="latest",
                       ring_size=1 << 16) as pub:
        (sub,) = subscribe_here(pub)
        for i in range(n):
            pub.send(numbered(i, size), timeout=0)
        pub.send(b"")
        got, done = [], False
        while not done:
            for msg in sub.recv_many(timeout=10):
                if not msg:
                    done = True
                    break
                got.append(int.from_bytes(msg[:8], "little"))
                assert msg == numbered(got[-1], size)  # never torn
        assert got == sorted(got) and got[-1] == n - 1
        assert 0 < sub.lost < n
        assert len(got) + sub.lost == n
        sub.close()


def test_latest_peek_overwritten_raises_estale():
    with evshm.publish(unique_name("stale"), policy="latest",
                       ring_size=1 << 12) as pub:
        (sub,) = subscribe_here(pub)
        pub.send(b"first")
        with pytest.raises(OSError) as e:
            with sub.peek(timeout=10) as buf:
                assert bytes(buf) == b"first"
                for i in range(100):  # laps the ring many times
                    pub.send(numbered(i, 1000))
        assert e.value.errno == errno.ESTALE
        # recv() never delivers what was overwritten: the newest survive.
        got = sub.recv(timeout=10)
        assert got == numbered(int.from_bytes(got[:8], "little"), 1000)
        assert sub.lost > 0
        sub.close()


def test_peek_many_reliable():
    """peek_many on a reliable topic: views of the publisher's ring, in
    order, at most max, released together at the end of the block."""
    with evshm.publish(unique_name("pmany"), ring_size=1 << 20) as pub:
        (sub,) = subscribe_here(pub)
        for i in range(50):
            pub.send(numbered(i, 200))
        got, sizes = [], []
        while len(got) < 50:
            with sub.peek_many(20, timeout=10) as views:
                assert all(v.readonly for v in views)
                assert sub.stats().msgs_recv == len(got)
                got += [bytes(v) for v in views]
                sizes.append(len(views))
            with pytest.raises(ValueError):
                views[0][0]
        assert got == [numbered(i, 200) for i in range(50)]
        assert sizes == [20, 20, 10]
        assert sub.stats().msgs_recv == 50
        assert pub.subscribers()[0].lag == 0
        with pytest.raises(BlockingIOError):
            sub.peek_many(timeout=0)
        # An exception in the block releases the run.
        for i in range(3):
            pub.send(numbered(i))
        with pytest.raises(KeyError):
            with sub.peek_many(timeout=10) as views:
                raise KeyError
        assert sub.stats().msgs_recv == 53
        sub.close()


def test_latest_peek_many_overwritten_raises_estale():
    """Latest: a run the publisher overwrote (any of it) while its block
    ran raises ESTALE at the end of the block, its views released; one
    left alone does not; recv then delivers only intact messages."""
    with evshm.publish(unique_name("mstale"), policy="latest",
                       ring_size=1 << 12) as pub:
        (sub,) = subscribe_here(pub)
        for i in range(3):
            pub.send(numbered(i, 100))
        with sub.peek_many(timeout=10) as views:
            assert [bytes(v) for v in views] == [numbered(i, 100) for i in range(3)]
        for i in range(3):
            pub.send(numbered(i, 100))
        with pytest.raises(OSError) as e:
            with sub.peek_many(timeout=10) as views:
                assert [bytes(v) for v in views] == \
                    [numbered(i, 100) for i in range(3)]
                for i in range(100):  # laps the ring many times
                    pub.send(numbered(i, 1000))
        assert e.value.errno == errno.ESTALE
        with pytest.raises(ValueError):
            views[2][0]
        got = sub.recv(timeout=10)
        assert got == numbered(int.from_bytes(got[:8], "little"), 1000)
        assert sub.lost > 0
        sub.close()


def test_reliable_drops_a_stalled_subscriber():
    """A subscriber that reads nothing holds a reliable publisher up for
    stall_timeout_ms, then is dropped: the publisher goes on, the
    subscriber reads what it still can, then ConnectionAbortedError."""
    with evshm.publish(unique_name("stall"), ring_size=1 << 12,
                       stall_timeout_ms=200) as pub:
        (sub,) = subscribe_here(pub)
        sent = 0
        with pytest.raises(BlockingIOError):
            while True:
                pub.send(numbered(sent, 100), timeout=0)
                sent += 1
        t0 = time.monotonic()
        pub.send(numbered(sent, 100), timeout=10)  # drops it, within 10 s
        assert time.monotonic() - t0 < 9
        assert pub.stats().dropped == 1
        with pytest.raises(ConnectionAbortedError):
            for _ in range(sent + 2):
                sub.recv(timeout=10)
        sub.close()


def test_history():
    with evshm.publish(unique_name("hist")) as pub:
        for i in range(10):
            pub.send(numbered(i))
        (late,) = subscribe_here(pub, history=4)
        (now,) = subscribe_here(pub)
        pub.send(numbered(10))
        assert [late.recv(timeout=10) for _ in range(5)] == \
            [numbered(i) for i in range(6, 11)]
        assert now.recv(timeout=10) == numbered(10)
        with pytest.raises(BlockingIOError):
            now.recv(timeout=0)
        late.close()
        now.close()


def test_zero_copy_both_ends():
    """reserve() on the publisher, peek() on the subscriber: a numpy view of
    the one ring both map; recv_into; the message stays for every
    subscriber."""
    frame = (480, 640, 3)
    with evshm.publish(unique_name("zc"), ring_size=1 << 22) as pub:
        a, b = subscribe_here(pub, 2)
        with pub.reserve(int(np.prod(frame))) as buf:
            img = np.frombuffer(buf, np.uint8).reshape(frame)
            img[:] = 7
            img[:, 5] = 255
            del img
        with a.peek(timeout=10) as buf:
            assert buf.readonly
            img = np.frombuffer(buf, np.uint8).reshape(frame)
            assert not img.flags.owndata and not img.flags.writeable
            assert img[0, 0, 0] == 7 and (img[:, 5] == 255).all()
            del img
        with pytest.raises(ValueError):
            buf[0]  # released
        into = bytearray(int(np.prod(frame)))
        assert b.recv_into(into, timeout=10) == len(into)
        assert into[0] == 7
        # An exception in the block publishes nothing; commit(k) k bytes.
        with pytest.raises(KeyError):
            with pub.reserve(100) as buf:
                raise KeyError
        with pub.reserve(100) as buf:
            buf[:2] = b"ok"
            pub.commit(2)
        assert a.recv(timeout=10) == b"ok"
        assert b.recv(timeout=10) == b"ok"
        a.close()
        b.close()


def test_topic_errors(peer):
    name = unique_name("terr")
    with pytest.raises((FileNotFoundError, ConnectionRefusedError)):
        evshm.subscribe(name, timeout=1)
    with pytest.raises(ValueError, match="policy"):
        evshm.publish(name, policy="fastest")
    with pytest.raises(TypeError, match="an option of subscribe"):
        evshm.publish(name, history=3)
    with pytest.raises(TypeError, match="an option of publish"):
        evshm.subscribe(name, policy="latest")
    with evshm.publish(name, max_clients=1) as pub:
        with pytest.raises(OSError) as e:
            evshm.publish(name)
        assert e.value.errno == errno.EADDRINUSE
        (sub,) = subscribe_here(pub)
        got, _ = subscribe_while_serving(pub)  # the second of max_clients=1
        assert got.errno == errno.EUSERS
        with pytest.raises(OSError) as e:
            pub.send(b"x" * (pub.max_msg + 1))
        assert e.value.errno == errno.EMSGSIZE
        with pub.reserve(8):
            with pytest.raises(OSError) as e:
                pub.send(b"x")
            assert e.value.errno == errno.EBUSY
        sub.close()
    # A topic is not a channel, and the other way round.
    with evshm.publish(name) as pub:
        fut = connect_in_thread(name)
        while not fut.done():
            pub.serve(timeout=0.05)
        assert fut.exception().errno == errno.EPROTOTYPE
    with evshm.listen(name) as listener:
        fut = connect_in_thread(name, evshm.subscribe)
        with pytest.raises(ConnectionResetError):  # the client hung up
            listener.accept(timeout=10)
        assert fut.exception(10).errno == errno.EPROTOTYPE


def subscribe_while_serving(pub, **opts):
    """Subscribe from a thread while this one serves: (what subscribe()
    returned or raised, what serve() raised or None)."""
    out, raised = [], None

    def sub():
        try:
            out.append(evshm.subscribe(pub.name, timeout=10, **opts))
        except Exception as e:  # noqa: BLE001 - returned and checked
            out.append(e)
    t = threading.Thread(target=sub)
    t.start()
    while t.is_alive():
        try:
            pub.serve(timeout=0.05)
        except Exception as e:  # noqa: BLE001 - returned and checked
            raised = e
    t.join()
    return out[0], raised


def test_authorize_subscribers():
    """A publisher's authorize refuses with False (PermissionError for the
    subscriber, nothing for the publisher: a refused subscriber is not its
    error); an exception it raises refuses too, and comes out of serve()."""
    seen = []

    def policy(pid, uid, gid):
        seen.append(pid)
        if len(seen) == 2:
            raise LookupError("policy failed")
        return len(seen) == 3
    with evshm.publish(unique_name("pauth"), authorize=policy) as pub:
        got, raised = subscribe_while_serving(pub)
        assert isinstance(got, PermissionError) and raised is None
        got, raised = subscribe_while_serving(pub)
        assert isinstance(got, PermissionError) and isinstance(raised, LookupError)
        got, raised = subscribe_while_serving(pub)
        assert isinstance(got, evshm.Subscriber) and raised is None
        assert seen == [os.getpid()] * 3
        assert pub.stats().subscribers == 1
        got.close()
    # The subscriber's own policy: a publisher it refuses.
    with evshm.publish(unique_name("sauth")) as pub:
        got, _ = subscribe_while_serving(pub, authorize=lambda *cred: False)
        assert isinstance(got, PermissionError)


def test_publisher_death(peer):
    """A killed publisher: what it published is still read, then
    BrokenPipeError; its departure wakes a waiting recv at once."""
    name = unique_name("pdeath")
    p = peer("publisher", name, 1, 100, 64).wait_ready()
    sub = subscribe_retry(name)
    assert sub.recv(timeout=30) == numbered(0)
    os.kill(p.pid, 9)
    p.wait()
    with pytest.raises(BrokenPipeError):
        while True:
            sub.recv(timeout=30)
    sub.close()


def test_subscriber_death(peer):
    with evshm.publish(unique_name("sdeath")) as pub:
        p = peer("subscriber", pub.name, 64)
        pub.wait_subscribers(1, timeout=30)
        p.wait_ready()
        os.kill(p.pid, 9)
        p.wait()
        t0 = time.monotonic()
        while pub.serve(timeout=1) and time.monotonic() - t0 < 10:
            pass
        assert pub.stats().left == 1 and not pub.subscribers()
        pub.send(b"to nobody")  # fine: a late joiner may get it as history


def inside(call):
    """Wait (up to 10 s) until another thread is inside a blocking call on
    the object whose quick call this is: then call raises RuntimeError (a
    quick call only looks; it never takes the object)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        try:
            call()
        except RuntimeError:
            return
        time.sleep(0.001)
    pytest.fail("the other thread never got into its call")


def test_one_thread_at_a_time():
    """A second thread on a busy publisher or subscriber: RuntimeError.
    The other thread's call has no short timeout to run out first on a
    busy machine: what the test does next ends it."""
    with evshm.publish(unique_name("busy")) as pub:
        (sub,) = subscribe_here(pub)
        t = threading.Thread(target=pub.serve, kwargs={"timeout": 30})
        t.start()
        inside(pub.stats)
        with pytest.raises(RuntimeError, match="another thread"):
            pub.send(b"x")
        with pytest.raises(RuntimeError):
            pub.stats()
        late = evshm.subscribe(pub.name, timeout=10)  # serve() admits it
        t.join()
        late.close()
        got = []
        t = threading.Thread(target=lambda: got.append(sub.recv(timeout=30)))
        t.start()
        inside(sub.stats)
        for call in (sub.recv, sub.stats, sub.fileno, lambda: sub.lost):
            with pytest.raises(RuntimeError, match="another thread"):
                call()
        pub.send(b"the end of its wait")
        t.join()
        assert got == [b"the end of its wait"]
        sub.close()
        for call in (sub.recv, sub.stats, sub.fileno, lambda: sub.lost, sub.peek,
                     sub.peek_many):
            with pytest.raises(ValueError):
                call()
    for call in (pub.serve, lambda: pub.send(b""), pub.subscribers, pub.stats,
                 pub.fileno, lambda: pub.reserve(1)):
        with pytest.raises(ValueError):
            call()


def test_timeouts_and_threads():
    """None waits, 0 never waits, a float is seconds; other threads run
    while a call waits (the GIL is released)."""
    with evshm.publish(unique_name("tmo"), ring_size=1 << 12) as pub:
        with pytest.raises(BlockingIOError):
            pub.wait_subscribers(1, timeout=0)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            pub.wait_subscribers(1, timeout=0.1)
        assert time.monotonic() - t0 >= 0.1
        t0 = time.monotonic()
        assert pub.serve(timeout=0.1) == 0  # nobody: the count, no error
        assert time.monotonic() - t0 >= 0.1
        assert pub.serve() == 0  # default 0: never waits
        (sub,) = subscribe_here(pub)
        with sub:
            with pytest.raises(BlockingIOError):
                sub.recv(timeout=0)
            with pytest.raises(BlockingIOError):
                sub.peek(timeout=0)
            t0 = time.monotonic()
            assert others_run_while(lambda: pytest.raises(
                TimeoutError, sub.recv, timeout=0.3)) > 1000
            assert time.monotonic() - t0 >= 0.3
            with pytest.raises(BlockingIOError):
                while True:
                    pub.send(b"x" * 100, timeout=0)
            with pytest.raises(TimeoutError):
                pub.send(b"x" * 100, timeout=0.05)
            # None: waits until another thread makes room.
            threading.Timer(0.2, lambda: [sub.recv() for _ in range(5)]).start()
            pub.send(b"y" * 100, timeout=None)


def test_close_with_live_views():
    """A subscriber closed while a numpy view of the publisher's ring
    lives: the view stays readable (still mapped) until it goes; then the
    mapping goes too.  The same for a publisher's reservation."""
    def mapped():
        with open("/proc/self/maps") as f:
            return sum("memfd:evshm" in line for line in f)
    with evshm.publish(unique_name("zclose")) as pub:
        (sub,) = subscribe_here(pub)
        pub.send(numbered(5, 4096))
        msg = sub.peek(timeout=10)
        a = np.frombuffer(msg.__enter__(), np.uint64)
        before = mapped()
        sub.close()
        assert sub.closed and mapped() == before
        assert (a == 5).all()
        with pytest.raises(ValueError):
            sub.recv(timeout=0)
        del a, msg
        gc.collect()
        assert mapped() < before
        r = pub.reserve(64)
        w = np.frombuffer(r.__enter__(), np.uint8)
        before = mapped()
        pub.close()
        w[:] = 1  # still mapped, and sent to nobody
        assert mapped() == before
        del w, r
        gc.collect()
        assert mapped() < before


def test_latest_overwritten_in_a_row_nonblocking(spawn, build_dir):
    """A latest publisher (built from the C internals, tests/) that
    overwrites every message we peek before we release it, on our cue:
    with timeout 0 the library gives up after a bounded number in a row
    (BlockingIOError), although a message is always there, and the
    descriptor then polls readable; recv(timeout=0), which drops what was
    overwritten and tries the next, is bounded by the same rule.  Then the
    last message comes; every message is received or counted lost."""
    exe = os.path.join(build_dir, "tests", "peer_topic_hostile")
    if not os.path.exists(exe):
        pytest.skip("no C test peers in the build tree")
    name = unique_name("cue")
    p = spawn(exe, "pub", name, "stale-cue")
    assert p.line() == "listening"
    sub = evshm.subscribe(name, timeout=10)
    try:
        overwritten_in_a_row(sub, p)
    finally:
        sub.close()
    p.expect(0)


def overwritten_in_a_row(sub, p):
    fd = sub.fileno()

    def cue(sig, says):
        os.kill(p.pid, sig)
        assert p.line(30) == says

    rounds = tries = 0
    while rounds < 3:
        tries += 1
        assert tries < 100
        n = 0
        while n < 200:
            try:
                msg = sub.peek(timeout=0)
            except BlockingIOError:
                break
            with pytest.raises(OSError) as e:
                with msg:
                    cue(signal.SIGUSR1, "moved")
            assert e.value.errno == errno.ESTALE
            n += 1
        assert n <= 32, f"peek(timeout=0) went on after {n} overwritten"
        rounds += n > 0
        r, _, _ = select.select([fd], [], [], 5)
        assert r, "no wakeup in 5 s after BlockingIOError"
    cue(signal.SIGUSR2, "last")
    got = 0
    while True:
        try:
            msg = sub.recv(timeout=0)
        except BlockingIOError:
            r, _, _ = select.select([fd], [], [], 5)
            assert r, "no wakeup in 5 s for the last message"
            continue
        got += 1
        seq = int.from_bytes(msg[:8], "little")
        assert msg[-8:] == msg[:8]  # never torn
        if msg[8:12] == b"last":
            break
    assert got + sub.lost == seq
