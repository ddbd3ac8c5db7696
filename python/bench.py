#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""evshm from Python against what a Python user would otherwise pick, in one
run, both sides Python in separate processes.

    python3 python/bench.py [--runs 3] [--seconds 0.5] [--sizes 64,4K,1M]
                            [--ring 16M] [--ring-big 4M]
                            [--cpus 0,1 | --cpus none] [--json FILE]

Transports:
  evshm           Channel.send / Channel.recv (bytes), the library's
                  default options (spin_ns 0: it spins while the peer is
                  awake on another CPU, at most 50 us a wait)
  evshm zc        zero copy: the sender copies its payload into reserve()d
                  room; the receiver reads it in place with peek()
  evshm many      as evshm, but the streaming receiver takes lists of up to
                  64 messages (Channel.recv_many: one release per list)
  evshm no spin   the copy API with spin_ns=SPIN_NEVER: every wait sleeps
  Pipe            multiprocessing.connection.Pipe, send_bytes / recv_bytes
  Queue           multiprocessing.Queue (two, maxsize 1000: an unbounded
                  queue lets the sender run arbitrarily far ahead), put /
                  get (pickled)
  socketpair      AF_UNIX socket.socketpair, 8-byte length prefix, a
                  buffered reader on the receiving side
  shared_memory   what one builds from multiprocessing.shared_memory and
                  locks: a ring of 8 slots each way (an 8-byte length and
                  the payload), guarded by two multiprocessing.Semaphores
                  (free slots, full slots); the sender copies into a slot,
                  the receiver copies out (bytes) and frees it
  zmq             pyzmq PAIR over ipc:// (copy=False at 64 KiB and up), if
                  installed

Tests, for each size:
  round trip  the driver sends a message, the peer sends it back; p50 of
              the measured round trips (10% warm-up dropped)
  streaming   the peer sends for --seconds, then an end marker with its
              count; the driver receives everything and answers; the peer
              measures from its first send to that answer
  made + sent (64 KiB and up) streaming where the sender makes each
              message anew (fills it with a number), as a frame producer
              would: into a fresh numpy array that it then sends, or, for
              evshm zc, in place, in the reserved room of the ring

Payloads: bytes below 64 KiB, numpy uint8 arrays from 64 KiB up, which the
receiver turns into numpy arrays (numpy.frombuffer: a view where the
transport allows).  Senders cycle through a pool of pre-built payloads
whose first byte is their index in the pool; receivers check that byte of
every message and the count (a lost or reordered message fails the run);
they do not read the rest of the payload.

Processes are started with multiprocessing's "spawn" method (a fresh
interpreter, nothing inherited through fork) and, by default, pinned: the
driver to the first CPU, the peer to the second.  Each figure is the
median of --runs runs with its min-max spread; ratios compare evshm with
the fastest of the others in the same run.

The evshm ring: 16 MiB for messages below 64 KiB (larger than the L2
cache: the sender rarely rewrites lines the receiver's core still holds),
4 MiB from 64 KiB up (a few 1 MiB messages, staying in the last-level
cache, as an application passing frames would size it; a 1 MiB message
written into a 16 MiB ring goes to DRAM).  So the small and the large
sizes run as two sessions (a peer process and a channel each) of every
transport.
"""
import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
from functools import partial

import numpy as np

# Not the package sources next to this file (they lack the extension): the
# evshm that is installed, or on PYTHONPATH (<build>/python).
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]
import evshm  # noqa: E402

try:
    import zmq
except ImportError:
    zmq = None

BIG = 64 << 10          # payloads from this size up are numpy arrays
RING = 16 << 20         # evshm ring, either direction (--ring, --ring-big)
SPIN_NS = 0             # the library's default: adaptive
END = 0xFF              # first byte of the end marker (pool indices < 255)


def size_arg(s):
    units = {"K": 1 << 10, "M": 1 << 20}
    s = s.strip().upper().removesuffix("IB").removesuffix("B")
    return int(s[:-1]) * units[s[-1]] if s[-1] in units else int(s)


def size_name(n):
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB" if n >= 1 << 10 else f"{n} B"


def pool_len(size):
    return 8 if size >= BIG else 256


def pool(size):
    """Payloads whose first byte is their index: 256 small ones, 8 big."""
    out = []
    for k in range(pool_len(size)):
        a = np.full(size, 0x5A, dtype=np.uint8)
        a[0] = k
        out.append(a if size >= BIG else a.tobytes())
    return out


def end_marker(count):
    return bytes([END]) + count.to_bytes(7, "little")


def pin(cpu):
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


# --- the loops, on plain send / recv callables ---------------------------------------

def timed_rounds(recv, one_round, seconds):
    """Streaming, sender side: one_round() sends pool_len messages; rounds
    until the time is up, then the end marker.  The rate is measured from
    the first send to the driver's answer to the end marker."""
    recv()  # go
    rounds = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        one_round()
        rounds += 1
    return rounds, t0


def stream_send(send, recv, size, seconds, make=False):
    """@make: each message is made anew (a fresh array, filled), not taken
    from the pool."""
    payloads = pool(size)

    def from_pool():
        for p in payloads:
            send(p)

    def made():
        for k in range(len(payloads)):
            a = np.empty(size, np.uint8)
            a.fill(k)
            send(a)
    return finish_send(send, recv, size, timed_rounds(
        recv, made if make else from_pool, seconds))


def finish_send(send, recv, size, timed):
    rounds, t0 = timed
    n = rounds * pool_len(size)
    send(end_marker(n))
    recv()  # everything arrived
    return n / (time.perf_counter() - t0)


def stream_recv(send, recv, recv_big, size):
    plen = pool_len(size)

    def small():
        for k in range(plen):
            m = recv()
            if m[0] != k:
                return k, bytes(m[:8])
        return plen, None

    def big():
        for k in range(plen):
            a = np.frombuffer(recv_big(), np.uint8)
            if a[0] != k:
                return k, bytes(a[:8])
        return plen, None
    drain(send, small if size < BIG else big)


def drain(send, one_round):
    """Streaming, driver side: one_round() receives up to pool_len messages,
    checking each one's index, and returns (how many, the end marker if it
    came).  Until the end marker; then the answer."""
    count = 0
    send(b"go")
    while True:
        k, last = one_round()
        count += k
        if last is not None:
            check_end(last, count)
            send(b"done")
            return


def check_end(m, count):
    if m[0] != END or int.from_bytes(m[1:8], "little") != count:
        raise SystemExit(f"stream broken after {count} messages")


def rtt_ping(send, recv, size, n):
    p = pool(size)[1]
    times = []
    for _ in range(n):
        t = time.perf_counter_ns()
        send(p)
        m = recv()
        times.append(time.perf_counter_ns() - t)
        if len(m) != size:
            raise SystemExit("round trip: wrong message")
    return times


def rtt_echo(send, recv, size, n):
    for _ in range(n):
        send(recv())


# --- transports ---------------------------------------------------------------------------
#
# A transport makes the driver's endpoint and the arguments the peer needs
# (open_driver), and the peer's endpoint from them (open_peer).  An endpoint
# is (send, recv, recv_big, close) for the plain loops above (recv_big
# receives streamed numpy payloads), or an object with its own loops (evshm
# zero copy).

class Evshm:
    def __init__(self, name, spin):
        self.name, self.spin = name, spin

    def open_driver(self, tag):
        name = f"@evshm-py-bench-{os.getpid()}-{tag}"
        self.listener = evshm.listen(name, ring_size=RING, spin_ns=self.spin)
        return name, RING

    def accept(self):
        ch = self.listener.accept(timeout=60)
        self.listener.close()
        return self.endpoint(ch)

    def open_peer(self, where):
        name, ring = where
        deadline = time.monotonic() + 30
        while True:
            try:
                ch = evshm.connect(name, timeout=30, ring_size=ring, spin_ns=self.spin)
                return self.endpoint(ch)
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def endpoint(self, ch):
        return ch.send, ch.recv, ch.recv, ch.close


class EvshmZeroCopy(Evshm):
    """Its own loops: reserve() / peek() context managers."""

    def endpoint(self, ch):
        return ZeroCopyEndpoint(ch)


class ZeroCopyEndpoint:
    def __init__(self, ch):
        self.ch = ch
        self.close = ch.close

    def stream_send(self, size, seconds, make=False):
        ch = self.ch
        payloads = [memoryview(p).cast("B") for p in pool(size)]

        def from_pool():
            for p in payloads:
                with ch.reserve(size) as buf:
                    buf[:] = p

        def made():  # in place: the ring is where the message is made
            for k in range(len(payloads)):
                with ch.reserve(size) as buf:
                    np.frombuffer(buf, np.uint8).fill(k)
        return finish_send(ch.send, ch.recv, size, timed_rounds(
            ch.recv, made if make else from_pool, seconds))

    def stream_recv(self, size):
        ch = self.ch
        plen = pool_len(size)

        def one_round():
            for k in range(plen):
                with ch.peek() as buf:
                    if size < BIG:
                        first = buf[0]
                    else:
                        a = np.frombuffer(buf, np.uint8)
                        first = a[0]
                        del a
                    if first != k:
                        return k, bytes(buf[:8])
            return plen, None
        drain(ch.send, one_round)

    def rtt_ping(self, size, n):
        ch = self.ch
        p = memoryview(pool(size)[1]).cast("B")
        times = []
        for _ in range(n):
            t = time.perf_counter_ns()
            with ch.reserve(size) as buf:
                buf[:] = p
            with ch.peek() as buf:
                times.append(time.perf_counter_ns() - t)
                if len(buf) != size:
                    raise SystemExit("round trip: wrong message")
        return times

    def rtt_echo(self, size, n):
        ch = self.ch
        for _ in range(n):
            with ch.peek() as buf:
                ch.send(buf)


class EvshmMany(Evshm):
    """The streaming receiver takes lists (recv_many); the rest as Evshm."""

    def endpoint(self, ch):
        return ManyEndpoint(ch)


class ManyEndpoint:
    def __init__(self, ch):
        self.ch = ch
        self.close = ch.close

    def stream_send(self, size, seconds, make=False):
        return stream_send(self.ch.send, self.ch.recv, size, seconds, make)

    def stream_recv(self, size):
        ch, plen = self.ch, pool_len(size)
        count = k = 0
        ch.send(b"go")
        while True:
            for m in ch.recv_many(64):
                first = m[0] if size < BIG else np.frombuffer(m, np.uint8)[0]
                if first != k:
                    check_end(m, count)
                    ch.send(b"done")
                    return
                count += 1
                k = k + 1 if k + 1 < plen else 0

    def rtt_ping(self, size, n):
        return rtt_ping(self.ch.send, self.ch.recv, size, n)

    def rtt_echo(self, size, n):
        rtt_echo(self.ch.send, self.ch.recv, size, n)


class Pipe:
    name = "Pipe"

    def open_driver(self, tag):
        self.mine, theirs = mp.get_context("spawn").Pipe()
        return theirs

    def accept(self):
        return self.open_peer(self.mine)

    def open_peer(self, c):
        return c.send_bytes, c.recv_bytes, c.recv_bytes, c.close


class Queue:
    name = "Queue"

    def open_driver(self, tag):
        ctx = mp.get_context("spawn")
        self.there, self.back = ctx.Queue(1000), ctx.Queue(1000)
        return self.there, self.back

    def accept(self):
        return self.there.put, self.back.get, self.back.get, lambda: None

    def open_peer(self, queues):
        there, back = queues
        return back.put, there.get, there.get, lambda: None


class SocketPair:
    name = "socketpair"

    def open_driver(self, tag):
        self.mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return theirs

    def accept(self):
        return self.endpoint(self.mine)

    def open_peer(self, s):
        return self.endpoint(s)

    @staticmethod
    def endpoint(s):
        reader = s.makefile("rb", buffering=256 << 10)

        def send(p):
            n = len(p) if isinstance(p, bytes) else p.nbytes
            hdr = n.to_bytes(8, "little")
            if n < BIG:
                s.sendall(hdr + p)
            else:
                sent = s.sendmsg([hdr, p])
                if sent < n + 8:  # rare on a blocking stream socket
                    s.sendall((hdr + memoryview(p).cast("B").tobytes())[sent:])

        def recv():
            return reader.read(int.from_bytes(reader.read(8), "little"))

        def close():
            reader.close()
            s.close()
        return send, recv, recv, close


class SharedMemoryRing:
    """One direction: SLOTS slots of an 8-byte length and up to @cap bytes
    in a multiprocessing.shared_memory block, two semaphores."""
    SLOTS = 8

    def __init__(self, ctx, cap):
        from multiprocessing import shared_memory
        self.slot = 8 + cap
        self.shm = shared_memory.SharedMemory(create=True, size=self.SLOTS * self.slot)
        self.free, self.full = ctx.Semaphore(self.SLOTS), ctx.Semaphore(0)

    def where(self):
        return self.shm.name, self.slot, self.free, self.full


def shm_endpoint(out, back):
    """send / recv on the ring @out and the ring @back (each a where())."""
    from multiprocessing import shared_memory
    rings = []
    for name, slot, free, full in (out, back):
        shm = shared_memory.SharedMemory(name=name)
        rings.append((shm, shm.buf, slot, free, full))
    (_, obuf, oslot, ofree, ofull), (_, ibuf, islot, ifree, ifull) = rings
    pos = [0, 0]  # next slot to write, to read
    slots = SharedMemoryRing.SLOTS

    def send(p):
        n = len(p) if isinstance(p, bytes) else p.nbytes
        ofree.acquire()
        off = (pos[0] % slots) * oslot
        obuf[off:off + 8] = n.to_bytes(8, "little")
        obuf[off + 8:off + 8 + n] = p if isinstance(p, bytes) else memoryview(p).cast("B")
        pos[0] += 1
        ofull.release()

    def recv():
        ifull.acquire()
        off = (pos[1] % slots) * islot
        n = int.from_bytes(ibuf[off:off + 8], "little")
        data = bytes(ibuf[off + 8:off + 8 + n])
        pos[1] += 1
        ifree.release()
        return data

    def close():
        nonlocal obuf, ibuf
        obuf = ibuf = None
        for shm, *_ in rings:
            shm.close()
    return send, recv, recv, close


class SharedMemoryLock:
    name = "shared_memory"

    def open_driver(self, tag):
        ctx = mp.get_context("spawn")
        self.rings = [SharedMemoryRing(ctx, max(MAX_SIZE, 64)) for _ in range(2)]
        there, back = (r.where() for r in self.rings)
        return back, there  # the peer's (out, in)

    def accept(self):
        there, back = (r.where() for r in self.rings)
        ep = shm_endpoint(there, back)
        send, recv, recv_big, close = ep

        def close_all():
            close()
            for r in self.rings:
                r.shm.close()
                r.shm.unlink()
        return send, recv, recv_big, close_all

    def open_peer(self, where):
        return shm_endpoint(*where)


class Zmq:
    name = "zmq"

    def open_driver(self, tag):
        self.dir = tempfile.mkdtemp(prefix="evshm-bench-")
        where = f"ipc://{self.dir}/sock"
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.PAIR)
        self.sock.bind(where)
        return where

    def accept(self):
        return self.endpoint(self.ctx, self.sock)

    def open_peer(self, where):
        ctx = zmq.Context()
        sock = ctx.socket(zmq.PAIR)
        sock.connect(where)
        return self.endpoint(ctx, sock)

    @staticmethod
    def endpoint(ctx, sock):
        def close():
            sock.close(linger=1000)
            ctx.term()

        def send(p):
            # copy=False pays off for large messages only (pyzmq's advice).
            sock.send(p, copy=not isinstance(p, np.ndarray))
        return send, sock.recv, partial(sock.recv, copy=False), close


TRANSPORTS = {
    "evshm": lambda: Evshm("evshm", SPIN_NS),
    "evshm zc": lambda: EvshmZeroCopy("evshm zc", SPIN_NS),
    "evshm many": lambda: EvshmMany("evshm many", SPIN_NS),
    "evshm no spin": lambda: Evshm("evshm no spin", evshm.SPIN_NEVER),
    "Pipe": Pipe,
    "Queue": Queue,
    "socketpair": SocketPair,
    "shared_memory": SharedMemoryLock,
}
if zmq:
    TRANSPORTS["zmq"] = Zmq


# --- running ---------------------------------------------------------------------------

WARMUP = ("rtt", 256 << 10, 80)  # 20 MiB each way: every ring page touched


def plan(args, sizes):
    """(test, size, count) in the order both sides run them.  The first
    is the warm-up, whose figure is dropped: a ring's memory is allocated
    as it is first touched, and a page fault per message would be
    measured otherwise."""
    out = [WARMUP]
    for size in sizes:
        out.append(("rtt", size, args.rtts if size < BIG else max(50, args.rtts // 20)))
    for size in sizes:
        out.append(("stream", size, 0))
    for size in sizes:
        if size >= BIG:
            out.append(("make", size, 0))
    return out


def groups(args):
    """The sizes by evshm ring: (ring, sizes, plan).  Small messages
    stream fastest through a ring larger than the L2 cache (--ring, see
    docs/performance.md); large ones through a ring of a few messages
    that stays in the last-level cache (--ring-big), as an application
    passing frames would size it.  Each group is a session of its own
    (a peer process, a channel) for every transport."""
    out = []
    for ring, sizes in ((args.ring, [s for s in args.sizes if s < BIG]),
                        (args.ring_big, [s for s in args.sizes if s >= BIG])):
        if sizes:
            out.append((ring, sizes, plan(args, sizes)))
    return out


def on_endpoint(ep, test, side, size, count, seconds):
    """Run one test on one side; the streaming sender returns its rate."""
    if hasattr(ep, "rtt_ping"):
        calls = {("rtt", "driver"): lambda: ep.rtt_ping(size, count),
                 ("rtt", "peer"): lambda: ep.rtt_echo(size, count),
                 ("stream", "driver"): lambda: ep.stream_recv(size),
                 ("stream", "peer"): lambda: ep.stream_send(size, seconds),
                 ("make", "driver"): lambda: ep.stream_recv(size),
                 ("make", "peer"): lambda: ep.stream_send(size, seconds, True)}
        return calls[test, side]()
    send, recv, recv_big, _ = ep
    calls = {("rtt", "driver"): lambda: rtt_ping(send, recv, size, count),
             ("rtt", "peer"): lambda: rtt_echo(send, recv, size, count),
             ("stream", "driver"): lambda: stream_recv(send, recv, recv_big, size),
             ("stream", "peer"): lambda: stream_send(send, recv, size, seconds),
             ("make", "driver"): lambda: stream_recv(send, recv, recv_big, size),
             ("make", "peer"): lambda: stream_send(send, recv, size, seconds, True)}
    return calls[test, side]()


def endpoint_close(ep):
    (ep.close if hasattr(ep, "close") else ep[-1])()


def peer_main(key, where, tests, seconds, cpu, results):
    pin(cpu)
    t = TRANSPORTS[key]()
    ep = t.open_peer(where)
    rates = []
    for test, size, count in tests:
        r = on_endpoint(ep, test, "peer", size, count, seconds)
        if test != "rtt":
            rates.append(r)
    results.put(rates)
    endpoint_close(ep)


def run_transport(key, tests, args, tag):
    """One peer process, all the tests: {(test, size): figure}."""
    ctx = mp.get_context("spawn")
    t = TRANSPORTS[key]()
    where = t.open_driver(tag)
    results = ctx.Queue()
    proc = ctx.Process(target=peer_main, args=(key, where, tests, args.seconds,
                                                args.peer_cpu, results))
    proc.start()
    ep = t.accept()
    out = {}
    for test, size, count in tests:
        r = on_endpoint(ep, test, "driver", size, count, args.seconds)
        if (test, size, count) == WARMUP:
            continue
        if test == "rtt":
            r = r[len(r) // 10:]
            out[test, size] = statistics.median(r) / 1000  # us
    rates = results.get(timeout=120)
    for (test, size, _), rate in zip([x for x in tests if x[0] != "rtt"], rates):
        out[test, size] = rate
    endpoint_close(ep)
    proc.join(60)
    if proc.exitcode != 0:
        raise SystemExit(f"{key}: the peer failed ({proc.exitcode})")
    if isinstance(t, Zmq):
        shutil.rmtree(t.dir)
    return out


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": f"{cpu}, {os.cpu_count()} CPUs",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pyzmq": zmq.__version__ if zmq else None,
        "evshm": evshm.version(),
    }


def fmt(test, size, v):
    if test == "rtt":
        return f"{v:.1f} us"
    if size < BIG:
        return f"{v / 1e6:.2f} M/s"
    return f"{v * size / 1e9:.2f} GB/s"


MAX_SIZE = 1 << 20       # largest payload of the run (--sizes)


def main():
    global RING, MAX_SIZE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=0.5, help="per streaming test")
    ap.add_argument("--rtts", type=int, default=3000, help="round trips at 64 B")
    ap.add_argument("--sizes", type=lambda s: [size_arg(x) for x in s.split(",")],
                    default=[64, 4096, 1 << 20])
    ap.add_argument("--transports", type=lambda s: s.split(","), default=list(TRANSPORTS))
    ap.add_argument("--cpus", default="0,1", help="driver,peer CPUs, or none")
    ap.add_argument("--ring", type=size_arg, default=RING,
                    help="evshm ring size for messages below 64 KiB")
    ap.add_argument("--ring-big", type=size_arg, default=4 << 20,
                    help="evshm ring size for messages from 64 KiB up")
    ap.add_argument("--json", metavar="FILE", help="also write the results there")
    args = ap.parse_args()
    MAX_SIZE = max(args.sizes + [WARMUP[1]])
    if args.cpus == "none":
        args.driver_cpu = args.peer_cpu = None
    else:
        args.driver_cpu, args.peer_cpu = (int(c) for c in args.cpus.split(","))
    pin(args.driver_cpu)
    for ring, sizes, _ in groups(args):
        for size in sizes + [WARMUP[1]]:
            if size + 16 > ring // 2:
                raise SystemExit(f"size {size} does not fit the {ring >> 20} MiB ring")

    runs = []  # per run: {transport: {(test, size): figure}}
    for r in range(args.runs):
        runs.append({})
        for key in args.transports:
            print(f"run {r + 1}/{args.runs}: {key}...", file=sys.stderr, flush=True)
            out = runs[-1][key] = {}
            for g, (ring, _, tests) in enumerate(groups(args)):
                RING = ring
                out.update(run_transport(key, tests, args, f"{r}-{len(runs[-1])}-{g}"))

    order = ["rtt", "stream", "make"]
    tests = sorted((t for _, _, p in groups(args) for t in p[1:]),
                   key=lambda t: (order.index(t[0]), t[1]))
    report(args, tests, runs)


TEST_NAMES = {"rtt": "round trip", "stream": "streaming", "make": "made + sent"}


def spread(values):
    return statistics.median(values), min(values), max(values)


def ratio_rows(tests, runs):
    """evshm's best over the fastest other transport, per run."""
    others = [k for k in runs[0] if not k.startswith("evshm")]
    mine = [k for k in runs[0] if k.startswith("evshm")]
    rows = []
    if not others:  # --transports with evshm rows only: nothing to compare
        return rows
    for test, size, _ in tests:
        for k in mine:
            per_run = []
            for run in runs:
                if test == "rtt":
                    best = min(run[o][test, size] for o in others)
                    per_run.append(best / run[k][test, size])
                else:
                    best = max(run[o][test, size] for o in others)
                    per_run.append(run[k][test, size] / best)
            rows.append((test, size, k, spread(per_run)))
    return rows


def report(args, tests, runs):
    m = machine()
    keys = list(runs[0])
    print(f"\n{m['date']}, {m['cpu']}, Linux {m['kernel']}, Python {m['python']}, "
          f"numpy {m['numpy']}, pyzmq {m['pyzmq']}, libevshm {m['evshm']}")
    print(f"median [min-max] of {args.runs} runs; CPUs {args.cpus}; "
          f"streaming {args.seconds} s per size; round trips: p50; evshm rings "
          f"{args.ring >> 20} MiB below 64 KiB, {args.ring_big >> 20} MiB from "
          f"64 KiB up\n")
    head = ["test"] + keys
    rows = []
    for test, size, _ in tests:
        row = [f"{TEST_NAMES[test]} {size_name(size)}"]
        for k in keys:
            med, lo, hi = spread([run[k][test, size] for run in runs])
            row.append(f"{fmt(test, size, med)} [{fmt(test, size, lo).split()[0]}"
                       f"-{fmt(test, size, hi).split()[0]}]")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))

    ratios = ratio_rows(tests, runs)
    if ratios:
        print("\nevshm / fastest other (round trips: its p50 / evshm's):")
    for test, size, k, (med, lo, hi) in ratios:
        name = TEST_NAMES[test]
        print(f"  {name:<11} {size_name(size):>7}  {k:<14} {med:6.2f}x [{lo:.2f}-{hi:.2f}]")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": m, "runs": args.runs, "cpus": args.cpus,
                       "ring": args.ring, "ring_big": args.ring_big,
                       "results": [{"transport": k, "test": t, "size": s,
                                    "runs": [run[k][t, s] for run in runs]}
                                   for k in keys for t, s, _ in tests],
                       "ratios": [{"test": t, "size": s, "transport": k,
                                   "median": md, "min": lo, "max": hi}
                                  for t, s, k, (md, lo, hi) in ratios]},
                      f, indent=1)


if __name__ == "__main__":
    main()
