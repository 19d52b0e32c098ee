// API keys for server-to-server clients (admins): create (the key shown this once),
// list (never a secret), revoke. What a key may do is the database's
// (supabase/migrations/20261202080000_api_keys.sql): its tenant, its scopes, and the
// standing of the admin who created it.
import { createRoute, z } from '@hono/zod-openapi';
import { API_KEY_SCOPES, apiKeyText, newApiKeySecret, type Scope } from '../../../shared/auth/api-keys.ts';
import { callerDb } from '../../../shared/auth/context.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { notFound } from '../../../shared/errors.ts';
import type { Checked, Column, Selected } from '../../../shared/rows.ts';
import { commonErrors, IsoTimestamp, jsonBody, jsonResponse, Text, Uuid } from '../../../shared/schemas/common.ts';
import * as s from '../schemas.ts';
import { security, type TenantsApp } from './common.ts';

const Timestamp = z.string().openapi({ format: 'date-time' });
const ScopeSchema = z.enum(API_KEY_SCOPES).openapi('ApiKeyScope');

const CreateApiKeyBody = z
  .object({
    name: Text.trim().min(1).max(100),
    scopes: z.array(ScopeSchema).min(1).max(API_KEY_SCOPES.length),
    // In the future, as the database checks too (create_api_key: its own clock decides a
    // request racing the instant): a body field's problem is a 422 naming it.
    expires_at: IsoTimestamp.refine((v) => Date.parse(v) > Date.now(), 'must be in the future').optional().openapi({
      description: 'Refused from then on (in the future); none: never',
    }),
  })
  .strict()
  .openapi('CreateApiKey');

const ApiKeySchema = z
  .object({
    id: Uuid,
    name: z.string(),
    prefix: z.string().openapi({ description: 'The start of the key text, to tell keys apart (tpk_live_ and 8 hex)' }),
    scopes: z.array(ScopeSchema),
    expires_at: Timestamp.nullable(),
    revoked_at: Timestamp.nullable(),
    last_used_at: Timestamp.nullable().openapi({ description: 'Updated at most once a minute' }),
    created_by: Uuid.nullable(),
    created_at: Timestamp,
  })
  .openapi('ApiKey');

const ApiKeyParam = s.TenantIdParam.extend({
  keyId: Uuid.openapi({ param: { name: 'keyId', in: 'path' } }),
});

const KEY_COLUMNS = [
  'id',
  'name',
  'prefix',
  'scopes',
  'expires_at',
  'revoked_at',
  'created_by',
  'created_at',
] as const satisfies readonly Column<'api_keys'>[];
type KeyRow = Checked<Selected<'api_keys', typeof KEY_COLUMNS>, { scopes: Scope[] }> & { last_used_at: string | null };

export function registerApiKeys(app: TenantsApp): void {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/{tenantId}/api-keys',
      summary: 'Create an API key (admins); the key is shown this once and stored only as a hash',
      security,
      middleware: needs.tenantRole('admin', { write: true }),
      request: { params: s.TenantIdParam, body: jsonBody(CreateApiKeyBody) },
      responses: {
        201: jsonResponse(
          ApiKeySchema.extend({ key: z.string().openapi({ description: 'Authorization: Bearer <key>; never shown again' }) }),
          'The key',
        ),
        ...commonErrors,
      },
    }),
    async (c) => {
      const { tenantId } = c.req.valid('param');
      const body = c.req.valid('json');
      const { secret, secretSha256 } = await newApiKeySecret();
      const row = await callerDb(c, tenantId, async (tx) => {
        const [made] = await tx<{ id: string }>`
          select (private.create_api_key(${tenantId}::uuid, ${body.name}, ${body.scopes}::text[], ${
          body.expires_at ?? null
        }::timestamptz, ${secretSha256}) ->> 'id') as id`;
        const [key] = await tx<KeyRow>`
          select ${tx.columns(KEY_COLUMNS)}, null::timestamptz as last_used_at
          from public.api_keys where tenant_id = ${tenantId} and id = ${made.id}`;
        return key;
      });
      return c.json({ ...row, key: apiKeyText(row.id, secret) }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/{tenantId}/api-keys',
      summary: "The tenant's API keys, revoked ones too (admins); never their secrets",
      security,
      middleware: needs.tenantRole('admin'),
      request: { params: s.TenantIdParam },
      responses: { 200: jsonResponse(z.object({ items: z.array(ApiKeySchema) }), 'Keys'), ...commonErrors },
    }),
    async (c) => {
      const { tenantId } = c.req.valid('param');
      const items = await callerDb(c, tenantId, (tx) =>
        tx<KeyRow>`
          select k.id, k.name, k.prefix, k.scopes, k.expires_at, k.revoked_at, k.created_by, k.created_at, u.last_used_at
          from public.api_keys k
          left join private.api_keys_last_used(${tenantId}) u on u.id = k.id
          where k.tenant_id = ${tenantId}
          order by k.created_at, k.id`);
      return c.json({ items }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/{tenantId}/api-keys/{keyId}',
      summary: 'Revoke an API key (admins, also while the tenant is suspended): refused from the very next request',
      security,
      middleware: needs.tenantRole('admin', { write: true, whileSuspended: true, revokes: true }),
      request: { params: ApiKeyParam },
      responses: { 204: { description: 'Revoked (or already revoked)' }, ...commonErrors },
    }),
    async (c) => {
      const { tenantId, keyId } = c.req.valid('param');
      // Through the database's function: the update policy admits writable tenants only,
      // and a suspended tenant's leaked key must still be stoppable.
      const [{ id }] = await callerDb(
        c,
        tenantId,
        (tx) => tx<{ id: string | null }>`select private.revoke_api_key(${tenantId}, ${keyId}) as id`,
      );
      if (!id) throw notFound('API key');
      return c.body(null, 204);
    },
  );
}
