#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""frames: pass video frames as numpy arrays between two processes, zero copy.

    python3 frames.py [--frames N] [--size 1920x1080]

The sender draws each RGB frame straight into the channel's ring (a numpy
array over Channel.reserve()); the receiver, another process (this script
again, started with subprocess), looks at it where it lies
(numpy.frombuffer over Channel.peek(): a view, not a copy), checks it and
hands the room back.  No frame is ever copied, in either process.
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


def send(name, n, h, w):
    size = h * w * 3
    ring = 1 << (4 * size - 1).bit_length()  # four frames and more
    with evshm.listen(name, ring_size=ring) as listener:
        peer = subprocess.Popen([sys.executable, __file__, "--recv", name,
                                 "--frames", str(n), "--size", f"{w}x{h}"])
        ch = listener.accept(timeout=30)
    t0 = time.perf_counter()
    for i in range(n):
        with ch.reserve(size) as buf:
            frame = np.frombuffer(buf, np.uint8).reshape(h, w, 3)
            draw(frame, i)
            del frame  # no view may outlive the block
    report = ch.recv(timeout=60).decode()
    dt = time.perf_counter() - t0
    ch.close()
    if peer.wait(60) != 0:
        sys.exit("frames: the receiver failed")
    print(f"{n} frames of {w}x{h} RGB ({size / 1e6:.1f} MB) in {dt:.2f} s: "
          f"{n / dt:.0f} frames/s, {n * size / dt / 1e9:.2f} GB/s; {report}")


def recv(name, n, h, w):
    ch = None
    for _ in range(1000):  # the sender listens before it starts us
        try:
            ch = evshm.connect(name, timeout=30)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            time.sleep(0.01)
    views = 0
    for i in range(n):
        with ch.peek(timeout=60) as buf:
            frame = np.frombuffer(buf, np.uint8).reshape(h, w, 3)
            # A view of the ring: no copy was made.
            views += (not frame.flags.owndata and
                      np.shares_memory(frame, np.frombuffer(buf, np.uint8)))
            if not check(frame, i):
                sys.exit(f"frames: frame {i} is wrong")
            del frame
    ch.send(f"receiver pid {os.getpid()}: {n} frames checked, "
            f"{views} of them numpy views of shared memory".encode())
    try:
        ch.recv(timeout=60)  # until the sender has read the report
    except BrokenPipeError:
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", default="1920x1080", help="WxH")
    ap.add_argument("--recv", metavar="NAME", help=argparse.SUPPRESS)
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    if args.recv:
        recv(args.recv, args.frames, h, w)
    else:
        send(f"@evshm-frames-{os.getpid()}", args.frames, h, w)


if __name__ == "__main__":
    main()
