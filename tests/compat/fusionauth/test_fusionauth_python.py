"""Client-compatibility tests: the official FusionAuth Python client (fusionauth-client==1.69.0,
unmodified) driven as a black box against a running mfad server's FusionAuth Two Factor API.

The wire contract is shared/reference/fusionauth-2fa.md. The client never raises on an HTTP
status: every call returns a ClientResponse (status, success_response, error_response,
response = the raw requests.Response), and the tests assert on those.

Environment: see conftest.py (run.sh sets everything).
"""

from __future__ import annotations

import json

import jwt as pyjwt
import pytest
from fusionauth.fusionauth_client import FusionAuthClient

from conftest import (
    API_KEY,
    JWT_SECRET,
    MFAD_URL,
    METHOD_ID,
    OTHER_KEY,
    OTHER_TENANT_ID,
    RECOVERY_CODE,
    SECRET_B32,
    SECRET_B64,
    TENANT_ID,
    TWO_FACTOR_ID,
    Authenticator,
    Inbox,
    b32_of_secret,
    forged_jwts,
    SHORT_TTL_URL,
    fusionauth_style_secret,
    needs_short_ttl,
    new_email,
    new_phone,
    new_user_id,
    other_code,
    tenant_uuid,
    valid_jwt,
)

# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fa() -> FusionAuthClient:
    """The acme tenant's client, constructed as the FusionAuth docs show (no tenant header)."""
    return FusionAuthClient(API_KEY, MFAD_URL)


@pytest.fixture(scope="module")
def fa_tenant() -> FusionAuthClient:
    """The same key with X-FusionAuth-TenantId set to its own tenant."""
    c = FusionAuthClient(API_KEY, MFAD_URL)
    c.set_tenant_id(TENANT_ID)
    return c


@pytest.fixture(scope="module")
def other() -> FusionAuthClient:
    return FusionAuthClient(OTHER_KEY, MFAD_URL)


# ---------------------------------------------------------------- helpers


def describe(r) -> str:
    body = r.response.content[:500] if r.response is not None else b""
    ct = r.response.headers.get("Content-Type") if r.response is not None else None
    return f"HTTP {r.status} Content-Type={ct!r} body={body!r}"


def assert_json(r, status: int = 200) -> dict:
    assert r.status == status, describe(r)
    ct = r.response.headers.get("Content-Type") or ""
    assert ct.startswith("application/json"), describe(r)
    assert isinstance(r.success_response, dict), describe(r)
    return r.success_response


def assert_empty(r, status: int) -> None:
    """A documented empty-body answer: 200 (no JSON content type, so the TS client can read
    it), or 401 / 404 / 421."""
    assert r.status == status, describe(r)
    assert r.response.content == b"", describe(r)
    if 200 <= status < 300:
        ct = r.response.headers.get("Content-Type") or ""
        assert not ct.startswith("application/json"), f"empty 2xx body with a JSON content type: {describe(r)}"
        assert r.success_response is None


def assert_errors_400(r) -> dict:
    """400 carries a FusionAuth Errors object (the Python client parses every 400 as JSON)."""
    assert r.status == 400, describe(r)
    body = r.error_response
    assert isinstance(body, dict), describe(r)
    assert set(body) <= {"generalErrors", "fieldErrors"} and body, body
    for e in body.get("generalErrors", []):
        assert isinstance(e.get("code"), str) and isinstance(e.get("message"), str), body
    for field, errs in body.get("fieldErrors", {}).items():
        assert isinstance(field, str) and errs, body
        for e in errs:
            assert isinstance(e.get("code"), str) and isinstance(e.get("message"), str), body
    return body


def assert_rejected_tenant(r) -> None:
    """A tenant header that is not the key's: "404 or a validation error" (reference §1). On
    the keyed routes mfad answers the validation error, 400 [InvalidTenantId]."""
    body = assert_errors_400(r)
    assert [e["code"] for e in body.get("generalErrors", [])] == ["[InvalidTenantId]"], body
    assert not body.get("fieldErrors"), body


def new_secret(fa: FusionAuthClient) -> dict:
    return assert_json(fa.generate_two_factor_secret())


def enroll_authenticator(fa: FusionAuthClient, user_id: str | None = None, *, name: str | None = None,
                         use_base32: bool = False):
    """Enables an authenticator method (the user's first): returns (user_id, authenticator, recovery codes)."""
    user_id = user_id or new_user_id()
    s = new_secret(fa)
    auth = Authenticator(s["secretBase32Encoded"])
    req = {"method": "authenticator", "code": auth.code()}
    if use_base32:
        req["secretBase32Encoded"] = s["secretBase32Encoded"]
    else:
        req["secret"] = s["secret"]
    if name:
        req["name"] = name
    body = assert_json(fa.enable_two_factor(user_id, req))
    assert set(body) <= {"recoveryCodes", "code"}, body
    return user_id, auth, body["recoveryCodes"]


def enroll_sms(fa: FusionAuthClient, user_id: str, *, phone: str | None = None, first: bool = False):
    phone = phone or new_phone()
    inbox = Inbox("sms", phone)
    assert_empty(fa.send_two_factor_code_for_enable_disable({"userId": user_id, "method": "sms", "mobilePhone": phone}), 200)
    code = inbox.code()
    r = fa.enable_two_factor(user_id, {"method": "sms", "mobilePhone": phone, "code": code})
    if first:
        assert_json(r)
    else:
        assert_empty(r, 200)
    return phone, inbox


def enroll_email(fa: FusionAuthClient, user_id: str, *, address: str | None = None):
    address = address or new_email()
    inbox = Inbox("email", address)
    assert_empty(fa.send_two_factor_code_for_enable_disable({"userId": user_id, "method": "email", "email": address}), 200)
    code = inbox.code()
    assert_empty(fa.enable_two_factor(user_id, {"method": "email", "email": address, "code": code}), 200)
    return address, inbox


def start(fa: FusionAuthClient, user_id: str, **extra) -> dict:
    body = assert_json(fa.start_two_factor_login(dict({"userId": user_id}, **extra)))
    assert TWO_FACTOR_ID.match(body["twoFactorId"]), body
    assert isinstance(body.get("code"), str) and body["code"], body
    return body


def methods_by_kind(start_body: dict) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for m in start_body.get("methods", []):
        assert METHOD_ID.match(m["id"]), m
        out.setdefault(m["method"], m)
    return out


def assert_login_ok(r, user_id: str) -> dict:
    body = assert_json(r)
    assert body["user"]["id"] == user_id, body
    # mfad is configured with an HS256 secret, so a completed login carries a token it signed
    assert isinstance(body.get("token"), str), body
    claims = pyjwt.decode(body["token"], JWT_SECRET, algorithms=["HS256"], options={"verify_aud": False})
    assert claims["sub"] == user_id, claims
    return body


def status_is_2fa(fa: FusionAuthClient, user_id: str) -> bool:
    r = fa.retrieve_two_factor_status(user_id, None, None)
    assert r.status in (200, 242, 404), describe(r)
    return r.status == 242


# ---------------------------------------------------------------- secrets


def test_generate_secret_is_fusionauth_shaped(fa: FusionAuthClient) -> None:
    body = new_secret(fa)
    assert set(body) == {"secret", "secretBase32Encoded"}, body
    assert SECRET_B64.match(body["secret"]), body
    assert SECRET_B32.match(body["secretBase32Encoded"]), body
    # secretBase32Encoded is the base32 of the base64-decoded secret (15 bytes), reference §4
    assert b32_of_secret(body["secret"]) == body["secretBase32Encoded"], body
    assert new_secret(fa)["secret"] != body["secret"]


def test_generate_secret_using_jwt(fa: FusionAuthClient) -> None:
    anon = FusionAuthClient(None, MFAD_URL)  # the JWT call sends Bearer and no API key
    body = assert_json(anon.generate_two_factor_secret_using_jwt(valid_jwt(new_user_id())))
    assert SECRET_B64.match(body["secret"]) and b32_of_secret(body["secret"]) == body["secretBase32Encoded"], body


@pytest.mark.parametrize("kind", ["expired", "wrong_secret", "alg_none", "rs256_unknown_key", "rs256_header_hmac_signature", "garbage"])
def test_generate_secret_using_bad_jwt_is_401(fa: FusionAuthClient, kind: str) -> None:
    anon = FusionAuthClient(None, MFAD_URL)
    assert_empty(anon.generate_two_factor_secret_using_jwt(forged_jwts(new_user_id())[kind]), 401)


def test_generate_secret_without_auth_is_401() -> None:
    assert_empty(FusionAuthClient(None, MFAD_URL).generate_two_factor_secret(), 401)


# ---------------------------------------------------------------- enable


def test_enable_authenticator_returns_ten_recovery_codes_then_status_242(fa: FusionAuthClient) -> None:
    user = new_user_id()
    assert not status_is_2fa(fa, user)
    _, _auth, codes = enroll_authenticator(fa, user, name="Work authenticator app")
    assert len(codes) == 10 and len(set(codes)) == 10, codes
    for c in codes:
        assert RECOVERY_CODE.match(c), codes
    r = fa.retrieve_two_factor_status(user, None, None)
    assert r.status == 242, describe(r)
    # requests' `reason` is the status line's phrase: one is sent for the unregistered 242
    assert r.response.reason == "Two Factor Required", describe(r)
    if r.response.content:
        assert isinstance(r.success_response, dict), describe(r)
    m = methods_by_kind(start(fa, user))
    assert set(m) == {"authenticator"}
    a = m["authenticator"]
    assert a.get("name") == "Work authenticator app", a
    assert a.get("authenticator") == {"algorithm": "HmacSHA1", "codeLength": 6, "timeStep": 30}, a
    assert "secret" not in a, "the secret must not be returned after enablement"


def test_enable_authenticator_with_base32_secret(fa: FusionAuthClient) -> None:
    user, auth, codes = enroll_authenticator(fa, use_base32=True)
    assert len(codes) == 10
    assert fa.retrieve_two_factor_status(user, None, None).status == 242
    # the enabled method really is that secret: the next step's code logs in
    tf = start(fa, user)
    assert_login_ok(fa.two_factor_login({"twoFactorId": tf["twoFactorId"], "code": auth.code()}), user)


def test_enable_with_client_side_fusionauth_secret(fa: FusionAuthClient) -> None:
    """A secret the application generated itself, FusionAuth-style (20 base64 chars)."""
    secret, b32 = fusionauth_style_secret()
    auth = Authenticator(b32)
    user = new_user_id()
    body = assert_json(fa.enable_two_factor(user, {"method": "authenticator", "code": auth.code(), "secret": secret}))
    assert len(body["recoveryCodes"]) == 10


def _step_with_margin(margin: float = 3.0) -> int:
    """The current 30 s step, waiting past a boundary that is less than `margin` s away."""
    import time

    left = 30 - time.time() % 30
    if left < margin:
        time.sleep(left + 0.2)
    return int(time.time() // 30)


@pytest.mark.parametrize("offset,accepted", [(-2, False), (-1, True), (1, True), (2, False)])
def test_totp_window_is_one_step_either_side(fa: FusionAuthClient, offset: int, accepted: bool) -> None:
    """Reference §4: codes of steps t-1, t and t+1 are accepted, nothing further."""
    import pyotp

    s = new_secret(fa)
    totp = pyotp.TOTP(s["secretBase32Encoded"])
    cur = _step_with_margin()
    code = totp.at((cur + offset) * 30)
    if not accepted and code in {totp.at((cur + k) * 30) for k in (-1, 0, 1)}:
        pytest.skip("the far code collides with an accepted one")
    r = fa.enable_two_factor(new_user_id(), {"method": "authenticator", "code": code, "secret": s["secret"]})
    if accepted:
        assert_json(r)
    else:
        assert_empty(r, 421)


def test_totp_code_is_compared_exactly(fa: FusionAuthClient) -> None:
    """Reference §4: exact string comparison; whitespace is not trimmed."""
    s = new_secret(fa)
    auth = Authenticator(s["secretBase32Encoded"])
    user = new_user_id()
    code = auth.code()
    for variant in (f" {code}", f"{code} ", f"{code}\n", code[:-1], f"0{code}"):
        assert_empty(fa.enable_two_factor(user, {"method": "authenticator", "code": variant, "secret": s["secret"]}), 421)
    assert not status_is_2fa(fa, user)
    assert_json(fa.enable_two_factor(user, {"method": "authenticator", "code": code, "secret": s["secret"]}))


def test_enable_wrong_code_is_421_and_changes_nothing(fa: FusionAuthClient) -> None:
    user = new_user_id()
    s = new_secret(fa)
    auth = Authenticator(s["secretBase32Encoded"])
    r = fa.enable_two_factor(user, {"method": "authenticator", "code": auth.wrong_code(), "secret": s["secret"]})
    assert_empty(r, 421)
    assert r.error_response is not None and r.error_response.content == b""
    assert not status_is_2fa(fa, user)


@pytest.mark.parametrize(
    "req",
    [
        {"method": "authenticator", "secret": "SP2m6K2Dg/x2JN9DyQvZ"},  # no code
        {"method": "authenticator", "code": "123456"},  # no secret
        {"method": "carrier-pigeon", "code": "123456", "secret": "SP2m6K2Dg/x2JN9DyQvZ"},
        {"method": "sms", "code": "123456"},  # no mobilePhone
        {"method": "email", "code": "123456"},  # no email
    ],
    ids=["no-code", "no-secret", "unknown-method", "sms-no-phone", "email-no-address"],
)
def test_enable_invalid_request_is_400_with_errors(fa: FusionAuthClient, req: dict) -> None:
    user = new_user_id()
    assert_errors_400(fa.enable_two_factor(user, req))
    assert not status_is_2fa(fa, user)


def test_send_to_invalid_phone_is_400_with_errors(fa: FusionAuthClient) -> None:
    assert_errors_400(fa.send_two_factor_code_for_enable_disable({"userId": new_user_id(), "method": "sms", "mobilePhone": "not-a-phone"}))


def test_send_past_the_hourly_limit_is_429_with_retry_after(fa: FusionAuthClient) -> None:
    """The suite's server has no cooldown (its flows resend at once); the per-number hourly
    limit (5) holds: the sixth send is 429, empty, with Retry-After, and nothing is sent."""
    user, phone = new_user_id(), new_phone()
    body = {"userId": user, "method": "sms", "mobilePhone": phone}
    for _ in range(5):
        assert_empty(fa.send_two_factor_code_for_enable_disable(body), 200)
    inbox = Inbox("sms", phone)
    r = fa.send_two_factor_code_for_enable_disable(body)
    assert r.status == 429 and not r.was_successful(), describe(r)
    assert r.response.content == b"", describe(r)
    assert 1 <= int(r.response.headers["Retry-After"]) <= 3600, r.response.headers
    inbox.nothing_new()


def test_enable_sms_with_texted_code(fa: FusionAuthClient) -> None:
    user, _auth, _codes = enroll_authenticator(fa)
    phone = new_phone()
    inbox = Inbox("sms", phone)
    # the deprecated alias sends the same request
    assert_empty(fa.send_two_factor_code({"userId": user, "method": "sms", "mobilePhone": phone}), 200)
    code = inbox.code()
    assert_empty(fa.enable_two_factor(user, {"method": "sms", "mobilePhone": phone, "code": other_code(code)}), 421)
    assert_empty(fa.enable_two_factor(user, {"method": "sms", "mobilePhone": phone, "code": code, "name": "Mobile"}), 200)
    m = methods_by_kind(start(fa, user))
    assert set(m) == {"authenticator", "sms"}
    assert m["sms"]["mobilePhone"] == phone and m["sms"].get("name") == "Mobile", m["sms"]


def test_sms_as_first_method_returns_recovery_codes(fa: FusionAuthClient) -> None:
    user = new_user_id()
    phone = new_phone()
    inbox = Inbox("sms", phone)
    assert_empty(fa.send_two_factor_code_for_enable_disable({"userId": user, "method": "sms", "mobilePhone": phone}), 200)
    body = assert_json(fa.enable_two_factor(user, {"method": "sms", "mobilePhone": phone, "code": inbox.code()}))
    assert len(body["recoveryCodes"]) == 10
    assert fa.retrieve_two_factor_status(user, None, None).status == 242


# ---------------------------------------------------------------- login


def test_start_returns_code_methods_and_two_factor_id(fa: FusionAuthClient) -> None:
    user, _auth, _ = enroll_authenticator(fa)
    phone, _ = enroll_sms(fa, user)
    body = start(fa, user)
    assert set(body) <= {"code", "methods", "twoFactorId"}, body
    m = methods_by_kind(body)
    assert set(m) == {"authenticator", "sms"}, body
    assert m["sms"]["mobilePhone"] == phone
    ids = [x["id"] for x in body["methods"]]
    assert len(set(ids)) == len(ids)
    # each start is a new login
    assert start(fa, user)["twoFactorId"] != body["twoFactorId"]


def test_start_with_caller_supplied_code_then_login_with_it(fa: FusionAuthClient) -> None:
    user, _auth, _ = enroll_authenticator(fa)
    enroll_sms(fa, user)
    body = start(fa, user, code="918273")
    assert body["code"] == "918273", body
    assert_login_ok(fa.two_factor_login({"twoFactorId": body["twoFactorId"], "code": "918273"}), user)


def test_start_state_is_echoed_and_user_id_wins_over_login_id(fa: FusionAuthClient) -> None:
    """TwoFactorStartRequest.state comes back in the LoginResponse; userId wins over loginId."""
    user, auth, _ = enroll_authenticator(fa)
    st = start(fa, user, loginId="richard@piedpiper.com", state={"redirect_uri": "https://app.example/cb", "n": 1})
    body = assert_login_ok(fa.two_factor_login({"twoFactorId": st["twoFactorId"], "code": auth.code()}), user)
    assert body.get("state") == {"redirect_uri": "https://app.example/cb", "n": 1}, body


def test_start_without_user_is_400(fa: FusionAuthClient) -> None:
    assert_errors_400(fa.start_two_factor_login({}))


def test_login_with_start_code(fa: FusionAuthClient) -> None:
    """The start response's one-time code completes the login (delivered out of band)."""
    user, _auth, _ = enroll_authenticator(fa)
    enroll_sms(fa, user)
    body = start(fa, user)
    assert_login_ok(fa.two_factor_login({"twoFactorId": body["twoFactorId"], "code": body["code"]}), user)


def test_login_with_totp_then_two_factor_id_is_spent(fa: FusionAuthClient) -> None:
    user, auth, _ = enroll_authenticator(fa)
    tf = start(fa, user)["twoFactorId"]
    assert_empty(fa.two_factor_login({"twoFactorId": tf, "code": auth.wrong_code()}), 421)
    code = auth.code()
    body = assert_login_ok(fa.two_factor_login({"twoFactorId": tf, "code": code, "applicationId": new_user_id()}), user)
    assert "twoFactorId" not in body or body["twoFactorId"] != tf
    # a twoFactorId is single use
    assert_empty(fa.two_factor_login({"twoFactorId": tf, "code": code}), 404)
    # the same TOTP code on a fresh twoFactorId is a replay
    tf2 = start(fa, user)["twoFactorId"]
    assert_empty(fa.two_factor_login({"twoFactorId": tf2, "code": code}), 421)


def test_login_with_texted_code_and_resend_invalidates(fa: FusionAuthClient) -> None:
    user, _auth, _ = enroll_authenticator(fa)
    phone, inbox = enroll_sms(fa, user)
    st = start(fa, user)
    sms_id = methods_by_kind(st)["sms"]["id"]
    tf = st["twoFactorId"]
    assert_empty(fa.send_two_factor_code_for_login_using_method(tf, {"methodId": sms_id}), 200)
    first = inbox.code()
    assert_empty(fa.send_two_factor_code_for_login_using_method(tf, {"methodId": sms_id}), 200)
    second = inbox.code()
    if first != second:
        # a new send invalidates earlier codes for that twoFactorId
        assert_empty(fa.two_factor_login({"twoFactorId": tf, "code": first}), 421)
    assert_empty(fa.two_factor_login({"twoFactorId": tf, "code": other_code(second)}), 421)
    assert_login_ok(fa.two_factor_login({"twoFactorId": tf, "code": second}), user)
    assert_empty(fa.two_factor_login({"twoFactorId": tf, "code": second}), 404)


def test_deprecated_send_for_login_without_body(fa: FusionAuthClient) -> None:
    """send_two_factor_code_for_login: POST /api/two-factor/send/{id}, no body, no auth."""
    user = new_user_id()
    phone = new_phone()
    inbox = Inbox("sms", phone)
    assert_empty(fa.send_two_factor_code_for_enable_disable({"userId": user, "method": "sms", "mobilePhone": phone}), 200)
    assert_json(fa.enable_two_factor(user, {"method": "sms", "mobilePhone": phone, "code": inbox.code()}))
    tf = start(fa, user)["twoFactorId"]
    assert_empty(fa.send_two_factor_code_for_login(tf), 200)
    assert_login_ok(fa.two_factor_login({"twoFactorId": tf, "code": inbox.code()}), user)


def test_login_with_emailed_code(fa: FusionAuthClient) -> None:
    user, _auth, _ = enroll_authenticator(fa)
    address, inbox = enroll_email(fa, user)
    st = start(fa, user)
    m = methods_by_kind(st)
    assert m["email"]["email"] == address, m
    assert_empty(fa.send_two_factor_code_for_login_using_method(st["twoFactorId"], {"methodId": m["email"]["id"]}), 200)
    mail = inbox.message()
    assert mail["mail_from"] == "mfad@example.com" or "mfad@example.com" in mail["from"], mail
    from conftest import only_code

    code = only_code(mail["subject"] + "\n" + mail["text"])
    assert_empty(fa.two_factor_login({"twoFactorId": st["twoFactorId"], "code": other_code(code)}), 421)
    assert_login_ok(fa.two_factor_login({"twoFactorId": st["twoFactorId"], "code": code}), user)


def test_email_enable_wrong_code_is_421(fa: FusionAuthClient) -> None:
    user, _auth, _ = enroll_authenticator(fa)
    address = new_email()
    inbox = Inbox("email", address)
    assert_empty(fa.send_two_factor_code_for_enable_disable({"userId": user, "method": "email", "email": address}), 200)
    code = inbox.code()
    assert_empty(fa.enable_two_factor(user, {"method": "email", "email": address, "code": other_code(code)}), 421)
    assert "email" not in methods_by_kind(start(fa, user))


def test_login_with_recovery_code_works_once(fa: FusionAuthClient) -> None:
    user, _auth, codes = enroll_authenticator(fa)
    tf = start(fa, user)["twoFactorId"]
    assert_login_ok(fa.two_factor_login({"twoFactorId": tf, "code": codes[0]}), user)
    tf2 = start(fa, user)["twoFactorId"]
    assert_empty(fa.two_factor_login({"twoFactorId": tf2, "code": codes[0]}), 421)
    # the user still has 2FA, and the other codes still work
    assert fa.retrieve_two_factor_status(user, None, None).status == 242
    tf3 = start(fa, user)["twoFactorId"]
    assert_login_ok(fa.two_factor_login({"twoFactorId": tf3, "code": codes[1]}), user)


def test_unknown_two_factor_id_is_404(fa: FusionAuthClient) -> None:
    assert_empty(fa.two_factor_login({"twoFactorId": "YkQY5Gsyo4RlfmDciBGRmvfj3RmatUqrbjoIZ19fmw4", "code": "123456"}), 404)
    r = fa.send_two_factor_code_for_login_using_method("YkQY5Gsyo4RlfmDciBGRmvfj3RmatUqrbjoIZ19fmw4", {"methodId": "ABCD"})
    assert r.status in (400, 404), describe(r)  # send documents no 404; an unknown id is a 4xx
    if r.status == 400:
        assert_errors_400(r)


@needs_short_ttl
def test_expired_two_factor_id_is_404(fa: FusionAuthClient) -> None:
    """A second mfad on the same database gives twoFactorIds a 2 s lifetime."""
    import time

    short = FusionAuthClient(API_KEY, SHORT_TTL_URL)
    user, auth, codes = enroll_authenticator(fa)
    enroll_sms(fa, user)
    st = start(short, user)
    sms_id = methods_by_kind(st)["sms"]["id"]
    time.sleep(3.5)
    assert_empty(short.two_factor_login({"twoFactorId": st["twoFactorId"], "code": codes[0]}), 404)
    assert_empty(short.two_factor_login({"twoFactorId": st["twoFactorId"], "code": st["code"]}), 404)
    r = short.send_two_factor_code_for_login_using_method(st["twoFactorId"], {"methodId": sms_id})
    assert r.status in (400, 404), describe(r)  # send documents no 404; an unknown id is a 4xx
    if r.status == 400:
        assert_errors_400(r)
    # the recovery code was not consumed by the refused attempt
    assert codes[0] in assert_json(fa.retrieve_two_factor_recovery_codes(user))["recoveryCodes"]


def test_brute_force_ends_the_two_factor_id(fa: FusionAuthClient) -> None:
    user, auth, _ = enroll_authenticator(fa)
    tf = start(fa, user)["twoFactorId"]
    statuses = [fa.two_factor_login({"twoFactorId": tf, "code": auth.wrong_code()}).status for _ in range(12)]
    assert set(statuses) <= {421, 404}, statuses
    assert statuses[0] == 421 and statuses[-1] == 404, f"guessing must end the twoFactorId: {statuses}"
    r = fa.two_factor_login({"twoFactorId": tf, "code": auth.code()})
    assert r.status in (404, 421), describe(r)
    assert r.response.content == b""


def test_trust_computer_then_status_with_trust_id(fa: FusionAuthClient) -> None:
    user, auth, _ = enroll_authenticator(fa)
    tf = start(fa, user)["twoFactorId"]
    resp = fa.two_factor_login({"twoFactorId": tf, "code": auth.code(), "trustComputer": True})
    body = assert_login_ok(resp, user)
    trust = body.get("twoFactorTrustId")
    assert isinstance(trust, str) and trust, body
    # ... and the fusionauth.trust cookie carries it (reference §3.2)
    assert resp.response.cookies.get("fusionauth.trust") == trust, resp.response.headers.get("Set-Cookie")
    r = fa.retrieve_two_factor_status(user, None, trust)
    assert r.status == 200, describe(r)
    # an unknown trust id does not exempt the user
    assert fa.retrieve_two_factor_status(user, None, "bm90LWEtdHJ1c3QtaWQ").status == 242
    trusted = assert_json(r)
    assert trusted.get("twoFactorTrustId") == trust, trusted
    assert isinstance(trusted.get("trusts"), list) and trusted["trusts"], trusted
    for t in trusted["trusts"]:
        assert isinstance(t.get("startInstant"), int) and isinstance(t.get("expiration"), int), t
        assert t["expiration"] > t["startInstant"], t
    # body form of status (1.62+)
    r = fa.retrieve_two_factor_status_with_request({"userId": user, "twoFactorTrustId": trust, "action": "login"})
    assert r.status == 200, describe(r)
    r = fa.retrieve_two_factor_status_with_request({"userId": user, "action": "login"})
    assert r.status == 242, describe(r)


# ---------------------------------------------------------------- recovery codes


def test_retrieve_and_regenerate_recovery_codes(fa: FusionAuthClient) -> None:
    user, _auth, codes = enroll_authenticator(fa)
    assert sorted(assert_json(fa.retrieve_two_factor_recovery_codes(user))["recoveryCodes"]) == sorted(codes)
    tf = start(fa, user)["twoFactorId"]
    assert_login_ok(fa.two_factor_login({"twoFactorId": tf, "code": codes[0]}), user)
    left = assert_json(fa.retrieve_two_factor_recovery_codes(user))["recoveryCodes"]
    assert sorted(left) == sorted(codes[1:]), left
    fresh = assert_json(fa.generate_two_factor_recovery_codes(user))["recoveryCodes"]
    assert len(fresh) == 10 and len(set(fresh)) == 10 and not set(fresh) & set(codes), fresh
    assert all(RECOVERY_CODE.match(c) for c in fresh), fresh
    assert sorted(assert_json(fa.retrieve_two_factor_recovery_codes(user))["recoveryCodes"]) == sorted(fresh)
    # the old set is gone
    tf = start(fa, user)["twoFactorId"]
    assert_empty(fa.two_factor_login({"twoFactorId": tf, "code": codes[1]}), 421)
    assert_login_ok(fa.two_factor_login({"twoFactorId": tf, "code": fresh[5]}), user)


# ---------------------------------------------------------------- rename


def test_rename_method(fa: FusionAuthClient) -> None:
    user, _auth, _ = enroll_authenticator(fa, name="Old name")
    mid = methods_by_kind(start(fa, user))["authenticator"]["id"]
    assert_empty(fa.update_two_factor(user, {"methodId": mid, "name": "Work phone"}), 200)
    m = methods_by_kind(start(fa, user))["authenticator"]
    assert m["id"] == mid and m["name"] == "Work phone", m
    r = fa.update_two_factor(user, {"methodId": "ZZZZ" if mid != "ZZZZ" else "YYYY", "name": "x"})
    assert r.status in (400, 404), describe(r)
    if r.status == 400:
        assert_errors_400(r)
    else:
        assert r.response.content == b""


# ---------------------------------------------------------------- disable


def test_disable_with_request_body_using_texted_code(fa: FusionAuthClient) -> None:
    user, _auth, _ = enroll_authenticator(fa)
    phone, inbox = enroll_sms(fa, user)
    sms_id = methods_by_kind(start(fa, user))["sms"]["id"]
    # send while disabling: {userId, methodId}
    assert_empty(fa.send_two_factor_code_for_enable_disable({"userId": user, "methodId": sms_id}), 200)
    code = inbox.code()
    assert_empty(fa.disable_two_factor_with_request(user, {"methodId": sms_id, "code": other_code(code)}), 421)
    assert "sms" in methods_by_kind(start(fa, user))
    assert_empty(fa.disable_two_factor_with_request(user, {"methodId": sms_id, "code": code}), 200)
    m = methods_by_kind(start(fa, user))
    assert set(m) == {"authenticator"}, m
    assert fa.retrieve_two_factor_status(user, None, None).status == 242


def test_disable_with_query_parameters_using_totp(fa: FusionAuthClient) -> None:
    user, auth, _ = enroll_authenticator(fa)
    mid = methods_by_kind(start(fa, user))["authenticator"]["id"]
    assert_empty(fa.disable_two_factor(user, mid, auth.wrong_code()), 421)
    assert fa.retrieve_two_factor_status(user, None, None).status == 242
    assert_empty(fa.disable_two_factor(user, mid, auth.code()), 200)
    assert not status_is_2fa(fa, user)


def test_disable_with_recovery_code_removes_every_method(fa: FusionAuthClient) -> None:
    user, auth, codes = enroll_authenticator(fa)
    enroll_sms(fa, user)
    enroll_email(fa, user)
    m = methods_by_kind(start(fa, user))
    assert set(m) == {"authenticator", "sms", "email"}
    assert_empty(fa.disable_two_factor_with_request(user, {"methodId": m["sms"]["id"], "code": codes[3]}), 200)
    assert not status_is_2fa(fa, user)
    r = fa.start_two_factor_login({"userId": user})
    assert r.status in (200, 404), describe(r)
    if r.status == 200:
        assert not r.success_response.get("methods"), r.success_response
    # adding a method afterwards yields a new set of recovery codes
    s = new_secret(fa)
    a2 = Authenticator(s["secretBase32Encoded"])
    body = assert_json(fa.enable_two_factor(user, {"method": "authenticator", "code": a2.code(), "secret": s["secret"]}))
    assert len(body["recoveryCodes"]) == 10 and not set(body["recoveryCodes"]) & set(codes)


# ---------------------------------------------------------------- not found, auth, tenants


def test_unknown_user_is_404(fa: FusionAuthClient) -> None:
    user = new_user_id()
    assert_empty(fa.start_two_factor_login({"userId": user}), 404)
    assert_empty(fa.retrieve_two_factor_recovery_codes(user), 404)
    assert_empty(fa.generate_two_factor_recovery_codes(user), 404)
    assert_empty(fa.disable_two_factor(user, "ABCD", "123456"), 404)
    assert_empty(fa.disable_two_factor_with_request(user, {"methodId": "ABCD", "code": "123456"}), 404)
    assert_empty(fa.update_two_factor(user, {"methodId": "ABCD", "name": "x"}), 404)
    assert not status_is_2fa(fa, user)


def test_bad_api_key_is_401_with_empty_body() -> None:
    bad = FusionAuthClient("sk_not_a_real_key_0123456789", MFAD_URL)
    user = new_user_id()
    assert_empty(bad.generate_two_factor_secret(), 401)
    assert_empty(bad.enable_two_factor(user, {"method": "authenticator", "code": "123456", "secret": "SP2m6K2Dg/x2JN9DyQvZ"}), 401)
    assert_empty(bad.start_two_factor_login({"userId": user}), 401)
    assert_empty(bad.retrieve_two_factor_status(user, None, None), 401)
    assert_empty(bad.retrieve_two_factor_recovery_codes(user), 401)
    assert_empty(bad.disable_two_factor_with_request(user, {"methodId": "ABCD", "code": "123456"}), 401)
    assert_empty(bad.send_two_factor_code_for_enable_disable({"userId": user, "method": "sms", "mobilePhone": new_phone()}), 401)



def test_other_tenant_cannot_reach_the_user(fa: FusionAuthClient, other: FusionAuthClient) -> None:
    user, auth, codes = enroll_authenticator(fa)
    mid = methods_by_kind(start(fa, user))["authenticator"]["id"]
    assert_empty(other.start_two_factor_login({"userId": user}), 404)
    assert_empty(other.retrieve_two_factor_recovery_codes(user), 404)
    assert_empty(other.generate_two_factor_recovery_codes(user), 404)
    assert_empty(other.disable_two_factor_with_request(user, {"methodId": mid, "code": codes[0]}), 404)
    assert_empty(other.update_two_factor(user, {"methodId": mid, "name": "pwned"}), 404)
    assert not status_is_2fa(other, user)
    # nothing changed for the owner: recovery codes intact, name intact, still 242
    assert sorted(assert_json(fa.retrieve_two_factor_recovery_codes(user))["recoveryCodes"]) == sorted(codes)
    assert methods_by_kind(start(fa, user))["authenticator"].get("name") != "pwned"
    assert fa.retrieve_two_factor_status(user, None, None).status == 242


def test_tenant_header_matching_the_key_works(fa_tenant: FusionAuthClient) -> None:
    new_secret(fa_tenant)
    user, auth, _ = enroll_authenticator(fa_tenant)
    assert fa_tenant.retrieve_two_factor_status(user, None, None).status == 242
    tf = start(fa_tenant, user)["twoFactorId"]
    # anonymous calls carry the tenant header too
    assert_login_ok(fa_tenant.two_factor_login({"twoFactorId": tf, "code": auth.code()}), user)


def test_tenant_header_as_a_uuid(fa: FusionAuthClient) -> None:
    """FusionAuth tenant ids are UUIDs (reference §0): the header may carry the tenant as the
    UUID of the same 128 bits as mfad's `tenant_<ULID>` id."""
    c = FusionAuthClient(API_KEY, MFAD_URL)
    c.set_tenant_id(tenant_uuid(TENANT_ID))
    new_secret(c)
    user, auth, _ = enroll_authenticator(c)
    assert c.retrieve_two_factor_status(user, None, None).status == 242
    mismatched = FusionAuthClient(API_KEY, MFAD_URL)
    mismatched.set_tenant_id(tenant_uuid(OTHER_TENANT_ID))
    assert_rejected_tenant(mismatched.start_two_factor_login({"userId": user}))
    # the anonymous login route: a login of another tenant is not found
    tf = start(c, user)["twoFactorId"]
    code = auth.code()  # the refused login does not use it up
    assert_empty(mismatched.two_factor_login({"twoFactorId": tf, "code": code}), 404)
    assert_login_ok(c.two_factor_login({"twoFactorId": tf, "code": code}), user)


def test_jwt_in_access_token_cookie() -> None:
    """The JWT may come in an `access_token` cookie instead of Authorization (reference §1)."""
    from conftest import raw

    st, _h, body = raw("GET", "/api/two-factor/secret", headers=[("Cookie", f"access_token={valid_jwt(new_user_id())}")])
    assert st == 200 and json.loads(body)["secret"], (st, body)
    st, _h, body = raw("GET", "/api/two-factor/secret", headers=[("Cookie", "access_token=" + forged_jwts(new_user_id())["wrong_secret"])])
    assert (st, body) == (401, b"")


@pytest.mark.parametrize("which", ["other-tenant", "random-uuid"])
def test_tenant_header_mismatch_is_rejected(fa: FusionAuthClient, which: str) -> None:
    user, _auth, codes = enroll_authenticator(fa)
    mismatched = FusionAuthClient(API_KEY, MFAD_URL)
    mismatched.set_tenant_id(OTHER_TENANT_ID if which == "other-tenant" else new_user_id())
    assert_rejected_tenant(mismatched.generate_two_factor_secret())
    assert_rejected_tenant(mismatched.start_two_factor_login({"userId": user}))
    assert_rejected_tenant(mismatched.retrieve_two_factor_recovery_codes(user))
    assert_rejected_tenant(mismatched.disable_two_factor_with_request(user, {"methodId": "ABCD", "code": codes[0]}))
    assert_rejected_tenant(mismatched.enable_two_factor(new_user_id(), {"method": "authenticator", "code": "123456", "secret": "SP2m6K2Dg/x2JN9DyQvZ"}))
    # a bad key is still an empty 401, whatever the header says
    bad = FusionAuthClient("sk_not_a_real_key_0123456789", MFAD_URL)
    bad.set_tenant_id(OTHER_TENANT_ID if which == "other-tenant" else new_user_id())
    assert_empty(bad.generate_two_factor_secret(), 401)
    assert_empty(bad.start_two_factor_login({"userId": user}), 401)
    # nothing changed
    assert sorted(assert_json(fa.retrieve_two_factor_recovery_codes(user))["recoveryCodes"]) == sorted(codes)


# ---------------------------------------------------------------- one domain model


def test_authenticator_is_listed_by_the_workos_api(fa: FusionAuthClient) -> None:
    import urllib.request

    user, _auth, _ = enroll_authenticator(fa)
    req = urllib.request.Request(
        f"{MFAD_URL}/user_management/users/{user}/auth_factors",
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = json.loads(resp.read().decode())
    assert [f["type"] for f in body["data"]] == ["totp"], body


# ---------------------------------------------------------------- current API, JWT forms (raw: the 1.69 clients have none)


def _jwt_call(method: str, path: str, token: str, body: dict | None = None):
    from conftest import raw

    hs = [("Authorization", "Bearer " + token)]
    data = None
    if body is not None:
        hs.append(("Content-Type", "application/json"))
        data = json.dumps(body).encode()
    return raw(method, path, headers=hs, body=data)


def test_current_api_jwt_forms(fa: FusionAuthClient) -> None:
    """Reference §3.1: send while enabling / disabling without userId, enable, and disable by
    query and by body on /api/user/two-factor, each with only `Authorization: Bearer <jwt>`."""
    user = new_user_id()
    token = valid_jwt(user)
    # enable an authenticator
    s = new_secret(fa)
    auth = Authenticator(s["secretBase32Encoded"])
    st, _h, b = _jwt_call("POST", "/api/user/two-factor", token, {"method": "authenticator", "code": auth.code(), "secret": s["secret"]})
    assert st == 200 and len(json.loads(b)["recoveryCodes"]) == 10, (st, b)
    # send while enabling SMS: no userId, the JWT names the user
    phone = new_phone()
    inbox = Inbox("sms", phone)
    st, _h, b = _jwt_call("POST", "/api/two-factor/send", token, {"method": "sms", "mobilePhone": phone})
    assert (st, b) == (200, b""), (st, b)
    st, _h, b = _jwt_call("POST", "/api/user/two-factor", token, {"method": "sms", "mobilePhone": phone, "code": inbox.code()})
    assert (st, b) == (200, b""), (st, b)
    m = methods_by_kind(start(fa, user))
    # send while disabling: {methodId}
    st, _h, b = _jwt_call("POST", "/api/two-factor/send", token, {"methodId": m["sms"]["id"]})
    assert (st, b) == (200, b""), (st, b)
    code = inbox.code()
    # disable, body form
    st, _h, b = _jwt_call("DELETE", "/api/user/two-factor", token, {"methodId": m["sms"]["id"], "code": other_code(code)})
    assert (st, b) == (421, b""), (st, b)
    st, _h, b = _jwt_call("DELETE", "/api/user/two-factor", token, {"methodId": m["sms"]["id"], "code": code})
    assert (st, b) == (200, b""), (st, b)
    # disable, query form
    st, _h, b = _jwt_call("DELETE", f"/api/user/two-factor?methodId={m['authenticator']['id']}&code={auth.code()}", token)
    assert (st, b) == (200, b""), (st, b)
    assert not status_is_2fa(fa, user)


def test_factor_enrolled_through_the_workos_api_is_a_fusionauth_method(fa: FusionAuthClient) -> None:
    import pyotp
    import urllib.request

    user = new_user_id()
    req = urllib.request.Request(
        f"{MFAD_URL}/user_management/users/{user}/auth_factors",
        data=json.dumps({"type": "totp", "totp_issuer": "Acme", "totp_user": "a@example.com"}).encode(),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201
        enrolled = json.loads(resp.read().decode())
    secret = enrolled["authentication_factor"]["totp"]["secret"]
    assert fa.retrieve_two_factor_status(user, None, None).status == 242
    st = start(fa, user)
    assert set(methods_by_kind(st)) == {"authenticator"}, st
    code = pyotp.TOTP(secret).now()
    assert_login_ok(fa.two_factor_login({"twoFactorId": st["twoFactorId"], "code": code}), user)


def _parallel(n: int, fn) -> list:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(n) as ex:
        return list(ex.map(fn, range(n)))


def assert_one_success_then_replays(statuses: list) -> None:
    """One login wins; the others are replays: wrong codes (421), counted against the user
    up to the throttle's threshold (5), then refused unjudged (409). The win resets the
    count, so losers judged before it and after it each get at most the threshold."""
    assert statuses.count(200) == 1, statuses
    assert statuses.count(421) <= 2 * 5, statuses
    assert set(statuses) <= {200, 421, 409}, statuses


def test_parallel_logins_with_one_recovery_code_succeed_once(fa: FusionAuthClient) -> None:
    user, _auth, codes = enroll_authenticator(fa)
    tfs = [start(fa, user)["twoFactorId"] for _ in range(8)]
    statuses = _parallel(8, lambda i: fa.two_factor_login({"twoFactorId": tfs[i], "code": codes[0]}).status)
    assert_one_success_then_replays(statuses)


def test_parallel_logins_with_one_totp_code_succeed_once(fa: FusionAuthClient) -> None:
    user, auth, _codes = enroll_authenticator(fa)
    tfs = [start(fa, user)["twoFactorId"] for _ in range(8)]
    code = auth.code()
    statuses = _parallel(8, lambda i: fa.two_factor_login({"twoFactorId": tfs[i], "code": code}).status)
    assert_one_success_then_replays(statuses)


def test_empty_query_values_count_as_absent(fa: FusionAuthClient) -> None:
    """The TS client sends applicationId=undefined / null literally (reference §5.2); the raw
    request here is what it sends."""
    from conftest import raw

    user, _auth, _ = enroll_authenticator(fa)
    for v in ("undefined", "null"):
        st, _h, body = raw("GET", f"/api/two-factor/status?userId={user}&applicationId={v}", headers=[("Authorization", API_KEY)])
        assert st == 242, (v, st, body)


def test_throttled_user_is_409_with_retry_after_and_an_errors_object(fa: FusionAuthClient) -> None:
    """Five consecutive wrong codes: the client sees FusionAuth's 409 (login prevented), a
    readable Errors object and Retry-After, not a crash; even the right code is refused."""
    user, auth, _ = enroll_authenticator(fa)
    body = start(fa, user)
    wrong = f"{(int(body['code']) + 137911) % 1000000:06d}"
    for _ in range(5):
        assert_empty(fa.two_factor_login({"twoFactorId": body["twoFactorId"], "code": wrong}), 421)
    again = start(fa, user)
    r = fa.two_factor_login({"twoFactorId": again["twoFactorId"], "code": auth.code()})
    assert r.status == 409, describe(r)
    assert not r.was_successful()
    assert r.error_response.json()["generalErrors"][0]["code"] == "[TooManyFailedAttempts]", describe(r)
    assert 0 < int(r.response.headers["Retry-After"]) <= 30, describe(r)
