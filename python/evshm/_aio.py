# SPDX-License-Identifier: MIT
"""asyncio support: Channel.arecv/arecv_many/asend, Listener.aaccept,
Subscriber.arecv/arecv_many, Publisher.asend/await_subscribers, ``async for``
on channels and subscribers.

Each call tries the non-blocking form (timeout 0) first.  A failure with
BlockingIOError arms the library's notification (see evshm_fd() in
evshm.h), so the coroutine then waits for the object's fileno() to poll
readable on the running loop and tries again; wakeups may be spurious.
No thread, no busy waiting.

Several coroutines may wait on one descriptor (arecv and asend of the same
channel): the loop watches it once and wakes them all.

A publisher's descriptor also polls readable while a subscriber is joining
or leaving: asend() and await_subscribers() serve them (Publisher.serve)
whenever they wake.
"""
import asyncio

# (loop, fd) -> futures waiting for fd to poll readable
_waiting = {}


def _wake(loop, fd):
    futs = _waiting.pop((loop, fd), ())
    loop.remove_reader(fd)
    for fut in futs:
        if not fut.done():
            fut.set_result(None)


def _closing(fd):
    """close() of the object whose fileno() is fd (called by it, before the
    descriptor goes): wake whoever waits for fd, on any loop, so that they
    retry and get ValueError rather than wait forever on a descriptor that
    is gone, and stop the loops watching fd, whose number a new descriptor
    may get."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    for key in [k for k in list(_waiting) if k[1] == fd]:  # list(): atomic
        loop = key[0]
        if loop is running:
            _wake(loop, fd)
            continue
        futs = _waiting.pop(key, None)
        if futs is not None and not loop.is_closed():
            # Another thread's loop: it wakes its waiters itself.
            loop.call_soon_threadsafe(_wake_these, loop, fd, futs)


def _wake_these(loop, fd, futs):
    if (loop, fd) not in _waiting:
        loop.remove_reader(fd)
    for fut in futs:
        if not fut.done():
            fut.set_result(None)


async def _readable(fd):
    loop = asyncio.get_running_loop()
    key = (loop, fd)
    fut = loop.create_future()
    futs = _waiting.get(key)
    if futs is None:
        futs = _waiting[key] = []
        loop.add_reader(fd, _wake, loop, fd)
    futs.append(fut)
    try:
        await fut
    finally:
        # Cancelled: stop watching if nobody else waits.
        if _waiting.get(key) is futs and fut in futs:
            futs.remove(fut)
            if not futs:
                del _waiting[key]
                loop.remove_reader(fd)


async def _retry(obj, call, *args):
    while True:
        try:
            return call(*args, timeout=0)
        except BlockingIOError:
            pass
        await _readable(obj.fileno())


async def arecv(ch):
    return await _retry(ch, ch.recv)


async def arecv_many(ch, max=None):
    return await _retry(ch, ch.recv_many, max)


async def asend(ep, data):
    if hasattr(ep, "serve"):  # a Publisher
        return await apublish(ep, data)
    return await _retry(ep, ep.send, data)


async def apublish(pub, data):
    while True:
        try:
            return pub.send(data, timeout=0)
        except BlockingIOError:
            pass
        await _readable(pub.fileno())
        pub.serve()


async def await_subscribers(pub, n=1):
    while True:
        count = pub.serve()
        if count >= n:
            return count
        await _readable(pub.fileno())


async def aaccept(listener):
    return await _retry(listener, listener.accept)


async def anext(ch):
    try:
        return await _retry(ch, ch.recv)
    except BrokenPipeError:
        raise StopAsyncIteration from None
