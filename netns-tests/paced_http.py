#!/usr/bin/env python3
"""An HTTP server that sends each file at a pace: GET /NAME?rate=BYTES sends
the file NAME of DIR at BYTES a second, in 16 KiB pieces on a clock, so
that a download lasts its size over its rate whatever the client's buffers.

    paced_http.py ADDR PORT DIR

curl's --limit-rate paces only curl's reads: with Linux's 32 MiB TCP
receive buffers the server is done at once and the flow past ESTABLISHED,
and curl 7.88 reads in bursts (4 MiB "at 1 MB/s" took 0.13 s to 2.8 s).
The checks that need a transfer still running while they look at it use
this server instead.
"""

import http.server
import os
import sys
import time
import urllib.parse

PIECE = 16384


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        try:
            rate = int(query.get("rate", ["1048576"])[0])
            f = open(os.path.join(ROOT, os.path.basename(url.path)), "rb")
        except (ValueError, OSError):
            self.send_error(404)
            return
        with f:
            self.send_response(200)
            self.send_header("Content-Length", str(os.fstat(f.fileno()).st_size))
            self.end_headers()
            t0, sent = time.monotonic(), 0
            while data := f.read(PIECE):
                self.wfile.write(data)
                sent += len(data)
                ahead = sent / max(rate, 1) - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)

    def log_message(self, *args):
        pass


ROOT = sys.argv[3]
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
