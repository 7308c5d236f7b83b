#!/usr/bin/env python3
"""NAT parity: crafted packet sequences through Linux (iptables -t nat) and
through tunfw with the same NAT, recording what each endpoint receives.

usage: nat_replay.py kernel|tunfw OUT [--ftp] [--only NAME[,NAME...]]
       nat_replay.py list OUT [--ftp]
       nat_replay.py compare KERNEL_OUT TUNFW_OUT

Topology and NAT: see nat_parity.sh. Each case is a list of steps; a step
sends one IPv4 packet from the client ("c", LAN) or the server ("s", WAN)
side. A step's packet may depend on what arrived before it: a flow's far
side answers the addresses and ports its first packet arrived with (the
masquerade address and the mapped port), and acknowledges the sequence
numbers that arrived, so that a random port or a shifted sequence number
(FTP) is answered as a real endpoint would. After each test packet the
sender sends a sentinel on an established UDP flow; once it arrives the test
packet's fate is known (replay.py's method, whose Side and helpers this
imports).

What is recorded of each packet that arrives (by its IP ID): IP length,
TTL, protocol, source, destination, whether the IP and transport checksums
are valid; TCP/UDP ports, TCP flags, sequence and acknowledgement numbers
and payload (text if short); ICMP type, code, identifier, and for an error
the quoted packet: its source, destination, protocol, TTL, ports or
identifier, IP header checksum validity and the transport checksum (valid
or not when the whole datagram is quoted, else its value).

Ports and ICMP identifiers the firewall may choose at random are compared by
property only: a value the case crafted (or that the sent packet carried)
is recorded as itself, any other as "CLASS#N": CLASS the range it falls in
(1-511, 600-1023, 1024-65535, a configured --to-source range 20000-20099,
or "id" for ICMP identifiers), N its rank among the case's chosen values
in order of appearance. So "kept" is an equal literal, "changed, in the same
class, distinct from the first" is e.g. 1-511#1 against a literal 80, and
the same chosen port on every packet of its flow is the same #N. Everything
else is compared exactly.
"""
import hashlib
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import replay  # noqa: E402  (Side, setns, mac, await_ids, libc)
from corpus import ACK, FIN, PSH, RST, SYN, aton, csum, icmp_msg, ip, l4_csum, tcp_seg, udp_dgram  # noqa: E402

LAN_FW, WAN_FW = "10.203.1.1", "10.203.2.1"  # the firewall's (router) addresses; WAN_FW masquerades
C1, C2, C_SNAT = "10.203.1.50", "10.203.1.51", "10.203.1.80"  # LAN hosts (crafted)
LAN_SRV = "10.203.1.70"  # the port forward's target (:7000, :21 for FTP)
LAN_ROUTER = "10.203.1.99"  # a router on the LAN side
S1, S2 = "10.203.2.50", "10.203.2.51"  # WAN hosts (crafted)
FAR = "10.203.9.1"  # a router behind the server
SENT_C, SENT_S, SENT_PORT = "10.203.1.60", "10.203.2.60", 7
SNAT_RANGE = (20000, 20099)
CLASSES = [(1, 511), (600, 1023), (1024, 65535)]  # Linux's for an unspecified range
NEIGH_LAN = [C1, C2, C_SNAT, LAN_SRV, LAN_ROUTER, SENT_C]
NEIGH_WAN = [S1, S2, SENT_S]


def ntoa(b):
    return socket.inet_ntoa(bytes(b))


class Case:
    def __init__(self, name, ftp=False):
        self.name, self.ftp = name, ftp
        self.steps = []  # (side, builder(run, ip_id) -> packet)
        self.exact = set()  # ports and identifiers the case crafted
        self.classes = CLASSES  # where a chosen port is placed (SNAT cases: the range first)

    def add(self, side, builder):
        self.steps.append((side, builder))
        return len(self.steps) - 1


class Run:
    """What one case sent and what arrived, step by step."""

    def __init__(self):
        self.sent, self.got = [], []


class Flow:
    """A TCP, UDP or ICMP echo flow between the endpoint `a` (whose view of
    the addresses and ports is crafted) and the endpoint on the other side,
    whose view is learned from the first packet of the flow that reached it
    (fallback: `b_view`, the view it would have without NAT)."""

    def __init__(self, case, proto, a_side, src, sport, dst, dport, b_view=None, isn=(1000, 500000)):
        self.case, self.proto, self.a = case, proto, a_side
        self.b = "s" if a_side == "c" else "c"
        self.view = {a_side: (src, sport, dst, dport)}
        self.b_view = b_view or (dst, dport, src, sport)
        self.next = {a_side: isn[0], self.b: isn[1]}
        self.steps = {a_side: [], self.b: []}  # step indexes sent by each side
        case.exact |= {sport, dport, self.b_view[1], self.b_view[3]}

    def endpoints(self, run, side):
        if side == self.a:
            return self.view[side]
        for i in self.steps[self.a]:
            g = run.got[i] if i < len(run.got) else None
            if g:
                h = parse(g)
                return h["dst"], h.get("dport", h.get("id")), h["src"], h.get("sport", h.get("id"))
        return self.b_view

    def rcv_next(self, run, side):
        """The next sequence number `side` expects of the other: after the
        last segment of the flow that arrived at it (None: none did)."""
        other = self.b if side == self.a else self.a
        nxt = None
        for i in self.steps[other]:
            g = run.got[i] if i < len(run.got) else None
            if g:
                h = parse(g)
                nxt = (h["seq"] + len(h["payload"]) + (1 if h["flags"] & (SYN | FIN) else 0)) & 0xFFFFFFFF
        return nxt

    def tcp(self, side, flags, data=b""):
        def build(run, ip_id):
            src, sport, dst, dport = self.endpoints(run, side)
            seq = self.next[side]
            self.next[side] = (seq + len(data) + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF
            ack = 0
            if flags & ACK:
                ack = self.rcv_next(run, side)
                if ack is None:
                    ack = self.next[self.b if side == self.a else self.a]
            return ip(src, dst, 6, tcp_seg(src, dst, sport, dport, seq, ack, flags, 29200, payload=data), ip_id)
        self.steps[side].append(self.case.add(side, build))
        return self

    def udp(self, side, data=b"q"):
        def build(run, ip_id):
            src, sport, dst, dport = self.endpoints(run, side)
            return ip(src, dst, 17, udp_dgram(src, dst, sport, dport, data), ip_id)
        self.steps[side].append(self.case.add(side, build))
        return self

    def echo(self, side, icmp_type, seq=1, ttl=64):
        def build(run, ip_id):
            src, ident, dst, _ = self.endpoints(run, side)
            return ip(src, dst, 1, icmp_msg(icmp_type, 0, struct.pack("!HH", ident, seq), b"nat-parity"), ip_id, ttl=ttl)
        self.steps[side].append(self.case.add(side, build))
        return self

    def handshake(self):
        return self.tcp(self.a, SYN).tcp(self.b, SYN | ACK).tcp(self.a, ACK)


def error_about(case, side, step, icmp_type, code, src=None, quote=None, rest=b"\0\0\0\0"):
    """An ICMP error from `side` about the packet that arrived at it in step
    `step`, sent to that packet's source from `src` (default: the packet's
    destination, an endpoint's own error), quoting `quote` bytes of it (all
    of it by default, as a router quoting up to 576 bytes does with a small
    packet)."""
    def build(run, ip_id):
        got = run.got[step] or run.sent[step]
        h = parse(got)
        q = got[:quote] if quote else got[:h["len"]]
        return ip(src or h["dst"], h["src"], 1, icmp_msg(icmp_type, code, rest, q), ip_id)
    case.add(side, build)


def parse(p):
    """The fields of an IPv4 packet (see the module doc)."""
    ihl = (p[0] & 15) * 4
    tl = struct.unpack("!H", p[2:4])[0]
    p = p[:tl]
    h = {"len": tl, "ttl": p[8], "proto": p[9], "src": ntoa(p[12:16]), "dst": ntoa(p[16:20]),
         "ipck": csum(p[:ihl]) == 0}
    l4 = p[ihl:]
    h.update(parse_l4(h["proto"], h["src"], h["dst"], l4, True))
    return h


def parse_l4(proto, src, dst, l4, whole):
    h = {}
    if proto in (6, 17) and len(l4) >= 4:
        h["sport"], h["dport"] = struct.unpack("!HH", l4[:4])
    if proto == 6 and len(l4) >= 20:
        h["seq"], h["ack"], off, h["flags"] = struct.unpack("!IIBB", l4[4:14])
        h["payload"] = l4[(off >> 4) * 4:]
    if proto == 17 and len(l4) >= 8:
        h["payload"] = l4[8:]
    if proto in (6, 17) and len(l4) >= 18:
        ck = struct.unpack("!H", l4[16:18] if proto == 6 else l4[6:8])[0]
        if proto == 17 and ck == 0:
            h["l4ck"] = "zero"
        elif whole:
            h["l4ck"] = "ok" if l4_csum(src, dst, proto, l4) == 0 else "bad"
        else:
            h["l4ck"] = f"{ck:04x}"
    elif proto == 17 and len(l4) >= 8:
        ck = struct.unpack("!H", l4[6:8])[0]
        h["l4ck"] = "zero" if ck == 0 else ("ok" if l4_csum(src, dst, 17, l4) == 0 else "bad") if whole else f"{ck:04x}"
    if proto == 1 and len(l4) >= 8:
        h["type"], h["code"] = l4[0], l4[1]
        if whole:
            h["l4ck"] = "ok" if csum(l4) == 0 else "bad"
        if h["type"] in (0, 8):
            h["id"], h["seq"] = struct.unpack("!HH", l4[4:8])
        elif h["type"] in (3, 4, 5, 11, 12):
            h["rest"] = l4[4:8].hex()
            h["quote"] = parse_quote(l4[8:])
    return h


def parse_quote(q):
    if len(q) < 20:
        return {"short": len(q)}
    ihl = (q[0] & 15) * 4
    tl = struct.unpack("!H", q[2:4])[0]
    h = {"src": ntoa(q[12:16]), "dst": ntoa(q[16:20]), "proto": q[9], "ttl": q[8], "len": tl,
         "ipck": csum(q[:ihl]) == 0}
    l4 = q[ihl:tl]
    h.update(parse_l4(h["proto"], h["src"], h["dst"], l4, len(q) >= tl))
    h.pop("payload", None)
    return h


def classify(v, case, chosen, ident=False):
    if v in case.exact:
        return str(v)
    if v not in chosen:
        chosen.append(v)
    cls = "id" if ident else next((f"{lo}-{hi}" for lo, hi in case.classes if lo <= v <= hi), "?")
    return f"{cls}#{chosen.index(v) + 1}"


def raw_l4ck(p):
    """The transport checksum field of a sent TCP or UDP packet."""
    ihl = (p[0] & 15) * 4
    at = {6: 16, 17: 6}.get(p[9])
    return None if at is None else struct.unpack("!H", p[ihl + at:ihl + at + 2])[0]


def observe(case, run, p, chosen):
    """One packet as a line of fields, chosen ports by property. A quote
    cut short of its transport header's data shows its transport checksum
    as "as-sent" when it is the one the packet was sent with (an error
    quoting a packet the firewall translated must carry it back as it was
    sent), else as its value."""
    h = parse(p)
    q = h.get("quote", {})
    if len(q.get("l4ck", "")) == 4 and q["l4ck"] not in ("zero",):
        ck = int(q["l4ck"], 16)
        if any(s and s[9] == q["proto"] and parse(s)["src"] == q["src"] and raw_l4ck(s) == ck for s in run.sent):
            q["l4ck"] = "as-sent"

    def fields(h, prefix=""):
        out = []
        for k in ("len", "ttl", "proto", "src", "dst", "ipck", "sport", "dport", "flags", "seq", "ack",
                  "type", "code", "id", "rest", "l4ck", "short"):
            if k not in h:
                continue
            v = h[k]
            if k in ("sport", "dport", "id"):
                v = classify(v, case, chosen, k == "id")
            elif k == "ipck":
                v = "ok" if v else "bad"
            out.append(f"{prefix}{k}={v}")
        if h.get("payload"):
            pl = h["payload"]
            printable = all(32 <= c < 127 or c in (10, 13) for c in pl)
            out.append(f"{prefix}data={pl!r}" if printable and len(pl) <= 80 else
                       f"{prefix}data={len(pl)}B:{hashlib.sha1(pl).hexdigest()[:8]}")
        if "quote" in h:
            out += fields(h["quote"], "q.")
        return out
    return " ".join(fields(h))


def cases(ftp=False):
    out = []

    def case(name, **kw):
        c = Case(name, **kw)
        out.append(c)
        return c

    # TCP through masquerade: handshake, data both ways, FIN (port kept).
    c = case("masq_tcp_handshake_data_fin")
    f = Flow(c, 6, "c", C1, 40001, S1, 80).handshake()
    f.tcp("c", ACK | PSH, b"GET / HTTP/1.0\r\n\r\n").tcp("s", ACK).tcp("s", ACK | PSH, b"HTTP/1.0 200 OK\r\n\r\nhi")
    f.tcp("c", ACK).tcp("c", FIN | ACK).tcp("s", FIN | ACK).tcp("c", ACK)
    # Two LAN hosts, one source port, one server port: the second is remapped
    # within the port's class; each in its class.
    for sport, label in ((40000, "1024_65535"), (80, "1_511"), (700, "600_1023"), (512, "512_as_600_1023")):
        c = case(f"masq_tcp_two_hosts_sport_{sport}_class_{label}")
        a = Flow(c, 6, "c", C1, sport, S1, 8000)
        b = Flow(c, 6, "c", C2, sport, S1, 8000)
        a.tcp("c", SYN)
        b.tcp("c", SYN)
        a.tcp("s", SYN | ACK)
        b.tcp("s", SYN | ACK)
        a.tcp("c", ACK | PSH, b"one")
        b.tcp("c", ACK | PSH, b"two")
    # The same host, the same source port, two server ports: no clash, kept.
    c = case("masq_tcp_one_host_two_servers_port_kept")
    a, b = Flow(c, 6, "c", C1, 40100, S1, 8000), Flow(c, 6, "c", C1, 40100, S2, 8000)
    a.tcp("c", SYN)
    b.tcp("c", SYN)
    a.tcp("s", SYN | ACK)
    b.tcp("s", SYN | ACK)
    # UDP.
    c = case("masq_udp_query_answer")
    Flow(c, 17, "c", C1, 33001, S1, 53).udp("c", b"query").udp("s", b"answer").udp("c", b"again")
    c = case("masq_udp_two_hosts_one_port")
    a, b = Flow(c, 17, "c", C1, 5353, S1, 53), Flow(c, 17, "c", C2, 5353, S1, 53)
    a.udp("c")
    b.udp("c")
    a.udp("s")
    b.udp("s")
    c = case("masq_udp_zero_checksum")

    def zero(run, ip_id):
        d = struct.pack("!HHHH", 33002, 53, 9, 0) + b"z"
        return ip(C1, S1, 17, d, ip_id)
    c.exact |= {33002, 53}
    c.add("c", zero)
    # ICMP echo: identifier kept; two hosts with one identifier, the second remapped.
    c = case("masq_icmp_echo_id_kept")
    Flow(c, 1, "c", C1, 0x4242, S1, 0x4242).echo("c", 8).echo("s", 0).echo("c", 8, 2).echo("s", 0, 2)
    c = case("masq_icmp_echo_two_hosts_one_id")
    a, b = Flow(c, 1, "c", C1, 0x4343, S1, 0x4343), Flow(c, 1, "c", C2, 0x4343, S1, 0x4343)
    a.echo("c", 8)
    b.echo("c", 8)
    a.echo("s", 0)
    b.echo("s", 0)
    # Unsolicited from the WAN to the masquerade address: nothing passes.
    c = case("wan_to_masq_address_unsolicited")
    Flow(c, 6, "s", S1, 45001, WAN_FW, 40999).tcp("s", SYN)
    Flow(c, 17, "s", S1, 53, WAN_FW, 34999).udp("s")
    Flow(c, 1, "s", S1, 0x4444, WAN_FW, 0x4444).echo("s", 8)
    # A fragmented UDP datagram (3,000 bytes) through masquerade both ways.
    c = case("masq_udp_fragmented_both_ways")
    f = Flow(c, 17, "c", C1, 33030, S1, 53)
    f.steps["c"].append(c.add("c", lambda run, ip_id: fragments(
        ip(C1, S1, 17, udp_dgram(C1, S1, 33030, 53, bytes(range(256)) * 12), ip_id), 1480)))

    def answer(run, ip_id, f=f):
        src, sport, dst, dport = f.endpoints(run, "s")
        return fragments(ip(src, dst, 17, udp_dgram(src, dst, sport, dport, b"A" * 2500), ip_id), 1208)
    f.steps["s"].append(c.add("s", answer))
    # A second flow of one source (address and port) towards another
    # server: Linux reuses the first flow's mapping (find_appropriate_src),
    # tunfw keeps the original port when free (KNOWN).
    c = case("masq_second_flow_of_remapped_source")
    a, b = Flow(c, 6, "c", C1, 40400, S1, 8000), Flow(c, 6, "c", C2, 40400, S1, 8000)
    d = Flow(c, 6, "c", C2, 40400, S2, 8000)
    a.tcp("c", SYN)
    b.tcp("c", SYN)
    d.tcp("c", SYN)
    d.tcp("s", SYN | ACK)
    c = case("masq_tcp_rst_answers_syn")
    Flow(c, 6, "c", C1, 40002, S1, 81).tcp("c", SYN).tcp("s", RST | ACK).tcp("c", SYN)
    # The LAN addressing the firewall's own addresses: Linux delivers them
    # to its own stack (INPUT, policy DROP here); no DNAT from the LAN side.
    c = case("lan_to_firewall_addresses")
    Flow(c, 6, "c", C1, 40003, WAN_FW, 8080).tcp("c", SYN)
    Flow(c, 6, "c", C1, 40004, LAN_FW, 22).tcp("c", SYN)
    Flow(c, 1, "c", C1, 0x4646, WAN_FW, 0x4646).echo("c", 8)
    Flow(c, 17, "c", C1, 40005, LAN_FW, 53).udp("c")
    # A masqueraded flow whose reply tuple would be a forwarded flow's
    # original tuple (S2:45106 -> WAN_FW:8080): its port moves.
    c = case("masq_clash_with_forward_original")
    a = Flow(c, 6, "s", S2, 45106, WAN_FW, 8080, b_view=(LAN_SRV, 7000, S2, 45106))
    b = Flow(c, 6, "c", C1, 8080, S2, 45106)
    a.tcp("s", SYN)
    b.tcp("c", SYN)
    a.tcp("c", SYN | ACK)
    b.tcp("s", SYN | ACK)
    # A flow addressed straight to the LAN server whose reply tuple is a
    # forwarded flow's (LAN_SRV:7000 -> S2:45130): Linux's null binding moves
    # its source port.
    c = case("fwd_direct_flow_clashing_with_forward_reply")
    a = Flow(c, 6, "s", S2, 45130, WAN_FW, 8080, b_view=(LAN_SRV, 7000, S2, 45130))
    b = Flow(c, 6, "s", S2, 45130, LAN_SRV, 7000)
    a.tcp("s", SYN)
    b.tcp("s", SYN)
    a.tcp("c", SYN | ACK)
    b.tcp("c", SYN | ACK)
    # SNAT --to-source WAN_FW:20000-20099 for C_SNAT's TCP: a port in the
    # range kept, one outside moved into it, a clash moved within it.
    c = case("snat_range_port_in_range_kept")
    c.classes = [SNAT_RANGE] + CLASSES
    Flow(c, 6, "c", C_SNAT, 20050, S1, 80).handshake()
    c = case("snat_range_port_outside_moved_in")
    c.classes = [SNAT_RANGE] + CLASSES
    Flow(c, 6, "c", C_SNAT, 40200, S1, 80).handshake()
    c = case("snat_range_clash_with_masq_flow")
    c.classes = [SNAT_RANGE] + CLASSES
    # Server port 81: the case before left a flow to S1:80 from a random
    # port of the SNAT range, which may be 20060 (then tunfw, rightly,
    # moves flow a, and the kernel's random choice elsewhere would not).
    a, b = Flow(c, 6, "c", C1, 20060, S1, 81), Flow(c, 6, "c", C_SNAT, 20060, S1, 81)
    a.tcp("c", SYN)
    b.tcp("c", SYN)
    a.tcp("s", SYN | ACK)
    b.tcp("s", SYN | ACK)
    # Port forward WAN_FW:8080 -> LAN_SRV:7000.
    c = case("fwd_tcp_8080_to_lan_7000")
    f = Flow(c, 6, "s", S2, 45100, WAN_FW, 8080, b_view=(LAN_SRV, 7000, S2, 45100)).handshake()
    f.tcp("s", ACK | PSH, b"hello").tcp("c", ACK | PSH, b"world").tcp("s", ACK).tcp("s", RST | ACK)
    c = case("fwd_other_ports_not_forwarded")
    Flow(c, 6, "s", S2, 45101, WAN_FW, 8081).tcp("s", SYN)
    Flow(c, 6, "s", S2, 45102, WAN_FW, 7000).tcp("s", SYN)
    Flow(c, 17, "s", S2, 45103, WAN_FW, 8080).udp("s")
    c = case("fwd_lan_target_addressed_directly")
    Flow(c, 6, "s", S2, 45104, LAN_SRV, 7000).handshake()
    c = case("fwd_two_wan_clients_one_port")
    a = Flow(c, 6, "s", S1, 45105, WAN_FW, 8080, b_view=(LAN_SRV, 7000, S1, 45105))
    b = Flow(c, 6, "s", S2, 45105, WAN_FW, 8080, b_view=(LAN_SRV, 7000, S2, 45105))
    a.tcp("s", SYN)
    b.tcp("s", SYN)
    a.tcp("c", SYN | ACK)
    b.tcp("c", SYN | ACK)
    # ICMP errors about translated flows.
    c = case("err_port_unreachable_from_server")
    f = Flow(c, 17, "c", C1, 33010, S1, 5999).udp("c", b"anyone?")
    error_about(c, "s", f.steps["c"][0], 3, 3)
    c = case("err_time_exceeded_udp_from_far_router")
    f = Flow(c, 17, "c", C1, 33434, S1, 33435).udp("c", b"trace")
    error_about(c, "s", f.steps["c"][0], 11, 0, src=FAR)
    c = case("err_time_exceeded_echo_from_far_router")
    f = Flow(c, 1, "c", C1, 0x4545, S1, 0x4545).echo("c", 8)
    error_about(c, "s", f.steps["c"][0], 11, 0, src=FAR)
    c = case("err_frag_needed_tcp_from_far_router")
    f = Flow(c, 6, "c", C1, 40300, S1, 80).handshake().tcp("c", ACK | PSH, b"x" * 1400)
    error_about(c, "s", f.steps["c"][-1], 3, 4, src=FAR, quote=548, rest=struct.pack("!HH", 0, 1200))
    c = case("err_frag_needed_tcp_quote_8_bytes")
    f = Flow(c, 6, "c", C1, 40301, S1, 80).handshake().tcp("c", ACK | PSH, b"y" * 1400)
    error_about(c, "s", f.steps["c"][-1], 3, 4, src=FAR, quote=28, rest=struct.pack("!HH", 0, 1200))
    c = case("err_port_unreachable_about_remapped_flow")
    a, b = Flow(c, 17, "c", C1, 5400, S1, 6000), Flow(c, 17, "c", C2, 5400, S1, 6000)
    a.udp("c")
    b.udp("c")
    error_about(c, "s", b.steps["c"][0], 3, 3)
    error_about(c, "s", a.steps["c"][0], 3, 3)
    c = case("err_from_lan_host_about_masq_reply")
    f = Flow(c, 17, "c", C1, 33020, S1, 53).udp("c").udp("s", b"late answer")
    error_about(c, "c", f.steps["s"][0], 3, 3)
    c = case("err_from_lan_router_about_forward")
    f = Flow(c, 6, "s", S2, 45110, WAN_FW, 8080, b_view=(LAN_SRV, 7000, S2, 45110)).tcp("s", SYN)
    error_about(c, "c", f.steps["s"][0], 11, 0, src=LAN_ROUTER)
    c = case("err_untracked_to_masq_address")
    q = ip(WAN_FW, S1, 17, udp_dgram(WAN_FW, S1, 33999, 53, b"q"), 0x1111, ttl=63)
    c.exact |= {33999, 53}
    c.add("s", lambda run, ip_id: ip(S1, WAN_FW, 1, icmp_msg(3, 3, b"\0\0\0\0", q), ip_id))
    if ftp:
        out += ftp_cases()
    return out


def ftp_text(run, step, default):
    """The address and port an FTP line that arrived at `step` announces
    (PORT a,b,c,d,p1,p2 / 227 (...) / EPRT |1|a|p|), else `default`."""
    import re
    g = run.got[step] if step < len(run.got) else None
    text = parse(g)["payload"].decode("latin-1") if g else ""
    m = re.search(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)", text)
    if m:
        n = [int(x) for x in m.groups()]
        return ".".join(map(str, n[:4])), n[4] * 256 + n[5]
    m = re.search(r"\|1\|([\d.]+)\|(\d+)\|", text)
    if m:
        return m.group(1), int(m.group(2))
    return default


def ftp_cases():
    out = []
    # Active FTP through masquerade: PORT and EPRT rewritten to the
    # masquerade address (one character shorter), later sequence numbers
    # shifted, the server's acks shifted back; the data connection from
    # port 20 reaches the client.
    for kind, line in (("port", b"PORT 10,203,1,50,160,%d\r\n"), ("eprt", b"EPRT |1|10.203.1.50|%d|\r\n")):
        c = Case(f"ftp_active_{kind}_through_masquerade", ftp=True)
        out.append(c)
        dport = 41000 + (kind == "eprt")
        text = line % (dport - 160 * 256 if kind == "port" else dport)
        f = Flow(c, 6, "c", C1, 41021 + (kind == "eprt"), S1, 21).handshake()
        f.tcp("s", ACK | PSH, b"220 ready\r\n").tcp("c", ACK | PSH, b"USER ftp\r\n")
        f.tcp("s", ACK | PSH, b"331 ok\r\n").tcp("c", ACK | PSH, text)
        announced = f.steps["c"][-1]
        f.tcp("s", ACK).tcp("s", ACK | PSH, b"200 ok\r\n").tcp("c", ACK | PSH, b"RETR f\r\n").tcp("s", ACK)
        data = Flow(c, 6, "s", S1, 20, WAN_FW, dport, b_view=(C1, dport, S1, 20))
        c.exact.add(dport)

        def learn(run, ip_id, step=announced, data=data, dport=dport):
            a, p = ftp_text(run, step, (WAN_FW, dport))
            data.view["s"] = (S1, 20, a, p)
            return None
        c.steps.append(("-", learn))
        data.handshake().tcp("s", ACK | PSH, b"file").tcp("c", FIN | ACK)
        f.tcp("s", ACK | PSH, b"226 done\r\n").tcp("c", ACK)
    # Passive FTP to a LAN server behind the port forward of :21: the 227
    # reply rewritten to the WAN address; the WAN client's data connection
    # to it reaches the LAN server.
    c = Case("ftp_passive_227_through_port_forward", ftp=True)
    out.append(c)
    f = Flow(c, 6, "s", S2, 42021, WAN_FW, 21, b_view=(LAN_SRV, 21, S2, 42021)).handshake()
    f.tcp("c", ACK | PSH, b"220 ready\r\n").tcp("s", ACK).tcp("s", ACK | PSH, b"PASV\r\n")
    f.tcp("c", ACK | PSH, b"227 Entering Passive Mode (10,203,1,70,195,80).\r\n")
    announced = f.steps["c"][-1]
    f.tcp("s", ACK).tcp("s", ACK | PSH, b"LIST\r\n").tcp("c", ACK)
    data = Flow(c, 6, "s", S2, 42022, WAN_FW, 50000, b_view=(LAN_SRV, 50000, S2, 42022))

    def learn(run, ip_id):
        a, p = ftp_text(run, announced, (WAN_FW, 50000))
        data.view["s"] = (S2, 42022, a, p)
        return None
    c.steps.append(("-", learn))
    data.handshake().tcp("c", ACK | PSH, b"listing")
    f.tcp("c", ACK | PSH, b"226 done\r\n").tcp("s", ACK)
    return out


def sentinel(side, ip_id):
    if side == "c":
        return ip(SENT_C, SENT_S, 17, udp_dgram(SENT_C, SENT_S, SENT_PORT, SENT_PORT, b"sentinel"), ip_id)
    return ip(SENT_S, WAN_FW, 17, udp_dgram(SENT_S, WAN_FW, SENT_PORT, SENT_PORT, b"sentinel"), ip_id)


def fragments(packet, size):
    """An IPv4 packet (20-byte header) cut into fragments of `size` data
    bytes (a multiple of 8)."""
    body, out = packet[20:], []
    for off in range(0, len(body), size):
        piece = body[off:off + size]
        more = 0x2000 if off + size < len(body) else 0
        h = packet[:2] + struct.pack("!H", 20 + len(piece)) + packet[4:6] + struct.pack("!H", more | off // 8) + packet[8:10] + b"\0\0" + packet[12:20]
        out.append(h[:10] + struct.pack("!H", csum(h)) + h[12:] + piece)
    return out


def reassemble(frags):
    """The datagram the fragments of one IP ID make (None if one is
    missing); a list of one unfragmented packet gives that packet."""
    if len(frags) == 1 and not struct.unpack("!H", frags[0][6:8])[0] & 0x3FFF:
        return frags[0]
    body, last = {}, None
    for p in frags:
        ihl = (p[0] & 15) * 4
        fo = struct.unpack("!H", p[6:8])[0]
        body[(fo & 0x1FFF) * 8] = p[ihl:struct.unpack("!H", p[2:4])[0]]
        if not fo & 0x2000:
            last = p
    data, at = b"", 0
    while at in body:
        data += body[at]
        at += len(body[at])
    if last is None or at != (struct.unpack("!H", last[6:8])[0] & 0x1FFF) * 8 + len(body[(struct.unpack("!H", last[6:8])[0] & 0x1FFF) * 8]):
        return None
    first = frags[0]
    h = first[:2] + struct.pack("!H", 20 + len(data)) + first[4:6] + b"\0\0" + first[8:10] + b"\0\0" + first[12:20]
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + data


SOL_PACKET, PACKET_AUXDATA, TP_STATUS_CSUMNOTREADY = 263, 8, 1 << 3


class Side(replay.Side):
    """replay.Side whose sniffer returns whole IPv4 packets. A packet the
    kernel hands over with its transport checksum left to the device
    (CHECKSUM_PARTIAL: Linux's NAT helpers mangle a payload that way, and a
    veth passes it on; PACKET_AUXDATA says TP_STATUS_CSUMNOTREADY) gets it
    completed as the device would, over the partial sum the kernel left."""

    def __init__(self, *args):
        super().__init__(*args)
        self.rx.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)

    def drain_packets(self):
        got = []
        while True:
            try:
                data, anc, _, addr = self.rx.recvmsg(70000, socket.CMSG_SPACE(32))
            except BlockingIOError:
                return got
            if addr[2] == socket.PACKET_OUTGOING or len(data) < self.hdr + 20 or data[self.hdr] >> 4 != 4:
                continue
            p = bytearray(data[self.hdr:])
            status = next((struct.unpack("I", d[:4])[0] for lvl, t, d in anc
                           if lvl == SOL_PACKET and t == PACKET_AUXDATA), 0)
            ihl, at = (p[0] & 15) * 4, {6: 16, 17: 6}.get(p[9])
            if status & TP_STATUS_CSUMNOTREADY and at is not None:
                tl = struct.unpack("!H", p[2:4])[0]
                ck = csum(bytes(p[ihl:tl]))
                p[ihl + at:ihl + at + 2] = struct.pack("!H", ck or (0xFFFF if p[9] == 17 else 0))
            got.append(bytes(p))


def await_id(side, ip_id, timeout=3.0):
    """Every IPv4 packet that arrived until one with `ip_id` did."""
    seen = []
    deadline = time.time() + timeout
    while not any(struct.unpack("!H", p[4:6])[0] == ip_id for p in seen):
        left = deadline - time.time()
        if left <= 0:
            return seen, False
        replay.select.select([side.rx], [], [], min(left, 0.05))
        seen += side.drain_packets()
    return seen, True


def play(mode, out_path, selected):
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    ns = os.environ.get("NAT_PARITY_PREFIX", "tfnp")
    if mode == "kernel":
        c = Side(f"{ns}-c", "pc0", (replay.mac(f"{ns}-c", "pc0"), replay.mac(f"{ns}-fw", "pf-lan")))
        s = Side(f"{ns}-s", "ps0", (replay.mac(f"{ns}-s", "ps0"), replay.mac(f"{ns}-fw", "pf-wan")))
    else:
        c = Side(f"{ns}-c", "tfp-lan", None)
        s = Side(f"{ns}-s", "tfp-wan", None)
    replay.libc.setns(home, replay.CLONE_NEWNET)
    c.send(sentinel("c", 65001))
    if not await_id(s, 65001)[1]:
        raise SystemExit(f"{mode}: the sentinel did not cross the firewall (masquerade)")
    s.send(sentinel("s", 65002))
    if not await_id(c, 65002)[1]:
        raise SystemExit(f"{mode}: the sentinel's answer did not come back through the masquerade")
    ip_id = 0
    with open(out_path, "w") as out:
        for case in selected:
            run, chosen, obs = Run(), [], []
            for side, build in case.steps:
                if side == "-":  # a step that only learns
                    build(run, 0)
                    run.sent.append(None)
                    run.got.append(None)
                    continue
                ip_id += 1
                mark = 32000 + ip_id
                sender, receiver = (c, s) if side == "c" else (s, c)
                receiver.drain_packets()
                packets = build(run, ip_id)
                packets = packets if isinstance(packets, list) else [packets]
                for packet in packets:
                    sender.send(packet)
                packet = reassemble(packets)
                sender.send(sentinel(side, mark))
                seen, ok = await_id(receiver, mark)
                if not ok:
                    raise SystemExit(f"{mode}: {case.name}: sentinel lost")
                if mode == "tunfw":
                    # What tunfw read before the sentinel may leave just after it.
                    replay.turn_barrier()
                    seen += receiver.drain_packets()
                got = [p for p in seen if struct.unpack("!H", p[4:6])[0] == ip_id and p[9] == packet[9]]
                run.sent.append(packet)
                frags = [p for p in got if struct.unpack("!H", p[6:8])[0] & 0x3FFF]
                if frags:
                    whole = reassemble(frags)
                    got = [whole] if whole else got
                run.got.append(got[0] if got else None)
                o = observe(case, run, got[0], chosen) if got else "-"
                if frags:
                    o += " frags=" + "+".join(str(len(p)) for p in frags)
                    o += " fragipck=" + ("ok" if all(csum(p[:20]) == 0 for p in frags) else "bad")
                elif len(got) > 1:
                    o += f" copies={len(got)}"
                obs.append(f"{side}>{o}")
            out.write(case.name + "\t" + "\t".join(obs) + "\n")
            out.flush()


# Differences README explains ("Differences from Linux"), each as the
# packets that differ: (packet number, kernel's fields, tunfw's fields), the
# fields each has that the other lacks. A case whose differences are exactly
# these prints KNOWN and passes; any other difference is a DIFF.
KNOWN = {
    "masq_second_flow_of_remapped_source": (
        "NAT port choice: Linux gives a second flow of a source address and port the first's "
        "mapping (find_appropriate_src); tunfw keeps the original port when free",
        [(3, "sport=1024-65535#1", "sport=40400")]),
    "lan_to_firewall_addresses": (
        "tunfw has no local stack: a LAN packet to a router address is forwarded (and "
        "masqueraded) as to any other address; Linux delivers it to its own stack",
        [(1, "c>-", "c>len=40 ttl=63 proto=6 src=10.203.2.1 dst=10.203.2.1 ipck=ok sport=40003 dport=8080 "
                    "flags=2 seq=1000 ack=0 l4ck=ok"),
         (2, "c>-", "c>len=40 ttl=63 proto=6 src=10.203.2.1 dst=10.203.1.1 ipck=ok sport=40004 dport=22 "
                    "flags=2 seq=1000 ack=0 l4ck=ok"),
         (3, "c>-", "c>len=38 ttl=63 proto=1 src=10.203.2.1 dst=10.203.2.1 ipck=ok seq=1 type=8 code=0 "
                    "id=17990 l4ck=ok"),
         (4, "c>-", "c>len=29 ttl=63 proto=17 src=10.203.2.1 dst=10.203.1.1 ipck=ok sport=40005 dport=53 "
                    "l4ck=ok data=b'q'")]),
}


def differences(k, t):
    out = []
    for i in range(max(len(k), len(t))):
        kw, tw = (k[i].split() if i < len(k) else []), (t[i].split() if i < len(t) else [])
        if kw != tw:
            out.append((i + 1, " ".join(w for w in kw if w not in tw) or "-", " ".join(w for w in tw if w not in kw) or "-"))
    return out


def compare(kernel_path, tunfw_path):
    load = lambda p: {l.split("\t")[0]: l.rstrip("\n").split("\t")[1:] for l in open(p)}
    kernel, tunfw = load(kernel_path), load(tunfw_path)
    passed = failed = known = 0
    for name, k in kernel.items():
        t = tunfw.get(name)
        prop = sorted({w.split("=")[1] for step in k for w in step.split() if "#" in w})
        note = f" (by property: {', '.join(prop)})" if prop else ""
        tag = " [ftp]" if name.startswith("ftp_") else ""
        if t == k:
            passed += 1
            arrived = "".join("0" if s.endswith(">-") else "1" for s in k)
            print(f"SAME {name}{tag} {arrived}{note}")
            continue
        if t is not None and name in KNOWN and differences(k, t) == KNOWN[name][1]:
            passed += 1
            known += 1
            print(f"KNOWN {name}: {KNOWN[name][0]} (README, Differences from Linux)")
            continue
        failed += 1
        if t is None:
            print(f"DIFF {name}{tag}: missing from the tunfw run")
            continue
        diffs = differences(k, t)
        i, kd, td = diffs[0]
        i -= 1
        print(f"DIFF {name}{tag} packet {i + 1} (of {len(diffs)} differing): kernel {kd} | tunfw {td}\n"
              f"    kernel: {k[i] if i < len(k) else 'absent'}\n    tunfw:  {t[i] if i < len(t) else 'absent'}")
    print(f"nat parity: {known} known differences (README, Differences from Linux)")
    print(f"nat parity: {passed} passed, {failed} failed")
    return failed


def main():
    args = sys.argv[1:]
    if args[:1] == ["compare"] and len(args) == 3:
        sys.exit(1 if compare(args[1], args[2]) else 0)
    ftp = "--ftp" in args
    args = [a for a in args if a != "--ftp"]
    only = []
    while "--only" in args:
        i = args.index("--only")
        only += args[i + 1].split(",") if i + 1 < len(args) else [""]
        del args[i:i + 2]
    if len(args) != 2 or args[0] not in ("kernel", "tunfw", "list"):
        raise SystemExit(__doc__.split("\n\n")[1])
    every = cases(True)
    names = {c.name for c in every}
    unknown = [n for n in only if n not in names]
    if unknown:
        raise SystemExit(f"nat_replay.py: no case {', '.join(unknown)}")
    selected = [c for c in every if c.name in only] if only else [c for c in every if ftp or not c.ftp]
    if args[0] == "list":
        with open(args[1], "w") if args[1] != "-" else sys.stdout as out:
            for c in selected:
                out.write(c.name + "\n")
        return
    play(args[0], args[1], selected)


if __name__ == "__main__":
    main()
