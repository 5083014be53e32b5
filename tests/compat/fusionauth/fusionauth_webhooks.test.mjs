// FusionAuth-format webhooks: a two-factor flow through the official FusionAuth TypeScript
// client (1.69.0) makes events; the running mfad delivers them to a loopback receiver
// (../webhook_receiver.py). Each delivery is checked as FusionAuth documents its signed
// webhooks, with an independent JWT library (jose): the X-FusionAuth-Signature-JWT header
// is an HS256 JWT under the endpoint's secret whose `request_body_sha256` is the base64
// SHA-256 of the raw body; a tampered body and a wrong secret fail. The envelope is
// type-checked (`tsc --noEmit --strict`, excess properties refused) against the official
// client's `EventRequest` and the event model of its `type`, whose value must be one of
// the client's `EventType`s.
//
// Environment (run.sh sets these): MFAD_URL, MFAD_API_KEY, MFAD_TENANT_ID,
// WEBHOOK_RECEIVER_URL, WEBHOOK_FUSIONAUTH_PATH, WEBHOOK_FUSIONAUTH_SECRET.

import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import { FusionAuthClient, EventType } from '@fusionauth/typescript-client';
import * as jose from 'jose';
import * as OTPAuth from 'otpauth';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} must be set (see tests/compat/fusionauth/run.sh)`);
  return v;
}

const MFAD_URL = env('MFAD_URL').replace(/\/+$/, '');
const API_KEY = env('MFAD_API_KEY');
const TENANT_ID = env('MFAD_TENANT_ID');
const RECEIVER = env('WEBHOOK_RECEIVER_URL').replace(/\/+$/, '');
const PATH = env('WEBHOOK_FUSIONAUTH_PATH');
const SECRET = env('WEBHOOK_FUSIONAUTH_SECRET');
const HERE = path.dirname(fileURLToPath(import.meta.url));

const fa = new FusionAuthClient(API_KEY, MFAD_URL, TENANT_ID);

// The flow's events, as FusionAuth names them, with the client's model of each.
const MODELS = {
  'user.two-factor.method.add': 'UserTwoFactorMethodAddEvent',
  'user.login.failed': 'UserLoginFailedEvent',
  'user.login.success': 'UserLoginSuccessEvent',
  'user.two-factor.method.remove': 'UserTwoFactorMethodRemoveEvent',
};
const FLOW = Object.keys(MODELS);

async function call(promise) {
  try {
    const r = await promise;
    return { status: r.statusCode, body: r.response };
  } catch (e) {
    if (e && typeof e.statusCode === 'number') return { status: e.statusCode, body: e.exception };
    throw e;
  }
}

async function deliveries() {
  const res = await fetch(`${RECEIVER}/_test/deliveries?path=${encodeURIComponent(PATH)}`);
  assert.equal(res.status, 200);
  return (await res.json()).map((d) => {
    const raw = Buffer.from(d.body_b64, 'base64');
    return { headers: d.headers, raw, body: JSON.parse(raw.toString('utf8')) };
  });
}

async function deliveriesFor(userId, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const mine = (await deliveries()).filter((d) => d.body.event?.user?.id === userId);
    const types = new Set(mine.map((d) => d.body.event.type));
    if (FLOW.every((t) => types.has(t))) return mine;
    if (Date.now() > deadline) assert.fail(`within ${timeoutMs} ms only ${[...types].join(', ') || 'nothing'} arrived for ${userId}`);
    await sleep(200);
  }
}

/** A tenant id (`tenant_<ULID>`, or already a UUID) as the UUID with the same 128 bits. */
function tenantUuid(id) {
  if (/^[0-9a-f-]{36}$/.test(id)) return id;
  let n = 0n;
  for (const c of id.replace(/^tenant_/, '')) n = n * 32n + BigInt('0123456789ABCDEFGHJKMNPQRSTVWXYZ'.indexOf(c));
  const h = n.toString(16).padStart(32, '0');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const sha256b64 = (bytes) => crypto.createHash('sha256').update(bytes).digest('base64');
const key = (secret) => new TextEncoder().encode(secret);

/** FusionAuth's documented check: the JWT verifies under the key, and its claim is the body's hash. */
async function verifyFusionAuth(raw, jwt, secret) {
  const { payload, protectedHeader } = await jose.jwtVerify(jwt, key(secret), { algorithms: ['HS256'] });
  return { ok: payload.request_body_sha256 === sha256b64(raw), payload, protectedHeader };
}

describe('FusionAuth-format webhooks (X-FusionAuth-Signature-JWT)', () => {
  let userId;
  let mine;

  before(async () => {
    userId = crypto.randomUUID();
    const s = await call(fa.generateTwoFactorSecret());
    assert.equal(s.status, 200);
    const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(s.body.secretBase32Encoded), digits: 6, period: 30 });
    const enabled = await call(fa.enableTwoFactor(userId, { method: 'authenticator', code: totp.generate(), secret: s.body.secret }));
    assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
    const recovery = enabled.body.recoveryCodes;

    const started = await call(fa.startTwoFactorLogin({ userId }));
    assert.equal(started.status, 200);
    const { twoFactorId, code } = started.body;
    const methodId = started.body.methods.find((m) => m.method === 'authenticator').id;
    const wrong = String((Number(code) + 137911) % 1000000).padStart(6, '0');
    assert.equal((await call(fa.twoFactorLogin({ twoFactorId, code: wrong }))).status, 421);
    assert.equal((await call(fa.twoFactorLogin({ twoFactorId, code }))).status, 200);
    assert.equal((await call(fa.disableTwoFactor(userId, methodId, recovery[0]))).status, 200);

    mine = await deliveriesFor(userId);
  });

  it('delivers the flow in order, with FusionAuth type names and the headers', () => {
    const first = [];
    for (const d of mine) if (!first.includes(d.body.event.type)) first.push(d.body.event.type);
    assert.deepEqual(first, FLOW);
    const eventTypes = new Set(Object.values(EventType));
    for (const d of mine) {
      assert.ok(eventTypes.has(d.body.event.type), `${d.body.event.type} is a FusionAuth EventType`);
      assert.match(d.headers['content-type'], /^application\/json/);
      assert.match(d.headers['user-agent'], /^mfad-webhooks\/\d+\.\d+\.\d+/);
      const e = d.body.event;
      assert.match(e.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.equal(e.tenantId, tenantUuid(TENANT_ID), 'tenantId is the tenant as a UUID');
      assert.equal(e.user.tenantId, e.tenantId);
      assert.ok(Math.abs(Date.now() - e.createInstant) < 120_000, 'createInstant is ms near now');
    }
    const byType = Object.fromEntries(mine.map((d) => [d.body.event.type, d.body.event]));
    assert.equal(byType['user.two-factor.method.add'].method.method, 'authenticator');
    assert.match(byType['user.two-factor.method.add'].method.id, /^[A-Z0-9]{4}$/);
    assert.equal(byType['user.two-factor.method.remove'].method.id, byType['user.two-factor.method.add'].method.id);
    assert.deepEqual(byType['user.login.failed'].reason, { code: 'credentials' });
    const all = JSON.stringify(mine.map((d) => d.body));
    assert.ok(!all.includes('"secret"'), 'no secret in any delivery');
  });

  it('every signature verifies as FusionAuth documents, and a tampered body or wrong secret fails', async () => {
    for (const d of mine) {
      const jwt = d.headers['x-fusionauth-signature-jwt'];
      assert.ok(jwt, 'X-FusionAuth-Signature-JWT present');
      const good = await verifyFusionAuth(d.raw, jwt, SECRET);
      assert.equal(good.ok, true, `body hash of ${d.body.event.type}`);
      assert.equal(good.protectedHeader.alg, 'HS256');
      assert.equal(good.protectedHeader.typ, 'JWT');
      assert.deepEqual(Object.keys(good.payload), ['request_body_sha256']);

      const tampered = Buffer.from(d.raw.toString('utf8').replace('"type":"', '"type":"x'));
      assert.notDeepEqual(tampered, d.raw);
      assert.equal((await verifyFusionAuth(tampered, jwt, SECRET)).ok, false, 'tampered body');
      await assert.rejects(verifyFusionAuth(d.raw, jwt, `${SECRET}x`), (e) => e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    }
  });

  it("type-checks every envelope against the official client's EventRequest and event models", () => {
    // Inside this folder, so `@fusionauth/typescript-client` resolves from its node_modules.
    const dir = fs.mkdtempSync(path.join(HERE, '.webhook-types-'));
    const tsc = (file) =>
      execFileSync(process.execPath, [
        path.join(HERE, 'node_modules', 'typescript', 'bin', 'tsc'),
        '--noEmit', '--strict', '--skipLibCheck', '--target', 'es2022', '--lib', 'es2022,dom',
        '--module', 'esnext', '--moduleResolution', 'bundler', file,
      ], { cwd: HERE, stdio: 'pipe' });
    try {
      const head = `import { EventRequest, EventType, ${[...new Set(Object.values(MODELS))].join(', ')} } from '@fusionauth/typescript-client';`;
      const lines = [head];
      mine.forEach((d, i) => {
        const { type, ...rest } = d.body.event;
        const member = Object.entries(EventType).find(([, v]) => v === type)?.[0];
        assert.ok(member, `${type} is not an EventType of the client`);
        const literal = JSON.stringify(rest, null, 2).replace(/\n}$/, `,\n  "type": EventType.${member}\n}`);
        // An object literal: tsc refuses any property the model does not declare.
        lines.push(`const e${i}: { event: ${MODELS[type]} } = { event: ${literal} };`);
        lines.push(`export const r${i}: EventRequest = e${i};`);
      });
      const file = path.join(dir, 'deliveries.ts');
      fs.writeFileSync(file, `${lines.join('\n')}\n`);
      try {
        tsc(file);
      } catch (e) {
        assert.fail(`tsc refused the deliveries:\n${e.stdout}${e.stderr}\n${fs.readFileSync(file, 'utf8')}`);
      }
      // The check can fail: a field the model lacks is refused.
      const bad = path.join(dir, 'bad.ts');
      fs.writeFileSync(bad, `${head}\nexport const bad: { event: UserLoginFailedEvent } = { event: { reason: { code: 'credentials' }, notAField: 1 } };\n`);
      assert.throws(() => tsc(bad), (e) => String(e.stdout).includes('notAField'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
