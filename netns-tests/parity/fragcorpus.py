"""Fragment sequences of the parity corpus, both families.

A datagram (Dgram) is cut into fragments, each sent as its own step
(FragStep). The replay gives every datagram of a sequence one number, the
IPv4 identification or the IPv6 flow label of all of its fragments, and an
IPv6 datagram also a fragment identification of its own in the run. The far
side knows what arrives of a datagram by that number: when Linux or tunfw
cut a reassembled datagram again, IPv4 fragments keep the identification
(ip_do_fragment copies the header), IPv6 ones the flow label (ip6_fragment
copies the fixed header and picks a new fragment identification). The
replay records, per fragment step, whether anything of its datagram
arrived while that fragment was handled, and the sizes of what arrived.

fixed_frag(v6): the fixed fragment sequences (names frag_* and v6_frag_*,
part of the fixed corpora); random_frag_sequence(seed, n, v6): a random
one (names randfrag_SEED_INDEX and randfrag6_SEED_INDEX), a pure function
of (seed, index).

What the kernel does with fragments (the reference): nf_defrag_ipv4 and
nf_defrag_ipv6 reassemble before conntrack (net/ipv4/ip_fragment.c,
net/ipv4/inet_fragment.c, net/ipv6/netfilter/nf_conntrack_reasm.c):
overlaps discard the datagram (RFC 5722), duplicates inside one run of
queued bytes are dropped alone, an IPv4 fragment with MF set is trimmed to a
multiple of 8 bytes, an IPv6 one that is not a multiple of 8 kills its
queue, an IPv6 first fragment without its upper-layer header (RFC 8200 4.5,
ipv6frag_thdr_truncated) is not reassembled.
"""
import random
import struct

from corpus import (ACK, C6_ADDR, C_ADDR, PSH, PROTO_TCP, PROTO_UDP, RANDOM_PORT_BASE, S6_ADDR, S_ADDR,
                    SACKOK, SYN, Conv, Step, aton, aton6, csum, ext_chain, ext_dst, ext_hbh, ip, port,
                    udp6_step, udp_dgram, udp_step, MSS, WSCALE7)

NH_FRAGMENT = 44
PROTO_ICMP = 1
# The most data a fragment carries so that it fits a 1500-byte link: IPv4
# after a 20-byte header, IPv6 after the fixed and the fragment header.
MAX_DATA4 = 1480
MAX_DATA6 = 1448
# Random fragment sequences talk to these server ports, which no other
# sequence uses, so that their flows (client port RANDOM_PORT_BASE + index)
# never meet the random TCP sequences' (server port 80).
FRAG_UDP_PORT = 5353
FRAG_TCP_PORT = 8080


def ends(v6, side):
    c, s = (C6_ADDR, S6_ADDR) if v6 else (C_ADDR, S_ADDR)
    return (c, s) if side == "c" else (s, c)


class FragStep(Step):
    """A fragment of the datagram `dgram`, sent from `side`. build(number,
    ident): number is the datagram's IPv4 identification or IPv6 flow label,
    ident its IPv6 fragment identification."""

    def __init__(self, side, maker, dgram):
        super().__init__(side, maker)
        self.dgram = dgram

    def build(self, ip_id, ident=None):
        return self.maker(ip_id, ip_id if ident is None else ident)


def frag4(src, dst, proto, data, ip_id, offset, more, ttl=64, tos=0, df=False):
    """An IPv4 fragment: `data` at byte `offset` (a multiple of 8)."""
    word = (offset >> 3) | (0x2000 if more else 0) | (0x4000 if df else 0)
    h = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(data), ip_id, word, ttl, proto, 0, aton(src), aton(dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + data


def frag6(src, dst, nxt, data, label, ident, offset, more, hop=64, tclass=0, unfrag=()):
    """An IPv6 fragment: the extension headers `unfrag` (see corpus.ext_chain),
    a fragment header naming `nxt`, then `data` at byte `offset`."""
    fh = (NH_FRAGMENT, lambda _nxt: struct.pack("!BBHI", nxt, 0, offset | (1 if more else 0), ident))
    first, headers = ext_chain(tuple(unfrag) + (fh,), nxt)
    body = headers + data
    return struct.pack("!IHBB", (6 << 28) | (tclass << 20) | (label & 0xFFFFF), len(body), first, hop) + \
        aton6(src) + aton6(dst) + body


class Dgram:
    """A datagram from `side` to cut into fragments: `body` is the upper-layer
    header and data of protocol `proto`. IPv6: `unfrag` extension headers go
    in front of every fragment's fragment header, `inner` ones start the
    fragmentable part (before the upper-layer header)."""

    def __init__(self, side, proto, body, v6, unfrag=(), inner=()):
        self.side, self.v6, self.unfrag = side, v6, tuple(unfrag)
        self.src, self.dst = ends(v6, side)
        if v6:
            self.next, headers = ext_chain(tuple(inner), proto)
            self.body = headers + body
        else:
            self.next, self.body = proto, body

    def __len__(self):
        return len(self.body)

    def max_data(self):
        """The most data one of its fragments may carry (a multiple of 8)."""
        if not self.v6:
            return MAX_DATA4
        return MAX_DATA6 - len(ext_chain(self.unfrag, 0)[1])

    def frag(self, start, end=None, more=None, data=None, hop=64, ecn=0, df=False):
        """The fragment of bytes [start, end) (default: to the end); `more`
        defaults to "not the last bytes"; `data` replaces the bytes (an
        overlap with other contents)."""
        end = len(self.body) if end is None else end
        more = end < len(self.body) if more is None else more
        data = self.body[start:end] if data is None else data
        src, dst, nxt, unfrag = self.src, self.dst, self.next, self.unfrag
        if self.v6:
            def make(label, ident):
                return frag6(src, dst, nxt, data, label, ident, start, more, hop=hop, tclass=ecn, unfrag=unfrag)
        else:
            def make(ip_id, _ident):
                return frag4(src, dst, nxt, data, ip_id, start, more, ttl=hop, tos=ecn, df=df)
        return FragStep(self.side, make, self)

    def cut(self, bounds, **kw):
        """Fragments [b0, b1), [b1, b2), ... for bounds b0 < b1 < ..."""
        return [self.frag(a, b, **kw) for a, b in zip(bounds, bounds[1:])]

    def even(self, size=1200, **kw):
        """Fragments of `size` data bytes each (a multiple of 8), the rest last."""
        return self.cut(list(range(0, len(self.body), size)) + [len(self.body)], **kw)


def udp_dgram_of(v6, side, sport, dport, payload):
    src, dst = ends(v6, side)
    return Dgram(side, PROTO_UDP, udp_dgram(src, dst, sport, dport, payload), v6)


def pattern(n, salt=0):
    """n payload bytes that differ from offset to offset (an overlap with
    other bytes shows)."""
    return bytes((i * 7 + salt) & 0xFF for i in range(n))


def udp_whole(v6, side, sport, dport, payload=b"q"):
    return udp6_step(side, sport, dport, payload) if v6 else udp_step(side, sport, dport, payload)


def tcp_segment_dgram(cv, side, flags, data=0, v6=False, **kw):
    """The next segment of conversation `cv` from `side` as a datagram to cut."""
    _, _, seg = cv.segment(side, flags, data, **kw)
    return Dgram(side, PROTO_TCP, seg, v6)


def interleave(*lists):
    """Round-robin merge: a1 b1 a2 b2 ..."""
    out = []
    for i in range(max(len(x) for x in lists)):
        out += [x[i] for x in lists if i < len(x)]
    return out


SYN_OPTIONS = MSS + WSCALE7 + SACKOK + bytes([8, 10]) + bytes(8)  # MSS, window scale, SACK, timestamps: 20 bytes


def fixed_frag(v6):
    """The fixed fragment sequences of one family (see the module doc)."""
    pre = "v6_frag_" if v6 else "frag_"
    seqs = []
    udp = lambda side, sp, dp, payload: udp_dgram_of(v6, side, sp, dp, payload)  # noqa: E731
    whole = lambda side, sp, dp: udp_whole(v6, side, sp, dp)  # noqa: E731
    caddr, saddr = ends(v6, "c")

    def conv(**kw):
        return Conv(port(), caddr=caddr, saddr=saddr, **kw)

    def add(name, steps):
        seqs.append((pre + name, steps))

    def query():
        """A new client port, a 3,000-byte UDP query from it to port 53 as
        a datagram, and its fragments of 1,200 data bytes."""
        p = port()
        d = udp("c", p, 53, pattern(3000))
        return p, d, d.even()

    # A UDP query in three fragments (1200, 1200, 608 data bytes), the
    # answer whole: in order, reversed, last first.
    for order in ("in_order", "reversed", "last_first", "middle_first"):
        p = port()
        f = udp("c", p, 53, pattern(3000)).even()
        f = {"in_order": f, "reversed": f[::-1], "last_first": [f[2], f[0], f[1]],
             "middle_first": [f[1], f[2], f[0]]}[order]
        add(f"udp_{order}", f + [whole("s", 53, p), whole("c", p, 53)])
    # A fragmented answer to a whole query, and a fragmented datagram the
    # rules drop (server-initiated), then the client's own.
    p = port()
    add("udp_answer_fragmented", [whole("c", p, 53)] + udp("s", 53, p, pattern(2500)).even() + [whole("c", p, 53)])
    p = port()
    add("udp_server_initiated", udp("s", 53, p, pattern(3000)).even() + [whole("c", p, 53), whole("s", 53, p)])
    # Two datagrams of one flow, their fragments interleaved (the second's
    # reversed), and two flows' datagrams interleaved.
    p = port()
    a, b = udp("c", p, 53, pattern(3000)).even(), udp("c", p, 53, pattern(2000, 1)).even()
    add("udp_interleaved_same_flow", interleave(a, b[::-1]) + [whole("s", 53, p)])
    p, q = port(), port()
    a, b = udp("c", p, 53, pattern(3000)).even(), udp("s", 53, q, pattern(3000, 2)).even()
    add("udp_interleaved_accepted_and_dropped", interleave(a, b) + [whole("s", 53, p), whole("s", 53, q)])
    # Overlaps discard the whole datagram (RFC 5722, inet_frag_queue_insert):
    # a fragment reaching into the previous one; the rest then starts a new
    # queue of the same identification, which the first fragment sent again
    # completes.
    p, d, f = query()
    add("udp_overlap_into_previous", [f[0], d.frag(1192, 2400), f[1], f[2], whole("s", 53, p), f[0],
                                      whole("s", 53, p)])
    p, d, f = query()
    add("udp_overlap_other_bytes", [f[0], f[1], d.frag(1200, 1600, data=pattern(400, 9)), f[2], whole("s", 53, p)])
    p, d, f = query()
    add("udp_overlap_spanning_two_runs", [f[1], f[0], d.frag(1192, 1208), f[2], whole("s", 53, p)])
    # A fragment inside one run of queued bytes is a duplicate, dropped
    # alone; one covering two runs that arrived apart is an overlap.
    p, d, f = query()
    add("udp_duplicate", [f[0], f[0], f[1], f[2], whole("s", 53, p)])
    p, d, f = query()
    add("udp_duplicate_inside_run", [f[0], f[1], d.frag(1192, 1208), f[2], whole("s", 53, p)])
    p, d, f = query()
    add("udp_duplicate_after_complete", f + [f[2], f[0], f[1], whole("s", 53, p)])
    # Missing pieces: nothing arrives, and the answer shows that conntrack
    # never saw the query; the query sent whole then opens the flow.
    p, _, f = query()
    add("udp_missing_last", f[:2] + [whole("s", 53, p), whole("c", p, 53), whole("s", 53, p)])
    p, _, f = query()
    add("udp_missing_first", f[1:] + [whole("s", 53, p)])
    p, _, f = query()
    add("udp_missing_middle", [f[0], f[2], whole("s", 53, p)])
    # Unaligned cuts: a fragment with M set not ending on a multiple of 8.
    # IPv4 trims it (ip_frag_queue), so its last bytes must come again;
    # IPv6 discards the datagram (nf_ct_frag6_queue) and lets the fragment
    # through unreassembled, where conntrack finds it INVALID.
    p, d, _ = query()
    add("udp_unaligned_middle", [d.frag(0, 1200), d.frag(1200, 2403), d.frag(2400), whole("s", 53, p)])
    p, d, _ = query()
    add("udp_unaligned_first", [d.frag(0, 1203), d.frag(1200, 2400), d.frag(2400), whole("s", 53, p)])
    # Tiny fragments: 8-byte pieces (IPv6: the first holds the whole UDP
    # header, 8 bytes).
    p = port()
    d = udp("c", p, 53, pattern(40))
    add("udp_tiny_pieces", d.cut([0, 8, 16, 24, 32, 40, 48]) + [whole("s", 53, p)])
    # Fragment sizes of the sender are kept or cut again: uneven cuts, and
    # fragments smaller than 1,280 bytes (IPv6's minimum MTU).
    p, d, _ = query()
    add("udp_uneven_cuts", d.cut([0, 512, 1480 if not v6 else 1448, 2000, 3008]) + [whole("s", 53, p)])
    p = port()
    d = udp("c", p, 53, pattern(1000))
    add("udp_small_fragments", d.cut([0, 400, 800, 1008]) + [whole("s", 53, p)])
    p = port()
    d = udp("c", p, 53, pattern(1000))
    add("udp_last_piece_tiny", d.cut([0, 1000, 1008]) + [whole("s", 53, p)])
    # Oversize: a fragment ending beyond 65,535 bytes.
    p, d, f = query()
    big = d.frag(65000, more=False, data=pattern(600))
    add("udp_oversize_last_first", [big] + f + [whole("s", 53, p)] + f + [whole("s", 53, p)])
    p, d, f = query()
    add("udp_oversize_more_set", [f[0], d.frag(64512, more=True, data=pattern(1024))] + f[1:] + [whole("s", 53, p)])
    # The largest datagram that fits, and one byte more (its UDP length
    # field that of the largest), in 45 pieces.
    for what, extra in (("udp_largest", b""), ("udp_one_past_largest", b"x")):
        p = port()
        d = udp("c", p, 53, pattern(65535 - 8 - (0 if v6 else 20)))
        d.body += extra
        add(what, d.even(d.max_data()) + [whole("s", 53, p)])
    # TCP: data in fragments both ways on an established flow; the peer's
    # ACK of that data is in window only when conntrack saw it.
    cv = conv().handshake()
    steps = list(cv.steps)
    steps += tcp_segment_dgram(cv, "c", ACK | PSH, 3000, v6).even()
    steps += cv.s(ACK).steps[-1:]
    steps += tcp_segment_dgram(cv, "s", ACK | PSH, 2500, v6).even()[::-1]
    steps += cv.c(ACK).steps[-1:]
    add("tcp_data_both_ways", steps)
    cv = conv().handshake()
    steps = list(cv.steps)
    steps += tcp_segment_dgram(cv, "c", ACK | PSH, 3000, v6).even()[:2]
    steps += cv.s(ACK).steps[-1:] + cv.c(ACK | PSH, 10, advance=False).steps[-1:]
    add("tcp_data_missing_last", steps)
    # A first fragment that splits the TCP header (8 or 16 bytes of it):
    # IPv4 reassembles and tracks it; IPv6 (RFC 8200 4.5) does not.
    for cut in (8, 16, 24):
        cv = conv().handshake()
        steps = list(cv.steps)
        d = tcp_segment_dgram(cv, "c", ACK | PSH, 100, v6)
        steps += d.cut([0, cut, len(d)])
        steps += cv.s(ACK).steps[-1:]
        add(f"tcp_first_fragment_{cut}_bytes", steps)
    # A fragmented SYN with 20 bytes of options (a 40-byte header), cut
    # inside the header.
    for cut in (8, 16, 24, 32):
        cv = conv()
        d = tcp_segment_dgram(cv, "c", SYN, options=SYN_OPTIONS, v6=v6)
        add(f"tcp_syn_fragmented_{cut}", d.cut([0, cut, len(d)]) + cv.s(SYN | ACK).c(ACK).steps)
    cv = conv()
    d = tcp_segment_dgram(cv, "s", SYN, options=SYN_OPTIONS, v6=v6)
    add("tcp_syn_fragmented_server_initiated", d.cut([0, 24, len(d)]) + cv.c(SYN | ACK).steps)
    # A TCP header rewritten by an overlapping fragment (the classic
    # filter evasion): discarded.
    cv = conv().handshake()
    steps = list(cv.steps)
    d = tcp_segment_dgram(cv, "c", ACK | PSH, 100, v6)
    evil = bytearray(d.body[8:24])
    evil[5] = SYN  # flags byte of the TCP header, at 13
    steps += [d.frag(0, 16), d.frag(8, 24, data=bytes(evil)), d.frag(16)]
    steps += cv.s(ACK).steps[-1:]
    add("tcp_header_overlap_rewrite", steps)
    # A TTL (hop limit) of 1 on the first fragment: the datagram is tracked
    # and then not forwarded (its header is the first fragment's).
    p, d, _ = query()
    add("udp_first_fragment_ttl_1", [d.frag(0, 1200, hop=1), d.frag(1200, 2400), d.frag(2400),
                                     whole("s", 53, p)])
    p, d, _ = query()
    add("udp_last_fragment_ttl_1", [d.frag(0, 1200), d.frag(1200, 2400), d.frag(2400, hop=1),
                                    whole("s", 53, p)])
    # ECN: fragments that mix Not-ECT with ECT are discarded (RFC 3168
    # 5.3, ip_frag_ecn_table); CE with ECT(0) gives CE.
    for what, ecns in (("ect_mixed_with_not_ect", (0, 2, 2)), ("ce_with_ect", (2, 3, 2))):
        p = port()
        d = udp("c", p, 53, pattern(3000))
        add(f"udp_ecn_{what}", [d.frag(0, 1200, ecn=ecns[0]), d.frag(1200, 2400, ecn=ecns[1]),
                                d.frag(2400, ecn=ecns[2]), whole("s", 53, p)])
    if not v6:
        # DF on the fragments (kept when the largest fragment had it).
        p = port()
        d = udp("c", p, 53, pattern(3000))
        add("udp_df_on_fragments", d.even(df=True) + [whole("s", 53, p)])
        # ICMP echo in fragments.
        m = struct.pack("!BBHHH", 8, 0, 0, 4201, 1) + pattern(3000)
        m = m[:2] + struct.pack("!H", csum(m)) + m[4:]
        add("icmp_echo_fragmented", Dgram("c", PROTO_ICMP, m, False).even() + [
            Step("s", lambda i: icmp_reply4(4201, i))])
    else:
        # Extension headers: a Hop-by-Hop header in front of the fragment
        # header; Destination Options inside the fragmentable part, the
        # first fragment cut after it (no upper-layer header: RFC 8200 4.5)
        # or after the UDP header.
        p = port()
        d = Dgram("c", PROTO_UDP, udp_dgram(C6_ADDR, S6_ADDR, p, 53, pattern(3000)), True, unfrag=(ext_hbh(),))
        add("udp_hbh_unfragmentable", d.even() + [whole("s", 53, p)])
        for cut, what in ((8, "dst_opts_only"), (16, "dst_opts_and_udp")):
            p = port()
            d = Dgram("c", PROTO_UDP, udp_dgram(C6_ADDR, S6_ADDR, p, 53, pattern(3000)), True, inner=(ext_dst(),))
            add(f"udp_first_fragment_{what}", d.cut([0, cut, 1200, 2400, len(d)]) + [whole("s", 53, p)])
        # Atomic fragments (offset 0, M clear): a whole packet in a
        # fragment header (RFC 6946), on an accepted and a dropped flow.
        p = port()
        d = udp("c", p, 53, pattern(500))
        add("udp_atomic", [d.frag(0)] + [whole("s", 53, p), d.frag(0)])
        p = port()
        d = udp("s", 53, p, pattern(500))
        add("udp_atomic_server_initiated", [d.frag(0), whole("c", p, 53)])
        cv = conv()
        d = tcp_segment_dgram(cv, "c", SYN, v6=True)
        add("tcp_atomic_syn", [d.frag(0)] + cv.s(SYN | ACK).c(ACK).steps)
        # A first fragment whose UDP header claims only the bytes it carries
        # and whose checksum covers them, not a multiple of 8: the queue is
        # killed and the fragment passes unreassembled (-EPROTO in
        # nf_ct_frag6_gather): conntrack reads it as a whole UDP datagram.
        p = port()
        short = udp_dgram(C6_ADDR, S6_ADDR, p, 53, pattern(1195))
        d = Dgram("c", PROTO_UDP, short + pattern(2000, 5), True)
        add("udp_unaligned_first_fragment_parses", [d.frag(0, 1203), d.frag(1200, 2400), d.frag(2400),
                                                        whole("s", 53, p)])
    return seqs


# Differences from Linux that README's "Differences from Linux" explains:
# sequence name -> (Linux's arrivals, tunfw's arrivals). parity.sh reports
# such a sequence as KNOWN, not as a failure, while the two sides give
# exactly these (any other outcome is a DIFF).
KNOWN_DIFFERENCES = {
    # nf_ct_frag6_gather lets an IPv6 fragment with M set whose length is
    # not a multiple of 8 through unreassembled (-EPROTO, after killing its
    # queue); this first fragment's UDP length and checksum cover just its
    # own bytes, so conntrack takes it for a whole datagram, the rules
    # accept it and its answer is ESTABLISHED. tunfw discards it, as RFC
    # 8200 4.5 says to.
    "v6_frag_udp_unaligned_first_fragment_parses": ("1001", "0000"),
}


def icmp_reply4(ident, ip_id):
    m = struct.pack("!BBHHH", 0, 0, 0, ident, 1) + b"pong"
    m = m[:2] + struct.pack("!H", csum(m)) + m[4:]
    return ip(S_ADDR, C_ADDR, PROTO_ICMP, m, ip_id)


# ---------------------------------------------------------------------------
# Random fragment sequences.

def random_frag_name(seed, n, v6):
    return f"randfrag{'6' if v6 else ''}_{seed}_{n}"


def _random_bounds(rng, total, max_data):
    """8-aligned cut points 0 = b0 < b1 < ... < bk = total, at least two
    pieces (when total > 8), every piece at most max_data bytes; sometimes
    a tiny first piece."""
    cuts = set()
    if total > 8:
        k = rng.choice([1, 1, 2, 2, 3, 4, 6])
        for _ in range(k):
            cuts.add(rng.randrange(1, (total + 7) // 8) * 8)
        if rng.random() < 0.2:
            cuts.add(rng.choice([8, 16, 24]))
    bounds = sorted(c for c in cuts if 0 < c < total)
    bounds = [0] + bounds + [total]
    out = [0]
    for b in bounds[1:]:
        while b - out[-1] > max_data:
            out.append(out[-1] + max_data)
        if b > out[-1]:
            out.append(b)
    return out


def _random_fragments(rng, d, hop):
    """The fragments of datagram d, randomly cut, ordered, duplicated,
    overlapped, made unaligned and short of a piece."""
    max_data = d.max_data()
    bounds = _random_bounds(rng, len(d), max_data)
    pieces = list(zip(bounds, bounds[1:]))
    ecn = rng.choice([0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]) if rng.random() < 0.1 else None
    steps = []
    for i, (a, b) in enumerate(pieces):
        # Sometimes a piece with M set not ending on a multiple of 8 (it
        # takes 1-7 bytes of the next piece).
        if b < len(d) and rng.random() < 0.06:
            b = min(b + rng.randint(1, 7), len(d) - 1, a + max_data + 7)
        h = hop if a == 0 else rng.choices([64, 1], weights=[95, 5])[0]
        e = rng.randint(0, 3) if ecn is not None and rng.random() < 0.3 else (ecn or 0)
        more = None
        if b >= len(d) and rng.random() < 0.03:
            more = True  # a last piece that says more follows
        if b - a > max_data:
            b = a + max_data
        steps.append(d.frag(a, b, more=more, hop=h, ecn=e, df=(not d.v6 and rng.random() < 0.05)))
    order = rng.choice(["in", "in", "in", "reverse", "shuffle", "last_first"])
    if order == "reverse":
        steps.reverse()
    elif order == "shuffle":
        rng.shuffle(steps)
    elif order == "last_first":
        steps = steps[-1:] + steps[:-1]
    if len(steps) > 1 and rng.random() < 0.12:
        del steps[rng.randrange(len(steps))]
    if rng.random() < 0.2:
        for _ in range(rng.randint(1, 2)):
            steps.insert(rng.randint(0, len(steps)), rng.choice(steps))
    if rng.random() < 0.15:
        a = rng.randrange(0, (len(d) + 7) // 8) * 8
        b = min(len(d), a + rng.choice([8, 16, 64, 512, max_data]))
        if b > a:
            data = None if rng.random() < 0.5 else bytes(rng.randrange(256) for _ in range(b - a))
            steps.insert(rng.randint(0, len(steps)), d.frag(a, b, data=data))
    if rng.random() < 0.03:
        # Beyond 65,535 bytes.
        a = rng.choice([64512, 65000, 65528])
        steps.insert(rng.randint(0, len(steps)), d.frag(a, more=rng.random() < 0.5, data=pattern(rng.choice([8, 600]))))
    return steps


def random_frag_sequence(seed, n, v6):
    """Random fragment sequence number n of a seed, of family v6 or not: a
    UDP datagram from the client (accepted) or the server (dropped), TCP data
    on an established flow, or a TCP SYN, cut at random 8-aligned offsets
    (sometimes tiny or unaligned pieces), sent in random order with random
    duplicates, overlaps and omissions, sometimes beside a second datagram
    of the flow, then whole packets of the flow that show what conntrack
    saw. Its RNG is seeded from (seed, n, family) alone and its client port
    is RANDOM_PORT_BASE + n (server ports FRAG_UDP_PORT, FRAG_TCP_PORT)."""
    if not 0 <= n <= 65535 - RANDOM_PORT_BASE:
        raise ValueError(f"random sequence index {n} out of range 0..{65535 - RANDOM_PORT_BASE}")
    rng = random.Random(f"frag{6 if v6 else 4}/{seed}/{n}")
    cport = RANDOM_PORT_BASE + n
    kind = rng.choice(["udp_out", "udp_out", "udp_in", "tcp_data", "tcp_data", "tcp_syn"])
    hop = rng.choices([64, 1, 2], weights=[92, 5, 3])[0]
    unfrag, inner = (), ()
    if v6 and rng.random() < 0.15:
        unfrag = (ext_hbh(),)
    if v6 and rng.random() < 0.1:
        inner = (ext_dst(),)

    def size():
        return rng.choice([rng.randint(1, 600), rng.randint(600, 3000), rng.randint(600, 3000),
                           rng.randint(3000, 9000)])

    steps = []
    if kind in ("udp_out", "udp_in"):
        side = "c" if kind == "udp_out" else "s"
        sp, dp = (cport, FRAG_UDP_PORT) if side == "c" else (FRAG_UDP_PORT, cport)
        src, dst = ends(v6, side)
        dgrams = [Dgram(side, PROTO_UDP, udp_dgram(src, dst, sp, dp, pattern(size(), rng.randrange(256))), v6,
                        unfrag, inner) for _ in range(rng.choice([1, 1, 1, 2]))]
        frags = [_random_fragments(rng, d, hop) for d in dgrams]
        steps += _merge(rng, frags)
        other = "s" if side == "c" else "c"
        steps.append(udp_whole(v6, other, dp, sp))
        steps.append(udp_whole(v6, side, sp, dp))
        steps.append(udp_whole(v6, other, dp, sp))
    else:
        caddr, saddr = ends(v6, "c")
        cv = Conv(cport, sport=FRAG_TCP_PORT, caddr=caddr, saddr=saddr, cisn=rng.randrange(1 << 32),
                  sisn=rng.randrange(1 << 32))
        if kind == "tcp_syn":
            side = rng.choices("cs", weights=[75, 25])[0]
            opts = rng.choice([b"", MSS, SYN_OPTIONS, SYN_OPTIONS])
            _, _, seg = cv.segment(side, SYN, options=opts)
            d = Dgram(side, PROTO_TCP, seg + (pattern(rng.choice([0, 0, 100, 2000])) if rng.random() < 0.2 else b""),
                      v6, unfrag, inner)
            steps += _random_fragments(rng, d, hop)
            other = "s" if side == "c" else "c"
            cv.send(other, SYN | ACK)
            cv.send(side, ACK)
            steps += cv.steps
        else:
            cv.handshake()
            steps += cv.steps
            dgrams = []
            for _ in range(rng.choice([1, 1, 1, 2])):
                side = rng.choices("cs", weights=[65, 35])[0]
                _, _, seg = cv.segment(side, ACK | PSH, size())
                dgrams.append(Dgram(side, PROTO_TCP, seg, v6, unfrag, inner))
            steps += _merge(rng, [_random_fragments(rng, d, hop) for d in dgrams])
            cv.steps = []
            # The peers acknowledge everything: in window only when
            # conntrack saw the data.
            cv.send("s", ACK).send("c", ACK).send("c", ACK | PSH, 10)
            steps += cv.steps
    return random_frag_name(seed, n, v6), steps


def _merge(rng, lists):
    """The lists' steps, each list in its order, interleaved at random."""
    lists = [list(x) for x in lists if x]
    out = []
    while lists:
        i = rng.randrange(len(lists))
        out.append(lists[i].pop(0))
        if not lists[i]:
            del lists[i]
    return out


def randomized_frag(seed, count, v6):
    """Random fragment sequences 0..count-1 of a seed and family."""
    return [random_frag_sequence(seed, n, v6) for n in range(count)]
