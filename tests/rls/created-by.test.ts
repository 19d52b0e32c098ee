// created_by of macros, canned responses and automation rules is the caller (issue 16
// review): a PostgREST client that may create one cannot name someone else its author;
// a service-role write (no caller) keeps what it gives.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';

let db: TestDatabase;
const acme = tenants.acme.id;

beforeAll(async () => {
  db = await freshDatabase('created_by');
});
afterAll(async () => {
  await db.close();
});

// One insert per table, naming the agent as author while the admin writes.
const inserts = {
  macros: (tx: Parameters<Parameters<typeof probeAs>[3]>[0], by: string) => tx`
    insert into public.macros (tenant_id, scope, name, actions, created_by)
    values (${acme}, 'tenant', 'Forged author', '[{"type": "set_status", "status": "pending"}]', ${by}) returning created_by`,
  canned_responses: (tx: Parameters<Parameters<typeof probeAs>[3]>[0], by: string) => tx`
    insert into public.canned_responses (tenant_id, scope, short_code, title, body, created_by)
    values (${acme}, 'tenant', 'forged', 'Forged', 'Hello', ${by}) returning created_by`,
  automation_rules: (tx: Parameters<Parameters<typeof probeAs>[3]>[0], by: string) => tx`
    insert into public.automation_rules (tenant_id, name, event, conditions, actions, created_by)
    values (${acme}, 'Forged author', 'ticket.created', '{}', '[{"type": "set_priority", "priority": "high"}]', ${by})
    returning created_by`,
};

describe('created_by is the caller', () => {
  for (const [table, insert] of Object.entries(inserts)) {
    it(`${table}: an admin naming another member as author is recorded as the author`, async () => {
      const r = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, acme), async (tx) => {
        const [row] = await insert(tx, users.acmeAgent.id);
        return row.created_by;
      });
      expect(r).toEqual({ ok: true, value: users.acmeAdmin.id });
    });

    it(`${table}: a write with no caller (the service role) keeps the author it gives`, async () => {
      const r = await probeAs(db.sql, 'service_role', {}, async (tx) => {
        const [row] = await insert(tx, users.acmeAgent.id);
        return row.created_by;
      });
      expect(r).toEqual({ ok: true, value: users.acmeAgent.id });
    });
  }
});
