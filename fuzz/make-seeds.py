#!/usr/bin/env python3
"""Write the seed inputs of the fuzz targets, fuzz/corpus/TARGET/seed-*.

usage: fuzz/make-seeds.py      (from the repository root)

The seeds are small and tracked; what the fuzzer adds to fuzz/corpus/TARGET/
is ignored (.gitignore). Seeds come from the repository's own files (the
default config, the netns tests' iptables and ip6tables seeds) and from
packets built here: TCP and UDP flows from both sides, as plain packets and
as offloaded super-packets behind a virtio-net header.
"""
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# config: the loader's input is the file's bytes.
default = read("config/default.ron")
write("config", "default.ron", default)
write("config", "minimal.ron", b"(outbound: (policy: Accept), inbound: (policy: Drop))\n")
write("config", "out-of-range.ron",
      b"(\n    conntrack: (timeouts: (tcp: (close: 0))),\n"
      b"    outbound: (policy: Drop),\n    inbound: (policy: Drop),\n)\n")
write("config", "small.ron", default.replace(b"max: 65536", b"max: 64").replace(
    b"ipv6: Track,", b"ipv6: Track, defrag: (high_thresh: 131072, low_thresh: 65536),"))

# import_iptables: a mode byte (0: IPv4 input, 1: IPv6 input, 2: IPv4 then
# IPv6, 3: IPv6 then IPv4; two inputs split at the first NUL), then text.
v4 = read("netns-tests/seed.iptables")
v6 = read("netns-tests/seed.ip6tables")
write("import_iptables", "v4.iptables", b"0" + v4)
write("import_iptables", "v6.ip6tables", b"1" + v6)
write("import_iptables", "both", b"2" + v4 + b"\0" + v6)
write("import_iptables", "save-form",
      b"0*raw\n-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\nCOMMIT\n"
      b"*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\n"
      b"-A INPUT -p tcp -m multiport --dports 22,80:90 -m conntrack --ctstate NEW -j ACCEPT\n"
      b"-A INPUT -s 10.0.0.0/8 -p icmp --icmp-type 8 -j ACCEPT\n"
      b"-A OUTPUT -p tcp -j REJECT --reject-with tcp-reset\nCOMMIT\n")

# control: one request per line.
write("control", "listings", b"stats\nflows\nexpectations\nrules\n")
write("control", "filters",
      b"flows proto=tcp state=SYN_SENT\nflows addr=fd00:1::2 family=6\n"
      b"flows state=ASSURED\nflows state=UNREPLIED port=53\nkill port=40000\nflows\n")
write("control", "kill-flush", b"kill proto=udp family=4\nflush\nstats\n")
write("control", "other", b"reload /etc/tunfw.ron\nevents\nkill\ncolour x=1\r\n")


# packet_path: records split at 0xfe; a record's first byte: bit 0 the side
# (0 LAN, 1 WAN), bit 1 a virtio-net header follows (10 bytes, host order).
def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


C4, S4 = bytes([10, 0, 1, 2]), bytes([10, 0, 2, 2])
C6 = bytes.fromhex("fd000001000000000000000000000002")
S6 = bytes.fromhex("fd000002000000000000000000000002")


def ip(src, dst, proto, l4, check_at):
    if len(src) == 4:
        pseudo = src + dst + struct.pack("!BBH", 0, proto, len(l4))
    else:
        pseudo = src + dst + struct.pack("!IxxxB", len(l4), proto)
    l4 = bytearray(l4)
    l4[check_at:check_at + 2] = struct.pack("!H", csum(pseudo + bytes(l4)))
    if len(src) == 4:
        h = bytearray(struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(l4), 1, 0x4000, 64, proto, 0))
        h += src + dst
        h[10:12] = struct.pack("!H", csum(bytes(h)))
    else:
        h = struct.pack("!IHBB", 0x60000000, len(l4), proto, 64) + src + dst
    return bytes(h) + bytes(l4)


def tcp(src, dst, sport, dport, seq, ack, flags, payload=b""):
    t = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    return ip(src, dst, 6, t + payload, 16)


def udp(src, dst, sport, dport, payload):
    u = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return ip(src, dst, 17, u, 6)


def vnet(gso_type, hdr_len, gso_size, csum_start, csum_offset):
    return struct.pack("=BBHHHH", 1, gso_type, hdr_len, gso_size, csum_start, csum_offset)


SYN, ACK, PSH = 0x02, 0x10, 0x08
LAN, WAN, LAN_VNET, WAN_VNET = b"\0", b"\1", b"\2", b"\3"


def body(n):
    return bytes(b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36] for i in range(n))


def tcp_flow(c, s, sport, dport, gso_type, iphl, data):
    """Handshake, a super-packet of `data` from the LAN, the WAN's ACK."""
    isn, risn = 1000, 5000
    sup = tcp(c, s, sport, dport, isn + 1, risn + 1, ACK | PSH, data)
    return [
        LAN + tcp(c, s, sport, dport, isn, 0, SYN),
        WAN + tcp(s, c, dport, sport, risn, isn + 1, SYN | ACK),
        LAN + tcp(c, s, sport, dport, isn + 1, risn + 1, ACK),
        LAN_VNET + vnet(gso_type, iphl + 20, 1448, iphl, 16) + sup,
        WAN_VNET + vnet(0, 0, 0, 0, 0) + tcp(s, c, dport, sport, risn + 1, isn + 1 + len(data), ACK),
    ]


def records(recs):
    out = b"\xfe".join(recs)
    assert b"\xfe" not in b"".join(recs), "a record holds the separator"
    return out


write("packet_path", "tso4", records(tcp_flow(C4, S4, 40000, 80, 1, 20, body(4000))))
write("packet_path", "tso6", records(tcp_flow(C6, S6, 40000, 80, 4, 40, body(4000))))
# The FTP helper's flow: a super-packet holding a PORT line is sent back to be cut.
port = b"NOOP\r\n" + b"x" * 1442 + b"PORT 10,0,1,2,200,10\r\n"
write("packet_path", "ftp-port", records(tcp_flow(C4, S4, 40001, 21, 1, 20, port)))
usoseg = body(3000)
write("packet_path", "uso-udp", records([
    LAN_VNET + vnet(5, 28, 1000, 20, 6) + udp(C4, S4, 1000, 53, usoseg),
    WAN + udp(S4, C4, 53, 1000, b"answer"),
    LAN + udp(C6, S6, 1001, 53, b"query"),
    WAN + udp(S6, C6, 53, 1001, b"answer"),
]))
