"""A real SMTP server (aiosmtpd) that stores every message it accepts, for mfad's tests.

Usage: python3 smtp_sink.py OUT_DIR [--starttls CERT KEY] [--smtps CERT KEY]
                                    [--auth USER PASSWORD] [--stall-subject WORD SECONDS]

Listens on 127.0.0.1 on a free port and prints "READY <port>" once it accepts connections.
Each message is written to OUT_DIR/<n>.json as {mail_from, rcpt_tos, peer, tls, auth_user,
headers: {to, from, subject, date, message_id, content_type}, body, stalled}, the body decoded.
With --starttls the server requires STARTTLS before MAIL; with --smtps it speaks TLS from
the first byte; with --auth it requires AUTH (PLAIN or LOGIN) with those credentials.
With --stall-subject, a message whose subject contains WORD is stored at once but answered
only after SECONDS.
"""

import argparse
import asyncio
import email
import email.policy
import json
import logging
import os
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Store:
    def __init__(self, out_dir, stall_word, stall_secs):
        self.out_dir = out_dir
        self.count = 0
        self.stall_word = stall_word
        self.stall_secs = stall_secs

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content,
                                       policy=email.policy.default)
        subject = str(msg.get("Subject", ""))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "peer": list(session.peer) if session.peer else None,
            "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
            "auth_user": session.auth_data.decode() if isinstance(session.auth_data, bytes) else None,
            "headers": {
                "to": str(msg.get("To", "")),
                "from": str(msg.get("From", "")),
                "subject": subject,
                "date": str(msg.get("Date", "")),
                "message_id": str(msg.get("Message-ID", "")),
                "content_type": msg.get_content_type(),
            },
            "body": msg.get_content(),
        }
        stall = bool(self.stall_word and self.stall_word in subject)
        record["stalled"] = stall
        self.count += 1
        path = os.path.join(self.out_dir, f"{self.count:04}.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.replace(path + ".tmp", path)
        if stall:
            # Recorded (so tests see the connection it came on), answered late.
            await asyncio.sleep(self.stall_secs)
        return "250 OK stored"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        if (isinstance(auth_data, LoginPassword)
                and auth_data.login == user.encode()
                and auth_data.password == password.encode()):
            return AuthResult(success=True, auth_data=auth_data.login)
        return AuthResult(success=False, handled=False)
    return check


def tls_context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("out_dir")
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--smtps", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth", nargs=2, metavar=("USER", "PASSWORD"))
    p.add_argument("--stall-subject", nargs=2, metavar=("WORD", "SECONDS"))
    a = p.parse_args()

    stall_word, stall_secs = (a.stall_subject[0], float(a.stall_subject[1])) if a.stall_subject else (None, 0)
    handler = Store(a.out_dir, stall_word, stall_secs)
    kwargs = {}
    if a.starttls:
        kwargs.update(tls_context=tls_context(*a.starttls), require_starttls=True)
    if a.auth:
        # With --starttls, AUTH only after STARTTLS; SMTPS is encrypted from the start, and
        # plain AUTH is allowed so tests can show the client's own refusal.
        kwargs.update(authenticator=authenticator(*a.auth), auth_required=True,
                      auth_require_tls=bool(a.starttls))
    server_ssl = tls_context(*a.smtps) if a.smtps else None
    # aiosmtpd warns about AUTH without STARTTLS even when the socket is SMTPS.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.test", loop=loop, **kwargs),
        host="127.0.0.1", port=0, ssl=server_ssl)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    # Stop when the test closes our stdin (or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
