#!/usr/bin/env python3
"""A hostile topic publisher for tests/indep_sub.py: `indep_fakepub.py CASE NAME`.

Listens at NAME, takes one subscriber, and breaks docs/protocol.md in the
way CASE says (see CASES). Prints "ready" on stdout once it listens. It
waits at most 60 s for its subscriber and lives at most 30 s after that,
and so does the second interpreter two bell cases run (it also ends when
we do): longer than the subscriber's own bounds (20 s), so that however
late a loaded machine runs the subscriber, it ends by what the case does,
never by our going away. Python standard library only.
"""

import fcntl
import mmap
import os
import select
import socket
import struct
import subprocess
import sys
import time

MAGIC, VERSION = 0x48535645, 2
MSG = struct.Struct('@IHHIIIIII16sQQ')
RING = 4096
TID = b'fake-topic-id-16'
F_ADD_SEALS = 1033
SEALS = 0x2 | 0x4 | 0x10 | 0x1     # SHRINK GROW FUTURE_WRITE SEAL

# CASE: (indep_sub's exit status, what its message must match, grep -E).
CASES = {
    # the handshake
    'silent': (3, 'timed out'),                # accepts, never speaks
    'ready_magic': (3, 'bad magic'),
    'ready_field': (3, 'malformed READY'),     # a non-zero unused field
    # (with SO_PASSRIGHTS the kernel refuses to send them: a close)
    'ready_fds': (3, 'READY with descriptors|message of 0 bytes'),
    'reject': (3, 'publisher full'),           # REJECT reason 3
    'reject_bad': (3, 'malformed REJECT'),     # REJECT with a non-zero id
    'welcome_id': (3, 'another id'),
    'welcome_1fd': (3, 'with 1 descriptors'),
    'welcome_start': (3, 'start 8/1 invalid'),  # param not a multiple of 16
    'unsealed': (3, 'not sealed'),
    'region_kind': (3, 'does not match'),
    # the bell it gives (6.2)
    'bell_pipe': (3, 'bell: not a socket'),    # a pipe's read end, protocol 2 drafts'
    'bell_dgram': (3, 'not a Unix stream socket'),      # a SOCK_DGRAM pair
    'bell_seqpacket': (3, 'not a Unix stream socket'),  # a SOCK_SEQPACKET pair
    'bell_listen': (3, 'a listening socket'),
    'bell_elsewhere': (3, 'made by another process'),   # connected to another's
    'bell_foreign': (3, 'made by another process'),     # a pair another made
    # the bell it was given: kicks that carry descriptors (closed, then the
    # stream goes on to its end: exit 0), its kicking end shut down or closed
    'kick_fds': (0, ''),                # INDEP_SUB_PASSRIGHTS=1 (or Linux < 6.16)
    'bell_shut': (1, 'went away'),
    'bell_close': (1, 'went away'),
    # records
    'rec_len': (1, 'violation: record length'),
    'rec_fds': (1, 'violation: flags 0x2'),
    'rec_pad': (1, 'violation: bad PAD'),
    'oldest': (1, 'violation: oldest'),        # latest: a bad jump target
    # the end
    'idle': (1, 'nothing published'),          # alive, publishes nothing
    'drop': (5, 'dropped by the publisher'),
    # DROP then the count (8.6), the horizon below its head, the socket
    # kept open: the copy after the count moved must find the DROP
    'drop_early': (5, 'dropped by the publisher'),
    'hangup': (1, 'went away'),                # a record, then close, no end
}


def region(kind=2, sealed=True):
    fd = os.memfd_create('evshm:pub', os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, 4096 + RING)
    m = mmap.mmap(fd, 4096 + RING)
    struct.pack_into('@IIIIIIII16s', m, 0, MAGIC, VERSION, kind, 4096, RING, 2,
                     os.getpid(), 0, TID)
    struct.pack_into('@Q', m, 384, 0xffffffffffffffff)
    struct.pack_into('@Q', m, 640, 0xffffffffffffffff)
    if sealed:
        fcntl.fcntl(fd, F_ADD_SEALS, SEALS)
    return fd, m


# Run by a second interpreter: the bell of bell_elsewhere (connected to a
# listener of that process) or of bell_foreign (a socket pair it made, sent
# back on the socket it inherits). It lives until its stdin closes (we end),
# 30 s at most.
HELPER = r"""
import signal, socket, struct, sys
signal.alarm(30)
how, arg = sys.argv[1], sys.argv[2]
if how == 'listen':
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind('\0' + arg)
    ls.listen(1)
    print('ready', flush=True)
    c, _ = ls.accept()
else:
    back = socket.socket(fileno=int(arg))
    a, b = socket.socketpair()
    back.sendmsg([b'x'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                            struct.pack('@i', a.fileno()))])
    print('ready', flush=True)
sys.stdin.read()
"""


def foreign_bell(case):
    """A Unix stream socket whose SO_PEERCRED names another process."""
    if case == 'bell_elsewhere':
        addr = 'indep-fakepub-%d' % os.getpid()   # abstract (no NUL in argv)
        p = subprocess.Popen([sys.executable, '-c', HELPER, 'listen', addr],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        p.stdout.readline()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.connect('\0' + addr)
        return p, s.detach()
    here, there = socket.socketpair()
    p = subprocess.Popen([sys.executable, '-c', HELPER, 'pair', str(there.fileno())],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         pass_fds=[there.fileno()])
    there.close()
    here.settimeout(5)
    _, fds, _, _ = socket.recv_fds(here, 1, 1)
    p.stdout.readline()
    return p, fds[0]


def kick_with_fds(kick, end):
    """Three kicks, each with 100 pipes' write ends and a socket's end, ours
    closed: True once the subscriber has closed every one (each read end
    hangs up), before `end`."""
    watch, sent = [], []
    for _ in range(3):
        fds = []
        for _ in range(100):
            r, w = os.pipe2(os.O_CLOEXEC)
            watch.append(r)
            fds.append(w)
        a, b = socket.socketpair()
        watch.append(a.detach())
        fds.append(b.detach())
        kick.sendmsg([b'\1'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                struct.pack('@%di' % len(fds), *fds))])
        sent += fds
    for fd in sent:
        os.close(fd)
    p = select.poll()
    for fd in watch:
        p.register(fd, select.POLLIN)
    left = set(watch)
    while left and time.monotonic() < end:
        for fd, ev in p.poll(100):
            if ev & select.POLLHUP and fd in left:
                left.discard(fd)
                p.unregister(fd)
    return not left


def record(m, pos, ln, flags, seq, fill=b'x'):
    struct.pack_into('@II', m, 4096 + pos, ln, flags)
    m[4096 + pos + 16:4096 + pos + 16 + min(ln, 64)] = fill * min(ln, 64)
    struct.pack_into('@Q', m, 4096 + pos + 8, seq)


def main():
    case, name = sys.argv[1], sys.argv[2]
    addr = '\0' + name[1:] if name.startswith('@') else name
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    ls.bind(addr)
    ls.listen(4)
    print('ready', flush=True)
    ls.settimeout(60)
    c, _ = ls.accept()
    c.settimeout(30)
    end = time.monotonic() + 30
    policy = 2 if case == 'oldest' else 1
    if case == 'silent':
        time.sleep(30)
        return
    magic = 0x12345678 if case == 'ready_magic' else MAGIC
    ring_field = RING if case == 'ready_field' else 0
    if case in ('reject', 'reject_bad'):
        c.send(MSG.pack(MAGIC, VERSION, 4, 0, 3, 0, 0, 0, 0,
                        TID if case == 'reject_bad' else bytes(16), 0, 0))
        time.sleep(1)
        return
    anc = []
    if case == 'ready_fds':
        r, w = os.pipe2(os.O_CLOEXEC)
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack('@i', r))]
    try:
        c.sendmsg([MSG.pack(magic, VERSION, 1, 2, 0, 0, ring_field, RING, 0,
                        TID, policy, 0)], anc)
    except PermissionError:
        return                           # SO_PASSRIGHTS: the kernel refused
    _, hello_fds, _, _ = socket.recv_fds(c, 128, 2)
    # The subscriber's bell, its kicking end (the rest dies with us).
    kick = socket.socket(fileno=hello_fds[1])
    fd, m = region(kind=1 if case == 'region_kind' else 2, sealed=case != 'unsealed')
    rfd = os.open('/proc/self/fd/%d' % fd, os.O_RDONLY | os.O_CLOEXEC)
    # Our bell: the sleeping end is ours, the kicking end the subscriber's.
    mine, bell_s = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    bell = bell_s.fileno()
    helper = None
    if case == 'bell_pipe':
        bell, _ = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    elif case in ('bell_dgram', 'bell_seqpacket'):
        bell = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM if case == 'bell_dgram'
                                 else socket.SOCK_SEQPACKET)[1].detach()
    elif case == 'bell_listen':
        ls2 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls2.bind('')                     # an automatic abstract name
        ls2.listen(1)
        bell = ls2.fileno()
    elif case in ('bell_elsewhere', 'bell_foreign'):
        helper, bell = foreign_bell(case)
    start = 8 if case == 'welcome_start' else 0
    fds = [rfd, bell] if case != 'welcome_1fd' else [rfd]
    c.sendmsg([MSG.pack(MAGIC, VERSION, 3, 2, 0, 0, RING, 0, 4096 + RING,
                        b'another-topic-id' if case == 'welcome_id' else TID,
                        start, 1)],
              [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                struct.pack('@%di' % len(fds), *fds))])
    if case == 'rec_len':
        record(m, 0, RING, 0, 1)
    elif case == 'rec_fds':
        record(m, 0, 10, 2, 1)
    elif case == 'rec_pad':
        record(m, 0, 100, 1, 1)          # a PAD that does not fill the ring
    elif case == 'oldest':
        # Lapped (horizon above head 0), and the oldest record "below" it.
        struct.pack_into('@Q', m, 912, 5)   # oldest_seq
        struct.pack_into('@Q', m, 904, 8)   # oldest: not a multiple of 16
        struct.pack_into('@Q', m, 896, 64)  # horizon
    elif case == 'drop':
        record(m, 0, 10, 0, 1)
        time.sleep(0.3)
        c.send(MSG.pack(MAGIC, VERSION, 6, 0, 1, 0, 0, 0, 0, bytes(16), 0, 0))
        c.close()
        time.sleep(1)
        return
    elif case == 'drop_early':
        sub = mmap.mmap(hello_fds[0], 4096, prot=mmap.PROT_READ)
        record(m, 0, 10, 0, 1)
        kick.send(b'\1', socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
        while struct.unpack_from('@Q', sub, 512)[0] < 32 and time.monotonic() < end:
            time.sleep(0.001)
        c.send(MSG.pack(MAGIC, VERSION, 6, 0, 1, 0, 0, 0, 0, bytes(16), 0, 0))
        struct.pack_into('@Q', m, 1024, 1)  # dropped, after the DROP
        record(m, 32, 10, 0, 2)
        record(m, 64, 10, 0, 3, fill=b'B')  # what an overwrite would leave
        kick.send(b'\1', socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
        time.sleep(2)                       # the socket stays open
        return
    elif case == 'hangup':
        record(m, 0, 10, 0, 1)
        time.sleep(0.3)
        c.close()
        time.sleep(1)
        return
    elif case == 'kick_fds':
        if kick_with_fds(kick, end):
            record(m, 0, 10, 0, 1)
            record(m, 32, 0, 0, 2)       # the end of the stream
    elif case == 'bell_shut':
        kick.shutdown(socket.SHUT_WR)
    elif case == 'bell_close':
        kick.close()
    if case != 'bell_close':
        try:                             # wake it, whatever it armed
            kick.send(b'\1', socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
        except OSError:
            pass
    while time.monotonic() < end:
        time.sleep(0.1)
    if helper:
        helper.kill()


if __name__ == '__main__':
    if len(sys.argv) == 2 and sys.argv[1] == '--cases':
        for k, (rc, text) in CASES.items():
            print('%s %d %s' % (k, rc, text))
        sys.exit(0)
    main()
