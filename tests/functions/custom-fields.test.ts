// Custom fields, departments and tags per tenant (issue 16 §4), through the tickets
// function in-process and straight through the tables as PostgREST would: values checked
// by the database on both paths, the list filter through an index, and fields hidden
// from customers tried as a customer would try to read them — the API, a direct select
// of tickets and of the staff-only table, a filter used as an oracle, realtime.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app } from '../../functions/tickets/app.ts';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { supabaseClaims, teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
const tok: Record<string, string> = {};
const acme = tenants.acme.id;
const globex = tenants.globex.id;
const SECRET = 'hidden-value-customers-never-see';

beforeAll(async () => {
  db = await freshDatabase('fn_custom_fields');
  auth = await configureAuth(db.url);
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: globex });
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

type Body = Record<string, unknown>;
const post = (token: string, path: string, body: Body) => call(app, 'POST', `/tickets${path}`, { token, body });
const patch = (token: string, path: string, body: Body) => call(app, 'PATCH', `/tickets${path}`, { token, body });
const get = (token: string, path: string) => call(app, 'GET', `/tickets${path}`, { token });
const fieldsOf = (r: { body: Body }) =>
  (r.body as { error?: { details?: { fields?: { field: string }[] } } }).error?.details?.fields?.map((f) => f.field);
const ticketCount = async () => (await db.sql`select count(*)::int as n from public.tickets`)[0].n as number;

async function define(body: Body) {
  const r = await post(tok.admin, '/custom-fields', body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body as { id: string; key: string };
}

describe('defining fields', () => {
  it('admins define typed fields; agents and customers may not; bad definitions are 4xx and change nothing', async () => {
    await define({
      key: 'plan',
      label: 'Plan',
      type: 'select',
      options: ['gold', 'silver'],
      visible_to_customers: true,
      position: 1,
    });
    await define({ key: 'areas', label: 'Areas', type: 'multi_select', options: ['eu', 'us', 'apac'] });
    await define({ key: 'risk', label: 'Risk score', type: 'number' });
    await define({ key: 'internal_note', label: 'Internal note', type: 'text' });
    await define({ key: 'renewal', label: 'Renewal', type: 'date', visible_to_customers: true });
    await define({ key: 'vip', label: 'VIP', type: 'checkbox' });

    expect((await post(tok.agent, '/custom-fields', { key: 'x', label: 'X', type: 'text' })).status).toBe(403);
    expect((await post(tok.user, '/custom-fields', { key: 'x', label: 'X', type: 'text' })).status).toBe(403);
    const noOptions = await post(tok.admin, '/custom-fields', { key: 'tier', label: 'Tier', type: 'select' });
    expect([noOptions.status, errorCode(noOptions)]).toEqual([422, 'validation_failed']);
    const badKey = await post(tok.admin, '/custom-fields', { key: 'Bad Key', label: 'X', type: 'text' });
    expect(badKey.status).toBe(422);
    const dup = await post(tok.admin, '/custom-fields', { key: 'plan', label: 'Again', type: 'text' });
    expect([dup.status, errorCode(dup)]).toEqual([409, 'already_exists']);
    // The direct path: a select without options breaks the check constraint.
    const direct = await probeAs(
      db.sql,
      'authenticated',
      supabaseClaims(users.acmeAdmin, acme),
      (tx) =>
        tx`insert into public.custom_field_definitions (tenant_id, key, label, type) values (${acme}, 'tier', 'Tier', 'select')`,
    );
    expect(direct.ok ? 'inserted' : direct.error.code).toBe('23514');
    expect((await db.sql`select count(*)::int as n from public.custom_field_definitions where tenant_id = ${acme}`)[0].n).toBe(6);
  });

  it('customers list only the fields visible to them; staff all; another tenant none', async () => {
    const keys = async (token: string) =>
      ((await get(token, '/custom-fields')).body.items as { key: string }[]).map((f) => f.key);
    expect(await keys(tok.user)).toEqual(['renewal', 'plan']);
    expect((await keys(tok.agent)).sort()).toEqual(['areas', 'internal_note', 'plan', 'renewal', 'risk', 'vip']);
    expect(await keys(tok.globexAdmin)).toEqual([]);
    const [hidden] = await db.sql`select id from public.custom_field_definitions where key = 'risk'`;
    expect((await get(tok.user, `/custom-fields/${hidden.id}`)).status).toBe(404);
    expect((await get(tok.globexAdmin, `/custom-fields/${hidden.id}`)).status).toBe(404);
  });
});

describe('values on tickets', () => {
  let staffTicket: string;
  let customerTicket: string;

  it('staff file a ticket with values of every type; the response shows them all', async () => {
    const r = await post(tok.agent, '', {
      title: 'Renewal question',
      custom_fields: { plan: 'gold', areas: ['eu', 'us'], risk: 7.5, internal_note: SECRET, renewal: '2026-03-31', vip: true },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    staffTicket = r.body.id as string;
    expect(r.body.custom_fields).toEqual({
      plan: 'gold',
      areas: ['eu', 'us'],
      risk: 7.5,
      internal_note: SECRET,
      renewal: '2026-03-31',
      vip: true,
    });
    // Stored apart: what customers may see on the ticket, the rest in the staff-only table.
    const [row] = await db.sql`select t.custom_fields as visible, i.custom_fields as hidden from public.tickets t
      join public.ticket_internal_fields i on i.tenant_id = t.tenant_id and i.ticket_id = t.id where t.id = ${staffTicket}`;
    expect(row.visible).toEqual({ plan: 'gold', renewal: '2026-03-31' });
    expect(row.hidden).toEqual({ areas: ['eu', 'us'], risk: 7.5, internal_note: SECRET, vip: true });
  });

  it('every wrong value is a 422 naming each field, and nothing is written', async () => {
    const before = await ticketCount();
    const r = await post(tok.agent, '', {
      title: 'All wrong values',
      custom_fields: { plan: 'bronze', areas: ['eu', 'eu'], risk: 'high', renewal: '2026-02-30', vip: 'yes', nope: 1 },
    });
    expect([r.status, errorCode(r)]).toEqual([422, 'validation_failed']);
    expect(fieldsOf(r)).toEqual([
      'custom_fields.areas',
      'custom_fields.nope',
      'custom_fields.plan',
      'custom_fields.renewal',
      'custom_fields.risk',
      'custom_fields.vip',
    ]);
    const text = await post(tok.agent, '', { title: 'Too long a text', custom_fields: { internal_note: 'x'.repeat(1001) } });
    expect(text.status).toBe(422);
    expect(await ticketCount()).toBe(before);
  });

  it('the same rules hold on the direct-table path', async () => {
    const claims = supabaseClaims(users.acmeAgent, acme);
    const bad = await probeAs(
      db.sql,
      'authenticated',
      claims,
      (tx) =>
        tx`insert into public.tickets (tenant_id, title, custom_fields) values (${acme}, 'Direct and wrong', '{"plan": "bronze"}')`,
    );
    expect(bad.ok ? 'inserted' : bad.error.code).toBe('PT422');
    const badUpdate = await probeAs(
      db.sql,
      'authenticated',
      claims,
      (tx) => tx`update public.tickets set custom_fields = custom_fields || '{"risk": "high"}' where id = ${staffTicket}`,
    );
    expect(badUpdate.ok ? 'updated' : badUpdate.error.code).toBe('PT422');
    // Nobody writes the staff-only table directly, staff included.
    const forged = await probeAs(
      db.sql,
      'authenticated',
      supabaseClaims(users.acmeAdmin, acme),
      (tx) => tx`update public.ticket_internal_fields set custom_fields = '{"risk": "forged"}' where ticket_id = ${staffTicket}`,
    );
    expect(forged.ok ? 'updated' : forged.error.code).toBe('42501');
  });

  it("another tenant's people learn nothing of the fields by filing a ticket under its id: 42501, as under an id nobody has", async () => {
    const outsider = supabaseClaims(users.globexAdmin, globex);
    const file = (tenantId: string) =>
      probeAs(db.sql, 'authenticated', outsider, (tx) =>
        tx`insert into public.tickets (tenant_id, title, custom_fields, team_id)
           values (${tenantId}, 'Probe', '{"plan": "bronze", "nosuch": 1}', ${teams.acme})`);
    const theirs = await file(acme);
    const nobody = await file('10000000-0000-4000-8000-0000000000ee');
    // Refused before the fields are read: the first of the tickets' before-row triggers
    // (tickets_before_insert, as the invoker) finds the caller is no one in the tenant.
    expect(theirs.ok ? 'inserted' : theirs.error).toEqual({ code: '42501', message: 'not a member of this tenant' });
    expect(nobody.ok ? 'inserted' : nobody.error).toEqual(theirs.ok ? 'inserted' : theirs.error);
  });

  it('a required field takes no blank value: blank text and an empty list are missing', async () => {
    const [note] = await db.sql`select id from public.custom_field_definitions where key = 'internal_note'`;
    const [areas] = await db.sql`select id from public.custom_field_definitions where key = 'areas'`;
    expect((await patch(tok.admin, `/custom-fields/${note.id}`, { required: true })).status).toBe(200);
    expect((await patch(tok.admin, `/custom-fields/${areas.id}`, { required: true })).status).toBe(200);
    try {
      const before = (await db.sql`select count(*)::int as n from public.tickets where tenant_id = ${acme}`)[0].n;
      const blank = await post(tok.agent, '', { title: 'Filed with blanks', custom_fields: { internal_note: ' \t\n ', areas: [] } });
      expect([blank.status, fieldsOf(blank)]).toEqual([422, ['custom_fields.areas', 'custom_fields.internal_note'].sort()]);
      expect((await db.sql`select count(*)::int as n from public.tickets where tenant_id = ${acme}`)[0].n).toBe(before);
      const filled = await post(tok.agent, '', { title: 'Filed in full', custom_fields: { internal_note: 'checked', areas: ['eu'] } });
      expect(filled.status, JSON.stringify(filled.body)).toBe(201);
      await db.sql`delete from public.tickets where id = ${filled.body.id}`; // out of the filters' tests
    } finally {
      await patch(tok.admin, `/custom-fields/${note.id}`, { required: false });
      await patch(tok.admin, `/custom-fields/${areas.id}`, { required: false });
    }
  });

  it('required fields: customers must fill the visible ones, staff all; machine paths are exempt', async () => {
    const [plan] = await db.sql`select id from public.custom_field_definitions where key = 'plan'`;
    const [risk] = await db.sql`select id from public.custom_field_definitions where key = 'risk'`;
    expect((await patch(tok.admin, `/custom-fields/${plan.id}`, { required: true })).status).toBe(200);
    expect((await patch(tok.admin, `/custom-fields/${risk.id}`, { required: true })).status).toBe(200);
    try {
      const customerMissing = await post(tok.user, '', { title: 'My printer broke' });
      expect([customerMissing.status, fieldsOf(customerMissing)]).toEqual([422, ['custom_fields.plan']]);
      const customer = await post(tok.user, '', { title: 'My printer broke', custom_fields: { plan: 'silver' } });
      expect(customer.status, JSON.stringify(customer.body)).toBe(201);
      customerTicket = customer.body.id as string;
      const staffMissing = await post(tok.agent, '', { title: 'Filed by staff', custom_fields: { plan: 'gold' } });
      expect([staffMissing.status, fieldsOf(staffMissing)]).toEqual([422, ['custom_fields.risk']]);
      // A machine path (no person in the claims: a webhook, a voice call) files what it has.
      await db.sql`insert into public.tickets (tenant_id, title) values (${acme}, 'From a webhook')`;
    } finally {
      await patch(tok.admin, `/custom-fields/${plan.id}`, { required: false });
      await patch(tok.admin, `/custom-fields/${risk.id}`, { required: false });
    }
  });

  it('a customer writing a hidden field hears it does not exist, exactly like an unknown one', async () => {
    const hidden = await post(tok.user, '', { title: 'Sneaky customer', custom_fields: { risk: 0 } });
    const unknown = await post(tok.user, '', { title: 'Sneaky customer', custom_fields: { nonesuch: 0 } });
    expect(hidden.status).toBe(422);
    expect(JSON.stringify(hidden.body).replace('risk', 'KEY')).toBe(JSON.stringify(unknown.body).replace('nonesuch', 'KEY'));
  });

  it('PATCH merges values and null removes one; customers cannot change them', async () => {
    const r = await patch(tok.agent, `/${staffTicket}`, { custom_fields: { plan: 'silver', risk: null, vip: false } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.custom_fields).toEqual({
      plan: 'silver',
      areas: ['eu', 'us'],
      internal_note: SECRET,
      renewal: '2026-03-31',
      vip: false,
    });
    expect((await patch(tok.user, `/${customerTicket}`, { custom_fields: { plan: 'gold' } })).status).toBe(403);
  });

  describe('what a customer can reach of a hidden field', () => {
    beforeAll(async () => {
      // The customer's own ticket gets hidden values from staff.
      await db.sql`update public.tickets set team_id = ${teams.acme} where id = ${customerTicket}`;
      const r = await patch(tok.agent, `/${customerTicket}`, { custom_fields: { internal_note: SECRET, risk: 9 } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.custom_fields).toMatchObject({ plan: 'silver', internal_note: SECRET, risk: 9 });
    });

    it('the API: the ticket, the list and the search show the customer only visible values', async () => {
      const one = await get(tok.user, `/${customerTicket}`);
      expect(one.status).toBe(200);
      expect(one.body.custom_fields).toEqual({ plan: 'silver' });
      const list = await get(tok.user, '');
      expect(JSON.stringify(list.body)).not.toContain(SECRET);
      expect(JSON.stringify((await get(tok.user, '?q=printer')).body)).not.toContain(SECRET);
      expect(JSON.stringify(await get(tok.user, '/custom-fields'))).not.toContain('internal_note');
    });

    it('a filter on a hidden field is refused, not an oracle', async () => {
      for (const value of ['9', '1']) {
        const r = await get(tok.user, `?custom_field=risk:${value}`);
        expect([r.status, errorCode(r)]).toEqual([422, 'validation_failed']);
      }
    });

    it('the direct path: selecting tickets, the staff-only table, or joining them gives nothing hidden', async () => {
      const claims = supabaseClaims(users.acmeUser, acme);
      const rows = await probeAs(db.sql, 'authenticated', claims, async (tx) => ({
        tickets: await tx`select * from public.tickets`,
        internal: await tx`select * from public.ticket_internal_fields`,
        joined:
          await tx`select i.* from public.tickets t join public.ticket_internal_fields i on i.tenant_id = t.tenant_id and i.ticket_id = t.id`,
        byKey: await tx`select id from public.tickets where custom_fields ? 'risk' or custom_fields ? 'internal_note'`,
        definitions: await tx`select key from public.custom_field_definitions`,
      }));
      expect(rows.ok).toBe(true);
      if (!rows.ok) return;
      expect(rows.value.tickets.map((t) => t.id)).toContain(customerTicket);
      expect(JSON.stringify(rows.value.tickets)).not.toContain(SECRET);
      expect(rows.value.tickets.find((t) => t.id === customerTicket)!.custom_fields).toEqual({ plan: 'silver' });
      expect(rows.value.internal).toEqual([]);
      expect(rows.value.joined).toEqual([]);
      expect(rows.value.byKey).toEqual([]);
      expect(rows.value.definitions.map((d) => d.key).sort()).toEqual(['plan', 'renewal']);
      // The agent who works the ticket reads them there; another tenant's admin does not.
      const agent = await probeAs(
        db.sql,
        'authenticated',
        supabaseClaims(users.acmeAgent, acme),
        (tx) => tx`select custom_fields from public.ticket_internal_fields where ticket_id = ${customerTicket}`,
      );
      expect(agent.ok && agent.value[0].custom_fields).toEqual({ internal_note: SECRET, risk: 9 });
      const outsider = await probeAs(
        db.sql,
        'authenticated',
        supabaseClaims(users.globexAdmin, globex),
        (tx) => tx`select * from public.ticket_internal_fields`,
      );
      expect(outsider.ok && outsider.value).toEqual([]);
    });

    it('realtime: tickets are published without hidden values, the staff-only table is not published', async () => {
      const published = await db.sql`select tablename from pg_publication_tables where pubname = 'supabase_realtime'`;
      const names = published.map((r) => r.tablename as string);
      expect(names).toContain('tickets');
      expect(names).not.toContain('ticket_internal_fields');
      expect(names).not.toContain('custom_field_definitions');
      // What realtime sends is the ticket row: no column of it holds a hidden value.
      const [row] = await db.sql`select to_jsonb(t) as j from public.tickets t where id = ${customerTicket}`;
      expect(JSON.stringify(row.j)).not.toContain(SECRET);
    });

    it('hiding a visible field moves its values out of reach; showing it moves them back', async () => {
      const [plan] = await db.sql`select id from public.custom_field_definitions where key = 'plan'`;
      expect((await patch(tok.admin, `/custom-fields/${plan.id}`, { visible_to_customers: false })).status).toBe(200);
      expect((await get(tok.user, `/${customerTicket}`)).body.custom_fields).toEqual({});
      const [{ visible }] = await db.sql`select custom_fields as visible from public.tickets where id = ${customerTicket}`;
      expect(visible).toEqual({});
      expect((await get(tok.agent, `/${customerTicket}`)).body.custom_fields).toMatchObject({ plan: 'silver' });
      expect((await patch(tok.admin, `/custom-fields/${plan.id}`, { visible_to_customers: true })).status).toBe(200);
      expect((await get(tok.user, `/${customerTicket}`)).body.custom_fields).toEqual({ plan: 'silver' });
      const [{ hidden }] = await db
        .sql`select custom_fields as hidden from public.ticket_internal_fields where ticket_id = ${customerTicket}`;
      expect(hidden).toEqual({ internal_note: SECRET, risk: 9 });
    });
  });
});

describe('filtering the list', () => {
  const numbers = async (token: string, query: string) => {
    const r = await get(token, query);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return (r.body.items as { custom_fields: Record<string, unknown>; title: string }[]).map((t) => t.title).sort();
  };

  it('by visible and hidden fields, by each type, combined; bad filters are 422', async () => {
    expect(await numbers(tok.agent, '?custom_field=plan:silver')).toEqual(['My printer broke', 'Renewal question']);
    expect(await numbers(tok.agent, '?custom_field=areas:eu')).toEqual(['Renewal question']);
    expect(await numbers(tok.agent, '?custom_field=vip:false')).toEqual(['Renewal question']);
    expect(await numbers(tok.agent, '?custom_field=risk:9')).toEqual(['My printer broke']);
    expect(await numbers(tok.agent, '?custom_field=renewal:2026-03-31')).toEqual(['Renewal question']);
    expect(await numbers(tok.agent, '?custom_field=plan:silver&custom_field=risk:9')).toEqual(['My printer broke']);
    expect(await numbers(tok.agent, '?custom_field=internal_note:' + SECRET)).toEqual(['My printer broke', 'Renewal question']);
    expect(await numbers(tok.user, '?custom_field=plan:silver')).toEqual(['My printer broke']);
    // A number as written, a day of the calendar: what Number() or a pattern alone would
    // take (16 for 0x10, an empty page for 30 February) is a 422 too.
    expect(await numbers(tok.agent, '?custom_field=risk:9.0')).toEqual(['My printer broke']);
    for (const q of [
      '?custom_field=risk:lots', '?custom_field=vip:maybe', '?custom_field=nonesuch:1', '?custom_field=plan',
      '?custom_field=risk:0x9', '?custom_field=risk:9e0', '?custom_field=risk:%209', '?custom_field=risk:Infinity',
      '?custom_field=renewal:2026-02-30', '?custom_field=renewal:2026-13-01', '?custom_field=renewal:0000-01-01',
    ]) {
      const r = await get(tok.agent, q);
      expect([q, r.status]).toEqual([q, 422]);
    }
    // A day a date field stores is a day it filters by, years 0001-0099 too.
    for (const q of ['?custom_field=renewal:0050-06-01', '?custom_field=renewal:0004-02-29']) {
      const r = await get(tok.agent, q);
      expect([q, r.status, r.body.items]).toEqual([q, 200, []]);
    }
  });

  it('the filter reads the GIN indexes on a table big enough to want them', async () => {
    // 5,000 more tickets, one in 500 with the value, loaded without the row triggers (as
    // a bulk import would be): only the plan is of interest here.
    await db.sql.begin(async (tx) => {
      await tx`alter table public.tickets disable trigger user`;
      await tx`
        insert into public.tickets (tenant_id, number, title, custom_fields)
        select ${acme}, 100000 + g, 'Bulk ticket ' || g, case when g % 500 = 0 then '{"plan": "gold"}'::jsonb else '{}'::jsonb end
        from generate_series(1, 5000) g`;
      await tx`alter table public.tickets enable trigger user`;
    });
    await db.sql`analyze public.tickets`;
    const plan = await db.sql`explain (format json)
      select id from public.tickets where tenant_id = ${acme} and custom_fields @> '{"plan": "gold"}'::jsonb`;
    expect(JSON.stringify(plan)).toContain('tickets_custom_fields_idx');
    expect(await numbers(tok.admin, '?custom_field=plan:gold&limit=100')).toHaveLength(10);
  }, 60_000);
});

describe('departments', () => {
  it('every tenant has the four defaults; admins add and rename; tickets and routing use the key', async () => {
    const list = await get(tok.user, '/departments');
    expect((list.body.items as { key: string }[]).map((d) => d.key)).toEqual(['marketing', 'sales', 'support', 'technical']);
    const created = await post(tok.admin, '/departments', { key: 'billing', name: 'Billing' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect((await post(tok.agent, '/departments', { key: 'x', name: 'X' })).status).toBe(403);
    const renamed = await patch(tok.admin, `/departments/${created.body.id}`, { name: 'Billing & invoices' });
    expect([renamed.status, renamed.body.name, renamed.body.key]).toEqual([200, 'Billing & invoices', 'billing']);
    // A team receives the new department's customer tickets.
    const team = await call(tenantsApp, 'POST', `/tenants/${acme}/teams`, {
      token: tok.admin,
      body: { name: 'Billing team', department: 'billing', receives_department_tickets: true },
    });
    expect(team.status, JSON.stringify(team.body)).toBe(201);
    const ticket = await post(tok.user, '', { title: 'Invoice is wrong', department: 'billing' });
    expect(ticket.status, JSON.stringify(ticket.body)).toBe(201);
    const [row] = await db.sql`select department, team_id from public.tickets where id = ${ticket.body.id}`;
    expect(row).toEqual({ department: 'billing', team_id: team.body.id });
    expect((await get(tok.admin, '?department=billing')).body.items).toHaveLength(1);
  });

  it("another tenant's or an unknown department is a 422; one in use cannot be removed", async () => {
    await db.sql`insert into public.departments (tenant_id, key, name) values (${globex}, 'globex-only', 'Globex only')`;
    for (const department of ['globex-only', 'nonesuch']) {
      const r = await post(tok.user, '', { title: 'Wrong department', department });
      expect([r.status, errorCode(r), fieldsOf(r)]).toEqual([422, 'validation_failed', ['department']]);
    }
    const [billing] = await db.sql`select id from public.departments where tenant_id = ${acme} and key = 'billing'`;
    const inUse = await call(app, 'DELETE', `/tickets/departments/${billing.id}`, { token: tok.admin });
    expect([inUse.status, errorCode(inUse)]).toEqual([409, 'still_referenced']);
    const spare = await post(tok.admin, '/departments', { key: 'spare', name: 'Spare' });
    expect((await call(app, 'DELETE', `/tickets/departments/${spare.body.id}`, { token: tok.admin })).status).toBe(204);
    const [globexDept] = await db.sql`select id from public.departments where tenant_id = ${globex} and key = 'globex-only'`;
    expect((await call(app, 'DELETE', `/tickets/departments/${globexDept.id}`, { token: tok.admin })).status).toBe(404);
  });

  it('a new tenant starts with the four defaults', async () => {
    const [t] = await db.sql`insert into public.tenants (name, slug) values ('Fresh', 'fresh-departments') returning id`;
    const rows = await db.sql`select key from public.departments where tenant_id = ${t.id} order by key`;
    expect(rows.map((r) => r.key)).toEqual(['marketing', 'sales', 'support', 'technical']);
  });
});

describe('tags', () => {
  it('the registry is listed in pages by name: every tag once; a forged cursor is a 422', async () => {
    await db.sql`insert into public.tags (tenant_id, name) select ${acme}, 'paged-' || lpad(i::text, 2, '0') from generate_series(1, 25) i`;
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await get(tok.agent, `/tags?limit=10${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.items.length).toBeLessThanOrEqual(10);
      seen.push(...r.body.items.map((t: { name: string }) => t.name));
      cursor = r.body.next;
      pages++;
    } while (cursor);
    const all = (await db.sql`select name from public.tags where tenant_id = ${acme} order by name`).map((t) => t.name);
    expect(seen).toEqual(all);
    expect(pages).toBe(Math.ceil(all.length / 10));
    expect((await get(tok.agent, '/tags')).body).toMatchObject({ next: null });
    const forged = await get(tok.agent, '/tags?cursor=bm9wZQ');
    expect([forged.status, errorCode(forged)]).toEqual([422, 'validation_failed']);
  });

  it('a tag given twice is kept once, on create, on update and from a macro', async () => {
    const t = await post(tok.agent, '', { title: 'Twice tagged', tags: ['vip', 'vip', 'eu'] });
    expect([t.status, t.body.tags]).toEqual([201, ['vip', 'eu']]);
    const edited = await patch(tok.agent, `/${t.body.id}`, { tags: ['eu', 'eu'] });
    expect([edited.status, edited.body.tags]).toEqual([200, ['eu']]);
    const macro = await post(tok.agent, '/macros', { name: 'Tag twice', actions: [{ type: 'add_tags', tags: ['x', 'x'] }] });
    expect(macro.status, JSON.stringify(macro.body)).toBe(201);
    const applied = await call(app, 'POST', `/tickets/${t.body.id}/macros/${macro.body.id}/apply`, { token: tok.agent });
    expect(applied.body.ticket.tags).toEqual(['eu', 'x']);
  });


  it('tags used on tickets register themselves; admins colour them; one in use stays', async () => {
    const t = await post(tok.agent, '', { title: 'Tagged ticket', tags: ['urgent-billing', 'eu'] });
    expect(t.status).toBe(201);
    const list = await get(tok.agent, '/tags');
    const tags = list.body.items as { id: string; name: string; color: string | null }[];
    expect(tags.map((x) => x.name)).toEqual(expect.arrayContaining(['eu', 'urgent-billing']));
    expect((await get(tok.user, '/tags')).status).toBe(403);
    const eu = tags.find((x) => x.name === 'eu')!;
    const coloured = await patch(tok.admin, `/tags/${eu.id}`, { color: '#0055ff' });
    expect([coloured.status, coloured.body.color]).toEqual([200, '#0055ff']);
    expect((await patch(tok.admin, `/tags/${eu.id}`, { color: 'blue' })).status).toBe(422);
    expect((await patch(tok.agent, `/tags/${eu.id}`, { color: '#000000' })).status).toBe(403);
    const inUse = await call(app, 'DELETE', `/tickets/tags/${eu.id}`, { token: tok.admin });
    expect([inUse.status, errorCode(inUse)]).toEqual([409, 'tag_in_use']);
    const created = await post(tok.admin, '/tags', { name: 'planned', color: '#112233', description: 'Planned work' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect((await post(tok.admin, '/tags', { name: 'planned' })).status).toBe(409);
    expect((await call(app, 'DELETE', `/tickets/tags/${created.body.id}`, { token: tok.admin })).status).toBe(204);
  });
});
