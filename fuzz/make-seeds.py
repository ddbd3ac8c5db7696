#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpora of protocol 2: fuzz/corpus/{ring,proto,region}/seed-*.

The ring seeds are programs for fuzz_ring.c (its header comment and enum op
describe the encoding; keep OP below in sync).  They walk valid sessions
into deep states (wrap-around with pad records, full rings, indices near
2^32 and 2^63) plus one of each forgery, so the fuzzer starts from there.
The proto seeds are each message type of docs/protocol.md 3.1 and 7, valid
and spoilt; the region seeds are headers of each kind (4.1).
Usage: fuzz/make-seeds.py [FUZZ_DIR]   (the old seed-* files are replaced)
"""
import glob
import os
import struct
import sys

OP = dict(RX_PEEK=0, RX_RELEASE=1, RX_ARM=2, TX_SEND=3, TX_CANCEL=4,
          TX_ARM=5, PEER_SEND=6, PEER_RECV=7, SET_HEAD=8, POKE=9,
          POKE_REC=10, SET_WAIT=11)

# Argument formats after each opcode byte (little-endian).
ARGS = dict(TX_SEND="HB", TX_CANCEL="H", TX_ARM="H", PEER_SEND="HB",
            PEER_RECV="B", SET_HEAD="BI", POKE_REC="HIIb", SET_WAIT="IIII")

REGION_HDR = 4096
MAGIC = 0x48535645
VERSION = 2
READY, HELLO, WELCOME, REJECT, FDS, DROP = 1, 2, 3, 4, 5, 6
CHAN, TOPIC = 1, 2
PAD, FDS_FLAG = 1, 2


def cfg(tx=0, rx=0, start=0, a=0, b=0, skip_tx=False, skip_rx=False):
    """Config byte: ring sizes 4096 << tx / rx, where indices start."""
    c = bytes([tx | rx << 2 | start << 4 | skip_tx << 6 | skip_rx << 7])
    if start == 3:
        c += struct.pack("<II", a, b)
    return c


def op(name, *args):
    if name == "POKE":
        off, data = args
        return bytes([OP[name]]) + struct.pack("<HB", off, len(data)) + data
    return bytes([OP[name]]) + struct.pack("<" + ARGS.get(name, ""), *args)


def prog(*ops):
    return b"".join(ops)


def echo(n, size, flags=0):
    """n messages each way, each consumed at once."""
    return [x for _ in range(n) for x in (
        op("TX_SEND", size, flags), op("PEER_RECV", 1),
        op("PEER_SEND", size, flags), op("RX_PEEK"), op("RX_RELEASE"))]


def ring_seeds():
    s = {}
    s["basic"] = cfg() + prog(*echo(3, 100, FDS_FLAG), op("RX_ARM"),
                              op("TX_ARM", 100))
    # Odd lengths that straddle the end of a 4 KiB ring: pad records.
    s["wrap"] = cfg() + prog(*echo(8, 1500), *echo(8, 1000))
    s["full"] = cfg() + prog(
        *[op("TX_SEND", 2032, 0) for _ in range(3)], op("TX_ARM", 2032),
        op("PEER_RECV", 1), op("TX_SEND", 2032, 0),
        *[op("PEER_SEND", 2032, 0) for _ in range(3)], op("RX_PEEK"),
        op("RX_PEEK"), op("RX_RELEASE"), op("PEER_SEND", 2032, 0))
    s["big"] = cfg(3, 3) + prog(*echo(4, 30000), op("TX_SEND", 40000, 0))
    s["start-2^32"] = cfg(start=1) + prog(*echo(6, 1500))
    s["start-2^63"] = cfg(1, 2, start=2) + prog(*echo(6, 3000))
    s["start-odd"] = cfg(start=3, a=4000, b=2032) + prog(*echo(6, 700))
    s["fenceless"] = cfg(skip_tx=True, skip_rx=True) + prog(
        op("SET_WAIT", 2, 2, 0, 0), *echo(80, 16), op("RX_ARM"),
        op("TX_ARM", 16))
    s["cancel"] = cfg() + prog(op("TX_CANCEL", 100), *echo(2, 20))
    # Forgeries, one of each.
    s["forge-head-past"] = cfg() + prog(
        op("TX_SEND", 64, 0), op("SET_HEAD", 0, 0x10000),
        *[op("TX_SEND", 2032, 0) for _ in range(3)])
    s["forge-head-back"] = cfg() + prog(
        *echo(3, 2032), op("SET_HEAD", 1, 0xffffffe0),
        *[op("TX_SEND", 2032, 0) for _ in range(3)], op("TX_ARM", 2032))
    s["forge-head-odd"] = cfg() + prog(
        op("TX_SEND", 2032, 0), op("TX_SEND", 2032, 0),
        op("SET_HEAD", 1, 0xfffff808), op("TX_SEND", 64, 0))
    s["forge-len"] = cfg() + prog(op("POKE_REC", 0, 0xfffffff0, 0, 0),
                                  op("RX_PEEK"))
    s["forge-fit"] = cfg() + prog(
        *echo(3, 1008), op("POKE_REC", 3072, 1100, 0, 0), op("RX_PEEK"))
    s["forge-flags"] = cfg() + prog(op("POKE_REC", 0, 8, 4, 0), op("RX_PEEK"))
    s["forge-pad"] = cfg() + prog(op("POKE_REC", 0, 100, PAD, 0),
                                  op("RX_PEEK"))
    s["forge-pad-alone"] = cfg() + prog(
        *echo(1, 2032), op("POKE_REC", 2048, 2032, PAD, 0), op("RX_PEEK"))
    s["forge-pad-pad"] = cfg() + prog(
        *echo(1, 2032), op("POKE_REC", 0, 4080, PAD, 0),
        op("POKE_REC", 2048, 2032, PAD, 0), op("RX_PEEK"))
    s["forge-seq"] = cfg() + prog(op("POKE_REC", 0, 8, 0, 1), op("RX_PEEK"),
                                  op("RX_ARM"), op("POKE_REC", 0, 8, 0, -1),
                                  op("RX_PEEK"))
    s["forge-data"] = cfg() + prog(
        op("PEER_SEND", 30, 0), op("POKE", 16, b"garbage!"), op("RX_PEEK"),
        op("RX_RELEASE"), op("POKE", 32, b"\x10\0\0\0\0\0\0\0\x02"),
        op("RX_PEEK"))
    return s


def msg(type_, kind=0, status=0, features=0, ring=0, peer=0, region=None,
        ident=b"\0" * 16, param=0, param2=0, magic=MAGIC, version=VERSION):
    if region is None:
        region = REGION_HDR + ring if ring else 0
    return struct.pack("<IHHIIIIII16sQQ", magic, version, type_, kind, status,
                       features, ring, peer, region & 0xffffffff, ident,
                       param, param2)


def proto_seeds():
    ident = bytes(range(16))
    s = {
        "ready-chan": msg(READY, CHAN, peer=1 << 26),
        "ready-topic": msg(READY, TOPIC, peer=1 << 20, ident=ident, param=1),
        "ready-latest": msg(READY, TOPIC, features=1, peer=1 << 30,
                            ident=ident, param=2),
        "hello": msg(HELLO, CHAN, ring=4096, ident=ident),
        "hello-peer": msg(HELLO, CHAN, features=1, ring=1 << 20,
                          peer=1 << 16, ident=ident),
        "hello-max": msg(HELLO, CHAN, ring=1 << 30, peer=1 << 30, ident=ident),
        "hello-topic": msg(HELLO, TOPIC, region=4096, ident=ident, param=5),
        "welcome": msg(WELCOME, CHAN, ring=1 << 16, ident=ident),
        "welcome-topic": msg(WELCOME, TOPIC, ring=1 << 16, ident=ident,
                             param=4096, param2=7),
        "welcome-long": msg(WELCOME, CHAN, ring=4096) + b"\0" * 8,
        "welcome-peer": msg(WELCOME, CHAN, ring=4096, peer=4096),
        "version": msg(HELLO, CHAN, ring=4096, version=3),
        "version-1": msg(HELLO, CHAN, ring=4096, version=1),
        "magic": msg(HELLO, CHAN, ring=4096, magic=MAGIC + 1),
        "short": msg(WELCOME, CHAN, ring=4096)[:63],
        "region": msg(HELLO, CHAN, ring=4096, region=4096),
        "ring-odd": msg(HELLO, CHAN, ring=4096 + 16),
        "ring-small": msg(WELCOME, CHAN, ring=2048),
        "ring-big": msg(WELCOME, CHAN, ring=1 << 31,
                        region=(1 << 31) + 4096),
        "status": msg(HELLO, CHAN, status=1, ring=4096),
        "param2": msg(HELLO, CHAN, ring=4096, param2=1),
        "drop": msg(DROP, status=1),
        "drop-fields": msg(DROP, status=2, param=1),
    }
    for name, (nfds, seq, reserved) in {
            "fds": (1, 0, 0), "fds-many": (253, 1 << 40, 0),
            "fds-reserved": (3, 7, 1)}.items():
        s[name] = struct.pack("<IHHIIQ", MAGIC, VERSION, FDS, nfds, reserved,
                              seq)
    s["fds-trailing"] = s["fds"] + b"\0"
    for reason in range(0, 7):
        s["reject-%d" % reason] = msg(REJECT, status=reason)
    s["reject-fields"] = msg(REJECT, status=3, ring=4096)
    return s


def region_hdr(kind, ring, role, name=b"", error=0, reason=0, states=(0, 0)):
    page = bytearray(REGION_HDR)
    struct.pack_into("<IIIIIIII16s", page, 0, MAGIC, VERSION, kind, REGION_HDR,
                     ring, role, 4242, 1, bytes(range(16)))
    page[48:48 + len(name)] = name
    struct.pack_into("<QQQ", page, 256, 4096, 10, 1000)
    struct.pack_into("<QI", page, 384, 0xffffffffffffffff, states[0])
    struct.pack_into("<QQQQ", page, 512, 2048, 5, 500, 0)
    struct.pack_into("<QI", page, 640, 0xffffffffffffffff, states[1])
    struct.pack_into("<IiI", page, 768, 3, error, reason)
    return bytes(page)


def region_seeds():
    # The last byte odd: fuzz_region sizes the file as the header says.
    odd = b"\x01"
    return {
        "chan": region_hdr(1, 4096, 1, b"@x\0") + odd,
        "chan-server": region_hdr(1, 1 << 16, 2, b"/run/x.sock\0", 0, 0,
                                  (1, 2)) + odd,
        "pub": region_hdr(2, 1 << 20, 2, b"@topic\0") + odd,
        "sub": region_hdr(3, 0, 1, b"@topic\0", -71, 12) + odd,
        "dropped": region_hdr(3, 0, 1, b"", -103, 0) + odd,
        "error": region_hdr(1, 4096, 1, b"@e\0", -71, 9) + odd,
        "no-nul": region_hdr(1, 4096, 1, b"n" * 108) + odd,
        "short": region_hdr(1, 4096, 1)[:100],
        "unsized": region_hdr(1, 4096, 1) + b"\x00",
        "kind-bad": region_hdr(4, 4096, 1) + odd,
        "ring-bad": region_hdr(1, 5000, 1) + odd,
    }


def write(dirname, seeds):
    os.makedirs(dirname, exist_ok=True)
    for old in glob.glob(os.path.join(dirname, "seed-*")):
        os.unlink(old)
    for name, data in seeds.items():
        with open(os.path.join(dirname, "seed-" + name), "wb") as f:
            f.write(data)


def main():
    here = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
        os.path.abspath(__file__))
    write(os.path.join(here, "corpus", "ring"), ring_seeds())
    write(os.path.join(here, "corpus", "proto"), proto_seeds())
    write(os.path.join(here, "corpus", "region"), region_seeds())


if __name__ == "__main__":
    main()
