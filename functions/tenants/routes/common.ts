// What the tenants API's route modules share.
import type { z } from '@hono/zod-openapi';
import { type AuthEnv } from '../../../shared/auth/context.ts';
import { createApp } from '../../../shared/http.ts';
import type { Checked, Column, JsonObject, Selected } from '../../../shared/rows.ts';
import { security as securityOf } from '../../../shared/schemas/security.ts';
import type * as s from '../schemas.ts';

export type TenantsApp = ReturnType<typeof createApp<AuthEnv>>;

/** Every route here takes a signed-in person's access token. */
export const security = securityOf.user;

export const TENANT_COLUMNS = [
  'id',
  'name',
  'slug',
  'status',
  'plan',
  'settings',
  'created_at',
  'updated_at',
  'deleted_at',
] as const satisfies readonly Column<'tenants'>[];
export type TenantRow = Checked<
  Selected<'tenants', typeof TENANT_COLUMNS>,
  { status: z.infer<typeof s.TenantSchema>['status']; plan: z.infer<typeof s.PlanSchema>; settings: JsonObject }
>;

export type TenantRole = z.infer<typeof s.TenantRoleSchema>;
