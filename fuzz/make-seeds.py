#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpora: fuzz/corpus/ring/seed-* and fuzz/corpus/proto/seed-*.

The ring seeds are programs for fuzz_ring.c (its header comment and enum op
describe the encoding; keep OP below in sync).  They walk valid sessions
into deep states (wrap-around with pad records, full rings, sleepers and
their kicks, indices near 2^32) plus one of each forgery, so the fuzzer
starts from there.  Usage: fuzz/make-seeds.py [FUZZ_DIR]
"""
import os
import struct
import sys

OP = dict(RX_PEEK=0, RX_RELEASE=1, RX_WAIT=2, RX_DRAIN=3, TX_RESERVE=4,
          TX_COMMIT=5, TX_CANCEL=6, TX_WAIT=7, TX_SEND=8, PEER_SEND=9,
          PEER_RECV=10, PEER_RX_WAIT=11, PEER_TX_WAIT=12, SET_TAIL=13,
          SET_HEAD=14, SET_EVENT=15, POKE_DATA=16, POKE_HDR=17,
          PEER_RESYNC=18)

# Argument formats after each opcode byte (little-endian).
ARGS = dict(RX_DRAIN="B", TX_RESERVE="H", TX_COMMIT="H", TX_WAIT="H",
            TX_SEND="HB", PEER_SEND="HB", PEER_RECV="B", PEER_TX_WAIT="H",
            SET_TAIL="BI", SET_HEAD="BI", SET_EVENT="BI", POKE_HDR="HII")

REGION_HDR = 4096
PROTO_MAGIC = 0x48535645


def cfg(tx=0, rx=0, tx_mode=0, rx_mode=0, tx_arg=0, rx_arg=0):
    """Config byte: ring sizes 4096 << tx / rx, start index modes."""
    b = bytes([tx | rx << 2 | tx_mode << 4 | rx_mode << 6])
    if tx_mode:
        b += struct.pack("<I", tx_arg)
    if rx_mode:
        b += struct.pack("<I", rx_arg)
    return b


def op(name, *args):
    if name == "POKE_DATA":
        off, data = args
        return bytes([OP[name]]) + struct.pack("<HB", off, len(data)) + data
    return bytes([OP[name]]) + struct.pack("<" + ARGS.get(name, ""), *args)


def prog(*ops):
    return b"".join(ops)


def ring_seeds():
    s = {}
    s["basic"] = cfg() + prog(
        op("TX_SEND", 100, 2), op("PEER_RECV", 9), op("PEER_SEND", 100, 2),
        op("RX_PEEK"), op("RX_PEEK"), op("RX_RELEASE"), op("RX_DRAIN", 9),
        op("RX_RELEASE"), op("TX_COMMIT", 0))
    # Odd lengths that straddle the end of a 4 KiB ring: pad records.
    s["wrap"] = cfg() + prog(*[
        x for _ in range(6) for x in (
            op("TX_SEND", 1500, 1), op("PEER_RECV", 1),
            op("PEER_SEND", 1500, 1), op("RX_DRAIN", 1))])
    s["max-msg"] = cfg(1, 1) + prog(
        op("TX_SEND", 4088, 1), op("TX_SEND", 4088, 1), op("TX_SEND", 4088, 1),
        op("PEER_RECV", 3), op("PEER_SEND", 4088, 3), op("RX_DRAIN", 3),
        op("TX_RESERVE", 0xf000), op("TX_RESERVE", 0xffff))
    # Indices just below 2^32 and 2^31, and an arbitrary start.
    s["near-wrap"] = cfg(0, 0, 2, 2, 40, 40) + prog(
        *[op("TX_SEND", 700, 3), op("PEER_RECV", 3), op("PEER_SEND", 700, 3),
          op("RX_DRAIN", 3)] * 4)
    s["half-wrap"] = cfg(0, 3, 3, 3, 8, 300) + prog(
        op("PEER_SEND", 3000, 8), op("RX_DRAIN", 8), op("TX_SEND", 9, 16),
        op("PEER_RECV", 16))
    s["start-any"] = cfg(2, 0, 1, 1, 0x1234567, 0xfedcba98) + prog(
        op("TX_SEND", 17, 16), op("PEER_RECV", 20), op("PEER_SEND", 33, 16),
        op("RX_DRAIN", 20))
    # Sleepers and kicks, both ways, for data and for room.
    s["wake-data"] = cfg() + prog(
        op("RX_WAIT"), op("PEER_SEND", 8, 1), op("RX_WAIT"), op("RX_DRAIN", 1),
        op("RX_WAIT"), op("PEER_RX_WAIT"), op("TX_SEND", 8, 1),
        op("PEER_RECV", 1), op("PEER_RX_WAIT"))
    s["wake-room"] = cfg() + prog(
        op("TX_SEND", 1000, 5), op("TX_WAIT", 1000), op("PEER_RECV", 1),
        op("TX_WAIT", 1000), op("PEER_RECV", 4), op("PEER_SEND", 2000, 3),
        op("PEER_TX_WAIT", 2000), op("RX_DRAIN", 1), op("RX_DRAIN", 1))
    # Reservation life cycle: shrink, cancel, busy, bad commits.
    s["reserve"] = cfg() + prog(
        op("TX_COMMIT", 0), op("TX_RESERVE", 500), op("TX_RESERVE", 10),
        op("TX_COMMIT", 0x8001), op("TX_COMMIT", 100), op("TX_RESERVE", 300),
        op("TX_CANCEL"), op("TX_RESERVE", 3), op("TX_COMMIT", 3),
        op("PEER_RECV", 4))
    # Records flagged RING_F_FDS (n & 0x10, commit bit 12), and commits
    # with flags that are not allowed (bits 13, 14).
    s["flags"] = cfg() + prog(
        op("TX_SEND", 40, 0x12), op("TX_RESERVE", 50), op("TX_COMMIT", 0x2000),
        op("TX_COMMIT", 0x4000), op("TX_COMMIT", 0x1000), op("PEER_RECV", 5),
        op("PEER_SEND", 60, 0x11), op("PEER_SEND", 60, 0), op("RX_DRAIN", 4))
    # One of each forgery on a live ring.
    s["forge-tail"] = cfg() + prog(
        op("PEER_SEND", 64, 2), op("SET_TAIL", 2, 8), op("RX_DRAIN", 4),
        op("SET_TAIL", 1, 4097), op("RX_PEEK"))
    s["forge-tail-back"] = cfg() + prog(
        op("PEER_SEND", 64, 2), op("RX_PEEK"), op("SET_TAIL", 2, 0xfffffff8),
        op("RX_WAIT"))
    s["forge-head"] = cfg() + prog(
        op("TX_SEND", 64, 2), op("SET_HEAD", 1, 0x10), op("TX_SEND", 64, 40),
        op("SET_HEAD", 2, 0xfffffff8), op("TX_WAIT", 2000))
    s["forge-pad"] = cfg() + prog(
        op("SET_TAIL", 1, 16), op("POKE_HDR", 0, 4088, 1), op("RX_PEEK"))
    s["forge-len"] = cfg() + prog(
        op("SET_TAIL", 1, 16), op("POKE_HDR", 0, 2041, 0), op("RX_PEEK"))
    s["forge-flags"] = cfg() + prog(
        op("SET_TAIL", 1, 32), op("POKE_HDR", 0, 8, 2), op("POKE_HDR", 16, 8, 4),
        op("RX_DRAIN", 2))
    # A record header near the end of the ring that would run past it.
    s["forge-straddle"] = cfg() + prog(
        op("PEER_SEND", 2032, 1), op("RX_DRAIN", 0), op("PEER_SEND", 2032, 1),
        op("RX_DRAIN", 0), op("SET_TAIL", 1, 64), op("POKE_HDR", 4080, 40, 0),
        op("RX_PEEK"))
    s["forge-data"] = cfg() + prog(
        op("PEER_SEND", 30, 1), op("POKE_DATA", 8, b"garbage!"),
        op("RX_DRAIN", 2), op("SET_EVENT", 5, 0), op("SET_EVENT", 1, 0),
        op("PEER_RESYNC"), op("PEER_SEND", 30, 1), op("RX_DRAIN", 2))
    return s


def proto_msg(type_, ring=4096, peer=0, region=None, status=0, magic=PROTO_MAGIC,
              version=1, features=0, reserved=0):
    if region is None:
        region = REGION_HDR + ring
    return struct.pack("<IHHIIIIII", magic, version, type_, features, status,
                       ring, peer, region & 0xffffffff, reserved)


def proto_seeds():
    s = {
        "hello": proto_msg(1),
        "hello-peer": proto_msg(1, 1 << 20, 1 << 16),
        "hello-max": proto_msg(1, 1 << 30, 1 << 30),
        "welcome": proto_msg(2, 1 << 16),
        "welcome-long": proto_msg(2) + b"\0" * 8,
        "welcome-peer": proto_msg(2, 4096, 4096),
        "version": proto_msg(1, version=2),
        "magic": proto_msg(1, magic=0x48535646),
        "short": proto_msg(2)[:31],
        "region": proto_msg(1, 4096, region=4096),
        "ring-odd": proto_msg(1, 4096 + 8),
        "ring-small": proto_msg(2, 2048),
        "ring-big": proto_msg(2, 1 << 31, region=(1 << 31) + 4096),
    }
    for name, (nfds, seq, reserved) in {
            "fds": (1, 0, 0), "fds-many": (253, 1 << 40, 0),
            "fds-reserved": (3, 7, 1)}.items():
        s[name] = struct.pack("<IHHIIQ", PROTO_MAGIC, 1, 4, nfds, reserved, seq)
    for reason in range(0, 7):
        s["reject-%d" % reason] = proto_msg(3, 0, region=0, status=reason)
    return s


def write(dirname, seeds):
    os.makedirs(dirname, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(dirname, "seed-" + name), "wb") as f:
            f.write(data)


def main():
    here = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
        os.path.abspath(__file__))
    write(os.path.join(here, "corpus", "ring"), ring_seeds())
    write(os.path.join(here, "corpus", "proto"), proto_seeds())


if __name__ == "__main__":
    main()
