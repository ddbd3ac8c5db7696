#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Receiving a backlog: what a receive costs from Python when the receiver
is the slower side (a data loader that falls behind its producer).

    python3 python/bench_drain.py [--runs N] [SIZE ...]   (default: 64 1024 4096)

For each size, N times (default 7) in turn for recv(), recv_many() and
peek_many(): a publisher in this process fills its 16 MiB ring with up to
100,000 messages (12 MiB at most, so it never waits), then its subscriber
(a thread of this process, subscribed once) drains them with recv() one at
a time, with recv_many() lists of up to 64, or with peek_many() runs of up
to 64 (zero copy: a memoryview of each message in the ring), looking at
each message in turn.  Prints the cost per message, median [min-max] of
the N drains, and the per-run speed-ups of recv_many and peek_many over
recv, and of peek_many over recv_many.  Pin it for steadier figures:
taskset -c 1 python3 ...
"""
import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

# Not the source package beside this script: the built one (PYTHONPATH).
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]
import evshm  # noqa: E402

WAYS = ("recv", "recv_many", "peek_many")


def drain(sub, n, way):
    got = 0
    t = time.perf_counter()
    if way == "recv_many":
        while got < n:
            for m in sub.recv_many():  # as a consumer would: each message
                got += 1
    elif way == "peek_many":
        while got < n:
            with sub.peek_many() as views:
                for v in views:
                    got += 1
    else:
        while got < n:
            m = sub.recv()
            got += 1
    return (time.perf_counter() - t) / n * 1e9


def speed_up(size, n, cost, slow, fast):
    q = [a / b for a, b in zip(cost[slow], cost[fast])]
    print(f"{size:6d} B  {fast} over {slow}: {statistics.median(q):.2f}x "
          f"[{min(q):.2f}-{max(q):.2f}] ({n} messages a drain)")


def one_size(size, runs):
    n = min(100000, (12 << 20) // (size + 16))
    msg = bytes(size)
    cost = {way: [] for way in WAYS}
    name = f"@evshm-bench-drain-{os.getpid()}-{size}"
    with evshm.publish(name, ring_size=16 << 20) as pub:
        with ThreadPoolExecutor(1) as pool:
            fut = pool.submit(evshm.subscribe, name, timeout=10)
            pub.wait_subscribers(1, timeout=10)
            sub = fut.result(10)
        for _ in range(runs):
            for way in WAYS:
                for _ in range(n):
                    pub.send(msg)
                cost[way].append(drain(sub, n, way))
        sub.close()
    for way in WAYS:
        v = cost[way]
        print(f"{size:6d} B  {way:9s}  "
              f"{statistics.median(v):7.1f} ns/msg [{min(v):.1f}-{max(v):.1f}]")
    speed_up(size, n, cost, "recv", "recv_many")
    speed_up(size, n, cost, "recv", "peek_many")
    speed_up(size, n, cost, "recv_many", "peek_many")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sizes", nargs="*", type=int, metavar="SIZE",
                    default=[64, 1024, 4096], help="message sizes in bytes")
    ap.add_argument("--runs", type=int, default=7,
                    help="drains per way and size, alternated (default 7)")
    a = ap.parse_args()
    for size in a.sizes:
        one_size(size, a.runs)


if __name__ == "__main__":
    main()
