#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Receiving a backlog: what a receive costs from Python when the receiver
is the slower side (a data loader that falls behind its producer).

    python3 python/bench_drain.py [SIZE ...]      (default: 64 1024 4096)

For each size, seven times in turn for recv() and recv_many(): a publisher
in this process fills its 16 MiB ring with up to 100,000 messages (12 MiB
at most, so it never waits), then its subscriber (a thread of this
process, subscribed once) drains them with recv() one at a time or with
recv_many() lists of up to 64, looking at each message in turn.  Prints the cost per message, median
[min-max] of the 7 drains, and the per-run speed-up of recv_many over
recv.  Pin it for steadier figures: taskset -c 1 python3 ...
"""
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

# Not the source package beside this script: the built one (PYTHONPATH).
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]
import evshm  # noqa: E402

RUNS = 7


def drain(sub, n, many):
    got = 0
    t = time.perf_counter()
    if many:
        while got < n:
            for m in sub.recv_many():  # as a consumer would: each message
                got += 1
    else:
        while got < n:
            m = sub.recv()
            got += 1
    return (time.perf_counter() - t) / n * 1e9


def one_size(size):
    n = min(100000, (12 << 20) // (size + 16))
    msg = bytes(size)
    cost = {False: [], True: []}
    name = f"@evshm-bench-drain-{os.getpid()}-{size}"
    with evshm.publish(name, ring_size=16 << 20) as pub:
        with ThreadPoolExecutor(1) as pool:
            fut = pool.submit(evshm.subscribe, name, timeout=10)
            pub.wait_subscribers(1, timeout=10)
            sub = fut.result(10)
        for _ in range(RUNS):
            for many in (False, True):
                for _ in range(n):
                    pub.send(msg)
                cost[many].append(drain(sub, n, many))
        sub.close()
    for many in (False, True):
        v = cost[many]
        print(f"{size:6d} B  {'recv_many' if many else 'recv':9s}  "
              f"{statistics.median(v):7.1f} ns/msg [{min(v):.1f}-{max(v):.1f}]")
    q = [a / b for a, b in zip(cost[False], cost[True])]
    print(f"{size:6d} B  speed-up {statistics.median(q):.2f}x "
          f"[{min(q):.2f}-{max(q):.2f}] ({n} messages a drain)")


def main():
    for size in [int(a) for a in sys.argv[1:]] or [64, 1024, 4096]:
        one_size(size)


if __name__ == "__main__":
    main()
