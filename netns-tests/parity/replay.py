#!/usr/bin/env python3
"""Replay packet sequences between a client and a server namespace through a
firewall (Linux or tunfw) and record which packets reach the far side.

usage: replay.py MODE CORPUS SEED COUNT OUT [--family 4|6|all] [--frag N] [--only NAME]...
  MODE    kernel | tunfw   (how the namespaces are wired, see parity.sh)
          list             (write the selected sequences' names to OUT and
                            exit; needs no namespace)
  CORPUS  fixed | random | all
  SEED    seed of the random sequences (printed, so a DIFF can be replayed)
  COUNT   number of random sequences (of each family selected)
  OUT     file to write: one line per sequence, "name<TAB>arrivals<TAB>
          sizes", where arrivals has one character per packet: 1 arrived, 0
          did not, and sizes one field per packet (comma-separated): the IP
          lengths of what arrived of it ("-" for nothing) ("-" for
          standard output). A fragment's packet is its datagram: what
          arrived of the datagram while that fragment was handled.
  --only NAME  replay only the named sequence(s) instead of CORPUS/COUNT: a
          fixed-corpus name or random_SEED_INDEX (of this SEED); repeatable,
          or several names separated by commas. A random sequence depends only
          on its seed and index (see corpus.py), so it replays alone exactly.
          A name says its family; --family is then not needed.
  --family 4 | 6 | all   the IPv4 corpus (the default), the IPv6 corpus
          (fixed v6_* sequences, random6_SEED_INDEX), or both, IPv4 first
  --ftp N  also N random FTP lines of each family selected (ftp_SEED_INDEX,
          ftp6_SEED_INDEX, see ftp_lines.py; the fixed corpora always carry
          the fixed FTP-line cases ftpf_*, ftpf6_*)
  --frag N  number of random fragment sequences (randfrag_SEED_INDEX,
          randfrag6_SEED_INDEX) of each family selected; default COUNT

Crafted flows use addresses that neither endpoint owns (10.202.1.50 and up,
fd00:7f:1::50 and up on the client side, 10.202.2.50 and up, fd00:7f:2::50
and up on the server side), so the endpoints' own stacks drop them silently
and never answer with RSTs or ICMP errors. Packets are sent and sniffed
with AF_PACKET on the endpoint interfaces; the far side knows an IPv4 packet
by its IP ID and an IPv6 packet by its flow label. All fragments of a
datagram (fragcorpus.FragStep) carry one number as IP ID or flow label,
from a counter of their own that does not wrap within a run of up to
32,000 datagrams (so that no fragment joins the incomplete queue of an
earlier datagram); IPv6 ones also get a fragment identification unique in
the run.
"""
import ctypes
import json
import os
import random
import select
import socket
import struct
import subprocess
import sys
import time

import corpus
import ftp_lines
import fragcorpus

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
# The key of an IPv6 packet among those seen: its flow label plus this (IPv4
# packets are keyed by their IP ID, below it).
V6_KEY = 1 << 20
# IPv6 packets the firewall itself sends do not count: from its own
# addresses (ICMPv6 errors, whose flow label is chosen by the kernel), or
# with flow label 0 (its ND and MLD; the harness never uses label 0).
V6_FIREWALL = {corpus.aton6("fd00:7f:1::1"), corpus.aton6("fd00:7f:2::1")}
libc = ctypes.CDLL(None, use_errno=True)


def setns(name):
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), f"setns {name}")
    os.close(fd)


class Side:
    """An endpoint: a socket that sends crafted IP packets out of its
    interface, and a socket that sniffs what arrives on it."""

    def __init__(self, ns, ifname, l2):
        setns(ns)
        self.l2 = l2  # (src_mac, dst_mac) for Ethernet (veth), None for TUN
        self.tx = {}
        for version, proto in ((4, ETH_P_IP), (6, ETH_P_IPV6)):
            self.tx[version] = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
            self.tx[version].bind((ifname, proto))
        self.rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.rx.bind((ifname, ETH_P_ALL))
        self.rx.setblocking(False)
        self.hdr = 14 if l2 else 0

    def send(self, ip_packet):
        version = ip_packet[0] >> 4
        if self.l2:
            src, dst = self.l2
            frame = dst + src + struct.pack("!H", ETH_P_IPV6 if version == 6 else ETH_P_IP) + ip_packet
        else:
            frame = ip_packet
        self.tx[version].send(frame)

    def drain(self):
        """(key, IP length) of everything that arrived (inbound only), in
        order; see packet_key."""
        got = []
        while True:
            try:
                data, addr = self.rx.recvfrom(70000)
            except BlockingIOError:
                return got
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            ip = data[self.hdr:]
            key = packet_key(ip)
            if key is not None:
                got.append((key, ip_length(ip)))


def packet_key(ip):
    """How the far side knows a packet: the IP ID of IPv4, V6_KEY plus the
    flow label of IPv6 (not the firewall's own, see V6_FIREWALL); None for
    anything else."""
    if len(ip) >= 20 and ip[0] >> 4 == 4:
        return struct.unpack("!H", ip[4:6])[0]
    if len(ip) >= 40 and ip[0] >> 4 == 6 and ip[8:24] not in V6_FIREWALL:
        label = struct.unpack("!I", ip[0:4])[0] & 0xFFFFF
        return V6_KEY | label if label else None
    return None


def ip_length(ip):
    """The length an IPv4 or IPv6 header gives its packet."""
    if ip[0] >> 4 == 4:
        return struct.unpack("!H", ip[2:4])[0]
    return 40 + struct.unpack("!H", ip[4:6])[0]


def mac(ns, ifname):
    out = subprocess.run(["ip", "-n", ns, "-j", "link", "show", ifname], capture_output=True, text=True, check=True)
    return bytes.fromhex(json.loads(out.stdout)[0]["address"].replace(":", ""))


SENTINEL_C, SENTINEL_S, SENTINEL_PORT = "10.202.1.60", "10.202.2.60", 7
SENTINEL6_C, SENTINEL6_S = "fd00:7f:1::60", "fd00:7f:2::60"


def sentinel(side, ip_id, version=4):
    """A datagram on a UDP flow of family `version` set up at the start,
    which both firewalls forward in either direction (ESTABLISHED); ip_id
    is its IP ID (IPv4) or flow label (IPv6)."""
    if version == 6:
        src, dst = (SENTINEL6_C, SENTINEL6_S) if side == "c" else (SENTINEL6_S, SENTINEL6_C)
        d = corpus.udp_dgram(src, dst, SENTINEL_PORT, SENTINEL_PORT, b"sentinel")
        return corpus.ip6(src, dst, 17, d, ip_id)
    src, dst = (SENTINEL_C, SENTINEL_S) if side == "c" else (SENTINEL_S, SENTINEL_C)
    return corpus.ip(src, dst, 17, corpus.udp_dgram(src, dst, SENTINEL_PORT, SENTINEL_PORT, b"sentinel"), ip_id)


def key(version, ip_id):
    return V6_KEY | ip_id if version == 6 else ip_id


def turn_barrier():
    """In tunfw mode (TUNFW_CONTROL names its control socket): one `stats`
    request, answered once every packet tunfw had read before the sentinel
    that just arrived has been handled. tunfw reads its devices' queues in
    turns (a queue may be served before another in one turn), so a test
    packet on another queue than its sentinel can leave just after it; the
    request, sent after the sentinel arrived, is read in a later turn than
    the one that forwarded the sentinel, which also read the test packet.
    Nothing to wait for in kernel mode (one CPU: in order)."""
    path = os.environ.get("TUNFW_CONTROL")
    if not path:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as ctl:
        ctl.settimeout(5)
        ctl.connect(path)
        ctl.sendall(b"stats\n")
        ctl.shutdown(socket.SHUT_WR)
        while ctl.recv(65536):
            pass


def await_ids(receiver, wanted, timeout=3.0):
    """(key, length) of what arrived until every key in `wanted` did (or
    the timeout), and whether they did."""
    seen = []
    deadline = time.time() + timeout
    while not wanted <= {k for k, _ in seen}:
        left = deadline - time.time()
        if left <= 0:
            return seen, False
        select.select([receiver.rx], [], [], min(left, 0.05))
        seen += receiver.drain()
    return seen, True


def sequences_for(which, seed, count, only, family, frag_count, ftp=0):
    if only:
        return ftp_lines.select(seed, only, corpus.select)
    sequences = []
    if family in ("4", "all"):
        if which in ("fixed", "all"):
            sequences += corpus.fixed()
        if which in ("random", "all"):
            sequences += corpus.randomized(seed, count) + fragcorpus.randomized_frag(seed, frag_count, False)
    if family in ("6", "all"):
        if which in ("fixed", "all"):
            sequences += corpus.fixed6()
        if which in ("random", "all"):
            sequences += corpus.randomized6(seed, count) + fragcorpus.randomized_frag(seed, frag_count, True)
    if which in ("fixed", "all"):
        sequences += [s for v6 in (False, True) if family in ("all", "6" if v6 else "4") for s in ftp_lines.fixed(v6)]
    if which in ("random", "all"):
        sequences += ftp_lines.randomized(seed, ftp, family)
    return sequences


def main():
    args = sys.argv[1:]
    only = []
    family = "4"
    frag_count = None
    while "--frag" in args:
        i = args.index("--frag")
        if i + 1 >= len(args) or not args[i + 1].isdigit():
            raise SystemExit("replay.py: --frag needs a count")
        frag_count = int(args[i + 1])
        del args[i:i + 2]
    while "--family" in args:
        i = args.index("--family")
        if i + 1 >= len(args) or args[i + 1] not in ("4", "6", "all"):
            raise SystemExit("replay.py: --family needs 4, 6 or all")
        family = args[i + 1]
        del args[i:i + 2]
    ftp = 0
    while "--ftp" in args:
        i = args.index("--ftp")
        if i + 1 >= len(args) or not args[i + 1].isdigit():
            raise SystemExit("replay.py: --ftp needs a number")
        ftp = int(args[i + 1])
        del args[i:i + 2]
    while "--only" in args:
        i = args.index("--only")
        if i + 1 >= len(args):
            raise SystemExit("replay.py: --only needs a NAME")
        only += [n for n in args[i + 1].split(",") if n]
        del args[i:i + 2]
    if len(args) != 5 or args[0] not in ("kernel", "tunfw", "list") or args[1] not in ("fixed", "random", "all"):
        raise SystemExit(__doc__.split("\n\n")[1])
    mode, which, seed, count, out_path = args
    try:
        seed, count = int(seed), int(count)
        sequences = sequences_for(which, seed, count, only, family, count if frag_count is None else frag_count, ftp)
    except ValueError as e:
        raise SystemExit(f"replay.py: {e}")
    if mode == "list":
        with open(out_path, "w") if out_path != "-" else sys.stdout as out:
            for name, _ in sequences:
                out.write(name + "\n")
        return
    prefix = os.environ.get("PARITY_PREFIX", "tunfwp")
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    # One CPU: the kernel then handles our packets in the order we send them.
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    if mode == "kernel":
        c = Side(f"{prefix}-client", "pc0", (mac(f"{prefix}-client", "pc0"), mac(f"{prefix}-fw", "pf-lan")))
        s = Side(f"{prefix}-server", "ps0", (mac(f"{prefix}-server", "ps0"), mac(f"{prefix}-fw", "pf-wan")))
    else:
        c = Side(f"{prefix}-client", "tfp-lan", None)
        s = Side(f"{prefix}-server", "tfp-wan", None)
    libc.setns(home, CLONE_NEWNET)
    # One sentinel flow per family the sequences use (a test packet and its
    # sentinel take the same path). Set up: a request and its answer must
    # both arrive.
    versions = sorted({step.build(1)[0] >> 4 for _, steps in sequences for step in steps[:1]} or {4})
    for v in versions:
        c.send(sentinel("c", 65001, v))
        if not await_ids(s, {key(v, 65001)})[1]:
            raise SystemExit(f"IPv{v} sentinel request did not cross the firewall")
        s.send(sentinel("s", 65002, v))
        if not await_ids(c, {key(v, 65002)})[1]:
            raise SystemExit(f"IPv{v} sentinel answer did not cross the firewall")
    # An exchange within the 2 s unreplied timeout keeps it alive; one more
    # after 2 s makes it a UDP stream (120 s timeout in both), so it outlives
    # the sequences that wait for a UDP timeout.
    for pause, (a, b) in ((1.5, (65003, 65004)), (1.0, (65005, 65006))):
        time.sleep(pause)
        for v in versions:
            c.send(sentinel("c", a, v))
            s.send(sentinel("s", b, v))
            if not (await_ids(s, {key(v, a)})[1] and await_ids(c, {key(v, b)})[1]):
                raise SystemExit(f"IPv{v} sentinel flow did not become a stream")

    ip_id = 1
    datagram = 0  # the last datagram number given (1..32000)
    ident = 0x40000000  # the last IPv6 fragment identification given
    with open(out_path, "w") if out_path != "-" else sys.stdout as out:
        for name, steps in sequences:
            arrivals, sizes = [], []
            numbers = {}  # datagram -> (its number, its IPv6 identification)
            for step in steps:
                if step.wait:
                    time.sleep(step.wait)
                sender, receiver = (c, s) if step.side == "c" else (s, c)
                ip_id = ip_id % 32000 + 1
                mark = ip_id + 32000
                receiver.drain()
                if isinstance(step, fragcorpus.FragStep):
                    if step.dgram not in numbers:
                        datagram = datagram % 32000 + 1
                        ident += 1
                        numbers[step.dgram] = (datagram, ident)
                    number = numbers[step.dgram][0]
                    packet = step.build(*numbers[step.dgram])
                else:
                    number = ip_id
                    packet = step.build(ip_id)
                v = packet[0] >> 4
                sender.send(packet)
                # Both firewalls handle a side's packets of one family in
                # order: once the sentinel sent after the test packet
                # arrived, its fate is known (a fragment that completes a
                # datagram: every piece of it).
                sender.send(sentinel(step.side, mark, v))
                seen, ok = await_ids(receiver, {key(v, mark)})
                if not ok:
                    raise SystemExit(f"{mode}: {name}: sentinel lost; the sentinel flow expired or the firewall stalled")
                if mode == "tunfw":
                    turn_barrier()
                    seen += receiver.drain()
                got = [str(n) for k, n in seen if k == key(v, number)]
                arrivals.append("1" if got else "0")
                sizes.append("+".join(got) or "-")
            out.write(f"{name}\t{''.join(arrivals)}\t{','.join(sizes)}\n")
            out.flush()


if __name__ == "__main__":
    main()
