// Client-compatibility tests: the official WorkOS Node SDK (@workos-inc/node 11.0.0,
// unmodified) driven as a black box against a running mfad server.
//
// Configured only through the environment (tests/compat/run.sh sets these):
//   MFAD_URL               e.g. http://127.0.0.1:18080
//   MFAD_API_KEY           a valid sk_... key of tenant A
//   MFAD_OTHER_TENANT_KEY  a valid sk_... key of tenant B
//   TWILIO_STANDIN_URL     the local Twilio stand-in (to read texted codes)
//
// Run: node --test workos_node.test.mjs

import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  WorkOS,
  NotFoundException,
  UnauthorizedException,
  UnprocessableEntityException,
  GenericServerException,
  BadRequestException,
  RateLimitExceededException,
} from '@workos-inc/node';
import jsQRModule from 'jsqr';
import pngjs from 'pngjs';
import * as OTPAuth from 'otpauth';

const jsQR = typeof jsQRModule === 'function' ? jsQRModule : jsQRModule.default;
const { PNG } = pngjs;

// ---------------------------------------------------------------- config

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} must be set (see tests/compat/run.sh)`);
  return v;
}

const MFAD_URL = env('MFAD_URL').replace(/\/+$/, '');
const API_KEY = env('MFAD_API_KEY');
const OTHER_KEY = env('MFAD_OTHER_TENANT_KEY');
const TWILIO_URL = env('TWILIO_STANDIN_URL').replace(/\/+$/, '');
const TWILIO_FROM = process.env.MFAD_TWILIO_FROM || '+15005550006';

function sdk(apiKey) {
  const u = new URL(MFAD_URL);
  const https = u.protocol === 'https:';
  return new WorkOS(apiKey, {
    apiHostname: u.hostname,
    port: u.port ? Number(u.port) : https ? 443 : 80,
    https,
    // default maxRetries (3): the SDK sends Idempotency-Key headers as in production use
  });
}

const workos = sdk(API_KEY);
const other = sdk(OTHER_KEY);
const mfa = workos.multiFactorAuth;

// ---------------------------------------------------------------- helpers

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const FACTOR_ID = /^auth_factor_[0-9A-HJKMNP-TV-Z]{26}$/;
const CHALLENGE_ID = /^auth_challenge_[0-9A-HJKMNP-TV-Z]{26}$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const BASE32_SECRET = /^[A-Z2-7]{32}$/;

function fakeUlid() {
  // time part + randomness, Crockford base32, 26 chars (format only; ordering not needed)
  let s = Date.now().toString(32).toUpperCase().padStart(10, '0');
  s = [...s].map((c) => CROCKFORD[parseInt(c, 32)]).join('');
  const rnd = randomBytes(16);
  for (let i = 0; i < 16; i++) s += CROCKFORD[rnd[i] % 32];
  return s;
}
const newUserId = () => `user_${fakeUlid()}`;
const nonce = () => randomBytes(4).toString('hex');

function randomBase32Secret() {
  return new OTPAuth.Secret({ size: 20 }).base32; // 160 bits -> 32 base32 chars
}

function totpFor(secret) {
  return new OTPAuth.TOTP({
    secret: OTPAuth.Secret.fromBase32(secret),
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
  });
}

// A code for the current step, taken early enough in the step that the calls that
// follow (verify, re-verify, replay on a new challenge) all land in the same step.
async function freshCode(secret, minRemainingMs = 10_000) {
  const remaining = 30_000 - (Date.now() % 30_000);
  if (remaining < minRemainingMs) await sleep(remaining + 250);
  return totpFor(secret).generate();
}

// A 6-digit code that is not valid for this secret in any step from -3..+3.
function wrongTotpCode(secret) {
  const t = totpFor(secret);
  const now = Date.now();
  const near = new Set();
  for (let k = -3; k <= 3; k++) near.add(t.generate({ timestamp: now + k * 30_000 }));
  for (;;) {
    const c = String(randomBytes(4).readUInt32BE() % 1_000_000).padStart(6, '0');
    if (!near.has(c)) return c;
  }
}

function otherCode(code, k = 1) {
  return String((Number(code) + k * 137_911) % 1_000_000).padStart(6, '0');
}

function decodeQrDataUri(dataUri) {
  const prefix = 'data:image/png;base64,';
  assert.ok(dataUri.startsWith(prefix), `qr_code must start with ${prefix}, got ${dataUri.slice(0, 40)}`);
  const png = PNG.sync.read(Buffer.from(dataUri.slice(prefix.length), 'base64'));
  const rgba = new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.length);
  const result = jsQR(rgba, png.width, png.height);
  assert.ok(result, `QR code could not be decoded (${png.width}x${png.height} PNG)`);
  return result.data;
}

function assertTimestamp(v, what) {
  assert.equal(typeof v, 'string', `${what} must be a string`);
  assert.match(v, TIMESTAMP, `${what} must be ISO 8601 UTC with millisecond precision`);
}

function assertOtpauthUri(uri, { secret, issuer, user }) {
  assert.ok(uri.startsWith('otpauth://totp/'), `uri must start with otpauth://totp/, got ${uri}`);
  const u = new URL(uri);
  assert.equal(u.searchParams.get('secret'), secret, 'uri secret= must equal totp.secret');
  assert.equal(u.searchParams.get('issuer'), issuer, 'uri issuer= must equal the issuer');
  for (const [k, want] of [['algorithm', 'SHA1'], ['digits', '6'], ['period', '30']]) {
    if (u.searchParams.has(k)) assert.equal(u.searchParams.get(k).toUpperCase(), want, `uri ${k}=`);
  }
  // Key URI format label: "issuer:account" (or just "account"), percent-encoded.
  const label = decodeURIComponent(uri.slice('otpauth://totp/'.length).split('?')[0]);
  if (label.includes(':')) {
    const idx = label.indexOf(':');
    assert.equal(label.slice(0, idx), issuer, 'label issuer prefix');
    assert.equal(label.slice(idx + 1), user, 'label account');
  } else {
    assert.equal(label, user, 'label account');
  }
  // The independent authenticator accepts the URI and derives the same secret.
  const parsed = OTPAuth.URI.parse(uri);
  assert.ok(parsed instanceof OTPAuth.TOTP);
  assert.equal(parsed.secret.base32, secret);
}

async function expectError(promise, Cls, { status, code } = {}) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected ${Cls.name ?? Cls} to be thrown, but the call succeeded`);
  const classes = Array.isArray(Cls) ? Cls : [Cls];
  assert.ok(
    classes.some((c) => err instanceof c),
    `expected ${classes.map((c) => c.name).join(' or ')}, got ${err?.name}: ${err?.message} (status ${err?.status}, code ${err?.code})`,
  );
  if (status !== undefined) assert.equal(err.status, status, `status (${err.message})`);
  if (code !== undefined) assert.equal(err.code, code, `error code (${err.message})`);
  return err;
}

// Raw HTTP, for the few wire-level facts the SDK hides (it drops unknown keys).
async function raw(method, path, key = API_KEY) {
  const res = await fetch(MFAD_URL + path, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
  });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text, json: text ? JSON.parse(text) : null };
}

function assertNoSecrets(jsonText, what) {
  for (const k of ['"secret"', '"qr_code"', '"uri"']) {
    assert.ok(!jsonText.includes(k), `${what} must not contain ${k}: ${jsonText}`);
  }
}

async function twilioMessages() {
  const res = await fetch(`${TWILIO_URL}/_test/messages`);
  assert.equal(res.status, 200);
  return res.json();
}
async function twilioReset() {
  const res = await fetch(`${TWILIO_URL}/_test/messages`, { method: 'DELETE' });
  assert.equal(res.status, 204);
}
async function waitForMessages(n, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let msgs = [];
  while (Date.now() < deadline) {
    msgs = await twilioMessages();
    if (msgs.length >= n) return msgs;
    await sleep(100);
  }
  const reqs = await (await fetch(`${TWILIO_URL}/_test/requests`)).json();
  assert.fail(`Twilio stand-in got ${msgs.length} message(s), expected ${n}; requests seen: ${JSON.stringify(reqs)}`);
}

// ---------------------------------------------------------------- TOTP

describe('TOTP factor (enrollFactor / challengeFactor / verifyChallenge)', () => {
  const issuer = 'Acme Corp';
  const user = `alice+${nonce()}@example.com`;
  let factor;
  let code;

  it('enrollFactor returns secret, otpauth uri and a QR PNG that encodes the uri', async () => {
    factor = await mfa.enrollFactor({ type: 'totp', issuer, user });
    assert.equal(factor.object, 'authentication_factor');
    assert.match(factor.id, FACTOR_ID);
    assert.equal(factor.type, 'totp');
    assertTimestamp(factor.createdAt, 'createdAt');
    assertTimestamp(factor.updatedAt, 'updatedAt');
    assert.equal(factor.sms, undefined);
    assert.equal(factor.totp.issuer, issuer);
    assert.equal(factor.totp.user, user);
    assert.match(factor.totp.secret, BASE32_SECRET);
    assertOtpauthUri(factor.totp.uri, { secret: factor.totp.secret, issuer, user });
    assert.equal(decodeQrDataUri(factor.totp.qrCode), factor.totp.uri, 'QR payload must equal uri exactly');
  });

  it('verifies a code from an independent authenticator, once', async () => {
    const ch = await mfa.challengeFactor({ authenticationFactorId: factor.id });
    assert.equal(ch.object, 'authentication_challenge');
    assert.match(ch.id, CHALLENGE_ID);
    assert.equal(ch.authenticationFactorId, factor.id);
    assertTimestamp(ch.createdAt, 'challenge createdAt');
    assert.ok(ch.code === undefined || ch.code === null, `a TOTP challenge must not carry a code, got ${ch.code}`);

    code = await freshCode(factor.totp.secret);
    const res = await mfa.verifyChallenge({ authenticationChallengeId: ch.id, code });
    assert.equal(res.valid, true);
    assert.equal(res.challenge.id, ch.id);
    assert.equal(res.challenge.authenticationFactorId, factor.id);

    await expectError(
      mfa.verifyChallenge({ authenticationChallengeId: ch.id, code }),
      UnprocessableEntityException,
      { status: 422, code: 'authentication_challenge_previously_verified' },
    );
  });

  it('refuses the same code on a new challenge (replay) and a wrong code', async () => {
    const ch2 = await mfa.challengeFactor({ authenticationFactorId: factor.id });
    assert.notEqual(ch2.id, undefined);
    const replay = await mfa.verifyChallenge({ authenticationChallengeId: ch2.id, code });
    assert.equal(replay.valid, false, 'a TOTP code that was already accepted must not be accepted again');

    const ch3 = await mfa.challengeFactor({ authenticationFactorId: factor.id });
    const wrong = await mfa.verifyChallenge({ authenticationChallengeId: ch3.id, code: wrongTotpCode(factor.totp.secret) });
    assert.equal(wrong.valid, false);
    assert.equal(wrong.challenge.id, ch3.id);

    // A failed attempt does not burn the challenge: the next step's code is accepted.
    const step = Math.floor(Date.now() / 30_000);
    await sleep((step + 1) * 30_000 - Date.now() + 250);
    const next = totpFor(factor.totp.secret).generate();
    assert.notEqual(next, code);
    const ok = await mfa.verifyChallenge({ authenticationChallengeId: ch3.id, code: next });
    assert.equal(ok.valid, true);
  });

  it('getFactor returns the factor without secrets', async () => {
    const got = await mfa.getFactor(factor.id);
    assert.equal(got.object, 'authentication_factor');
    assert.equal(got.id, factor.id);
    assert.equal(got.type, 'totp');
    assert.equal(got.createdAt, factor.createdAt);
    assert.deepEqual(got.totp, { issuer, user });

    const r = await raw('GET', `/auth/factors/${factor.id}`);
    assert.equal(r.status, 200);
    assert.match(r.contentType, /application\/json/);
    assertNoSecrets(r.text, 'GET /auth/factors/{id}');
    assert.deepEqual(r.json.totp, { issuer, user });
  });
});

// ---------------------------------------------------------------- SMS

describe('SMS factor through the Twilio provider', () => {
  let factor;

  before(async () => {
    await twilioReset();
  });

  it('enrollFactor normalises the phone number to E.164', async () => {
    factor = await mfa.enrollFactor({ type: 'sms', phoneNumber: '+1 415 555 2671' });
    assert.match(factor.id, FACTOR_ID);
    assert.equal(factor.type, 'sms');
    assert.equal(factor.sms.phoneNumber, '+14155552671');
    assert.equal(factor.totp, undefined);
  });

  it('a second challenge within the cooldown is RateLimitExceededException (429, Retry-After), nothing texted', async () => {
    const u = new URL(MFAD_URL);
    // Retries off: with them the SDK would wait out Retry-After (up to 60 s) first.
    const impatient = new WorkOS(API_KEY, { apiHostname: u.hostname, port: Number(u.port), https: false, maxRetries: 0 });
    const f = await impatient.multiFactorAuth.enrollFactor({ type: 'sms', phoneNumber: '+1 415 555 2675' });
    await twilioReset();
    await impatient.multiFactorAuth.challengeFactor({ authenticationFactorId: f.id });
    await expectError(impatient.multiFactorAuth.challengeFactor({ authenticationFactorId: f.id }), RateLimitExceededException, {
      status: 429,
    });
    await waitForMessages(1);
    await sleep(500);
    const res = await fetch(`${TWILIO_URL}/_test/messages`);
    const msgs = await res.json();
    assert.deepEqual(msgs.map((m) => m.to), ['+14155552675']);
    const r = await fetch(`${MFAD_URL}/auth/factors/${f.id}/challenge`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
      body: '{}',
    });
    assert.equal(r.status, 429);
    const retry = Number(r.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= 30, `Retry-After ${retry}`);
    assert.equal((await r.json()).code, 'rate_limit_exceeded');
  });

  it('challengeFactor with sms_template texts the code; verify accepts it', async () => {
    await twilioReset();
    const ch = await mfa.challengeFactor({ authenticationFactorId: factor.id, smsTemplate: 'Your code is {{code}}' });
    assert.match(ch.id, CHALLENGE_ID);
    assert.equal(ch.authenticationFactorId, factor.id);
    assert.ok(ch.code === undefined || ch.code === null, `an SMS challenge must not return the code, got ${ch.code}`);
    assertTimestamp(ch.expiresAt, 'expiresAt');

    const msgs = await waitForMessages(1);
    assert.equal(msgs.length, 1, `exactly one SMS expected, got ${JSON.stringify(msgs)}`);
    const [msg] = msgs;
    assert.equal(msg.to, '+14155552671');
    assert.equal(msg.from, TWILIO_FROM);
    assert.match(msg.sid, /^SM[0-9a-f]{32}$/);
    const m = /^Your code is (\d{6})$/.exec(msg.body);
    assert.ok(m, `SMS body must follow the template, got ${JSON.stringify(msg.body)}`);

    const wrong = await mfa.verifyChallenge({ authenticationChallengeId: ch.id, code: otherCode(m[1]) });
    assert.equal(wrong.valid, false);
    const res = await mfa.verifyChallenge({ authenticationChallengeId: ch.id, code: m[1] });
    assert.equal(res.valid, true);
    assert.equal(res.challenge.id, ch.id);
  });

  it('getFactor shows the E.164 number and no secrets', async () => {
    const got = await mfa.getFactor(factor.id);
    assert.equal(got.type, 'sms');
    assert.deepEqual(got.sms, { phoneNumber: '+14155552671' });
    const r = await raw('GET', `/auth/factors/${factor.id}`);
    assert.equal(r.status, 200);
    assertNoSecrets(r.text, 'GET /auth/factors/{id} (sms)');
    assert.equal(r.json.sms.phone_number, '+14155552671');
  });

  it('enrollFactor with an invalid phone number -> 422 invalid_phone_number', async () => {
    await expectError(mfa.enrollFactor({ type: 'sms', phoneNumber: 'not-a-phone' }), UnprocessableEntityException, {
      status: 422,
      code: 'invalid_phone_number',
    });
  });
});

// ---------------------------------------------------------------- generic_otp

describe('generic_otp factor', () => {
  it('challenge returns a 6-digit code that verifies', async () => {
    const factor = await mfa.enrollFactor({ type: 'generic_otp' });
    assert.match(factor.id, FACTOR_ID);
    assert.equal(factor.type, 'generic_otp');
    assert.equal(factor.totp, undefined);
    assert.equal(factor.sms, undefined);

    const ch = await mfa.challengeFactor({ authenticationFactorId: factor.id });
    assert.match(ch.code, /^\d{6}$/);
    assert.equal(ch.authenticationFactorId, factor.id);
    assertTimestamp(ch.createdAt, 'createdAt');
    assertTimestamp(ch.expiresAt, 'expiresAt');
    const ttl = Date.parse(ch.expiresAt) - Date.parse(ch.createdAt);
    assert.ok(Math.abs(ttl - 600_000) <= 2_000, `expires_at should be created_at + 10 min, got ${ttl} ms`);

    const res = await mfa.verifyChallenge({ authenticationChallengeId: ch.id, code: ch.code });
    assert.equal(res.valid, true);
    assert.equal(res.challenge.id, ch.id);
    assert.equal(res.challenge.authenticationFactorId, factor.id);
  });

  it('5 wrong codes give valid:false, then even the right code is refused (400 one_time_code_too_many_attempts)', async () => {
    const factor = await mfa.enrollFactor({ type: 'generic_otp' });
    const ch = await mfa.challengeFactor({ authenticationFactorId: factor.id });
    assert.match(ch.code, /^\d{6}$/);
    for (let i = 1; i <= 5; i++) {
      const res = await mfa.verifyChallenge({ authenticationChallengeId: ch.id, code: otherCode(ch.code, i) });
      assert.equal(res.valid, false, `wrong attempt ${i} must be valid:false`);
    }
    await expectError(
      mfa.verifyChallenge({ authenticationChallengeId: ch.id, code: ch.code }),
      [GenericServerException, BadRequestException],
      { status: 400, code: 'one_time_code_too_many_attempts' },
    );
  });
});

// ---------------------------------------------------------------- throttling

describe('throttling (five consecutive wrong codes on a factor)', () => {
  it('a throttled factor is a RateLimitExceededException (429) with retryAfter, not a crash', async () => {
    // No retries: the SDK would otherwise wait out Retry-After (30 s) before throwing.
    const u = new URL(MFAD_URL);
    const noRetry = new WorkOS(API_KEY, {
      apiHostname: u.hostname,
      port: u.port ? Number(u.port) : 80,
      https: u.protocol === 'https:',
      maxRetries: 0,
    }).multiFactorAuth;
    const factor = await noRetry.enrollFactor({ type: 'generic_otp' });
    let ch = await noRetry.challengeFactor({ authenticationFactorId: factor.id });
    for (let i = 1; i <= 5; i++) {
      const res = await noRetry.verifyChallenge({ authenticationChallengeId: ch.id, code: otherCode(ch.code, i) });
      assert.equal(res.valid, false);
    }
    // A new challenge is still issued; its right code is refused unjudged for now.
    ch = await noRetry.challengeFactor({ authenticationFactorId: factor.id });
    let err;
    try {
      await noRetry.verifyChallenge({ authenticationChallengeId: ch.id, code: ch.code });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof RateLimitExceededException, `got ${err && err.name}: ${err && err.message}`);
    assert.equal(err.status, 429);
    assert.ok(Number(err.retryAfter) > 0 && Number(err.retryAfter) <= 30, `retryAfter ${err.retryAfter}`);
  });
});

// ---------------------------------------------------------------- get / delete

describe('getFactor / deleteFactor', () => {
  it('get matches the enrolled factor; after delete, get -> NotFoundException entity_not_found', async () => {
    const factor = await mfa.enrollFactor({ type: 'generic_otp' });
    const got = await mfa.getFactor(factor.id);
    assert.deepEqual(
      { object: got.object, id: got.id, type: got.type, createdAt: got.createdAt, updatedAt: got.updatedAt },
      { object: 'authentication_factor', id: factor.id, type: 'generic_otp', createdAt: factor.createdAt, updatedAt: factor.updatedAt },
    );
    const r = await raw('GET', `/auth/factors/${factor.id}`);
    assertNoSecrets(r.text, 'GET generic_otp factor');

    assert.equal(await mfa.deleteFactor(factor.id), undefined);
    await expectError(mfa.getFactor(factor.id), NotFoundException, { status: 404, code: 'entity_not_found' });
    await expectError(mfa.challengeFactor({ authenticationFactorId: factor.id }), NotFoundException, { status: 404 });
  });

  it('deleting an already deleted factor -> NotFoundException', async () => {
    const factor = await mfa.enrollFactor({ type: 'generic_otp' });
    await mfa.deleteFactor(factor.id);
    await expectError(mfa.deleteFactor(factor.id), NotFoundException, { status: 404, code: 'entity_not_found' });
  });

  it('unknown factor id -> NotFoundException entity_not_found', async () => {
    await expectError(mfa.getFactor(`auth_factor_${fakeUlid()}`), NotFoundException, { status: 404, code: 'entity_not_found' });
  });
});

// ---------------------------------------------------------------- user factors

describe('user factors (createUserAuthFactor / listUserAuthFactors)', () => {
  const userId = newUserId();
  const suppliedSecret = randomBase32Secret();
  const created = []; // ids in creation order

  it('createUserAuthFactor x5 (one with a caller-supplied totp_secret)', async () => {
    for (let i = 0; i < 5; i++) {
      const totpUser = `u${i}-${nonce()}@example.com`;
      const opts = { userId, type: 'totp', totpIssuer: 'Acme Corp', totpUser };
      if (i === 2) opts.totpSecret = suppliedSecret;
      const { authenticationFactor: f, authenticationChallenge: ch } = await mfa.createUserAuthFactor(opts);
      assert.match(f.id, FACTOR_ID);
      assert.equal(f.object, 'authentication_factor');
      assert.equal(f.type, 'totp');
      assert.equal(f.userId, userId);
      assert.equal(f.totp.issuer, 'Acme Corp');
      assert.equal(f.totp.user, totpUser);
      assert.match(f.totp.secret, BASE32_SECRET);
      if (i === 2) assert.equal(f.totp.secret, suppliedSecret, 'caller-supplied totp_secret must be used');
      assertOtpauthUri(f.totp.uri, { secret: f.totp.secret, issuer: 'Acme Corp', user: totpUser });
      if (i === 0 || i === 2) assert.equal(decodeQrDataUri(f.totp.qrCode), f.totp.uri);
      assert.match(ch.id, CHALLENGE_ID);
      assert.equal(ch.object, 'authentication_challenge');
      assert.equal(ch.authenticationFactorId, f.id);
      if (i === 2) {
        const res = await mfa.verifyChallenge({ authenticationChallengeId: ch.id, code: await freshCode(suppliedSecret, 3_000) });
        assert.equal(res.valid, true, 'the returned challenge verifies with a code from the supplied secret');
      }
      created.push(f.id);
    }
    assert.equal(new Set(created).size, 5);
  });

  async function pages(order) {
    const seen = [];
    const metas = [];
    let after;
    for (let n = 0; n < 10; n++) {
      const page = await mfa.listUserAuthFactors({ userId, limit: 2, order, ...(after ? { after } : {}) });
      for (const f of page.data) {
        assert.equal(f.userId, userId);
        assert.equal(f.type, 'totp');
        assert.equal(f.object, 'authentication_factor');
      }
      seen.push(page.data.map((f) => f.id));
      metas.push(page.listMetadata);
      after = page.listMetadata.after;
      if (!after) break;
    }
    return { seen, metas };
  }

  it('limit 2, order asc: pages [2,2,1] in creation order; after set except on the last page', async () => {
    const { seen, metas } = await pages('asc');
    assert.deepEqual(seen, [created.slice(0, 2), created.slice(2, 4), created.slice(4)]);
    assert.ok(metas[0].after && metas[1].after, `after must be set on non-last pages: ${JSON.stringify(metas)}`);
    assert.equal(metas[2].after, null, `after must be null on the last page: ${JSON.stringify(metas)}`);
    assert.equal(metas[0].before, null, 'before is null on the first page');
  });

  it('limit 2, order desc: reverse creation order', async () => {
    const { seen, metas } = await pages('desc');
    const rev = [...created].reverse();
    assert.deepEqual(seen, [rev.slice(0, 2), rev.slice(2, 4), rev.slice(4)]);
    assert.equal(metas[2].after, null);
  });

  it('autoPagination() returns all 5 exactly once (default order desc)', async () => {
    const list = await mfa.listUserAuthFactors({ userId });
    const all = await list.autoPagination();
    const ids = all.map((f) => f.id);
    assert.equal(ids.length, 5);
    assert.deepEqual(ids, [...created].reverse());

    const asc = await (await mfa.listUserAuthFactors({ userId, order: 'asc' })).autoPagination();
    assert.deepEqual(asc.map((f) => f.id), created);
  });

  it('the list carries no secrets on the wire', async () => {
    const r = await raw('GET', `/user_management/users/${userId}/auth_factors?order=asc&limit=10`);
    assert.equal(r.status, 200);
    assert.equal(r.json.object, 'list');
    assert.deepEqual(r.json.data.map((f) => f.id), created);
    assertNoSecrets(r.text, 'GET /user_management/users/{id}/auth_factors');
  });
});

describe('autoPagination() over 25 factors with every cursor form', () => {
  const userId = newUserId();
  const created = []; // ids in creation order (2 ms apart, so id order is creation order)

  before(async () => {
    for (let i = 0; i < 25; i++) {
      const { authenticationFactor: f } = await mfa.createUserAuthFactor({ userId, type: 'totp', totpIssuer: 'Acme', totpUser: `p${i}` });
      created.push(f.id);
      await sleep(2);
    }
  });

  // autoPagination() re-requests with the caller's options (so a `before` stays) plus
  // limit=100 and after=<cursor>: the request that never ended before both cursors were honoured.
  async function walk(opts) {
    const list = await mfa.listUserAuthFactors({ userId, ...opts });
    return (await list.autoPagination()).map((f) => f.id);
  }

  it('without cursors: all 25 once, in either order', { timeout: 30_000 }, async () => {
    assert.deepEqual(await walk({ order: 'asc' }), created);
    assert.deepEqual(await walk({}), [...created].reverse());
  });

  for (const order of ['asc', 'desc']) {
    it(`order ${order}: every before, after and before+after start ends with the range`, { timeout: 120_000 }, async () => {
      const inOrder = order === 'asc' ? created : [...created].reverse();
      for (const k of [0, 1, 7, 12, 23, 24]) {
        assert.deepEqual(await walk({ order, after: inOrder[k] }), inOrder.slice(k + 1), `after ${k}`);
        assert.deepEqual(await walk({ order, before: inOrder[k] }), inOrder.slice(0, k), `before ${k}`);
        for (const j of [k - 3, k + 1, k + 9]) {
          if (j < 0 || j > 24) continue;
          const got = await walk({ order, after: inOrder[k], before: inOrder[j] });
          assert.deepEqual(got, j > k ? inOrder.slice(k + 1, j) : [], `after ${k} before ${j}`);
        }
      }
    });
  }
});

// ---------------------------------------------------------------- isolation and auth

describe('tenant isolation and API keys', () => {
  it("another tenant's key cannot see, challenge, verify or delete this tenant's factor", async () => {
    const factor = await mfa.enrollFactor({ type: 'generic_otp' });
    const ch = await mfa.challengeFactor({ authenticationFactorId: factor.id });
    const om = other.multiFactorAuth;

    await expectError(om.getFactor(factor.id), NotFoundException, { status: 404, code: 'entity_not_found' });
    await expectError(om.challengeFactor({ authenticationFactorId: factor.id }), NotFoundException, { status: 404 });
    await expectError(om.verifyChallenge({ authenticationChallengeId: ch.id, code: ch.code }), NotFoundException, { status: 404 });
    await expectError(om.deleteFactor(factor.id), NotFoundException, { status: 404 });

    // Untouched for the owner: still there, and the challenge still verifies.
    assert.equal((await mfa.getFactor(factor.id)).id, factor.id);
    const res = await mfa.verifyChallenge({ authenticationChallengeId: ch.id, code: ch.code });
    assert.equal(res.valid, true);
  });

  it("another tenant's list for the same user id shows none of this tenant's factors", async () => {
    const userId = newUserId();
    const { authenticationFactor: f } = await mfa.createUserAuthFactor({ userId, type: 'totp', totpIssuer: 'Acme', totpUser: 'x@example.com' });
    let list;
    try {
      list = await other.multiFactorAuth.listUserAuthFactors({ userId });
    } catch (e) {
      assert.ok(e instanceof NotFoundException, `expected an empty list or NotFoundException, got ${e?.name}: ${e?.message}`);
      return;
    }
    assert.deepEqual(list.data, [], `other tenant must not list ${f.id}`);
    assert.equal(list.listMetadata.after, null);
  });

  it('a bad API key -> UnauthorizedException (401)', async () => {
    const bad = sdk(`sk_test_${randomBytes(24).toString('hex')}`);
    await expectError(bad.multiFactorAuth.enrollFactor({ type: 'generic_otp' }), UnauthorizedException, { status: 401 });
    await expectError(bad.multiFactorAuth.getFactor(`auth_factor_${fakeUlid()}`), UnauthorizedException, { status: 401 });
    const r = await raw('GET', `/auth/factors/auth_factor_${fakeUlid()}`, 'sk_test_nope');
    assert.equal(r.status, 401);
    assert.match(r.contentType, /application\/json/);
    assert.equal(typeof r.json.message, 'string');
  });
});

// ---------------------------------------------------------------- Events API

describe('Events API (events.listEvents)', () => {
  const FLOW = [
    'authentication_factor.created',
    'authentication_challenge.created',
    'authentication.mfa_failed',
    'authentication.mfa_succeeded',
    'authentication_factor.deleted',
  ];
  const userOf = (e) => e.data?.userId ?? e.data?.user_id;

  async function walk(client, userId, rangeStart) {
    const seen = [];
    let after;
    for (let pages = 0; pages < 500; pages++) {
      const page = await client.events.listEvents({ events: FLOW, rangeStart, limit: 2, order: 'asc', ...(after && { after }) });
      assert.equal(page.object, 'list');
      assert.ok(page.data.length <= 2, 'limit honoured');
      for (const e of page.data) if (userOf(e) === userId) seen.push(e);
      after = page.listMetadata.after;
      if (!after) return seen;
    }
    throw new Error('listEvents never ended');
  }

  it("pages through a flow's events in order, and another tenant sees none of them", async () => {
    const rangeStart = new Date(Date.now() - 5_000).toISOString();
    const userId = newUserId();
    const { authenticationFactor: f, authenticationChallenge: ch } = await mfa.createUserAuthFactor({
      userId, type: 'totp', totpIssuer: 'Acme', totpUser: 'events@example.com',
    });
    const secret = f.totp.secret;
    const code = await freshCode(secret);
    assert.equal((await mfa.verifyChallenge({ authenticationChallengeId: ch.id, code: wrongTotpCode(secret) })).valid, false);
    assert.equal((await mfa.verifyChallenge({ authenticationChallengeId: ch.id, code })).valid, true);
    await mfa.deleteFactor(f.id);

    const seen = await walk(workos, userId, rangeStart);
    assert.deepEqual(seen.map((e) => e.event), FLOW);
    for (const e of seen) {
      assert.match(e.id, /^event_[0-9A-HJKMNP-TV-Z]{26}$/);
      assertTimestamp(e.createdAt, 'event createdAt');
    }
    const ids = seen.map((e) => e.id);
    assert.deepEqual([...ids].sort(), ids, 'ids increase with creation');
    assert.equal(seen[0].data.id, f.id);
    assert.equal(seen[1].data.id, ch.id);
    // authentication.mfa_succeeded goes through the SDK's authentication event deserializer.
    const ok = seen[3];
    assert.equal(ok.data.type, 'mfa');
    assert.equal(ok.data.status, 'succeeded');
    assert.equal(ok.data.userId, userId);
    assert.ok('ipAddress' in ok.data && 'userAgent' in ok.data && 'email' in ok.data);
    assert.equal(seen[2].data.error.code, 'invalid_code');
    assert.ok(!JSON.stringify(seen).includes(code), 'no code in any event');
    assert.ok(!JSON.stringify(seen).includes(secret), 'no secret in any event');

    assert.deepEqual(await walk(other, userId, rangeStart), [], 'the other tenant sees none of them');
  });
});

