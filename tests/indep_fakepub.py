#!/usr/bin/env python3
"""A hostile topic publisher for tests/indep_sub.py: `indep_fakepub.py CASE NAME`.

Listens at NAME, takes one subscriber, and breaks docs/protocol.md in the
way CASE says (see CASES). Prints "ready" on stdout once it listens. It
lives at most 10 s. Python standard library only.
"""

import fcntl
import mmap
import os
import socket
import struct
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
    'bell_fifo': (3, 'not an anonymous pipe'),
    'bell_wr': (3, 'not a read end'),
    # records
    'rec_len': (1, 'violation: record length'),
    'rec_fds': (1, 'violation: flags 0x2'),
    'rec_pad': (1, 'violation: bad PAD'),
    'oldest': (1, 'violation: oldest'),        # latest: a bad jump target
    # the end
    'idle': (1, 'nothing published'),          # alive, publishes nothing
    'drop': (5, 'dropped by the publisher'),
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
    ls.settimeout(10)
    c, _ = ls.accept()
    c.settimeout(10)
    end = time.monotonic() + 10
    policy = 2 if case == 'oldest' else 1
    if case == 'silent':
        time.sleep(10)
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
    _, hello_anc, _, _ = c.recvmsg(128, socket.CMSG_SPACE(64))
    del hello_anc                        # its descriptors die with us
    fd, m = region(kind=1 if case == 'region_kind' else 2, sealed=case != 'unsealed')
    rfd = os.open('/proc/self/fd/%d' % fd, os.O_RDONLY | os.O_CLOEXEC)
    br, bw = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    bell = br
    if case == 'bell_fifo':
        path = '/tmp/indep-fakepub-%d.fifo' % os.getpid()
        os.mkfifo(path)
        bell = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        os.unlink(path)
    if case == 'bell_wr':
        bell = bw
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
    elif case == 'hangup':
        record(m, 0, 10, 0, 1)
        time.sleep(0.3)
        c.close()
        time.sleep(1)
        return
    os.write(bw, b'\1')                  # wake it, whatever it armed
    while time.monotonic() < end:
        time.sleep(0.1)


if __name__ == '__main__':
    if len(sys.argv) == 2 and sys.argv[1] == '--cases':
        for k, (rc, text) in CASES.items():
            print('%s %d %s' % (k, rc, text))
        sys.exit(0)
    main()
