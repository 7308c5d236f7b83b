#!/usr/bin/env python3
"""Replay packet sequences between a client and a server namespace through a
firewall (Linux or tunfw) and record which packets reach the far side.

usage: replay.py MODE CORPUS SEED COUNT OUT [--only NAME]...
  MODE    kernel | tunfw   (how the namespaces are wired, see parity.sh)
          list             (write the selected sequences' names to OUT and
                            exit; needs no namespace)
  CORPUS  fixed | random | all
  SEED    seed of the random sequences (printed, so a DIFF can be replayed)
  COUNT   number of random sequences
  OUT     file to write: one line per sequence, "name<TAB>arrivals", where
          arrivals has one character per packet: 1 arrived, 0 did not
          ("-" for standard output)
  --only NAME  replay only the named sequence(s) instead of CORPUS/COUNT: a
          fixed-corpus name or random_SEED_INDEX (of this SEED); repeatable,
          or several names separated by commas. A random sequence depends only
          on its seed and index (see corpus.py), so it replays alone exactly.

Crafted flows use addresses that neither endpoint owns (10.202.1.50 and up on
the client side, 10.202.2.50 and up on the server side), so the endpoints'
own stacks drop them silently and never answer with RSTs or ICMP errors.
Packets are sent and sniffed with AF_PACKET on the endpoint interfaces.
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

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
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
        self.tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
        self.tx.bind((ifname, ETH_P_IP))
        self.rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.rx.bind((ifname, ETH_P_ALL))
        self.rx.setblocking(False)
        self.hdr = 14 if l2 else 0

    def send(self, ip_packet):
        if self.l2:
            src, dst = self.l2
            frame = dst + src + struct.pack("!H", ETH_P_IP) + ip_packet
        else:
            frame = ip_packet
        self.tx.send(frame)

    def drain(self):
        """IP IDs of everything that arrived (inbound only)."""
        ids = set()
        while True:
            try:
                data, addr = self.rx.recvfrom(70000)
            except BlockingIOError:
                return ids
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            ip = data[self.hdr:]
            if len(ip) >= 20 and ip[0] >> 4 == 4:
                ids.add(struct.unpack("!H", ip[4:6])[0])


def mac(ns, ifname):
    out = subprocess.run(["ip", "-n", ns, "-j", "link", "show", ifname], capture_output=True, text=True, check=True)
    return bytes.fromhex(json.loads(out.stdout)[0]["address"].replace(":", ""))


SENTINEL_C, SENTINEL_S, SENTINEL_PORT = "10.202.1.60", "10.202.2.60", 7


def sentinel(side, ip_id):
    """A datagram on a UDP flow set up at the start, which both firewalls
    forward in either direction (ESTABLISHED)."""
    src, dst = (SENTINEL_C, SENTINEL_S) if side == "c" else (SENTINEL_S, SENTINEL_C)
    return corpus.ip(src, dst, 17, corpus.udp_dgram(src, dst, SENTINEL_PORT, SENTINEL_PORT, b"sentinel"), ip_id)


def await_ids(receiver, wanted, timeout=3.0):
    """IDs seen until every id in `wanted` arrived (or the timeout)."""
    seen = set()
    deadline = time.time() + timeout
    while not wanted <= seen:
        left = deadline - time.time()
        if left <= 0:
            return seen, False
        select.select([receiver.rx], [], [], min(left, 0.05))
        seen |= receiver.drain()
    return seen, True


def sequences_for(which, seed, count, only):
    if only:
        return corpus.select(seed, only)
    sequences = []
    if which in ("fixed", "all"):
        sequences += corpus.fixed()
    if which in ("random", "all"):
        sequences += corpus.randomized(seed, count)
    return sequences


def main():
    args = sys.argv[1:]
    only = []
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
        sequences = sequences_for(which, seed, count, only)
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
    # Set up the sentinel flow: a request and its answer must both arrive.
    c.send(sentinel("c", 65001))
    if not await_ids(s, {65001})[1]:
        raise SystemExit("sentinel request did not cross the firewall")
    s.send(sentinel("s", 65002))
    if not await_ids(c, {65002})[1]:
        raise SystemExit("sentinel answer did not cross the firewall")
    # An exchange within the 2 s unreplied timeout keeps it alive; one more
    # after 2 s makes it a UDP stream (120 s timeout in both), so it outlives
    # the sequences that wait for a UDP timeout.
    for pause, (a, b) in ((1.5, (65003, 65004)), (1.0, (65005, 65006))):
        time.sleep(pause)
        c.send(sentinel("c", a))
        s.send(sentinel("s", b))
        if not (await_ids(s, {a})[1] and await_ids(c, {b})[1]):
            raise SystemExit("sentinel flow did not become a stream")

    ip_id = 1
    with open(out_path, "w") if out_path != "-" else sys.stdout as out:
        for name, steps in sequences:
            arrivals = []
            for step in steps:
                if step.wait:
                    time.sleep(step.wait)
                sender, receiver = (c, s) if step.side == "c" else (s, c)
                ip_id = ip_id % 32000 + 1
                mark = ip_id + 32000
                receiver.drain()
                sender.send(step.build(ip_id))
                # Both firewalls handle a side's packets in order: once the
                # sentinel sent after the test packet arrived, its fate is known.
                sender.send(sentinel(step.side, mark))
                seen, ok = await_ids(receiver, {mark})
                if not ok:
                    raise SystemExit(f"{mode}: {name}: sentinel lost; the sentinel flow expired or the firewall stalled")
                arrivals.append("1" if ip_id in seen else "0")
            out.write(f"{name}\t{''.join(arrivals)}\n")
            out.flush()


if __name__ == "__main__":
    main()
