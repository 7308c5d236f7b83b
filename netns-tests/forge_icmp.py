#!/usr/bin/env python3
"""Send a forged ICMP error quoting a packet that never existed.

usage: forge_icmp.py DEST INNER_SRC INNER_DST INNER_SPORT INNER_DPORT [TYPE CODE]

Sends, from this namespace, an ICMP error (default type 3 code 3, port
unreachable) to DEST whose embedded header claims to be a UDP datagram
INNER_SRC:INNER_SPORT -> INNER_DST:INNER_DPORT. The kernel adds the outer IP
header. Used to check that tunfw drops ICMP errors that match no flow.
"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "parity"))
from corpus import csum as checksum  # noqa: E402  (the Internet checksum)


def main() -> None:
    dest, isrc, idst = sys.argv[1:4]
    sport, dport = int(sys.argv[4]), int(sys.argv[5])
    icmp_type = int(sys.argv[6]) if len(sys.argv) > 6 else 3
    icmp_code = int(sys.argv[7]) if len(sys.argv) > 7 else 3
    udp = struct.pack("!HHHH", sport, dport, 8 + 4, 0) + b"ping"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0x1234, 0, 64, 17, 0,
                     socket.inet_aton(isrc), socket.inet_aton(idst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    body = ip + udp
    hdr = struct.pack("!BBHI", icmp_type, icmp_code, 0, 0)
    msg = hdr[:2] + struct.pack("!H", checksum(hdr + body)) + hdr[4:] + body
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.sendto(msg, (dest, 0))


if __name__ == "__main__":
    main()
