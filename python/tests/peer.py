# SPDX-License-Identifier: MIT
"""The other process of the two-process tests: started with subprocess
(exec, nothing inherited through fork) as `python3 peer.py ROLE NAME ...`.

Each role prints "ready" (flushed) once it is about to do its job, and
exits 0 when the job is done as expected.
"""
import os
import signal
import socket
import sys
import time

import evshm
from evtest import connect_retry, payload

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
    try:
        ready()
        t0 = time.monotonic()
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
    with connect_retry(name) as ch:
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
