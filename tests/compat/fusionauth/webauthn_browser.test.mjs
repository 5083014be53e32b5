// Passkeys in a real browser: Debian's Chromium, headless, driven by playwright-core with
// Chromium's virtual authenticator (CDP WebAuthn.addVirtualAuthenticator). A small page
// served by this test calls navigator.credentials.create / get with the options mfad
// returns; the results are posted back through the official TypeScript client
// (@fusionauth/typescript-client 1.69.0, unmodified), which also lists and deletes the
// passkey. A screenshot of the page is kept in WEBAUTHN_ARTIFACT_DIR.
//
// Environment (run.sh sets these): MFAD_URL, MFAD_API_KEY, MFAD_TENANT_ID, PAGE_PORT (an
// origin `mfad webauthn config` allowed for the acme tenant, rp id localhost),
// WEBAUTHN_ARTIFACT_DIR; CHROMIUM (default /usr/bin/chromium).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { FusionAuthClient } from '@fusionauth/typescript-client';
import { chromium } from 'playwright-core';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} must be set (see tests/compat/fusionauth/run.sh)`);
  return v;
}

const MFAD_URL = env('MFAD_URL').replace(/\/+$/, '');
const API_KEY = env('MFAD_API_KEY');
const TENANT_ID = env('MFAD_TENANT_ID');
const PAGE_PORT = Number(env('PAGE_PORT'));
const ARTIFACTS = env('WEBAUTHN_ARTIFACT_DIR');
const ORIGIN = `http://localhost:${PAGE_PORT}`;
const RP_ID = 'localhost';

// The page: the base64url <-> ArrayBuffer conversions FusionAuth's docs describe, around
// the WebAuthn JavaScript API.
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>mfad passkeys</title></head>
<body><h1>mfad passkeys</h1><pre id="log">ready</pre>
<script>
const b64ToBuf = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4)), c => c.charCodeAt(0)).buffer;
const bufToB64 = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
const log = (line) => { document.getElementById('log').textContent += '\\n' + line; };
window.register = async (options) => {
  const publicKey = { ...options, challenge: b64ToBuf(options.challenge), user: { ...options.user, id: b64ToBuf(options.user.id) },
    excludeCredentials: (options.excludeCredentials || []).map(c => ({ ...c, id: b64ToBuf(c.id) })) };
  const cred = await navigator.credentials.create({ publicKey });
  log('registered ' + cred.id);
  return { id: cred.id, type: cred.type, clientExtensionResults: cred.getClientExtensionResults(),
    transports: cred.response.getTransports ? cred.response.getTransports() : [],
    response: { attestationObject: bufToB64(cred.response.attestationObject), clientDataJSON: bufToB64(cred.response.clientDataJSON) } };
};
window.authenticate = async (options) => {
  const publicKey = { ...options, challenge: b64ToBuf(options.challenge),
    allowCredentials: (options.allowCredentials || []).map(c => ({ ...c, id: b64ToBuf(c.id) })) };
  const cred = await navigator.credentials.get({ publicKey });
  log('asserted ' + cred.id);
  return { id: cred.id, type: cred.type, clientExtensionResults: cred.getClientExtensionResults(),
    response: { authenticatorData: bufToB64(cred.response.authenticatorData), clientDataJSON: bufToB64(cred.response.clientDataJSON),
      signature: bufToB64(cred.response.signature), userHandle: cred.response.userHandle ? bufToB64(cred.response.userHandle) : null } };
};
</script></body></html>`;

let server;
let browser;
let page;
let profile;

before(async () => {
  server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  await new Promise((resolve) => server.listen(PAGE_PORT, '127.0.0.1', resolve));
  profile = fs.mkdtempSync(path.join(process.env.TMPDIR || '/tmp', 'mfad-chromium-'));
  // A fresh profile (--user-data-dir, which playwright takes as launchPersistentContext's).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-proxy-server', '--host-resolver-rules=MAP localhost 127.0.0.1'],
  });
  const context = browser;
  page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  await page.goto(`${ORIGIN}/`);
});

after(async () => {
  if (browser) await browser.close();
  if (server) await new Promise((resolve) => server.close(resolve));
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
});

async function ok(promise) {
  try {
    const r = await promise;
    assert.equal(r.statusCode, 200);
    return r.response;
  } catch (e) {
    throw new Error(`FusionAuth call failed: HTTP ${e.statusCode} ${JSON.stringify(e.exception ?? e.response ?? e)}`);
  }
}

test('a real browser registers and uses a passkey through the TypeScript client', async () => {
  const fa = new FusionAuthClient(API_KEY, MFAD_URL);
  const anonymous = new FusionAuthClient(null, MFAD_URL, TENANT_ID);
  const userId = crypto.randomUUID();

  const start = await ok(fa.startWebAuthnRegistration({ userId, workflow: 'bootstrap', displayName: 'Browser', name: 'browser@example.com', userAgent: 'chromium' }));
  assert.equal(start.options.rp.id, RP_ID);
  assert.equal(start.options.authenticatorSelection.userVerification, 'required');
  const attestation = await page.evaluate((o) => window.register(o), start.options);
  const registered = await ok(fa.completeWebAuthnRegistration({ credential: attestation, origin: ORIGIN, rpId: RP_ID, userId }));
  assert.equal(registered.credential.userId, userId);
  assert.equal(registered.credential.credentialId, attestation.id);
  assert.ok([-7, -257].includes(registered.credential.algorithm));

  // Re-authentication assertion (anonymous, as the client sends it), then a passkey login.
  let options = (await ok(fa.startWebAuthnLogin({ userId, workflow: 'reauthentication' }))).options;
  assert.equal(options.userVerification, 'required');
  let assertion = await page.evaluate((o) => window.authenticate(o), options);
  const asserted = await ok(anonymous.completeWebAuthnAssertion({ credential: assertion, origin: ORIGIN, rpId: RP_ID }));
  assert.equal(asserted.credential.id, registered.credential.id);

  options = (await ok(fa.startWebAuthnLogin({ userId, workflow: 'bootstrap', state: { from: 'browser' } }))).options;
  assertion = await page.evaluate((o) => window.authenticate(o), options);
  const login = await ok(anonymous.completeWebAuthnLogin({ credential: assertion, origin: ORIGIN, rpId: RP_ID }));
  assert.equal(login.user.id, userId);
  assert.deepEqual(login.state, { from: 'browser' });
  assert.equal(login.token.split('.').length, 3);

  // The same signed assertion again is refused in FusionAuth's Errors shape.
  await assert.rejects(anonymous.completeWebAuthnAssertion({ credential: assertion, origin: ORIGIN, rpId: RP_ID }), (e) => {
    assert.equal(e.statusCode, 400);
    assert.ok(e.exception.fieldErrors['credential.response.clientDataJSON']);
    return true;
  });

  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const shot = path.join(ARTIFACTS, 'passkey.png');
  await page.screenshot({ path: shot });
  assert.ok(fs.statSync(shot).size > 1000);

  const listed = await ok(fa.retrieveWebAuthnCredentialsForUser(userId));
  assert.deepEqual(listed.credentials.map((c) => c.id), [registered.credential.id]);
  const one = await ok(fa.retrieveWebAuthnCredential(registered.credential.id));
  assert.equal(one.credential.signCount, listed.credentials[0].signCount);
  await ok(fa.deleteWebAuthnCredential(registered.credential.id));
  await assert.rejects(fa.retrieveWebAuthnCredential(registered.credential.id), (e) => e.statusCode === 404);
  await ok(fa.deleteWebAuthnCredentialsForUser(userId));
});
