#!/usr/bin/env python3
"""A scripted FTP control session, typed command by command like nc would.

usage:
  ftp_session.py announce SERVER ADDR PORT DIR
      log in anonymously, send PORT for ADDR:PORT, write the reply line to
      DIR/reply, then keep the control connection open until DIR/done exists.
  ftp_session.py pasv SERVER DIR
      log in, send PASV, write the announced port to DIR/pasv_port, wait for DIR/done.
  ftp_session.py split-retr SERVER CLIENT_IP FILE DIR
      log in, announce a listening port with a PORT command split across two
      TCP segments, RETR FILE over the active data connection, and write the
      sha256 of what arrived to DIR/sha256.
  ftp_session.py super-retr SERVER CLIENT_IP FILE DIR
      log in, then in one write send a NOOP line exactly one MSS long and a
      PORT line behind it (with TUN offloads, one super-packet whose second
      segment starts with PORT), RETR FILE over the active data connection,
      and write the sha256 of what arrived to DIR/sha256.
"""
import hashlib
import os
import re
import socket
import sys
import time

TIMEOUT = 15


def reply(f):
    """Read one (possibly multi-line) FTP reply; return its last line."""
    line = f.readline()
    if not line:
        raise SystemExit("control connection closed")
    if len(line) >= 4 and line[3:4] == "-":
        code = line[:3]
        while not (line.startswith(code + " ")):
            line = f.readline()
            if not line:
                raise SystemExit("control connection closed")
    return line.rstrip("\r\n")


def login(server):
    s = socket.create_connection((server, 21), timeout=TIMEOUT)
    f = s.makefile("r", encoding="latin-1", newline="\r\n")
    reply(f)  # 220
    for cmd in ("USER anonymous", "PASS x@"):
        s.sendall((cmd + "\r\n").encode())
        reply(f)
    s.sendall(b"TYPE I\r\n")
    reply(f)
    return s, f


def wait_done(d):
    deadline = time.time() + 60
    while not os.path.exists(os.path.join(d, "done")) and time.time() < deadline:
        time.sleep(0.05)


def write(d, name, text):
    tmp = os.path.join(d, name + ".tmp")
    with open(tmp, "w") as out:
        out.write(text + "\n")
    os.rename(tmp, os.path.join(d, name))


def port_arg(addr, port):
    return ",".join(addr.split(".") + [str(port >> 8), str(port & 255)])


def announce(server, addr, port, d):
    s, f = login(server)
    s.sendall(f"PORT {port_arg(addr, int(port))}\r\n".encode())
    write(d, "reply", reply(f))
    wait_done(d)
    s.sendall(b"QUIT\r\n")


def pasv(server, d):
    s, f = login(server)
    s.sendall(b"PASV\r\n")
    line = reply(f)
    nums = re.search(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)", line).groups()
    write(d, "pasv_port", str(int(nums[4]) * 256 + int(nums[5])))
    wait_done(d)
    s.sendall(b"QUIT\r\n")


def listen(client_ip):
    listener = socket.socket()
    listener.bind((client_ip, 0))
    listener.listen(1)
    listener.settimeout(TIMEOUT)
    return listener, port_arg(client_ip, listener.getsockname()[1])


def split_retr(server, client_ip, name, d):
    s, f = login(server)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener, arg = listen(client_ip)
    cut = len("PORT ") + arg.index(",") + 2
    line = f"PORT {arg}\r\n".encode()
    s.sendall(line[:cut])  # first segment: a partial command
    time.sleep(0.3)
    s.sendall(line[cut:])  # the rest of the line
    code = reply(f)
    if not code.startswith("200"):
        raise SystemExit(f"PORT refused: {code}")
    retr(s, f, listener, name, d)


def super_retr(server, client_ip, name, d):
    s, f = login(server)
    listener, arg = listen(client_ip)
    mss = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    noop = b"NOOP" + b" " * (mss - 6) + b"\r\n"
    s.sendall(noop + f"PORT {arg}\r\n".encode())
    reply(f)  # 200 NOOP
    code = reply(f)
    if not code.startswith("200"):
        raise SystemExit(f"PORT refused: {code}")
    retr(s, f, listener, name, d)


def retr(s, f, listener, name, d):
    s.sendall(f"RETR {name}\r\n".encode())
    reply(f)  # 150
    conn, _ = listener.accept()
    h = hashlib.sha256()
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        h.update(chunk)
    reply(f)  # 226
    write(d, "sha256", h.hexdigest())
    s.sendall(b"QUIT\r\n")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "announce":
        announce(*sys.argv[2:6])
    elif cmd == "pasv":
        pasv(*sys.argv[2:4])
    elif cmd == "split-retr":
        split_retr(*sys.argv[2:6])
    elif cmd == "super-retr":
        super_retr(*sys.argv[2:6])
    else:
        raise SystemExit(__doc__)
