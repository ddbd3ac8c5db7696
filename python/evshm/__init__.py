# SPDX-License-Identifier: MIT
"""evshm: fast messaging between unrelated Linux processes through shared memory.

    import evshm

    with evshm.listen("@telemetry") as listener:      # server
        ch = listener.accept()
        for msg in ch:                                # until the peer closes
            print(msg)

    with evshm.connect("@telemetry") as ch:           # client, another process
        ch.send(b"hello")

Names are Unix socket paths or "@name" (a Linux abstract name).

Timeouts: None waits forever, 0 never waits (BlockingIOError), a float is
seconds (TimeoutError).  Waits run without the GIL and are interrupted by
Ctrl-C (KeyboardInterrupt) within about 50 ms.

Errors are OSError subclasses: BrokenPipeError when the peer has gone
(after everything it sent was received), PermissionError when refused,
FileNotFoundError / ConnectionRefusedError when nobody listens,
evshm.ProtocolError when the peer broke the protocol, OSError with errno
for the rest.  Using a closed object raises ValueError.

Zero copy: ``with ch.peek() as buf:`` (read-only memoryview of the message
in shared memory) and ``with ch.reserve(n) as buf:`` (writable memoryview
of room in the ring, sent when the block ends).  Views derived from buf
(numpy.frombuffer, slices) must be gone when the block ends; see
Channel.peek and Channel.reserve.

Options are keyword arguments of listen() and connect(), named as the
fields of struct evshm_opts: ring_size, peer_ring_size, max_ring_size,
mode, spin_ns, handshake_timeout_ms, max_clients, and authorize, a
callable(pid, uid, gid) that returns True to admit the peer.
"""
from ._evshm import (
    HEADER_VERSION,
    MAX_FDS,
    RING_DEFAULT,
    RING_MAX,
    RING_MIN,
    SPIN_NEVER,
    Channel,
    Listener,
    Message,
    PeerCred,
    ProtocolError,
    Reservation,
    Stats,
    connect,
    listen,
    version,
)

__version__ = "0.1.0"

__all__ = [
    "Channel", "Listener", "Message", "Reservation", "Stats", "PeerCred",
    "ProtocolError", "connect", "listen", "version",
    "HEADER_VERSION", "MAX_FDS", "RING_DEFAULT", "RING_MAX", "RING_MIN",
    "SPIN_NEVER",
]
