#!/usr/bin/env python3
"""A real SMTP server on loopback that keeps every message it receives, for tests.

The SMTP side is aiosmtpd (a full RFC 5321 server: EHLO, MAIL, RCPT, DATA, RSET,
QUIT, ...), so mfad's SMTP client talks to a genuine server, not a mock function.
No TLS and no AUTH: the tests point mfad at smtp://127.0.0.1:<port>.

Received messages are exposed over a small HTTP side channel:

    GET    /_test/messages   JSON list, oldest first, of
                             {"mail_from", "rcpt_tos": [...], "from", "to", "subject",
                              "text": <decoded text/plain body (or the whole body)>,
                              "raw": <the message as received>, "received_at": <unix s>}
    DELETE /_test/messages   forget them (204)
    GET    /_test/health     200

Usage:
    python3 smtp_sink.py [--host 127.0.0.1] [--smtp-port 0] [--http-port 0]
prints "SMTP_PORT=<n>" and "HTTP_PORT=<n>" (flushed) once both are listening.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from aiosmtpd.smtp import SMTP


class Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[dict] = []

    def add(self, msg: dict) -> None:
        with self.lock:
            self.messages.append(msg)

    def all(self) -> list[dict]:
        with self.lock:
            return list(self.messages)

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()


def _text_of(parsed: email.message.EmailMessage) -> str:
    """The text/plain part if there is one, else the first text part, else the payload."""
    try:
        part = parsed.get_body(preferencelist=("plain", "html"))
    except Exception:  # noqa: BLE001 - malformed structure: fall back below
        part = None
    if part is not None:
        try:
            return part.get_content()
        except Exception:  # noqa: BLE001
            pass
    payload = parsed.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode("utf-8", "replace")
    return str(parsed.get_payload())


class Handler:
    """aiosmtpd handler: accept every message and store it."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        raw_bytes = envelope.original_content or envelope.content or b""
        if isinstance(raw_bytes, str):
            raw_bytes = raw_bytes.encode("utf-8", "replace")
        parsed = email.message_from_bytes(raw_bytes, policy=email.policy.default)
        self.store.add(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "from": str(parsed.get("From", "")),
                "to": str(parsed.get("To", "")),
                "subject": str(parsed.get("Subject", "")),
                "text": _text_of(parsed),
                "raw": raw_bytes.decode("utf-8", "replace"),
                "received_at": time.time(),
            }
        )
        print(f"smtp-sink: message from {envelope.mail_from} to {envelope.rcpt_tos}", file=sys.stderr, flush=True)
        return "250 Message accepted for delivery"


def make_http_handler(store: Store):
    class HTTPHandler(BaseHTTPRequestHandler):
        server_version = "SmtpSink/1.0"
        sys_version = ""
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            sys.stderr.write("smtp-sink-http: %s\n" % (format % args))

        def _json(self, status: int, payload) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _dispatch(self) -> None:
            path = urlsplit(self.path).path
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                self.rfile.read(n)
            if path == "/_test/messages" and self.command == "GET":
                self._json(200, store.all())
            elif path == "/_test/messages" and self.command == "DELETE":
                store.clear()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path == "/_test/health" and self.command == "GET":
                self._json(200, {"ok": True})
            else:
                self._json(404, {"error": "not found"})

        do_GET = _dispatch
        do_DELETE = _dispatch
        do_POST = _dispatch

    return HTTPHandler


class SmtpSink:
    """Both servers, in this process: SMTP on an asyncio loop in a thread, HTTP in another."""

    def __init__(self, host: str = "127.0.0.1", smtp_port: int = 0, http_port: int = 0) -> None:
        self.host = host
        self.store = Store()
        self._loop = asyncio.new_event_loop()
        self._smtp_server = None
        self._ready = threading.Event()
        self._smtp_port_req = smtp_port
        self._http_port_req = http_port
        self.smtp_port = 0
        self.http_port = 0
        self._http = None
        self._threads: list[threading.Thread] = []

    def start(self) -> "SmtpSink":
        def run_loop() -> None:
            asyncio.set_event_loop(self._loop)

            async def boot() -> None:
                self._smtp_server = await self._loop.create_server(
                    lambda: SMTP(Handler(self.store), hostname="mfad-test-sink", ident="mfad test SMTP sink"),
                    host=self.host,
                    port=self._smtp_port_req,
                )
                self.smtp_port = self._smtp_server.sockets[0].getsockname()[1]
                self._ready.set()

            self._loop.run_until_complete(boot())
            self._loop.run_forever()

        t = threading.Thread(target=run_loop, name="smtp", daemon=True)
        t.start()
        self._threads.append(t)
        if not self._ready.wait(10):
            raise RuntimeError("SMTP server did not start")

        self._http = ThreadingHTTPServer((self.host, self._http_port_req), make_http_handler(self.store))
        self._http.daemon_threads = True
        self.http_port = self._http.server_address[1]
        h = threading.Thread(target=self._http.serve_forever, name="http", daemon=True)
        h.start()
        self._threads.append(h)
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._smtp_server is not None:
            self._loop.call_soon_threadsafe(self._smtp_server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--smtp-port", type=int, default=0)
    ap.add_argument("--http-port", type=int, default=0)
    args = ap.parse_args(argv)
    sink = SmtpSink(args.host, args.smtp_port, args.http_port).start()
    print(f"SMTP_PORT={sink.smtp_port}", flush=True)
    print(f"HTTP_PORT={sink.http_port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
