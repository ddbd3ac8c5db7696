# SPDX-License-Identifier: MIT
"""What the tests and their peer programs share: names, payloads, meeting."""
import itertools
import os
import time

import evshm

_names = itertools.count()


def unique_name(tag):
    """An abstract name no other test or run uses."""
    return f"@evshm-py-{os.getpid()}-{next(_names)}-{tag}"


def scale(n):
    """A count divided by EVSHM_TEST_SCALE (sanitizer/valgrind runs)."""
    return max(1, n // int(os.environ.get("EVSHM_TEST_SCALE", "1")))


def payload(i, size):
    """Message number i of size bytes: its number, repeated."""
    word = (i & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
    return (word * (size // 8 + 1))[:size]


def connect_retry(name, timeout=10.0, call=None, **opts):
    """connect() (or call: evshm.subscribe), waiting up to timeout s for
    somebody to listen (publish)."""
    end = time.monotonic() + timeout
    while True:
        try:
            return (call or evshm.connect)(name, timeout=timeout, **opts)
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > end:
                raise
            time.sleep(0.01)


def subscribe_retry(name, timeout=10.0, **opts):
    """subscribe(), waiting up to timeout s for somebody to publish."""
    return connect_retry(name, timeout, evshm.subscribe, **opts)


def others_run_while(call):
    """How far another thread counts while call() runs: the GIL is
    released while a call waits if that is in the thousands."""
    import threading
    count, stop = 0, threading.Event()

    def spin():
        nonlocal count
        while not stop.is_set():
            count += 1
    t = threading.Thread(target=spin)
    t.start()
    try:
        call()
        return count
    finally:
        stop.set()
        t.join()


def subscribe_here(pub, n=1, **opts):
    """n subscribers of pub in this process.  Subscribing waits for the
    publisher's handshake: each subscribes in a thread while this one
    serves."""
    from concurrent.futures import ThreadPoolExecutor
    want = pub.stats().subscribers + n
    with ThreadPoolExecutor(n) as pool:
        futs = [pool.submit(evshm.subscribe, pub.name, timeout=10, **opts)
                for _ in range(n)]
        pub.wait_subscribers(want, timeout=10)
        return [f.result(10) for f in futs]


def connect_in_thread(name, call=None, **opts):
    """connect() (or call: evshm.subscribe) in another thread while this
    one accepts or serves: a future."""
    from concurrent.futures import ThreadPoolExecutor
    pool = ThreadPoolExecutor(1)
    fut = pool.submit(call or evshm.connect, name, timeout=10, **opts)
    pool.shutdown(wait=False)
    return fut
