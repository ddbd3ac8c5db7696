# SPDX-License-Identifier: MIT
"""The other process of the two-process tests: started with subprocess
(exec, nothing inherited through fork) as `python3 peer.py ROLE NAME ...`.

Each role prints "ready" (flushed) once it is about to do its job, and
exits 0 when the job is done as expected.
"""
import ctypes
import os
import signal
import socket
import struct
import sys
import time

import evshm
from evtest import connect_retry, payload, subscribe_retry

ROLES = {}


def role(fn):
    ROLES[fn.__name__.replace("_", "-")] = fn
    return fn


def ready():
    print("ready", flush=True)


@role
def echo(name, mode="copy"):
    """Connect and send every message back until the peer closes."""
    with connect_retry(name) as ch:
        ready()
        if mode == "peek":
            while True:
                try:
                    with ch.peek() as buf:
                        ch.send(buf)
                except BrokenPipeError:
                    break
        else:
            for msg in ch:
                ch.send(msg)


@role
def send(name, count, size, ring_size="0"):
    """Connect, send count numbered messages of size bytes, close."""
    with connect_retry(name, ring_size=int(ring_size)) as ch:
        ready()
        for i in range(int(count)):
            ch.send(payload(i, int(size)))


@role
def sink(name, count, size):
    """Listen, accept one, check count numbered messages, answer b'ok'."""
    with evshm.listen(name) as listener:
        ready()
        ch = listener.accept(timeout=30)
    for i in range(int(count)):
        got = ch.recv(timeout=30)
        if got != payload(i, int(size)):
            sys.exit(f"message {i} is wrong: {got[:16]!r}...")
    ch.send(b"ok")
    try:
        ch.recv(timeout=30)  # until the other side closes
    except BrokenPipeError:
        pass


@role
def send_then_die(name, count):
    """Send count messages and get killed (SIGKILL) by our own hand."""
    ch = connect_retry(name)
    for i in range(int(count)):
        ch.send(payload(i, 64))
    ready()
    os.kill(os.getpid(), signal.SIGKILL)


@role
def hold(name):
    """Connect and do nothing until killed."""
    ch = connect_retry(name)
    ready()
    time.sleep(3600)
    ch.close()


@role
def block_recv(name):
    """Block in recv() with nobody sending: Ctrl-C must end it."""
    ch = connect_retry(name)
    _blocked(ch.recv)


@role
def block_accept(name):
    """Block in accept() with nobody connecting: Ctrl-C must end it."""
    listener = evshm.listen(name)
    _blocked(listener.accept)


def _blocked(call):
    t0 = time.monotonic()  # a Ctrl-C may come before the call is entered
    try:
        ready()
        call()
    except KeyboardInterrupt:
        print(f"interrupted after {time.monotonic() - t0:.3f} s", flush=True)
        sys.exit(3)
    sys.exit("the call returned")


@role
def fds(name):
    """Receive a message with descriptors (pipe write ends): write the
    message into each of them, then send back a message with a new pipe's
    read end, carrying b'from peer'."""
    with connect_retry(name, fds=True) as ch:
        ready()
        data, fds = ch.recv_fds(timeout=30)
        for fd in fds:
            os.write(fd, data)
            os.close(fd)
        r, w = os.pipe()
        os.write(w, b"from peer")
        os.close(w)
        ch.send_fds(b"read me", [r])
        os.close(r)
        try:
            ch.recv(timeout=30)
        except BrokenPipeError:
            pass


@role
def subscriber(name, size, history="0"):
    """Subscribe; receive numbered messages of size bytes up to the empty
    one (the end), each checked; print "got N lost L first F"."""
    with subscribe_retry(name, history=int(history)) as sub:
        ready()
        n, first, last = 0, None, -1
        for msg in sub:
            if not msg:
                break
            i = int.from_bytes(msg[:8], "little")
            if msg != payload(i, int(size)) or i <= last:
                sys.exit(f"message {i} after {last} is wrong: {msg[:16]!r}")
            first = i if first is None else first
            last = i
            n += 1
        print(f"got {n} lost {sub.lost} first {first}", flush=True)


@role
def publisher(name, subscribers, count, size, policy="reliable"):
    """Publish count numbered messages of size bytes, then an empty one
    (the end), once subscribers have joined; then wait until each still
    there has read them all (lag 0), and close."""
    with evshm.publish(name, policy=policy) as pub:
        ready()
        pub.wait_subscribers(int(subscribers), timeout=30)
        for i in range(int(count)):
            pub.send(payload(i, int(size)), timeout=30)
        pub.send(b"", timeout=30)
        end = time.monotonic() + 30
        while any(s.lag for s in pub.subscribers()):
            if time.monotonic() > end:
                sys.exit(f"subscribers did not read it all: {pub.subscribers()}")
            pub.serve(timeout=0.01)


@role
def block_sub_recv(name):
    """Block in a subscriber's recv() with nothing published: Ctrl-C must
    end it."""
    sub = subscribe_retry(name)
    _blocked(sub.recv)


@role
def block_wait_subscribers(name):
    """Block waiting for a subscriber that never comes: Ctrl-C must end it."""
    pub = evshm.publish(name)
    _blocked(pub.wait_subscribers)


def _record_address(buf):
    """The address of a reserved memoryview's bytes (for a peer that breaks
    the protocol: it writes its own ring, as a hostile process could)."""
    c = (ctypes.c_char * len(buf)).from_buffer(buf)
    addr = ctypes.addressof(c)
    del c  # no view may outlive the with-block
    return addr


def _corrupt_record(addr):
    """Overwrite the length in the header (16 bytes before the payload, see
    docs/protocol.md 5.1) of a record already published."""
    ctypes.memmove(addr - 16, struct.pack("<I", 0x7FFFFFF0), 4)


@role
def corrupt_channel(name):
    """Connect, publish one record, then make its length a lie."""
    with connect_retry(name) as ch:
        with ch.reserve(64) as buf:
            buf[:] = b"x" * 64
            addr = _record_address(buf)
        _corrupt_record(addr)
        ready()
        try:
            ch.recv(timeout=30)  # until the other side closes
        except BrokenPipeError:
            pass


@role
def corrupt_publisher(name):
    """Publish one record to the first subscriber, then make its length a
    lie."""
    with evshm.publish(name) as pub:
        pub.wait_subscribers(1, timeout=30)
        with pub.reserve(64) as buf:
            buf[:] = b"x" * 64
            addr = _record_address(buf)
        _corrupt_record(addr)
        ready()
        while pub.serve(timeout=1):  # until the subscriber has gone
            pass


@role
def garbage_server(name):
    """A server that answers a client with an oversized handshake message,
    which no evshm version accepts."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.bind("\0" + name[1:])
    s.listen(1)
    ready()
    c, _ = s.accept()
    c.send(b"\xff" * 4096)
    c.recv(4096)  # until the client gives up


@role
def garbage_client(name):
    """A client that sends an oversized handshake message."""
    deadline = time.monotonic() + 10
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            s.connect("\0" + name[1:])
            break
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    ready()
    s.send(b"\xff" * 4096)
    s.recv(4096)  # until the server drops us


if __name__ == "__main__":
    ROLES[sys.argv[1]](*sys.argv[2:])
