#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""frames: pass video frames as numpy arrays between processes, zero copy.

    python3 frames.py [--frames N] [--size 1920x1080] [--subscribers K]

The sender draws each RGB frame straight into the ring (a numpy array over
reserve()); the receiver, another process (this script again, started with
subprocess), looks at it where it lies (numpy.frombuffer over peek(): a
view, not a copy), checks it and hands the room back.  No frame is ever
copied, in any process.

By default the two meet on a channel.  With --subscribers K the sender
publishes a topic and K receivers subscribe: each frame is written once
and read in place by all K.
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np

import evshm


def draw(frame, i):
    """Frame i: a grey level i % 256 and a white bar at column i."""
    frame[:] = i % 256
    frame[:, i % frame.shape[1]] = 255


def check(frame, i):
    w = frame.shape[1]
    return (frame[0, (i + 1) % w, 0] == i % 256 and
            (frame[:, i % w] == 255).all())


def produce(out, n, h, w):
    """Draw n frames straight into out's ring (a Channel or a Publisher)."""
    for i in range(n):
        with out.reserve(h * w * 3) as buf:
            frame = np.frombuffer(buf, np.uint8).reshape(h, w, 3)
            draw(frame, i)
            del frame  # no view may outlive the block


def consume(src, n, h, w):
    """Check n frames where they lie in src's ring (a Channel or a
    Subscriber); returns how many were numpy views of it."""
    views = 0
    for i in range(n):
        with src.peek(timeout=60) as buf:
            frame = np.frombuffer(buf, np.uint8).reshape(h, w, 3)
            # A view of the ring: no copy was made.
            views += (not frame.flags.owndata and
                      np.shares_memory(frame, np.frombuffer(buf, np.uint8)))
            if not check(frame, i):
                sys.exit(f"frames: frame {i} is wrong")
            del frame
    return views


def start_receivers(args, name, k):
    role = "--sub" if args.subscribers else "--recv"
    return [subprocess.Popen([sys.executable, __file__, role, name,
                              "--frames", str(args.frames), "--size", args.size],
                             stdout=subprocess.PIPE, text=True)
            for _ in range(k)]


def send(args, name, h, w):
    n, size = args.frames, h * w * 3
    ring = 1 << (4 * size - 1).bit_length()  # four frames and more
    if args.subscribers:
        out = evshm.publish(name, ring_size=ring)  # reliable: every frame
        peers = start_receivers(args, name, args.subscribers)
        out.wait_subscribers(args.subscribers, timeout=30)
    else:
        with evshm.listen(name, ring_size=ring) as listener:
            peers = start_receivers(args, name, 1)
            out = listener.accept(timeout=30)
    t0 = time.perf_counter()
    produce(out, n, h, w)
    if args.subscribers:
        out.send(b"")  # the end: each receiver reports on its stdout
        reports = [p.stdout.readline().strip() for p in peers]
    else:
        reports = [out.recv(timeout=60).decode()]
    dt = time.perf_counter() - t0
    out.close()
    if any(p.wait(60) != 0 for p in peers):
        sys.exit("frames: a receiver failed")
    print(f"{n} frames of {w}x{h} RGB ({size / 1e6:.1f} MB) in {dt:.2f} s: "
          f"{n / dt:.0f} frames/s, {n * size / dt / 1e9:.2f} GB/s "
          f"to {len(peers)} receiver(s); " + "; ".join(reports))


def retry(call, name):
    for _ in range(1000):  # the sender listens before it starts us
        try:
            return call(name, timeout=30)
        except (FileNotFoundError, ConnectionRefusedError):
            time.sleep(0.01)
    sys.exit(f"frames: nobody at {name}")


def recv(name, n, h, w):
    ch = retry(evshm.connect, name)
    views = consume(ch, n, h, w)
    ch.send(report(n, views).encode())
    try:
        ch.recv(timeout=60)  # until the sender has read the report
    except BrokenPipeError:
        pass


def subscribe(name, n, h, w):
    with retry(evshm.subscribe, name) as sub:
        views = consume(sub, n, h, w)
        if sub.recv(timeout=60) != b"":
            sys.exit("frames: no end after the frames")
    print(report(n, views), flush=True)


def report(n, views):
    return (f"receiver pid {os.getpid()}: {n} frames checked, "
            f"{views} of them numpy views of shared memory")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", default="1920x1080", help="WxH")
    ap.add_argument("--subscribers", type=int, default=0, metavar="K",
                    help="publish a topic to K receivers (default: a channel to one)")
    ap.add_argument("--recv", metavar="NAME", help=argparse.SUPPRESS)
    ap.add_argument("--sub", metavar="NAME", help=argparse.SUPPRESS)
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    if args.recv:
        recv(args.recv, args.frames, h, w)
    elif args.sub:
        subscribe(args.sub, args.frames, h, w)
    else:
        send(args, f"@evshm-frames-{os.getpid()}", h, w)


if __name__ == "__main__":
    main()
