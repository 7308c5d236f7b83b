#!/usr/bin/env python3
"""A fragmented TCP SYN scan over IPv6, as `nmap -f -sS` does over IPv4
(nmap refuses -f with -6: "fragmentation ... not supported with IPv6").

    frag_syn_scan.py DEV SRC6 DST6 PORT...

Each SYN (a 32-byte TCP header: MSS, SACK permitted, window scale) leaves
in two fragments written straight into DEV with an AF_PACKET socket: the
first holds the fragment header and the TCP header's first 24 bytes (RFC
8200 4.5: the first fragment must hold the upper-layer header, which
Linux's `ipv6frag_thdr_truncated` takes as 20 bytes for TCP), the second
the last 8. Answers are read on DEV: SYN-ACK is open, RST closed, nothing
after three tries filtered. Prints one line a port, as nmap does:
"PORT/tcp STATE".
"""

import os
import select
import socket
import struct
import sys
import time

from fraglib import IPPROTO_TCP, csum, v6_fragment

ETH_P_IPV6 = 0x86DD
PACKET_OUTGOING = 4


def syn(src, dst, sport, dport, seq):
    opts = struct.pack("!BBH", 2, 4, 1460) + bytes([4, 2, 1, 1]) + bytes([1, 3, 3, 7])
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, (20 + len(opts)) // 4 << 4, 0x02, 64240, 0, 0) + opts
    pseudo = src + dst + struct.pack("!IxxxB", len(tcp), 6)
    c = csum(pseudo + tcp)
    return tcp[:16] + struct.pack("!H", c) + tcp[18:]


def fragments(src, dst, tcp, ident):
    return [
        v6_fragment(src, dst, IPPROTO_TCP, ident, 0, True, tcp[:24]),
        v6_fragment(src, dst, IPPROTO_TCP, ident, 24, False, tcp[24:]),
    ]


def main():
    dev, src6, dst6 = sys.argv[1:4]
    ports = [int(p) for p in sys.argv[4:]]
    src, dst = socket.inet_pton(socket.AF_INET6, src6), socket.inet_pton(socket.AF_INET6, dst6)
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
    rx = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IPV6))
    rx.bind((dev, ETH_P_IPV6))
    sport = 40000 + os.getpid() % 20000
    state = {p: "filtered" for p in ports}
    for attempt in range(3):
        waiting = [p for p in ports if state[p] == "filtered"]
        if not waiting:
            break
        for p in waiting:
            ident = int.from_bytes(os.urandom(4), "big")
            for f in fragments(src, dst, syn(src, dst, sport, p, ident), ident):
                tx.sendto(f, (dev, ETH_P_IPV6))
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and any(state[p] == "filtered" for p in waiting):
            r, _, _ = select.select([rx], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            pkt, addr = rx.recvfrom(65536)
            if addr[2] == PACKET_OUTGOING or len(pkt) < 60 or pkt[6] != 6:
                continue
            if pkt[8:24] != dst or pkt[24:40] != src:
                continue
            psrc, pdst = struct.unpack("!HH", pkt[40:44])
            flags = pkt[53]
            if pdst != sport or psrc not in state:
                continue
            if flags & 0x12 == 0x12:
                state[psrc] = "open"
            elif flags & 0x04:
                state[psrc] = "closed"
    for p in ports:
        print(f"{p}/tcp {state[p]}")


if __name__ == "__main__":
    main()
