// The tenant's audit trail, newest first, paged (admins).
import { createRoute } from '@hono/zod-openapi';
import { callerDb } from '../../../shared/auth/context.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { commonErrors, cursorValues, encodeCursor, jsonResponse } from '../../../shared/schemas/common.ts';
import type { Checked, JsonObject, Tables } from '../../../shared/rows.ts';
import * as s from '../schemas.ts';
import { security, type TenantsApp } from './common.ts';

/** An entry as read: the id as text (bigint), keys and row images as JSON objects. */
type AuditEntryRow =
  & Checked<
    Pick<
      Tables<'audit_logs'>,
      | 'table_name'
      | 'record_key'
      | 'action'
      | 'actor_user_id'
      | 'actor_role'
      | 'old_data'
      | 'new_data'
      | 'changed_fields'
      | 'created_at'
    >,
    { record_key: JsonObject; old_data: JsonObject | null; new_data: JsonObject | null }
  >
  & { id: string };

export function registerAudit(app: TenantsApp): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/{tenantId}/audit',
      summary: "Read the tenant's audit trail, newest first (admins)",
      security,
      middleware: needs.tenantRole('admin'),
      request: { params: s.TenantIdParam, query: s.AuditQuery },
      responses: {
        200: jsonResponse(s.page(s.AuditEntrySchema), 'A page of audit entries'),
        ...commonErrors,
      },
    }),
    async (c) => {
      const { tenantId } = c.req.valid('param');
      const q = c.req.valid('query');
      const before = cursorValues(q.cursor, 1, (v) => /^\d{1,18}$/.test(v));
      const rows = await callerDb(c, tenantId, (tx) =>
        tx<AuditEntryRow>`
          select id::text, table_name, record_key, action, actor_user_id, actor_role,
                 old_data, new_data, changed_fields, created_at
          from public.audit_logs
          where tenant_id = ${tenantId}
            and (${q.table_name ?? null}::text is null or table_name = ${q.table_name ?? null}::text)
            and (${q.action ?? null}::text is null or action = ${q.action ?? null}::text)
            and (${before?.[0] ?? null}::bigint is null or id < ${before?.[0] ?? null}::bigint)
          order by audit_logs.id desc -- the column, not the text alias of the select list
          limit ${q.limit + 1}
        `);
      const items = rows.slice(0, q.limit);
      const last = items.at(-1);
      return c.json({ items, next: rows.length > q.limit && last ? encodeCursor([last.id]) : null }, 200);
    },
  );
}
