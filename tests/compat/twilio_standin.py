#!/usr/bin/env python3
"""A local stand-in for Twilio's Programmable Messaging "create message" API.

It accepts what Twilio's REST API accepts for sending an SMS and answers the
way Twilio does, so that mfad's real Twilio provider can be exercised without
leaving the machine:

    POST /2010-04-01/Accounts/{AccountSid}/Messages.json
        Content-Type: application/x-www-form-urlencoded
        Authorization: Basic base64(AccountSid:AuthToken)
        To=+14155552671&From=+15005550006&Body=...

    -> 201 {"sid": "SM<32 hex>", "status": "queued", "to": ..., "from": ..., "body": ..., ...}

Errors use Twilio's error shape {"code", "message", "more_info", "status"}:
    401 / 20003  wrong or missing credentials (or credentials for another account)
    400 / 21604  'To' missing          400 / 21211  'To' not a valid phone number
    400 / 21603  'From' missing        400 / 21602  'Body' missing
    404 / 20404  unknown resource      405 / 20004  method not allowed

Test-only endpoints (not part of Twilio):
    GET    /_test/messages   accepted messages, oldest first (JSON list of the 201 bodies)
    DELETE /_test/messages   forget them (204)
    GET    /_test/requests   every request seen on the Twilio path, accepted or not,
                             with method, path, status answered and parsed form (for diagnostics)
    GET    /_test/health     200

Usage:
    python3 twilio_standin.py --port 0 --sid AC... --token ...
prints "PORT=<n>" as its first stdout line (flushed) once it is listening.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import json
import re
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
MAX_BODY = 64 * 1024


def twilio_error(code: int, message: str, status: int) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class State:
    def __init__(self, sid: str, token: str) -> None:
        self.sid = sid
        self.token = token
        self.lock = threading.Lock()
        self.messages: list[dict] = []
        self.requests: list[dict] = []


class Handler(BaseHTTPRequestHandler):
    server_version = "TwilioStandin/1.0"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    @property
    def state(self) -> State:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        sys.stderr.write("twilio-standin: %s - %s\n" % (self.address_string(), format % args))

    # ---- helpers ---------------------------------------------------------

    def _send_json(self, status: int, payload, extra_headers: dict | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _send_empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            n = int(length)
        except ValueError:
            return b""
        if n < 0 or n > MAX_BODY:
            return b""
        return self.rfile.read(n)

    def _credentials_ok(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        return hmac.compare_digest(user.encode(), self.state.sid.encode()) and hmac.compare_digest(
            password.encode(), self.state.token.encode()
        )

    def _record_request(self, status: int, form: dict | None) -> None:
        with self.state.lock:
            self.state.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "content_type": self.headers.get("Content-Type"),
                    "authorization_scheme": self.headers.get("Authorization", "").partition(" ")[0] or None,
                    "status": status,
                    "form": form,
                }
            )

    # ---- test endpoints --------------------------------------------------

    def _test_endpoint(self) -> bool:
        path = urlsplit(self.path).path
        if path == "/_test/messages":
            if self.command == "GET":
                with self.state.lock:
                    msgs = list(self.state.messages)
                self._send_json(200, msgs)
            elif self.command == "DELETE":
                with self.state.lock:
                    self.state.messages.clear()
                    self.state.requests.clear()
                self._send_empty(204)
            else:
                self._send_json(405, {"error": "method not allowed"})
            return True
        if path == "/_test/requests" and self.command == "GET":
            with self.state.lock:
                reqs = list(self.state.requests)
            self._send_json(200, reqs)
            return True
        if path == "/_test/health" and self.command == "GET":
            self._send_json(200, {"ok": True})
            return True
        return False

    # ---- Twilio API ------------------------------------------------------

    def _twilio(self) -> None:
        path = urlsplit(self.path).path
        m = MESSAGES_PATH.match(path)
        body = self._read_body()
        if not m:
            self._record_request(404, None)
            self._send_json(404, twilio_error(20404, f"The requested resource {path} was not found", 404))
            return
        # Twilio authenticates before anything else, and the Basic-auth user must
        # be the account in the path.
        if not self._credentials_ok() or m.group("sid") != self.state.sid:
            self._record_request(401, None)
            self._send_json(
                401,
                twilio_error(20003, "Authenticate", 401),
                {"WWW-Authenticate": 'Basic realm="Twilio API"'},
            )
            return
        if self.command != "POST":
            self._record_request(405, None)
            self._send_json(405, twilio_error(20004, "Method not allowed", 405))
            return

        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        form: dict[str, str] = {}
        if ctype == "application/x-www-form-urlencoded":
            try:
                parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
            except UnicodeDecodeError:
                parsed = {}
            form = {k: v[0] for k, v in parsed.items()}
        # Twilio ignores a JSON body: parameters must be form-encoded, so anything
        # else arrives as "no parameters" and fails the 'To' check below.

        to = form.get("To", "")
        from_ = form.get("From", "")
        service = form.get("MessagingServiceSid", "")
        text = form.get("Body", "")
        error = None
        if not to:
            error = twilio_error(21604, "A 'To' phone number is required.", 400)
        elif not E164.match(to):
            error = twilio_error(21211, f"Invalid 'To' Phone Number: {to}", 400)
        elif not from_ and not service:
            error = twilio_error(21603, "A 'From' phone number is required.", 400)
        elif not text and "MediaUrl" not in form:
            error = twilio_error(21602, "Message body is required.", 400)
        if error is not None:
            self._record_request(400, form)
            self._send_json(400, error)
            return

        sid = "SM" + secrets.token_hex(16)
        now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())  # Twilio's RFC 2822 form
        acct = self.state.sid
        msg = {
            "account_sid": acct,
            "api_version": "2010-04-01",
            "body": text,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_ or None,
            "messaging_service_sid": service or None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{acct}/Messages/{sid}/Media.json"},
            "to": to,
            "uri": f"/2010-04-01/Accounts/{acct}/Messages/{sid}.json",
        }
        with self.state.lock:
            self.state.messages.append(msg)
        self._record_request(201, form)
        self._send_json(201, msg)

    def _dispatch(self) -> None:
        if self._test_endpoint():
            return
        self._twilio()

    do_GET = _dispatch
    do_POST = _dispatch
    do_DELETE = _dispatch
    do_PUT = _dispatch
    do_PATCH = _dispatch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port (printed as PORT=<n>)")
    ap.add_argument("--sid", required=True, help="the Account SID that is accepted (AC + 32 hex)")
    ap.add_argument("--token", required=True, help="the Auth Token that is accepted")
    args = ap.parse_args(argv)

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.state = State(args.sid, args.token)  # type: ignore[attr-defined]
    print(f"PORT={server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
