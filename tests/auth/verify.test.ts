// Token verification (shared/auth): every issuer profile, every way a token can be
// wrong, each a 401 in the common error shape; machine keys recognised separately.
import { SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { CLOCK_TOLERANCE_S, resetIssuerProfiles } from '../../shared/auth/issuers.ts';
import { isServiceCredential } from '../../shared/auth/service.ts';
import { verifyUserToken } from '../../shared/auth/verify.ts';
import { ApiError } from '../../shared/errors.ts';
import { LOCAL_SUPABASE_ISSUER, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET, TestIssuer } from '../helpers/tokens.ts';

let auth: AuthFixture;
beforeAll(async () => {
  auth = await configureAuth('postgresql://unused');
});
afterAll(() => auth.close());

const bearer = (t: string) => `Bearer ${t}`;

async function rejection(authorization: string | undefined): Promise<{ status: number; code: string }> {
  // (503s from an unreachable issuer are ApiErrors too.)
  try {
    await verifyUserToken(authorization);
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return { status: (err as ApiError).status, code: (err as ApiError).code };
  }
  throw new Error('token was accepted');
}

describe('Supabase Auth (HS256 with the project secret)', () => {
  it('accepts a valid token and reads subject and tenant claim', async () => {
    const id = await verifyUserToken(bearer(await supabaseToken(users.acmeAdmin, { tenantId: 'acme' })));
    expect(id).toMatchObject({ kind: 'supabase', issuer: LOCAL_SUPABASE_ISSUER, subject: users.acmeAdmin.id, tenantHint: 'acme' });
  });

  it('reads the tenant from app_metadata too', async () => {
    const t = await supabaseToken(users.acmeAdmin, { claims: { app_metadata: { tenant_id: 'globex' } } });
    expect((await verifyUserToken(bearer(t))).tenantHint).toBe('globex');
  });

  it('honours SUPABASE_JWT_SECRET: the local default secret no longer verifies', async () => {
    const t = await supabaseToken(users.acmeAdmin, { secret: 'super-secret-jwt-token-with-at-least-32-characters-long' });
    expect(await rejection(bearer(t))).toEqual({ status: 401, code: 'invalid_token' });
  });

  it.each([
    ['expired', { exp: Math.floor(Date.now() / 1000) - 60 }, 'token_expired'],
    ['wrong audience', { claims: { aud: 'somebody-else' } }, 'invalid_token'],
    ['anon role', { claims: { role: 'anon' } }, 'user_token_required'],
  ] as const)('refuses a token that is %s', async (_, opts, code) => {
    expect(await rejection(bearer(await supabaseToken(users.acmeAdmin, opts as never)))).toEqual({ status: 401, code });
  });

  it('refuses a token that is not valid yet (nbf)', async () => {
    const t = await new SignJWT({ aud: 'authenticated', role: 'authenticated' })
      .setProtectedHeader({ alg: 'HS256' }).setIssuer(LOCAL_SUPABASE_ISSUER).setSubject('x')
      .setNotBefore(Math.floor(Date.now() / 1000) + 3600).setExpirationTime('2h')
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    expect(await rejection(bearer(t))).toEqual({ status: 401, code: 'invalid_token' });
  });

  it('refuses a token without expiry or subject', async () => {
    const key = new TextEncoder().encode(TEST_JWT_SECRET);
    const noExp = await new SignJWT({ aud: 'authenticated' }).setProtectedHeader({ alg: 'HS256' }).setIssuer(LOCAL_SUPABASE_ISSUER).setSubject('x').sign(key);
    const noSub = await new SignJWT({ aud: 'authenticated' }).setProtectedHeader({ alg: 'HS256' }).setIssuer(LOCAL_SUPABASE_ISSUER).setExpirationTime('1h').sign(key);
    expect(await rejection(bearer(noExp))).toEqual({ status: 401, code: 'invalid_token' });
    expect(await rejection(bearer(noSub))).toEqual({ status: 401, code: 'invalid_token' });
  });

  it('refuses alg none, a tampered payload and garbage', async () => {
    const none = new UnsecuredJWT({ aud: 'authenticated', role: 'authenticated' }).setIssuer(LOCAL_SUPABASE_ISSUER).setSubject(users.super.id).setExpirationTime('1h').encode();
    expect(await rejection(bearer(none))).toEqual({ status: 401, code: 'invalid_token' });
    const good = await supabaseToken(users.acmeUser);
    const [h, , s] = good.split('.');
    const forged = Buffer.from(JSON.stringify({ iss: LOCAL_SUPABASE_ISSUER, sub: users.super.id, aud: 'authenticated', exp: 4102444800 })).toString('base64url');
    expect(await rejection(bearer(`${h}.${forged}.${s}`))).toEqual({ status: 401, code: 'invalid_token' });
    expect(await rejection(bearer('not-a-jwt'))).toEqual({ status: 401, code: 'invalid_token' });
  });

  it('refuses a token from an unknown issuer, and a missing or malformed header', async () => {
    const t = await new SignJWT({ aud: 'authenticated' }).setProtectedHeader({ alg: 'HS256' }).setIssuer('https://evil.example/auth/v1')
      .setSubject('x').setExpirationTime('1h').sign(new TextEncoder().encode(TEST_JWT_SECRET));
    expect(await rejection(bearer(t))).toEqual({ status: 401, code: 'unknown_issuer' });
    expect(await rejection(undefined)).toEqual({ status: 401, code: 'missing_token' });
    expect(await rejection('Basic dXNlcjpwYXNz')).toEqual({ status: 401, code: 'invalid_token' });
  });

  it('verifies asymmetric Supabase tokens against SUPABASE_JWKS (the new key model)', async () => {
    const issuer = await TestIssuer.start(LOCAL_SUPABASE_ISSUER, 'ES256');
    process.env.SUPABASE_JWKS = JSON.stringify({ keys: issuer.keys.map((k) => k.publicJwk) });
    resetIssuerProfiles();
    try {
      const t = await issuer.sign(users.acmeUser.id, { aud: 'authenticated', role: 'authenticated' });
      expect((await verifyUserToken(bearer(t))).subject).toBe(users.acmeUser.id);
      const stranger = await TestIssuer.strangerKey('ES256');
      const bad = await issuer.sign(users.acmeUser.id, { aud: 'authenticated' }, { key: stranger });
      expect(await rejection(bearer(bad))).toEqual({ status: 401, code: 'invalid_token' });
    } finally {
      delete process.env.SUPABASE_JWKS;
      resetIssuerProfiles();
      await issuer.close();
    }
  });

  it('takes SUPABASE_JWKS as a bare array of keys too; one that is no key set is ignored, not a 500 on every request', async () => {
    const issuer = await TestIssuer.start(LOCAL_SUPABASE_ISSUER, 'ES256');
    try {
      process.env.SUPABASE_JWKS = JSON.stringify(issuer.keys.map((k) => k.publicJwk));
      resetIssuerProfiles();
      const t = await issuer.sign(users.acmeUser.id, { aud: 'authenticated', role: 'authenticated' });
      expect((await verifyUserToken(bearer(t))).subject).toBe(users.acmeUser.id);
      // Not a key set: left out, and the remote key set serves (HS256 tokens as ever).
      const configuredUrl = process.env.SUPABASE_JWKS_URL;
      process.env.SUPABASE_JWKS_URL = issuer.jwksUrl;
      onTestFinished(() => {
        if (configuredUrl === undefined) delete process.env.SUPABASE_JWKS_URL;
        else process.env.SUPABASE_JWKS_URL = configuredUrl;
      });
      for (const broken of ['{not json', '{"keys": "none"}']) {
        process.env.SUPABASE_JWKS = broken;
        resetIssuerProfiles();
        const hs = await supabaseToken(users.acmeUser, {});
        expect((await verifyUserToken(bearer(hs))).subject, broken).toBe(users.acmeUser.id);
        expect((await verifyUserToken(bearer(t))).subject, broken).toBe(users.acmeUser.id);
      }
    } finally {
      delete process.env.SUPABASE_JWKS;
      resetIssuerProfiles();
      await issuer.close();
    }
  });
});

describe('tokens verified recently (shared/auth/verify.ts keeps them a minute)', () => {
  it('answers a repeated token with the same identity, and never lets an expired one through', async () => {
    const t = await supabaseToken(users.acmeAdmin, { tenantId: 'acme', exp: Math.floor(Date.now() / 1000) + 30 });
    const first = await verifyUserToken(bearer(t));
    expect(await verifyUserToken(bearer(t))).toEqual(first);
    // 31 s later the kept entry has outlived the token: verified again, and refused.
    vi.useFakeTimers({ now: Date.now() + 31_000 + CLOCK_TOLERANCE_S * 1000, toFake: ['Date'] });
    try {
      expect(await rejection(bearer(t))).toEqual({ status: 401, code: 'token_expired' });
    } finally {
      vi.useRealTimers();
    }
  });

  it('forgets what it verified when the issuers change (a rotated secret refuses at once)', async () => {
    const t = await supabaseToken(users.acmeAdmin, { tenantId: 'acme' });
    await verifyUserToken(bearer(t));
    const before = process.env.SUPABASE_JWT_SECRET;
    process.env.SUPABASE_JWT_SECRET = 'a-rotated-project-secret-of-at-least-32-characters';
    resetIssuerProfiles();
    try {
      expect(await rejection(bearer(t))).toEqual({ status: 401, code: 'invalid_token' });
    } finally {
      process.env.SUPABASE_JWT_SECRET = before;
      resetIssuerProfiles();
    }
    expect((await verifyUserToken(bearer(t))).subject).toBe(users.acmeAdmin.id);
  });

  it('keeps no failure: a refused token stays refused, a fixed configuration accepts the next one', async () => {
    const forged = await supabaseToken(users.acmeAdmin, { secret: 'not-the-project-secret-but-long-enough-to-sign' });
    expect(await rejection(bearer(forged))).toEqual({ status: 401, code: 'invalid_token' });
    expect(await rejection(bearer(forged))).toEqual({ status: 401, code: 'invalid_token' });
  });
});

describe('Clerk (RS256 through JWKS)', () => {
  const session = (o?: Record<string, unknown>) => ({ azp: 'http://localhost:3000', v: 2, ...(o ? { o } : {}) });

  it('accepts a v2 session token and reads the active organisation', async () => {
    const t = await auth.clerk.sign('user_admin_acme', session({ id: 'org_acme', rol: 'admin', slg: 'acme' }));
    expect(await verifyUserToken(bearer(t))).toMatchObject({ kind: 'clerk', subject: 'user_admin_acme', tenantHint: 'org_acme' });
  });

  it('reads the v1 org_id claim', async () => {
    const t = await auth.clerk.sign('user_admin_acme', { azp: 'http://localhost:3000', org_id: 'org_globex', org_role: 'admin' });
    expect((await verifyUserToken(bearer(t))).tenantHint).toBe('org_globex');
  });

  it('refuses a pending session and a foreign azp', async () => {
    expect(await rejection(bearer(await auth.clerk.sign('user_x', { ...session(), sts: 'pending' })))).toEqual({ status: 401, code: 'session_pending' });
    expect(await rejection(bearer(await auth.clerk.sign('user_x', { azp: 'https://evil.example' })))).toEqual({ status: 401, code: 'invalid_token' });
    expect(await rejection(bearer(await auth.clerk.sign('user_x', {})))).toEqual({ status: 401, code: 'invalid_token' });
    // A JWT template's token (getToken({ template }), made for another service) is signed
    // alike and carries the page's azp, but names no session; one addressed to another
    // audience is that audience's.
    expect(await rejection(bearer(await auth.clerk.sign('user_admin_acme', { ...session(), sid: undefined })))).toEqual({ status: 401, code: 'invalid_token' });
    expect(await rejection(bearer(await auth.clerk.sign('user_admin_acme', { ...session(), sid: 'user_admin_acme' })))).toEqual({ status: 401, code: 'invalid_token' });
    expect(await rejection(bearer(await auth.clerk.sign('user_admin_acme', { ...session(), aud: 'convex' }, { exp: '3650d' })))).toEqual({ status: 401, code: 'invalid_token' });
  });

  it('refuses a signature from a key the issuer never published', async () => {
    const stranger = await TestIssuer.strangerKey('RS256');
    expect(await rejection(bearer(await auth.clerk.sign('user_x', session(), { key: stranger })))).toEqual({ status: 401, code: 'invalid_token' });
  });

  it('refuses an HS256 token claiming the Clerk issuer (no algorithm confusion)', async () => {
    // A session token in every other respect (sid, azp): refused for its algorithm, not by
    // a later check that would refuse it anyway.
    const t = await new SignJWT({ ...session(), sid: 'sess_confused' }).setProtectedHeader({ alg: 'HS256' }).setIssuer(auth.clerk.issuer)
      .setSubject('user_admin_acme').setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(TEST_JWT_SECRET));
    expect(await rejection(bearer(t))).toEqual({ status: 401, code: 'invalid_token' });
    await expect(verifyUserToken(bearer(t))).rejects.toThrow(/Algorithm HS256 is not accepted/);
  });

  it('caches keys and refetches the JWKS when a new kid appears', async () => {
    await verifyUserToken(bearer(await auth.clerk.sign('user_a', session())));
    const before = auth.clerk.fetches;
    await verifyUserToken(bearer(await auth.clerk.sign('user_a', session())));
    expect(auth.clerk.fetches).toBe(before); // cached
    await auth.clerk.rotate();
    await verifyUserToken(bearer(await auth.clerk.sign('user_a', session())));
    expect(auth.clerk.fetches).toBe(before + 1); // unknown kid → one refetch
  });
});

describe('SuperTokens (ES256 through JWKS)', () => {
  it('accepts a token and reads the tenant from the custom tenant_id claim, not tId', async () => {
    const t = await auth.supertokens.sign('st-user_acme', { tId: 'public', tenant_id: 'acme', sessionHandle: 'h' });
    expect(await verifyUserToken(bearer(t))).toMatchObject({ kind: 'supertokens', subject: 'st-user_acme', tenantHint: 'acme' });
  });

  it('refuses an expired one', async () => {
    const t = await auth.supertokens.sign('st-user_acme', { sessionHandle: 'h' }, { exp: Math.floor(Date.now() / 1000) - 30 });
    expect(await rejection(bearer(t))).toEqual({ status: 401, code: 'token_expired' });
  });

  it("refuses a JWT of the backend's JWT recipe (same keys and issuer, no session): only an access token names its session", async () => {
    for (const claims of [{ tenant_id: 'acme' }, { tenant_id: 'acme', sessionHandle: '' }, { tenant_id: 'acme', sessionHandle: 7 }]) {
      const t = await auth.supertokens.sign('st-user_acme', claims, { exp: Math.floor(Date.now() / 1000) + 100 * 365 * 86400 });
      expect(await rejection(bearer(t)), JSON.stringify(claims)).toEqual({ status: 401, code: 'invalid_token' });
    }
  });
});

describe('machine credentials', () => {
  const legacy = (role: string, secret = TEST_JWT_SECRET) =>
    new SignJWT({ iss: 'supabase', role }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(secret));

  it('recognises the legacy service_role JWT and the new secret keys', async () => {
    process.env.SUPABASE_SECRET_KEYS = JSON.stringify({ default: 'sb_secret_test123' });
    try {
      expect(await isServiceCredential(bearer(await legacy('service_role')))).toBe(true);
      expect(await isServiceCredential(bearer('sb_secret_test123'))).toBe(true);
      expect(await isServiceCredential(undefined, 'sb_secret_test123')).toBe(true);
      expect(await isServiceCredential(bearer('sb_secret_wrong'))).toBe(false);
      expect(await isServiceCredential(bearer(await legacy('service_role', 'another-secret-that-is-32-chars-long!!')))).toBe(false);
      expect(await isServiceCredential(bearer(await legacy('anon')))).toBe(false);
      expect(await isServiceCredential(bearer(await supabaseToken(users.super)))).toBe(false);
    } finally {
      delete process.env.SUPABASE_SECRET_KEYS;
    }
  });

  it('remembers a verified machine credential only while the configuration it was checked against holds', async () => {
    process.env.SUPABASE_SECRET_KEYS = JSON.stringify({ default: 'sb_secret_remembered' });
    try {
      const jwt = bearer(await legacy('service_role'));
      expect(await isServiceCredential(bearer('sb_secret_remembered'))).toBe(true);
      expect(await isServiceCredential(bearer('sb_secret_remembered'))).toBe(true);
      expect(await isServiceCredential(jwt)).toBe(true);
      // Rotated: the old key and tokens of the old project secret are refused at once.
      process.env.SUPABASE_SECRET_KEYS = JSON.stringify({ default: 'sb_secret_rotated' });
      expect(await isServiceCredential(bearer('sb_secret_remembered'))).toBe(false);
      expect(await isServiceCredential(bearer('sb_secret_rotated'))).toBe(true);
      const before = process.env.SUPABASE_JWT_SECRET;
      process.env.SUPABASE_JWT_SECRET = 'a-rotated-project-secret-of-at-least-32-characters';
      try {
        expect(await isServiceCredential(jwt)).toBe(false);
      } finally {
        process.env.SUPABASE_JWT_SECRET = before;
      }
      // Never past its exp, though remembered.
      vi.useFakeTimers({ now: Date.now() + 2 * 3600_000 });
      try {
        expect(await isServiceCredential(jwt)).toBe(false);
      } finally {
        vi.useRealTimers();
      }
    } finally {
      delete process.env.SUPABASE_SECRET_KEYS;
    }
  });

  it('refuses machine and app keys where a user token is required', async () => {
    process.env.SUPABASE_PUBLISHABLE_KEYS = JSON.stringify({ default: 'sb_publishable_abc' });
    try {
      expect(await rejection(bearer(await legacy('service_role')))).toEqual({ status: 401, code: 'user_token_required' });
      expect(await rejection(bearer(await legacy('anon')))).toEqual({ status: 401, code: 'user_token_required' });
      expect(await rejection(bearer('sb_publishable_abc'))).toEqual({ status: 401, code: 'user_token_required' });
    } finally {
      delete process.env.SUPABASE_PUBLISHABLE_KEYS;
    }
  });
});

describe('configuration that must fail closed', () => {
  let saved: NodeJS.ProcessEnv;
  beforeAll(() => {
    saved = { ...process.env };
  });
  const restore = () => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    resetIssuerProfiles();
  };

  it('on a hosted project without a JWT secret, the local dev secret forges nothing', async () => {
    const dev = 'super-secret-jwt-token-with-at-least-32-characters-long';
    delete process.env.PLATFORM_LOCAL_STACK;
    process.env.SUPABASE_URL = 'https://abcdefgh.supabase.co';
    delete process.env.SUPABASE_JWT_SECRET;
    delete process.env.JWT_SECRET;
    resetIssuerProfiles();
    try {
      const forged = await new SignJWT({ aud: 'authenticated', role: 'authenticated' }).setProtectedHeader({ alg: 'HS256' })
        .setIssuer('https://abcdefgh.supabase.co/auth/v1').setSubject(users.super.id).setExpirationTime('1h')
        .sign(new TextEncoder().encode(dev));
      expect(await rejection(bearer(forged))).toEqual({ status: 401, code: 'invalid_token' });
      const service = await new SignJWT({ role: 'service_role' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(dev));
      expect(await isServiceCredential(bearer(service))).toBe(false);
    } finally {
      restore();
    }
  });

  it('JWT_SECRET serves where SUPABASE_* names are reserved', async () => {
    process.env.SUPABASE_URL = 'https://abcdefgh.supabase.co';
    delete process.env.SUPABASE_JWT_SECRET;
    process.env.JWT_SECRET = 'operator-set-secret-of-at-least-32-characters';
    resetIssuerProfiles();
    try {
      const t = await new SignJWT({ aud: 'authenticated', role: 'authenticated' }).setProtectedHeader({ alg: 'HS256' })
        .setIssuer('https://abcdefgh.supabase.co/auth/v1/').setSubject('u').setExpirationTime('1h')
        .sign(new TextEncoder().encode(process.env.JWT_SECRET));
      expect((await verifyUserToken(bearer(t))).subject).toBe('u'); // trailing slash on iss is the same issuer
    } finally {
      restore();
    }
  });

  it('a service-role JWT without expiry is not a machine credential', async () => {
    const t = await new SignJWT({ role: 'service_role' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(TEST_JWT_SECRET));
    expect(await isServiceCredential(bearer(t))).toBe(false);
  });

  it('Clerk tokens are refused while no authorized parties are configured', async () => {
    delete process.env.CLERK_AUTHORIZED_PARTIES;
    resetIssuerProfiles();
    try {
      const t = await auth.clerk.sign('user_admin_acme', { azp: 'https://evil.example' });
      expect(await rejection(bearer(t))).toEqual({ status: 401, code: 'invalid_token' });
    } finally {
      restore();
    }
  });

  it('an unreachable JWKS is a 503 to retry, not a 500', async () => {
    process.env.CLERK_JWKS_URL = 'http://127.0.0.1:1/jwks.json';
    resetIssuerProfiles();
    try {
      const t = await auth.clerk.sign('user_admin_acme', { azp: 'http://localhost:3000' });
      expect(await rejection(bearer(t))).toEqual({ status: 503, code: 'issuer_unavailable' });
    } finally {
      restore();
    }
  });
});

