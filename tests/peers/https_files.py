#!/usr/bin/env python3
"""Serves a directory over HTTPS: the web server of a domain that publishes its OpenPGP key
only by WKD (the federation tests). With --delay it answers every request that many seconds
late (a slow partner); everything else is Python's own http.server.

    https_files.py --listen 198.18.0.15:443 --cert c.pem --key k.pem --root DIR [--delay S]
"""

import argparse
import functools
import http.server
import ssl
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True, help="address:port")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--delay", type=float, default=0.0)
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if args.delay:
                sys.stderr.write("GET %s: answering in %s s\n" % (self.path, args.delay))
                sys.stderr.flush()
                time.sleep(args.delay)
            super().do_GET()

        def log_message(self, fmt: str, *a: object) -> None:
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % a))
            sys.stderr.flush()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    handler = functools.partial(Handler, directory=args.root)
    server = http.server.ThreadingHTTPServer((host, int(port)), handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    sys.stderr.write("serving %s on %s\n" % (args.root, args.listen))
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
