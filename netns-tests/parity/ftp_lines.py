"""FTP-line parity sequences: one mutated PORT/EPRT/227/229 line on a crafted
FTP control connection, then SYNs of the data connection it would announce.

Each sequence (name, [Step]) as corpus.py's, eight packets:

  1-3  handshake client -> server port 21 (crafted addresses, as corpus.py's)
  4    a first line in the direction of the tested one ("USER parity\\r\\n"
       from the client, "220 parity\\r\\n" from the server): the kernel's
       helper reads only segments that start right after a newline it saw
       (find_nl_seq in nf_conntrack_ftp.c), and so does tunfw's
  5    the tested line (one segment, possibly mutated)
  6    the other side acknowledges it
  7    the data SYN to the port the unmutated line announces, on the
       sender's own address: active (PORT/EPRT) from the server's port 20
       to the client, passive (227/229) from the client's port 1000 to the
       server
  8    a probe SYN to the address/port the line would announce if parsed
       differently (the wrapped or OR-ed value of a number out of range, the
       third address of a bounce, else the next port)

Packets 7 and 8 show RELATED under the default rules: an active data SYN
from port 20 arrives only if RELATED (`--sport 20 ESTABLISHED,RELATED`;
there is no inbound NEW rule); a passive one from port 1000 arrives only if
NOT related (NEW outbound TCP is accepted, RELATED only between ports >=
1024).

Names: ftp_SEED_INDEX (IPv4 control flows), ftp6_SEED_INDEX (IPv6), built
from (seed, index) alone by their own random.Random; fixed cases ftpf_* and
ftpf6_*. The control flow's client port is CPORT_BASE + index and the data
ports of sequence i are PORT_BASE + 4 * i and up, so sequences share no
conntrack entry or expectation (fixed cases use indexes FIXED_BASE and up).

documented(name, kernel, tunfw) names a difference README "Differences from
Linux" explains: Linux drops a line its parser finds a partial match
(nf_conntrack_ftp.c's help(): NF_DROP) where tunfw forwards it, both opening
nothing.
"""
import random
import re

import corpus
from corpus import ACK, PSH, SYN

C4, S4, C4_OTHER, S4_OTHER = "10.202.1.50", "10.202.2.50", "10.202.1.51", "10.202.2.77"
C6, S6, C6_OTHER, S6_OTHER = "fd00:7f:1::50", "fd00:7f:2::50", "fd00:7f:1::51", "fd00:7f:2::51"
CPORT_BASE = 40000
PORT_BASE = 1100
FIXED_BASE = 16000
RANDOM_MAX = FIXED_BASE  # random indexes 0..RANDOM_MAX-1
# The helper state tunfw's default config keeps (max_control_flows): a run
# holds at most this many FTP control flows (they are never closed).
MAX_CONTROL_FLOWS = 4096
CASES = {}  # name -> (v6, line, sender side, probe address, probe port, index)
LINE_PACKET = 5  # 1-based index of the tested line in a sequence


def data_port(index):
    return PORT_BASE + 4 * index


def passive_sport(index):
    """Below 1024 (RELATED passive data is accepted only from 1024 up), and
    varied so that sequences whose lines announce the same port (numbers out
    of range) still use distinct data flows."""
    return 100 + index % 900


class Ftp:
    """A crafted FTP control connection of one family."""

    def __init__(self, v6, index):
        self.v6 = v6
        self.c, self.s = (C6, S6) if v6 else (C4, S4)
        self.cport = CPORT_BASE + index
        self.next = {"c": 1000000 + index * 7919, "s": 5000000 + index * 104729}
        self.steps = []

    def seg(self, side, src, dst, sport, dport, seq, ack, flags, payload=b""):
        s = corpus.tcp_seg(src, dst, sport, dport, seq, ack, flags, 29200, b"", payload)

        def make(ip_id, s=s, src=src, dst=dst):
            if self.v6:
                return corpus.ip6(src, dst, corpus.PROTO_TCP, s, ip_id)
            return corpus.ip(src, dst, 6, s, ip_id)
        self.steps.append(corpus.Step(side, make))

    def send(self, side, flags, payload=b""):
        other = "s" if side == "c" else "c"
        src, dst = (self.c, self.s) if side == "c" else (self.s, self.c)
        sp, dp = (self.cport, 21) if side == "c" else (21, self.cport)
        seq = self.next[side]
        self.seg(side, src, dst, sp, dp, seq, self.next[other] if flags & ACK else 0, flags, payload)
        self.next[side] = (seq + len(payload) + (1 if flags & SYN else 0)) & 0xFFFFFFFF

    def syn(self, side, dst, dport):
        """A data-connection SYN: from the server's port 20 (active) or the
        client's passive_sport (passive) to dst:dport."""
        src, sport = (self.s, 20) if side == "s" else (self.c, passive_sport(self.cport - CPORT_BASE))
        self.seg(side, src, dst, sport, dport, 77777, 0, SYN)


def sequence(v6, index, line, sender_side, probe_addr=None, probe_port=None, name=None):
    """The eight packets for `line` (bytes) sent by `sender_side` ("c":
    PORT/EPRT, "s": 227/229) on control flow `index`."""
    if name:
        CASES[name] = (v6, line, sender_side, probe_addr, probe_port, index)
    f = Ftp(v6, index)
    f.send("c", SYN)
    f.send("s", SYN | ACK)
    f.send("c", ACK)
    first = b"USER parity\r\n" if sender_side == "c" else b"220 parity\r\n"
    f.send(sender_side, ACK | PSH, first)
    f.send(sender_side, ACK | PSH, line)
    other = "s" if sender_side == "c" else "c"
    f.send(other, ACK)
    sender_addr = f.c if sender_side == "c" else f.s
    port = data_port(index)
    f.syn(other, sender_addr, port)
    f.syn(other, probe_addr or sender_addr, probe_port if probe_port is not None else port + 1)
    return f.steps


# ---------------------------------------------------------------------------
# Lines as fields, so that mutations can work on their parts.

def octets(addr):
    return [str(b) for b in corpus.aton(addr)]


def base_fields(kind, v6, port):
    """The unmutated line of `kind` announcing `port` on the sender's own
    address: kind is port, eprt (|1| on IPv4, |2| on IPv6), pasv (227) or
    epsv (229)."""
    client, server = (C6, S6) if v6 else (C4, S4)
    p = [str(port >> 8), str(port & 0xFF)]
    if kind == "port":
        # On IPv6 the kernel writes the four numbers over the sender's first
        # four bytes (see src/helpers/ftp.rs): these name the sender itself.
        a = ["253", "0", "0", "127"] if v6 else octets(client)
        return {"cmd": "PORT", "sp": " ", "nums": a + p, "seps": [","] * 5, "tail": "", "term": "\r\n"}
    if kind == "eprt":
        return {"cmd": "EPRT", "sp": " ", "delims": ["|"] * 4, "fam": "2" if v6 else "1",
                "addr": client, "port": str(port), "tail": "", "term": "\r\n"}
    if kind == "pasv":
        a = ["253", "0", "0", "127"] if v6 else octets(server)
        return {"cmd": "227", "sp": " ", "text": "Entering Passive Mode ", "lp": "(", "nums": a + p,
                "seps": [","] * 5, "rp": ")", "tail": ".", "term": "\r\n"}
    return {"cmd": "229", "sp": " ", "text": "Entering Extended Passive Mode ", "lp": "(",
            "delims": ["|"] * 4, "port": str(port), "rp": ")", "tail": "", "term": "\r\n"}


def render(kind, f):
    if kind == "port":
        body = "".join(n + s for n, s in zip(f["nums"], f["seps"] + [""]))
        return f["cmd"] + f["sp"] + body + f["tail"] + f["term"]
    if kind == "pasv":
        body = "".join(n + s for n, s in zip(f["nums"], f["seps"] + [""]))
        return f["cmd"] + f["sp"] + f["text"] + f["lp"] + body + f["rp"] + f["tail"] + f["term"]
    d = f["delims"]
    if kind == "eprt":
        return (f["cmd"] + f["sp"] + d[0] + f["fam"] + d[1] + f["addr"] + d[2] + f["port"] + d[3]
                + f["tail"] + f["term"])
    return f["cmd"] + f["sp"] + f["text"] + f["lp"] + d[0] + d[1] + d[2] + f["port"] + d[3] + f["rp"] + f["term"]


DELIMS = list("|!#$%&'*+-./:;<=>?@^_`~,(){}[]\\\"") + ["A", "z", "5", "0", " ", "\x7f", "\x1f", "\t"]
TERMS = ["\r\n", "\r\n", "\n", "\r", "", "\r\r\n", "\n\r", "\0", " \r\n", "\r\nNOOP\r\n"]


def v6_spellings(addr):
    """Spellings of fd00:7f:X::50 / ::51 that in6_pton and a textbook parser
    may read differently (the kernel's in6_pton: groups of any length whose
    value fits 16 bits, no zero octet in an embedded IPv4, NUL ends it)."""
    head, last = addr.rsplit("::", 1)  # "fd00:7f:1", "50"
    g = head.split(":")
    full = [x.zfill(4) for x in g] + ["0000"] * (7 - len(g)) + [last.zfill(4)]
    return [
        addr, addr.upper(), ":".join(full), ":".join(x.lstrip("0") or "0" for x in full),
        head + ":0::" + last, head + "::0:" + last, head + "::" + last.zfill(4),
        head + "::" + last.zfill(5), head + "::" + last.zfill(9), "0" + addr, "00000" + addr,
        head + "::0.0.0." + str(int(last, 16)), head + ":0:0:0:0.0.0." + str(int(last, 16)),
        head + "::1.2.3." + str(int(last, 16)), head + "::" + last + "%eth0", "[" + addr + "]",
        head + ":::" + last, addr + "::", head + "::0::" + last, addr + ":", ":" + addr,
        ":".join(full) + ":0", addr + " ", " " + addr, head + "::g" + last, "::ffff:10.202.1.50",
        "::", "::1", head + "::" + last + "\0", head + "::1:2:3:4:5:" + last, head + ":0:0:0:0:0:" + last,
        ":".join(full[:7]) + "::" + full[7], "::" + ":".join(full[1:]), ":".join(full[:7]),
    ]


def number_variants(v):
    """Spellings of a number in [0, 255] (or a port) that should, or should
    not, mean v: leading zeros, out of range, signs, spaces, hex, junk."""
    return [
        str(v), "0" + str(v), "00" + str(v), "0" * 12 + str(v), str(v + 256), str(v + 512), "256",
        "255", "999", "1000", "4294967296", str(v + 4294967296), "", "-" + str(v), "+" + str(v),
        " " + str(v), str(v) + " ", "0x" + format(v, "x"), str(v) + "a", "a", str(v)[:1] + " " + str(v)[1:],
        str(v) + "." + "0", "\t" + str(v),
    ]


def port_variants(p):
    return [
        str(p), "0" + str(p), "0000000" + str(p), str(p + 65536), str(p + 131072), "65536", "0", "00000",
        "", "-" + str(p), "+" + str(p), " " + str(p), str(p) + " ", str(p) + "x", "0x" + format(p, "x"),
        str(p + 4294967296), str(p)[:2] + " " + str(p)[2:],
    ]


def as_int(s, default):
    return int(s) if s.isdigit() and len(s) < 12 else default


def mutate(kind, f, v6, rng, probe):
    """Apply one random mutation to fields f in place; may set probe["port"]
    or probe["addr"] to what a different parse would announce."""
    client, server, c_other, s_other = (C6, S6, C6_OTHER, S6_OTHER) if v6 else (C4, S4, C4_OTHER, S4_OTHER)
    what = rng.choice(["case", "number", "number", "port", "seps", "space", "delim", "term", "extra",
                       "family", "address", "address", "text", "prefix", "case", "term"] + ["overlong"] * (rng.random() < 0.5))
    has_nums = kind in ("port", "pasv")
    has_delims = kind in ("eprt", "epsv")
    if what == "case":
        f["cmd"] = "".join(ch.upper() if rng.random() < 0.5 else ch.lower() for ch in f["cmd"])
        if "text" in f:
            f["text"] = rng.choice([f["text"].upper(), f["text"].lower(), f["text"]])
    elif what == "number" and has_nums:
        i = rng.randrange(len(f["nums"]))
        v = as_int(f["nums"][i], 7)
        s = rng.choice(number_variants(v))
        f["nums"][i] = s
        if i in (4, 5) and len(f["nums"]) >= 6 and s.isdigit() and int(s) < 1 << 16:
            # What a parser without the range check announces: the kernel of
            # before the check OR-ed the bytes.
            n = [as_int(x, 0) for x in f["nums"][4:6]]
            alt = ((n[0] << 8) | n[1]) & 0xFFFF
            if alt not in (0, int(probe["base"])):
                probe["port"] = alt
    elif what == "number" and kind == "eprt" and f["fam"] == "1":
        parts = f["addr"].split(".")
        i = rng.randrange(4)
        if len(parts) == 4:
            parts[i] = rng.choice(number_variants(as_int(parts[i], 7)))
        f["addr"] = ".".join(parts)
    elif what == "number" and kind == "eprt":
        f["addr"] = rng.choice(v6_spellings(C6))
    elif what in ("number", "port") and has_delims:
        p = as_int(f["port"], probe["base"])
        s = rng.choice(port_variants(p))
        f["port"] = s
        if s.isdigit() and int(s) % 65536 not in (0, p):
            probe["port"] = int(s) % 65536  # a parser that wraps at 16 bits
    elif what == "port" and has_nums:
        p = probe["base"]
        f["nums"][4:] = rng.choice([["0", "0"], ["0", str(p & 0xFF)], [str(p >> 8), "0"], [str(p >> 8)],
                                    [str(p >> 8), str(p & 0xFF), "0"], [str(p)], [str(p >> 8), str(p & 0xFF), ""]])
        f["seps"] = [","] * (len(f["nums"]) - 1)
    elif what == "seps" and has_nums:
        i = rng.randrange(len(f["seps"]))
        choice = rng.choice([",,", ".", ";", " ", ", ", " ,", "", "|", "\t", "/", ",\r"])
        f["seps"][i] = choice
        if choice == "":
            probe["port"] = None
    elif what == "seps":
        i = rng.randrange(4)
        f["delims"][i] = rng.choice(["||", "", f["delims"][i] * 3])
    elif what == "space":
        where = rng.choice(["before", "after", "none", "tab", "inside", "end"])
        if where == "before":
            f["cmd"] = rng.choice([" ", "  ", "\t"]) + f["cmd"]
        elif where == "after":
            f["sp"] = rng.choice(["  ", "   ", " \t", "\t "])
        elif where == "none":
            f["sp"] = ""
        elif where == "tab":
            f["sp"] = "\t"
        elif where == "inside" and has_nums:
            i = rng.randrange(len(f["nums"]))
            f["nums"][i] = rng.choice([" ", "", "  "]) + f["nums"][i] + rng.choice([" ", ""])
        elif where == "inside" and kind == "eprt":
            f["addr"] = " " + f["addr"] if rng.random() < 0.5 else f["addr"] + " "
        elif where == "inside":
            f["port"] = " " + f["port"] if rng.random() < 0.5 else f["port"] + " "
        else:
            f["tail"] = rng.choice([" ", "  ", "\t"]) + f["tail"]
    elif what == "delim" and has_delims:
        new = rng.choice(DELIMS)
        if rng.random() < 0.5:
            f["delims"] = [new] * 4
        else:
            f["delims"][rng.randrange(4)] = new
    elif what == "delim":
        f["lp" if kind == "pasv" else "sp"] = rng.choice(["", "[", "{", "((", " (", "=", "(|"])
        if kind == "pasv" and rng.random() < 0.5:
            f["rp"] = rng.choice(["", "]", "))", ",", "|", " )"])
    elif what == "term":
        f["term"] = rng.choice(TERMS)
    elif what == "extra":
        if has_nums:
            f["nums"].append(rng.choice(["7", "0", "255", "1234", ""]))
            f["seps"].append(",")
        elif kind == "eprt":
            f["tail"] = rng.choice(["7|", "|", "x", " extra", f["delims"][3] + "9" + f["delims"][3]])
        else:
            f["port"] = f["port"] + f["delims"][3] + rng.choice(["1", "", "x"])
        if rng.random() < 0.3:
            f["tail"] += " trailing words"
    elif what == "family" and kind == "eprt":
        f["fam"] = rng.choice(["2" if f["fam"] == "1" else "1", "3", "0", "", "12", "01", "a", "1" + f["fam"]])
        if f["fam"] in ("1", "2") and f["fam"] != ("2" if v6 else "1"):
            # The other family's address, well formed.
            f["addr"] = "10.202.1.50" if f["fam"] == "1" else "fd00:7f:1::50"
    elif what == "address":
        sender = client if kind in ("port", "eprt") else server
        peer = server if kind in ("port", "eprt") else client
        other = c_other if kind in ("port", "eprt") else s_other
        if has_nums and not v6:
            pick = rng.choice([other, peer, "0.0.0.0", "127.0.0.1", "10.202.1.1", "10.202.2.1", "255.255.255.255"])
            f["nums"][:4] = octets(pick)
            probe["addr"] = pick if pick == other else None
        elif has_nums:
            # The sender's first four bytes are 253.0.0.127; anything else is
            # a bounce. 10.202.x.50 is the IPv4 twin of the sender.
            pick = rng.choice([["10", "202", "1", "50"], ["10", "202", "2", "50"], ["253", "0", "0", "128"],
                               ["0", "0", "0", "0"], ["253", "0", "0", "127"]])
            f["nums"][:4] = pick
        elif kind == "eprt" and not v6:
            pick = rng.choice([other, peer, "0.0.0.0", "10.202.1.1"])
            f["addr"] = pick
            probe["addr"] = pick if pick == other else None
        elif kind == "eprt":
            pick = rng.choice([other, peer, "::", "fd00:7f:1::1", "::ffff:10.202.1.50"] + v6_spellings(other)[:4])
            f["addr"] = pick
            probe["addr"] = other if pick in v6_spellings(other)[:4] or pick == other else None
        else:
            f["text"] = rng.choice(["Entering Extended Passive Mode ", "", "(1) ", " 10.202.2.77 "])
    elif what == "text" and kind == "pasv":
        f["text"] = rng.choice(["", "Entering Passive Mode", "=", "Mode 1 ", "Entering Passive Mode 10 ",
                                "ok " * 30, "x" * 300, "\0", "a,b,c "])
        if rng.random() < 0.4:
            f["lp"] = ""
            f["rp"] = rng.choice(["", ")", " "])
            f["tail"] = rng.choice(["", ".", " ok"])
    elif what == "text" and kind == "epsv":
        f["text"] = rng.choice(["", "ok", "x" * 300, "(", "((", "Entering (E) "])
        if rng.random() < 0.3:
            f["lp"] = rng.choice(["", "[", "(("])
    elif what == "text":
        f["tail"] = rng.choice([" ; comment", "NOOP", "\0", "\r", "x" * 100])
    elif what == "prefix":
        f["cmd"] = rng.choice({"port": ["XPORT", "PORTS", "PORTX", "POR", "PORT0", "P0RT", "PORt"],
                               "eprt": ["XEPRT", "EPRTS", "EPR", "EPORT", "eprtX", "EPRT("],
                               "pasv": ["227-", "2270", "22", "227", "0227", "228", "227 227"],
                               "epsv": ["229-", "2290", "229", "0229", "228", "229 229"]}[kind])
        if kind in ("pasv", "epsv") and f["cmd"] in ("227", "229"):
            f["sp"] = rng.choice(["", "\t", "-"])
    else:  # overlong: long junk where the kernel skips or reads on
        n = rng.choice([200, 240, 250, 256, 260, 300, 600, 1100])
        if kind in ("port", "eprt"):
            f["cmd"] += "X" * n  # the kernel skips to the first space
        elif kind == "epsv":
            f["text"] = "x" * n  # skipped up to '('
        else:
            f["text"] = "y" * n  # 227: the first digit anywhere after
    return f


def random_line(v6, rng, port):
    """A random (line bytes, sender side, probe address, probe port)."""
    kinds = ["eprt", "eprt", "epsv", "epsv", "port", "pasv"] if v6 else ["port", "port", "eprt", "pasv", "pasv", "epsv"]
    kind = rng.choice(kinds)
    f = base_fields(kind, v6, port)
    probe = {"base": port, "port": port + 1, "addr": None}
    n = rng.choices([0, 1, 2, 3], weights=[8, 55, 27, 10])[0]
    for _ in range(n):
        mutate(kind, f, v6, rng, probe)
    line = render(kind, f)
    r = rng.random()
    if r < 0.12:
        # Truncated at any point, then some ending.
        cut = rng.randrange(len(line) + 1)
        line = line[:cut] + rng.choice(["", "", "\r\n", "\r", "\n"])
    elif r < 0.15:
        line = "NOOP\r\n" + line  # the command does not start the segment
    data = line.encode("latin-1")
    side = "c" if kind in ("port", "eprt") else "s"
    return data, side, probe["addr"], probe["port"] if probe["port"] is not None else port + 1


def random_name(v6, seed, n):
    return f"ftp{'6' if v6 else ''}_{seed}_{n}"


def random_sequence(v6, seed, n):
    if not 0 <= n < RANDOM_MAX:
        raise ValueError(f"ftp line index {n} out of range 0..{RANDOM_MAX - 1}")
    rng = random.Random(f"ftp{'6' if v6 else '4'}/{seed}/{n}")
    line, side, paddr, pport = random_line(v6, rng, data_port(n))
    name = random_name(v6, seed, n)
    return name, sequence(v6, n, line, side, paddr, pport, name)


def randomized(seed, count, family):
    """count random lines of each family selected ("4", "6", "all")."""
    families = 2 if family == "all" else 1
    if families * (count + len(_fixed_cases(True))) > MAX_CONTROL_FLOWS - 96:
        raise ValueError(f"--ftp {count}: more FTP control flows in one run than tunfw's default "
                         f"max_control_flows ({MAX_CONTROL_FLOWS}); run the families apart or fewer lines")
    out = []
    if family in ("4", "all"):
        out += [random_sequence(False, seed, n) for n in range(count)]
    if family in ("6", "all"):
        out += [random_sequence(True, seed, n) for n in range(count)]
    return out


# ---------------------------------------------------------------------------
# The fixed cases: (name, kind, field overrides or a literal line).

def _fixed_cases(v6):
    client, server = (C6, S6) if v6 else (C4, S4)
    cases = [
        ("port_valid", "port", {}),
        ("port_lower", "port", {"cmd": "port"}),
        ("port_leading_zeros", "port", {"nums": None, "zeros": True}),
        ("port_octet_256", "port", {"nums_at": (3, "306" if not v6 else "383")}),
        ("port_p2_256", "port", {"nums_at": (5, "256")}),
        ("port_no_cr", "port", {"term": "\n"}),
        ("port_cr_only", "port", {"term": "\r"}),
        ("port_truncated", "port", {"term": "", "nums_cut": 5}),
        ("port_seven", "port", {"extra": "7"}),
        ("port_two_spaces", "port", {"sp": "  "}),
        ("port_skip_junk", "port", {"cmd": "PORTABC"}),
        ("port_bounce", "port", {"bounce": True}),
        ("port_overlong_skip", "port", {"cmd": "PORT" + "X" * 300}),
        ("eprt_valid", "eprt", {}),
        ("eprt_bang", "eprt", {"delims": ["!"] * 4}),
        ("eprt_mismatch", "eprt", {"delims": ["|", "|", "|", "!"]}),
        ("eprt_other_family", "eprt", {"fam": "1" if v6 else "2",
                                        "addr": "10.202.1.50" if v6 else "fd00:7f:1::50"}),
        ("eprt_port_65536", "eprt", {"port_plus": 65536}),
        ("pasv_valid", "pasv", {}),
        ("pasv_no_parens", "pasv", {"lp": "", "rp": "", "tail": ""}),
        ("pasv_digit_in_text", "pasv", {"text": "Entering Mode 1 "}),
        ("pasv_dash", "pasv", {"cmd": "227-"}),
        ("epsv_valid", "epsv", {}),
        ("epsv_two_delims", "epsv", {"delims": ["|", "|", "", "|"]}),
        ("epsv_hash", "epsv", {"delims": ["#"] * 4}),
        ("epsv_port_0", "epsv", {"port": "0"}),
    ]
    if v6:
        cases += [
            ("eprt_full_form", "eprt", {"addr": v6_spellings(client)[2]}),
            ("eprt_five_digit_group", "eprt", {"addr": v6_spellings(client)[7]}),
            ("eprt_embedded_v4", "eprt", {"addr": v6_spellings(client)[11]}),
            ("port_v4_address", "port", {"nums4": octets(C4)}),
            ("pasv_v4_address", "pasv", {"nums4": octets(S4)}),
        ]
    return cases


def fixed(v6):
    out = []
    for i, (name, kind, o) in enumerate(_fixed_cases(v6)):
        index = FIXED_BASE + i
        port = data_port(index)
        f = base_fields(kind, v6, port)
        paddr, pport = None, port + 1
        for k, v in o.items():
            if k == "zeros":
                f["nums"] = ["0" + n for n in f["nums"]]
            elif k == "nums":
                continue
            elif k == "nums_at":
                f["nums"][v[0]] = v[1]
                if v[0] == 5:
                    pport = (int(f["nums"][4]) << 8 | 256) & 0xFFFF
            elif k == "nums_cut":
                f["nums"], f["seps"] = f["nums"][:v], f["seps"][:v - 1]
            elif k == "nums4":
                f["nums"][:4] = v
            elif k == "extra":
                f["nums"].append(v)
                f["seps"].append(",")
            elif k == "bounce":
                other = C6_OTHER if v6 else C4_OTHER
                if not v6:
                    f["nums"][:4] = octets(other)
                else:
                    f["nums"][:4] = ["10", "202", "1", "51"]
                paddr = other
            elif k == "port_plus":
                f["port"] = str(int(f["port"]) + v)
                pport = port
            else:
                f[k] = v
        side = "c" if kind in ("port", "eprt") else "s"
        name = f"ftpf{'6' if v6 else ''}_{name}"
        out.append((name, sequence(v6, index, render(kind, f).encode("latin-1"), side, paddr, pport, name)))
    return out


NAME = re.compile(r"ftp(6?)_(-?\d+)_(\d+)")


def is_ftp_name(name):
    return name.startswith("ftpf") or NAME.fullmatch(name) is not None


def select(seed, names, other):
    """The named sequences in order: FTP ones built here, the rest by
    other(seed, [name]) (corpus.select)."""
    fixed_seqs = None
    out = []
    for name in names:
        if name.startswith("ftpf"):
            if fixed_seqs is None:
                fixed_seqs = dict(fixed(False) + fixed(True))
            if name not in fixed_seqs:
                raise ValueError(f"no FTP-line case named {name!r}")
            out.append((name, fixed_seqs[name]))
            continue
        m = NAME.fullmatch(name)
        if not m:
            out += other(seed, [name])
            continue
        if int(m.group(2)) != seed:
            raise ValueError(f"{name} is a sequence of seed {m.group(2)}, not of seed {seed} (use --seed {m.group(2)})")
        out.append(random_sequence(bool(m.group(1)), seed, int(m.group(3))))
    return out


def documented(name, kernel, tunfw):
    """Why kernel and tunfw arrivals of FTP sequence `name` differ as README
    "Differences from Linux" says, or None. Two such differences:

    - Linux drops the line (its parser's partial match), tunfw forwards it,
      and every other packet, the data SYNs included, has the same fate;
    - the line has a number out of range: the model of Linux 6.18's parser
      (kernel_parse) predicts the kernel's arrivals exactly, and that of the
      parser with net-next's range checks, which tunfw follows, predicts
      tunfw's."""
    if not is_ftp_name(name) or len(kernel) != len(tunfw) or len(kernel) < LINE_PACKET:
        return None
    i = LINE_PACKET - 1
    if kernel[i] == "0" and tunfw[i] == "1" and kernel[:i] == tunfw[:i] and kernel[i + 1:] == tunfw[i + 1:]:
        return "Linux drops a line it matches partially, tunfw forwards it; neither opens anything"
    if name not in CASES:
        m = NAME.fullmatch(name)
        select(int(m.group(2)) if m else 0, [name], lambda s, n: [])
    v6, line, side, paddr, pport, index = CASES[name]
    old, new = (kernel_parse(line, side == "c", v6, _sender(v6, side), checked) for checked in (False, True))
    if old != new and kernel == predict(name, old, True) and tunfw == predict(name, new, False):
        return "a number out of range: Linux 6.18 keeps it (OR-ed or wrapped), tunfw refuses it as net-next does"
    return None


def _sender(v6, side):
    return (C6 if v6 else C4) if side == "c" else (S6 if v6 else S4)


def predict(name, parsed, kernel):
    """The arrivals of sequence `name` if its line parses as `parsed`
    (kernel_parse's result) in the kernel (kernel=True: a partial line is
    dropped, port 0 is expected) or in tunfw."""
    v6, line, side, paddr, pport, index = CASES[name]
    sender = _sender(v6, side)
    raw = corpus.aton6 if v6 else corpus.aton
    out = "1111" + ("0" if kernel and parsed == PARTIAL else "1") + "1"
    exp = parsed if isinstance(parsed, tuple) and parsed[0] == raw(sender) else None
    if exp and exp[1] == 0 and not kernel:
        exp = None
    syn7 = (raw(sender), data_port(index))
    syn8 = (raw(paddr or sender), pport if pport is not None else data_port(index) + 1)
    rel7 = exp is not None and exp == syn7
    rel8 = exp is not None and exp == syn8 and (not rel7 or syn8 == syn7)
    for rel in (rel7, rel8):
        out += ("1" if rel else "0") if side == "c" else ("0" if rel else "1")
    return out


def show(name, seed=0):
    """The tested line of a sequence, for a report (python3 ftp_lines.py NAME)."""
    (_, steps), = select(seed, [name], lambda s, n: [])
    pkt = steps[LINE_PACKET - 1].build(1)
    off = 40 if pkt[0] >> 4 == 6 else 20
    seg = pkt[off:]
    return seg[(seg[12] >> 4) * 4:]


if __name__ == "__main__":
    import sys
    for arg in sys.argv[1:]:
        m = NAME.fullmatch(arg)
        print(arg, repr(show(arg, int(m.group(2)) if m else 0)))


# ---------------------------------------------------------------------------
# A model of the kernel's parser (nf_conntrack_ftp.c's find_pattern and its
# getnum functions, net/core/utils.c's in6_pton), used only to tell one
# documented difference apart: Linux 6.18 keeps numbers out of range (ORs
# PORT/227's shifted numbers, wraps EPRT/229 ports at 16 bits), tunfw refuses
# them as net-next's "avoid u16 overflows" does (checked=True).

PARTIAL, NOMATCH = "partial", "nomatch"


def _try_number(data, n, sep, term, checked):
    a = [0] * n
    i = 0
    for ln, ch in enumerate(data):
        if i >= n:
            break
        if 48 <= ch <= 57:
            a[i] = (a[i] * 10 + ch - 48) & 0xFFFFFFFF
            if checked and a[i] > 255:
                return 0, a
        elif ch == sep:
            i += 1
        else:
            if (term is None or ch == term) and i == n - 1:
                return ln, a
            return 0, a
    return 0, a


def _get_port(data, start, delim, checked):
    p = 0
    for i in range(start, len(data)):
        ch = data[i]
        if ch == delim:
            return (i + 1, p) if p else (0, 0)
        if 48 <= ch <= 57:
            p = p * 10 + ch - 48
            if checked and p > 65535:
                return 0, 0
            if not checked:
                p &= 0xFFFF
        else:
            return 0, 0
    return 0, 0


def _class(src, at, delim):
    ch = src[at] if at < len(src) else 0
    if ch == delim or ch == 0:
        return 0x10000000
    if ch == 58:
        return 0x00700000
    if ch == 46:
        return 0x00800000
    v = int(chr(ch), 16) if chr(ch) in "0123456789abcdefABCDEF" else -1
    if v >= 0:
        return v | 0x10000 | (0x20000 if v < 10 else 0)
    return 0x40000000


def _in4_pton(src, s, delim):
    out, i, w = [], 0, 0
    while True:
        c = _class(src, s, delim)
        if not c & (0x20000 | 0x00800000 | 0x10000000 | 0x00700000):
            return None
        if c & (0x00800000 | 0x10000000 | 0x00700000):
            if w == 0:
                return None
            out.append(w & 0xFF)
            w = 0
            i += 1
            if c & (0x10000000 | 0x00700000):
                return (bytes(out), s) if i == 4 else None
        else:
            w = (w * 10 + c) & 0xFFFFFFFF
            if w & 0xFFFF > 255:
                return None
        if i >= 4:
            return None
        s += 1


def in6_pton(src, delim):
    XD, DG, CM, C1, C2, C12, DOT, DL, NUL = 0x10000, 0x20000, 0x700000, 0x100000, 0x200000, 0x400000, 0x800000, 0x10000000, 0x20000000
    buf, d, dc, tok, state, w, s = bytearray(16), 0, None, None, C12 | XD | NUL, 0, 0
    while True:
        c = _class(src, s, delim)
        if not c & state:
            return None
        if c & (DL | CM):
            if not state & NUL:
                if d + 2 > 16:
                    return None
                buf[d:d + 2] = bytes([(w >> 8) & 0xFF, w & 0xFF])
                d += 2
            w = 0
            if c & DL:
                break
            m = state & CM
            state = {C2: XD | DL, C1 | C12: XD | C2, C1: XD, C12: C2}.get(m, 0)
            if m == C2:
                dc = d
                if d >= 16:
                    state |= NUL
            tok = s + 1
        elif c & DOT:
            r = _in4_pton(src, tok if tok is not None else s, delim)
            if r is None or d + 4 > 16:
                return None
            buf[d:d + 4] = r[0]
            d += 4
            s = r[1]
            break
        else:
            w = (w << 4) | (c & 0xFF)
            state = C1 | DL
            if not w & 0xF000:
                state |= XD
            if dc is None and d + 2 < 16:
                state |= C12
                state &= ~DL
            if d + 2 >= 16:
                state &= ~(C1 | C12)
        if (dc is not None and d + 4 < 16) or d + 4 == 16:
            state |= DOT
        if d >= 16:
            state &= ~(XD | CM)
        s += 1
    if dc is None:
        return bytes(buf), s
    tail = d - dc
    return bytes(buf[:dc]) + bytes(16 - dc - tail) + bytes(buf[dc:d]), s


def kernel_parse(line, from_client, v6, sender, checked):
    """What the kernel's help() makes of a segment starting a line: NOMATCH,
    PARTIAL, or (address bytes, port) of the expectation (port 0 included;
    the bounce check is the caller's)."""
    table = [(b"PORT", 32, 13, "rfc959"), (b"EPRT", 32, 13, "eprt")] if from_client else \
        [(b"227 ", None, None, "rfc1123"), (b"229 ", 40, 41, "epsv")]
    addr = bytearray(corpus.aton6(sender) if v6 else corpus.aton(sender))
    for pat, skip, term, how in table:
        n = len(line)
        if n <= len(pat):
            if line.lower() == pat[:n].lower():
                return PARTIAL
            continue
        if line[:len(pat)].lower() != pat.lower():
            continue
        i = len(pat)
        if skip is not None:
            while line[i] != skip:
                if i == n - 1:
                    return PARTIAL
                i += 1
            i += 1
        data = line[i:]
        if how in ("rfc959", "rfc1123"):
            if how == "rfc1123":
                at = next((j for j, ch in enumerate(data) if 48 <= ch <= 57), None)
                if at is None:
                    return PARTIAL
                data, term = data[at:], None
            ln, a = _try_number(data, 6, 44, term, checked)
            if not ln:
                return PARTIAL
            ip = ((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]) & 0xFFFFFFFF
            addr[:4] = ip.to_bytes(4, "big")
            return bytes(addr), ((a[4] << 8) | a[5]) & 0xFFFF
        if len(data) <= 3:
            return PARTIAL
        dl = data[0]
        if 48 <= dl <= 57 or dl < 33 or dl > 126:
            return PARTIAL
        if how == "epsv":
            if data[1] != dl or data[2] != dl:
                return PARTIAL
            end, port = _get_port(data, 3, dl, checked)
            return (bytes(addr), port) if end else PARTIAL
        if data[2] != dl or data[1] != (50 if v6 else 49):
            return PARTIAL
        if v6:
            r = in6_pton(data[3:], dl)
            if r is None:
                return PARTIAL
            a6, ln = r
            addr[:] = a6
        else:
            ln, a = _try_number(data[3:], 4, 46, dl, checked)
            if not ln:
                return PARTIAL
            addr[:4] = (((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]) & 0xFFFFFFFF).to_bytes(4, "big")
        end, port = _get_port(data, 3 + ln + 1, dl, checked)
        return (bytes(addr), port) if end else PARTIAL
    return NOMATCH
