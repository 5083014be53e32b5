// WorkOS-format webhooks, verified by the official Node SDK (@workos-inc/node 11.0.0,
// unmodified): a flow through the API makes events; the running mfad delivers them to a
// loopback receiver (webhook_receiver.py); every delivery's raw body and WorkOS-Signature
// header must be accepted by `workos.webhooks.constructEvent`, and a tampered body, a wrong
// secret and a stale timestamp refused.
//
// Configured through the environment (tests/compat/run.sh sets these):
//   MFAD_URL, MFAD_API_KEY      the server and tenant acme's key
//   WEBHOOK_RECEIVER_URL        the receiver (GET /_test/deliveries)
//   WEBHOOK_WORKOS_PATH         the path acme's WorkOS-format endpoint posts to
//   WEBHOOK_WORKOS_SECRET       that endpoint's signing secret (from `mfad webhook add`)
//
// Run: node --test workos_webhooks.test.mjs

import { describe, it, before, mock } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { WorkOS } from '@workos-inc/node';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} must be set (see tests/compat/run.sh)`);
  return v;
}

const MFAD_URL = env('MFAD_URL').replace(/\/+$/, '');
const API_KEY = env('MFAD_API_KEY');
const RECEIVER = env('WEBHOOK_RECEIVER_URL').replace(/\/+$/, '');
const PATH = env('WEBHOOK_WORKOS_PATH');
const SECRET = env('WEBHOOK_WORKOS_SECRET');

const u = new URL(MFAD_URL);
const workos = new WorkOS(API_KEY, { apiHostname: u.hostname, port: Number(u.port || 80), https: false });
const mfa = workos.multiFactorAuth;

const FLOW = [
  'authentication_factor.created',
  'authentication_challenge.created',
  'authentication.mfa_failed',
  'authentication.mfa_succeeded',
  'authentication_factor.deleted',
];

// The factor a delivered event is about (the factor itself, a challenge of it, an attempt on it).
function factorOf(body) {
  const d = body.data ?? {};
  if (d.object === 'authentication_factor') return d.id;
  return d.authentication_factor?.id ?? d.authentication_factor_id;
}

async function deliveries() {
  const res = await fetch(`${RECEIVER}/_test/deliveries?path=${encodeURIComponent(PATH)}`);
  assert.equal(res.status, 200);
  return (await res.json()).map((d) => {
    const raw = Buffer.from(d.body_b64, 'base64').toString('utf8');
    return { headers: d.headers, raw, body: JSON.parse(raw) };
  });
}

// Waits (bounded) until the receiver holds a delivery of every FLOW event of `factorId`;
// returns that factor's deliveries in arrival order.
async function deliveriesOf(factorId, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const mine = (await deliveries()).filter((d) => factorOf(d.body) === factorId);
    const names = new Set(mine.map((d) => d.body.event));
    if (FLOW.every((n) => names.has(n))) return mine;
    if (Date.now() > deadline) {
      assert.fail(`within ${timeoutMs} ms the receiver got only ${[...names].join(', ') || 'nothing'} for ${factorId}`);
    }
    await sleep(200);
  }
}

async function listed(name, id) {
  const q = new URLSearchParams({ events: name, limit: '100', order: 'desc' });
  const res = await fetch(`${MFAD_URL}/events?${q}`, { headers: { Authorization: `Bearer ${API_KEY}` } });
  assert.equal(res.status, 200);
  const page = await res.json();
  return page.data.find((e) => e.id === id);
}

function tamper(raw) {
  // A changed value (the event's name), the rest byte-identical.
  const out = raw.replace('"event":"', '"event":"x');
  assert.notEqual(out, raw);
  return out;
}

async function rejects(promise, pattern, what) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.name, 'SignatureVerificationException', `${what}: ${e}`);
    assert.match(e.message, pattern, what);
    return true;
  });
}

describe('WorkOS-format webhooks (webhooks.constructEvent)', () => {
  let factor;
  let mine;

  before(async () => {
    factor = await mfa.enrollFactor({ type: 'generic_otp' });
    const ch = await mfa.challengeFactor({ authenticationFactorId: factor.id });
    const wrong = String((Number(ch.code) + 137_911) % 1_000_000).padStart(6, '0');
    assert.equal((await mfa.verifyChallenge({ authenticationChallengeId: ch.id, code: wrong })).valid, false);
    assert.equal((await mfa.verifyChallenge({ authenticationChallengeId: ch.id, code: ch.code })).valid, true);
    await mfa.deleteFactor(factor.id);
    mine = await deliveriesOf(factor.id);
  });

  it('delivers every event of the flow, in order, with the headers WorkOS sends', () => {
    const ids = [...new Set(mine.map((d) => d.body.id))];
    assert.deepEqual([...ids].sort(), ids, 'per-endpoint order: ids arrive in creation order');
    const firstOf = new Map();
    for (const d of mine) if (!firstOf.has(d.body.event)) firstOf.set(d.body.event, d);
    assert.deepEqual([...firstOf.keys()], FLOW);
    for (const d of mine) {
      assert.match(d.headers['content-type'], /^application\/json/);
      assert.match(d.headers['user-agent'], /^mfad-webhooks\/\d+\.\d+\.\d+/);
      const sig = d.headers['workos-signature'];
      assert.match(sig, /^t=\d{13}, v1=[0-9a-f]{64}$/, 'WorkOS-Signature: t=<ms>, v1=<hex>');
      const t = Number(sig.slice(2, sig.indexOf(',')));
      assert.ok(Math.abs(Date.now() - t) < 60_000, `t is milliseconds near now: ${t}`);
    }
  });

  it('constructEvent accepts every delivery, and the body is the event as GET /events lists it', async () => {
    for (const d of mine) {
      const event = await workos.webhooks.constructEvent({
        payload: d.raw,
        sigHeader: d.headers['workos-signature'],
        secret: SECRET,
      });
      assert.equal(event.id, d.body.id);
      assert.equal(event.event, d.body.event);
      assert.deepEqual(d.body, await listed(d.body.event, d.body.id), `${d.body.event} as listed`);
    }
    const ok = await workos.webhooks.constructEvent({
      payload: mine.find((d) => d.body.event === 'authentication.mfa_succeeded').raw,
      sigHeader: mine.find((d) => d.body.event === 'authentication.mfa_succeeded').headers['workos-signature'],
      secret: SECRET,
    });
    // Through the SDK's authentication event deserializer.
    assert.equal(ok.data.type, 'mfa');
    assert.equal(ok.data.status, 'succeeded');
  });

  it('refuses a tampered body and a wrong secret', async () => {
    for (const d of mine) {
      const sigHeader = d.headers['workos-signature'];
      await rejects(
        workos.webhooks.constructEvent({ payload: tamper(d.raw), sigHeader, secret: SECRET }),
        /Signature hash does not match/,
        'tampered body',
      );
      await rejects(
        workos.webhooks.constructEvent({ payload: d.raw, sigHeader, secret: `${SECRET}x` }),
        /Signature hash does not match/,
        'wrong secret',
      );
    }
  });

  it('refuses a delivery judged after the 180 s tolerance, and accepts it just before', async () => {
    const d = mine[0];
    const t = Number(d.headers['workos-signature'].slice(2, d.headers['workos-signature'].indexOf(',')));
    const args = { payload: d.raw, sigHeader: d.headers['workos-signature'], secret: SECRET };
    const clock = mock.method(Date, 'now', () => t + 179_000);
    try {
      assert.equal((await workos.webhooks.constructEvent(args)).id, d.body.id);
      clock.mock.mockImplementation(() => t + 181_000);
      await rejects(workos.webhooks.constructEvent(args), /Timestamp outside the tolerance zone/, 'stale');
    } finally {
      clock.mock.restore();
    }
  });
});
