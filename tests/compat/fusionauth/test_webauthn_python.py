"""FusionAuth's WebAuthn API through the official Python client (fusionauth-client 1.69.0,
unmodified), with soft-webauthn's software authenticator: registration, re-authentication
assertion, passkey login, listing and deletion, import of a key made elsewhere (and the
publicKey PEM shown back), and refusals in FusionAuth's Errors shape.

run.sh sets the acme tenant's relying party with `mfad webauthn config --tenant acme
--rp-id localhost --origin http://localhost`. soft-webauthn never sets the user-verified
flag, so these ceremonies use the `general` workflow (user verification preferred); the
`bootstrap` one, which requires it, is refused with the authenticator's data named.
"""

from __future__ import annotations

import base64
import copy
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from fusionauth.fusionauth_client import FusionAuthClient
from soft_webauthn import SoftWebauthnDevice

from conftest import API_KEY, MFAD_URL, OTHER_KEY

ORIGIN = "http://localhost"
RP_ID = "localhost"


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode("ascii").rstrip("=")


def unb64url(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def to_browser(options: dict) -> dict:
    """FusionAuth's options (base64url strings) as the browser API takes them (bytes)."""
    o = copy.deepcopy(options)
    o["challenge"] = unb64url(o["challenge"])
    if "user" in o:
        o["user"]["id"] = unb64url(o["user"]["id"])
    return {"publicKey": o}


def to_fusionauth(credential: dict) -> dict:
    """The browser's PublicKeyCredential (bytes) as FusionAuth's clients send it."""
    return {
        "id": credential["id"].decode("ascii").rstrip("=") if isinstance(credential["id"], bytes) else credential["id"],
        "type": credential["type"],
        "clientExtensionResults": {},
        "response": {k: b64url(v) for k, v in credential["response"].items() if v is not None},
    }


def spki_pem(device) -> str:
    """The device's public key as FusionAuth carries it: PEM SubjectPublicKeyInfo."""
    return device.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def ok(r, status=200):
    assert r.status == status, f"HTTP {r.status}: {r.response.content[:400]!r}"
    return r.success_response


def field_codes(r) -> dict:
    assert r.status == 400, f"HTTP {r.status}: {r.response.content[:400]!r}"
    return {k: [e["code"] for e in v] for k, v in r.error_response["fieldErrors"].items()}


@pytest.fixture(scope="module")
def fa() -> FusionAuthClient:
    return FusionAuthClient(API_KEY, MFAD_URL)


def register(fa, device, user_id, workflow="general"):
    start = ok(fa.start_web_authn_registration({
        "userId": user_id, "workflow": workflow, "displayName": "Richard",
        "name": "richard@piedpiper.com", "userAgent": "soft-webauthn",
    }))
    options = start["options"]
    assert options["rp"]["id"] == RP_ID
    algs = {p["alg"] for p in options["pubKeyCredParams"]}
    assert {-7, -257} <= algs, algs
    attestation = device.create(to_browser(options), ORIGIN)
    return fa.complete_web_authn_registration({
        "credential": to_fusionauth(attestation), "origin": ORIGIN, "rpId": RP_ID, "userId": user_id,
    })


def assertion(fa, device, user_id, state=None):
    start = ok(fa.start_web_authn_login({
        "userId": user_id, "workflow": "general",
        "applicationId": str(uuid.uuid4()), "state": state or {},
    }))
    return to_fusionauth(device.get(to_browser(start["options"]), ORIGIN))


def test_register_assert_login_list_delete(fa):
    device = SoftWebauthnDevice()
    user_id = str(uuid.uuid4())
    done = ok(register(fa, device, user_id))
    cred = done["credential"]
    assert cred["userId"] == user_id
    assert cred["relyingPartyId"] == RP_ID
    assert cred["algorithm"] == -7
    assert cred["credentialId"] == b64url(device.credential_id)
    assert cred["signCount"] == 0
    assert cred["publicKey"] == spki_pem(device)

    listed = ok(fa.retrieve_web_authn_credentials_for_user(user_id))["credentials"]
    assert [c["id"] for c in listed] == [cred["id"]]
    assert ok(fa.retrieve_web_authn_credential(cred["id"]))["credential"]["id"] == cred["id"]

    # Re-authentication: the assertion, without a login.
    asserted = ok(fa.complete_web_authn_assertion({"credential": assertion(fa, device, user_id), "origin": ORIGIN, "rpId": RP_ID}))
    assert asserted["credential"]["id"] == cred["id"]
    assert asserted["credential"]["signCount"] == 1

    # Passkey login: the two-factor login's response, with the start's state.
    login = ok(fa.complete_web_authn_login({"credential": assertion(fa, device, user_id, {"to": "/x"}), "origin": ORIGIN, "rpId": RP_ID}))
    assert login["user"]["id"] == user_id
    assert login["state"] == {"to": "/x"}
    assert login["token"].count(".") == 2

    ok(fa.delete_web_authn_credential(cred["id"]))
    assert fa.retrieve_web_authn_credential(cred["id"]).status == 404
    assert ok(fa.retrieve_web_authn_credentials_for_user(user_id))["credentials"] == []

    # Delete-all, for a user with a passkey again.
    ok(register(fa, SoftWebauthnDevice(), user_id))
    ok(fa.delete_web_authn_credentials_for_user(user_id))
    assert ok(fa.retrieve_web_authn_credentials_for_user(user_id))["credentials"] == []


def test_refusals_are_fusionauth_errors(fa):
    device = SoftWebauthnDevice()
    user_id = str(uuid.uuid4())
    # bootstrap requires user verification, which soft-webauthn does not perform.
    r = register(fa, device, user_id, workflow="bootstrap")
    assert field_codes(r) == {"credential.response.authenticatorData": ["[userVerificationRequired]credential.response.authenticatorData"]}
    ok(register(fa, device, user_id))

    # A replayed assertion.
    signed = assertion(fa, device, user_id)
    ok(fa.complete_web_authn_assertion({"credential": signed, "origin": ORIGIN, "rpId": RP_ID}))
    r = fa.complete_web_authn_assertion({"credential": signed, "origin": ORIGIN, "rpId": RP_ID})
    assert "credential.response.clientDataJSON" in field_codes(r)

    # An origin or rp id off the tenant's allow-list, asserted by the caller.
    r = fa.complete_web_authn_assertion({"credential": assertion(fa, device, user_id), "origin": "https://evil.example", "rpId": RP_ID})
    assert field_codes(r) == {"origin": ["[invalid]origin"]}
    r = fa.complete_web_authn_assertion({"credential": assertion(fa, device, user_id), "origin": ORIGIN, "rpId": "evil.example"})
    assert field_codes(r) == {"rpId": ["[invalid]rpId"]}

    # Another tenant's key sees none of it.
    other = FusionAuthClient(OTHER_KEY, MFAD_URL)
    listed = ok(fa.retrieve_web_authn_credentials_for_user(user_id))["credentials"]
    assert other.retrieve_web_authn_credential(listed[0]["id"]).status == 404
    assert ok(other.retrieve_web_authn_credentials_for_user(user_id))["credentials"] == []

    # Required fields.
    r = fa.start_web_authn_registration({})
    assert {"userId", "workflow", "displayName"} <= set(field_codes(r))


def test_import_then_assert(fa):
    # A passkey made elsewhere: soft-webauthn's key, never registered with mfad.
    user_id = str(uuid.uuid4())
    device = SoftWebauthnDevice()
    device.cred_init(RP_ID, b"imported")
    device.sign_count = 41
    imported = {
        "algorithm": -7, "credentialId": b64url(device.credential_id), "publicKey": spki_pem(device),
        "signCount": 41, "userId": user_id, "name": "imported@piedpiper.com",
    }
    r = fa.import_web_authn_credential({"credentials": [imported], "validateDbConstraints": True})
    assert r.status == 200, f"HTTP {r.status}: {r.response.content[:400]!r}"
    assert r.response.content == b""

    listed = ok(fa.retrieve_web_authn_credentials_for_user(user_id))["credentials"]
    assert len(listed) == 1
    assert listed[0]["publicKey"] == spki_pem(device)
    assert listed[0]["signCount"] == 41
    got = ok(fa.retrieve_web_authn_credential(listed[0]["id"]))["credential"]
    assert got["publicKey"] == spki_pem(device)

    asserted = ok(fa.complete_web_authn_assertion({"credential": assertion(fa, device, user_id), "origin": ORIGIN, "rpId": RP_ID}))
    assert asserted["credential"]["id"] == listed[0]["id"]
    assert asserted["credential"]["signCount"] == 42

    # A PEM that is no key, and the same credential again: refused, in FusionAuth's shape.
    bad = dict(imported, credentialId=b64url(b"another"), publicKey="-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    r = fa.import_web_authn_credential({"credentials": [bad]})
    assert field_codes(r) == {"credentials[0].publicKey": ["[invalid]credentials[0].publicKey"]}
    r = fa.import_web_authn_credential({"credentials": [imported]})
    assert field_codes(r) == {"credential.id": ["[duplicate]credential.id"]}

    # Another tenant's key sees none of it.
    other = FusionAuthClient(OTHER_KEY, MFAD_URL)
    assert other.retrieve_web_authn_credential(listed[0]["id"]).status == 404
    assert ok(other.retrieve_web_authn_credentials_for_user(user_id))["credentials"] == []
