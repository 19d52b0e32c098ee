// Macros (issue 16 §1) through the tickets function in-process, with real tokens and a
// real database: who keeps and applies which macro, actions checked on write (zod and the
// database), a macro applied as the caller through the API's own statements — all or
// nothing, the refused action named — the audit trail showing the caller, and another
// tenant's ids tried as an attacker would.
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

beforeAll(async () => {
  db = await freshDatabase('fn_macros');
  auth = await configureAuth(db.url);
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: globex });
  tok.globexAgent = await supabaseToken(users.globexAgent, { tenantId: globex });
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

async function ticket() {
  const r = await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'Macro target', tags: ['new'] } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  await db.sql`update public.tickets set team_id = ${teams.acme} where id = ${r.body.id}`;
  return r.body as { id: string; number: number };
}
const create = (token: string, body: Record<string, unknown>) => call(app, 'POST', '/tickets/macros', { token, body });
const apply = (token: string, ticketId: string, macroId: string) =>
  call(app, 'POST', `/tickets/${ticketId}/macros/${macroId}/apply`, { token });
const state = async (id: string) => {
  const [t] = await db.sql<{ status: string; priority: string; tags: string[]; assigned_to: string | null; team_id: string | null }[]>`select status, priority, tags, assigned_to, team_id from public.tickets where id = ${id}`;
  const messages = await db.sql`select type, content, author_id from public.ticket_messages where ticket_id = ${id} order by created_at, id`;
  return { ...t, messages: messages.map((m) => `${m.type}:${m.content}`) };
};

describe('keeping macros', () => {
  it('admins add tenant-wide macros, staff personal ones, customers none', async () => {
    const t = await create(tok.admin, { scope: 'tenant', name: 'Close politely', actions: [{ type: 'reply', content: 'Closing, thanks!' }, { type: 'set_status', status: 'resolved' }] });
    expect(t.status, JSON.stringify(t.body)).toBe(201);
    expect(t.body).toMatchObject({ scope: 'tenant', owner_id: null, name: 'Close politely' });
    const mine = await create(tok.agent, { name: 'Mine', actions: [{ type: 'set_priority', priority: 'high' }] });
    expect(mine.status).toBe(201);
    expect(mine.body).toMatchObject({ scope: 'personal', owner_id: users.acmeAgent.id });
    const before = (await db.sql`select count(*)::int as n from public.macros`)[0].n;
    expect((await create(tok.agent, { scope: 'tenant', name: 'Sneaky', actions: [{ type: 'set_priority', priority: 'low' }] })).status).toBe(403);
    expect((await create(tok.user, { name: 'Customer', actions: [{ type: 'set_priority', priority: 'low' }] })).status).toBe(403);
    expect((await call(app, 'GET', '/tickets/macros', { token: tok.user })).status).toBe(403);
    expect((await db.sql`select count(*)::int as n from public.macros`)[0].n).toBe(before);
    // The admin does not see the agent's personal macro.
    const seen = await call(app, 'GET', '/tickets/macros', { token: tok.admin });
    expect(seen.body.items.map((m: { name: string }) => m.name)).toEqual(['Close politely']);
    const agentSees = await call(app, 'GET', '/tickets/macros', { token: tok.agent });
    expect(agentSees.body.items.map((m: { name: string }) => m.name)).toEqual(['Close politely', 'Mine']);
  });

  it('actions outside the allow-list, or malformed, are 422s on both paths and change nothing', async () => {
    const before = (await db.sql`select count(*)::int as n from public.macros`)[0].n;
    const bad: unknown[] = [
      [],
      [{ type: 'delete_ticket' }],
      [{ type: 'set_status', status: 'archived' }],
      [{ type: 'set_status', status: 'open', extra: 1 }],
      [{ type: 'assign', user_id: 'someone' }],
      [{ type: 'add_tags', tags: [] }],
      [{ type: 'add_note', content: '' }],
      Array.from({ length: 21 }, () => ({ type: 'set_priority', priority: 'low' })),
    ];
    for (const actions of bad) {
      const r = await create(tok.admin, { scope: 'tenant', name: 'Bad', actions });
      expect(r.status, JSON.stringify(actions).slice(0, 80)).toBe(422);
      expect(errorCode(r)).toBe('validation_failed');
    }
    expect((await create(tok.admin, { name: '', actions: [{ type: 'set_priority', priority: 'low' }] })).status).toBe(422);
    expect((await db.sql`select count(*)::int as n from public.macros`)[0].n).toBe(before);
    for (const actions of ['[{"type":"run_sql","sql":"drop table x"}]', '{"type":"set_priority"}', '[{"type":"set_priority","priority":"low","x":1}]']) {
      await expect(db.sql`insert into public.macros (tenant_id, scope, name, actions) values (${acme}, 'tenant', 'Direct', ${actions}::jsonb)`)
        .rejects.toThrow(/macros_actions_valid/);
    }
  });

  it('a duplicate name is a 409; changes and removals follow the same rights', async () => {
    const dup = await create(tok.admin, { scope: 'tenant', name: 'Close politely', actions: [{ type: 'set_priority', priority: 'low' }] });
    expect(dup.status).toBe(409);
    const shared = (await call(app, 'GET', '/tickets/macros', { token: tok.agent })).body.items.find((m: { scope: string }) => m.scope === 'tenant');
    expect((await call(app, 'PATCH', `/tickets/macros/${shared.id}`, { token: tok.agent, body: { name: 'Mine now' } })).status).toBe(403);
    expect((await call(app, 'DELETE', `/tickets/macros/${shared.id}`, { token: tok.agent })).status).toBe(403);
    const ok = await call(app, 'PATCH', `/tickets/macros/${shared.id}`, { token: tok.admin, body: { description: 'For solved tickets' } });
    expect(ok.status).toBe(200);
    expect(ok.body.actions).toHaveLength(2);
  });
});

describe('the team a set_team action names', () => {
  it("is the tenant's when a macro or rule is written (422 naming the action), and a team one names is not deleted (409 team_in_use)", async () => {
    const { app: tenantsApp } = await import('../../functions/tenants/app.ts');
    const [team] = await db.sql`insert into public.teams (tenant_id, name, department) values (${acme}, 'Named by actions', 'support') returning id`;
    const [globexTeam] = await db.sql`select id from public.teams where tenant_id = ${globex} limit 1`;
    const count = async () => (await db.sql`select (select count(*) from public.macros)::int + (select count(*) from public.automation_rules)::int as n`)[0].n;
    const before = await count();
    // A team that does not exist, or another tenant's: refused on both paths, nothing written.
    for (const id of ['2a000000-0000-4000-8000-00000000dead', globexTeam.id]) {
      const m = await create(tok.admin, { scope: 'tenant', name: 'Moves nowhere', actions: [{ type: 'add_note', content: 'x' }, { type: 'set_team', team_id: id }] });
      expect([m.status, errorCode(m)]).toEqual([422, 'validation_failed']);
      expect(m.body.error.details.fields).toEqual([{ field: 'actions.1.team_id', message: 'is not a team of the tenant' }]);
      const rule = await call(app, 'POST', '/tickets/automation-rules', {
        token: tok.admin,
        body: { name: 'Routes nowhere', event: 'ticket.created', actions: [{ type: 'set_team', team_id: id }] },
      });
      expect([rule.status, errorCode(rule)]).toEqual([422, 'validation_failed']);
      const direct = await db.sql`insert into public.macros (tenant_id, scope, name, actions)
        values (${acme}, 'tenant', 'Direct', ${db.sql.json([{ type: 'set_team', team_id: id }])})`.catch((e) => e.code);
      expect(direct).toBe('PT422');
    }
    expect(await count()).toBe(before);
    // Named by a macro and a rule: the team stays until they change.
    const m = await create(tok.admin, { scope: 'tenant', name: 'To the named team', actions: [{ type: 'set_team', team_id: team.id }] });
    expect(m.status, JSON.stringify(m.body)).toBe(201);
    const rule = await call(app, 'POST', '/tickets/automation-rules', {
      token: tok.admin,
      body: { name: 'To the named team', event: 'ticket.created', actions: [{ type: 'set_team', team_id: team.id }] },
    });
    expect(rule.status, JSON.stringify(rule.body)).toBe(201);
    // An agent's personal macro naming it: theirs, which admins cannot see or change; it
    // holds nothing (20261207196000).
    const personal = await create(tok.agent, { name: 'My shortcut to it', actions: [{ type: 'set_team', team_id: team.id }] });
    expect(personal.status, JSON.stringify(personal.body)).toBe(201);
    const del = () => call(tenantsApp, 'DELETE', `/tenants/${acme}/teams/${team.id}`, { token: tok.admin });
    const refused = await del();
    expect([refused.status, errorCode(refused)]).toEqual([409, 'team_in_use']);
    expect(refused.body.error.details).toEqual({ macros: [m.body.id], automation_rules: [rule.body.id] });
    expect(await db.sql`select 1 from public.teams where id = ${team.id}`).toHaveLength(1);
    await call(app, 'DELETE', `/tickets/macros/${m.body.id}`, { token: tok.admin });
    expect(errorCode(await del())).toBe('team_in_use');
    await call(app, 'DELETE', `/tickets/automation-rules/${rule.body.id}`, { token: tok.admin });
    expect((await del()).status).toBe(204);
  });
});

describe('applying a macro', () => {
  it('runs every action in order, as the caller, through the API\'s own rules', async () => {
    const t = await ticket();
    const canned = await call(app, 'POST', '/tickets/canned-responses', {
      token: tok.admin,
      body: { scope: 'tenant', short_code: 'hi', title: 'Hi', body: 'About #{{ticket.number}}: on it.' },
    });
    const m = await create(tok.admin, {
      scope: 'tenant',
      name: 'Take it',
      actions: [
        { type: 'assign', user_id: users.acmeAgent.id },
        { type: 'add_tags', tags: ['triaged', 'new'] },
        { type: 'remove_tags', tags: ['new'] },
        { type: 'set_priority', priority: 'urgent' },
        { type: 'add_note', content: 'Taken by macro' },
        { type: 'send_canned', canned_response_id: canned.body.id },
        { type: 'set_status', status: 'pending' },
      ],
    });
    expect(m.status, JSON.stringify(m.body)).toBe(201);
    const r = await apply(tok.agent, t.id, m.body.id);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.applied).toBe(7);
    expect(r.body.ticket).toMatchObject({ status: 'pending', priority: 'urgent', tags: ['triaged'], assigned_to: users.acmeAgent.id });
    const s = await state(t.id);
    // One transaction: both messages carry its time, so compare them as a set.
    expect(s.messages.sort()).toEqual([`message:About #${t.number}: on it.`, 'note:Taken by macro']);
    // The staff reply from the macro is the first response; the audit trail and the
    // timeline name the agent who applied it.
    const [fr] = await db.sql`select first_response_at from public.tickets where id = ${t.id}`;
    expect(fr.first_response_at).not.toBeNull();
    const events = await db.sql`select distinct actor_user_id from public.ticket_events where ticket_id = ${t.id} and type not in ('created', 'team_changed')`; // those two: the test's set-up
    expect(events.map((e) => e.actor_user_id)).toEqual([users.acmeAgent.id]);
    const audit = await db.sql`select distinct actor_user_id from public.audit_logs
      where table_name = 'tickets' and record_key ->> 'id' = ${t.id} and action = 'UPDATE' and actor_user_id is not null`;
    expect(audit.map((a) => a.actor_user_id)).toEqual([users.acmeAgent.id]); // (the set-up's own update has no person)
  });

  it('a refused action refuses the whole macro, names the action, and changes nothing', async () => {
    const t = await ticket();
    const m = await create(tok.admin, {
      scope: 'tenant',
      name: 'Broken',
      actions: [{ type: 'set_priority', priority: 'low' }, { type: 'add_note', content: 'first' }, { type: 'set_status', status: 'closed' }],
    });
    const before = await state(t.id);
    const r = await apply(tok.agent, t.id, m.body.id);
    expect(r.status).toBe(409);
    expect(errorCode(r)).toBe('invalid_transition');
    expect(r.body.error.message).toMatch(/^Action 3 \(set_status\)/);
    expect(r.body.error.details).toMatchObject({ action: 2, type: 'set_status', from: 'open', to: 'closed' });
    expect(await state(t.id)).toEqual(before);
  });

  it('an assignee or canned response the tenant does not have, a customer to assign, or a personal template is a 422 on write naming the action', async () => {
    const foreignCanned = await call(app, 'POST', '/tickets/canned-responses', {
      token: tok.globexAdmin,
      body: { scope: 'tenant', short_code: 'g', title: 'G', body: 'globex text' },
    });
    const adminsOwn = await call(app, 'POST', '/tickets/canned-responses', {
      token: tok.admin,
      body: { scope: 'personal', short_code: 'admins-own', title: 'Own', body: 'my words' },
    });
    const agentsOwn = await call(app, 'POST', '/tickets/canned-responses', {
      token: tok.agent,
      body: { scope: 'personal', short_code: 'agents-own', title: 'Own', body: 'my words' },
    });
    expect([foreignCanned.status, adminsOwn.status, agentsOwn.status]).toEqual([201, 201, 201]);
    const before = (await db.sql`select count(*)::int as n from public.macros`)[0].n;
    const cases: [string, Record<string, unknown>, string][] = [
      [tok.agent, { type: 'assign', user_id: users.globexAgent.id }, 'user_id'],
      [tok.agent, { type: 'assign', user_id: users.acmeUser.id }, 'user_id'],
      [tok.agent, { type: 'send_canned', canned_response_id: foreignCanned.body.id }, 'canned_response_id'],
      [tok.agent, { type: 'send_canned', canned_response_id: adminsOwn.body.id }, 'canned_response_id'], // someone else's
      [tok.admin, { type: 'send_canned', canned_response_id: agentsOwn.body.id }, 'canned_response_id'], // in a tenant macro
    ];
    for (const [token, action, field] of cases) {
      const scope = token === tok.admin ? 'tenant' : 'personal';
      const m = await create(token, { scope, name: `Bad ${action.type}`, actions: [{ type: 'add_note', content: 'x' }, action] });
      expect([m.status, errorCode(m), m.body.error?.details?.fields], JSON.stringify(action))
        .toEqual([422, 'validation_failed', [{ field: `actions.1.${field}`, message: expect.any(String) }]]);
    }
    expect((await db.sql`select count(*)::int as n from public.macros`)[0].n).toBe(before);
    // Its owner's own personal macro sends it.
    const own = await create(tok.agent, { name: 'Own words', actions: [{ type: 'send_canned', canned_response_id: agentsOwn.body.id }] });
    expect(own.status, JSON.stringify(own.body)).toBe(201);
    await call(app, 'DELETE', `/tickets/macros/${own.body.id}`, { token: tok.agent });
  });

  it("a team's template the caller is not on the team of refuses the macro when applied, naming the action", async () => {
    const t = await ticket();
    const before = await state(t.id);
    const [team] = await db.sql`insert into public.teams (tenant_id, name, department) values (${acme}, 'Not the agent''s', 'sales') returning id`;
    const [canned] = await db.sql`insert into public.canned_responses (tenant_id, scope, team_id, short_code, title, body)
      values (${acme}, 'team', ${team.id}, 'theirs', 'Theirs', 'their words') returning id`;
    const m = await create(tok.agent, { name: 'Borrowed', actions: [{ type: 'add_note', content: 'x' }, { type: 'send_canned', canned_response_id: canned.id }] });
    expect(m.status, JSON.stringify(m.body)).toBe(201);
    const r = await apply(tok.agent, t.id, m.body.id);
    expect([r.status, r.body.error?.details?.action]).toEqual([404, 1]);
    expect(await state(t.id)).toEqual(before);
    await call(app, 'DELETE', `/tickets/macros/${m.body.id}`, { token: tok.agent });
  });

  it('a canned response that fills in as empty is a 422 naming it, as a reply with it is; nothing is applied', async () => {
    const t = await ticket();
    // A ticket with no requester (a Chatwoot conversation's): {{requester.name}} is empty.
    await db.sql`update public.tickets set created_by = null where id = ${t.id}`;
    const before = await state(t.id);
    const canned = await call(app, 'POST', '/tickets/canned-responses', {
      token: tok.admin,
      body: { scope: 'tenant', short_code: 'name-only', title: 'Name only', body: '{{requester.name}}' },
    });
    expect(canned.status).toBe(201);
    const m = await create(tok.agent, { name: 'Greet', actions: [{ type: 'add_note', content: 'x' }, { type: 'send_canned', canned_response_id: canned.body.id }] });
    const r = await apply(tok.agent, t.id, m.body.id);
    expect([r.status, errorCode(r), r.body.error.details.action, r.body.error.details.fields])
      .toEqual([422, 'validation_failed', 1, [{ field: 'canned_response_id', message: 'fills in as empty text' }]]);
    expect(await state(t.id)).toEqual(before);
  });

  it('customers cannot apply macros; another tenant\'s macro or ticket is not there', async () => {
    const t = await ticket();
    const mine = (await call(app, 'GET', '/tickets/macros', { token: tok.agent })).body.items[0];
    expect((await apply(tok.user, t.id, mine.id)).status).toBe(403);
    const globexMacro = await create(tok.globexAdmin, { scope: 'tenant', name: 'Globex', actions: [{ type: 'set_priority', priority: 'low' }] });
    expect(globexMacro.status).toBe(201);
    expect((await apply(tok.agent, t.id, globexMacro.body.id)).status).toBe(404);
    expect((await apply(tok.globexAgent, t.id, globexMacro.body.id)).status).toBe(404);
    for (const [method, body] of [['GET', undefined], ['PATCH', { name: 'pwned' }], ['DELETE', undefined]] as const) {
      expect((await call(app, method, `/tickets/macros/${mine.id}`, { token: tok.globexAdmin, body })).status).toBe(404);
    }
    expect((await db.sql`select count(*)::int as n from public.macros where name = 'pwned'`)[0].n).toBe(0);
    expect((await state(t.id)).priority).toBe('medium');
  });
});

describe('an action after one that moved the ticket away', () => {
  it('is a 409 out_of_sight naming the action, whatever it is, and the macro changes nothing', async () => {
    const [elsewhere] = await db.sql`insert into public.teams (tenant_id, name, department) values (${acme}, 'Elsewhere', 'sales') returning id`;
    const canned = await call(app, 'POST', '/tickets/canned-responses', { token: tok.admin, body: { scope: 'tenant', short_code: 'bye', title: 'Bye', body: 'Goodbye' } });
    expect(canned.status).toBe(201);
    const next = [
      { type: 'add_note', content: 'Moved on' },
      { type: 'reply', content: 'Moved on' },
      { type: 'send_canned', canned_response_id: canned.body.id },
      { type: 'assign', user_id: users.acmeAgent.id },
      { type: 'set_team', team_id: teams.acme },
      { type: 'set_priority', priority: 'high' },
    ];
    for (const action of next) {
      const t = await ticket();
      const before = await state(t.id);
      const m = await create(tok.agent, { name: `Move then ${action.type}`, actions: [{ type: 'set_team', team_id: elsewhere.id }, action] });
      expect(m.status, JSON.stringify(m.body)).toBe(201);
      const r = await apply(tok.agent, t.id, m.body.id);
      expect([r.status, r.body.error?.code, r.body.error?.details?.action], action.type).toEqual([409, 'out_of_sight', 1]);
      expect(await state(t.id), action.type).toEqual(before);
      await call(app, 'DELETE', `/tickets/macros/${m.body.id}`, { token: tok.agent });
    }
  });
});

describe('listing macros', () => {
  it('in pages by name, each once, with the cursor checked', async () => {
    for (let i = 0; i < 7; i++) {
      expect((await create(tok.admin, { scope: 'tenant', name: `Paged ${i}`, actions: [{ type: 'set_priority', priority: 'low' }] })).status).toBe(201);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r = await call(app, 'GET', `/tickets/macros?limit=3${cursor ? `&cursor=${cursor}` : ''}`, { token: tok.agent });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.items.length).toBeLessThanOrEqual(3);
      seen.push(...r.body.items.map((m: { id: string }) => m.id));
      cursor = r.body.next;
    } while (cursor);
    const all = await call(app, 'GET', '/tickets/macros', { token: tok.agent });
    expect(all.body.next).toBeNull();
    expect(seen).toEqual(all.body.items.map((m: { id: string }) => m.id));
    expect(seen.length).toBeGreaterThanOrEqual(7);
    const forged = await call(app, 'GET', '/tickets/macros?cursor=bm9wZQ', { token: tok.agent });
    expect([forged.status, errorCode(forged)]).toEqual([422, 'validation_failed']);
  });
});
