# SPDX-License-Identifier: MIT
"""evshm: fast messaging between unrelated Linux processes through shared memory.

Channels, two processes, a ring each way::

    import evshm

    with evshm.listen("@telemetry") as listener:      # server
        ch = listener.accept()
        for msg in ch:                                # until the peer closes
            print(msg)

    with evshm.connect("@telemetry") as ch:           # client, another process
        ch.send(b"hello")

Topics, one publisher written once, read in place by every subscriber::

    pub = evshm.publish("@prices", policy="latest")   # or "reliable" (default)
    pub.wait_subscribers(2)
    pub.send(b"tick")

    for msg in evshm.subscribe("@prices"):            # in other processes
        print(msg)

Names are Unix socket paths or "@name" (a Linux abstract name).

Timeouts: None waits forever, 0 never waits (BlockingIOError), a float is
seconds (TimeoutError).  Waits run without the GIL and are interrupted by
Ctrl-C (KeyboardInterrupt) within about 50 ms.

Errors are OSError subclasses: BrokenPipeError when the peer has gone
(after everything it sent was received), PermissionError when refused,
FileNotFoundError / ConnectionRefusedError when nobody listens,
ConnectionAbortedError when a reliable publisher dropped a subscriber that
stalled it, evshm.ProtocolError when the peer broke the protocol (with
the check that failed in its message), OSError with errno for the rest.
Using a closed object raises ValueError.

Zero copy: ``with ch.peek() as buf:`` (read-only memoryview of the message
in shared memory), ``with ch.peek_many() as views:`` (a list of them, for
the messages already there, released together) and ``with ch.reserve(n)
as buf:`` (writable memoryview of room in the ring, sent when the block
ends); the same on a Subscriber (peek, peek_many) and a Publisher
(reserve).  Views derived from buf (numpy.frombuffer, slices) must be gone
when the block ends.

Options are keyword arguments named as the fields of struct evshm_opts:
ring_size, peer_ring_size, max_ring_size, mode, spin_ns,
handshake_timeout_ms, max_clients, authorize (a callable(pid, uid, gid)
that returns True to admit the peer), fds (True: this side accepts
descriptors; the flags field's EVSHM_OPT_FDS), policy ("reliable" or
"latest"), stall_timeout_ms and history.  Each call takes those that apply
to it; another raises TypeError.
"""
from ._evshm import (
    HEADER_VERSION,
    LATEST,
    MAX_FDS,
    OPT_FDS,
    RELIABLE,
    RING_DEFAULT,
    RING_MAX,
    RING_MIN,
    SPIN_NEVER,
    Channel,
    Listener,
    Message,
    MessageRun,
    PeerCred,
    ProtocolError,
    Publisher,
    PublisherStats,
    Reservation,
    Stats,
    Subscriber,
    SubscriberInfo,
    connect,
    listen,
    publish,
    subscribe,
    version,
)

__version__ = "0.2.0"

__all__ = [
    "Channel", "Listener", "Publisher", "Subscriber", "Message", "MessageRun",
    "Reservation",
    "Stats", "PeerCred", "PublisherStats", "SubscriberInfo", "ProtocolError",
    "connect", "listen", "publish", "subscribe", "version",
    "HEADER_VERSION", "MAX_FDS", "OPT_FDS", "RING_DEFAULT", "RING_MAX",
    "RING_MIN", "SPIN_NEVER", "RELIABLE", "LATEST",
]
