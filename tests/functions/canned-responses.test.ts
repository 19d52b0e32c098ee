// Canned responses (issue 16 §3) through the tickets function in-process, with real
// tokens and a real database: who sees and keeps which template (tenant-wide, team,
// personal), placeholders checked on write and filled in the caller's transaction,
// replies sent from a template, and another tenant's ids tried as an attacker would.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app } from '../../functions/tickets/app.ts';
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
const tok: Record<string, string> = {};
const acme = tenants.acme.id;
const globex = tenants.globex.id;
// A second acme agent, on no team.
const agent2 = { id: '00000000-0000-4000-8000-0000000000c2', email: 'agent2-canned@acme.test' };

beforeAll(async () => {
  db = await freshDatabase('fn_canned');
  auth = await configureAuth(db.url);
  await db.sql`insert into public.users (id, email, display_name) values (${agent2.id}, ${agent2.email}, 'Second Agent')`;
  await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${agent2.id}, ${agent2.id})`;
  await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${agent2.id}, 'agent')`;
  await db.sql`update public.users set display_name = 'Ada Agent' where id = ${users.acmeAgent.id}`;
  await db.sql`update public.users set display_name = null, first_name = 'Carl', last_name = 'Customer' where id = ${users.acmeUser.id}`;
  tok.super = await supabaseToken(users.super);
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.agent2 = await supabaseToken(agent2, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: globex });
  tok.globexAgent = await supabaseToken(users.globexAgent, { tenantId: globex });
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

const create = (token: string, body: Record<string, unknown>) => call(app, 'POST', '/tickets/canned-responses', { token, body });
const list = async (token: string, query = '') => {
  const r = await call(app, 'GET', `/tickets/canned-responses${query}`, { token });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return (r.body.items as { short_code: string; scope: string; id: string }[]);
};
const cannedRows = async () => (await db.sql`select count(*)::int as n from public.canned_responses`)[0].n as number;

/** A ticket of acme's customer on the support team (the seeded agent's team). */
async function ticket(title = 'Printer is on fire') {
  const r = await call(app, 'POST', '/tickets', { token: tok.user, body: { title, description: 'Smoke' } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  await db.sql`update public.tickets set team_id = ${teams.acme} where id = ${r.body.id}`;
  return r.body as { id: string; number: number; title: string };
}

describe('keeping canned responses', () => {
  it('admins add tenant-wide and team templates; agents only personal ones', async () => {
    const t = await create(tok.admin, { scope: 'tenant', short_code: 'hello', title: 'Hello', body: 'Hello {{requester.name}}' });
    expect(t.status, JSON.stringify(t.body)).toBe(201);
    expect(t.body).toMatchObject({ scope: 'tenant', team_id: null, owner_id: null, short_code: 'hello', created_by: users.acmeAdmin.id });
    const team = await create(tok.admin, { scope: 'team', team_id: teams.acme, short_code: 'hello', title: 'Team hello', body: 'Hi from support' });
    expect(team.status, JSON.stringify(team.body)).toBe(201);
    const mine = await create(tok.agent, { short_code: 'hello', title: 'My hello', body: 'Hi, {{agent.name}} here' });
    expect(mine.status, JSON.stringify(mine.body)).toBe(201);
    expect(mine.body).toMatchObject({ scope: 'personal', owner_id: users.acmeAgent.id });

    const before = await cannedRows();
    const refused = await create(tok.agent, { scope: 'tenant', short_code: 'sneaky', title: 'Sneaky', body: 'x' });
    expect(refused.status).toBe(403);
    expect(errorCode(refused)).toBe('forbidden');
    const teamRefused = await create(tok.agent, { scope: 'team', team_id: teams.acme, short_code: 'sneaky', title: 'Sneaky', body: 'x' });
    expect(teamRefused.status).toBe(403);
    const customer = await create(tok.user, { short_code: 'mine', title: 'Mine', body: 'x' });
    expect(customer.status).toBe(403);
    expect(await cannedRows()).toBe(before);
  });

  it('each person sees the tenant\'s, their teams\' and their own; customers none', async () => {
    const agentSees = await list(tok.agent, '?code=hello');
    expect(agentSees.map((c) => c.scope).sort()).toEqual(['personal', 'team', 'tenant']);
    // agent2 is on no team: the tenant-wide one only, not agent 1's personal one.
    expect((await list(tok.agent2, '?code=hello')).map((c) => c.scope)).toEqual(['tenant']);
    // Admins see the teams' but never someone's personal templates.
    expect((await list(tok.admin, '?code=hello')).map((c) => c.scope).sort()).toEqual(['team', 'tenant']);
    const customer = await call(app, 'GET', '/tickets/canned-responses', { token: tok.user });
    expect(customer.status).toBe(403);
    expect(errorCode(customer)).toBe('forbidden');
    expect((await list(tok.agent, '?scope=personal')).every((c) => c.scope === 'personal')).toBe(true);
  });

  it('a short code is unique where it is used from, and the clash is a 409 naming the field', async () => {
    const again = await create(tok.admin, { scope: 'tenant', short_code: 'hello', title: 'Again', body: 'x' });
    expect(again.status).toBe(409);
    expect(errorCode(again)).toBe('already_exists');
    // Another agent may use the same personal code.
    const other = await create(tok.agent2, { short_code: 'hello', title: 'Mine too', body: 'x' });
    expect(other.status).toBe(201);
  });

  it('unknown placeholders, bad codes and shapes are 422s that change nothing', async () => {
    const before = await cannedRows();
    const cases: Record<string, unknown>[] = [
      { short_code: 'typo', title: 'Typo', body: 'Hello {{requester.nmae}}' },
      { short_code: 'secret', title: 'Leak', body: '{{ticket.description}}' },
      { short_code: 'Bad Code', title: 'x', body: 'x' },
      { short_code: '', title: 'x', body: 'x' },
      { short_code: 'ok', title: '', body: 'x' },
      { short_code: 'ok', title: 'x', body: '' },
      { short_code: 'ok', title: 'x', body: 'x'.repeat(10_001) },
      { short_code: 'ok', title: 'x', body: 'x', scope: 'team' }, // no team_id
      { short_code: 'ok', title: 'x', body: 'x', scope: 'tenant', team_id: teams.acme },
      { short_code: 'ok', title: 'x', body: 'x', scope: 'galaxy' },
      { short_code: 'ok', title: 'x', body: 'x', owner_id: users.acmeAdmin.id }, // not a field
    ];
    for (const body of cases) {
      const r = await create(tok.admin, body);
      expect(r.status, JSON.stringify(body)).toBe(422);
      expect(errorCode(r)).toBe('validation_failed');
    }
    const garbled = await call(app, 'POST', '/tickets/canned-responses', { token: tok.admin, rawBody: '{"short_code":' });
    expect(garbled.status).toBe(400);
    expect(await cannedRows()).toBe(before);
  });

  it('the database refuses an unknown placeholder from the direct-table path too', async () => {
    await expect(db.sql`insert into public.canned_responses (tenant_id, scope, short_code, title, body)
      values (${acme}, 'tenant', 'direct', 'Direct', 'Hi {{ requester.email }}')`).rejects.toThrow(/canned_responses_placeholders/);
    await db.sql`insert into public.canned_responses (tenant_id, scope, short_code, title, body)
      values (${acme}, 'tenant', 'direct', 'Direct', 'Hi {{ requester.name }}, about {{ticket.title}}')`;
    await db.sql`delete from public.canned_responses where short_code = 'direct'`;
  });

  it('updates and removals: admins the shared ones, owners their own', async () => {
    const shared = (await list(tok.agent, '?scope=tenant&code=hello'))[0];
    const refused = await call(app, 'PATCH', `/tickets/canned-responses/${shared.id}`, { token: tok.agent, body: { title: 'Mine now' } });
    expect(refused.status).toBe(403);
    expect(errorCode(refused)).toBe('forbidden');
    const del = await call(app, 'DELETE', `/tickets/canned-responses/${shared.id}`, { token: tok.agent });
    expect(del.status).toBe(403);
    const ok = await call(app, 'PATCH', `/tickets/canned-responses/${shared.id}`, { token: tok.admin, body: { title: 'Hello there' } });
    expect(ok.status).toBe(200);
    expect(ok.body.title).toBe('Hello there');

    const mine = (await list(tok.agent, '?scope=personal&code=hello'))[0];
    // Another agent (and the admin) cannot even see agent 1's personal template.
    for (const token of [tok.agent2, tok.admin]) {
      expect((await call(app, 'GET', `/tickets/canned-responses/${mine.id}`, { token })).status).toBe(404);
      expect((await call(app, 'PATCH', `/tickets/canned-responses/${mine.id}`, { token, body: { title: 'x' } })).status).toBe(404);
      expect((await call(app, 'DELETE', `/tickets/canned-responses/${mine.id}`, { token })).status).toBe(404);
    }
    const changed = await call(app, 'PATCH', `/tickets/canned-responses/${mine.id}`, { token: tok.agent, body: { body: 'Yo {{agent.name}}' } });
    expect(changed.status).toBe(200);
    const bad = await call(app, 'PATCH', `/tickets/canned-responses/${mine.id}`, { token: tok.agent, body: {} });
    expect(bad.status).toBe(422);
    const placeholder = await call(app, 'PATCH', `/tickets/canned-responses/${mine.id}`, { token: tok.agent, body: { body: '{{x}}' } });
    expect(placeholder.status).toBe(422);
    expect((await db.sql`select body from public.canned_responses where id = ${mine.id}`)[0].body).toBe('Yo {{agent.name}}');
  });

  it('every change is audited', async () => {
    const rows = await db.sql`select action from public.audit_logs where table_name = 'canned_responses'`;
    expect(rows.map((r) => r.action)).toEqual(expect.arrayContaining(['INSERT', 'UPDATE']));
  });
});

describe('replying with a canned response', () => {
  it('fills the placeholders for the ticket and the agent, in the caller\'s transaction', async () => {
    const t = await ticket('Printer \\1 & co');
    const c = await create(tok.admin, {
      scope: 'tenant',
      short_code: 'ack',
      title: 'Acknowledge',
      body: 'Hello {{requester.name}}, ticket #{{ ticket.number }} ("{{ticket.title}}") is with {{agent.name}}.',
    });
    expect(c.status).toBe(201);
    const r = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { canned_response_id: c.body.id } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.content).toBe(`Hello Carl Customer, ticket #${t.number} ("Printer \\1 & co") is with Ada Agent.`);
    expect(r.body).toMatchObject({ type: 'message', author_id: users.acmeAgent.id });
    // As a note too.
    const note = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { canned_response_id: c.body.id, type: 'note' } });
    expect(note.status).toBe(201);
    expect(note.body.type).toBe('note');
  });

  it("fills each placeholder from the template alone: a title or name holding a placeholder is sent as written", async () => {
    const t = await ticket('Order {{agent.name}} lost {{ticket.number}}');
    const c = await create(tok.admin, { scope: 'tenant', short_code: 'about', title: 'About', body: 'About: {{ticket.title}} — {{agent.name}}' });
    expect(c.status).toBe(201);
    const r = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { canned_response_id: c.body.id } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.content).toBe('About: Order {{agent.name}} lost {{ticket.number}} — Ada Agent');
  });

  it('a template that fills past a message\'s 10,000 characters on this ticket is a 422 naming it, and sends nothing', async () => {
    const short = await ticket('Short');
    const long = await ticket('L'.repeat(200));
    const c = await create(tok.admin, { scope: 'tenant', short_code: 'long-title', title: 'Long', body: `${'x'.repeat(9_900)} {{ticket.title}}` });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    const fits = await call(app, 'POST', `/tickets/${short.id}/messages`, { token: tok.agent, body: { canned_response_id: c.body.id } });
    expect(fits.status, JSON.stringify(fits.body)).toBe(201);
    const messages = async () => (await db.sql`select count(*)::int as n from public.ticket_messages where ticket_id = ${long.id}`)[0].n;
    const before = await messages();
    const over = await call(app, 'POST', `/tickets/${long.id}/messages`, { token: tok.agent, body: { canned_response_id: c.body.id } });
    expect([over.status, errorCode(over), over.body.error.details.fields]).toEqual([422, 'validation_failed', [
      { field: 'canned_response_id', message: 'fills in as more than 10000 characters' },
    ]]);
    expect(await messages()).toBe(before);
  });

  it('a template the caller cannot see, or of another tenant, is a 404 and sends nothing', async () => {
    const t = await ticket();
    const messages = async () => (await db.sql`select count(*)::int as n from public.ticket_messages where ticket_id = ${t.id}`)[0].n;
    const before = await messages();
    const personal = (await list(tok.agent, '?scope=personal&code=hello'))[0];
    const asAgent2 = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.admin, body: { canned_response_id: personal.id } });
    expect(asAgent2.status).toBe(404);
    expect(errorCode(asAgent2)).toBe('not_found');

    const foreign = await create(tok.globexAdmin, { scope: 'tenant', short_code: 'globex', title: 'Globex', body: 'globex secret template' });
    expect(foreign.status).toBe(201);
    const attack = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { canned_response_id: foreign.body.id } });
    expect(attack.status).toBe(404);
    // Globex's agent, with acme's ticket and its own template: the ticket is not there.
    const other = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.globexAgent, body: { canned_response_id: foreign.body.id } });
    expect(other.status).toBe(404);
    // A customer cannot use templates at all, even the tenant's own.
    const shared = (await list(tok.agent, '?scope=tenant&code=ack'))[0];
    const customer = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.user, body: { canned_response_id: shared.id } });
    expect(customer.status).toBe(403);
    // Both content and a template, or neither: 422.
    for (const body of [{ content: 'x', canned_response_id: shared.id }, {}, { canned_response_id: 'not-a-uuid' }]) {
      const r = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body });
      expect(r.status, JSON.stringify(body)).toBe(422);
    }
    expect(await messages()).toBe(before);
  });

  it('globex sees none of acme\'s templates by id, list or filter', async () => {
    const acmeIds = (await db.sql`select id from public.canned_responses where tenant_id = ${acme}`).map((r) => r.id as string);
    expect(acmeIds.length).toBeGreaterThan(2);
    for (const id of acmeIds) {
      for (const [method, body] of [['GET', undefined], ['PATCH', { title: 'pwned' }], ['DELETE', undefined]] as const) {
        const r = await call(app, method, `/tickets/canned-responses/${id}`, { token: tok.globexAdmin, body });
        expect(r.status, `${method} ${id}`).toBe(404);
      }
    }
    const seen = await list(tok.globexAdmin, `?team_id=${teams.acme}`);
    expect(seen).toEqual([]);
    expect((await list(tok.globexAdmin)).every((c) => !acmeIds.includes(c.id))).toBe(true);
    // A team of another tenant cannot own a template here.
    const cross = await create(tok.globexAdmin, { scope: 'team', team_id: teams.acme, short_code: 'cross', title: 'x', body: 'x' });
    expect(cross.status).toBe(422);
    expect((await db.sql`select title from public.canned_responses where tenant_id = ${acme} and title = 'pwned'`)).toEqual([]);
  });
});

describe('listing canned responses', () => {
  it('in pages by short code: each once, the filters kept, the cursor checked; a cut list says so', async () => {
    for (let i = 0; i < 5; i++) {
      expect((await create(tok.admin, { scope: 'tenant', short_code: `page-${i}`, title: `Page ${i}`, body: 'x' })).status).toBe(201);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r = await call(app, 'GET', `/tickets/canned-responses?code=page-&limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: tok.agent });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      seen.push(...r.body.items.map((c: { short_code: string }) => c.short_code));
      cursor = r.body.next;
    } while (cursor);
    expect(seen).toEqual(['page-0', 'page-1', 'page-2', 'page-3', 'page-4']);
    const forged = await call(app, 'GET', '/tickets/canned-responses?cursor=bm9wZQ', { token: tok.agent });
    expect([forged.status, errorCode(forged)]).toEqual([422, 'validation_failed']);
  });
});
