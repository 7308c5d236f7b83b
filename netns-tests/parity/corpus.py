"""The parity corpus: packet sequences replayed through Linux and tunfw.

Each sequence is (name, [Step]); each step sends one IP packet from the
client ("c") or the server ("s") side. Flows use addresses no endpoint owns
(IPv4: client 10.202.1.50, server 10.202.2.50; IPv6: fd00:7f:1::50 and
fd00:7f:2::50) and a source port (or ICMP identifier) unique to the
sequence, so sequences do not share conntrack entries. A step builds its
packet from a number the replay chooses: the IP ID of an IPv4 packet, the
flow label of an IPv6 one, by which the far side recognises it.

The IPv4 corpus: fixed() and random_sequence() (names random_SEED_INDEX);
the IPv6 corpus: fixed6() (names v6_*) and random6_sequence() (names
random6_SEED_INDEX). Fragment sequences of both families are in
fragcorpus.py: fixed ones (frag_*, v6_frag_*) end fixed() and fixed6(),
random ones are randfrag_SEED_INDEX and randfrag6_SEED_INDEX.

Every sequence is a pure function of its name (and, for a random sequence,
of the seed, which its name carries: random_SEED_INDEX), so select() can
rebuild one sequence alone and replaying it sends exactly the packets it sent
in the full run.
"""
import random
import re
import socket
import struct

C_ADDR = "10.202.1.50"
S_ADDR = "10.202.2.50"
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def aton(a):
    return bytes(int(x) for x in a.split("."))


def aton6(a):
    return socket.inet_pton(socket.AF_INET6, a)


def is6(a):
    return ":" in a


def ip(src, dst, proto, payload, ip_id, ttl=64, bad_csum=False, total_len=None):
    tl = total_len if total_len is not None else 20 + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tl, ip_id, 0x4000, ttl, proto, 0, aton(src), aton(dst))
    c = csum(h) ^ (0x0F0F if bad_csum else 0)
    return h[:10] + struct.pack("!H", c) + h[12:] + payload


def l4_csum(src, dst, proto, seg):
    """Transport checksum over the pseudo-header of either family (IPv6
    when the addresses are written with colons)."""
    if is6(src):
        pseudo = aton6(src) + aton6(dst) + struct.pack("!I3xB", len(seg), proto)
    else:
        pseudo = aton(src) + aton(dst) + struct.pack("!BBH", 0, proto, len(seg))
    return csum(pseudo + seg)


def tcp_seg(src, dst, sport, dport, seq, ack, flags, win, options=b"", payload=b"", bad_csum=False, doff=None):
    while len(options) % 4:
        options += b"\x01"
    off = doff if doff is not None else (20 + len(options)) // 4
    h = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, off << 4, flags, win, 0, 0)
    seg = h + options + payload
    c = l4_csum(src, dst, 6, seg) ^ (0x00FF if bad_csum else 0)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def udp_dgram(src, dst, sport, dport, payload, bad_csum=False):
    d = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    c = l4_csum(src, dst, 17, d) ^ (0x00FF if bad_csum else 0)
    return d[:6] + struct.pack("!H", c or 0xFFFF) + d[8:]


def icmp_msg(icmp_type, code, rest, body):
    m = struct.pack("!BBH", icmp_type, code, 0) + rest + body
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]


class Step:
    def __init__(self, side, maker, wait=0.0):
        self.side, self.maker, self.wait = side, maker, wait

    def build(self, ip_id):
        return self.maker(ip_id)


MSS = bytes([2, 4, 0x05, 0xB4])
WSCALE7 = bytes([1, 3, 3, 7])
SACKOK = bytes([4, 2])


class Conv:
    """A TCP conversation that keeps each side's next sequence number."""

    def __init__(self, cport, sport=80, caddr=C_ADDR, saddr=S_ADDR, cisn=1000, sisn=700000):
        self.cport, self.sport, self.caddr, self.saddr = cport, sport, caddr, saddr
        self.next = {"c": cisn, "s": sisn}
        self.steps = []

    def segment(self, side, flags, data=0, seq=None, ack=None, win=29200, options=b"", advance=True,
                bad_csum=False, doff=None):
        """(source, destination, TCP segment) of the next segment from
        `side`, advancing its sequence number unless told not to; send()
        wraps it in a packet, fragment sequences cut it (fragcorpus.py)."""
        other = "s" if side == "c" else "c"
        s = self.next[side] if seq is None else seq
        a = (self.next[other] if ack is None else ack) if flags & ACK else 0
        src, dst = (self.caddr, self.saddr) if side == "c" else (self.saddr, self.caddr)
        sp, dp = (self.cport, self.sport) if side == "c" else (self.sport, self.cport)
        payload = bytes([0x61]) * data
        if advance:
            self.next[side] = (s + data + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)) & 0xFFFFFFFF
        return src, dst, tcp_seg(src, dst, sp, dp, s, a, flags, win, options, payload, bad_csum, doff)

    def send(self, side, flags, data=0, seq=None, ack=None, win=29200, options=b"", advance=True,
             bad_csum=False, doff=None, wait=0.0, ip_len=None, ext=(), hop=64):
        src, dst, seg = self.segment(side, flags, data, seq, ack, win, options, advance, bad_csum, doff)

        def make(ip_id, seg=seg, src=src, dst=dst):
            if is6(src):
                return ip6(src, dst, PROTO_TCP, seg, ip_id, hop=hop, ext=ext, payload_len=ip_len)
            return ip(src, dst, 6, seg, ip_id, ttl=hop, total_len=ip_len)
        self.steps.append(Step(side, make, wait))
        return self

    def c(self, flags, data=0, **kw):
        return self.send("c", flags, data, **kw)

    def s(self, flags, data=0, **kw):
        return self.send("s", flags, data, **kw)

    def handshake(self, options=b"", soptions=b""):
        return self.c(SYN, options=options).s(SYN | ACK, options=soptions).c(ACK)


_port = [30000]


def port():
    _port[0] += 1
    return _port[0]


def udp_step(side, sport, dport, payload=b"q", bad_csum=False, wait=0.0):
    src, dst = (C_ADDR, S_ADDR) if side == "c" else (S_ADDR, C_ADDR)
    d = udp_dgram(src, dst, sport, dport, payload, bad_csum)
    return Step(side, lambda i: ip(src, dst, 17, d, i), wait)


def echo_step(side, icmp_type, ident, seq=1):
    src, dst = (C_ADDR, S_ADDR) if side == "c" else (S_ADDR, C_ADDR)
    m = icmp_msg(icmp_type, 0, struct.pack("!HH", ident, seq), b"parity-ping")
    return Step(side, lambda i: ip(src, dst, 1, m, i))


def icmp_error_step(side, icmp_type, code, quoted_src, quoted_dst, quoted_l4, outer_src=None, outer_dst=None, proto=17):
    """An ICMP error from `side` quoting a packet quoted_src -> quoted_dst."""
    src = outer_src or (S_ADDR if side == "s" else C_ADDR)
    dst = outer_dst or quoted_src
    inner = ip(quoted_src, quoted_dst, proto, quoted_l4, 0x1111)[:28]
    m = icmp_msg(icmp_type, code, b"\0\0\0\0", inner)
    return Step(side, lambda i: ip(src, dst, 1, m, i))


def fixed():
    _port[0] = 30000  # the same ports on every call
    seqs = []

    def add(name, conv_or_steps):
        steps = conv_or_steps.steps if isinstance(conv_or_steps, Conv) else conv_or_steps
        seqs.append((name, steps))

    # Handshake and teardown in every order.
    add("tcp_fin_client_first", Conv(port()).handshake().c(ACK | PSH, 100).s(ACK).s(ACK | PSH, 300).c(ACK)
        .c(FIN | ACK).s(ACK).s(FIN | ACK).c(ACK).c(ACK | PSH, 10))
    add("tcp_fin_server_first", Conv(port()).handshake().s(FIN | ACK).c(ACK).c(FIN | ACK).s(ACK).s(ACK | PSH, 5))
    add("tcp_simultaneous_close", Conv(port()).handshake().c(FIN | ACK).s(FIN | ACK, ack=1001 + 0).c(ACK).s(ACK))
    add("tcp_rst_from_client", Conv(port()).handshake().c(ACK | PSH, 50).s(ACK).c(RST | ACK).s(ACK | PSH, 10))
    add("tcp_rst_from_server", Conv(port()).handshake().s(RST | ACK).c(ACK | PSH, 10))
    cv = Conv(port()).handshake().c(ACK | PSH, 100).s(ACK).s(ACK | PSH, 100).c(ACK)
    add("tcp_rst_in_window_inexact", cv.c(RST, seq=cv.next["c"] + 5000, advance=False).c(ACK | PSH, 10))
    cv = Conv(port()).handshake().c(ACK | PSH, 500).s(ACK)
    add("tcp_rst_below_acked", cv.c(RST, seq=cv.next["c"] - 400, advance=False).c(ACK | PSH, 10))
    cv = Conv(port()).handshake()
    add("tcp_rst_out_of_window", cv.c(RST, seq=cv.next["c"] + 10_000_000, advance=False).c(ACK | PSH, 10))
    add("tcp_rst_answers_syn", Conv(port()).c(SYN).s(RST | ACK, seq=0).c(SYN, seq=5000).s(SYN | ACK))
    add("tcp_rst_before_reply", Conv(port()).c(SYN).c(RST, advance=False).s(SYN | ACK))
    # Retransmissions and windows.
    cv = Conv(port()).handshake().c(ACK | PSH, 1000).s(ACK)
    add("tcp_retransmit_acked_data", cv.c(ACK | PSH, 1000, seq=cv.next["c"] - 1000, advance=False).s(ACK))
    cv = Conv(port()).handshake()
    add("tcp_data_beyond_window", cv.c(ACK | PSH, 100, seq=cv.next["c"] + 5_000_000, advance=False).c(ACK | PSH, 10))
    cv = Conv(port()).handshake()
    add("tcp_data_just_past_window", cv.c(ACK | PSH, 100, seq=cv.next["c"] + 29_150, advance=False))
    cv = Conv(port()).handshake()
    add("tcp_ack_of_unsent_data", cv.c(ACK, ack=cv.next["s"] + 100_000).c(ACK | PSH, 10))
    cv = Conv(port()).handshake()
    add("tcp_ack_far_below", cv.c(ACK | PSH, 10, ack=cv.next["s"] - 200_000).s(ACK))
    add("tcp_window_scaling_on", Conv(port()).handshake(WSCALE7 + MSS, WSCALE7 + MSS)
        .c(ACK | PSH, 1000, win=500).s(ACK | PSH, 1400, win=2).c(ACK, win=500).s(ACK | PSH, 1400, win=2))
    cv = Conv(port()).handshake(WSCALE7, b"")
    add("tcp_window_scaling_one_side", cv.s(ACK | PSH, 1400, win=100).c(ACK, win=40)
        .c(ACK | PSH, 100, seq=cv.next["c"] + 100 * 128, advance=False))
    cv = Conv(port()).handshake(SACKOK, SACKOK).s(ACK | PSH, 1000).s(ACK | PSH, 1000)
    sack = bytes([1, 1, 5, 10]) + struct.pack("!II", cv.next["s"] - 1000, cv.next["s"])
    add("tcp_sack", cv.c(ACK, ack=cv.next["s"] - 2000, options=sack).s(ACK | PSH, 1000, seq=cv.next["s"] - 2000, advance=False))
    # SYNs on existing tuples.
    add("tcp_syn_on_established", Conv(port()).handshake().c(SYN, seq=90000).s(ACK | PSH, 10).c(ACK | PSH, 10))
    cv = Conv(port()).handshake().c(FIN | ACK).s(FIN | ACK).c(ACK)
    add("tcp_syn_on_time_wait", cv.c(SYN, seq=cv.next["c"] + 100000).s(SYN | ACK).c(ACK))
    add("tcp_stale_synack", Conv(port()).c(SYN).s(SYN | ACK, ack=424242).s(SYN | ACK).c(ACK))
    add("tcp_simultaneous_open", Conv(port()).c(SYN).s(SYN).c(SYN | ACK, seq=1000).s(SYN | ACK, seq=700000).c(ACK).s(ACK))
    # Illegal flags.
    for fname, flags in [("null", 0), ("xmas", FIN | SYN | RST | PSH | ACK | URG), ("synfin", SYN | FIN), ("bare_fin", FIN)]:
        add(f"tcp_flags_{fname}_first", Conv(port()).c(flags))
        add(f"tcp_flags_{fname}_midflow", Conv(port()).handshake().c(flags, advance=False).c(ACK | PSH, 5))
    add("tcp_first_synack", Conv(port()).c(SYN | ACK))
    add("tcp_first_rst", Conv(port()).c(RST))
    # Loose pickup.
    add("tcp_bare_ack_no_flow_outbound", Conv(port()).c(ACK).s(ACK).c(ACK | PSH, 10))
    add("tcp_bare_ack_no_flow_inbound", Conv(port()).s(ACK).c(ACK))
    add("tcp_server_initiated", Conv(port()).s(SYN).c(SYN | ACK).s(ACK))
    # UDP.
    p = port()
    add("udp_request_reply", [udp_step("c", p, 53), udp_step("s", 53, p), udp_step("c", p, 53)])
    p = port()
    add("udp_server_initiated", [udp_step("s", 53, p), udp_step("c", p, 53)])
    p = port()
    add("udp_reply_after_timeout", [udp_step("c", p, 53), udp_step("s", 53, p, wait=3.5)])
    p = port()
    add("udp_bad_checksum", [udp_step("c", p, 53, bad_csum=True), udp_step("s", 53, p)])
    # ICMP.
    add("icmp_echo", [echo_step("c", 8, 4001), echo_step("s", 0, 4001), echo_step("c", 8, 4001, 2)])
    add("icmp_unsolicited_echo_reply", [echo_step("s", 0, 4002)])
    add("icmp_server_ping", [echo_step("s", 8, 4003), echo_step("c", 0, 4003)])
    p = port()
    q = udp_dgram(C_ADDR, S_ADDR, p, 9999, b"q")
    add("icmp_error_tracked", [udp_step("c", p, 9999), icmp_error_step("s", 3, 3, C_ADDR, S_ADDR, q)])
    p = port()
    add("icmp_error_time_exceeded_from_router", [udp_step("c", p, 9999),
        icmp_error_step("s", 11, 0, C_ADDR, S_ADDR, udp_dgram(C_ADDR, S_ADDR, p, 9999, b"q"), outer_src="10.202.2.77")])
    p = port()
    add("icmp_error_untracked", [icmp_error_step("s", 3, 3, C_ADDR, S_ADDR, udp_dgram(C_ADDR, S_ADDR, p, 9999, b"q"))])
    p = port()
    add("icmp_error_wrong_outer_destination", [udp_step("c", p, 9999),
        icmp_error_step("s", 3, 3, C_ADDR, S_ADDR, udp_dgram(C_ADDR, S_ADDR, p, 9999, b"q"), outer_dst="10.202.1.51")])
    cv = Conv(port()).handshake()
    synack = tcp_seg(S_ADDR, C_ADDR, 80, cv.cport, 700000, 1001, SYN | ACK, 100)
    add("icmp_error_about_tcp_reply", cv.steps + [icmp_error_step("c", 3, 3, S_ADDR, C_ADDR, synack, proto=6)])
    # Malformed.
    add("tcp_bad_checksum", Conv(port()).c(SYN, bad_csum=True))
    add("tcp_truncated_header", Conv(port()).c(SYN, doff=15))
    add("ip_truncated", Conv(port()).c(SYN, ip_len=200))
    # TTL 1: conntrack sees the packet (PREROUTING) before ip_forward drops it.
    add("ttl_1_fin_then_ack", Conv(port()).handshake().c(FIN | ACK, hop=1).s(FIN | ACK).c(ACK))
    add("ttl_1_rst_before_synack", Conv(port()).c(SYN).s(RST | ACK, seq=0, hop=1, advance=False).s(SYN | ACK)
        .c(ACK))
    # An error quoting only the ports of the UDP header (all conntrack reads).
    p = port()
    q = ip(C_ADDR, S_ADDR, 17, udp_dgram(C_ADDR, S_ADDR, p, 9999, b"q"), 0x1111)[:24]
    m = icmp_msg(3, 3, b"\0\0\0\0", q)
    add("icmp_error_quote_ports_only", [udp_step("c", p, 9999), Step("s", lambda i: ip(S_ADDR, C_ADDR, 1, m, i))])
    p = port()
    q = bytearray(ip(C_ADDR, S_ADDR, 17, udp_dgram(C_ADDR, S_ADDR, p, 9999, b"q"), 0x1111)[:28])
    q[0] = 0x05  # version 0, header length 5
    m2 = icmp_msg(3, 3, b"\0\0\0\0", bytes(q))
    add("icmp_error_quote_bad_version", [udp_step("c", p, 9999), Step("s", lambda i: ip(S_ADDR, C_ADDR, 1, m2, i))])
    p = port()
    short = udp_dgram(C_ADDR, S_ADDR, p, 53, b"q")
    add("udp_length_short_of_payload", [Step("c", lambda i: ip(C_ADDR, S_ADDR, 17, short + b"pad", i)),
                                        udp_step("s", 53, p), udp_step("c", p, 53)])
    import fragcorpus  # it imports this module
    return seqs + fragcorpus.fixed_frag(False)


FLAG_CHOICES = [SYN, SYN | ACK, ACK, ACK | PSH, FIN | ACK, RST, RST | ACK, FIN, 0, SYN | FIN,
                ACK | URG, ACK | ECE | CWR, FIN | SYN | RST | PSH | ACK | URG]


RANDOM_PORT_BASE = 31000  # above the fixed corpus's ports (30001 and up)


def random_name(seed, n):
    return f"random_{seed}_{n}"


def random_sequence(seed, n):
    """Random sequence number n of a seed: a (possibly partial) handshake,
    then steps with mutated flags, sequence and ack numbers around window
    edges. Its RNG is seeded from (seed, n) alone and its client port is
    RANDOM_PORT_BASE + n, so it does not depend on the sequences before it."""
    if not 0 <= n <= 65535 - RANDOM_PORT_BASE:
        raise ValueError(f"random sequence index {n} out of range 0..{65535 - RANDOM_PORT_BASE}")
    rng = random.Random(f"{seed}/{n}")
    cv = Conv(RANDOM_PORT_BASE + n, cisn=rng.randrange(1 << 32), sisn=rng.randrange(1 << 32))
    stage = rng.choice(["none", "syn", "synack", "established", "established"])
    if stage != "none":
        cv.c(SYN, options=rng.choice([b"", WSCALE7, SACKOK, WSCALE7 + SACKOK]))
    if stage in ("synack", "established"):
        cv.s(SYN | ACK, options=rng.choice([b"", WSCALE7, SACKOK, WSCALE7 + SACKOK]))
    if stage == "established":
        cv.c(ACK)
    for _ in range(rng.randint(1, 5)):
        side = rng.choice("cs")
        other = "s" if side == "c" else "c"
        flags = rng.choice(FLAG_CHOICES)
        data = rng.choice([0, 0, 1, 100, 1400])
        edge = rng.choice([0, 0, 0, 1, -1, 29200, 29201, -29200, 66000, -66001, 1 << 31, 12345678])
        seq = (cv.next[side] + edge) & 0xFFFFFFFF if rng.random() < 0.5 else None
        aedge = rng.choice([0, 0, 1, -1, 100000, -70000])
        ack = (cv.next[other] + aedge) & 0xFFFFFFFF if rng.random() < 0.5 else None
        cv.send(side, flags, data, seq=seq, ack=ack, win=rng.choice([0, 1, 512, 29200, 65535]),
                advance=rng.random() < 0.8)
    return random_name(seed, n), cv.steps


def randomized(seed, count):
    """Random sequences 0..count-1 of a seed."""
    return [random_sequence(seed, n) for n in range(count)]


def select(seed, names):
    """The named sequences, in the order given: fixed-corpus names of either
    family, and random_SEED_INDEX, randfrag_SEED_INDEX (IPv4) or
    random6_SEED_INDEX, randfrag6_SEED_INDEX (IPv6) names whose SEED is
    `seed`. ValueError for any other."""
    fixed_seqs = dict(fixed() + fixed6())
    out = []
    for name in names:
        if name in fixed_seqs:
            out.append((name, fixed_seqs[name]))
            continue
        m = re.fullmatch(r"(random|randfrag)(6?)_(-?\d+)_(\d+)", name)
        if not m:
            raise ValueError(f"no sequence named {name!r} (list them: python3 netns-tests/parity/replay.py list fixed 0 0 - --family all)")
        kind, v6, name_seed, n = m.group(1), bool(m.group(2)), int(m.group(3)), int(m.group(4))
        if name_seed != seed:
            raise ValueError(f"{name} is a sequence of seed {name_seed}, not of seed {seed} (use --seed {name_seed})")
        if kind == "randfrag":
            import fragcorpus
            out.append(fragcorpus.random_frag_sequence(seed, n, v6))
        else:
            out.append((random6_sequence if v6 else random_sequence)(seed, n))
    return out


# ---------------------------------------------------------------------------
# IPv6. The same topology carries ULA prefixes: fd00:7f:1::/64 on the client
# side, fd00:7f:2::/64 on the server side. Crafted flows again use addresses
# no endpoint owns; each packet is told apart by its flow label (the IPv6
# header has no ID), which neither firewall touches.

C6_ADDR = "fd00:7f:1::50"
C6_OTHER = "fd00:7f:1::51"  # another client-side address (a wrong outer destination)
C6_ROUTER = "fd00:7f:1::77"  # a router on the client side (errors from the path)
S6_ADDR = "fd00:7f:2::50"
S6_OTHER = "fd00:7f:2::51"
S6_ROUTER = "fd00:7f:2::77"

PROTO_TCP, PROTO_UDP, PROTO_ICMPV6, PROTO_ESP = 6, 17, 58, 50
NH_HOP, NH_ROUTING, NH_AUTH, NH_NONE, NH_DST = 0, 43, 51, 59, 60


def ip6(src, dst, upper, payload, label, hop=64, ext=(), payload_len=None):
    """An IPv6 packet: flow label `label`, the extension headers `ext`
    (see ext_chain) before the upper-layer protocol `upper` and `payload`.
    payload_len overrides the payload length field (a truncated packet)."""
    first, headers = ext_chain(ext, upper)
    body = headers + payload
    pl = len(body) if payload_len is None else payload_len
    return struct.pack("!IHBB", (6 << 28) | (label & 0xFFFFF), pl, first, hop) + aton6(src) + aton6(dst) + body


# An extension header is (next-header value that announces it, builder): the
# builder takes the next-header value of what follows and returns its bytes.
# All are well-formed for a router (Linux parses only hop-by-hop options on
# the forwarding path: PadN of at most 7 bytes, zero filled).

def ext_hbh():
    """Hop-by-Hop Options, 8 bytes: one PadN."""
    return (NH_HOP, lambda nxt: bytes([nxt, 0, 1, 4, 0, 0, 0, 0]))


def ext_dst(units=1):
    """Destination Options, 8 or 16 bytes: PadN, or an experimental option
    (type 0x1e, skip if unknown) and a PadN."""
    if units == 1:
        return (NH_DST, lambda nxt: bytes([nxt, 0, 1, 4, 0, 0, 0, 0]))
    return (NH_DST, lambda nxt: bytes([nxt, 1, 0x1E, 8]) + bytes(8) + bytes([1, 2, 0, 0]))


def ext_rh0():
    """Routing header type 0, segments left 0, one address (24 bytes)."""
    return (NH_ROUTING, lambda nxt: bytes([nxt, 2, 0, 0, 0, 0, 0, 0]) + aton6("fd00:7f:3::1"))


def ext_ah():
    """Authentication Header with a 12-byte ICV (24 bytes, length field 4)."""
    return (NH_AUTH, lambda nxt: bytes([nxt, 4, 0, 0]) + struct.pack("!II", 0x1000, 1) + bytes(12))


def ext_raw(kind, rest):
    """A header announced as `kind` whose bytes after the next-header field
    are `rest`, verbatim (lengths that lie)."""
    return (kind, lambda nxt: bytes([nxt]) + rest)


EXT_NONE = (NH_NONE, None)  # the chain ends here in No Next Header


def ext_chain(ext, upper):
    """(next-header value of the fixed header, bytes of the chain) for the
    extension headers `ext` in order, then `upper`."""
    out, nxt = b"", upper
    for kind, build in reversed(ext):
        if build is None:
            out, nxt = b"", kind  # what follows is not announced
        else:
            out, nxt = build(nxt) + out, kind
    return nxt, out


def quote6(src, dst, upper, l4, ext=(), cut=None):
    """The start of an IPv6 packet as an ICMPv6 error quotes it."""
    p = ip6(src, dst, upper, l4, 0, ext=ext)
    return p if cut is None else p[:cut]


def icmp6_msg(src, dst, icmp_type, code, rest, body, bad_csum=False):
    m = struct.pack("!BBH", icmp_type, code, 0) + rest + body
    c = l4_csum(src, dst, PROTO_ICMPV6, m) ^ (0x00FF if bad_csum else 0)
    return m[:2] + struct.pack("!H", c) + m[4:]


def ends6(side):
    return (C6_ADDR, S6_ADDR) if side == "c" else (S6_ADDR, C6_ADDR)


def udp6_step(side, sport, dport, payload=b"q", bad_csum=False, zero_csum=False, wait=0.0, hop=64, ext=(),
              trailer=b"", trailer_csum=False):
    """A UDP datagram from `side`; `trailer`: bytes after it in the IP
    payload (its UDP length short of the payload), covered by the checksum
    when trailer_csum (else the checksum covers the UDP length, RFC 768)."""
    src, dst = ends6(side)
    d = udp_dgram(src, dst, sport, dport, payload, bad_csum)
    if zero_csum:
        d = d[:6] + b"\0\0" + d[8:]
    if trailer:
        d += trailer
        if trailer_csum:
            d = d[:6] + b"\0\0" + d[8:]
            d = d[:6] + struct.pack("!H", l4_csum(src, dst, PROTO_UDP, d) or 0xFFFF) + d[8:]
    return Step(side, lambda i: ip6(src, dst, PROTO_UDP, d, i, hop=hop, ext=ext), wait)


def icmp6_step(side, icmp_type, code=0, rest=b"\0\0\0\0", body=b"", src=None, dst=None, hop=64, ext=(),
               bad_csum=False):
    """Any ICMPv6 message from `side` (default ends: the side's flow addresses)."""
    s, d = ends6(side)
    src, dst = src or s, dst or d
    m = icmp6_msg(src, dst, icmp_type, code, rest, body, bad_csum)
    return Step(side, lambda i: ip6(src, dst, PROTO_ICMPV6, m, i, hop=hop, ext=ext))


def echo6_step(side, icmp_type, ident, seq=1, code=0, hop=64, ext=(), bad_csum=False):
    return icmp6_step(side, icmp_type, code, struct.pack("!HH", ident, seq), b"parity-ping6", hop=hop, ext=ext,
                      bad_csum=bad_csum)


def ni6_step(side, icmp_type, qtype, code=0):
    """A node information query (139) or reply (140): its identifier field
    (bytes 4-5, what conntrack keys on) is the Qtype, then flags and a nonce."""
    return icmp6_step(side, icmp_type, code, struct.pack("!HH", qtype, 0), b"nonce-06" + aton6(S6_ADDR))


def icmp6_error_step(side, icmp_type, code, quoted, outer_src=None, outer_dst=None, rest=b"\0\0\0\0", hop=64):
    """An ICMPv6 error from `side` quoting the packet start `quoted`; by
    default from the side's flow address to the quoted packet's source."""
    src = outer_src or ends6(side)[0]
    dst = outer_dst or socket.inet_ntop(socket.AF_INET6, quoted[8:24])
    return icmp6_step(side, icmp_type, code, rest, quoted, src=src, dst=dst, hop=hop)


def fixed6():
    """The fixed IPv6 corpus (names v6_*)."""
    _port[0] = 30000  # the same ports on every call (IPv6 flows never meet the IPv4 ones)
    seqs = []

    def add(name, conv_or_steps):
        steps = conv_or_steps.steps if isinstance(conv_or_steps, Conv) else conv_or_steps
        seqs.append((name, steps))

    def conv(**kw):
        return Conv(port(), caddr=C6_ADDR, saddr=S6_ADDR, **kw)

    # TCP: handshake, data and teardown.
    add("v6_tcp_fin_client_first", conv().handshake().c(ACK | PSH, 100).s(ACK).s(ACK | PSH, 300).c(ACK)
        .c(FIN | ACK).s(ACK).s(FIN | ACK).c(ACK).c(ACK | PSH, 10))
    add("v6_tcp_fin_server_first", conv().handshake().s(FIN | ACK).c(ACK).c(FIN | ACK).s(ACK).s(ACK | PSH, 5))
    add("v6_tcp_simultaneous_close", conv().handshake().c(FIN | ACK).s(FIN | ACK, ack=1001).c(ACK).s(ACK))
    add("v6_tcp_rst_from_client", conv().handshake().c(ACK | PSH, 50).s(ACK).c(RST | ACK).s(ACK | PSH, 10))
    add("v6_tcp_rst_from_server", conv().handshake().s(RST | ACK).c(ACK | PSH, 10))
    add("v6_tcp_rst_answers_syn", conv().c(SYN).s(RST | ACK, seq=0).c(SYN, seq=5000).s(SYN | ACK))
    cv = conv().handshake()
    add("v6_tcp_rst_out_of_window", cv.c(RST, seq=cv.next["c"] + 10_000_000, advance=False).c(ACK | PSH, 10))
    # Window edges.
    cv = conv().handshake()
    add("v6_tcp_data_beyond_window", cv.c(ACK | PSH, 100, seq=cv.next["c"] + 5_000_000, advance=False)
        .c(ACK | PSH, 10))
    cv = conv().handshake()
    add("v6_tcp_data_just_past_window", cv.c(ACK | PSH, 100, seq=cv.next["c"] + 29_150, advance=False))
    cv = conv().handshake()
    add("v6_tcp_ack_of_unsent_data", cv.c(ACK, ack=cv.next["s"] + 100_000).c(ACK | PSH, 10))
    cv = conv().handshake().c(ACK | PSH, 1000).s(ACK)
    add("v6_tcp_retransmit_acked_data", cv.c(ACK | PSH, 1000, seq=cv.next["c"] - 1000, advance=False).s(ACK))
    add("v6_tcp_window_scaling_on", conv().handshake(WSCALE7 + MSS, WSCALE7 + MSS)
        .c(ACK | PSH, 1000, win=500).s(ACK | PSH, 1200, win=2).c(ACK, win=500).s(ACK | PSH, 1200, win=2))
    add("v6_tcp_syn_on_established", conv().handshake().c(SYN, seq=90000).s(ACK | PSH, 10).c(ACK | PSH, 10))
    add("v6_tcp_simultaneous_open", conv().c(SYN).s(SYN).c(SYN | ACK, seq=1000).s(SYN | ACK, seq=700000)
        .c(ACK).s(ACK))
    add("v6_tcp_flags_xmas_midflow", conv().handshake().c(FIN | SYN | RST | PSH | ACK | URG, advance=False)
        .c(ACK | PSH, 5))
    add("v6_tcp_first_synack", conv().c(SYN | ACK))
    # Mid-stream pickup (tcp_loose).
    add("v6_tcp_bare_ack_no_flow_outbound", conv().c(ACK).s(ACK).c(ACK | PSH, 10))
    add("v6_tcp_loose_pickup_data", conv(cisn=5_000_000, sisn=9_000_000).c(ACK | PSH, 200).s(ACK | PSH, 300)
        .c(ACK).s(FIN | ACK).c(FIN | ACK).s(ACK))
    add("v6_tcp_bare_ack_no_flow_inbound", conv().s(ACK).c(ACK))
    add("v6_tcp_server_initiated", conv().s(SYN).c(SYN | ACK).s(ACK))
    # Malformed.
    add("v6_tcp_bad_checksum", conv().c(SYN, bad_csum=True))
    add("v6_tcp_truncated_header", conv().c(SYN, doff=15))
    add("v6_ip_truncated", conv().c(SYN, ip_len=200))
    # UDP.
    p = port()
    add("v6_udp_request_reply", [udp6_step("c", p, 53), udp6_step("s", 53, p), udp6_step("c", p, 53)])
    p = port()
    add("v6_udp_server_initiated", [udp6_step("s", 53, p), udp6_step("c", p, 53)])
    p = port()
    add("v6_udp_reply_after_timeout", [udp6_step("c", p, 53), udp6_step("s", 53, p, wait=3.5)])
    p = port()
    add("v6_udp_bad_checksum", [udp6_step("c", p, 53, bad_csum=True), udp6_step("s", 53, p)])
    p = port()
    add("v6_udp_zero_checksum", [udp6_step("c", p, 53, zero_csum=True), udp6_step("s", 53, p, zero_csum=True)])
    # A UDP length shorter than the IP payload: the checksum (RFC 768) covers
    # the UDP length; conntrack's covers the whole payload (nf_checksum).
    p = port()
    short = udp_dgram(C6_ADDR, S6_ADDR, p, 53, b"q")
    add("v6_udp_length_short_of_payload", [Step("c", lambda i: ip6(C6_ADDR, S6_ADDR, PROTO_UDP, short + b"pad", i)),
                                           udp6_step("s", 53, p), udp6_step("c", p, 53)])
    p = port()
    add("v6_udp_length_short_checksum_over_payload", [udp6_step("c", p, 53, trailer=b"pad", trailer_csum=True),
                                                      udp6_step("s", 53, p)])
    # Addresses a router never forwards.
    for what, src, dst in (("src_link_local", "fe80::50", S6_ADDR), ("src_multicast", "ff02::1", S6_ADDR),
                           ("src_unspecified", "::", S6_ADDR), ("src_loopback", "::1", S6_ADDR),
                           ("dst_multicast", C6_ADDR, "ff0e::50")):
        p = port()
        d = udp_dgram(src, dst, p, 53, b"q")
        add(f"v6_scope_{what}", [Step("c", lambda i, src=src, dst=dst, d=d: ip6(src, dst, PROTO_UDP, d, i))])
    # ICMPv6 queries.
    add("v6_icmp_echo", [echo6_step("c", 128, 4001), echo6_step("s", 129, 4001), echo6_step("c", 128, 4001, 2),
                         echo6_step("s", 129, 4001, 2)])
    add("v6_icmp_unsolicited_echo_reply", [echo6_step("s", 129, 4002)])
    add("v6_icmp_server_ping", [echo6_step("s", 128, 4003), echo6_step("c", 129, 4003)])
    add("v6_icmp_echo_reply_wrong_ident", [echo6_step("c", 128, 4004), echo6_step("s", 129, 4005)])
    add("v6_icmp_echo_reply_wrong_code", [echo6_step("c", 128, 4006), echo6_step("s", 129, 4006, code=1)])
    add("v6_icmp_echo_bad_checksum", [echo6_step("c", 128, 4007, bad_csum=True), echo6_step("s", 129, 4007)])
    add("v6_icmp_ni_query_reply", [ni6_step("c", 139, 3), ni6_step("s", 140, 3), ni6_step("c", 139, 3)])
    add("v6_icmp_ni_unsolicited_reply", [ni6_step("s", 140, 4)])
    add("v6_icmp_ni_query_from_server", [ni6_step("s", 139, 2), ni6_step("c", 140, 2)])
    # Informational types that start nothing: unknown, redirect, router renumbering.
    for t in (200, 137, 138, 255):
        add(f"v6_icmp_informational_{t}_first", [icmp6_step("c", t, 0, struct.pack("!HH", 4100 + t, 1))])
    add("v6_icmp_informational_200_from_server", [icmp6_step("s", 200, 0, struct.pack("!HH", 4099, 1))])
    # Neighbour discovery and MLD: UNTRACKED in Linux; the seed rules have no
    # UNTRACKED rule, so both drop them. ULA addresses, so a router would
    # forward them (link-local ones never are).
    for t in (130, 131, 132, 133, 134, 135, 136, 143):
        add(f"v6_nd_type_{t}", [icmp6_step("c", t, 0, bytes(4), aton6(S6_ADDR), hop=255)])
    for t in (135, 136):
        add(f"v6_nd_type_{t}_from_server", [icmp6_step("s", t, 0, bytes(4), aton6(C6_ADDR), hop=255)])
    add("v6_nd_after_echo", [echo6_step("c", 128, 4008), icmp6_step("s", 136, 0, bytes(4), aton6(C6_ADDR), hop=255),
                             echo6_step("s", 129, 4008)])
    # ICMPv6 errors RELATED through the quoted packet.
    p = port()
    q = quote6(C6_ADDR, S6_ADDR, PROTO_UDP, udp_dgram(C6_ADDR, S6_ADDR, p, 9999, b"q"))
    add("v6_icmp_error_dest_unreach_udp", [udp6_step("c", p, 9999), icmp6_error_step("s", 1, 4, q)])
    cv = conv().handshake().c(ACK | PSH, 1200)
    seg = tcp_seg(C6_ADDR, S6_ADDR, cv.cport, 80, cv.next["c"] - 1200, cv.next["s"], ACK | PSH, 29200,
                  payload=b"a" * 1200)
    add("v6_icmp_error_packet_too_big_tcp", cv.steps + [
        icmp6_error_step("s", 2, 0, quote6(C6_ADDR, S6_ADDR, PROTO_TCP, seg)[:1232], outer_src=S6_ROUTER,
                         rest=struct.pack("!I", 1280))])
    p = port()
    add("v6_icmp_error_time_exceeded_udp", [udp6_step("c", p, 9999), icmp6_error_step(
        "s", 3, 0, quote6(C6_ADDR, S6_ADDR, PROTO_UDP, udp_dgram(C6_ADDR, S6_ADDR, p, 9999, b"q")),
        outer_src=S6_ROUTER)])
    cv = conv().handshake()
    syn = tcp_seg(C6_ADDR, S6_ADDR, cv.cport, 80, 1000, 0, SYN, 29200)
    add("v6_icmp_error_param_problem_tcp", cv.steps + [
        icmp6_error_step("s", 4, 0, quote6(C6_ADDR, S6_ADDR, PROTO_TCP, syn), rest=struct.pack("!I", 6))])
    p = port()
    add("v6_icmp_error_untracked", [icmp6_error_step(
        "s", 1, 4, quote6(C6_ADDR, S6_ADDR, PROTO_UDP, udp_dgram(C6_ADDR, S6_ADDR, p, 9999, b"q")))])
    p = port()
    add("v6_icmp_error_wrong_outer_destination", [udp6_step("c", p, 9999), icmp6_error_step(
        "s", 1, 4, quote6(C6_ADDR, S6_ADDR, PROTO_UDP, udp_dgram(C6_ADDR, S6_ADDR, p, 9999, b"q")),
        outer_dst=C6_OTHER)])
    cv = conv().handshake()
    synack = tcp_seg(S6_ADDR, C6_ADDR, 80, cv.cport, 700000, 1001, SYN | ACK, 100)
    add("v6_icmp_error_about_tcp_reply", cv.steps + [
        icmp6_error_step("c", 1, 4, quote6(S6_ADDR, C6_ADDR, PROTO_TCP, synack))])
    cv = conv().handshake()
    add("v6_icmp_error_about_tcp_reply_wrong_outer_destination", cv.steps + [
        icmp6_error_step("c", 1, 4, quote6(S6_ADDR, C6_ADDR, PROTO_TCP, synack), outer_dst=S6_OTHER)])
    req = icmp6_msg(C6_ADDR, S6_ADDR, 128, 0, struct.pack("!HH", 4009, 1), b"parity-ping6")
    add("v6_icmp_error_about_echo", [echo6_step("c", 128, 4009),
                                     icmp6_error_step("s", 1, 0, quote6(C6_ADDR, S6_ADDR, PROTO_ICMPV6, req))])
    p = port()
    inner_err = icmp6_msg(S6_ADDR, C6_ADDR, 1, 4, bytes(4), quote6(C6_ADDR, S6_ADDR, PROTO_UDP,
                                                                  udp_dgram(C6_ADDR, S6_ADDR, p, 9999, b"q")))
    add("v6_icmp_error_about_error", [udp6_step("c", p, 9999), icmp6_error_step(
        "s", 1, 4, quote6(C6_ADDR, S6_ADDR, PROTO_ICMPV6, inner_err))])
    # How much of the quoted packet an error must carry: conntrack reads the
    # ports (4 bytes) of a quoted TCP/UDP header, and the whole fixed header.
    for cut, what in ((44, "ports_only"), (42, "ports_cut"), (40, "header_only"), (30, "header_cut")):
        p = port()
        add(f"v6_icmp_error_quote_{what}", [udp6_step("c", p, 9999), icmp6_error_step(
            "s", 1, 4, quote6(C6_ADDR, S6_ADDR, PROTO_UDP, udp_dgram(C6_ADDR, S6_ADDR, p, 9999, b"q"), cut=cut),
            outer_dst=C6_ADDR)])
    # Conntrack reads the quoted header without checking its version field.
    p = port()
    q = bytearray(quote6(C6_ADDR, S6_ADDR, PROTO_UDP, udp_dgram(C6_ADDR, S6_ADDR, p, 9999, b"q")))
    q[0] = 0x40
    add("v6_icmp_error_quote_bad_version", [udp6_step("c", p, 9999), icmp6_error_step("s", 1, 4, bytes(q))])
    p = port()
    add("v6_icmp_error_quoting_ext_headers", [udp6_step("c", p, 9999), icmp6_error_step(
        "s", 1, 4, quote6(C6_ADDR, S6_ADDR, PROTO_UDP, udp_dgram(C6_ADDR, S6_ADDR, p, 9999, b"q"),
                          ext=(ext_hbh(), ext_dst(2))))])
    # Extension-header chains.
    chain = (ext_hbh(), ext_dst(), ext_rh0())
    cv = conv().handshake()
    add("v6_ext_hbh_dst_rh0_tcp", cv.c(ACK | PSH, 100, ext=chain).s(ACK | PSH, 100, ext=chain).c(ACK, ext=chain))
    add("v6_ext_hbh_dst_rh0_tcp_handshake", conv().c(SYN, ext=chain).s(SYN | ACK, ext=chain).c(ACK, ext=chain)
        .c(ACK | PSH, 10))
    p = port()
    add("v6_ext_chain_udp", [udp6_step("c", p, 53, ext=chain), udp6_step("s", 53, p, ext=(ext_dst(2),)),
                             udp6_step("c", p, 53, ext=(ext_rh0(), ext_dst()))])
    add("v6_ext_chain_icmp_echo", [echo6_step("c", 128, 4010, ext=chain), echo6_step("s", 129, 4010, ext=chain)])
    ah = (ext_ah(),)
    add("v6_ext_ah_tcp", conv().c(SYN, ext=ah).s(SYN | ACK, ext=ah).c(ACK, ext=ah).c(ACK | PSH, 50, ext=ah)
        .s(ACK | PSH, 50, ext=(ext_dst(), ext_ah())))
    add("v6_ext_ah_server_initiated", conv().s(SYN, ext=ah).c(SYN | ACK))
    cv = conv().handshake()
    add("v6_ext_truncated_chain", cv.c(ACK | PSH, 10, ext=(ext_raw(NH_DST, bytes([255]) + bytes(6)),), advance=False)
        .c(ACK | PSH, 10))
    cv = conv().handshake()
    cut = Step("c", lambda i: ip6(C6_ADDR, S6_ADDR, PROTO_TCP, b"", i, ext=(ext_hbh(), ext_raw(NH_DST, b""))))
    add("v6_ext_chain_cut_in_header", cv.steps + [cut] + cv.c(ACK | PSH, 10).steps[-1:])
    cv = conv().handshake()
    add("v6_ext_no_next_header", cv.c(ACK | PSH, 10, ext=(ext_dst(), EXT_NONE), advance=False)
        .c(ACK | PSH, 10, ext=(EXT_NONE,), advance=False).c(ACK | PSH, 10))
    add("v6_ext_no_next_header_first", conv().c(SYN, ext=(EXT_NONE,)).c(SYN))
    esp = struct.pack("!II", 0x2000, 1) + bytes(24)
    add("v6_esp", [Step("c", lambda i: ip6(C6_ADDR, S6_ADDR, PROTO_ESP, esp, i)),
                   Step("s", lambda i: ip6(S6_ADDR, C6_ADDR, PROTO_ESP, esp, i)),
                   Step("c", lambda i: ip6(C6_ADDR, S6_ADDR, PROTO_ESP, esp, i, ext=(ext_hbh(),)))])
    # Hop-by-Hop options: Linux parses them on every received packet before
    # PREROUTING (ipv6_parse_hopopts in ip6_rcv_core) and drops the packet
    # on a bad one; a forwarded packet's Destination Options are not parsed.
    hbh_cases = [
        ("pad1_six", bytes([0]) + bytes(6)),  # 6 x Pad1: fine
        ("pad1_fourteen", bytes([1]) + bytes(14)),  # padding runs over 7 bytes
        ("padn_nonzero", bytes([0, 1, 4, 0, 0, 7, 0])),
        ("padn_eight", bytes([1, 1, 12]) + bytes(12)),  # one PadN of 14 bytes
        ("unknown_skip", bytes([0, 0x1E, 4, 1, 2, 3, 4])),  # action 00: skip
        ("unknown_discard", bytes([0, 0x5E, 4, 1, 2, 3, 4])),  # 01: discard
        ("unknown_discard_icmp", bytes([0, 0x9E, 4, 1, 2, 3, 4])),  # 10: discard, param problem
        ("unknown_discard_icmp_unicast", bytes([0, 0xDE, 4, 1, 2, 3, 4])),  # 11
        ("router_alert", bytes([0, 5, 2, 0, 0, 1, 0])),
        ("router_alert_bad_length", bytes([0, 5, 4, 0, 0, 0, 0])),
        ("jumbo", bytes([0, 0xC2, 4, 0, 1, 0, 0])),
        ("eight_options", bytes([2]) + bytes([0x1E, 0]) * 8 + bytes([1, 4, 0, 0, 0, 0])),
        ("nine_options", bytes([2]) + bytes([0x1E, 0]) * 9 + bytes([1, 2, 0, 0])),
        ("option_overruns", bytes([0, 0x1E, 9, 1, 2, 3, 4])),
        ("ioam_misaligned", bytes([0, 0x31, 4, 0, 0, 0, 0])),
        ("ioam_aligned", bytes([0, 1, 0, 0x31, 2, 0, 0])),
        ("ioam_aligned_short", bytes([0, 1, 0, 0x31, 0, 1, 0])),
        ("calipso", bytes([1, 7, 10]) + bytes(10) + bytes([1, 0])),
    ]
    for what, rest in hbh_cases:
        cv = conv().handshake()
        add(f"v6_ext_hbh_{what}", cv.c(ACK | PSH, 10, ext=(ext_raw(NH_HOP, rest),), advance=False).c(ACK | PSH, 10))
    cv = conv().handshake()
    add("v6_ext_dst_unknown_discard", cv.c(ACK | PSH, 10, ext=(ext_raw(NH_DST, bytes([0, 0x5E, 4, 1, 2, 3, 4])),))
        .c(ACK | PSH, 10))
    cv = conv().handshake()
    add("v6_ext_hbh_second_in_chain", cv.c(ACK | PSH, 10, ext=(ext_dst(), ext_raw(NH_HOP, bytes([0, 0x5E, 4, 1, 2, 3,
                                                                                                      4]))))
        .c(ACK | PSH, 10))
    # Hop limits: 1 is not forwarded (Linux tracks the packet first, in
    # PREROUTING, then ip6_forward drops it), 2 is.
    add("v6_hop_limit_2", conv().c(SYN, hop=2).s(SYN | ACK, hop=2).c(ACK, hop=2).c(ACK | PSH, 10, hop=2))
    add("v6_hop_limit_1_syn", conv().c(SYN, hop=1, advance=False).s(SYN | ACK, ack=1001, advance=False)
        .c(SYN).s(SYN | ACK).c(ACK))
    add("v6_hop_limit_1_rst_before_synack", conv().c(SYN).s(RST | ACK, seq=0, hop=1, advance=False).s(SYN | ACK)
        .c(ACK))
    add("v6_hop_limit_1_fin_then_ack", conv().handshake().c(FIN | ACK, hop=1).s(FIN | ACK).c(ACK))
    add("v6_hop_limit_1_rst_then_syn", conv().handshake().c(ACK | PSH, 10).s(ACK).c(RST, hop=1)
        .c(SYN, seq=50000).s(SYN | ACK).c(ACK))
    p = port()
    add("v6_hop_limit_1_udp", [udp6_step("c", p, 53, hop=1), udp6_step("s", 53, p), udp6_step("c", p, 53),
                               udp6_step("s", 53, p, hop=1), udp6_step("s", 53, p, hop=2)])
    add("v6_hop_limit_1_echo", [echo6_step("c", 128, 4011, hop=1), echo6_step("s", 129, 4011),
                                echo6_step("c", 128, 4011, 2, hop=2), echo6_step("s", 129, 4011, 2, hop=1),
                                echo6_step("s", 129, 4011, 2)])
    import fragcorpus  # it imports this module
    return seqs + fragcorpus.fixed_frag(True)


RANDOM6_KINDS = ["tcp", "tcp", "tcp", "udp", "icmp"]
# Extension-header chains a random packet may carry: mostly well-formed,
# sometimes one that fails the walk (No Next Header, a length past the end)
# or carries a hop-by-hop option Linux drops the packet for.
HBH_ROUTER_ALERT = bytes([0, 5, 2, 0, 0, 1, 0])
HBH_SKIP = bytes([0, 0x1E, 4, 1, 2, 3, 4])
HBH_DISCARD = bytes([0, 0x9E, 4, 1, 2, 3, 4])
HBH_BAD_PADN = bytes([0, 1, 4, 0, 0, 7, 0])
EXT6_CHOICES = [
    lambda: (ext_hbh(),), lambda: (ext_dst(),), lambda: (ext_dst(2),), lambda: (ext_rh0(),), lambda: (ext_ah(),),
    lambda: (ext_hbh(), ext_dst(), ext_rh0()), lambda: (ext_hbh(), ext_ah()), lambda: (ext_dst(2), ext_ah(), ext_dst()),
    lambda: (ext_dst(), EXT_NONE), lambda: (ext_raw(NH_DST, bytes([255]) + bytes(6)),),
    lambda: (ext_raw(NH_HOP, HBH_ROUTER_ALERT),), lambda: (ext_raw(NH_HOP, HBH_SKIP), ext_dst()),
    lambda: (ext_raw(NH_HOP, HBH_DISCARD),), lambda: (ext_raw(NH_HOP, HBH_BAD_PADN), ext_rh0()),
]
ERROR6_CHOICES = [(1, 0), (1, 1), (1, 3), (1, 4), (2, 0), (3, 0), (3, 1), (4, 0), (4, 1), (4, 2), (5, 0),
                  (100, 0), (127, 0)]
INFO6_CHOICES = [137, 138, 141, 142, 144, 150, 200, 255]
ND6_CHOICES = [130, 131, 132, 133, 134, 135, 136, 143]


def random6_name(seed, n):
    return f"random6_{seed}_{n}"


def _r6_hop(rng):
    return rng.choices([64, 1, 2, 255], weights=[85, 8, 4, 3])[0]


def _r6_ext(rng):
    return rng.choice(EXT6_CHOICES)() if rng.random() < 0.2 else ()


def _r6_error(rng, quoted_src, quoted_dst, upper, l4):
    """A random ICMPv6 error quoting a packet quoted_src -> quoted_dst, sent
    towards the quoted source (the natural case), another address on its
    side, or the quoted destination; from the side across from that
    address, from its flow address or a router's."""
    ty, code = rng.choice(ERROR6_CHOICES)
    rest = struct.pack("!I", 1280 if ty == 2 else rng.choice([0, 6, 40]))
    cut = rng.choices([None, 44, 42, 40], weights=[80, 10, 5, 5])[0]
    ext = rng.choice([(), (), (), (ext_dst(),), (ext_hbh(), ext_ah())])
    quoted = quote6(quoted_src, quoted_dst, upper, l4, ext=ext, cut=cut)
    outer_dst = rng.choices([quoted_src, "other", quoted_dst], weights=[70, 15, 15])[0]
    if outer_dst == "other":
        outer_dst = C6_OTHER if quoted_src == C6_ADDR else S6_OTHER
    side = "s" if outer_dst.startswith("fd00:7f:1::") else "c"
    own, router = (S6_ADDR, S6_ROUTER) if side == "s" else (C6_ADDR, C6_ROUTER)
    outer_src = rng.choice([own, own, router])
    return icmp6_error_step(side, ty, code, quoted, outer_src=outer_src, outer_dst=outer_dst, rest=rest,
                            hop=_r6_hop(rng))


def _random6_tcp(rng, cport):
    """As the IPv4 random sequence (a handshake cut at a random stage, then
    mutated steps), over IPv6, each packet possibly behind an extension-header
    chain and with hop limit 1, 2 or 255; some steps are ICMPv6 errors quoting
    a segment of the flow."""
    cv = Conv(cport, caddr=C6_ADDR, saddr=S6_ADDR, cisn=rng.randrange(1 << 32), sisn=rng.randrange(1 << 32))
    stage = rng.choice(["none", "syn", "synack", "established", "established"])
    opts = [b"", WSCALE7, SACKOK, WSCALE7 + SACKOK]
    if stage != "none":
        cv.c(SYN, options=rng.choice(opts), ext=_r6_ext(rng), hop=_r6_hop(rng))
    if stage in ("synack", "established"):
        cv.s(SYN | ACK, options=rng.choice(opts), ext=_r6_ext(rng), hop=_r6_hop(rng))
    if stage == "established":
        cv.c(ACK, ext=_r6_ext(rng), hop=_r6_hop(rng))
    for _ in range(rng.randint(1, 5)):
        side = rng.choice("cs")
        other = "s" if side == "c" else "c"
        if rng.random() < 0.2:
            src, dst = (C6_ADDR, S6_ADDR) if side == "c" else (S6_ADDR, C6_ADDR)
            sp, dp = (cport, 80) if side == "c" else (80, cport)
            seg = tcp_seg(src, dst, sp, dp, cv.next[side], cv.next[other], rng.choice(FLAG_CHOICES), 29200)
            cv.steps.append(_r6_error(rng, src, dst, PROTO_TCP, seg))
            continue
        flags = rng.choice(FLAG_CHOICES)
        data = rng.choice([0, 0, 1, 100, 1300])
        edge = rng.choice([0, 0, 0, 1, -1, 29200, 29201, -29200, 66000, -66001, 1 << 31, 12345678])
        seq = (cv.next[side] + edge) & 0xFFFFFFFF if rng.random() < 0.5 else None
        aedge = rng.choice([0, 0, 1, -1, 100000, -70000])
        ack = (cv.next[other] + aedge) & 0xFFFFFFFF if rng.random() < 0.5 else None
        cv.send(side, flags, data, seq=seq, ack=ack, win=rng.choice([0, 1, 512, 29200, 65535]),
                advance=rng.random() < 0.8, ext=_r6_ext(rng), hop=_r6_hop(rng))
    return cv.steps


def _random6_udp(rng, cport):
    """Datagrams either way on one UDP flow (either side may start it), with
    bad or zero checksums, chains and hop limits, and errors quoting it."""
    sport = rng.choice([53, 123, 4500])
    steps = []
    for _ in range(rng.randint(1, 6)):
        side = rng.choices("cs", weights=[60, 40])[0]
        sp, dp = (cport, sport) if side == "c" else (sport, cport)
        if rng.random() < 0.25:
            src, dst = ends6(side)
            steps.append(_r6_error(rng, src, dst, PROTO_UDP, udp_dgram(src, dst, sp, dp, b"q")))
            continue
        bad, zero = rng.choices([(False, False), (True, False), (False, True)], weights=[85, 8, 7])[0]
        trailer, over = rng.choices([(b"", False), (b"pad", False), (b"pad", True)], weights=[90, 5, 5])[0]
        steps.append(udp6_step(side, sp, dp, rng.choice([b"q", b"x" * 300]), bad_csum=bad, zero_csum=zero,
                               hop=_r6_hop(rng), ext=_r6_ext(rng), trailer=trailer, trailer_csum=over))
    return steps


def _random6_icmp(rng, ident):
    """ICMPv6 queries and replies on one identifier (echo or node information,
    either side asking, codes sometimes other than the request's),
    informational types that start nothing, ND/MLD types, and errors quoting
    a request or a reply. Replies, informational messages and errors may
    carry the identifier plus one: none of them starts a flow, and the
    sequence that owns that identifier runs later."""
    steps = []
    for _ in range(rng.randint(1, 6)):
        side = rng.choices("cs", weights=[60, 40])[0]
        what = rng.choices(["query", "reply", "info", "nd", "error"], weights=[30, 30, 10, 10, 20])[0]
        req, rep = rng.choice([(128, 129), (128, 129), (139, 140)])
        code = rng.choices([0, 1, 2], weights=[85, 10, 5])[0]
        i = ident + rng.choices([0, 1], weights=[90, 10])[0]
        if what == "query":
            steps.append(echo6_step(side, req, ident, code=code, hop=_r6_hop(rng), ext=_r6_ext(rng)))
        elif what == "reply":
            steps.append(echo6_step(side, rep, i, code=code, hop=_r6_hop(rng), ext=_r6_ext(rng)))
        elif what == "info":
            steps.append(echo6_step(side, rng.choice(INFO6_CHOICES), i, hop=_r6_hop(rng)))
        elif what == "nd":
            target = aton6(S6_ADDR if side == "c" else C6_ADDR)
            steps.append(icmp6_step(side, rng.choice(ND6_CHOICES), 0, bytes(4), target, hop=255))
        else:
            src, dst = ends6(rng.choice("cs"))
            msg = icmp6_msg(src, dst, rng.choice([req, req, rep]), code, struct.pack("!HH", i, 1), b"parity-ping6")
            steps.append(_r6_error(rng, src, dst, PROTO_ICMPV6, msg))
    return steps


def random6_sequence(seed, n):
    """Random IPv6 sequence number n of a seed: a TCP flow (as the IPv4
    random sequences, plus extension headers, hop limits and ICMPv6 errors
    quoting it), a UDP flow, or ICMPv6 queries (see the _random6_* functions).
    Its RNG is seeded from (seed, n) alone; its client port is
    RANDOM_PORT_BASE + n and its ICMPv6 identifier 20000 + n."""
    if not 0 <= n <= 65535 - RANDOM_PORT_BASE:
        raise ValueError(f"random sequence index {n} out of range 0..{65535 - RANDOM_PORT_BASE}")
    rng = random.Random(f"v6/{seed}/{n}")
    kind = rng.choice(RANDOM6_KINDS)
    if kind == "tcp":
        steps = _random6_tcp(rng, RANDOM_PORT_BASE + n)
    elif kind == "udp":
        steps = _random6_udp(rng, RANDOM_PORT_BASE + n)
    else:
        steps = _random6_icmp(rng, 20000 + n)
    return random6_name(seed, n), steps


def randomized6(seed, count):
    """Random IPv6 sequences 0..count-1 of a seed."""
    return [random6_sequence(seed, n) for n in range(count)]
