// What the tenants API's route modules share.
import { type AuthEnv, type Caller } from '../../../shared/auth/context.ts';
import { forbidden, unprocessable } from '../../../shared/errors.ts';
import { createApp } from '../../../shared/http.ts';
import { decodeCursor } from '../../../shared/schemas/common.ts';

export type TenantsApp = ReturnType<typeof createApp<AuthEnv>>;

export const security = [{ bearerAuth: [] }];
export const TENANT_COLUMNS = 'id, name, slug, status, plan, settings, created_at, updated_at, deleted_at';

export function requirePlatformAdmin(who: Caller): void {
  if (!who.isPlatformAdmin) throw forbidden('Only platform super-admins may do this');
}

const plainText = (v: string) => v.length <= 200 && !v.includes('\u0000');

export function cursorOrFail(cursor: string | undefined, arity: number, valid = plainText): string[] | null {
  if (!cursor) return null;
  const values = decodeCursor(cursor, arity);
  if (!values || !values.every(valid)) {
    throw unprocessable('The request is not valid', {
      fields: [{ field: 'cursor', message: 'Invalid cursor' }],
    });
  }
  return values;
}
