// Token and key edges: an issuer whose JWKS fails (500, hang) is fetched once per
// cooldown however many tokens arrive, every token meanwhile gets a 503, and a recovered
// JWKS is used after the cooldown; tokens issued in the future are refused for every
// issuer kind; the well-known development secret counts only where the stack declares
// itself local (PLATFORM_LOCAL_STACK=1), whatever SUPABASE_URL says.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { resetIssuerProfiles } from '../../shared/auth/issuers.ts';
import { isServiceCredential } from '../../shared/auth/service.ts';
import { verifyUserToken } from '../../shared/auth/verify.ts';
import { ApiError } from '../../shared/errors.ts';
import { LOCAL_DEV_JWT_SECRET } from '../../shared/env.ts';
import { localStorage, objectStorage, supabaseStorage } from '../../shared/storage.ts';
import { localStack, webhookTargetProblem } from '../../shared/webhooks/ssrf.ts';
import { startFunctionsServer } from '../helpers/functions-server.ts';
import { call, errorCode } from '../helpers/http.ts';
import { LOCAL_CLERK_ISSUER, LOCAL_SUPABASE_ISSUER, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, TEST_JWT_SECRET, TestIssuer } from '../helpers/tokens.ts';

let auth: AuthFixture;
let saved: NodeJS.ProcessEnv;
beforeAll(async () => {
  auth = await configureAuth('postgresql://unused');
  saved = { ...process.env };
});
afterAll(() => auth.close());
afterEach(() => {
  vi.useRealTimers();
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
  resetIssuerProfiles();
});

const bearer = (t: string) => `Bearer ${t}`;
const now = () => Math.floor(Date.now() / 1000);

async function outcome(token: string): Promise<number | { status: number; code: string }> {
  try {
    await verifyUserToken(bearer(token));
    return 200;
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return { status: err.status, code: err.code };
  }
}

// ---------------------------------------------------------------- a failing JWKS

/** A stand-in JWKS endpoint on 127.0.0.1 that answers 200, 500 or never, and counts. */
async function jwksStandIn() {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  // `kids`: the key ids the set serves the key under (a rotation adds one).
  const state = { mode: 'ok' as 'ok' | 'fail' | 'hang', fetches: 0, kids: ['k1'] };
  const server = http.createServer((req, res) => {
    state.fetches++;
    if (state.mode === 'hang') return; // never answers; the client's timeout ends it
    if (state.mode === 'fail') return void res.writeHead(500).end('upstream broke');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.kids.map((kid) => ({ ...jwk, kid })) }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  let n = 0;
  return {
    state,
    url,
    /** A fresh Clerk session token (another subject each time, so nothing is cached per token). */
    token: (kid = 'k1') =>
      new SignJWT({ azp: 'http://localhost:3000', v: 2, sid: `sess_${n + 1}` })
        .setProtectedHeader({ alg: 'RS256', kid })
        .setIssuer(LOCAL_CLERK_ISSUER)
        .setSubject(`user_${++n}`)
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(privateKey),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const COOLDOWN_MS = 30_000;
const TOKENS = 100;

describe('a failing JWKS endpoint', () => {
  for (const mode of ['fail', 'hang'] as const) {
    it(`is fetched once per cooldown when it ${mode === 'fail' ? 'answers 500' : 'hangs'}: ${TOKENS} tokens → 1 fetch, all 503; then the recovered keys serve`, async () => {
      const jwks = await jwksStandIn();
      try {
        // A hang ends by the client's timeout: long enough for the request to reach the
        // stand-in on a loaded machine, short enough for the test.
        Object.assign(process.env, { CLERK_JWKS_URL: jwks.url, JWKS_COOLDOWN_MS: String(COOLDOWN_MS), JWKS_TIMEOUT_MS: mode === 'hang' ? '2000' : '10000' });
        resetIssuerProfiles();
        vi.useFakeTimers({ toFake: ['Date'], now: Date.now() }); // the cooldown's clock; timeouts stay real
        jwks.state.mode = mode;

        const sequential = [];
        for (let i = 0; i < TOKENS; i++) sequential.push(await outcome(await jwks.token()));
        const concurrent = await Promise.all(Array.from({ length: TOKENS }, async () => outcome(await jwks.token())));
        for (const r of [...sequential, ...concurrent]) expect(r).toEqual({ status: 503, code: 'issuer_unavailable' });
        expect(jwks.state.fetches).toBe(1);

        // Through a function: the common error shape, 503.
        const res = await call(tenantsApp, 'GET', '/tenants/me', { token: await jwks.token() });
        expect([res.status, errorCode(res)]).toEqual([503, 'issuer_unavailable']);
        // Retry-After points past the cooldown's remainder: no token causes a fetch before then.
        const raw = await tenantsApp.request('/tenants/me', { headers: { authorization: `Bearer ${await jwks.token()}` } });
        expect(raw.status).toBe(503);
        const retryAfter = Number(raw.headers.get('retry-after'));
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        expect(retryAfter).toBeLessThanOrEqual(COOLDOWN_MS / 1_000);
        expect(jwks.state.fetches).toBe(1);

        // The issuer recovers; nothing is fetched before the cooldown has passed …
        jwks.state.mode = 'ok';
        vi.setSystemTime(Date.now() + COOLDOWN_MS - 1_000);
        expect(await outcome(await jwks.token())).toEqual({ status: 503, code: 'issuer_unavailable' });
        expect(jwks.state.fetches).toBe(1);
        // … after it, one fetch, and the keys serve every later token from the cache.
        vi.setSystemTime(Date.now() + 2_000);
        expect(await outcome(await jwks.token())).toBe(200);
        for (let i = 0; i < 20; i++) expect(await outcome(await jwks.token())).toBe(200);
        expect(jwks.state.fetches).toBe(2);
      } finally {
        await jwks.close();
      }
    });
  }

  it('an unknown kid on a failing issuer costs one fetch per cooldown and is 503, known kids keep working', async () => {
    const jwks = await jwksStandIn();
    try {
      Object.assign(process.env, { CLERK_JWKS_URL: jwks.url, JWKS_COOLDOWN_MS: String(COOLDOWN_MS), JWKS_TIMEOUT_MS: '10000' });
      resetIssuerProfiles();
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
      expect(await outcome(await jwks.token())).toBe(200);
      expect(jwks.state.fetches).toBe(1);
      jwks.state.mode = 'fail';
      vi.setSystemTime(Date.now() + COOLDOWN_MS + 1_000); // a refetch on an unknown kid is allowed again
      const unknown = [];
      for (let i = 0; i < TOKENS; i++) unknown.push(await outcome(await jwks.token(`rotated-${i}`)));
      expect(unknown[0]).toEqual({ status: 503, code: 'issuer_unavailable' }); // the one refetch failed
      // Within the cooldown no fetch, and still 503: the kid may be a rotation only the
      // failing issuer could confirm (a 401 would sign the user out).
      for (const r of unknown.slice(1)) expect(r).toEqual({ status: 503, code: 'issuer_unavailable' });
      expect(jwks.state.fetches).toBe(2);
      // The issuer is back, with the new key, while the keys here are still fresh: once
      // the cooldown has passed, the new kid fetches again and verifies.
      jwks.state.mode = 'ok';
      jwks.state.kids.push('rotated-0');
      vi.setSystemTime(Date.now() + COOLDOWN_MS + 1_000);
      expect(await outcome(await jwks.token('rotated-0'))).toBe(200);
      expect(jwks.state.fetches).toBe(3);
      expect(await outcome(await jwks.token())).toBe(200); // the cached key still verifies
    } finally {
      await jwks.close();
    }
  });

  it('keys past their cache age keep verifying while the issuer fails, for a day, then 503', async () => {
    const jwks = await jwksStandIn();
    try {
      Object.assign(process.env, { CLERK_JWKS_URL: jwks.url, JWKS_COOLDOWN_MS: String(COOLDOWN_MS), JWKS_TIMEOUT_MS: '10000' });
      resetIssuerProfiles();
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
      expect(await outcome(await jwks.token())).toBe(200);
      jwks.state.mode = 'fail';
      // Past the keys' ten minutes: the refetch fails, the keys it had still verify.
      vi.setSystemTime(Date.now() + 600_000 + 1_000);
      expect(await outcome(await jwks.token())).toBe(200);
      expect(jwks.state.fetches).toBe(2);
      // Within the cooldown nothing is fetched, and the keys still serve.
      expect(await outcome(await jwks.token())).toBe(200);
      expect(jwks.state.fetches).toBe(2);
      // A kid the old keys do not have may be a rotation they predate: the issuer's to
      // answer, a 503 to retry — not a 401 that signs the user out.
      expect(await outcome(await jwks.token('rotated-while-down'))).toEqual({ status: 503, code: 'issuer_unavailable' });
      expect(jwks.state.fetches).toBe(2);
      // A day later the issuer still fails: the keys are too old to trust.
      vi.setSystemTime(Date.now() + 86_400_000);
      const token = await jwks.token();
      expect(await outcome(token)).toEqual({ status: 503, code: 'issuer_unavailable' });
      // The issuer answers again: fresh keys, once the cooldown has passed.
      jwks.state.mode = 'ok';
      vi.setSystemTime(Date.now() + COOLDOWN_MS + 1_000);
      expect(await outcome(await jwks.token())).toBe(200);
    } finally {
      await jwks.close();
    }
  });
});

// ---------------------------------------------------------------- iat in the future

describe('tokens issued in the future', () => {
  const skewed = (iat: number) => ({ aud: 'authenticated', role: 'authenticated', iat });

  async function signed(kind: 'supabase-hs256' | 'supabase-jwks' | 'clerk' | 'supertokens', iat: number) {
    const build = (claims: Record<string, unknown>, issuer: string, sub: string) =>
      new SignJWT(claims).setIssuer(issuer).setSubject(sub).setExpirationTime(now() + 7200);
    if (kind === 'supabase-hs256') {
      return await build(skewed(iat), LOCAL_SUPABASE_ISSUER, users.acmeUser.id).setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    }
    if (kind === 'supabase-jwks') {
      const issuer = await TestIssuer.start(LOCAL_SUPABASE_ISSUER, 'ES256');
      await issuer.close();
      process.env.SUPABASE_JWKS = JSON.stringify({ keys: issuer.keys.map((k) => k.publicJwk) });
      resetIssuerProfiles();
      const key = issuer.keys[0];
      return await build(skewed(iat), LOCAL_SUPABASE_ISSUER, users.acmeUser.id)
        .setProtectedHeader({ alg: key.alg, kid: key.kid }).sign(key.privateKey);
    }
    const issuer = kind === 'clerk' ? auth.clerk : auth.supertokens;
    const key = issuer.keys.at(-1)!;
    return await build({ azp: 'http://localhost:3000', sid: 'sess_1', tenant_id: 'acme', sessionHandle: 'st-session-1', iat }, issuer.issuer, 'someone')
      .setProtectedHeader({ alg: key.alg, kid: key.kid }).sign(key.privateKey);
  }

  for (const kind of ['supabase-hs256', 'supabase-jwks', 'clerk', 'supertokens'] as const) {
    it(`${kind}: iat an hour ahead → 401; within the 5 s skew → accepted`, async () => {
      expect(await outcome(await signed(kind, now() + 3600))).toEqual({ status: 401, code: 'invalid_token' });
      expect(await outcome(await signed(kind, now() + 60))).toEqual({ status: 401, code: 'invalid_token' });
      expect(await outcome(await signed(kind, now() + 2))).toBe(200);
      expect(await outcome(await signed(kind, now() - 60))).toBe(200);
    });
  }

  it('through a function: the common error shape', async () => {
    const res = await call(tenantsApp, 'GET', '/tenants/me', { token: await signed('clerk', now() + 3600) });
    expect([res.status, errorCode(res)]).toEqual([401, 'invalid_token']);
  });

  it('a service-role JWT from the future is no machine credential', async () => {
    const at = (iat: number) =>
      new SignJWT({ role: 'service_role', iat }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(now() + 7200)
        .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    expect(await isServiceCredential(bearer(await at(now() + 3600)))).toBe(false);
    expect(await isServiceCredential(bearer(await at(now() - 10)))).toBe(true);
  });
});

// ---------------------------------------------------------------- the local stack, declared

describe('the local stack is a declared setting, not a guess from SUPABASE_URL', () => {
  const devToken = (secret = LOCAL_DEV_JWT_SECRET) =>
    new SignJWT({ aud: 'authenticated', role: 'authenticated' }).setProtectedHeader({ alg: 'HS256' })
      .setIssuer(LOCAL_SUPABASE_ISSUER).setSubject(users.super.id).setIssuedAt().setExpirationTime('1h')
      .sign(new TextEncoder().encode(secret));
  const devService = () =>
    new SignJWT({ role: 'service_role' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h')
      .sign(new TextEncoder().encode(LOCAL_DEV_JWT_SECRET));

  // SUPABASE_URL unset (the old rule defaulted it to loopback) or loopback; secret unset
  // or set to the well-known value: without PLATFORM_LOCAL_STACK=1 nothing local counts.
  const notDeclared = [
    { SUPABASE_URL: undefined, SUPABASE_JWT_SECRET: undefined },
    { SUPABASE_URL: 'http://127.0.0.1:54321', SUPABASE_JWT_SECRET: undefined },
    { SUPABASE_URL: 'http://localhost:54321', SUPABASE_JWT_SECRET: undefined },
    { SUPABASE_URL: 'http://127.0.0.1:54321', SUPABASE_JWT_SECRET: LOCAL_DEV_JWT_SECRET },
    { SUPABASE_URL: 'https://abcdefgh.supabase.co', JWT_SECRET: LOCAL_DEV_JWT_SECRET },
  ];
  for (const setting of notDeclared) {
    it(`not declared local (${JSON.stringify(setting)}): the dev secret forges nothing; no local storage, no loopback receivers`, async () => {
      delete process.env.PLATFORM_LOCAL_STACK;
      delete process.env.STORAGE_BACKEND;
      for (const [k, v] of Object.entries(setting)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      process.env.SUPABASE_AUTH_ISSUER = LOCAL_SUPABASE_ISSUER; // the token's issuer stays a known one
      resetIssuerProfiles();
      expect(await outcome(await devToken())).toEqual({ status: 401, code: 'invalid_token' });
      expect(await isServiceCredential(bearer(await devService()))).toBe(false);
      expect(localStack()).toBe(false);
      expect(webhookTargetProblem('http://127.0.0.1:8080/hook')).not.toBeNull();
      expect(objectStorage()).toBe(supabaseStorage);
      process.env.STORAGE_BACKEND = 'local';
      expect(() => objectStorage()).toThrow(/local stack/);
    });
  }

  it('declared local (PLATFORM_LOCAL_STACK=1): the dev secret is the default, local storage and loopback receivers work', async () => {
    process.env.PLATFORM_LOCAL_STACK = '1';
    delete process.env.SUPABASE_JWT_SECRET;
    delete process.env.STORAGE_BACKEND;
    resetIssuerProfiles();
    expect(await outcome(await devToken())).toBe(200);
    expect(await isServiceCredential(bearer(await devService()))).toBe(true);
    expect(localStack()).toBe(true);
    expect(webhookTargetProblem('http://127.0.0.1:8080/hook')).toBeNull();
    expect(objectStorage()).toBe(localStorage);
  });

  it('the functions server (Deno) honours it: without PLATFORM_LOCAL_STACK the dev secret is refused', async () => {
    const devTok = await devToken();
    const server = await startFunctionsServer({
      PLATFORM_LOCAL_STACK: '',
      SUPABASE_URL: 'http://127.0.0.1:54321',
      SUPABASE_JWT_SECRET: LOCAL_DEV_JWT_SECRET,
      SUPABASE_DB_URL: 'postgresql://postgres:postgres@127.0.0.1:1/postgres',
    });
    try {
      const res = await fetch(`${server.url}/functions/v1/tenants/me`, { headers: { authorization: bearer(devTok) } });
      expect(res.status).toBe(401);
      expect((await res.json()).error.code).toBe('invalid_token');
      // The local storage endpoint is not there either.
      expect((await fetch(`${server.url}/storage/v1/local/attachments/a/b?op=download`)).status).toBe(404);
    } finally {
      await server.stop();
    }
  });
});
