"""Shared helpers for the FusionAuth compatibility tests (Python side).

Configured only through the environment (run.sh sets these):
  MFAD_URL                e.g. http://127.0.0.1:18080
  MFAD_API_KEY            an API key of tenant A ("acme")
  MFAD_TENANT_ID          tenant A's id, as `mfad api-key create` prints it
  MFAD_OTHER_TENANT_KEY   an API key of tenant B ("other")
  MFAD_OTHER_TENANT_ID    tenant B's id
  MFAD_JWT_HS256_SECRET   the HS256 secret mfad verifies JWTs with
  TWILIO_STANDIN_URL      the local Twilio stand-in (texted codes are read there)
  SMTP_SINK_URL           the HTTP side of the local SMTP sink (emailed codes are read there)
optional (run.sh sets them; the tests that need them are skipped without):
  JWT_RS256_PRIVATE_KEY_FILE / JWT_RS256_PUBLIC_KEY_FILE
                          an RSA key pair whose public half mfad has in MFAD_JWT_PUBLIC_KEYS_FILE
  MFAD_SHORT_TTL_URL      a second mfad on the same database with MFAD_TWO_FACTOR_LOGIN_TTL_SECS=2
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import time
import urllib.parse
import urllib.request
import uuid

import pyotp
import pytest


def _env(name: str) -> str:
    v = os.environ.get(name)
    if not v:
        raise RuntimeError(f"environment variable {name} must be set (see tests/compat/fusionauth/run.sh)")
    return v


MFAD_URL = _env("MFAD_URL").rstrip("/")
API_KEY = _env("MFAD_API_KEY")
TENANT_ID = _env("MFAD_TENANT_ID")
OTHER_KEY = _env("MFAD_OTHER_TENANT_KEY")
OTHER_TENANT_ID = _env("MFAD_OTHER_TENANT_ID")
JWT_SECRET = _env("MFAD_JWT_HS256_SECRET")
TWILIO_URL = _env("TWILIO_STANDIN_URL").rstrip("/")
SMTP_SINK_URL = _env("SMTP_SINK_URL").rstrip("/")
RS256_PRIVATE_KEY_FILE = os.environ.get("JWT_RS256_PRIVATE_KEY_FILE") or None
RS256_PUBLIC_KEY_FILE = os.environ.get("JWT_RS256_PUBLIC_KEY_FILE") or None
SHORT_TTL_URL = (os.environ.get("MFAD_SHORT_TTL_URL") or "").rstrip("/") or None
needs_rs256 = pytest.mark.skipif(not (RS256_PRIVATE_KEY_FILE and RS256_PUBLIC_KEY_FILE), reason="JWT_RS256_*_KEY_FILE not set")
needs_short_ttl = pytest.mark.skipif(SHORT_TTL_URL is None, reason="MFAD_SHORT_TTL_URL not set")

# FusionAuth shapes (reference §0, §3.2, §4)
SECRET_B64 = re.compile(r"^[A-Za-z0-9+/]{20}$")
SECRET_B32 = re.compile(r"^[A-Z2-7]{24}$")
TWO_FACTOR_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")
METHOD_ID = re.compile(r"^[A-Z0-9]{4}$")
RECOVERY_CODE = re.compile(r"^[A-Z0-9]{5}-[A-Z0-9]{5}$")
SIX_DIGITS = re.compile(r"(?<!\d)\d{6}(?!\d)")


# ---------------------------------------------------------------- ids, phones, addresses


def new_user_id() -> str:
    return str(uuid.uuid4())


def tenant_uuid(tenant_id: str) -> str:
    """mfad's `tenant_<ULID>` id as the UUID of the same 128 bits (a ULID is 26 Crockford
    base32 characters = 130 bits, the top 2 zero). A UUID passes through unchanged."""
    if not tenant_id.startswith("tenant_"):
        return tenant_id
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    n = 0
    for ch in tenant_id[len("tenant_"):].upper():
        n = n * 32 + alphabet.index(ch)
    return str(uuid.UUID(int=n))


def new_phone() -> str:
    """A valid, unique-per-test US number in E.164 (+1 415 555 xxxx)."""
    return f"+1415555{secrets.randbelow(10_000):04d}"


def new_email() -> str:
    return f"u-{secrets.token_hex(6)}@example.com"


# ---------------------------------------------------------------- secrets and TOTP


def b32_of_secret(secret_b64: str) -> str:
    """What FusionAuth puts in secretBase32Encoded: base32 (no padding) of the decoded bytes."""
    return base64.b32encode(base64.b64decode(secret_b64)).decode().rstrip("=")


def fusionauth_style_secret() -> tuple[str, str]:
    """A secret made the way FusionAuth makes one (reference §4): base64 of 20 random bytes,
    characters 1..21 -> 20 base64 chars = 15 bytes."""
    s = base64.b64encode(secrets.token_bytes(20)).decode()[1:21]
    return s, b32_of_secret(s)


class Authenticator:
    """An authenticator app for one secret. mfad never accepts a TOTP step twice for a
    method, so every code handed out is for a step later than the last one used, waiting
    for the clock when the ±1 window does not reach that far yet."""

    def __init__(self, secret_b32: str) -> None:
        self.b32 = secret_b32
        self.totp = pyotp.TOTP(secret_b32)  # SHA1, 6 digits, 30 s
        self.last_step: int | None = None

    def code(self) -> str:
        now = time.time()
        cur = int(now // 30)
        step = cur if self.last_step is None else max(self.last_step + 1, cur)
        if step > cur + 1:
            # wait until `step` is at most one step ahead of the server's clock
            time.sleep((step - 1) * 30 - now + 0.3)
            cur = int(time.time() // 30)
        self.last_step = step
        return self.totp.at(step * 30)

    def wrong_code(self) -> str:
        near = {self.totp.at(time.time() + k * 30) for k in range(-3, 4)}
        while True:
            c = f"{secrets.randbelow(1_000_000):06d}"
            if c not in near:
                return c


def other_code(code: str) -> str:
    """A 6-digit code that differs from `code`."""
    return f"{(int(code) + 137_911) % 1_000_000:06d}"


# ---------------------------------------------------------------- sinks


def _get_json(url: str):
    req = urllib.request.Request(url, method="GET")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read().decode())


def texts_to(phone: str) -> list[dict]:
    return [m for m in _get_json(f"{TWILIO_URL}/_test/messages") if m.get("to") == phone]


def mails_to(addr: str) -> list[dict]:
    return [m for m in _get_json(f"{SMTP_SINK_URL}/_test/messages") if addr in m.get("rcpt_tos", [])]


def _wait(fetch, before: int, what: str, timeout: float = 10.0) -> list[dict]:
    deadline = time.time() + timeout
    while True:
        got = fetch()
        if len(got) > before:
            return got
        if time.time() > deadline:
            raise AssertionError(f"no new {what} arrived within {timeout} s (had {before})")
        time.sleep(0.05)


def only_code(text: str) -> str:
    codes = SIX_DIGITS.findall(text)
    assert len(codes) >= 1, f"no 6-digit code in {text!r}"
    assert len(set(codes)) == 1, f"more than one distinct 6-digit code in {text!r}"
    return codes[0]


class Inbox:
    """Marks the current message count for a phone or address; `code()` waits for the next
    message after the mark and returns the one 6-digit code in it."""

    def __init__(self, kind: str, to: str) -> None:
        self.kind = kind
        self.to = to
        self.before = len(self._fetch())

    def _fetch(self) -> list[dict]:
        return texts_to(self.to) if self.kind == "sms" else mails_to(self.to)

    def message(self, timeout: float = 10.0) -> dict:
        msgs = _wait(self._fetch, self.before, f"{self.kind} to {self.to}", timeout)
        assert len(msgs) == self.before + 1, f"expected one new {self.kind} to {self.to}, got {len(msgs) - self.before}"
        self.before = len(msgs)
        return msgs[-1]

    def code(self, timeout: float = 10.0) -> str:
        m = self.message(timeout)
        return only_code(m["body"] if self.kind == "sms" else (m["subject"] + "\n" + m["text"]))

    def nothing_new(self, wait: float = 0.5) -> None:
        time.sleep(wait)
        n = len(self._fetch())
        assert n == self.before, f"unexpected {self.kind} to {self.to}"


# ---------------------------------------------------------------- JWTs


def _b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def make_jwt(claims: dict, *, key: bytes | None = None, alg: str = "HS256", header: dict | None = None,
             signature: bytes | None = None) -> str:
    """A compact JWS. Hand-rolled so tests can also forge what JWT libraries refuse to make
    (alg none, an HS256 signature under an RS256 header, ...)."""
    hdr = {"alg": alg, "typ": "JWT"}
    if header:
        hdr.update(header)
    signing_input = _b64u(json.dumps(hdr, separators=(",", ":")).encode()) + "." + _b64u(
        json.dumps(claims, separators=(",", ":")).encode()
    )
    if signature is None:
        if alg == "none":
            signature = b""
        else:
            k = JWT_SECRET.encode() if key is None else key
            digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}.get(alg, hashlib.sha256)
            signature = hmac.new(k, signing_input.encode(), digest).digest()
    return signing_input + "." + _b64u(signature)


def claims_for(user_id: str, *, ttl: int = 600, tenant_id: str | None = TENANT_ID, **extra) -> dict:
    now = int(time.time())
    c = {"sub": user_id, "iat": now, "exp": now + ttl}
    if tenant_id is not None:
        c["tid"] = tenant_id  # FusionAuth access tokens carry the tenant as `tid`
    c.update(extra)
    return c


def valid_jwt(user_id: str, **kw) -> str:
    return make_jwt(claims_for(user_id, **kw))


def rs256_jwt(claims: dict, private_pem: bytes | None = None) -> str:
    """A genuine RS256 token: under `private_pem`, or under a fresh key mfad does not know."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    if private_pem is None:
        priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        priv = serialization.load_pem_private_key(private_pem, password=None)
    hdr = _b64u(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64u(json.dumps(claims, separators=(",", ":")).encode())
    sig = priv.sign(f"{hdr}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{hdr}.{body}.{_b64u(sig)}"


def trusted_rs256_jwt(user_id: str, **kw) -> str:
    """An RS256 token signed by the key pair whose public half mfad is configured with."""
    with open(RS256_PRIVATE_KEY_FILE, "rb") as f:
        return rs256_jwt(claims_for(user_id, **kw), f.read())


def rs_confusion_jwts(user_id: str) -> dict[str, str]:
    """The classic HS/RS confusion: HMAC tokens keyed with mfad's own RSA public key PEM."""
    with open(RS256_PUBLIC_KEY_FILE, "rb") as f:
        pem = f.read()
    good = claims_for(user_id)
    unsigned_rs = make_jwt(good, alg="RS256", signature=b"").rsplit(".", 1)[0]
    return {
        "hs256_keyed_with_rs_public_pem": make_jwt(good, alg="HS256", key=pem),
        "hs256_keyed_with_rs_public_pem_stripped": make_jwt(good, alg="HS256", key=pem.strip()),
        "rs256_header_hmac_with_rs_public_pem": make_jwt(
            good, alg="RS256", signature=hmac.new(pem, unsigned_rs.encode(), hashlib.sha256).digest()
        ),
    }


def forged_jwts(user_id: str) -> dict[str, str]:
    """Tokens that must each be refused (401)."""
    good = claims_for(user_id)
    now = int(time.time())
    hs = make_jwt(good)
    head, body, _sig = hs.split(".")
    return {
        "expired": make_jwt(claims_for(user_id, ttl=-3600, iat=now - 7200)),
        "not_yet_valid": make_jwt(dict(good, nbf=now + 3600)),
        "wrong_secret": make_jwt(good, key=b"not-the-secret-" + secrets.token_bytes(16)),
        "tampered_payload": head + "." + _b64u(json.dumps(claims_for(new_user_id())).encode()) + "." + _sig,
        "alg_none": make_jwt(good, alg="none"),
        "alg_none_with_sig": make_jwt(good, alg="none", signature=b"x" * 32),
        "alg_None_caps": make_jwt(good, alg="None"),
        # HS/RS confusion: an RS256 header over an HMAC-with-the-secret signature, and a real
        # RS256 signature by a key the server does not know.
        "rs256_header_hmac_signature": make_jwt(
            good, alg="RS256",
            signature=hmac.new(JWT_SECRET.encode(), make_jwt(good, alg="RS256", signature=b"").rsplit(".", 1)[0].encode(), hashlib.sha256).digest(),
        ),
        "rs256_unknown_key": rs256_jwt(good),
        # the right secret under another HMAC algorithm: the algorithm is pinned to HS256
        "hs512_same_secret": make_jwt(good, alg="HS512"),
        "no_exp": make_jwt({"sub": user_id, "iat": now, "tid": TENANT_ID}),
        "garbage": "not.a.jwt",
    }


# ---------------------------------------------------------------- raw HTTP for checks the clients hide


def raw(method: str, path: str, *, headers: list[tuple[str, str]] | None = None, body: bytes | None = None):
    """One HTTP request with exactly the given headers (repeats allowed). Returns
    (status, headers as list of (name, value), body bytes)."""
    import http.client

    u = urllib.parse.urlsplit(MFAD_URL)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in headers or []:
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        elif method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", "0")
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.getheaders(), data
    finally:
        conn.close()


def header(hs: list[tuple[str, str]], name: str) -> str | None:
    for k, v in hs:
        if k.lower() == name.lower():
            return v
    return None


@pytest.fixture(scope="session")
def tenant_id() -> str:
    return TENANT_ID
