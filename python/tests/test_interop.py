# SPDX-License-Identifier: MIT
"""Python against the C side: the evshm command (send / recv, see
docs/evshm.1.md for its stream protocol) and the C examples
(echo-server, echo-client), both ways."""
import os
import signal
import struct

import evshm
from evtest import connect_retry, payload, scale, unique_name

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
