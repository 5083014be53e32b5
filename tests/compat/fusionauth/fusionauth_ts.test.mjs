// Client-compatibility tests: the official FusionAuth TypeScript client
// (@fusionauth/typescript-client 1.69.0, unmodified) driven as a black box against a running
// mfad server's FusionAuth Two Factor API. Run with Node 20's built-in runner:
//   node --test fusionauth_ts.test.mjs
//
// The client resolves a 2xx with ClientResponse {statusCode, response} (response parsed only
// when Content-Type is application/json) and rejects anything else with ClientResponse
// {statusCode, exception}. A 2xx it could not read (e.g. an empty body labelled JSON) also
// rejects, with the 2xx status: the helpers below treat that as a failure.
//
// Environment (run.sh sets these): MFAD_URL, MFAD_API_KEY, MFAD_TENANT_ID,
// MFAD_OTHER_TENANT_KEY, MFAD_OTHER_TENANT_ID, MFAD_JWT_HS256_SECRET, TWILIO_STANDIN_URL,
// SMTP_SINK_URL.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { FusionAuthClient } from '@fusionauth/typescript-client';
import * as OTPAuth from 'otpauth';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} must be set (see tests/compat/fusionauth/run.sh)`);
  return v;
}

const MFAD_URL = env('MFAD_URL').replace(/\/+$/, '');
const API_KEY = env('MFAD_API_KEY');
const TENANT_ID = env('MFAD_TENANT_ID');
const OTHER_KEY = env('MFAD_OTHER_TENANT_KEY');
const OTHER_TENANT_ID = env('MFAD_OTHER_TENANT_ID');
const JWT_SECRET = env('MFAD_JWT_HS256_SECRET');
const TWILIO_URL = env('TWILIO_STANDIN_URL').replace(/\/+$/, '');
const SMTP_SINK_URL = env('SMTP_SINK_URL').replace(/\/+$/, '');
// optional: an RSA key pair whose public half mfad verifies RS256 tokens with
const RS256_PRIVATE_KEY_FILE = process.env.JWT_RS256_PRIVATE_KEY_FILE || null;
const RS256_PUBLIC_KEY_FILE = process.env.JWT_RS256_PUBLIC_KEY_FILE || null;
// optional: a second mfad on the same database whose twoFactorIds live 2 s
const SHORT_TTL_URL = (process.env.MFAD_SHORT_TTL_URL || '').replace(/\/+$/, '') || null;

const SECRET_B64 = /^[A-Za-z0-9+/]{20}$/;
const SECRET_B32 = /^[A-Z2-7]{24}$/;
const TWO_FACTOR_ID = /^[A-Za-z0-9_-]{43}$/;
const METHOD_ID = /^[A-Z0-9]{4}$/;
const RECOVERY_CODE = /^[A-Z0-9]{5}-[A-Z0-9]{5}$/;

// The acme tenant's client, constructed with its own tenant id (the 3rd constructor argument):
// every request, anonymous ones included, carries X-FusionAuth-TenantId.
const fa = new FusionAuthClient(API_KEY, MFAD_URL, TENANT_ID);
const other = new FusionAuthClient(OTHER_KEY, MFAD_URL);

// ------------------------------------------------------------------ helpers

/** Runs a client call; returns {status, body, rejected, raw}. */
async function call(promise) {
  try {
    const r = await promise;
    return { status: r.statusCode, body: r.response, rejected: false, raw: r };
  } catch (e) {
    if (e && typeof e.statusCode === 'number') {
      return { status: e.statusCode, body: e.exception, rejected: true, raw: e };
    }
    throw e;
  }
}

function show(r) {
  let body = r.body;
  if (body instanceof Error) body = `${body.name}: ${body.message}`;
  return `HTTP ${r.status} rejected=${r.rejected} body=${typeof body === 'string' ? body : JSON.stringify(body)}`;
}

/** A 2xx with a JSON body the client parsed. */
function ok(r, status = 200) {
  assert.equal(r.status, status, show(r));
  assert.equal(r.rejected, false, `the client could not read a ${status}: ${show(r)}`);
  assert.equal(typeof r.body, 'object', show(r));
  assert.ok(r.body !== null, show(r));
  return r.body;
}

/** A 2xx with an empty body (and so no JSON content type). */
function okEmpty(r, status = 200) {
  assert.equal(r.status, status, show(r));
  assert.equal(r.rejected, false, `the client could not read an empty ${status}: ${show(r)}`);
  assert.equal(r.body, undefined, show(r));
}

/** A documented error status with an empty body (401, 404, 421). */
function fails(r, status) {
  assert.equal(r.status, status, show(r));
  assert.equal(r.rejected, true, show(r));
  assert.equal(r.body, undefined, `expected an empty body: ${show(r)}`);
}

/** 400 with a FusionAuth Errors object. */
function errors400(r) {
  assert.equal(r.status, 400, show(r));
  assert.equal(r.rejected, true);
  const b = r.body;
  assert.ok(b && typeof b === 'object' && !(b instanceof Error), show(r));
  assert.ok(b.generalErrors || b.fieldErrors, show(r));
  for (const e of b.generalErrors ?? []) assert.ok(typeof e.code === 'string' && typeof e.message === 'string', show(r));
  for (const errs of Object.values(b.fieldErrors ?? {})) {
    for (const e of errs) assert.ok(typeof e.code === 'string' && typeof e.message === 'string', show(r));
  }
  return b;
}

/** A tenant header that is not the key's: "404 or a validation error" (reference §1); on the
 *  keyed routes mfad answers the validation error, 400 [InvalidTenantId]. */
function tenantRejected(r) {
  const b = errors400(r);
  assert.deepEqual((b.generalErrors ?? []).map((e) => e.code), ['[InvalidTenantId]'], show(r));
  assert.equal(Object.keys(b.fieldErrors ?? {}).length, 0, show(r));
}

const newUserId = () => crypto.randomUUID();
const newPhone = () => `+1415555${String(crypto.randomInt(10000)).padStart(4, '0')}`;
const newEmail = () => `u-${crypto.randomBytes(6).toString('hex')}@example.com`;
const otherCode = (c) => String((Number(c) + 137911) % 1000000).padStart(6, '0');

function b32OfSecret(secretB64) {
  return new OTPAuth.Secret({ buffer: Buffer.from(secretB64, 'base64') }).base32.replace(/=+$/, '');
}

/** An authenticator app; never hands out the same step twice (mfad refuses replays). */
class Authenticator {
  constructor(b32) {
    this.totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(b32), algorithm: 'SHA1', digits: 6, period: 30 });
    this.last = null;
  }
  async code() {
    const now = Date.now() / 1000;
    const cur = Math.floor(now / 30);
    const step = this.last === null ? cur : Math.max(this.last + 1, cur);
    if (step > cur + 1) await new Promise((r) => setTimeout(r, ((step - 1) * 30 - now + 0.3) * 1000));
    this.last = step;
    return this.totp.generate({ timestamp: step * 30 * 1000 });
  }
  wrongCode() {
    const near = new Set();
    for (let k = -3; k <= 3; k++) near.add(this.totp.generate({ timestamp: Date.now() + k * 30000 }));
    for (;;) {
      const c = String(crypto.randomInt(1000000)).padStart(6, '0');
      if (!near.has(c)) return c;
    }
  }
}

async function getJson(url) {
  const r = await fetch(url);
  assert.equal(r.status, 200, url);
  return r.json();
}

const textsTo = async (phone) => (await getJson(`${TWILIO_URL}/_test/messages`)).filter((m) => m.to === phone);
const mailsTo = async (addr) => (await getJson(`${SMTP_SINK_URL}/_test/messages`)).filter((m) => (m.rcpt_tos || []).includes(addr));

function onlyCode(text) {
  const codes = [...new Set(text.match(/(?<!\d)\d{6}(?!\d)/g) || [])];
  assert.equal(codes.length, 1, `expected exactly one 6-digit code in ${JSON.stringify(text)}`);
  return codes[0];
}

/** Marks the message count for a phone / address; code() waits for the next message. */
class Inbox {
  constructor(kind, to) {
    this.kind = kind;
    this.to = to;
    this.before = null;
  }
  async mark() {
    this.before = (await this.fetch()).length;
    return this;
  }
  fetch() {
    return this.kind === 'sms' ? textsTo(this.to) : mailsTo(this.to);
  }
  async message() {
    const deadline = Date.now() + 10000;
    for (;;) {
      const msgs = await this.fetch();
      if (msgs.length > this.before) {
        assert.equal(msgs.length, this.before + 1, `expected one new ${this.kind} to ${this.to}`);
        this.before = msgs.length;
        return msgs[msgs.length - 1];
      }
      if (Date.now() > deadline) assert.fail(`no ${this.kind} to ${this.to} within 10 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  async code() {
    const m = await this.message();
    return onlyCode(this.kind === 'sms' ? m.body : `${m.subject}\n${m.text}`);
  }
}

const b64u = (buf) => Buffer.from(buf).toString('base64url');

function makeJwt(claims, { alg = 'HS256', key = JWT_SECRET, signature } = {}) {
  const input = `${b64u(JSON.stringify({ alg, typ: 'JWT' }))}.${b64u(JSON.stringify(claims))}`;
  let sig = signature;
  if (sig === undefined) {
    sig = alg === 'none' ? Buffer.alloc(0) : crypto.createHmac(alg === 'HS512' ? 'sha512' : 'sha256', key).update(input).digest();
  }
  return `${input}.${b64u(sig)}`;
}

function rs256Jwt(claimSet) {
  const input = `${b64u(JSON.stringify({ alg: 'RS256', typ: 'JWT' }))}.${b64u(JSON.stringify(claimSet))}`;
  const sig = crypto.sign('sha256', Buffer.from(input), fs.readFileSync(RS256_PRIVATE_KEY_FILE));
  return `${input}.${b64u(sig)}`;
}

function claims(userId, ttl = 600) {
  const now = Math.floor(Date.now() / 1000);
  return { sub: userId, iat: now, exp: now + ttl, tid: TENANT_ID };
}

async function newSecret(client = fa) {
  const b = ok(await call(client.generateTwoFactorSecret()));
  assert.ok(SECRET_B64.test(b.secret), JSON.stringify(b));
  assert.ok(SECRET_B32.test(b.secretBase32Encoded), JSON.stringify(b));
  return b;
}

async function enrollAuthenticator(client = fa, { name } = {}) {
  const userId = newUserId();
  const s = await newSecret(client);
  const auth = new Authenticator(s.secretBase32Encoded);
  const req = { method: 'authenticator', code: await auth.code(), secret: s.secret };
  if (name) req.name = name;
  const b = ok(await call(client.enableTwoFactor(userId, req)));
  assert.equal(b.recoveryCodes.length, 10, JSON.stringify(b));
  return { userId, auth, codes: b.recoveryCodes };
}

async function enrollSms(userId, { first = false } = {}) {
  const phone = newPhone();
  const inbox = await new Inbox('sms', phone).mark();
  okEmpty(await call(fa.sendTwoFactorCodeForEnableDisable({ userId, method: 'sms', mobilePhone: phone })));
  const r = await call(fa.enableTwoFactor(userId, { method: 'sms', mobilePhone: phone, code: await inbox.code() }));
  if (first) ok(r);
  else okEmpty(r);
  return { phone, inbox };
}

async function start(userId, extra = {}, client = fa) {
  const b = ok(await call(client.startTwoFactorLogin({ userId, ...extra })));
  assert.ok(TWO_FACTOR_ID.test(b.twoFactorId), JSON.stringify(b));
  assert.equal(typeof b.code, 'string');
  return b;
}

function methodsByKind(startBody) {
  const out = {};
  for (const m of startBody.methods ?? []) {
    assert.ok(METHOD_ID.test(m.id), JSON.stringify(m));
    out[m.method] ??= m;
  }
  return out;
}

function loginOk(r, userId) {
  const b = ok(r);
  assert.equal(b.user?.id, userId, JSON.stringify(b));
  return b;
}

async function statusCode(userId, client = fa) {
  return (await call(client.retrieveTwoFactorStatus(userId, undefined, undefined))).status;
}

// ------------------------------------------------------------------ secrets and JWT

test('generateTwoFactorSecret: FusionAuth-shaped secret', async () => {
  const b = await newSecret();
  assert.deepEqual(Object.keys(b).sort(), ['secret', 'secretBase32Encoded']);
  assert.equal(b32OfSecret(b.secret), b.secretBase32Encoded);
});

test('generateTwoFactorSecretUsingJWT: valid HS256 JWT', async () => {
  const anon = new FusionAuthClient(undefined, MFAD_URL, TENANT_ID);
  const b = ok(await call(anon.generateTwoFactorSecretUsingJWT(makeJwt(claims(newUserId())))));
  assert.equal(b32OfSecret(b.secret), b.secretBase32Encoded);
});

test('generateTwoFactorSecretUsingJWT: expired, forged, alg none, RS256 header -> 401', async () => {
  const anon = new FusionAuthClient(undefined, MFAD_URL);
  const u = newUserId();
  const now = Math.floor(Date.now() / 1000);
  const good = claims(u);
  const unsigned = makeJwt(good, { alg: 'RS256', signature: Buffer.alloc(0) }).replace(/\.$/, '');
  const bad = {
    expired: makeJwt({ ...good, iat: now - 7200, exp: now - 3600 }),
    wrongSecret: makeJwt(good, { key: 'not-the-secret' }),
    algNone: makeJwt(good, { alg: 'none' }),
    rsHeaderHmacSig: makeJwt(good, { alg: 'RS256', signature: crypto.createHmac('sha256', JWT_SECRET).update(unsigned).digest() }),
    hs512: makeJwt(good, { alg: 'HS512' }),
  };
  for (const [kind, token] of Object.entries(bad)) {
    const r = await call(anon.generateTwoFactorSecretUsingJWT(token));
    assert.equal(r.status, 401, `${kind}: ${show(r)}`);
    assert.equal(r.body, undefined, `${kind}: ${show(r)}`);
  }
});

test('generateTwoFactorSecretUsingJWT: RS256 token from the configured key pair; HS256 keyed with its public PEM -> 401',
  { skip: !(RS256_PRIVATE_KEY_FILE && RS256_PUBLIC_KEY_FILE) && 'JWT_RS256_*_KEY_FILE not set' }, async () => {
    const anon = new FusionAuthClient(undefined, MFAD_URL);
    ok(await call(anon.generateTwoFactorSecretUsingJWT(rs256Jwt(claims(newUserId())))));
    const pem = fs.readFileSync(RS256_PUBLIC_KEY_FILE);
    const confused = makeJwt(claims(newUserId()), { alg: 'HS256', key: pem });
    fails(await call(anon.generateTwoFactorSecretUsingJWT(confused)), 401);
  });

// ------------------------------------------------------------------ the full flow

test('a send past the per-number hourly limit is 429, empty, with Retry-After; nothing sent', async () => {
  // The suite's server has no cooldown (its flows resend at once); the hourly limit (5) holds.
  const phone = newPhone();
  const userId = crypto.randomUUID();
  for (let i = 0; i < 5; i++) {
    okEmpty(await call(fa.sendTwoFactorCodeForEnableDisable({ userId, method: 'sms', mobilePhone: phone })));
  }
  const before = (await textsTo(phone)).length;
  fails(await call(fa.sendTwoFactorCodeForEnableDisable({ userId, method: 'sms', mobilePhone: phone })), 429);
  assert.equal((await textsTo(phone)).length, before);
  const raw = await fetch(`${MFAD_URL}/api/two-factor/send`, {
    method: 'POST',
    headers: { Authorization: API_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify({ userId, method: 'sms', mobilePhone: phone }),
  });
  assert.equal(raw.status, 429);
  const retry = Number(raw.headers.get('retry-after'));
  assert.ok(retry >= 1 && retry <= 3600, `Retry-After ${retry}`);
});

describe('full flow through the TypeScript client', () => {
  const st = {};

  test('enable authenticator: 10 recovery codes on the first method', async () => {
    st.userId = newUserId();
    assert.notEqual(await statusCode(st.userId), 242);
    const s = await newSecret();
    st.auth = new Authenticator(s.secretBase32Encoded);
    const wrong = await call(fa.enableTwoFactor(st.userId, { method: 'authenticator', code: st.auth.wrongCode(), secret: s.secret }));
    fails(wrong, 421);
    const b = ok(await call(fa.enableTwoFactor(st.userId, { method: 'authenticator', code: await st.auth.code(), secret: s.secret, name: 'Phone app' })));
    assert.equal(b.recoveryCodes.length, 10);
    assert.equal(new Set(b.recoveryCodes).size, 10);
    for (const c of b.recoveryCodes) assert.ok(RECOVERY_CODE.test(c), c);
    st.codes = b.recoveryCodes;
  });

  test('status 242 (TS sends applicationId=undefined literally)', async () => {
    const r = await call(fa.retrieveTwoFactorStatus(st.userId, undefined, undefined));
    assert.equal(r.status, 242, show(r));
    assert.equal(r.rejected, false, show(r));
    const r2 = await call(fa.retrieveTwoFactorStatus(st.userId, null, undefined));
    assert.equal(r2.status, 242, show(r2));
    const r3 = await call(fa.retrieveTwoFactorStatusWithRequest({ userId: st.userId, action: 'login' }));
    assert.equal(r3.status, 242, show(r3));
  });

  test('send an SMS code to a mobile phone and enable SMS', async () => {
    st.phone = newPhone();
    st.sms = await new Inbox('sms', st.phone).mark();
    okEmpty(await call(fa.sendTwoFactorCodeForEnableDisable({ userId: st.userId, method: 'sms', mobilePhone: st.phone })));
    const code = await st.sms.code();
    fails(await call(fa.enableTwoFactor(st.userId, { method: 'sms', mobilePhone: st.phone, code: otherCode(code) })), 421);
    okEmpty(await call(fa.enableTwoFactor(st.userId, { method: 'sms', mobilePhone: st.phone, code })));
  });

  test('start (userId) lists both methods', async () => {
    const b = await start(st.userId);
    const m = methodsByKind(b);
    assert.deepEqual(Object.keys(m).sort(), ['authenticator', 'sms']);
    assert.equal(m.sms.mobilePhone, st.phone);
    assert.equal(m.authenticator.name, 'Phone app');
    assert.deepEqual(m.authenticator.authenticator, { algorithm: 'HmacSHA1', codeLength: 6, timeStep: 30 });
    assert.equal(m.authenticator.secret, undefined);
    st.smsId = m.sms.id;
    st.authId = m.authenticator.id;
  });

  test('login with TOTP; the twoFactorId is then spent', async () => {
    const { twoFactorId } = await start(st.userId);
    const code = await st.auth.code();
    loginOk(await call(fa.twoFactorLogin({ twoFactorId, code })), st.userId);
    fails(await call(fa.twoFactorLogin({ twoFactorId, code })), 404);
    const again = await start(st.userId);
    fails(await call(fa.twoFactorLogin({ twoFactorId: again.twoFactorId, code })), 421); // replayed TOTP
  });

  test('login with a texted code (send/{twoFactorId} with methodId, no Authorization)', async () => {
    const { twoFactorId } = await start(st.userId);
    okEmpty(await call(fa.sendTwoFactorCodeForLoginUsingMethod(twoFactorId, { methodId: st.smsId })));
    const code = await st.sms.code();
    fails(await call(fa.twoFactorLogin({ twoFactorId, code: otherCode(code) })), 421);
    loginOk(await call(fa.twoFactorLogin({ twoFactorId, code, trustComputer: false })), st.userId);
  });

  test('login with a recovery code works once', async () => {
    const a = await start(st.userId);
    loginOk(await call(fa.twoFactorLogin({ twoFactorId: a.twoFactorId, code: st.codes[0] })), st.userId);
    const b = await start(st.userId);
    fails(await call(fa.twoFactorLogin({ twoFactorId: b.twoFactorId, code: st.codes[0] })), 421);
  });

  test('retrieve remaining, then regenerate, recovery codes', async () => {
    const left = ok(await call(fa.retrieveTwoFactorRecoveryCodes(st.userId))).recoveryCodes;
    assert.deepEqual([...left].sort(), st.codes.slice(1).sort());
    // TS sends this POST with Content-Type: text/plain and no body
    const fresh = ok(await call(fa.generateTwoFactorRecoveryCodes(st.userId))).recoveryCodes;
    assert.equal(fresh.length, 10);
    assert.equal(fresh.filter((c) => st.codes.includes(c)).length, 0);
    st.codes = fresh;
  });

  test('rename a method (PUT)', async () => {
    okEmpty(await call(fa.updateTwoFactor(st.userId, { methodId: st.smsId, name: 'Work phone' })));
    assert.equal(methodsByKind(await start(st.userId)).sms.name, 'Work phone');
  });

  test('email method with the code received by the SMTP server, then login with an emailed code', async () => {
    st.email = newEmail();
    const inbox = await new Inbox('email', st.email).mark();
    okEmpty(await call(fa.sendTwoFactorCodeForEnableDisable({ userId: st.userId, method: 'email', email: st.email })));
    okEmpty(await call(fa.enableTwoFactor(st.userId, { method: 'email', email: st.email, code: await inbox.code() })));
    const b = await start(st.userId);
    const m = methodsByKind(b);
    assert.equal(m.email.email, st.email);
    okEmpty(await call(fa.sendTwoFactorCodeForLoginUsingMethod(b.twoFactorId, { methodId: m.email.id })));
    loginOk(await call(fa.twoFactorLogin({ twoFactorId: b.twoFactorId, code: await inbox.code() })), st.userId);
  });

  test('disable SMS with a DELETE body (disableTwoFactorWithRequest)', async () => {
    okEmpty(await call(fa.sendTwoFactorCodeForEnableDisable({ userId: st.userId, methodId: st.smsId })));
    const code = await st.sms.code();
    fails(await call(fa.disableTwoFactorWithRequest(st.userId, { methodId: st.smsId, code: otherCode(code) })), 421);
    okEmpty(await call(fa.disableTwoFactorWithRequest(st.userId, { methodId: st.smsId, code })));
    assert.deepEqual(Object.keys(methodsByKind(await start(st.userId))).sort(), ['authenticator', 'email']);
  });

  test('disable with a recovery code removes every method', async () => {
    okEmpty(await call(fa.disableTwoFactor(st.userId, st.authId, st.codes[0])));
    assert.notEqual(await statusCode(st.userId), 242);
  });
});

// ------------------------------------------------------------------ quirks of this client

test('deprecated sendTwoFactorCodeForLogin: no body, Content-Type text/plain', async () => {
  const userId = newUserId();
  await enrollSms(userId, { first: true });
  const phone = methodsByKind(await start(userId)).sms.mobilePhone;
  const inbox = await new Inbox('sms', phone).mark();
  const { twoFactorId } = await start(userId);
  okEmpty(await call(fa.sendTwoFactorCodeForLogin(twoFactorId)));
  loginOk(await call(fa.twoFactorLogin({ twoFactorId, code: await inbox.code() })), userId);
});

test('login with the code returned by start', async () => {
  const { userId } = await enrollAuthenticator();
  await enrollSms(userId);
  const b = await start(userId);
  loginOk(await call(fa.twoFactorLogin({ twoFactorId: b.twoFactorId, code: b.code })), userId);
});

test('trustComputer yields a twoFactorTrustId that status honours', async () => {
  const { userId, auth } = await enrollAuthenticator();
  const { twoFactorId } = await start(userId);
  const b = loginOk(await call(fa.twoFactorLogin({ twoFactorId, code: await auth.code(), trustComputer: true })), userId);
  assert.equal(typeof b.twoFactorTrustId, 'string', JSON.stringify(b));
  const r = await call(fa.retrieveTwoFactorStatus(userId, undefined, b.twoFactorTrustId));
  assert.equal(r.status, 200, show(r));
});

// ------------------------------------------------------------------ errors

test('invalid requests: 400 with an Errors body', async () => {
  errors400(await call(fa.enableTwoFactor(newUserId(), { method: 'authenticator', secret: 'SP2m6K2Dg/x2JN9DyQvZ' })));
  errors400(await call(fa.enableTwoFactor(newUserId(), { method: 'carrier-pigeon', code: '123456', secret: 'SP2m6K2Dg/x2JN9DyQvZ' })));
  errors400(await call(fa.sendTwoFactorCodeForEnableDisable({ userId: newUserId(), method: 'sms', mobilePhone: 'not-a-phone' })));
});

test('unknown user: 404', async () => {
  const u = newUserId();
  fails(await call(fa.startTwoFactorLogin({ userId: u })), 404);
  fails(await call(fa.retrieveTwoFactorRecoveryCodes(u)), 404);
  fails(await call(fa.disableTwoFactorWithRequest(u, { methodId: 'ABCD', code: '123456' })), 404);
  fails(await call(fa.updateTwoFactor(u, { methodId: 'ABCD', name: 'x' })), 404);
});

test('unknown or reused twoFactorId: 404', async () => {
  fails(await call(fa.twoFactorLogin({ twoFactorId: 'YkQY5Gsyo4RlfmDciBGRmvfj3RmatUqrbjoIZ19fmw4', code: '123456' })), 404);
  const { userId, codes } = await enrollAuthenticator();
  const { twoFactorId } = await start(userId);
  loginOk(await call(fa.twoFactorLogin({ twoFactorId, code: codes[0] })), userId);
  fails(await call(fa.twoFactorLogin({ twoFactorId, code: codes[1] })), 404);
});

test('expired twoFactorId: 404', { skip: !SHORT_TTL_URL && 'MFAD_SHORT_TTL_URL not set' }, async () => {
  const short = new FusionAuthClient(API_KEY, SHORT_TTL_URL, TENANT_ID);
  const { userId, codes } = await enrollAuthenticator();
  const { twoFactorId } = await start(userId, {}, short);
  await new Promise((r) => setTimeout(r, 3500));
  fails(await call(short.twoFactorLogin({ twoFactorId, code: codes[0] })), 404);
});

test('bad API key: 401 with an empty body', async () => {
  const bad = new FusionAuthClient('sk_not_a_real_key_0123456789', MFAD_URL);
  fails(await call(bad.generateTwoFactorSecret()), 401);
  fails(await call(bad.startTwoFactorLogin({ userId: newUserId() })), 401);
  fails(await call(bad.retrieveTwoFactorStatus(newUserId(), undefined, undefined)), 401);
  fails(await call(bad.enableTwoFactor(newUserId(), { method: 'authenticator', code: '123456', secret: 'SP2m6K2Dg/x2JN9DyQvZ' })), 401);
});

test("another tenant's key: 404, and nothing changes", async () => {
  const { userId, codes } = await enrollAuthenticator();
  const authId = methodsByKind(await start(userId)).authenticator.id;
  fails(await call(other.startTwoFactorLogin({ userId })), 404);
  fails(await call(other.retrieveTwoFactorRecoveryCodes(userId)), 404);
  fails(await call(other.disableTwoFactorWithRequest(userId, { methodId: authId, code: codes[0] })), 404);
  assert.notEqual(await statusCode(userId, other), 242);
  assert.equal(await statusCode(userId), 242);
  const left = ok(await call(fa.retrieveTwoFactorRecoveryCodes(userId))).recoveryCodes;
  assert.deepEqual([...left].sort(), [...codes].sort());
});

test('X-FusionAuth-TenantId that does not match the key is refused', async () => {
  const { userId, auth, codes } = await enrollAuthenticator();
  const { twoFactorId } = await start(userId);
  const code = await auth.code(); // refused logins do not use it up
  for (const tenant of [OTHER_TENANT_ID, newUserId()]) {
    const c = new FusionAuthClient(API_KEY, MFAD_URL, tenant);
    tenantRejected(await call(c.generateTwoFactorSecret()));
    tenantRejected(await call(c.startTwoFactorLogin({ userId })));
    tenantRejected(await call(c.disableTwoFactorWithRequest(userId, { methodId: 'ABCD', code: codes[0] })));
    // A bad key is still an empty 401, whatever the header says.
    const bad = new FusionAuthClient('sk_not_a_real_key_0123456789', MFAD_URL, tenant);
    fails(await call(bad.generateTwoFactorSecret()), 401);
    // On the anonymous login route, a login of another tenant is not found.
    fails(await call(c.twoFactorLogin({ twoFactorId, code })), 404);
  }
  // The login is untouched.
  loginOk(await call(fa.twoFactorLogin({ twoFactorId, code })), userId);
  assert.equal(await statusCode(userId), 242);
  assert.equal(ok(await call(fa.retrieveTwoFactorRecoveryCodes(userId))).recoveryCodes.length, 10);
});

test('a throttled user: 409 with an Errors object and Retry-After, rejected as a ClientResponse', async () => {
  const { userId, auth } = await enrollAuthenticator();
  const first = await start(userId);
  for (let i = 0; i < 5; i++) {
    fails(await call(fa.twoFactorLogin({ twoFactorId: first.twoFactorId, code: otherCode(first.code) })), 421);
  }
  const again = await start(userId);
  const r = await call(fa.twoFactorLogin({ twoFactorId: again.twoFactorId, code: await auth.code() }));
  assert.equal(r.status, 409, show(r));
  assert.equal(r.rejected, true, show(r));
  assert.equal(r.body.generalErrors[0].code, '[TooManyFailedAttempts]', show(r));
});
