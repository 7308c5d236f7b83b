#!/usr/bin/env python3
"""Send a forged ICMP or ICMPv6 error quoting a packet that never existed.

usage: forge_icmp.py DEST INNER_SRC INNER_DST INNER_SPORT INNER_DPORT [TYPE CODE]

Sends, from this namespace, an ICMP error to DEST whose embedded header
claims to be a UDP datagram INNER_SRC:INNER_SPORT -> INNER_DST:INNER_DPORT.
IPv4 addresses: ICMP, default type 3 code 3 (port unreachable). IPv6
addresses: ICMPv6, default type 1 code 4 (port unreachable). The kernel adds
the outer IP header (and, for ICMPv6, the checksum over its pseudo-header).
Used to check that tunfw drops ICMP errors that match no flow.
"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "parity"))
from corpus import csum as checksum  # noqa: E402  (the Internet checksum)


def quoted_v4(isrc, idst, sport, dport):
    udp = struct.pack("!HHHH", sport, dport, 8 + 4, 0) + b"ping"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0x1234, 0, 64, 17, 0,
                     socket.inet_aton(isrc), socket.inet_aton(idst))
    return ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:] + udp


def quoted_v6(isrc, idst, sport, dport):
    src = socket.inet_pton(socket.AF_INET6, isrc)
    dst = socket.inet_pton(socket.AF_INET6, idst)
    udp = struct.pack("!HHHH", sport, dport, 8 + 4, 0) + b"ping"
    pseudo = src + dst + struct.pack("!IxxxB", len(udp), 17)
    udp = udp[:6] + struct.pack("!H", checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    ip = struct.pack("!IHBB", 6 << 28, len(udp), 17, 64) + src + dst
    return ip + udp


def main() -> None:
    dest, isrc, idst = sys.argv[1:4]
    sport, dport = int(sys.argv[4]), int(sys.argv[5])
    v6 = ":" in dest
    icmp_type = int(sys.argv[6]) if len(sys.argv) > 6 else (1 if v6 else 3)
    icmp_code = int(sys.argv[7]) if len(sys.argv) > 7 else (4 if v6 else 3)
    if v6:
        body = quoted_v6(isrc, idst, sport, dport)
        # The kernel computes the ICMPv6 checksum of a raw ICMPv6 socket.
        msg = struct.pack("!BBHI", icmp_type, icmp_code, 0, 0) + body
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        s.sendto(msg, (dest, 0))
        return
    body = quoted_v4(isrc, idst, sport, dport)
    hdr = struct.pack("!BBHI", icmp_type, icmp_code, 0, 0)
    msg = hdr[:2] + struct.pack("!H", checksum(hdr + body)) + hdr[4:] + body
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.sendto(msg, (dest, 0))


if __name__ == "__main__":
    main()
