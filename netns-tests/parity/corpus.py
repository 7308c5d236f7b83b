"""The parity corpus: packet sequences replayed through Linux and tunfw.

Each sequence is (name, [Step]); each step sends one IPv4 packet from the
client ("c") or the server ("s") side. Flows use addresses no endpoint owns
(client 10.202.1.50, server 10.202.2.50) and a source port unique to the
sequence, so sequences do not share conntrack entries.

Every sequence is a pure function of its name (and, for a random sequence,
of the seed, which its name carries: random_SEED_INDEX), so select() can
rebuild one sequence alone and replaying it sends exactly the packets it sent
in the full run.
"""
import random
import re
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


def ip(src, dst, proto, payload, ip_id, ttl=64, bad_csum=False, total_len=None):
    tl = total_len if total_len is not None else 20 + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tl, ip_id, 0x4000, ttl, proto, 0, aton(src), aton(dst))
    c = csum(h) ^ (0x0F0F if bad_csum else 0)
    return h[:10] + struct.pack("!H", c) + h[12:] + payload


def l4_csum(src, dst, proto, seg):
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

    def send(self, side, flags, data=0, seq=None, ack=None, win=29200, options=b"", advance=True,
             bad_csum=False, doff=None, wait=0.0, ip_len=None):
        other = "s" if side == "c" else "c"
        s = self.next[side] if seq is None else seq
        a = (self.next[other] if ack is None else ack) if flags & ACK else 0
        src, dst = (self.caddr, self.saddr) if side == "c" else (self.saddr, self.caddr)
        sp, dp = (self.cport, self.sport) if side == "c" else (self.sport, self.cport)
        payload = bytes([0x61]) * data
        if advance:
            self.next[side] = (s + data + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)) & 0xFFFFFFFF
        seg = tcp_seg(src, dst, sp, dp, s, a, flags, win, options, payload, bad_csum, doff)

        def make(ip_id, seg=seg, src=src, dst=dst):
            return ip(src, dst, 6, seg, ip_id, total_len=ip_len)
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
    return seqs


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
    """The named sequences, in the order given: fixed-corpus names, and
    random_SEED_INDEX names whose SEED is `seed`. ValueError for any other."""
    fixed_seqs = dict(fixed())
    out = []
    for name in names:
        if name in fixed_seqs:
            out.append((name, fixed_seqs[name]))
            continue
        m = re.fullmatch(r"random_(-?\d+)_(\d+)", name)
        if not m:
            raise ValueError(f"no sequence named {name!r} (list them: python3 netns-tests/parity/replay.py list fixed 0 0 -)")
        if int(m.group(1)) != seed:
            raise ValueError(f"{name} is a sequence of seed {m.group(1)}, not of seed {seed} (use --seed {m.group(1)})")
        out.append(random_sequence(seed, int(m.group(2))))
    return out
