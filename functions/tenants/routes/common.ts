// What the tenants API's route modules share.
import { type AuthEnv, type Caller } from '../../../shared/auth/context.ts';
import { forbidden } from '../../../shared/errors.ts';
import { createApp } from '../../../shared/http.ts';

export type TenantsApp = ReturnType<typeof createApp<AuthEnv>>;

export const security = [{ bearerAuth: [] }];
export const TENANT_COLUMNS = 'id, name, slug, status, plan, settings, created_at, updated_at, deleted_at';

export function requirePlatformAdmin(who: Caller): void {
  if (!who.isPlatformAdmin) throw forbidden('Only platform super-admins may do this');
}
