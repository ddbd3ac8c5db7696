# SPDX-License-Identifier: MIT
"""Python against the C side, both ways: the evshm command (send / recv
and pub / sub, see man/evshm.1.scd for their stream protocol) and the C
examples (echo-server, echo-client; frame-pass, which passes sealed
memfds)."""
import errno
import fcntl
import mmap
import os
import signal
import struct

import numpy as np
import pytest

import evshm
from evtest import connect_retry, payload, scale, subscribe_retry, unique_name

ACK = struct.Struct("=Q")  # recv's confirmation: bytes written, native order


def test_python_sends_to_evshm_recv(spawn, build_dir, tmp_path):
    name = unique_name("cli-recv")
    out = tmp_path / "out"
    data = os.urandom(scale(3 << 20))
    with open(out, "wb") as f:
        p = spawn(os.path.join(build_dir, "tools", "evshm"), "recv", name, stdout=f)
    with connect_retry(name) as ch:
        for off in range(0, len(data), 100_000):
            ch.send(data[off:off + 100_000])
        ch.send(b"")  # end of stream
        assert ACK.unpack(ch.recv(timeout=30))[0] == len(data)
    p.expect(0)
    assert out.read_bytes() == data


def test_evshm_send_to_python(spawn, build_dir, tmp_path):
    name = unique_name("cli-send")
    src = tmp_path / "in"
    src.write_bytes(os.urandom(scale(3 << 20)))
    with evshm.listen(name) as listener:
        with open(src, "rb") as f:
            p = spawn(os.path.join(build_dir, "tools", "evshm"), "send", "--wait",
                      name, stdin=f)
        ch = listener.accept(timeout=30)
    got = bytearray()
    while True:
        with ch.peek(timeout=30) as buf:  # zero copy, as the C tool does
            if not buf:
                break
            got += buf
    ch.send(ACK.pack(len(got)))
    p.expect(0)
    ch.close()
    assert got == src.read_bytes()


def test_python_client_of_c_echo_server(spawn, build_dir, tmp_path):
    name = unique_name("c-echo-server")
    log = tmp_path / "log"
    with open(log, "w") as f:
        server = spawn(os.path.join(build_dir, "examples", "echo-server"), name,
                       stdout=f)
    with connect_retry(name) as ch:
        for i in range(scale(5000)):
            msg = payload(i, i % 1500)
            ch.send(msg)
            assert ch.recv(timeout=30) == msg
    server.p.send_signal(signal.SIGTERM)
    server.expect(0)
    assert f"connect: pid {os.getpid()} uid {os.getuid()}" in log.read_text()


def test_c_echo_client_of_python_server(spawn, build_dir):
    name = unique_name("py-echo-server")
    with evshm.listen(name) as listener:
        client = spawn(os.path.join(build_dir, "examples", "echo-client"), name,
                       f"--n={scale(20000)}", "--max=4096")
        ch = listener.accept(timeout=30)
    # Echo zero copy, ring to ring, until the client closes.
    try:
        while True:
            with ch.peek(timeout=30) as buf:
                ch.send(buf, timeout=30)
    except BrokenPipeError:
        pass
    ch.close()
    client.expect(0)
    assert "messages echoed and verified" in client.p.stdout.read()


# --- descriptors: examples/frame-pass (sealed memfds beside a header) -----------

FRAME_HDR = struct.Struct("=QQQ")   # number, size, checksum (FNV-1a of words)
FRAME_ACK = struct.Struct("=QQiI")  # number, checksum, status, pad
FRAME_SEALS = (fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE |
               fcntl.F_SEAL_SEAL)
GOLDEN = 0x9E3779B97F4A7C15


def frame_words(number, size):
    """Frame @number's contents as frame-pass makes them."""
    with np.errstate(over="ignore"):
        return np.uint64(number) * np.uint64(GOLDEN) + np.arange(size // 8, dtype=np.uint64)


def fnv1a(words):
    h = 0xCBF29CE484222325
    for w in words.tolist():
        h = ((h ^ w) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def test_python_server_of_c_frame_pass(spawn, build_dir):
    """The C client sends 1 MiB sealed memfds; Python maps each read-only
    (a numpy view of the sender's pages) and checks it."""
    name = unique_name("frames-c2py")
    with evshm.listen(name, fds=True) as listener:
        client = spawn(os.path.join(build_dir, "examples", "frame-pass"), "client",
                       name, "--frames=3", "--mib=1")
        ch = listener.accept(timeout=30)
    for f in range(1, 4):
        hdr, fds = ch.recv_fds(timeout=30)
        number, size, checksum = FRAME_HDR.unpack(hdr)
        assert (number, size, len(fds)) == (f, 1 << 20, 1)
        assert fcntl.fcntl(fds[0], fcntl.F_GET_SEALS) & FRAME_SEALS == FRAME_SEALS
        with mmap.mmap(fds[0], size, prot=mmap.PROT_READ) as m:
            frame = np.frombuffer(m, np.uint64)
            ok = np.array_equal(frame, frame_words(number, size))
            del frame
        os.close(fds[0])
        ch.send(FRAME_ACK.pack(number, checksum if ok else 0, 0 if ok else -errno.EBADMSG, 0))
    with pytest.raises(BrokenPipeError):
        ch.recv_fds(timeout=30)
    ch.close()
    client.expect(0)
    assert client.p.stdout.read().count("sent and verified") == 3


def test_python_client_of_c_frame_pass(spawn, build_dir):
    """Python makes sealed memfds and sends them; the C server maps and
    checks them."""
    name = unique_name("frames-py2c")
    server = spawn(os.path.join(build_dir, "examples", "frame-pass"), "server", name)
    size = 1 << 20
    with connect_retry(name, fds=True) as ch:
        for f in (1, 2):
            words = frame_words(f, size)
            fd = os.memfd_create("frame", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            os.write(fd, words.tobytes())
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, FRAME_SEALS)
            checksum = fnv1a(words)
            ch.send_fds(FRAME_HDR.pack(f, size, checksum), [fd], timeout=30)
            os.close(fd)
            number, got, status, _ = FRAME_ACK.unpack(ch.recv(timeout=30))
            assert (number, got, status) == (f, checksum, 0)
    server.expect(0)
    assert server.p.stdout.read().count("checksum ok") == 2


# --- topics: evshm pub / evshm sub ------------------------------------------------


def test_evshm_pub_to_python_subscribers(peer, spawn, build_dir, tmp_path):
    """`evshm pub` publishes a file; two Python subscribers get every byte,
    then the empty end message; pub exits 0 once both have read it."""
    name = unique_name("cli-pub")
    src = tmp_path / "in"
    src.write_bytes(os.urandom(scale(2 << 20)))
    with open(src, "rb") as f:
        pub = spawn(os.path.join(build_dir, "tools", "evshm"), "pub",
                    "--subscribers", "2", "--ring", "1M", "--chunk", "64K", name,
                    stdin=f)
    subs = [subscribe_retry(name, 20) for _ in range(2)]
    data = [bytearray(), bytearray()]
    while True:  # in step: each gets the same messages
        msgs = [sub.recv(timeout=30) for sub in subs]
        if not msgs[0]:
            break
        for out, msg in zip(data, msgs):
            out += msg
    assert msgs == [b"", b""]
    pub.expect(0)
    for sub, out in zip(subs, data):
        assert sub.policy == evshm.RELIABLE and sub.lost == 0
        assert out == src.read_bytes()
        sub.close()


def test_python_publisher_to_evshm_sub(spawn, build_dir, tmp_path):
    """Python publishes (zero copy) to two `evshm sub`; each writes the
    whole stream and exits 0 on the end message."""
    name = unique_name("cli-sub")
    data = os.urandom(scale(2 << 20))
    outs = [tmp_path / f"out{k}" for k in range(2)]
    with evshm.publish(name, ring_size=1 << 20,
                       stall_timeout_ms=30_000) as pub:
        subs = []
        for out in outs:
            with open(out, "wb") as f:
                subs.append(spawn(os.path.join(build_dir, "tools", "evshm"), "sub",
                                  "--wait", "--timeout", "20", name, stdout=f))
        pub.wait_subscribers(2, timeout=30)
        for off in range(0, len(data), 100_000):
            chunk = data[off:off + 100_000]
            with pub.reserve(len(chunk), timeout=30) as buf:
                buf[:] = chunk
        pub.send(b"", timeout=30)  # the end
        for s in subs:
            s.expect(0)
    for out in outs:
        assert out.read_bytes() == data
