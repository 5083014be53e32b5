#!/usr/bin/env python3
"""A webhook receiver on loopback for the compatibility suites.

Records every POST exactly as it arrived (path, headers, raw body bytes) and answers 200.
The suites read the recordings back and hand the raw bodies and signature headers to the
official SDKs' verifiers.

    python3 webhook_receiver.py --port 0     # prints PORT=<n> first

    POST   /<any path>               recorded; 200 {}
    GET    /_test/deliveries[?path=P] every recording (of path P), oldest first:
                                     [{path, headers: {lower-case name: value}, body_b64}]
    DELETE /_test/deliveries          forget them

Standard library only; binds 127.0.0.1.
"""

import argparse
import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
DELIVERIES: list[dict] = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # noqa: N802 (http.server's name)
        sys.stderr.write("receiver: " + (fmt % args) + "\n")

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        record = {
            "path": urlsplit(self.path).path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_b64": base64.b64encode(body).decode(),
        }
        with LOCK:
            DELIVERIES.append(record)
        self._answer(200, {})

    def do_GET(self):  # noqa: N802
        url = urlsplit(self.path)
        if url.path != "/_test/deliveries":
            self._answer(404, {"error": "not found"})
            return
        want = parse_qs(url.query).get("path", [None])[0]
        with LOCK:
            out = [d for d in DELIVERIES if want is None or d["path"] == want]
        self._answer(200, out)

    def do_DELETE(self):  # noqa: N802
        if urlsplit(self.path).path != "/_test/deliveries":
            self._answer(404, {"error": "not found"})
            return
        with LOCK:
            DELIVERIES.clear()
        self._answer(200, {})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"PORT={server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
