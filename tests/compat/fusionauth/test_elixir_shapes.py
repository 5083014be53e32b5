"""Every request shape of the Elixir `fusion_auth` 0.3.0 client's `FusionAuth.TwoFactor` module
(the legacy <= 1.25 API, reference §2.1), sent over raw HTTP exactly as Tesla 1.4 + hackney put
it on the wire, against a running mfad server.

The Elixir client is built as FusionAuth.client(base_url, api_key, tenant_id): its Headers
middleware appends `Authorization: <api key>` and `X-FusionAuth-TenantId: <tenant>` to every
request; the *_by_jwt / *_for_jwt functions add `Authorization: Bearer <jwt>` per request,
which lands FIRST (reference §1.1). So those requests carry two Authorization headers:

    Authorization: Bearer <jwt>
    Authorization: <api key>
    X-FusionAuth-TenantId: <tenant id>

http.client lets us send exactly that. Bodies are Jason-encoded (compact), with
`content-type: application/json`.
"""

from __future__ import annotations

import base64
import json

import pytest

from conftest import (
    API_KEY,
    OTHER_KEY,
    SECRET_B32,
    SECRET_B64,
    TENANT_ID,
    Authenticator,
    Inbox,
    b32_of_secret,
    claims_for,
    forged_jwts,
    header,
    new_phone,
    needs_rs256,
    new_user_id,
    other_code,
    raw,
    rs_confusion_jwts,
    trusted_rs256_jwt,
    valid_jwt,
)

# ---------------------------------------------------------------- the Elixir client on the wire


def elixir(method: str, path: str, body: dict | None = None, *, jwt: str | None = None,
           key: str | None = API_KEY, tenant: str | None = TENANT_ID):
    """One request as FusionAuth.client(base_url, key, tenant) sends it."""
    hs: list[tuple[str, str]] = [("user-agent", "hackney/1.18.0")]
    if jwt is not None:
        hs.append(("authorization", "Bearer " + jwt))
    if key is not None:
        hs.append(("authorization", key))
    if tenant is not None:
        hs.append(("x-fusionauth-tenantid", tenant))
    data = None
    if body is not None:
        data = json.dumps(body, separators=(",", ":")).encode()
        hs.append(("content-type", "application/json"))
    return raw(method, path, headers=hs, body=data)


def show(resp) -> str:
    st, hs, body = resp
    return f"HTTP {st} Content-Type={header(hs, 'Content-Type')!r} body={body[:400]!r}"


def ok_empty(resp) -> None:
    """Legacy success: 200 with no body (Elixir yields {:ok, "", env})."""
    st, hs, body = resp
    assert st == 200, show(resp)
    assert body == b"", show(resp)
    ct = header(hs, "Content-Type") or ""
    assert not ct.startswith("application/json"), show(resp)


def ok_enable(resp) -> None:
    """Legacy enable: 200 with an empty body per the 1.25 docs. A server that serves both
    generations on the same path may answer the current API's first-method body
    {"recoveryCodes": [10]}; Elixir accepts either ({:ok, body, env})."""
    st, hs, body = resp
    assert st == 200, show(resp)
    if body:
        assert (header(hs, "Content-Type") or "").startswith("application/json"), show(resp)
        parsed = json.loads(body)
        assert set(parsed) <= {"recoveryCodes"} and len(parsed["recoveryCodes"]) == 10, show(resp)


def ok_json(resp) -> dict:
    st, hs, body = resp
    assert st == 200, show(resp)
    assert (header(hs, "Content-Type") or "").startswith("application/json"), show(resp)
    return json.loads(body)


def fails(resp, status: int) -> None:
    st, _hs, body = resp
    assert st == status, show(resp)
    assert body == b"", f"documented empty body: {show(resp)}"


def errors_400(resp) -> dict:
    st, hs, body = resp
    assert st == 400, show(resp)
    assert (header(hs, "Content-Type") or "").startswith("application/json"), show(resp)
    parsed = json.loads(body)
    assert parsed.get("generalErrors") or parsed.get("fieldErrors"), show(resp)
    return parsed


def status_of(user_id: str) -> int:
    """GET /api/two-factor/status?userId= with the API key: 242 = 2FA enabled."""
    st, _h, _b = raw("GET", f"/api/two-factor/status?userId={user_id}", headers=[("Authorization", API_KEY)])
    assert st in (200, 242, 404), st
    return st


def generate_secret() -> tuple[dict, Authenticator]:
    s = ok_json(elixir("GET", "/api/two-factor/secret"))
    return s, Authenticator(s["secretBase32Encoded"])


def legacy_enable_totp(user_id: str) -> Authenticator:
    s, auth = generate_secret()
    ok_enable(elixir("POST", f"/api/user/two-factor/{user_id}", {"code": auth.code(), "delivery": "None", "secret": s["secret"]}))
    assert status_of(user_id) == 242
    return auth


def current_enable_sms(user_id: str) -> tuple[str, Inbox]:
    """Gives the user an SMS method through the current API (to test the legacy sends)."""
    phone = new_phone()
    inbox = Inbox("sms", phone)
    st, _h, b = raw("POST", "/api/two-factor/send", headers=[("Authorization", API_KEY), ("Content-Type", "application/json")],
                    body=json.dumps({"userId": user_id, "method": "sms", "mobilePhone": phone}).encode())
    assert st == 200, (st, b)
    st, _h, b = raw("POST", f"/api/user/two-factor/{user_id}", headers=[("Authorization", API_KEY), ("Content-Type", "application/json")],
                    body=json.dumps({"method": "sms", "mobilePhone": phone, "code": inbox.code()}).encode())
    assert st == 200, (st, b)
    return phone, inbox


def start_login(user_id: str) -> str:
    st, _h, b = raw("POST", "/api/two-factor/start", headers=[("Authorization", API_KEY), ("Content-Type", "application/json")],
                    body=json.dumps({"userId": user_id}).encode())
    assert st == 200, (st, b)
    return json.loads(b)["twoFactorId"]


def login(two_factor_id: str, code: str):
    """The legacy TwoFactorLoginRequest {code, trustComputer, twoFactorId}."""
    return elixir("POST", "/api/two-factor/login", {"code": code, "trustComputer": False, "twoFactorId": two_factor_id})


# ---------------------------------------------------------------- generate_secret / generate_secret_for_jwt


def test_generate_secret() -> None:
    s = ok_json(elixir("GET", "/api/two-factor/secret"))
    assert set(s) == {"secret", "secretBase32Encoded"}, s
    assert SECRET_B64.match(s["secret"]) and SECRET_B32.match(s["secretBase32Encoded"]), s
    assert b32_of_secret(s["secret"]) == s["secretBase32Encoded"], s


def test_generate_secret_for_jwt_double_authorization() -> None:
    s = ok_json(elixir("GET", "/api/two-factor/secret", jwt=valid_jwt(new_user_id())))
    assert b32_of_secret(s["secret"]) == s["secretBase32Encoded"], s


def test_generate_secret_without_tenant_header() -> None:
    ok_json(elixir("GET", "/api/two-factor/secret", tenant=None))


def test_generate_secret_bad_key_is_401() -> None:
    fails(elixir("GET", "/api/two-factor/secret", key="not-a-key"), 401)
    fails(elixir("GET", "/api/two-factor/secret", key=None, tenant=None), 401)


# ---------------------------------------------------------------- enable_two_factor_by_user_id / by_jwt


def test_enable_two_factor_by_user_id_delivery_none() -> None:
    user = new_user_id()
    s, auth = generate_secret()
    fails(elixir("POST", f"/api/user/two-factor/{user}", {"code": auth.wrong_code(), "delivery": "None", "secret": s["secret"]}), 421)
    assert status_of(user) != 242
    ok_enable(elixir("POST", f"/api/user/two-factor/{user}", {"code": auth.code(), "delivery": "None", "secret": s["secret"]}))
    assert status_of(user) == 242
    # the enabled secret is the one sent: its next TOTP completes a login
    tf = start_login(user)
    st, _h, b = login(tf, auth.code())
    assert st == 200 and json.loads(b)["user"]["id"] == user, (st, b)


def test_enable_two_factor_by_user_id_with_base32_secret() -> None:
    """Legacy TwoFactorRequest also had secretBase32Encoded."""
    user = new_user_id()
    s, auth = generate_secret()
    ok_enable(elixir("POST", f"/api/user/two-factor/{user}", {"code": auth.code(), "delivery": "None", "secretBase32Encoded": s["secretBase32Encoded"]}))
    assert status_of(user) == 242


def test_enable_two_factor_by_user_id_invalid_is_400() -> None:
    user = new_user_id()
    errors_400(elixir("POST", f"/api/user/two-factor/{user}", {"code": "123456", "delivery": "Pigeon", "secret": "SP2m6K2Dg/x2JN9DyQvZ"}))
    errors_400(elixir("POST", f"/api/user/two-factor/{user}", {"delivery": "None", "secret": "SP2m6K2Dg/x2JN9DyQvZ"}))
    errors_400(elixir("POST", f"/api/user/two-factor/{user}", {"code": "123456", "delivery": "None"}))
    assert status_of(user) != 242


def test_enable_two_factor_by_jwt_double_authorization() -> None:
    user = new_user_id()
    s, auth = generate_secret()
    ok_enable(elixir("POST", "/api/user/two-factor", {"code": auth.code(), "delivery": "None", "secret": s["secret"]}, jwt=valid_jwt(user)))
    assert status_of(user) == 242


def test_enable_two_factor_by_jwt_wrong_code_is_421() -> None:
    user = new_user_id()
    s, auth = generate_secret()
    fails(elixir("POST", "/api/user/two-factor", {"code": auth.wrong_code(), "delivery": "None", "secret": s["secret"]}, jwt=valid_jwt(user)), 421)
    assert status_of(user) != 242


def test_enable_by_jwt_bearer_only() -> None:
    """The current API's JWT enable: Bearer and no API key."""
    user = new_user_id()
    s, auth = generate_secret()
    ok_enable(elixir("POST", "/api/user/two-factor", {"method": "authenticator", "code": auth.code(), "secret": s["secret"]},
                     jwt=valid_jwt(user), key=None))
    assert status_of(user) == 242


def test_enable_text_message_via_send_to_mobile_phone() -> None:
    """send_two_factor_code_to_mobile_phone(mobile_phone, secret), then
    enable_two_factor_by_user_id(code, "TextMessage", secret) with the texted code."""
    user = new_user_id()
    s, _auth = generate_secret()
    phone = new_phone()
    inbox = Inbox("sms", phone)
    ok_empty(elixir("POST", "/api/two-factor/send", {"mobilePhone": phone, "secret": s["secret"]}))
    code = inbox.code()
    fails(elixir("POST", f"/api/user/two-factor/{user}", {"code": other_code(code), "delivery": "TextMessage", "secret": s["secret"]}), 421)
    ok_enable(elixir("POST", f"/api/user/two-factor/{user}", {"code": code, "delivery": "TextMessage", "secret": s["secret"]}))
    assert status_of(user) == 242
    # send_two_factor_code_by_user_id now texts that user's phone
    ok_empty(elixir("POST", "/api/two-factor/send", {"userId": user}))
    inbox.code()


def test_send_to_mobile_phone_invalid_phone_is_400() -> None:
    s, _ = generate_secret()
    errors_400(elixir("POST", "/api/two-factor/send", {"mobilePhone": "not-a-phone", "secret": s["secret"]}))


# ---------------------------------------------------------------- disable_two_factor_by_user_id / by_jwt


def test_disable_two_factor_by_user_id_query_code() -> None:
    user = new_user_id()
    auth = legacy_enable_totp(user)
    fails(elixir("DELETE", f"/api/user/two-factor/{user}?code={auth.wrong_code()}"), 421)
    assert status_of(user) == 242
    ok_empty(elixir("DELETE", f"/api/user/two-factor/{user}?code={auth.code()}"))
    assert status_of(user) != 242


def test_disable_two_factor_by_user_id_unknown_user_is_404() -> None:
    fails(elixir("DELETE", f"/api/user/two-factor/{new_user_id()}?code=123456"), 404)


def test_disable_two_factor_by_jwt_double_authorization() -> None:
    user = new_user_id()
    auth = legacy_enable_totp(user)
    fails(elixir("DELETE", f"/api/user/two-factor?code={auth.wrong_code()}", jwt=valid_jwt(user)), 421)
    assert status_of(user) == 242
    ok_empty(elixir("DELETE", f"/api/user/two-factor?code={auth.code()}", jwt=valid_jwt(user)))
    assert status_of(user) != 242


def test_disable_legacy_official_client_user_id_query_parameter() -> None:
    """Official clients <= 1.25 sent DELETE /api/user/two-factor?userId=&code= (reference §2.1 notes)."""
    user = new_user_id()
    auth = legacy_enable_totp(user)
    ok_empty(raw("DELETE", f"/api/user/two-factor?userId={user}&code={auth.code()}", headers=[("Authorization", API_KEY)]))
    assert status_of(user) != 242


# ---------------------------------------------------------------- sends


def test_send_two_factor_code_by_user_id() -> None:
    user = new_user_id()
    phone, inbox = current_enable_sms(user)
    ok_empty(elixir("POST", "/api/two-factor/send", {"userId": user}))
    msg = inbox.message()
    assert msg["to"] == phone


def test_send_two_factor_code_by_jwt_double_authorization() -> None:
    user = new_user_id()
    phone, inbox = current_enable_sms(user)
    ok_empty(elixir("POST", "/api/two-factor/send", {}, jwt=valid_jwt(user)))
    assert inbox.message()["to"] == phone


def test_send_two_factor_code_to_complete_login_then_login() -> None:
    """send_two_factor_code_to_complete_login(two_factor_id): POST /api/two-factor/send/{id} with
    body {} (Tesla encodes the empty map), API key sent although not needed."""
    user = new_user_id()
    _phone, inbox = current_enable_sms(user)
    tf = start_login(user)
    ok_empty(elixir("POST", f"/api/two-factor/send/{tf}", {}))
    code = inbox.code()
    fails(login(tf, other_code(code)), 421)
    st, _h, b = login(tf, code)
    assert st == 200 and json.loads(b)["user"]["id"] == user, (st, b)
    fails(login(tf, code), 404)


def test_send_by_user_id_unknown_user() -> None:
    st, _h, b = elixir("POST", "/api/two-factor/send", {"userId": new_user_id()})
    assert st in (400, 404), (st, b)
    if st == 400:
        errors_400((st, _h, b))
    else:
        assert b == b""


# ---------------------------------------------------------------- auth, tenants


def test_other_tenant_key_cannot_disable() -> None:
    user = new_user_id()
    auth = legacy_enable_totp(user)
    fails(elixir("DELETE", f"/api/user/two-factor/{user}?code={auth.code()}", key=OTHER_KEY, tenant=None), 404)
    assert status_of(user) == 242


def invalid_tenant_id(resp) -> None:
    """A tenant header that is not the credentials' tenant: 400 [InvalidTenantId] (reference §1,
    "404 or a validation error"); Elixir yields {:error, body, env} with the Errors object."""
    parsed = errors_400(resp)
    assert [e["code"] for e in parsed.get("generalErrors", [])] == ["[InvalidTenantId]"], show(resp)
    assert not parsed.get("fieldErrors"), show(resp)


def test_tenant_header_mismatch_is_refused() -> None:
    from conftest import OTHER_TENANT_ID

    user = new_user_id()
    auth = legacy_enable_totp(user)
    code = auth.code()
    token = valid_jwt(user)
    for tenant in (OTHER_TENANT_ID, new_user_id(), "not-a-tenant"):
        invalid_tenant_id(elixir("DELETE", f"/api/user/two-factor/{user}?code={code}", tenant=tenant))
        invalid_tenant_id(elixir("GET", "/api/two-factor/secret", tenant=tenant))
        # *_by_jwt: Bearer + key, the key names the tenant and the header must agree
        invalid_tenant_id(elixir("DELETE", f"/api/user/two-factor?code={code}", jwt=token, tenant=tenant))
        # credentials first: a bad key is an empty 401 whatever the header says
        fails(elixir("GET", "/api/two-factor/secret", key="sk_not_a_real_key_0123456789", tenant=tenant), 401)
    assert status_of(user) == 242


# ---------------------------------------------------------------- JWT verification: forged tokens change nothing

FORGED = [
    "expired",
    "not_yet_valid",
    "wrong_secret",
    "tampered_payload",
    "alg_none",
    "alg_none_with_sig",
    "alg_None_caps",
    "rs256_header_hmac_signature",
    "rs256_unknown_key",
    "hs512_same_secret",
    "no_exp",
    "garbage",
]


def _subs(token: str, fallback: str) -> list[str]:
    try:
        payload = token.split(".")[1]
        sub = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]
        return sorted({sub, fallback})
    except Exception:  # noqa: BLE001 - garbage tokens
        return [fallback]


@pytest.mark.parametrize("kind", FORGED)
@pytest.mark.parametrize("with_api_key", [True, False], ids=["bearer+key", "bearer-only"])
def test_enable_by_jwt_with_forged_token_is_401(kind: str, with_api_key: bool) -> None:
    user = new_user_id()
    token = forged_jwts(user)[kind]
    s, auth = generate_secret()
    resp = elixir("POST", "/api/user/two-factor", {"code": auth.code(), "delivery": "None", "secret": s["secret"]},
                  jwt=token, key=API_KEY if with_api_key else None)
    fails(resp, 401)
    for u in _subs(token, user):
        assert status_of(u) != 242, f"{kind}: 2FA got enabled for {u}"


@pytest.mark.parametrize("kind", FORGED)
def test_disable_by_jwt_with_forged_token_is_401(kind: str) -> None:
    user = new_user_id()
    auth = legacy_enable_totp(user)
    token = forged_jwts(user)[kind]
    fails(elixir("DELETE", f"/api/user/two-factor?code={auth.code()}", jwt=token), 401)
    assert status_of(user) == 242, f"{kind}: 2FA got disabled"


@pytest.mark.parametrize("kind", ["expired", "wrong_secret", "alg_none", "rs256_header_hmac_signature", "rs256_unknown_key"])
def test_send_by_jwt_with_forged_token_is_401(kind: str) -> None:
    user = new_user_id()
    _phone, inbox = current_enable_sms(user)
    fails(elixir("POST", "/api/two-factor/send", {}, jwt=forged_jwts(user)[kind]), 401)
    inbox.nothing_new()


@pytest.mark.parametrize("kind", ["expired", "wrong_secret", "alg_none", "rs256_header_hmac_signature", "rs256_unknown_key", "hs512_same_secret"])
def test_generate_secret_bearer_only_forged_is_401(kind: str) -> None:
    fails(elixir("GET", "/api/two-factor/secret", jwt=forged_jwts(new_user_id())[kind], key=None), 401)


def test_valid_jwt_for_another_tenant_cannot_touch_this_tenants_user() -> None:
    """A token signed by tenant A's key whose tid is tenant B, for a user of tenant A, without
    an API key: a JWT acts only in its key's tenant, and a tid that disagrees is refused."""
    from conftest import OTHER_TENANT_ID, make_jwt

    user = new_user_id()
    auth = legacy_enable_totp(user)
    token = make_jwt(claims_for(user, tenant_id=OTHER_TENANT_ID))
    # alone, and with tenant A's header, the tid disagrees with the key's tenant
    invalid_tenant_id(elixir("DELETE", f"/api/user/two-factor?code={auth.code()}", jwt=token, key=None, tenant=None))
    invalid_tenant_id(elixir("DELETE", f"/api/user/two-factor?code={auth.code()}", jwt=token, key=None))
    assert status_of(user) == 242


# ---------------------------------------------------------------- RS256 keys and HS/RS confusion


@needs_rs256
def test_enable_by_jwt_with_trusted_rs256_token() -> None:
    user = new_user_id()
    s, auth = generate_secret()
    ok_enable(elixir("POST", "/api/user/two-factor", {"code": auth.code(), "delivery": "None", "secret": s["secret"]},
                     jwt=trusted_rs256_jwt(user)))
    assert status_of(user) == 242


@needs_rs256
def test_generate_secret_for_jwt_with_trusted_rs256_token() -> None:
    ok_json(elixir("GET", "/api/two-factor/secret", jwt=trusted_rs256_jwt(new_user_id()), key=None))


@needs_rs256
def test_expired_rs256_token_is_401() -> None:
    fails(elixir("GET", "/api/two-factor/secret", jwt=trusted_rs256_jwt(new_user_id(), ttl=-60), key=None), 401)


@needs_rs256
@pytest.mark.parametrize("kind", ["hs256_keyed_with_rs_public_pem", "hs256_keyed_with_rs_public_pem_stripped",
                                  "rs256_header_hmac_with_rs_public_pem"])
def test_hs_rs_confusion_with_the_servers_public_key_is_401(kind: str) -> None:
    user = new_user_id()
    token = rs_confusion_jwts(user)[kind]
    fails(elixir("GET", "/api/two-factor/secret", jwt=token, key=None), 401)
    s, auth = generate_secret()
    fails(elixir("POST", "/api/user/two-factor", {"code": auth.code(), "delivery": "None", "secret": s["secret"]}, jwt=token), 401)
    assert status_of(user) != 242
