"""Packet building shared by frag_attack.py and frag_syn_scan.py: the
Internet checksum (RFC 1071) and IPv4 and IPv6 fragments."""

import struct

IPPROTO_TCP = 6
IPPROTO_UDP = 17
NEXT_FRAGMENT = 44


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def v4_fragment(src, dst, proto, ident, offset, more, payload):
    """An IPv4 fragment (TTL 64): `payload` at byte `offset` (a multiple
    of 8) of datagram `ident`, MF as `more`; header checksum set."""
    flags = (0x2000 if more else 0) | (offset // 8)
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags, 64, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def v6_fragment(src, dst, next_header, ident, offset, more, payload):
    """An IPv6 packet (hop limit 64) whose only extension header is a
    fragment header: `payload` at byte `offset` of datagram `ident`."""
    frag = struct.pack("!BBHI", next_header, 0, offset | (1 if more else 0), ident)
    h = struct.pack("!IHBB16s16s", 6 << 28, 8 + len(payload), NEXT_FRAGMENT, 64, src, dst)
    return h + frag + payload
