"""Client-compatibility tests: the official WorkOS Python SDK (workos==10.6.0, unmodified)
driven as a black box against a running mfad server.

Configured only through the environment (tests/compat/run.sh sets these):
  MFAD_URL               e.g. http://127.0.0.1:18080
  MFAD_API_KEY           a valid sk_... key of tenant A
  MFAD_OTHER_TENANT_KEY  a valid sk_... key of tenant B
  TWILIO_STANDIN_URL     the local Twilio stand-in (to read texted codes)

Run: pytest -q test_workos_python.py
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import secrets
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import timedelta
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

import httpx2
import pyotp
import pytest
import zxingcpp
from PIL import Image

from workos import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    RateLimitExceededError,
    UnprocessableEntityError,
    WorkOSClient,
)
from workos._errors import RateLimitExceededError
from workos.common.models import (
    AuthenticationChallenge,
    AuthenticationFactor,
    AuthenticationFactorEnrolled,
    ListMetadata,
)
from workos.events.models import EventSchema
from workos.multi_factor_auth.models import (
    AuthenticationChallengeVerifyResponse,
    UserAuthenticationFactorEnrollResponse,
)


def _env(name: str) -> str:
    v = os.environ.get(name)
    if not v:
        raise RuntimeError(f"environment variable {name} must be set (see tests/compat/run.sh)")
    return v


MFAD_URL = _env("MFAD_URL").rstrip("/")
API_KEY = _env("MFAD_API_KEY")
OTHER_KEY = _env("MFAD_OTHER_TENANT_KEY")
TWILIO_URL = _env("TWILIO_STANDIN_URL").rstrip("/")
TWILIO_FROM = os.environ.get("MFAD_TWILIO_FROM") or "+15005550006"

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
FACTOR_ID = re.compile(r"^auth_factor_[0-9A-HJKMNP-TV-Z]{26}$")
CHALLENGE_ID = re.compile(r"^auth_challenge_[0-9A-HJKMNP-TV-Z]{26}$")
BASE32_SECRET = re.compile(r"^[A-Z2-7]{32}$")


# ---------------------------------------------------------------- every response through the SDK's models
#
# The SDK's `from_dict` models raise on a missing required key, and its `to_dict` writes
# back only the keys the model declares. Every successful response mfad gives, to the SDK
# clients below and to `raw()`, is built through its model and must round-trip: a missing
# key fails, and so does a key the model does not know (a leaked secret, a misspelling).


def _without_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _without_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_without_nulls(x) for x in v]
    return v


def _round_trip(model: Any, data: Any, what: str) -> None:
    built = model.from_dict(data)
    assert _without_nulls(built.to_dict()) == _without_nulls(data), f"{what} through {model.__name__}"


def _list_envelope(data: Any, what: str) -> None:
    # `object`, `data` and `list_metadata{before, after}` are required (nullable cursors).
    assert set(data) == {"object", "data", "list_metadata"} and data["object"] == "list", what
    assert set(data["list_metadata"]) == {"before", "after"}, what
    _round_trip(ListMetadata, data["list_metadata"], what)
    for item in data["data"]:
        _round_trip(AuthenticationFactor, item, what)


def _event_list(data: Any, what: str) -> None:
    # The list envelope, and each event through the SDK's event dispatcher: the events
    # WorkOS defines must build as their typed model (every field of `data` present).
    assert set(data) == {"object", "data", "list_metadata"} and data["object"] == "list", what
    _round_trip(ListMetadata, data["list_metadata"], what)
    for item in data["data"]:
        built = EventSchema.from_dict(item)
        typed = item["event"] in ("authentication.mfa_succeeded", "authentication.mfa_failed")
        assert (type(built).__name__ != "EventSchemaUnknown") == typed, f"{what}: {item['event']}"


def _model(model: Any) -> Callable[[Any, str], None]:
    return lambda data, what: _round_trip(model, data, what)


# (method, path, success status) -> how the body is built
RESPONSE_MODELS: list[tuple[str, re.Pattern[str], int, str, Callable[[Any, str], None]]] = [
    ("POST", re.compile(r"/auth/factors/enroll"), 201, "enrolled factor", _model(AuthenticationFactorEnrolled)),
    ("GET", re.compile(r"/auth/factors/[^/]+"), 200, "factor", _model(AuthenticationFactor)),
    ("POST", re.compile(r"/auth/factors/[^/]+/challenge"), 201, "challenge", _model(AuthenticationChallenge)),
    ("POST", re.compile(r"/auth/challenges/[^/]+/verify"), 201, "verify", _model(AuthenticationChallengeVerifyResponse)),
    ("POST", re.compile(r"/user_management/users/[^/]+/auth_factors"), 201, "user factor", _model(UserAuthenticationFactorEnrollResponse)),
    ("GET", re.compile(r"/user_management/users/[^/]+/auth_factors"), 200, "list", _list_envelope),
    ("GET", re.compile(r"/events"), 200, "events", _event_list),
]
BUILT: Counter[str] = Counter()


def build_through_models(method: str, path: str, status: int, text: str) -> None:
    """Builds one response body through the SDK model its route returns."""
    if status >= 300 or path == "/health":
        return
    if method == "DELETE":
        assert status == 204 and text == "", f"DELETE {path}: {status} {text!r}"
        return
    for m, pattern, want, kind, build in RESPONSE_MODELS:
        if m == method and pattern.fullmatch(path):
            assert status == want, f"{method} {path}: status {status}"
            build(json.loads(text), f"{method} {path}")
            BUILT[kind] += 1
            return
    pytest.fail(f"no SDK model for the response of {method} {path}")


def _check_response(response: httpx2.Response) -> None:
    response.read()
    build_through_models(response.request.method, response.url.path, response.status_code, response.text)


def sdk_client(api_key: str) -> WorkOSClient:
    http = httpx2.Client(timeout=60, follow_redirects=True, event_hooks={"response": [_check_response]})
    # default max_retries: the SDK behaves as it does in production use
    return WorkOSClient(api_key=api_key, base_url=MFAD_URL, http_client=http)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def client() -> WorkOSClient:
    return sdk_client(API_KEY)


@pytest.fixture(scope="module")
def other() -> WorkOSClient:
    return sdk_client(OTHER_KEY)


# ---------------------------------------------------------------- helpers


def fake_ulid() -> str:
    return "0" + "".join(secrets.choice(CROCKFORD) for _ in range(25))


def new_user_id() -> str:
    return f"user_{fake_ulid()}"


def random_base32_secret() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode()  # 160 bits, 32 chars, no padding


def totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=6, interval=30)  # SHA-1 is pyotp's default digest


def fresh_code(secret: str, min_remaining: float = 10.0) -> str:
    """A code for the current step, taken early enough that the next few calls share the step."""
    remaining = 30 - (time.time() % 30)
    if remaining < min_remaining:
        time.sleep(remaining + 0.25)
    return totp(secret).now()


def wrong_totp_code(secret: str) -> str:
    t = totp(secret)
    now = time.time()
    near = {t.at(now + k * 30) for k in range(-3, 4)}
    while True:
        c = f"{secrets.randbelow(1_000_000):06d}"
        if c not in near:
            return c


def other_code(code: str, k: int = 1) -> str:
    return f"{(int(code) + k * 137_911) % 1_000_000:06d}"


def decode_qr(data_uri: str) -> str:
    prefix = "data:image/png;base64,"
    assert data_uri.startswith(prefix), data_uri[:40]
    img = Image.open(io.BytesIO(base64.b64decode(data_uri[len(prefix):], validate=True)))
    assert img.format == "PNG"
    results = zxingcpp.read_barcodes(img.convert("L"))
    qrs = [r for r in results if r.format == zxingcpp.BarcodeFormat.QRCode]
    assert len(qrs) == 1, f"expected exactly one QR code in the {img.size} PNG, found {len(qrs)}"
    return qrs[0].text


def assert_otpauth_uri(uri: str, *, secret: str, issuer: str, user: str) -> None:
    assert uri.startswith("otpauth://totp/"), uri
    parts = urlsplit(uri)
    q = parse_qs(parts.query)
    assert q.get("secret") == [secret], uri
    assert q.get("issuer") == [issuer], uri
    for k, want in (("algorithm", "SHA1"), ("digits", "6"), ("period", "30")):
        if k in q:
            assert q[k][0].upper() == want, uri
    label = unquote(uri[len("otpauth://totp/"):].split("?", 1)[0])
    if ":" in label:
        lab_issuer, _, account = label.partition(":")
        assert lab_issuer == issuer, uri
        assert account == user, uri
    else:
        assert label == user, uri
    # the independent authenticator accepts the URI and derives the same secret
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.secret == secret


def raw(method: str, path: str, key: str = API_KEY) -> tuple[int, str, str]:
    """Raw HTTP for wire-level facts the SDK hides (its models drop unknown keys)."""
    req = urllib.request.Request(
        MFAD_URL + path,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as resp:
            status, ctype, text = resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as e:
        status, ctype, text = e.code, e.headers.get("Content-Type", ""), e.read().decode()
    build_through_models(method, urlsplit(path).path, status, text)
    return status, ctype, text


def assert_no_secrets(text: str, what: str) -> None:
    for k in ('"secret"', '"qr_code"', '"uri"'):
        assert k not in text, f"{what} must not contain {k}: {text}"


def _standin(method: str, path: str):
    req = urllib.request.Request(TWILIO_URL + path, method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        body = resp.read().decode()
        return resp.status, (json.loads(body) if body else None)


def twilio_reset() -> None:
    status, _ = _standin("DELETE", "/_test/messages")
    assert status == 204


def wait_for_messages(n: int, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    msgs: list[dict] = []
    while time.monotonic() < deadline:
        _, msgs = _standin("GET", "/_test/messages")
        if len(msgs) >= n:
            return msgs
        time.sleep(0.1)
    _, reqs = _standin("GET", "/_test/requests")
    pytest.fail(f"Twilio stand-in got {len(msgs)} message(s), expected {n}; requests seen: {reqs}")


def assert_ms_timestamp_on_wire(text: str) -> None:
    for m in re.finditer(r'"(created_at|updated_at|expires_at)"\s*:\s*"([^"]*)"', text):
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", m.group(2)), m.group(0)


# ---------------------------------------------------------------- TOTP


def test_totp_enroll_challenge_verify(client: WorkOSClient) -> None:
    mfa = client.multi_factor_auth
    issuer, user = "Acme Corp", f"bob+{secrets.token_hex(4)}@example.com"

    f = mfa.enroll_factor(type="totp", totp_issuer=issuer, totp_user=user)
    assert FACTOR_ID.match(f.id), f.id
    assert f.object == "authentication_factor"
    assert f.type.value == "totp"
    assert f.sms is None
    assert f.totp is not None
    assert f.totp.issuer == issuer and f.totp.user == user
    assert BASE32_SECRET.match(f.totp.secret), f.totp.secret
    assert_otpauth_uri(f.totp.uri, secret=f.totp.secret, issuer=issuer, user=user)
    assert decode_qr(f.totp.qr_code) == f.totp.uri, "QR payload must equal uri exactly"

    ch = mfa.challenge_factor(f.id)
    assert CHALLENGE_ID.match(ch.id), ch.id
    assert ch.authentication_factor_id == f.id
    assert ch.code is None, "a TOTP challenge must not carry a code"

    code = fresh_code(f.totp.secret)
    res = mfa.verify_challenge(ch.id, code=code)
    assert res.valid is True
    assert res.challenge.id == ch.id

    with pytest.raises(UnprocessableEntityError) as ei:
        mfa.verify_challenge(ch.id, code=code)
    assert ei.value.status_code == 422
    assert ei.value.code == "authentication_challenge_previously_verified"

    # replay of the accepted code on a new challenge is refused
    ch2 = mfa.challenge_factor(f.id)
    assert mfa.verify_challenge(ch2.id, code=code).valid is False

    # a wrong code is a 201 valid:false, not an error
    ch3 = mfa.challenge_factor(f.id)
    wrong = mfa.verify_challenge(ch3.id, code=wrong_totp_code(f.totp.secret))
    assert wrong.valid is False
    assert wrong.challenge.id == ch3.id

    got = mfa.get_factor(f.id)
    assert got.id == f.id and got.type.value == "totp"
    assert got.created_at == f.created_at
    assert got.totp is not None and (got.totp.issuer, got.totp.user) == (issuer, user)
    status, ctype, text = raw("GET", f"/auth/factors/{f.id}")
    assert status == 200 and "application/json" in ctype
    assert_no_secrets(text, "GET /auth/factors/{id}")
    assert_ms_timestamp_on_wire(text)


# ---------------------------------------------------------------- SMS


def test_sms_enroll_challenge_verify(client: WorkOSClient) -> None:
    mfa = client.multi_factor_auth
    twilio_reset()
    f = mfa.enroll_factor(type="sms", phone_number="+1 415 555 2672")
    assert FACTOR_ID.match(f.id)
    assert f.type.value == "sms"
    assert f.sms is not None and f.sms.phone_number == "+14155552672"
    assert f.totp is None

    ch = mfa.challenge_factor(f.id, sms_template="Your code is {{code}}")
    assert ch.authentication_factor_id == f.id
    assert ch.code is None, "an SMS challenge must not return the code"
    assert ch.expires_at is not None
    assert abs((ch.expires_at - ch.created_at) - timedelta(minutes=10)) <= timedelta(seconds=2)

    msgs = wait_for_messages(1)
    assert len(msgs) == 1, msgs
    msg = msgs[0]
    assert msg["to"] == "+14155552672"
    assert msg["from"] == TWILIO_FROM
    m = re.fullmatch(r"Your code is (\d{6})", msg["body"])
    assert m, f"SMS body must follow the template: {msg['body']!r}"

    res = mfa.verify_challenge(ch.id, code=m.group(1))
    assert res.valid is True and res.challenge.id == ch.id

    got = mfa.get_factor(f.id)
    assert got.sms is not None and got.sms.phone_number == "+14155552672"
    status, _, text = raw("GET", f"/auth/factors/{f.id}")
    assert status == 200
    assert_no_secrets(text, "GET sms factor")
    assert json.loads(text)["sms"] == {"phone_number": "+14155552672"}


def test_sms_default_message_contains_code(client: WorkOSClient) -> None:
    mfa = client.multi_factor_auth
    f = mfa.enroll_factor(type="sms", phone_number="+1 (415) 555-2673")
    assert f.sms is not None and f.sms.phone_number == "+14155552673"
    twilio_reset()
    ch = mfa.challenge_factor(f.id)  # no template: the server's default text
    msgs = wait_for_messages(1)
    assert len(msgs) == 1 and msgs[0]["to"] == "+14155552673"
    codes = re.findall(r"(?<!\d)\d{6}(?!\d)", msgs[0]["body"])
    assert len(codes) == 1, f"default SMS must contain exactly one 6-digit code: {msgs[0]['body']!r}"
    assert mfa.verify_challenge(ch.id, code=other_code(codes[0])).valid is False
    assert mfa.verify_challenge(ch.id, code=codes[0]).valid is True


def test_sms_send_limit_is_a_typed_rate_limit_error() -> None:
    """A second challenge within the per-number cooldown: 429 with Retry-After, which the
    SDK raises as RateLimitExceededError (retries off, or it would wait Retry-After)."""
    impatient = WorkOSClient(api_key=API_KEY, base_url=MFAD_URL, max_retries=0)
    mfa = impatient.multi_factor_auth
    f = mfa.enroll_factor(type="sms", phone_number="+1 415 555 2674")
    twilio_reset()
    mfa.challenge_factor(f.id)
    with pytest.raises(RateLimitExceededError) as ei:
        mfa.challenge_factor(f.id)
    assert "No SMS was sent" in str(ei.value), ei.value
    msgs = wait_for_messages(1)
    time.sleep(0.5)  # a second text, if one were sent, would have arrived by now
    _, msgs = _standin("GET", "/_test/messages")
    assert [m["to"] for m in msgs] == ["+14155552674"], msgs
    req = urllib.request.Request(
        f"{MFAD_URL}/auth/factors/{f.id}/challenge",
        method="POST",
        data=b"{}",
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as refused:
        opener.open(req, timeout=10)
    assert refused.value.code == 429
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 30, refused.value.headers
    assert json.loads(refused.value.read())["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize("phone", ["not-a-phone", "+1 415 555"])
def test_sms_invalid_phone_number(client: WorkOSClient, phone: str) -> None:
    with pytest.raises(UnprocessableEntityError) as ei:
        client.multi_factor_auth.enroll_factor(type="sms", phone_number=phone)
    assert ei.value.status_code == 422
    assert ei.value.code == "invalid_phone_number"


# ---------------------------------------------------------------- generic_otp


def test_generic_otp(client: WorkOSClient) -> None:
    mfa = client.multi_factor_auth
    f = mfa.enroll_factor(type="generic_otp")
    assert FACTOR_ID.match(f.id)
    assert f.type.value == "generic_otp"
    assert f.totp is None and f.sms is None

    ch = mfa.challenge_factor(f.id)
    assert ch.code is not None and re.fullmatch(r"\d{6}", ch.code), ch.code
    assert ch.expires_at is not None
    assert abs((ch.expires_at - ch.created_at) - timedelta(minutes=10)) <= timedelta(seconds=2)

    res = mfa.verify_challenge(ch.id, code=ch.code)
    assert res.valid is True
    assert res.challenge.id == ch.id and res.challenge.authentication_factor_id == f.id


def test_too_many_attempts(client: WorkOSClient) -> None:
    mfa = client.multi_factor_auth
    f = mfa.enroll_factor(type="generic_otp")
    ch = mfa.challenge_factor(f.id)
    assert ch.code is not None
    for i in range(1, 6):
        assert mfa.verify_challenge(ch.id, code=other_code(ch.code, i)).valid is False, f"attempt {i}"
    with pytest.raises(BadRequestError) as ei:
        mfa.verify_challenge(ch.id, code=ch.code)
    assert ei.value.status_code == 400
    assert ei.value.code == "one_time_code_too_many_attempts"


def test_throttled_factor_is_a_typed_rate_limit_error() -> None:
    # No retries: the SDK would otherwise honour Retry-After (30 s) before raising.
    mfa = WorkOSClient(api_key=API_KEY, base_url=MFAD_URL, max_retries=0).multi_factor_auth
    f = mfa.enroll_factor(type="generic_otp")
    ch = mfa.challenge_factor(f.id)
    assert ch.code is not None
    for i in range(1, 6):
        assert mfa.verify_challenge(ch.id, code=other_code(ch.code, i)).valid is False
    # Five consecutive wrong codes on the factor: a new challenge is still issued, but its
    # code (even the right one) is refused unjudged until the delay has passed.
    ch = mfa.challenge_factor(f.id)
    with pytest.raises(RateLimitExceededError) as ei:
        mfa.verify_challenge(ch.id, code=ch.code)
    assert ei.value.status_code == 429
    assert ei.value.code == "too_many_failed_attempts"
    assert ei.value.retry_after is not None and 0 < ei.value.retry_after <= 30


# ---------------------------------------------------------------- get / delete


def test_get_and_delete(client: WorkOSClient) -> None:
    mfa = client.multi_factor_auth
    f = mfa.enroll_factor(type="generic_otp")
    got = mfa.get_factor(f.id)
    assert (got.id, got.type.value, got.created_at, got.updated_at, got.object) == (
        f.id,
        "generic_otp",
        f.created_at,
        f.updated_at,
        "authentication_factor",
    )
    assert mfa.delete_factor(f.id) is None
    with pytest.raises(NotFoundError) as ei:
        mfa.get_factor(f.id)
    assert ei.value.status_code == 404
    assert ei.value.code == "entity_not_found"
    status, ctype, _ = raw("DELETE", f"/auth/factors/{f.id}")
    assert status == 404 and "application/json" in ctype


def test_get_unknown_factor(client: WorkOSClient) -> None:
    with pytest.raises(NotFoundError) as ei:
        client.multi_factor_auth.get_factor(f"auth_factor_{fake_ulid()}")
    assert ei.value.code == "entity_not_found"


# ---------------------------------------------------------------- user factors


@pytest.fixture(scope="module")
def user_factors(client: WorkOSClient) -> tuple[str, list[str]]:
    mfa = client.multi_factor_auth
    user_id = new_user_id()
    supplied = random_base32_secret()
    created: list[str] = []
    for i in range(5):
        totp_user = f"p{i}-{secrets.token_hex(3)}@example.com"
        r = mfa.create_user_auth_factor(
            user_id,
            type="totp",
            totp_issuer="Acme Corp",
            totp_user=totp_user,
            totp_secret=supplied if i == 3 else None,
        )
        af, ch = r.authentication_factor, r.authentication_challenge
        assert FACTOR_ID.match(af.id)
        assert af.user_id == user_id
        assert af.type.value == "totp"
        assert af.totp is not None
        assert (af.totp.issuer, af.totp.user) == ("Acme Corp", totp_user)
        assert BASE32_SECRET.match(af.totp.secret)
        if i == 3:
            assert af.totp.secret == supplied, "caller-supplied totp_secret must be used"
            assert decode_qr(af.totp.qr_code) == af.totp.uri
            v = mfa.verify_challenge(ch.id, code=fresh_code(supplied, 3.0))
            assert v.valid is True
        assert_otpauth_uri(af.totp.uri, secret=af.totp.secret, issuer="Acme Corp", user=totp_user)
        assert CHALLENGE_ID.match(ch.id)
        assert ch.authentication_factor_id == af.id
        created.append(af.id)
    assert len(set(created)) == 5
    return user_id, created


def _walk(client: WorkOSClient, user_id: str, order: str) -> tuple[list[list[str]], list]:
    pages, metas = [], []
    after = None
    for _ in range(10):
        page = client.multi_factor_auth.list_user_auth_factors(user_id, limit=2, order=order, after=after)
        for item in page.data:
            assert item.user_id == user_id
        pages.append([x.id for x in page.data])
        metas.append(page.list_metadata)
        after = page.after
        if after is None:
            break
    return pages, metas


def test_list_paginates_asc(client: WorkOSClient, user_factors) -> None:
    user_id, created = user_factors
    pages, metas = _walk(client, user_id, "asc")
    assert pages == [created[0:2], created[2:4], created[4:]]
    assert metas[0].after is not None and metas[1].after is not None
    assert metas[2].after is None
    assert metas[0].before is None


def test_list_paginates_desc(client: WorkOSClient, user_factors) -> None:
    user_id, created = user_factors
    rev = created[::-1]
    pages, metas = _walk(client, user_id, "desc")
    assert pages == [rev[0:2], rev[2:4], rev[4:]]
    assert metas[2].after is None


def test_list_before_cursor_goes_back(client: WorkOSClient, user_factors) -> None:
    user_id, created = user_factors
    mfa = client.multi_factor_auth
    p1 = mfa.list_user_auth_factors(user_id, limit=2, order="asc")
    p2 = mfa.list_user_auth_factors(user_id, limit=2, order="asc", after=p1.after)
    assert [x.id for x in p2.data] == created[2:4]
    assert p2.before is not None, "a page after the first must carry a before cursor"
    back = mfa.list_user_auth_factors(user_id, limit=2, order="asc", before=p2.before)
    assert [x.id for x in back.data] == created[0:2]


def test_auto_paging_iter(client: WorkOSClient, user_factors) -> None:
    user_id, created = user_factors
    mfa = client.multi_factor_auth
    # limit=2 is kept on every follow-up request, so this walks three pages
    ids = [x.id for x in mfa.list_user_auth_factors(user_id, limit=2).auto_paging_iter()]
    assert ids == created[::-1], "default order is desc; each factor exactly once"
    ids_asc = [x.id for x in mfa.list_user_auth_factors(user_id, limit=2, order="asc").auto_paging_iter()]
    assert ids_asc == created
    status, _, text = raw("GET", f"/user_management/users/{user_id}/auth_factors?order=asc")
    assert status == 200
    body = json.loads(text)
    assert body["object"] == "list" and [x["id"] for x in body["data"]] == created
    assert_no_secrets(text, "user factor list")
    assert_ms_timestamp_on_wire(text)


@pytest.fixture(scope="module")
def many_factors(client: WorkOSClient) -> tuple[str, list[str]]:
    """25 factors of one user, all three kinds, oldest first (2 ms apart: id order is creation order)."""
    mfa = client.multi_factor_auth
    user_id = new_user_id()
    created = []
    for i in range(25):
        if i % 3 == 0:
            f = mfa.create_user_auth_factor(user_id, type="totp", totp_issuer="Acme", totp_user=f"p{i}").authentication_factor
        elif i % 3 == 1:
            f = mfa.enroll_factor(type="generic_otp", user_id=user_id)
        else:
            f = mfa.enroll_factor(type="sms", phone_number="+14155552671", user_id=user_id)
        created.append(f.id)
        time.sleep(0.002)
    return user_id, created


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 3, 10, 24, 25, 100])
def test_auto_paging_iter_over_25_factors_from_every_start(client: WorkOSClient, many_factors, order: str, limit: int) -> None:
    # auto_paging_iter() re-requests with the caller's params, `after` set and `before`
    # dropped: from a `before` start it shows that page, then runs on to the end.
    user_id, created = many_factors
    in_order = created if order == "asc" else created[::-1]
    mfa = client.multi_factor_auth

    def walk(**cursors: str) -> list[str]:
        ids = [x.id for x in mfa.list_user_auth_factors(user_id, limit=limit, order=order, **cursors).auto_paging_iter()]
        assert len(ids) == len(set(ids)), "each factor once"
        return ids

    assert walk() == in_order
    for k in range(25):
        assert walk(after=in_order[k]) == in_order[k + 1 :], f"after {k}"
        first = in_order[max(0, k - limit) : k]
        assert walk(before=in_order[k]) == (in_order[max(0, k - limit) :] if first else []), f"before {k}"
        for j in (k - 2, k + 2, k + limit + 1):
            if not 0 <= j < 25:
                continue
            between = in_order[k + 1 : j]
            want = between if len(between) <= limit else in_order[k + 1 :]
            assert walk(after=in_order[k], before=in_order[j]) == want, f"after {k} before {j}"


# ---------------------------------------------------------------- isolation and auth


def test_tenant_isolation(client: WorkOSClient, other: WorkOSClient) -> None:
    mfa, om = client.multi_factor_auth, other.multi_factor_auth
    f = mfa.enroll_factor(type="generic_otp")
    ch = mfa.challenge_factor(f.id)
    assert ch.code is not None
    for call in (
        lambda: om.get_factor(f.id),
        lambda: om.challenge_factor(f.id),
        lambda: om.verify_challenge(ch.id, code=ch.code),
        lambda: om.delete_factor(f.id),
    ):
        with pytest.raises(NotFoundError) as ei:
            call()
        assert ei.value.status_code == 404
    assert mfa.get_factor(f.id).id == f.id
    assert mfa.verify_challenge(ch.id, code=ch.code).valid is True


def test_tenant_isolation_user_list(client: WorkOSClient, other: WorkOSClient, user_factors) -> None:
    user_id, created = user_factors
    try:
        page = other.multi_factor_auth.list_user_auth_factors(user_id)
    except NotFoundError:
        return
    leaked = [x.id for x in page.data if x.id in created]
    assert leaked == [], f"other tenant sees {leaked}"
    assert page.data == [] and page.after is None


def test_bad_api_key() -> None:
    bad = WorkOSClient(api_key=f"sk_test_{secrets.token_hex(24)}", base_url=MFAD_URL)
    with pytest.raises(AuthenticationError) as ei:
        bad.multi_factor_auth.enroll_factor(type="generic_otp")
    assert ei.value.status_code == 401
    with pytest.raises(AuthenticationError):
        bad.multi_factor_auth.get_factor(f"auth_factor_{fake_ulid()}")


# ---------------------------------------------------------------- Events API

EVENT_FLOW = [
    "authentication_factor.created",
    "authentication_challenge.created",
    "authentication.mfa_failed",
    "authentication.mfa_succeeded",
    "authentication_factor.deleted",
]


def _event_user(e: Any) -> Any:
    data = getattr(e, "data", None)
    if data is not None:
        return data.user_id
    return e.raw_data["data"].get("user_id")


def _flow_events(c: WorkOSClient, user_id: str, range_start: str) -> list[Any]:
    page = c.events.list_events(events=EVENT_FLOW, order="asc", limit=2, range_start=range_start)
    return [e for e in page.auto_paging_iter() if _event_user(e) == user_id]


def test_list_events_pages_a_flow_in_order_and_other_tenants_see_none(
    client: WorkOSClient, other: WorkOSClient
) -> None:
    from datetime import datetime, timezone

    range_start = (datetime.now(timezone.utc) - timedelta(seconds=5)).isoformat()
    mfa = client.multi_factor_auth
    user_id = new_user_id()
    f = mfa.enroll_factor(type="generic_otp", user_id=user_id)
    ch = mfa.challenge_factor(f.id)
    assert mfa.verify_challenge(ch.id, code=other_code(ch.code)).valid is False
    assert mfa.verify_challenge(ch.id, code=ch.code).valid is True
    mfa.delete_factor(f.id)

    seen = _flow_events(client, user_id, range_start)
    names = [e.event if hasattr(e, "event") else e.raw_data["event"] for e in seen]
    assert names == EVENT_FLOW
    ids = [e.id if hasattr(e, "id") else e.raw_data["id"] for e in seen]
    assert ids == sorted(ids), "ids increase with creation"
    ok, failed = seen[3], seen[2]
    assert type(ok).__name__ == "AuthenticationMFASucceeded" and ok.data.status == "succeeded"
    assert type(failed).__name__ == "AuthenticationMFAFailed" and failed.data.error.code == "invalid_code"
    assert ch.code not in json.dumps([str(e) for e in seen])
    assert _flow_events(other, user_id, range_start) == [], "the other tenant sees none of them"


# ---------------------------------------------------------------- last: the model checks ran


def test_every_kind_of_response_was_built_through_the_sdk_models() -> None:
    # Runs last (pytest keeps file order): each response kind was seen and built.
    kinds = {kind for _, _, _, kind, _ in RESPONSE_MODELS}
    assert set(BUILT) == kinds, f"built {dict(BUILT)}, expected every one of {sorted(kinds)}"
