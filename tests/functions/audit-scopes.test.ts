// The audit trail through an API key reads what the key's scopes read (functions/tenants/
// routes/audit.ts, AUDIT_READ_SCOPE): its row images are the rows themselves (a message's
// content, a customer's phone), so `audit:read` alone must not read what `tickets:read`
// or `customers:read` guard on their own routes. Every audited table has its scope, held
// to the catalog here, so a newly audited table fails this suite until it has one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app } from '../../functions/tenants/app.ts';
import { AUDIT_READ_SCOPE } from '../../functions/tenants/routes/audit.ts';
import { API_KEY_SCOPES } from '../../shared/auth/api-keys.ts';
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

const acme = tenants.acme.id;
let db: TestDatabase;
let auth: AuthFixture;
let admin: string;

beforeAll(async () => {
  db = await freshDatabase('audit_scopes');
  auth = await configureAuth(db.url);
  admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  // Entries of a ticket's message and of a customer, beside the tenant's own.
  const [ticket] = await db.sql`insert into public.tickets (tenant_id, title, created_by)
    values (${acme}, 'Audited', ${users.acmeUser.id}) returning id`;
  await db.sql`insert into public.ticket_messages (tenant_id, ticket_id, author_id, content)
    values (${acme}, ${ticket.id}, ${users.acmeUser.id}, 'the secret in a message')`;
  await db.sql`insert into public.voice_customers (tenant_id, phone, name) values (${acme}, '+14155550123', 'Audited Customer')`;
  await db.sql`update public.tenants set name = name || ' (audited)' where id = ${acme}`;
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

const keyWith = async (scopes: string[]) => {
  const r = await call(app, 'POST', `/tenants/${acme}/api-keys`, { token: admin, body: { name: scopes.join(' '), scopes } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.key as string;
};
const tablesRead = async (token: string, query = '') => {
  const r = await call(app, 'GET', `/tenants/${acme}/audit?limit=100${query}`, { token });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return new Set((r.body.items as { table_name: string }[]).map((e) => e.table_name));
};

describe('the audit trail through an API key', () => {
  it('names a read scope (or none: the configuration) for every audited table, as the catalog has them', async () => {
    const audited = await db.sql`select distinct c.relname::text as t from pg_trigger g
      join pg_class c on c.oid = g.tgrelid join pg_namespace n on n.oid = c.relnamespace
      join pg_proc p on p.oid = g.tgfoid
      where n.nspname in ('public', 'private') and p.proname = 'audit_row' and not g.tgisinternal order by 1`;
    // And the entries written by hand, not by a trigger: a delivery sent again (20261207114000).
    const handWritten = ['webhook_deliveries'];
    expect(Object.keys(AUDIT_READ_SCOPE).sort()).toEqual([...audited.map((r) => r.t), ...handWritten].sort());
    for (const scope of Object.values(AUDIT_READ_SCOPE).flat()) if (scope) expect(API_KEY_SCOPES).toContain(scope);
  });

  it("reads only the tables its scopes read; a table it cannot read is 403 insufficient_scope; people read them all", async () => {
    const people = await tablesRead(admin);
    expect([...people]).toEqual(expect.arrayContaining(['tickets', 'ticket_messages', 'voice_customers', 'tenants']));

    const auditOnly = await keyWith(['audit:read']);
    const bare = await tablesRead(auditOnly);
    expect(bare.has('tenants')).toBe(true);
    expect([...bare].filter((t) => AUDIT_READ_SCOPE[t] !== null)).toEqual([]);
    // webhook_endpoints: an endpoint's URL may be its receiver's bearer token.
    for (const table of ['ticket_messages', 'voice_customers', 'webhook_endpoints']) {
      const r = await call(app, 'GET', `/tenants/${acme}/audit?table_name=${table}`, { token: auditOnly });
      expect([r.status, errorCode(r)], table).toEqual([403, 'insufficient_scope']);
      expect(r.body.error.details.required_scopes).toEqual([AUDIT_READ_SCOPE[table]].flat());
    }

    // A name that is no table reads nothing, whatever it is (an inherited property too).
    for (const table of ['constructor', 'no_such_table']) {
      const r = await call(app, 'GET', `/tenants/${acme}/audit?table_name=${table}`, { token: auditOnly });
      expect([r.status, r.body.items], table).toEqual([200, []]);
    }

    const withTickets = await keyWith(['audit:read', 'tickets:read']);
    const read = await tablesRead(withTickets);
    expect(read.has('ticket_messages') && read.has('tickets') && read.has('tenants')).toBe(true);
    expect(read.has('voice_customers')).toBe(false);
    expect(await tablesRead(withTickets, '&table_name=ticket_messages')).toEqual(new Set(['ticket_messages']));

    // A rule's runs name the tickets it matched: workflow:manage alone does not read them.
    const workflows = await keyWith(['audit:read', 'workflow:manage']);
    const runs = await call(app, 'GET', `/tenants/${acme}/audit?table_name=automation_runs`, { token: workflows });
    expect([runs.status, errorCode(runs), runs.body.error?.details?.required_scopes]).toEqual([403, 'insufficient_scope', ['tickets:read']]);
    const both = await keyWith(['audit:read', 'workflow:manage', 'tickets:read']);
    expect((await call(app, 'GET', `/tenants/${acme}/audit?table_name=automation_runs`, { token: both })).status).toBe(200);
  });

  it("never reads its creator's notifications (a person's inbox, which /notifications refuses keys), and reads delivery retries with webhooks:manage", async () => {
    await db.sql`insert into public.notifications (tenant_id, user_id, type, data)
      values (${acme}, ${users.acmeAdmin.id}, 'mentioned', '{"snippet": "a note mentioning the admin"}')`;
    await db.sql`insert into public.audit_logs (tenant_id, table_name, record_key, action, actor_user_id, actor_role, old_data, new_data, changed_fields)
      values (${acme}, 'webhook_deliveries', '{"id": 1}', 'UPDATE', ${users.acmeAdmin.id}, 'authenticated', '{"status": "failed"}', '{"status": "pending"}', '{status}')`;
    // The person reads both.
    expect(await tablesRead(admin, '&table_name=notifications')).toEqual(new Set(['notifications']));
    expect(await tablesRead(admin, '&table_name=webhook_deliveries')).toEqual(new Set(['webhook_deliveries']));
    const everything = await keyWith(['audit:read', 'tickets:read', 'webhooks:manage']);
    const read = await tablesRead(everything);
    expect([read.has('notifications'), read.has('webhook_deliveries')]).toEqual([false, true]);
    const inbox = await call(app, 'GET', `/tenants/${acme}/audit?table_name=notifications`, { token: everything });
    expect([inbox.status, errorCode(inbox)]).toEqual([403, 'insufficient_scope']);
    expect(JSON.stringify(inbox.body)).not.toContain('a note mentioning');
    // Nor invitations (who was invited, people who never joined too): /invitations refuses
    // keys, whatever their scopes.
    const invited = await call(app, 'POST', `/tenants/${acme}/invitations`, { token: admin, body: { email: 'audited-invitee@example.test', role: 'agent' } });
    expect(invited.status, JSON.stringify(invited.body)).toBe(201);
    expect(await tablesRead(admin, '&table_name=invitations')).toEqual(new Set(['invitations']));
    const members = await keyWith(['audit:read', 'members:read', 'tickets:read', 'webhooks:manage']);
    expect((await tablesRead(members)).has('invitations')).toBe(false);
    const invitations = await call(app, 'GET', `/tenants/${acme}/audit?table_name=invitations`, { token: members });
    expect([invitations.status, errorCode(invitations)]).toEqual([403, 'insufficient_scope']);
    expect(JSON.stringify(invitations.body)).not.toContain('audited-invitee');
    const route = await call(app, 'GET', `/tenants/${acme}/invitations`, { token: members });
    expect(route.status).toBe(403);
    const auditOnly = await keyWith(['audit:read']);
    const retries = await call(app, 'GET', `/tenants/${acme}/audit?table_name=webhook_deliveries`, { token: auditOnly });
    expect([retries.status, errorCode(retries), retries.body.error?.details?.required_scopes]).toEqual([403, 'insufficient_scope', ['webhooks:manage']]);
  });

  it("reads the tenant's plan overrides and feature flags with audit:read alone, as the rest of its configuration", async () => {
    await db.sql`insert into private.tenant_plan_overrides (tenant_id, limits) values (${acme}, '{"members": 40}')
      on conflict (tenant_id) do update set limits = excluded.limits`;
    await db.sql`insert into private.tenant_feature_flags (tenant_id, flag, value) values (${acme}, 'beta_inbox', 'true')
      on conflict (tenant_id, flag) do update set value = excluded.value`;
    const auditOnly = await keyWith(['audit:read']);
    for (const table of ['tenant_plan_overrides', 'tenant_feature_flags']) {
      expect(await tablesRead(auditOnly, `&table_name=${table}`), table).toEqual(new Set([table]));
    }
    const all = await tablesRead(auditOnly);
    expect([all.has('tenant_plan_overrides'), all.has('tenant_feature_flags')]).toEqual([true, true]);
  });
});
