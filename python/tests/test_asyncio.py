# SPDX-License-Identifier: MIT
"""asyncio: aaccept, arecv, asend and async for, on the loop's reader for
fileno(); no busy waiting, cancellation, peer death."""
import asyncio
import os
import time

import pytest

import evshm
from evtest import payload, subscribe_here, subscribe_retry, unique_name


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def accepted(peer, role, *args):
    """Listen, start the peer role there, aaccept: (channel, peer)."""
    with evshm.listen(unique_name(role)) as listener:
        p = peer(role, listener.name, *args)
        return await listener.aaccept(), p


def test_aaccept_arecv_asend(peer):
    async def main():
        ch, p = await accepted(peer, "echo")
        n, size = 300, 64 << 10  # 19 MiB through 1 MiB rings: both wait

        async def produce():
            for i in range(n):
                await ch.asend(payload(i, size))

        async def consume():
            for i in range(n):
                assert await ch.arecv() == payload(i, size)
        await asyncio.gather(produce(), consume())
        st = ch.stats()
        ch.close()
        return p, st
    p, st = run(main())
    p.expect(0)
    assert st.msgs_sent == st.msgs_recv == 300


def test_async_for(peer):
    async def main():
        ch, p = await accepted(peer, "send", 500, 32)
        got = [m async for m in ch]
        ch.close()
        return p, got
    p, got = run(main())
    p.expect(0)
    assert got == [payload(i, 32) for i in range(500)]


def test_idle_wait_does_not_spin(peer):
    async def main():
        ch, p = await accepted(peer, "hold")
        cpu = time.process_time()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ch.arecv(), 1.0)
        cpu = time.process_time() - cpu
        # Cancelled cleanly: the loop no longer watches the descriptor...
        assert not asyncio.get_running_loop().remove_reader(ch.fileno())
        # ...and the channel still works.
        with pytest.raises(BlockingIOError):
            ch.recv(timeout=0)
        ch.close()
        return cpu
    assert run(main()) < 0.5  # a busy loop would burn the whole second


def test_peer_death_wakes_arecv(peer):
    async def main():
        ch, p = await accepted(peer, "hold")
        p.wait_ready()
        asyncio.get_running_loop().call_later(0.2, os.kill, p.pid, 9)
        with pytest.raises(BrokenPipeError):
            await ch.arecv()
        ch.close()
    run(main())


def test_many_channels_one_loop(peer):
    async def main():
        name = unique_name("amany")
        procs, chans = [], []
        with evshm.listen(name) as listener:
            for _ in range(4):
                procs.append(peer("echo", name))
                chans.append(await listener.aaccept())

        async def talk(ch, k):
            for i in range(200):
                await ch.asend(payload(k * 1000 + i, 100))
                assert await ch.arecv() == payload(k * 1000 + i, 100)
            ch.close()
        await asyncio.gather(*(talk(ch, k) for k, ch in enumerate(chans)))
        return procs
    for p in run(main()):
        p.expect(0)


# --- topics ---------------------------------------------------------------------


def test_arecv_many(peer):
    """arecv_many on a channel and on a subscriber: lists until the peer
    has gone, everything in order."""
    async def main():
        ch, p = await accepted(peer, "send", 2000, 48)
        got = []
        while True:
            try:
                got += await ch.arecv_many(32)
            except BrokenPipeError:
                break
        ch.close()
        name = unique_name("amany")
        q = peer("publisher", name, 1, 3000, 256)
        sub = subscribe_retry(name)
        tgot = []
        while not tgot or tgot[-1] != b"":
            batch = await sub.arecv_many()
            assert 1 <= len(batch) <= 64
            tgot += batch
        sub.close()
        return p, got, q, tgot
    p, got, q, tgot = run(main())
    p.expect(0)
    q.expect(0)
    assert got == [payload(i, 48) for i in range(2000)]
    assert tgot == [payload(i, 256) for i in range(3000)] + [b""]


def test_subscriber_arecv_and_async_for(peer):
    async def main():
        name = unique_name("asub")
        p = peer("publisher", name, 1, 3000, 64 << 10)
        sub = subscribe_retry(name)
        first = await sub.arecv()
        rest = [m async for m in sub]  # until the publisher has gone
        sub.close()
        return p, [first] + rest
    p, got = run(main())
    p.expect(0)
    assert got == [payload(i, 64 << 10) for i in range(3000)] + [b""]


def test_publisher_asend_and_await_subscribers(peer):
    """A reliable publisher on the loop: await_subscribers, then asend
    through a ring much smaller than the stream (it must wait on
    fileno() for room)."""
    async def main():
        n, size = 2000, 1000
        with evshm.publish(unique_name("apub"), ring_size=1 << 14) as pub:
            procs = [peer("subscriber", pub.name, size) for _ in range(2)]
            assert await pub.await_subscribers(2) == 2
            for i in range(n):
                await pub.asend(payload(i, size))
            await pub.asend(b"")
            st = pub.stats()
        return procs, st
    procs, st = run(main())
    for p in procs:
        assert p.line() == "ready"
        assert p.line() == "got 2000 lost 0 first 0"
        p.expect(0)
    assert st.msgs_sent == 2001 and st.dropped == 0


def test_idle_topic_waits_do_not_spin():
    """arecv with nothing published, and asend blocked by a subscriber that
    does not read: both wait on the loop, no busy waiting."""
    async def main():
        with evshm.publish(unique_name("aidle"), ring_size=1 << 12,
                           stall_timeout_ms=10_000) as pub:
            (sub,) = await asyncio.to_thread(subscribe_here, pub)
            cpu = time.process_time()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(sub.arecv(), 0.5)
            with pytest.raises(BlockingIOError):
                while True:
                    pub.send(b"x" * 100, timeout=0)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(pub.asend(b"y"), 0.5)
            cpu = time.process_time() - cpu
            # The subscriber reads: the blocked publish goes through.
            loop = asyncio.get_running_loop()
            loop.call_later(0.1, lambda: [sub.recv(timeout=0) for _ in range(3)])
            await asyncio.wait_for(pub.asend(b"z"), 10)
            sub.close()
        return cpu
    assert run(main()) < 0.5  # a busy loop would burn the whole second


# --- close() while a coroutine waits ------------------------------------------------


def test_close_wakes_a_waiting_arecv(peer):
    """close() while arecv() waits on the loop: the waiter gets ValueError
    at once (not a wait forever on a descriptor that is gone), and the loop
    no longer watches that descriptor number, which a new object may get."""
    async def main():
        ch, p = await accepted(peer, "hold")
        p.wait_ready()
        fd = ch.fileno()
        waiters = [asyncio.create_task(ch.arecv()) for _ in range(2)]
        await asyncio.sleep(0.1)
        ch.close()
        for t in waiters:
            with pytest.raises(ValueError):
                await asyncio.wait_for(t, 10)
        assert not asyncio.get_running_loop().remove_reader(fd)
    run(main())


def test_close_wakes_a_waiting_aaccept():
    async def main():
        with evshm.listen(unique_name("aclose")) as listener:
            fd = listener.fileno()
            t = asyncio.create_task(listener.aaccept())
            await asyncio.sleep(0.1)
        with pytest.raises(ValueError):
            await asyncio.wait_for(t, 10)
        assert not asyncio.get_running_loop().remove_reader(fd)
    run(main())


def test_close_wakes_a_waiting_subscriber_and_publisher():
    async def main():
        with evshm.publish(unique_name("aclosetopic")) as pub:
            (sub,) = await asyncio.to_thread(subscribe_here, pub)
            waiting = [asyncio.create_task(sub.arecv()),
                       asyncio.create_task(pub.await_subscribers(2))]
            await asyncio.sleep(0.1)
            sub.close()
            pub.close()
            for t in waiting:
                with pytest.raises(ValueError):
                    await asyncio.wait_for(t, 10)
    run(main())


def test_close_from_another_thread_wakes_its_loop(peer):
    """The loop runs in another thread; close() here wakes its waiter."""
    import threading
    ch, p = asyncio.run(accepted(peer, "hold"))
    p.wait_ready()
    waiting, got = threading.Event(), []

    async def wait_there():
        asyncio.get_running_loop().call_later(0.1, waiting.set)
        try:
            await ch.arecv()
        except ValueError as e:
            got.append(e)
    # A daemon: a waiter never woken must fail the test, not hang it.
    t = threading.Thread(target=asyncio.run, args=(wait_there(),), daemon=True)
    t.start()
    assert waiting.wait(10)
    ch.close()
    t.join(30)  # generous: valgrind, a loaded machine
    assert not t.is_alive() and len(got) == 1
