// The people and tenants of supabase/seed.sql, as the tests address them.
export const LOCAL_SUPABASE_ISSUER = 'http://127.0.0.1:54321/auth/v1';
export const LOCAL_CLERK_ISSUER = 'http://127.0.0.1:54321/dev-issuers/clerk';
export const LOCAL_SUPERTOKENS_ISSUER = 'http://127.0.0.1:54321/dev-issuers/supertokens';

export const tenants = {
  acme: { id: '10000000-0000-4000-8000-000000000001', slug: 'acme', clerkOrg: 'org_acme' },
  globex: { id: '10000000-0000-4000-8000-000000000002', slug: 'globex', clerkOrg: 'org_globex' },
} as const;

export const teams = {
  acme: '20000000-0000-4000-8000-000000000001',
  globex: '20000000-0000-4000-8000-000000000002',
} as const;

export const users = {
  super: { id: '00000000-0000-4000-8000-000000000001', email: 'super@platform.local', handle: 'super_platform' },
  acmeAdmin: { id: '00000000-0000-4000-8000-000000000011', email: 'admin@acme.test', handle: 'admin_acme' },
  acmeAgent: { id: '00000000-0000-4000-8000-000000000012', email: 'agent@acme.test', handle: 'agent_acme' },
  acmeUser: { id: '00000000-0000-4000-8000-000000000013', email: 'user@acme.test', handle: 'user_acme' },
  globexAdmin: { id: '00000000-0000-4000-8000-000000000021', email: 'admin@globex.test', handle: 'admin_globex' },
  globexAgent: { id: '00000000-0000-4000-8000-000000000022', email: 'agent@globex.test', handle: 'agent_globex' },
  globexUser: { id: '00000000-0000-4000-8000-000000000023', email: 'user@globex.test', handle: 'user_globex' },
} as const;

export type SeedUser = (typeof users)[keyof typeof users];

/** The claims a Supabase Auth token of this user carries (as PostgREST would see them). */
export function supabaseClaims(user: SeedUser, tenantId?: string): Record<string, unknown> {
  return {
    iss: LOCAL_SUPABASE_ISSUER,
    sub: user.id,
    aud: 'authenticated',
    role: 'authenticated',
    email: user.email,
    ...(tenantId ? { tenant_id: tenantId } : {}),
  };
}
