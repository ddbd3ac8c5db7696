#!/usr/bin/env python3
"""An independent evshm topic subscriber, written from docs/protocol.md only.

    indep_sub.py NAME [--history K] [--count N] [--framed] [--wait] [--verbose]
                      [--timeout SEC] [--idle-timeout SEC] [--max-ring SIZE]

Subscribes to the topic published at NAME (a socket path, or @name for an
abstract one), follows the publisher's policy (reliable or latest), and writes
every message to stdout: by default the payloads concatenated, with
--framed each as a 4-byte little-endian length then its bytes. The stream
ends at the first empty message (the end-of-stream marker of `evshm pub`,
protocol.md 12), at N messages with --count, or when the publisher goes.
--wait retries every 20 ms while nobody publishes at NAME; --timeout bounds
the subscription (default 5 s); --idle-timeout ends it (exit 1) when nothing
is published for that long; --verbose says on stderr when it has joined.

Exit status (that of `evshm sub`): 0 the end-of-stream marker (or N
messages) arrived and was written; 1 the publisher went away first, broke
the protocol, or (latest) messages were lost; 2 usage; 3 could not subscribe
(nobody there, refused, handshake failed, --timeout); 4 stdout failed;
5 the publisher dropped this subscriber.

Python standard library only: socket, mmap, os, struct, select, fcntl, plus
ctypes for the two calls os lacks (fstatfs, membarrier). No wait is
unbounded: every sleep is a poll of at most POLL_SLICE seconds, after which
the ring, the horizon and the socket are looked at again.

Memory model (protocol.md 5.5): every field is read or written with one
native struct access ('@Q' / '@I' at an aligned offset: one memcpy of 8 or
4 bytes, a single mov on x86-64). The full fence is a lock acquire/release
(an atomic read-modify-write, a full barrier on x86-64 and AArch64).
Load-acquire and store-release need only compiler barriers on x86-64;
CPython does every access through a C function call, which is one.
"""

import ctypes
import fcntl
import mmap
import os
import select
import signal
import socket
import stat
import struct
import sys
import threading
import time

MAGIC = 0x48535645
VERSION = 2
T_READY, T_HELLO, T_WELCOME, T_REJECT, T_FDS, T_DROP = 1, 2, 3, 4, 5, 6
KIND_CHANNEL, KIND_TOPIC = 1, 2
REGION_CHAN, REGION_PUB, REGION_SUB = 1, 2, 3
POLICY_RELIABLE, POLICY_LATEST = 1, 2
HDR = 4096
MSG = struct.Struct('@IHHIIIIII16sQQ')   # the 64-byte handshake message
assert MSG.size == 64

# Region header offsets (4.1).
O_MAGIC, O_VERSION, O_KIND, O_HDR_SIZE, O_RING_SIZE = 0, 4, 8, 12, 16
O_ROLE, O_PID, O_FEATURES, O_ID, O_NAME = 20, 24, 28, 32, 48
O_SPACE_EVENT, O_TX_STATE = 384, 392
O_HEAD, O_MSGS_RECV, O_BYTES_RECV, O_LOST = 512, 520, 528, 536
O_DATA_EVENT, O_RX_STATE, O_RX_KICKS, O_RX_SLEEPS = 640, 648, 656, 664
O_HORIZON, O_OLDEST, O_OLDEST_SEQ, O_DROPPED = 896, 904, 912, 1024

ASLEEP, FENCELESS = 0x1, 0x2
SCM_MAX_FD = 253                  # the most descriptors one message carries
DRAIN_EVERY = 128                 # 6.1: armings between two drains, at most
DRAIN_READS = 16                  # reads of one drain, at most
F_PAD, F_FDS = 0x1, 0x2
NO_EVENT = 0xffffffffffffffff

SO_PASSRIGHTS = 83
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE = 0x1, 0x2, 0x4, 0x8
F_SEAL_FUTURE_WRITE = 0x10
F_ADD_SEALS, F_GET_SEALS = 1033, 1034
TMPFS_MAGIC = 0x01021994
MEMBARRIER_CMD_GLOBAL_EXPEDITED = 1 << 1
SYS_MEMBARRIER = {'x86_64': 324, 'aarch64': 283}.get(os.uname().machine)

# Longest single sleep, seconds. A test can raise it (INDEP_SUB_POLL_SLICE) to
# prove that the kicks alone wake this subscriber (a lost wakeup then hangs).
POLL_SLICE = float(os.environ.get('INDEP_SUB_POLL_SLICE', '0.05'))
# Set to 1, our bell takes descriptors (SO_PASSRIGHTS left on), as on kernels
# before Linux 6.16: a test sends some with its kicks, which we must close.
PASSRIGHTS = os.environ.get('INDEP_SUB_PASSRIGHTS') == '1'
JUMP_TRIES = 16          # jumps before a look gives up (lapped again meanwhile)

REASONS = {1: 'unsupported protocol version', 2: 'ring size over the limit',
           3: 'publisher full', 4: 'access refused', 5: 'malformed HELLO'}


class Fail(Exception):
    """Ends the subscription with an exit status and a message."""

    def __init__(self, status, msg):
        super().__init__(msg)
        self.status = status


def violation(msg):
    return Fail(1, 'protocol violation: ' + msg)


_fence_lock = threading.Lock()


def full_fence():
    _fence_lock.acquire()
    _fence_lock.release()


_libc = ctypes.CDLL(None, use_errno=True)


def membarrier():
    """Returns False if the membarrier cannot be run (then sleep briefly)."""
    if SYS_MEMBARRIER is None:
        return False
    return _libc.syscall(SYS_MEMBARRIER, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0


def fstatfs_type(fd):
    buf = ctypes.create_string_buffer(512)
    if _libc.fstatfs(fd, buf) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return struct.unpack_from('@l', buf, 0)[0] & 0xffffffff


def align16(n):
    return (n + 15) & ~15


def valid_ring_size(n):
    return 4096 <= n <= (1 << 30) and n & (n - 1) == 0


def u64(m, off):
    return struct.unpack_from('@Q', m, off)[0]


def u32(m, off):
    return struct.unpack_from('@I', m, off)[0]


def put64(m, off, v):
    struct.pack_into('@Q', m, off, v)


def put32(m, off, v):
    struct.pack_into('@I', m, off, v)


def close_all(fds):
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _close_quietly(fds):
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    close_all(fds)


def close_peer(fds):
    """10.5: closes descriptors the publisher chose. A kind that closes
    promptly (a pipe, an eventfd, a memfd) at once, any other (a socket
    with a linger time, a FUSE file) in a short-lived thread with every
    signal blocked, so that no close of theirs holds this subscriber."""
    later = []
    for fd in fds:
        try:
            link = os.readlink('/proc/self/fd/%d' % fd)
        except OSError:
            link = ''
        if link.startswith(('pipe:[', 'anon_inode:[eventfd]', '/memfd:')):
            close_all([fd])
        else:
            later.append(fd)
    if later:
        threading.Thread(target=_close_quietly, args=(later,), daemon=True).start()


def rights(anc):
    """The descriptors in a message's SCM_RIGHTS control messages."""
    fds = []
    for level, typ, cdata in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            n = len(cdata) // 4
            fds.extend(struct.unpack('@%di' % n, cdata[:4 * n]))
    return fds


def close_sock(s):
    """10.5: closes a socket whose queue may hold the publisher's
    descriptors: at once if it holds none, else in a thread."""
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_PASSRIGHTS, 0)
    except OSError:
        pass
    try:
        empty = not s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except OSError:
        empty = True                      # nothing queued (EAGAIN), or reset
    fd = s.detach()
    if empty:
        close_all([fd])
    else:
        threading.Thread(target=_close_quietly, args=([fd],), daemon=True).start()


def sock_address(name):
    if name.startswith('@'):
        addr = '\0' + name[1:]
        if len(addr.encode()) > 107:
            raise Fail(2, 'name too long')
    else:
        addr = name
        if len(addr.encode()) > 107:
            raise Fail(2, 'name too long')
    return addr


def recv_msg(sock, deadline, maxfds):
    """One SOCK_SEQPACKET message within the deadline: (bytes, fds).

    Every descriptor that arrives is returned (or closed on failure); a
    truncated message, truncated control data or a control message other
    than SCM_RIGHTS is malformed (2.2)."""
    p = select.poll()
    p.register(sock.fileno(), select.POLLIN | select.POLLRDHUP)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Fail(3, 'handshake timed out')
        if p.poll(max(1, int(left * 1000))):
            break
    try:
        data, anc, flags, _ = sock.recvmsg(
            128, socket.CMSG_SPACE(4 * max(maxfds, 1) + 4 * 8),
            socket.MSG_CMSG_CLOEXEC | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return recv_msg(sock, deadline, maxfds)
    except (ConnectionResetError, BrokenPipeError):
        raise Fail(3, 'the publisher closed the connection during the handshake')
    fds = rights(anc)
    bad = None
    for level, typ, cdata in anc:
        if level != socket.SOL_SOCKET or typ != socket.SCM_RIGHTS:
            bad = 'a control message other than SCM_RIGHTS'
    if bad is None and len(anc) > 1:
        bad = 'descriptors in more than one control message'
    if flags & socket.MSG_TRUNC:
        bad = 'truncated message'
    if flags & socket.MSG_CTRUNC:
        bad = 'truncated control data (too many descriptors)'
    if bad:
        close_peer(fds)
        raise Fail(3, 'handshake: ' + bad)
    return data, fds


def parse_msg(data, fds, want_types, kind):
    """Checks 3.1/3.3 steps 1-3 common to READY, WELCOME and REJECT."""
    if len(data) != 64:
        close_peer(fds)
        raise Fail(3, 'handshake: message of %d bytes, not 64' % len(data))
    f = MSG.unpack(data)
    magic, version, typ, mkind, status = f[0:5]
    if magic != MAGIC:
        close_peer(fds)
        raise Fail(3, 'handshake: bad magic 0x%08x' % magic)
    if version != VERSION:
        close_peer(fds)
        raise Fail(3, 'handshake: protocol version %d, not %d' % (version, VERSION))
    if typ == T_REJECT:
        close_peer(fds)
        if fds or any(f[i] for i in (3, 5, 6, 7, 8, 10, 11)) or f[9] != bytes(16):
            raise Fail(3, 'handshake: malformed REJECT')
        raise Fail(3, 'refused by the publisher: %s' % REASONS.get(status, REASONS[5]))
    if typ not in want_types:
        close_peer(fds)
        raise Fail(3, 'handshake: unexpected message type %d' % typ)
    if mkind != kind:
        close_peer(fds)
        raise Fail(3, 'handshake: kind %d, not a topic (%d)' % (mkind, kind))
    if status != 0:
        close_peer(fds)
        raise Fail(3, 'handshake: non-zero status in type %d' % typ)
    return f


def check_region(fd, size, kind, ring_size):
    """4.4, in order. Returns a read-only mapping."""
    try:
        seals = fcntl.fcntl(fd, F_GET_SEALS)
    except OSError as e:
        raise Fail(3, 'region: F_GET_SEALS: %s' % e.strerror)
    need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL
    if seals & need != need or not seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE):
        raise Fail(3, 'region: not sealed (seals 0x%x)' % seals)
    if fstatfs_type(fd) != TMPFS_MAGIC:
        raise Fail(3, 'region: not on tmpfs')
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size != size:
        raise Fail(3, 'region: size %d, not %d' % (st.st_size, size))
    link = os.readlink('/proc/self/fd/%d' % fd)
    if not link.startswith('/memfd:'):
        raise Fail(3, 'region: not an anonymous memfd (%r)' % link)
    try:
        m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
    except OSError as e:
        raise Fail(3, 'region: mmap: %s' % e.strerror)
    hdr = struct.unpack_from('@IIIII', m, 0)
    if hdr != (MAGIC, VERSION, kind, HDR, ring_size):
        m.close()
        raise Fail(3, 'region: header %r does not match the handshake' % (hdr,))
    return m


def sockopt_int(s, opt):
    try:
        return s.getsockopt(socket.SOL_SOCKET, opt)
    except OSError:
        return -1


def check_bell(fd, cred):
    """6.2, in order: the kicking end of a Unix stream socket pair that the
    publisher (the credentials `cred` of the connection) made. Returns it
    as a socket object, shut down for reading; fd is then its."""
    link = os.readlink('/proc/self/fd/%d' % fd)
    if not link.startswith('socket:['):
        raise Fail(3, 'bell: not a socket (%r)' % link)
    s = socket.socket(fileno=fd)          # detached below: fd stays the caller's
    try:
        dom, typ = sockopt_int(s, socket.SO_DOMAIN), sockopt_int(s, socket.SO_TYPE)
        if dom != socket.AF_UNIX or typ != socket.SOCK_STREAM:
            raise Fail(3, 'bell: not a Unix stream socket (domain %d, type %d)'
                       % (dom, typ))
        if sockopt_int(s, socket.SO_ACCEPTCONN) != 0:
            raise Fail(3, 'bell: a listening socket')
        try:
            pc = struct.unpack('@iII', s.getsockopt(socket.SOL_SOCKET,
                                                    socket.SO_PEERCRED, 12))
        except OSError as e:
            raise Fail(3, 'bell: SO_PEERCRED: %s' % e.strerror)
        if pc != cred:
            raise Fail(3, 'bell: made by another process (peer %d/%d/%d, '
                       'not the publisher %d/%d/%d)' % (pc + cred))
        try:
            s.shutdown(socket.SHUT_RD)
        except OSError as e:
            raise Fail(3, 'bell: shutdown: %s' % e.strerror)
    finally:
        s.detach()
    return socket.socket(fileno=fd)


def make_region(topic_id, name):
    """4.2: our 4096-byte subscriber region. Returns (mapping, ro fd)."""
    fd = os.memfd_create('evshm:sub', os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, HDR)
        m = mmap.mmap(fd, HDR, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        struct.pack_into('@IIIIIIII16s', m, 0, MAGIC, VERSION, REGION_SUB, HDR,
                         0, 1, os.getpid(), 0, topic_id)
        nm = name.encode()[:107]
        m[O_NAME:O_NAME + len(nm)] = nm
        put64(m, O_SPACE_EVENT, NO_EVENT)
        put64(m, O_DATA_EVENT, NO_EVENT)
        fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
                    F_SEAL_FUTURE_WRITE | F_SEAL_SEAL)
        ro = os.open('/proc/self/fd/%d' % fd, os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(fd)
    return m, ro


class Sub:
    def __init__(self, opts):
        self.o = opts
        self.sock = None
        self.bell = None                  # our bell's sleeping end (6.1)
        self.kick = None                  # the publisher's bell, its kicking end
        self.fds = []

    # ---- 2, 3, 8.1: rendezvous and handshake --------------------------
    def connect(self):
        o = self.o
        deadline = time.monotonic() + o.timeout
        addr = sock_address(o.name)
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
            try:
                s.setsockopt(socket.SOL_SOCKET, SO_PASSRIGHTS, 0)
            except OSError:
                pass                      # before Linux 6.16
            s.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                s.connect(addr)
                break
            except (FileNotFoundError, ConnectionRefusedError, BlockingIOError,
                    socket.timeout) as e:
                s.close()
                if (not o.wait and not isinstance(e, BlockingIOError)) or \
                        time.monotonic() >= deadline:
                    raise Fail(3, 'cannot connect to %s: %s' % (o.name, e))
                time.sleep(0.02)
        s.setblocking(False)
        self.sock = s
        self.cred = struct.unpack('@iII', s.getsockopt(socket.SOL_SOCKET,
                                                       socket.SO_PEERCRED, 12))
        uid = self.cred[1]
        if uid != os.geteuid() and uid != 0:
            raise Fail(3, 'the publisher runs as uid %d: refused' % uid)

        data, fds = recv_msg(s, deadline, 0)
        f = parse_msg(data, fds, (T_READY,), KIND_TOPIC)
        (_, _, _, _, _, feat, ring, peer_ring, region, tid, policy, p2) = f
        if fds:
            close_peer(fds)
            raise Fail(3, 'handshake: READY with descriptors')
        if ring or region or p2 or not valid_ring_size(peer_ring) or \
                policy not in (POLICY_RELIABLE, POLICY_LATEST):
            raise Fail(3, 'handshake: malformed READY')
        self.policy, self.id = policy, tid

        self.mine, ro = make_region(tid, o.name)
        self.fds.append(ro)
        # 6.1: our bell, a socket pair; we sleep on one end and hand the
        # other, the kicking end, to the publisher.
        self.bell, kick_end = socket.socketpair(
            socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        try:
            kick_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 << 10)
        except OSError:
            pass
        try:
            self.bell.setsockopt(socket.SOL_SOCKET, SO_PASSRIGHTS, int(PASSRIGHTS))
        except OSError:
            pass                          # before Linux 6.16
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_PASSRIGHTS, 1)
        except OSError:
            pass
        hello = MSG.pack(MAGIC, VERSION, T_HELLO, KIND_TOPIC, 0, 0, 0, 0, HDR,
                         tid, o.history, 0)
        try:
            s.sendmsg([hello], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                 struct.pack('@ii', ro, kick_end.fileno()))])
        except (BrokenPipeError, ConnectionResetError):
            pass                          # 3.2: look for a REJECT first
        finally:
            # 6.1: sent, so ours no more: the publisher's close or death
            # (or its shutdown of it) hangs our bell up.
            kick_end.close()

        data, fds = recv_msg(s, deadline, 2)
        f = parse_msg(data, fds, (T_WELCOME,), KIND_TOPIC)
        (_, _, _, _, _, feat, ring, peer_ring, region, wid, start, start_seq) = f
        try:
            if len(fds) != 2:
                raise Fail(3, 'handshake: WELCOME with %d descriptors, not 2' % len(fds))
            if not valid_ring_size(ring) or peer_ring or region != HDR + ring:
                raise Fail(3, 'handshake: malformed WELCOME sizes')
            if wid != tid:
                raise Fail(3, 'handshake: WELCOME for another id')
            if start % 16 or start_seq < 1:
                raise Fail(3, 'handshake: WELCOME start %d/%d invalid' % (start, start_seq))
            if ring > o.max_ring:
                raise Fail(3, 'handshake: ring of %d bytes over our limit' % ring)
            self.pub = check_region(fds[0], HDR + ring, REGION_PUB, ring)
            self.kick = check_bell(fds[1], self.cred)
        except BaseException:
            close_peer(fds)
            raise
        self.fds.append(fds[0])
        self.ring = ring
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_PASSRIGHTS, 0)
        except OSError:
            pass
        self.head = start
        self.expected = start_seq
        put64(self.mine, O_HEAD, start)  # 8.2: at once
        self.dropped_seen = u64(self.pub, O_DROPPED)
        self.lost = 0
        self.msgs = self.nbytes = 0
        self.armings = 0
        self.hung_up = False
        self.drop_reason = None           # a DROP came with the hang-up
        self.junk = False                 # something else came with it

    # ---- 8.5: latest ------------------------------------------------------
    def lapped(self):
        return self.policy == POLICY_LATEST and u64(self.pub, O_HORIZON) > self.head

    def jump(self):
        """8.5's jump. False if the target was overwritten each time: the
        caller looks again later (a publisher lapping us as fast as we jump
        is not a violation)."""
        for _ in range(JUMP_TRIES):
            oldest = u64(self.pub, O_OLDEST)
            oseq = u64(self.pub, O_OLDEST_SEQ)
            if oldest % 16 or oldest < self.head or oseq < self.expected:
                raise violation('oldest %d / oldest_seq %d behind head %d / seq %d'
                                % (oldest, oseq, self.head, self.expected))
            if u64(self.pub, O_HORIZON) > oldest:
                continue
            self.lost += oseq - self.expected
            put64(self.mine, O_LOST, self.lost)
            self.head, self.expected = oldest, oseq
            put64(self.mine, O_HEAD, oldest)
            return True
        return False

    # ---- 5.3: one record ----------------------------------------------------
    def try_read(self):
        """The next message's payload (bytes), or None if not published."""
        for _ in range(JUMP_TRIES):
            d = self.try_read_once()
            if d is not False:
                return d
        return None                       # lapped at every look: later

    def try_read_once(self):
        """A payload, None (not published), or False (lapped: jumped)."""
        rs, pub = self.ring, self.pub
        if self.lapped() and not self.jump():
            return False
        pos = self.head & (rs - 1)
        if u64(pub, HDR + pos + 8) != self.expected:
            return None
        ln, fl = struct.unpack_from('@II', pub, HDR + pos)
        skip = 0
        bad = None
        if fl & F_PAD:
            if fl != F_PAD or ln != rs - pos - 16:
                bad = 'bad PAD record at %d' % self.head
            elif u64(pub, HDR + 8) != self.expected:
                bad = 'PAD at %d not followed by its record' % self.head
            else:
                skip, pos = rs - pos, 0
                ln, fl = struct.unpack_from('@II', pub, HDR)
        if bad is None:
            if fl != 0:
                bad = 'flags 0x%x on a topic record' % fl
            elif ln > rs // 2 - 16 or align16(16 + ln) > rs - pos:
                bad = 'record length %d out of bounds' % ln
        data = None if bad else pub[HDR + pos + 16:HDR + pos + 16 + ln]
        # 8.5 step 3 / 8.6: was any of it overwritten while we read?
        if self.policy == POLICY_LATEST:
            if u64(pub, O_HORIZON) > self.head:
                self.jump()               # what we read is lost: counted
                return False
        else:
            d = u64(pub, O_DROPPED)
            if d != self.dropped_seen:
                self.dropped_seen = d
                if u64(pub, O_HORIZON) > self.head:
                    raise Fail(5, 'dropped by the publisher (overwritten)')
                # Nothing overwritten yet: our DROP, if it was us, is
                # queued already (sent before the count moved).
                self.check_hangup(hung=False)
                if self.drop_reason:
                    raise Fail(5, 'dropped by the publisher (%s)' % self.drop_reason)
        if bad:
            raise violation(bad)
        self.release(skip + align16(16 + ln), ln)
        return data

    def release(self, n, ln):
        old = self.head
        self.head = old + n
        self.expected += 1
        self.msgs += 1
        self.nbytes += ln
        put64(self.mine, O_HEAD, self.head)
        put64(self.mine, O_MSGS_RECV, self.msgs)
        put64(self.mine, O_BYTES_RECV, self.nbytes)
        full_fence()
        e = u64(self.pub, O_SPACE_EVENT)
        if old <= e < self.head:
            try:
                self.kick.send(b'\1', socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
            except (BlockingIOError, InterruptedError):
                pass                      # full: the publisher has kicks to read
            except OSError:
                pass                      # EPIPE: the publisher is gone: the socket tells
            self.mine_add(O_RX_KICKS)

    def mine_add(self, off):
        put64(self.mine, off, u64(self.mine, off) + 1)

    # ---- 6.3, 8.6, 9: sleeping and the end ----------------------------------
    def check_hangup(self, hung=True):
        """The socket (or the bell) hung up: a DROP, or the publisher
        closed.  hung=False: only a look, after the drop count moved."""
        if self.hung_up:
            return
        try:
            data, anc, flags, _ = self.sock.recvmsg(
                128, socket.CMSG_SPACE(4 * 8), socket.MSG_CMSG_CLOEXEC | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            self.hung_up = hung           # nothing queued
            return
        except OSError:
            self.hung_up = True
            return
        self.hung_up = True
        close_peer(rights(anc))
        if not data:
            return
        if len(data) == 64 and not anc and not flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            f = MSG.unpack(data)
            if f[0] == MAGIC and f[1] == VERSION and f[2] == T_DROP and \
                    not any(f[i] for i in (3, 5, 6, 7, 8, 10, 11)) and f[9] == bytes(16):
                why = {1: 'stalled', 2: 'its head broke the rules'}.get(f[4], 'status %d' % f[4])
                self.drop_reason = why
                return
        self.junk = True

    def wait(self, deadline):
        """6.3 consumer going to sleep. Returns when something may have changed."""
        mine, pub = self.mine, self.pub
        if self.armings >= DRAIN_EVERY and self.drain():   # 6.1, sleep or not
            self.check_hangup()
        put64(mine, O_DATA_EVENT, self.head)
        put32(mine, O_RX_STATE, ASLEEP)
        self.armings += 1
        full_fence()
        slice_ = POLL_SLICE
        if u32(pub, O_TX_STATE) & FENCELESS and not membarrier():
            slice_ = 0.001
        pos = self.head & (self.ring - 1)
        if u64(pub, HDR + pos + 8) == self.expected or self.lapped() or self.hung_up:
            put32(mine, O_RX_STATE, 0)
            return
        self.mine_add(O_RX_SLEEPS)
        bell = self.bell.fileno()
        p = select.poll()
        # Level-triggered (no EPOLLET in poll): a readable bell is drained
        # below each time, so a kick wakes one sleep, not every one.
        p.register(bell, select.POLLIN | select.POLLRDHUP)
        p.register(self.sock.fileno(), select.POLLRDHUP)
        t = slice_ if deadline is None else max(0.0, min(slice_, deadline - time.monotonic()))
        ev = dict(p.poll(int(t * 1000) + 1))
        put32(mine, O_RX_STATE, 0)
        gone = False
        if ev.get(bell, 0) & (select.POLLIN | select.POLLRDHUP | select.POLLHUP):
            gone = self.drain()
        if gone or ev.get(bell, 0) & (select.POLLHUP | select.POLLRDHUP | select.POLLERR) or \
                ev.get(self.sock.fileno(), 0) & (select.POLLHUP | select.POLLRDHUP | select.POLLERR):
            # The socket's hang-up, or our bell's: the publisher closed or
            # shut down its kicking end, so it has gone (6.1).
            self.check_hangup()

    def drain(self):
        """6.1: empties the bell with a bounded number of reads that cannot
        block, closing every descriptor that came with the kicks (the
        publisher chose them). True if the publisher hung the bell up."""
        self.armings = 0
        for _ in range(DRAIN_READS):
            try:
                data, anc, flags, _ = self.bell.recvmsg(
                    1024, socket.CMSG_SPACE(4 * SCM_MAX_FD),
                    socket.MSG_DONTWAIT | socket.MSG_CMSG_CLOEXEC)
            except InterruptedError:
                continue
            except OSError:
                return False              # empty (EAGAIN), or reset: the socket tells
            close_peer(rights(anc))
            if not data:
                return True               # end of file: shut down or closed
            if len(data) < 1024 and not anc:
                return False
        return False

    def next(self):
        """The next payload; raises Fail at the end."""
        idle = self.o.idle_timeout
        deadline = None if idle is None else time.monotonic() + idle
        while True:
            d = self.try_read()
            if d is not None:
                return d
            if self.hung_up:
                # 8.6, 9: everything still published was delivered first.
                if self.drop_reason:
                    raise Fail(5, 'dropped by the publisher (%s)' % self.drop_reason)
                if self.junk:
                    raise violation('a message other than DROP on the socket')
                raise Fail(1, 'the publisher went away before the end of the stream')
            if deadline is not None and time.monotonic() >= deadline:
                raise Fail(1, 'nothing published for %g s' % idle)
            self.wait(deadline)


def parse_args(argv):
    class O:
        history = 0
        count = None
        framed = False
        wait = False
        verbose = False
        timeout = 5.0
        idle_timeout = None
        max_ring = 1 << 30
        name = None
    o = O()
    it = iter(argv)
    try:
        for a in it:
            if a == '--history':
                o.history = int(next(it))
            elif a == '--count':
                o.count = int(next(it))
            elif a == '--framed':
                o.framed = True
            elif a == '--wait':
                o.wait = True
            elif a == '--verbose':
                o.verbose = True
            elif a == '--timeout':
                o.timeout = float(next(it))
            elif a == '--idle-timeout':
                o.idle_timeout = float(next(it))
            elif a == '--max-ring':
                o.max_ring = int(next(it))
            elif a in ('-h', '--help'):
                print(__doc__)
                sys.exit(0)
            elif a.startswith('-') and a != '-':
                raise ValueError(a)
            elif o.name is None:
                o.name = a
            else:
                raise ValueError(a)
    except (StopIteration, ValueError):
        o.name = None
    if o.name is None or o.history < 0 or o.history >= 1 << 64 or \
            (o.count is not None and o.count < 0):
        sys.stderr.write(__doc__.split('\n\n')[1] + '\n')
        sys.exit(2)
    return o


def main():
    o = parse_args(sys.argv[1:])
    out = sys.stdout.buffer
    sub = Sub(o)
    try:
        sub.connect()
        if o.verbose:
            sys.stderr.write('indep_sub: subscribed: %s, ring %d, start %d (message %d)\n'
                             % ('latest' if sub.policy == POLICY_LATEST else 'reliable',
                                sub.ring, sub.head, sub.expected))
            sys.stderr.flush()
        n = 0
        while o.count is None or n < o.count:
            d = sub.next()
            if len(d) == 0:
                break
            n += 1
            try:
                if o.framed:
                    out.write(struct.pack('<I', len(d)))
                out.write(d)
                out.flush()               # each message as it comes, as evshm sub
            except BrokenPipeError:
                return 141
            except OSError as e:
                raise Fail(4, 'stdout: %s' % e.strerror)
        try:
            out.flush()
        except OSError as e:
            raise Fail(4, 'stdout: %s' % e.strerror)
        if sub.lost:
            raise Fail(1, 'lost %d messages (latest)' % sub.lost)
        return 0
    except Fail as e:
        try:
            out.flush()
        except OSError:
            pass
        sys.stderr.write('indep_sub: %s\n' % e)
        return e.status
    finally:
        close_all(sub.fds)
        for s in (sub.sock, sub.bell, sub.kick):
            if s is not None:
                close_sock(s)


if __name__ == '__main__':
    sys.exit(main())
