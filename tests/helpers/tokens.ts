// Real tokens for the tests: HS256 with the project secret (Supabase Auth), and RS256
// or ES256 from key pairs whose public halves a loopback JWKS server publishes
// (Clerk, SuperTokens), so verification goes through jose exactly as in production.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { resetIssuerProfiles } from '../../shared/auth/issuers.ts';
import { LOCAL_CLERK_ISSUER, LOCAL_SUPABASE_ISSUER, LOCAL_SUPERTOKENS_ISSUER } from './seed.ts';

export const TEST_JWT_SECRET = 'test-only-jwt-secret-that-is-at-least-32-characters';

type Claims = Record<string, unknown>;

export async function supabaseToken(
  user: { id: string; email: string },
  opts: { tenantId?: string; claims?: Claims; exp?: number | string; secret?: string } = {},
): Promise<string> {
  return await new SignJWT({
    aud: 'authenticated',
    role: 'authenticated',
    email: user.email,
    ...(opts.tenantId ? { tenant_id: opts.tenantId } : {}),
    ...opts.claims,
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(LOCAL_SUPABASE_ISSUER)
    .setSubject(user.id)
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? '10m')
    .sign(new TextEncoder().encode(opts.secret ?? TEST_JWT_SECRET));
}

interface KeyPair {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function keyPair(alg: 'RS256' | 'ES256', kid: string): Promise<KeyPair> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/** A loopback JWKS endpoint for an issuer, with key rotation and a fetch counter. */
export class TestIssuer {
  fetches = 0;
  /** Claims every token of this issuer carries unless a test says otherwise (a claim
   *  given as undefined leaves it out). */
  defaultClaims: Claims = {};
  private constructor(
    readonly issuer: string,
    private server: http.Server,
    public keys: KeyPair[],
    readonly jwksUrl: string,
  ) {}

  static async start(issuer: string, alg: 'RS256' | 'ES256' = 'RS256', jwksPath = '/.well-known/jwks.json') {
    const keys = [await keyPair(alg, `${alg}-1`)];
    let self: TestIssuer | undefined;
    const server = http.createServer((req, res) => {
      if (req.url !== jwksPath || !self) {
        res.writeHead(404).end();
        return;
      }
      self.fetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: self.keys.map((k) => k.publicJwk) }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    self = new TestIssuer(issuer, server, keys, `http://127.0.0.1:${port}${jwksPath}`);
    return self;
  }

  /** Publishes a new key (the old one stays published unless dropOld). */
  async rotate(dropOld = false): Promise<void> {
    const alg = this.keys[0].alg;
    const next = await keyPair(alg, `${alg}-${this.keys.length + 1}-${Date.now()}`);
    this.keys = dropOld ? [next] : [...this.keys, next];
  }

  async sign(subject: string, claims: Claims = {}, opts: { exp?: number | string; key?: KeyPair; header?: Record<string, unknown> } = {}) {
    const key = opts.key ?? this.keys.at(-1)!;
    return await new SignJWT({ ...this.defaultClaims, ...claims })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...opts.header })
      .setIssuer(this.issuer)
      .setSubject(subject)
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? '10m')
      .sign(key.privateKey);
  }

  /** A key this issuer never published: signatures made with it must be refused. */
  static async strangerKey(alg: 'RS256' | 'ES256' = 'RS256'): Promise<KeyPair> {
    return await keyPair(alg, `${alg}-1`);
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

export interface AuthFixture {
  clerk: TestIssuer;
  supertokens: TestIssuer;
  close(): Promise<void>;
}

/** Configures the functions' identity settings for a test file: the test secret, the
 *  seeded Supabase issuer, and Clerk/SuperTokens issuers backed by loopback JWKS. */
export async function configureAuth(dbUrl: string, extra: Record<string, string> = {}): Promise<AuthFixture> {
  const clerk = await TestIssuer.start(LOCAL_CLERK_ISSUER, 'RS256');
  // A session token names its session, as Clerk's do (shared/auth/verify.ts refuses one
  // that does not: a JWT template's token).
  clerk.defaultClaims = { sid: 'sess_test' };
  const supertokens = await TestIssuer.start(LOCAL_SUPERTOKENS_ISSUER, 'ES256', '/jwt/jwks.json');
  Object.assign(process.env, {
    PLATFORM_LOCAL_STACK: '1', // as `npm start` sets it: loopback webhook receivers, local storage
    SUPABASE_DB_URL: dbUrl,
    SUPABASE_URL: 'http://127.0.0.1:54321',
    SUPABASE_JWT_SECRET: TEST_JWT_SECRET,
    SUPABASE_JWKS_URL: 'http://127.0.0.1:1/unused-jwks.json',
    CLERK_ISSUER: LOCAL_CLERK_ISSUER,
    CLERK_JWKS_URL: clerk.jwksUrl,
    CLERK_AUTHORIZED_PARTIES: 'http://localhost:3000',
    SUPERTOKENS_ISSUER: LOCAL_SUPERTOKENS_ISSUER,
    SUPERTOKENS_JWKS_URL: supertokens.jwksUrl,
    JWKS_COOLDOWN_MS: '0', // rotation tests refetch at once
    ...extra,
  });
  resetIssuerProfiles();
  return {
    clerk,
    supertokens,
    close: async () => {
      await clerk.close();
      await supertokens.close();
    },
  };
}
