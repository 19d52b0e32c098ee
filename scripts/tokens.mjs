// Development tokens for the local stack: HS256 Supabase Auth tokens signed with the
// local JWT secret, and RS256 tokens of the local Clerk and SuperTokens stand-in
// issuers, whose key pairs live in .local/dev-keys.json.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import postgres from 'postgres';

export const LOCAL_DEV_JWT_SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';

/** The local issuers' names, as supabase/seed.sql maps identities to them. They stay
 *  the same whatever port the stack listens on, as `supabase start`'s issuer does. */
export const LOCAL_ISSUER_BASE = 'http://127.0.0.1:54321';
export const issuers = {
  supabase: `${LOCAL_ISSUER_BASE}/auth/v1`,
  clerk: `${LOCAL_ISSUER_BASE}/dev-issuers/clerk`,
  supertokens: `${LOCAL_ISSUER_BASE}/dev-issuers/supertokens`,
};

/** Loads (or creates once) the RS256 key pairs of the local Clerk/SuperTokens issuers. */
export async function devKeys(file) {
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8'));
  const keys = {};
  for (const kind of ['clerk', 'supertokens']) {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const kid = `${kind}-dev-${Date.now().toString(36)}`;
    keys[kind] = {
      public: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' },
      private: { ...(await exportJWK(privateKey)), kid, alg: 'RS256' },
    };
  }
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(keys, null, 2), { mode: 0o600 });
  return keys;
}

/** A random 32-byte key (base64), created once in the data folder: the local stack's
 *  key for partner credentials at rest. */
export async function localSecret(file) {
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const key = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, key, { mode: 0o600 });
  return key;
}

export function publicJwks(keys) {
  return Object.fromEntries(Object.entries(keys).map(([kind, k]) => [kind, { keys: [k.public] }]));
}

/** Legacy-style API keys (anon, service_role) signed with the JWT secret, as the local
 *  Supabase stack prints them. */
export async function apiKey(role, secret) {
  return await new SignJWT({ iss: 'supabase-demo', role })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setExpirationTime(1983812996)
    .sign(new TextEncoder().encode(secret));
}

/** Signs an access token for an existing user, the way each issuer shapes its claims. */
export async function mintToken({ dbUrl, email, tenant, issuer = 'supabase', secret, keys, ttl = '24h' }) {
  const iss = issuers[issuer];
  if (!iss) throw new Error(`unknown issuer ${issuer}: use supabase, clerk or supertokens`);
  const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
  try {
    const [who] = await sql`
      select u.id, u.email, i.subject from public.users u
      join public.user_identities i on i.user_id = u.id and i.issuer = ${iss}
      where lower(u.email) = lower(${email})`;
    if (!who) {
      throw new Error(`no user ${email} with an identity at ${iss}: sign them up with \`npm run user -- add ${email}\`` +
        `${issuer === 'supabase' ? '' : ' (which signs up at the Supabase Auth issuer; use --issuer supabase)'}, ` +
        'or use a seeded identity (see README)');
    }
    let t;
    if (tenant) {
      [t] = await sql`
        select t.id, t.slug, l.org_id, m.role from public.tenants t
        left join public.tenant_org_links l on l.tenant_id = t.id and l.issuer = ${iss}
        left join public.memberships m on m.tenant_id = t.id and m.user_id = ${who.id}
        where t.slug = lower(${tenant}) or t.id::text = lower(${tenant})`;
      if (!t) throw new Error(`no tenant ${tenant}`);
    }
    const claims = { email: who.email };
    if (issuer === 'supabase') Object.assign(claims, { role: 'authenticated', aud: 'authenticated', session_id: crypto.randomUUID() });
    if (issuer === 'clerk') {
      Object.assign(claims, { v: 2, azp: 'http://localhost:3000', sid: `sess_${crypto.randomUUID().slice(0, 8)}`, fva: [0, -1] });
      if (t) claims.o = { id: t.org_id ?? t.id, slg: t.slug, rol: t.role ?? 'member' };
    } else if (t) {
      claims.tenant_id = t.id;
    }
    // A SuperTokens access token names its session (shared/auth/verify.ts refuses one that
    // does not: the backend's other JWTs share its keys).
    if (issuer === 'supertokens') claims.sessionHandle = crypto.randomUUID();
    const jwt = new SignJWT(claims)
      .setIssuer(iss)
      .setSubject(who.subject)
      .setIssuedAt()
      .setExpirationTime(ttl);
    if (issuer === 'supabase') {
      return await jwt.setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(secret));
    }
    const key = await importJWK(keys[issuer].private, 'RS256');
    return await jwt.setProtectedHeader({ alg: 'RS256', kid: keys[issuer].private.kid, typ: 'JWT' }).sign(key);
  } finally {
    await sql.end();
  }
}
