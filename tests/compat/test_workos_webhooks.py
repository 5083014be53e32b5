"""WorkOS-format webhooks, verified by the official Python SDK (workos==10.6.0, unmodified).

A flow through the API makes events; the running mfad delivers them to a loopback receiver
(webhook_receiver.py); every delivery's raw body and WorkOS-Signature header must be accepted
by `client.webhooks.verify_event`, and a tampered body, a wrong secret and a timestamp outside
the 180 s tolerance (either way) refused.

Configured through the environment (tests/compat/run.sh sets these): MFAD_URL,
MFAD_API_KEY, WEBHOOK_RECEIVER_URL, WEBHOOK_WORKOS_PATH, WEBHOOK_WORKOS_SECRET.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest
import workos.webhooks._resource as webhooks_resource
from workos import WorkOSClient


def _env(name: str) -> str:
    v = os.environ.get(name)
    if not v:
        raise RuntimeError(f"environment variable {name} must be set (see tests/compat/run.sh)")
    return v


MFAD_URL = _env("MFAD_URL").rstrip("/")
API_KEY = _env("MFAD_API_KEY")
RECEIVER = _env("WEBHOOK_RECEIVER_URL").rstrip("/")
PATH = _env("WEBHOOK_WORKOS_PATH")
SECRET = _env("WEBHOOK_WORKOS_SECRET")

FLOW = [
    "authentication_factor.created",
    "authentication_challenge.created",
    "authentication.mfa_failed",
    "authentication.mfa_succeeded",
    "authentication_factor.deleted",
]

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get_json(url: str, headers: dict[str, str] | None = None) -> Any:
    with NO_PROXY.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def _factor_of(body: dict) -> str | None:
    d = body.get("data") or {}
    if d.get("object") == "authentication_factor":
        return d.get("id")
    return (d.get("authentication_factor") or {}).get("id") or d.get("authentication_factor_id")


def _deliveries_of(factor_id: str, timeout: float = 60.0) -> list[dict]:
    """The receiver's deliveries about `factor_id`, once every FLOW event has arrived."""
    deadline = time.monotonic() + timeout
    q = urllib.parse.urlencode({"path": PATH})
    while True:
        mine = []
        for d in _get_json(f"{RECEIVER}/_test/deliveries?{q}"):
            raw = base64.b64decode(d["body_b64"])
            body = json.loads(raw)
            if _factor_of(body) == factor_id:
                mine.append({"headers": d["headers"], "raw": raw, "body": body})
        names = {d["body"]["event"] for d in mine}
        if all(n in names for n in FLOW):
            return mine
        assert time.monotonic() < deadline, f"within {timeout} s only {sorted(names)} arrived for {factor_id}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def client() -> WorkOSClient:
    return WorkOSClient(api_key=API_KEY, base_url=MFAD_URL)


@pytest.fixture(scope="module")
def delivered(client: WorkOSClient) -> list[dict]:
    mfa = client.multi_factor_auth
    f = mfa.enroll_factor(type="generic_otp")
    ch = mfa.challenge_factor(f.id)
    wrong = str((int(ch.code) + 137_911) % 1_000_000).zfill(6)
    assert mfa.verify_challenge(ch.id, code=wrong).valid is False
    assert mfa.verify_challenge(ch.id, code=ch.code).valid is True
    mfa.delete_factor(f.id)
    return _deliveries_of(f.id)


def _t(d: dict) -> int:
    head = d["headers"]["workos-signature"]
    return int(head.split(", ")[0].removeprefix("t="))


def test_verify_event_accepts_every_delivery(client: WorkOSClient, delivered: list[dict]) -> None:
    first = {}
    for d in delivered:
        first.setdefault(d["body"]["event"], d)
        sig = d["headers"]["workos-signature"]
        event = client.webhooks.verify_event(event_body=d["raw"], event_signature=sig, secret=SECRET)
        built = event.to_dict() if hasattr(event, "to_dict") else event.raw_data
        assert built["id"] == d["body"]["id"]
        assert abs(time.time() * 1000 - _t(d)) < 60_000, "t is milliseconds near now"
    assert list(first) == FLOW, "per-endpoint order"
    # WorkOS's own events build as their typed models.
    ok = client.webhooks.verify_event(
        event_body=first["authentication.mfa_succeeded"]["raw"],
        event_signature=first["authentication.mfa_succeeded"]["headers"]["workos-signature"],
        secret=SECRET,
    )
    assert type(ok).__name__ == "AuthenticationMFASucceeded" and ok.data.status == "succeeded"
    failed = client.webhooks.verify_event(
        event_body=first["authentication.mfa_failed"]["raw"],
        event_signature=first["authentication.mfa_failed"]["headers"]["workos-signature"],
        secret=SECRET,
    )
    assert type(failed).__name__ == "AuthenticationMFAFailed" and failed.data.error.code == "invalid_code"


def test_the_body_is_the_event_as_listed(delivered: list[dict]) -> None:
    for d in delivered:
        q = urllib.parse.urlencode({"events": d["body"]["event"], "limit": 100})
        page = _get_json(f"{MFAD_URL}/events?{q}", {"Authorization": f"Bearer {API_KEY}"})
        listed = [e for e in page["data"] if e["id"] == d["body"]["id"]]
        assert listed == [d["body"]]


def test_verify_event_refuses_tampered_bodies_and_wrong_secrets(client: WorkOSClient, delivered: list[dict]) -> None:
    for d in delivered:
        sig = d["headers"]["workos-signature"]
        tampered = d["raw"].replace(b'"event":"', b'"event":"x', 1)
        assert tampered != d["raw"]
        with pytest.raises(ValueError, match="Signature hash does not match"):
            client.webhooks.verify_event(event_body=tampered, event_signature=sig, secret=SECRET)
        with pytest.raises(ValueError, match="Signature hash does not match"):
            client.webhooks.verify_event(event_body=d["raw"], event_signature=sig, secret=SECRET + "x")


@pytest.mark.parametrize("skew", [181, -181])
def test_verify_event_refuses_a_timestamp_outside_the_tolerance(
    client: WorkOSClient, delivered: list[dict], monkeypatch: pytest.MonkeyPatch, skew: int
) -> None:
    d = delivered[0]
    sig = d["headers"]["workos-signature"]
    signed_at = _t(d) / 1000
    # Judged 179 s away it is accepted, 181 s away refused: the limit is the timestamp's age.
    monkeypatch.setattr(webhooks_resource.time, "time", lambda: signed_at + (179 if skew > 0 else -179))
    client.webhooks.verify_event(event_body=d["raw"], event_signature=sig, secret=SECRET)
    monkeypatch.setattr(webhooks_resource.time, "time", lambda: signed_at + skew)
    with pytest.raises(ValueError, match="Timestamp outside the tolerance zone"):
        client.webhooks.verify_event(event_body=d["raw"], event_signature=sig, secret=SECRET)
