// The tickets function in-process through its Hono app, with real tokens and a real
// database: the workflow rules, the role × action matrix with own and foreign ids,
// concurrency (numbering, idempotency, auto-assignment), SLA, merge, search,
// pagination, statistics, attachments and validation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as jobsApp } from '../../functions/jobs/app.ts';
import { app } from '../../functions/tickets/app.ts';
import { asService, closeDb } from '../../shared/db.ts';
import { runJobs } from '../../shared/jobs/runner.ts';
import { handleLocalStorage } from '../../shared/storage.ts';
import { apiKey } from '../../scripts/tokens.mjs';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { someoneWaitsFor } from '../helpers/advisory-locks.ts';
import { call, errorCode } from '../helpers/http.ts';
import { supabaseClaims, teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

let db: TestDatabase;
let auth: AuthFixture;
let storageDir: string;
const tok: Record<string, string> = {};
const acme = tenants.acme.id;
// A second acme agent, not on the support team, for visibility and auto-assignment.
const agent2 = { id: '00000000-0000-4000-8000-0000000000a2', email: 'agent2@acme.test' };

beforeAll(async () => {
  db = await freshDatabase('fn_tickets');
  // The customer here files more tickets in a run than a customer's daily allowance
  // (tests/functions/customer-ticket-cap.test.ts is about that).
  await db.sql`update public.tenants set settings = settings || '{"customer_tickets_per_day": 10000}'`;
  storageDir = await mkdtemp(path.join(os.tmpdir(), 'tickets-storage-'));
  auth = await configureAuth(db.url, { LOCAL_STORAGE_DIR: storageDir, STORAGE_BACKEND: 'local' });
  await db.sql`insert into public.users (id, email) values (${agent2.id}, ${agent2.email})`;
  await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${agent2.id}, ${agent2.id})`;
  await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${agent2.id}, 'agent')`;
  await db.sql`insert into public.sla_policies (tenant_id, priority, first_response_minutes, resolution_minutes) values
    (${acme}, 'urgent', 15, 240), (${acme}, 'medium', 240, 2880)`;
  tok.super = await supabaseToken(users.super);
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.agent2 = await supabaseToken(agent2, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.globexUser = await supabaseToken(users.globexUser, { tenantId: tenants.globex.id });
  tok.globexAgent = await supabaseToken(users.globexAgent, { tenantId: tenants.globex.id });
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
  await rm(storageDir, { recursive: true, force: true });
});

/** A ticket filed by acme's customer on the support team (the seeded agent's team). */
async function newTicket(extra: Record<string, unknown> = {}, token = tok.user) {
  const r = await call(app, 'POST', '/tickets', {
    token,
    body: { title: 'Printer is on fire', description: 'Smoke everywhere', ...extra },
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  if (token === tok.user && !extra.team_id) {
    await db.sql`update public.tickets set team_id = ${teams.acme} where id = ${r.body.id}`;
  }
  return r.body;
}

const count = async (table: string) => (await db.sql`select count(*)::int as n from ${db.sql('public')}.${db.sql(table)}`)[0].n as number;

describe('creating tickets', () => {
  it('a customer opens a ticket: numbered, open, theirs, with SLA due dates', async () => {
    const t = await newTicket({ priority: 'urgent', tags: ['printer', 'fire'] });
    expect(t).toMatchObject({ status: 'open', priority: 'urgent', created_by: users.acmeUser.id, assigned_to: null, tags: ['printer', 'fire'] });
    expect(t.number).toBeGreaterThan(0);
    const created = new Date(t.created_at).getTime();
    expect(new Date(t.first_response_due_at).getTime() - created).toBe(15 * 60_000);
    expect(new Date(t.due_date).getTime() - created).toBe(240 * 60_000);
  });

  it('a customer cannot set their own due date: the SLA policy decides', async () => {
    const t = await newTicket({ priority: 'urgent', due_date: '2020-01-01T00:00:00Z' });
    expect(new Date(t.due_date).getTime() - new Date(t.created_at).getTime()).toBe(240 * 60_000);
  });

  it('customers cannot route, assign or file for others', async () => {
    const before = await count('tickets');
    for (
      const [extra, field] of [
        [{ team_id: teams.acme }, 'team_id'],
        [{ assigned_to: users.acmeAgent.id }, 'assigned_to'],
        [{ requester_id: users.acmeAdmin.id }, 'requester_id'],
      ] as const
    ) {
      const r = await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'Sneaky routing', ...extra } });
      expect(r.status).toBe(403);
      // The database's refusal names the field the request sent (the requester is the created_by column).
      expect(r.body.error).toMatchObject({ code: 'forbidden', details: { field } });
    }
    expect(await count('tickets')).toBe(before);
  });

  it('staff file for a customer and assign on creation; the assignee must be staff of the tenant', async () => {
    const r = await call(app, 'POST', '/tickets', {
      token: tok.agent,
      body: { title: 'Phoned-in issue', requester_id: users.acmeUser.id, assigned_to: users.acmeAgent.id },
    });
    expect(r.body).toMatchObject({ created_by: users.acmeUser.id, assigned_to: users.acmeAgent.id });
    const toCustomer = await call(app, 'POST', '/tickets', { token: tok.agent, body: { title: 'Bad assignee', assigned_to: users.acmeUser.id } });
    expect([toCustomer.status, toCustomer.body.error.details.fields]).toEqual([422, [{ field: 'assigned_to', message: 'is not an agent or admin of this tenant' }]]);
    const toForeign = await call(app, 'POST', '/tickets', { token: tok.agent, body: { title: 'Foreign assignee', assigned_to: users.globexAgent.id } });
    expect([toForeign.status, toForeign.body.error.details.fields[0].field]).toEqual([422, 'assigned_to']);
    const foreignRequester = await call(app, 'POST', '/tickets', { token: tok.agent, body: { title: 'Foreign requester', requester_id: users.globexUser.id } });
    expect([foreignRequester.status, foreignRequester.body.error.details.fields]).toEqual([422, [{ field: 'requester_id', message: 'does not exist in this tenant' }]]);
  });

  it('numbers are gap-free and unique per tenant under concurrent creates', async () => {
    const before = (await db.sql`select coalesce(max(number), 0)::int as n from public.tickets where tenant_id = ${acme}`)[0].n;
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) =>
      call(app, 'POST', '/tickets', { token: i % 2 ? tok.user : tok.agent, body: { title: `Concurrent ticket ${i}` } })));
    expect(results.every((r) => r.status === 201)).toBe(true);
    // A failed create in between gives its number back.
    await call(app, 'POST', '/tickets', { token: tok.agent, body: { title: 'Doomed ticket', assigned_to: users.acmeUser.id } });
    const after = await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'After the failure' } });
    const numbers = (await db.sql`select number from public.tickets where tenant_id = ${acme} and number > ${before} order by number`).map((r) => Number(r.number));
    expect(numbers).toEqual(Array.from({ length: 31 }, (_, i) => before + 1 + i));
    expect(after.body.number).toBe(before + 31);
    // Another tenant counts on its own.
    const g = await call(app, 'POST', '/tickets', { token: tok.globexUser, body: { title: 'Globex first ticket' } });
    expect(g.body.number).toBe(1);
  });
});

describe('Idempotency-Key', () => {
  it('a retried create returns the first result and writes nothing new', async () => {
    const body = { title: 'Idempotent ticket', description: 'once' };
    const first = await call(app, 'POST', '/tickets', { token: tok.user, body, headers: { 'idempotency-key': 'k-1' } });
    const before = await count('tickets');
    const again = await call(app, 'POST', '/tickets', { token: tok.user, body, headers: { 'idempotency-key': 'k-1' } });
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(await count('tickets')).toBe(before);
    // A replay says so; a first answer does not.
    const replayed = await app.request('/tickets', {
      method: 'POST',
      headers: { authorization: `Bearer ${tok.user}`, 'content-type': 'application/json', 'idempotency-key': 'k-1' },
      body: JSON.stringify(body),
    });
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    const fresh = await app.request('/tickets', {
      method: 'POST',
      headers: { authorization: `Bearer ${tok.user}`, 'content-type': 'application/json', 'idempotency-key': 'k-1-fresh' },
      body: JSON.stringify(body),
    });
    expect([fresh.status, fresh.headers.get('idempotent-replayed')]).toEqual([201, null]);
    const other = await call(app, 'POST', '/tickets', { token: tok.user, body: { ...body, description: 'twice' }, headers: { 'idempotency-key': 'k-1' } });
    expect([other.status, errorCode(other)]).toEqual([409, 'idempotency_key_reused']);
    // Keys are per user: another caller's identical key is their own.
    const agentOwn = await call(app, 'POST', '/tickets', { token: tok.agent, body, headers: { 'idempotency-key': 'k-1' } });
    expect(agentOwn.status).toBe(201);
    expect(agentOwn.body.id).not.toBe(first.body.id);
  });

  it("a retry answers with the ticket as the caller may see it now: demoted since, its id alone", async () => {
    const [u] = await db.sql`insert into public.users (email) values ('replaying.agent@acme.test') returning id, email`;
    await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${u.id}, ${u.id})`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${u.id}, 'agent')`;
    const token = await supabaseToken({ id: u.id, email: u.email } as never, { tenantId: acme });
    const body = { title: 'Filed for a customer', requester_id: users.acmeUser.id, assigned_to: u.id };
    const first = await call(app, 'POST', '/tickets', { token, body, headers: { 'idempotency-key': 'k-demoted' } });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.body.assigned_to).toBe(u.id); // staff saw the whole ticket
    await db.sql`update public.memberships set role = 'user' where tenant_id = ${acme} and user_id = ${u.id}`;
    const again = await call(app, 'POST', '/tickets', { token, body, headers: { 'idempotency-key': 'k-demoted' } });
    expect(again.status).toBe(201);
    expect(again.body).toEqual({ id: first.body.id, tenant_id: acme });
    await db.sql`delete from public.users where id = ${u.id}`;
  });

  it("the same request with its objects' keys in another order is a retry, not a different request", async () => {
    const first = await call(app, 'POST', '/tickets', {
      token: tok.user, body: { title: 'Keys reordered', metadata: { a: 1, b: { c: 2, d: 3 } } }, headers: { 'idempotency-key': 'k-order' },
    });
    expect(first.status).toBe(201);
    const again = await call(app, 'POST', '/tickets', {
      token: tok.user, body: { metadata: { b: { d: 3, c: 2 }, a: 1 }, title: 'Keys reordered' }, headers: { 'idempotency-key': 'k-order' },
    });
    expect([again.status, again.body.id]).toEqual([201, first.body.id]);
    // Another value is another request.
    const other = await call(app, 'POST', '/tickets', {
      token: tok.user, body: { title: 'Keys reordered', metadata: { a: 1, b: { c: 2, d: 4 } } }, headers: { 'idempotency-key': 'k-order' },
    });
    expect([other.status, errorCode(other)]).toEqual([409, 'idempotency_key_reused']);
  });

  it('a key claimed before the canonical hash (the body hashed as written) still replays within its 24 hours', async () => {
    const body = { title: 'Claimed before the deploy', metadata: { z: 1, a: 2 } };
    const first = await call(app, 'POST', '/tickets', { token: tok.user, body, headers: { 'idempotency-key': 'k-legacy' } });
    expect(first.status).toBe(201);
    // As the route stored it before: the parsed body as JSON.stringify wrote it.
    const { CreateTicketBody } = await import('../../functions/tickets/schemas.ts');
    const { createHash } = await import('node:crypto');
    const legacy = createHash('sha256').update(JSON.stringify(CreateTicketBody.parse(body))).digest('hex');
    await db.sql`update private.idempotency_keys set request_hash = ${legacy} where key = 'k-legacy'`;
    const again = await call(app, 'POST', '/tickets', { token: tok.user, body, headers: { 'idempotency-key': 'k-legacy' } });
    expect([again.status, again.body.id]).toEqual([201, first.body.id]);
  });

  it("a key keeps only its ticket's id, and the daily prune drops it after its 24 hours", async () => {
    const made = await call(app, 'POST', '/tickets', {
      token: tok.user, body: { title: 'Remembered briefly', description: 'not kept twice' }, headers: { 'idempotency-key': 'k-prune' },
    });
    const young = await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'Remembered still' }, headers: { 'idempotency-key': 'k-young' } });
    const stored = await db.sql`select key, response from private.idempotency_keys where key in ('k-prune', 'k-young') order by key`;
    expect(stored).toEqual([{ key: 'k-prune', response: { id: made.body.id } }, { key: 'k-young', response: { id: young.body.id } }]);
    await db.sql`update private.idempotency_keys set created_at = now() - interval '25 hours' where key = 'k-prune'`;
    await db.sql`select private.add_job('prune')`;
    const report = await runJobs({ tasks: ['prune'] });
    expect(report.tasks.prune).toMatchObject({ idempotency_keys: 1 });
    expect((await db.sql`select key from private.idempotency_keys where key in ('k-prune', 'k-young')`).map((r) => r.key)).toEqual(['k-young']);
  });

  it("the prune drops a person's expired key only: their API key's key of the same text, its own namespace, stays", async () => {
    const [u] = await db.sql`select user_id from public.memberships where tenant_id = ${acme} and role = 'admin' limit 1`;
    const keyId = '00000000-0000-4000-8000-0000000000e1';
    await db.sql`insert into private.idempotency_keys (tenant_id, user_id, api_key_id, key, request_hash, created_at) values
      (${acme}, ${u.user_id}, default, 'k-shared', 'h', now() - interval '25 hours'),
      (${acme}, ${u.user_id}, ${keyId}, 'k-shared', 'h', now() - interval '1 hour')`;
    expect((await db.sql`select private.prune_idempotency_keys() as n`)[0].n).toBe(1);
    expect(await db.sql`select api_key_id from private.idempotency_keys where key = 'k-shared'`).toEqual([{ api_key_id: keyId }]);
    await db.sql`delete from private.idempotency_keys where key = 'k-shared'`;
  });

  it('concurrent duplicates create one ticket', async () => {
    const before = await count('tickets');
    const results = await Promise.all(Array.from({ length: 6 }, () =>
      call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'Double-clicked submit' }, headers: { 'idempotency-key': 'k-race' } })));
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    expect(results.every((r) => r.status === 201)).toBe(true);
    expect(await count('tickets')).toBe(before + 1);
  });
});

describe('the status machine', () => {
  const all = ['open', 'pending', 'escalated', 'resolved', 'closed'] as const;
  const allowed: Record<string, string[]> = {
    open: ['escalated', 'pending', 'resolved'],
    pending: ['escalated', 'open', 'resolved'],
    escalated: ['open', 'pending', 'resolved'],
    resolved: ['closed', 'open'],
    closed: ['open'],
  };
  const pathTo: Record<string, string[]> = { open: [], pending: ['pending'], escalated: ['escalated'], resolved: ['resolved'], closed: ['resolved', 'closed'] };

  for (const from of all) {
    for (const to of all.filter((s) => s !== from)) {
      const ok = allowed[from].includes(to);
      it(`${from} → ${to}: ${ok ? 'allowed' : '409'}`, async () => {
        const t = await newTicket();
        for (const step of pathTo[from]) expect((await call(app, 'POST', `/tickets/${t.id}/status`, { token: tok.agent, body: { status: step } })).status).toBe(200);
        const r = await call(app, 'POST', `/tickets/${t.id}/status`, { token: tok.agent, body: { status: to } });
        if (ok) {
          expect(r.status).toBe(200);
          expect(r.body.status).toBe(to);
          if (to === 'resolved') expect(r.body.resolved_at).toEqual(expect.any(String));
          if (to === 'closed') expect(r.body.closed_at).toEqual(expect.any(String));
          if (to === 'open' && (from === 'resolved' || from === 'closed')) expect([r.body.resolved_at, r.body.closed_at]).toEqual([null, null]);
        } else {
          expect([r.status, errorCode(r)]).toEqual([409, 'invalid_transition']);
          expect(r.body.error.details).toEqual({ from, to, allowed: allowed[from] });
          const [row] = await db.sql`select status from public.tickets where id = ${t.id}`;
          expect(row.status).toBe(from);
        }
      });
    }
  }

  it('matches the database’s own table of transitions', async () => {
    const rows = await db.sql`select from_status, array_agg(to_status order by to_status) as tos from private.ticket_status_transitions group by 1`;
    expect(Object.fromEntries(rows.map((r) => [r.from_status, r.tos]))).toEqual(allowed);
  });

  it('a closed ticket reopens only within the tenant’s window', async () => {
    const t = await newTicket();
    await call(app, 'POST', `/tickets/${t.id}/status`, { token: tok.agent, body: { status: 'resolved' } });
    await call(app, 'POST', `/tickets/${t.id}/status`, { token: tok.agent, body: { status: 'closed' } });
    await db.sql`alter table public.tickets disable trigger tickets_before_update`;
    await db.sql`update public.tickets set closed_at = now() - interval '8 days' where id = ${t.id}`;
    await db.sql`alter table public.tickets enable trigger tickets_before_update`;
    const late = await call(app, 'POST', `/tickets/${t.id}/status`, { token: tok.agent, body: { status: 'open' } });
    expect(late.status).toBe(409);
    // The same refusal as any other transition: nothing is open to the ticket now.
    expect(late.body.error).toMatchObject({
      code: 'invalid_transition',
      details: { from: 'closed', to: 'open', allowed: [], reopen_window_days: 7 },
    });
    await db.sql`update public.tenants set settings = settings || '{"reopen_window_days": 30}' where id = ${acme}`;
    try {
      expect((await call(app, 'POST', `/tickets/${t.id}/status`, { token: tok.agent, body: { status: 'open' } })).body.status).toBe('open');
    } finally {
      await db.sql`update public.tenants set settings = settings - 'reopen_window_days' where id = ${acme}`;
    }
  });

  it('the database refuses a bad transition even without the API', async () => {
    const t = await newTicket();
    await expect(db.sql`update public.tickets set status = 'closed' where id = ${t.id}`).rejects.toMatchObject({ code: 'PT409' });
    // It says what the API answers (shared/errors.ts maps it): a PostgREST client reads the same detail.
    const refused = await db.sql`update public.tickets set status = 'closed' where id = ${t.id}`.catch((e) => e);
    expect(JSON.parse(refused.detail)).toEqual({
      code: 'invalid_transition',
      details: { from: 'open', to: 'closed', allowed: ['escalated', 'pending', 'resolved'] },
    });
  });

  it('a change another request takes out of sight after the read is a 404 that writes nothing, not a 200', async () => {
    // Read as visible, then deleted by an admin before the update ran: the update's policy
    // matched no row, and the answer said "changed, out of your sight" though nothing was.
    for (const change of ['status', 'title', 'assignee', 'team'] as const) {
      const t = await newTicket();
      const [{ assigned_to: assignedBefore }] = await db.sql`select assigned_to from public.tickets where id = ${t.id}`;
      const holder = await db.sql.reserve();
      try {
        await holder`begin`;
        await holder`update public.tickets set deleted_at = now() where id = ${t.id}`;
        const [{ pid }] = await holder`select pg_backend_pid() as pid`;
        const sent = change === 'status'
          ? call(app, 'POST', `/tickets/${t.id}/status`, { token: tok.agent, body: { status: 'resolved' } })
          : change === 'title'
          ? call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.agent, body: { title: 'Renamed meanwhile' } })
          : change === 'assignee'
          ? call(app, 'PUT', `/tickets/${t.id}/assignee`, { token: tok.agent, body: { user_id: users.acmeAdmin.id } })
          : call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.agent, body: { team_id: null } });
        expect(await someoneWaitsFor(db.sql, pid)).toBe(true);
        await holder`commit`;
        const r = await sent;
        expect([r.status, errorCode(r)], change).toEqual([404, 'not_found']);
      } finally {
        holder.release();
      }
      const [row] = await db.sql`select status, title, assigned_to, team_id from public.tickets where id = ${t.id}`;
      expect(row).toEqual({ status: 'open', title: 'Printer is on fire', assigned_to: assignedBefore, team_id: teams.acme });
    }
  });
});

describe('conversation', () => {
  it("an agent's first public reply sets first_response_at; notes do not; notes stay hidden from the requester", async () => {
    const t = await newTicket();
    const before = (await call(app, 'GET', `/tickets/${t.id}`, { token: tok.user })).body.updated_at;
    const note = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { type: 'note', content: 'Customer is on the VIP list' } });
    expect(note.status).toBe(201);
    expect((await call(app, 'GET', `/tickets/${t.id}`, { token: tok.agent })).body.first_response_at).toBeNull();
    // Not even its time: the ticket the customer reads (and follows) is untouched by a note.
    expect((await call(app, 'GET', `/tickets/${t.id}`, { token: tok.user })).body.updated_at).toBe(before);
    const reply = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { content: 'On our way with an extinguisher' } });
    const seen = await call(app, 'GET', `/tickets/${t.id}`, { token: tok.user });
    expect(seen.body.first_response_at).toBe(reply.body.created_at);
    expect(seen.body.messages.map((m: { type: string }) => m.type)).toEqual(['message']);
    expect(JSON.stringify(seen.body)).not.toContain('VIP');
    const staff = await call(app, 'GET', `/tickets/${t.id}`, { token: tok.agent });
    expect(staff.body.messages.map((m: { type: string }) => m.type)).toEqual(['note', 'message']);
    // The requester's own reply is not a first response.
    const own = await newTicket();
    await call(app, 'POST', `/tickets/${own.id}/messages`, { token: tok.user, body: { content: 'Any news?' } });
    expect((await call(app, 'GET', `/tickets/${own.id}`, { token: tok.user })).body.first_response_at).toBeNull();
  });

  it('messages written in one transaction (a macro, a bulk insert) are listed in the order they were written', async () => {
    const t = await newTicket();
    const steps = Array.from({ length: 8 }, (_, i) => `Step ${i + 1}`);
    await db.sql.begin(async (tx) => {
      for (const content of steps) {
        await tx`insert into public.ticket_messages (tenant_id, ticket_id, type, content, author_id)
          values (${acme}, ${t.id}, 'message', ${content}, ${users.acmeAgent.id})`;
      }
    });
    const seen = await call(app, 'GET', `/tickets/${t.id}`, { token: tok.user });
    expect(seen.body.messages.map((m: { content: string }) => m.content)).toEqual(steps);
  });

  it('a deleted ticket takes no message or attachment from people until restored, on either path (409 ticket_deleted)', async () => {
    const t = await newTicket();
    expect((await call(app, 'DELETE', `/tickets/${t.id}`, { token: tok.admin })).status).toBe(200);
    const count = async () => (await db.sql`select count(*)::int as n from public.ticket_messages where ticket_id = ${t.id}`)[0].n;
    const before = await count();
    for (const body of [{ content: 'Replying to a deleted ticket' }, { type: 'note', content: 'A note on it' }]) {
      const r = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.admin, body });
      expect([r.status, errorCode(r)], JSON.stringify(body)).toEqual([409, 'ticket_deleted']);
    }
    const direct = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, acme), (tx) =>
      tx`insert into public.ticket_messages (tenant_id, ticket_id, type, content)
         values (${acme}, ${t.id}, 'message', 'Straight to the table')`);
    expect(direct).toMatchObject({ ok: false, error: { code: 'PT409', detail: expect.stringContaining('ticket_deleted') } });
    expect(await count()).toBe(before);
    const file = await call(app, 'POST', `/tickets/${t.id}/attachments`, { token: tok.admin, body: { file_name: 'a.txt', content_type: 'text/plain', size_bytes: 3 } });
    expect([file.status, errorCode(file)]).toEqual([409, 'ticket_deleted']);
    expect(await db.sql`select 1 from public.attachments where ticket_id = ${t.id}`).toHaveLength(0);
    // Restored, it takes them again.
    expect((await call(app, 'POST', `/tickets/${t.id}/restore`, { token: tok.admin })).status).toBe(200);
    expect((await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.admin, body: { content: 'Back again' } })).status).toBe(201);
  });

  it('customers cannot write notes, even straight to the database', async () => {
    const t = await newTicket();
    const r = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.user, body: { type: 'note', content: 'psst' } });
    expect(r.status).toBe(403);
  });

  it("the requester's reply moves a pending ticket back to open", async () => {
    const t = await newTicket();
    await call(app, 'POST', `/tickets/${t.id}/status`, { token: tok.agent, body: { status: 'pending' } });
    await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.user, body: { content: 'Here is the info you asked for' } });
    const r = await call(app, 'GET', `/tickets/${t.id}`, { token: tok.agent });
    expect(r.body.status).toBe('open');
    expect(r.body.timeline.filter((e: { type: string }) => e.type === 'status_changed').map((e: { data: unknown }) => e.data))
      .toEqual([{ from: 'open', to: 'pending' }, { from: 'pending', to: 'open' }]);
  });

  it('authors edit their own messages (edited_at set), nobody else’s', async () => {
    const t = await newTicket();
    const m = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.user, body: { content: 'Typo hree' } });
    const edited = await call(app, 'PATCH', `/tickets/${t.id}/messages/${m.body.id}`, { token: tok.user, body: { content: 'Typo here' } });
    expect(edited.body).toMatchObject({ content: 'Typo here', edited_at: expect.any(String) });
    const other = await call(app, 'PATCH', `/tickets/${t.id}/messages/${m.body.id}`, { token: tok.agent, body: { content: 'Hijacked' } });
    expect([other.status, other.body.error]).toEqual([403, expect.objectContaining({ code: 'forbidden', message: 'Only the author edits a message' })]);
    // The reasons come from the rule in SQL (private.message_edit_refusal), the one the
    // update policy applies: a system message, a message that is not there.
    const [system] = await db.sql`insert into public.ticket_messages (tenant_id, ticket_id, type, content, author_id)
      values (${acme}, ${t.id}, 'system', 'Merged', ${users.acmeUser.id}) returning id`;
    const sys = await call(app, 'PATCH', `/tickets/${t.id}/messages/${system.id}`, { token: tok.user, body: { content: 'x' } });
    expect([sys.status, sys.body.error.message]).toEqual([403, 'System messages cannot be edited']);
    const missing = await call(app, 'PATCH', `/tickets/${t.id}/messages/${crypto.randomUUID()}`, { token: tok.user, body: { content: 'x' } });
    expect(missing.status).toBe(404);
    // Nothing changed by the refusals.
    const rows = await db.sql`select id, content from public.ticket_messages where id in (${m.body.id}, ${system.id}) order by content`;
    expect(rows.map((r) => r.content).sort()).toEqual(['Merged', 'Typo here']);
  });
});

describe('assignment', () => {
  it('staff assign and unassign; the timeline records it; an agent off the team loses sight', async () => {
    const t = await newTicket();
    expect((await call(app, 'GET', `/tickets/${t.id}`, { token: tok.agent2 })).status).toBe(404);
    const a = await call(app, 'PUT', `/tickets/${t.id}/assignee`, { token: tok.agent, body: { user_id: agent2.id } });
    expect(a.body.assigned_to).toBe(agent2.id);
    expect((await call(app, 'GET', `/tickets/${t.id}`, { token: tok.agent2 })).status).toBe(200);
    // Unassigning themselves takes the ticket out of agent2's sight: the answer is just its id.
    const u = await call(app, 'PUT', `/tickets/${t.id}/assignee`, { token: tok.agent2, body: { user_id: null } });
    expect(u.body).toEqual({ id: t.id, tenant_id: acme });
    expect((await call(app, 'GET', `/tickets/${t.id}`, { token: tok.agent })).body.assigned_to).toBeNull();
    const timeline = (await call(app, 'GET', `/tickets/${t.id}`, { token: tok.admin })).body.timeline.map((e: { type: string }) => e.type);
    expect(timeline).toEqual(['created', 'team_changed', 'assigned', 'unassigned']);
    expect((await call(app, 'PUT', `/tickets/${t.id}/assignee`, { token: tok.user, body: { user_id: users.acmeAgent.id } })).status).toBe(403);
    const toCustomer = await call(app, 'PUT', `/tickets/${t.id}/assignee`, { token: tok.agent, body: { user_id: users.acmeUser.id } });
    expect([toCustomer.status, toCustomer.body.error.details.fields]).toEqual([422, [{ field: 'user_id', message: 'is not an agent or admin of this tenant' }]]);
    const toForeign = await call(app, 'PUT', `/tickets/${t.id}/assignee`, { token: tok.agent, body: { user_id: users.globexAgent.id } });
    expect([toForeign.status, toForeign.body.error.details.fields[0].field]).toEqual([422, 'user_id']);
  });

  it('round-robin over the team’s available agents, safe under concurrent creates; manual assignment wins', async () => {
    const [team] = await db.sql`insert into public.teams (tenant_id, name, department, auto_assign) values (${acme}, 'Round robin', 'support', 'round_robin') returning id`;
    await db.sql`insert into public.team_members (tenant_id, team_id, user_id) values (${acme}, ${team.id}, ${users.acmeAgent.id}), (${acme}, ${team.id}, ${agent2.id})`;
    const created = await Promise.all(Array.from({ length: 6 }, (_, i) =>
      call(app, 'POST', '/tickets', { token: tok.admin, body: { title: `Round robin ${i}`, team_id: team.id } })));
    const picks = created.map((r) => r.body.assigned_to);
    expect(picks.filter((p) => p === users.acmeAgent.id)).toHaveLength(3);
    expect(picks.filter((p) => p === agent2.id)).toHaveLength(3);
    const manual = await call(app, 'POST', '/tickets', { token: tok.admin, body: { title: 'Manual wins', team_id: team.id, assigned_to: users.acmeAdmin.id } });
    expect(manual.body.assigned_to).toBe(users.acmeAdmin.id);
    // An unavailable agent is skipped.
    await db.sql`update public.memberships set available = false where tenant_id = ${acme} and user_id = ${agent2.id}`;
    try {
      const next = await Promise.all([1, 2].map((i) => call(app, 'POST', '/tickets', { token: tok.admin, body: { title: `Only one agent ${i}`, team_id: team.id } })));
      expect(next.map((r) => r.body.assigned_to)).toEqual([users.acmeAgent.id, users.acmeAgent.id]);
    } finally {
      await db.sql`update public.memberships set available = true where tenant_id = ${acme} and user_id = ${agent2.id}`;
    }
  });

  it("a new team's pick does not overwrite an assignment made while it waited for the team", async () => {
    const [team] = await db.sql`insert into public.teams (tenant_id, name, department, auto_assign) values (${acme}, 'Busy desk', 'support', 'round_robin') returning id`;
    await db.sql`insert into public.team_members (tenant_id, team_id, user_id) values (${acme}, ${team.id}, ${agent2.id})`;
    const t = await newTicket();
    await db.sql`update public.tickets set assigned_to = null where id = ${t.id}`;
    // Another request holds the team (as a create picking in it does); the hand-off reads
    // the ticket unassigned, then waits for the team.
    const holder = await db.sql.reserve();
    try {
      await holder`begin`;
      await holder`select 1 from public.teams where id = ${team.id} for no key update`;
      const [{ pid }] = await holder`select pg_backend_pid() as pid`;
      const moved = call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.admin, body: { team_id: team.id } });
      expect(await someoneWaitsFor(db.sql, pid)).toBe(true);
      // Meanwhile someone assigns the ticket.
      await db.sql`update public.tickets set assigned_to = ${users.acmeAdmin.id} where id = ${t.id}`;
      await holder`commit`;
      const r = await moved;
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({ team_id: team.id, assigned_to: users.acmeAdmin.id });
    } finally {
      await holder`rollback`.catch(() => undefined);
      holder.release();
    }
    const [row] = await db.sql`select assigned_to, team_id from public.tickets where id = ${t.id}`;
    expect(row).toEqual({ assigned_to: users.acmeAdmin.id, team_id: team.id });
    // The unused pick gave its turn back: the team's pointer is where it was.
    const [pointer] = await db.sql`select last_assigned_user_id from public.teams where id = ${team.id}`;
    expect(pointer.last_assigned_user_id).toBeNull();
  });

  it("the assign-ticket job's pick, made moot by an assignment while it waited for the team, gives the turn back", async () => {
    const [team] = await db.sql`insert into public.teams (tenant_id, name, department, auto_assign) values (${acme}, 'Job desk', 'support', 'round_robin') returning id`;
    await db.sql`insert into public.team_members (tenant_id, team_id, user_id) values (${acme}, ${team.id}, ${agent2.id})`;
    const t = await newTicket();
    await db.sql`update public.tickets set assigned_to = null, team_id = ${team.id} where id = ${t.id}`;
    await db.sql`update public.teams set last_assigned_user_id = null where id = ${team.id}`;
    const holder = await db.sql.reserve();
    try {
      await holder`begin`;
      await holder`select 1 from public.teams where id = ${team.id} for no key update`;
      const [{ pid }] = await holder`select pg_backend_pid() as pid`;
      // The job (as shared/jobs/tasks/assign-ticket.ts runs it) finds the ticket unassigned, then waits for the team.
      const picked = db.sql`select private.auto_assign_ticket(${acme}, ${t.id}, ${team.id}) as assignee`.then((r) => r[0].assignee);
      expect(await someoneWaitsFor(db.sql, pid)).toBe(true);
      await db.sql`update public.tickets set assigned_to = ${users.acmeAdmin.id} where id = ${t.id}`;
      await holder`commit`;
      expect(await picked).toBeNull();
    } finally {
      await holder`rollback`.catch(() => undefined);
      holder.release();
    }
    expect((await db.sql`select assigned_to from public.tickets where id = ${t.id}`)[0].assigned_to).toBe(users.acmeAdmin.id);
    expect((await db.sql`select last_assigned_user_id from public.teams where id = ${team.id}`)[0].last_assigned_user_id).toBeNull();
  });

  it('a ticket resolved while its pick waited for the team takes no agent and no turn, from the job as from a team change', async () => {
    const [team] = await db.sql`insert into public.teams (tenant_id, name, department, auto_assign) values (${acme}, 'Resolving desk', 'support', 'round_robin') returning id`;
    await db.sql`insert into public.team_members (tenant_id, team_id, user_id) values (${acme}, ${team.id}, ${agent2.id})`;
    for (const path of ['job', 'team change'] as const) {
      const t = await newTicket();
      await db.sql`update public.tickets set assigned_to = null, team_id = ${path === 'job' ? team.id : null} where id = ${t.id}`;
      await db.sql`update public.teams set last_assigned_user_id = null where id = ${team.id}`;
      const holder = await db.sql.reserve();
      try {
        await holder`begin`;
        await holder`select 1 from public.teams where id = ${team.id} for no key update`;
        const [{ pid }] = await holder`select pg_backend_pid() as pid`;
        const picking = path === 'job'
          ? db.sql`select private.auto_assign_ticket(${acme}, ${t.id}, ${team.id}) as assignee`.then((r) => r[0].assignee)
          : call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.admin, body: { team_id: team.id } }).then((r) => r.body.assigned_to);
        expect(await someoneWaitsFor(db.sql, pid)).toBe(true);
        // Meanwhile the ticket is resolved.
        await db.sql`update public.tickets set status = 'resolved' where id = ${t.id}`;
        await holder`commit`;
        expect([path, await picking]).toEqual([path, null]);
      } finally {
        await holder`rollback`.catch(() => undefined);
        holder.release();
      }
      expect([path, (await db.sql`select assigned_to from public.tickets where id = ${t.id}`)[0].assigned_to]).toEqual([path, null]);
      expect([path, (await db.sql`select last_assigned_user_id from public.teams where id = ${team.id}`)[0].last_assigned_user_id])
        .toEqual([path, null]);
    }
  });

  it('a resolved ticket moved to a round-robin team takes nobody\'s turn, through the API as through PostgREST', async () => {
    const [team] = await db.sql`insert into public.teams (tenant_id, name, department, auto_assign) values (${acme}, 'Finished desk', 'support', 'round_robin') returning id`;
    await db.sql`insert into public.team_members (tenant_id, team_id, user_id) values (${acme}, ${team.id}, ${users.acmeAgent.id}), (${acme}, ${team.id}, ${agent2.id})`;
    const t = await newTicket();
    await db.sql`update public.tickets set assigned_to = null, status = 'resolved' where id = ${t.id}`;
    const moved = await call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.admin, body: { team_id: team.id } });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    expect(moved.body).toMatchObject({ team_id: team.id, assigned_to: null });
    const [pointer] = await db.sql`select last_assigned_user_id from public.teams where id = ${team.id}`;
    expect(pointer.last_assigned_user_id).toBeNull();
    // An open one is given to the team's first in turn.
    const open = await newTicket();
    await db.sql`update public.tickets set assigned_to = null where id = ${open.id}`;
    const given = await call(app, 'PATCH', `/tickets/${open.id}`, { token: tok.admin, body: { team_id: team.id } });
    expect([users.acmeAgent.id, agent2.id]).toContain(given.body.assigned_to);
  });

  it('least-open picks the agent with the fewest open tickets', async () => {
    const [team] = await db.sql`insert into public.teams (tenant_id, name, department, auto_assign) values (${acme}, 'Least open', 'technical', 'least_open') returning id`;
    await db.sql`insert into public.team_members (tenant_id, team_id, user_id) values (${acme}, ${team.id}, ${users.acmeAgent.id}), (${acme}, ${team.id}, ${agent2.id})`;
    const load = async (id: string) => (await db.sql`select count(*)::int as n from public.tickets where assigned_to = ${id} and status in ('open','pending','escalated')`)[0].n;
    const lighter = (await load(users.acmeAgent.id)) <= (await load(agent2.id)) ? users.acmeAgent.id : agent2.id;
    const r = await call(app, 'POST', '/tickets', { token: tok.admin, body: { title: 'Least open ticket', team_id: team.id } });
    expect(r.body.assigned_to).toBe(lighter);
  });
});

describe('routing by department (issue 11 §4)', () => {
  const tenantsApp = async () => (await import('../../functions/tenants/app.ts')).app;

  it("a customer's ticket goes to its department's team, is auto-assigned, and its agent sees it", async () => {
    const tenantsFn = await tenantsApp();
    const sales = await call(tenantsFn, 'POST', `/tenants/${acme}/teams`, {
      token: tok.admin,
      body: { name: 'Sales desk', department: 'sales', auto_assign: 'round_robin', receives_department_tickets: true },
    });
    expect(sales.status, JSON.stringify(sales.body)).toBe(201);
    expect(sales.body.receives_department_tickets).toBe(true);
    await db.sql`insert into public.team_members (tenant_id, team_id, user_id) values (${acme}, ${sales.body.id}, ${agent2.id})`;

    const r = await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'Quote for 40 seats', department: 'sales' } });
    expect(r.status).toBe(201);
    const [row] = await db.sql`select team_id, assigned_to from public.tickets where id = ${r.body.id}`;
    expect(row).toEqual({ team_id: sales.body.id, assigned_to: agent2.id });
    expect((await call(app, 'GET', `/tickets/${r.body.id}`, { token: tok.agent2 })).status).toBe(200);
    // A department without a receiving team keeps the old behaviour: no team.
    const m = await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'Logo colours', department: 'marketing' } });
    expect((await db.sql`select team_id from public.tickets where id = ${m.body.id}`)[0].team_id).toBeNull();
    // Staff naming a team keep their choice.
    const chosen = await call(app, 'POST', '/tickets', { token: tok.agent, body: { title: 'Own team', department: 'sales', team_id: teams.acme } });
    expect((await db.sql`select team_id from public.tickets where id = ${chosen.body.id}`)[0].team_id).toBe(teams.acme);
  });

  it('one receiving team per department: a second is a 409 and changes nothing; moving the role is two updates', async () => {
    const tenantsFn = await tenantsApp();
    const [current] = await db.sql`select id from public.teams where tenant_id = ${acme} and department = 'sales' and receives_department_tickets`;
    const second = await call(tenantsFn, 'POST', `/tenants/${acme}/teams`, {
      token: tok.admin,
      body: { name: 'Sales two', department: 'sales', receives_department_tickets: true },
    });
    expect(second.status).toBe(409);
    expect(await db.sql`select 1 from public.teams where tenant_id = ${acme} and name = 'Sales two'`).toHaveLength(0);
    // Customers and agents cannot name one.
    const byAgent = await call(tenantsFn, 'PATCH', `/tenants/${acme}/teams/${teams.acme}`, { token: tok.agent, body: { receives_department_tickets: true } });
    expect(byAgent.status).toBe(403);
    const off = await call(tenantsFn, 'PATCH', `/tenants/${acme}/teams/${current.id}`, { token: tok.admin, body: { receives_department_tickets: false } });
    expect(off.body.receives_department_tickets).toBe(false);
    const on = await call(tenantsFn, 'PATCH', `/tenants/${acme}/teams/${current.id}`, { token: tok.admin, body: { receives_department_tickets: true } });
    expect(on.body.receives_department_tickets).toBe(true);
  });

  it('a ticket routed to a team through the API gets the team\'s pick at once; a given assignee wins', async () => {
    const [team] = await db.sql`insert into public.teams (tenant_id, name, department, auto_assign)
      values (${acme}, 'Routing RR', 'technical', 'round_robin') returning id`;
    await db.sql`insert into public.team_members (tenant_id, team_id, user_id) values (${acme}, ${team.id}, ${agent2.id})`;
    const t = await call(app, 'POST', '/tickets', { token: tok.agent, body: { title: 'Needs a team later' } });
    expect(t.body.assigned_to).toBeNull();
    const routed = await call(app, 'PATCH', `/tickets/${t.body.id}`, { token: tok.agent, body: { team_id: team.id } });
    expect(routed.status).toBe(200);
    expect((await db.sql`select team_id, assigned_to from public.tickets where id = ${t.body.id}`)[0]).toEqual({ team_id: team.id, assigned_to: agent2.id });
    const timeline = (await call(app, 'GET', `/tickets/${t.body.id}`, { token: tok.admin })).body.timeline.map((e: { type: string }) => e.type);
    expect(timeline).toEqual(expect.arrayContaining(['team_changed', 'assigned']));
    // Already assigned: the assignee stays.
    const u = await call(app, 'POST', '/tickets', { token: tok.agent, body: { title: 'Routed, already assigned', assigned_to: users.acmeAgent.id } });
    await call(app, 'PATCH', `/tickets/${u.body.id}`, { token: tok.agent, body: { team_id: team.id, priority: 'high' } });
    expect((await db.sql`select team_id, assigned_to, priority from public.tickets where id = ${u.body.id}`)[0])
      .toEqual({ team_id: team.id, assigned_to: users.acmeAgent.id, priority: 'high' });
  });

  it('a team change that takes the ticket out of sight with other changes is a 409 that changes nothing', async () => {
    const [team] = await db.sql`select id from public.teams where tenant_id = ${acme} and name = 'Routing RR'`;
    const t = await call(app, 'POST', '/tickets', { token: tok.agent, body: { title: 'Seen by agent2 through the team', team_id: team.id, assigned_to: users.acmeAgent.id } });
    expect((await call(app, 'GET', `/tickets/${t.body.id}`, { token: tok.agent2 })).status).toBe(200);
    const r = await call(app, 'PATCH', `/tickets/${t.body.id}`, { token: tok.agent2, body: { team_id: teams.acme, title: 'Renamed on the way out' } });
    expect([r.status, errorCode(r)]).toEqual([409, 'out_of_sight']);
    expect((await db.sql`select team_id, title from public.tickets where id = ${t.body.id}`)[0])
      .toEqual({ team_id: team.id, title: 'Seen by agent2 through the team' });
    // A status the route answers is one its OpenAPI document declares, for generated clients.
    const doc = await (await app.request('/tickets/openapi.json')).json();
    expect(doc.paths['/tickets/{id}'].patch.responses['409']).toBeDefined();
  });

  it('a ticket given a team straight through PostgREST is assigned by the assign-ticket job, once', async () => {
    const { runJobs } = await import('../../shared/jobs/runner.ts');
    const { supabaseClaims } = await import('../helpers/seed.ts');
    const [team] = await db.sql`select id from public.teams where tenant_id = ${acme} and name = 'Routing RR'`;
    const t = await call(app, 'POST', '/tickets', { token: tok.agent, body: { title: 'Routed directly' } });
    // As PostgREST runs an UPDATE for the agent's token.
    await db.sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true),
        set_config('request.jwt.claims', ${JSON.stringify({ ...supabaseClaims(users.acmeAgent, acme), role: 'authenticated' })}, true)`;
      const updated = await tx`update public.tickets set team_id = ${team.id} where tenant_id = ${acme} and id = ${t.body.id} returning id`;
      expect(updated).toHaveLength(1);
    });
    expect((await db.sql`select assigned_to from public.tickets where id = ${t.body.id}`)[0].assigned_to).toBeNull();
    expect(await db.sql`select task from private.jobs where job_key = ${`assign-ticket:${acme}:${t.body.id}`}`).toEqual([{ task: 'assign-ticket' }]);
    const report = await runJobs({ tasks: ['assign-ticket'] });
    expect(report.tasks['assign-ticket']).toMatchObject({ completed: expect.any(Number), dead: 0 });
    expect((await db.sql`select assigned_to from public.tickets where id = ${t.body.id}`)[0].assigned_to).toBe(agent2.id);
    // A ticket that moved on before the job ran is left alone.
    const later = await call(app, 'POST', '/tickets', { token: tok.agent, body: { title: 'Moved on' } });
    await db.sql`update public.tickets set team_id = ${team.id} where id = ${later.body.id}`;
    await db.sql`update public.tickets set assigned_to = ${users.acmeAgent.id} where id = ${later.body.id}`;
    await runJobs({ tasks: ['assign-ticket'] });
    expect((await db.sql`select assigned_to from public.tickets where id = ${later.body.id}`)[0].assigned_to).toBe(users.acmeAgent.id);
    // Routed just before the tenant was suspended: the job runs after, and assigns nobody
    // in a read-only tenant.
    const paused = await call(app, 'POST', '/tickets', { token: tok.agent, body: { title: 'Routed, then suspended' } });
    await db.sql`update public.tickets set team_id = ${team.id} where id = ${paused.body.id}`;
    await db.sql`update public.tenants set status = 'suspended' where id = ${acme}`;
    try {
      await runJobs({ tasks: ['assign-ticket'] });
      expect((await db.sql`select assigned_to from public.tickets where id = ${paused.body.id}`)[0].assigned_to).toBeNull();
    } finally {
      await db.sql`update public.tenants set status = 'active' where id = ${acme}`;
    }
    // A suspension committing while the job runs: the job waits for it and assigns nobody.
    const racing = await call(app, 'POST', '/tickets', { token: tok.agent, body: { title: 'Routed, suspension under way' } });
    await db.sql`update public.tickets set team_id = ${team.id} where id = ${racing.body.id}`;
    const holder = await db.sql.reserve();
    try {
      await holder`begin`;
      await holder`update public.tenants set status = 'suspended' where id = ${acme}`;
      const [{ pid }] = await holder`select pg_backend_pid() as pid`;
      const job = runJobs({ tasks: ['assign-ticket'] });
      const { someoneWaitsFor } = await import('../helpers/advisory-locks.ts');
      expect(await someoneWaitsFor(db.sql, pid)).toBe(true);
      await holder`commit`;
      await job;
      expect((await db.sql`select assigned_to from public.tickets where id = ${racing.body.id}`)[0].assigned_to).toBeNull();
    } finally {
      await holder`rollback`.catch(() => undefined);
      holder.release();
      await db.sql`update public.tenants set status = 'active' where id = ${acme}`;
    }
  });
});

describe('SLA', () => {
  it('a sweep with a moved clock marks each breach once, escalates, and says so', async () => {
    const t = await newTicket({ priority: 'urgent' });
    const sweep = (minutes: number) => asService(null, async (tx) =>
      (await tx`select private.run_sla_sweep(now() + make_interval(mins => ${minutes})) as n`)[0].n as number);
    await sweep(10);
    expect((await call(app, 'GET', `/tickets/${t.id}`, { token: tok.agent })).body.status).toBe('open');
    expect(await sweep(20)).toBeGreaterThanOrEqual(1);
    const after = (await call(app, 'GET', `/tickets/${t.id}`, { token: tok.agent })).body;
    expect(after).toMatchObject({ status: 'escalated', sla_first_response_breached_at: expect.any(String), sla_resolution_breached_at: null });
    expect(after.messages.filter((m: { type: string }) => m.type === 'system')).toHaveLength(1);
    expect(after.timeline.filter((e: { type: string }) => e.type === 'sla_breached')).toEqual([expect.objectContaining({ data: expect.objectContaining({ kind: 'first_response' }) })]);
    await sweep(30);
    const again = (await call(app, 'GET', `/tickets/${t.id}`, { token: tok.agent })).body;
    expect(again.timeline.filter((e: { type: string }) => e.type === 'sla_breached')).toHaveLength(1);
    await sweep(300);
    const late = (await call(app, 'GET', `/tickets/${t.id}`, { token: tok.agent })).body;
    expect(late.timeline.filter((e: { type: string }) => e.type === 'sla_breached').map((e: { data: { kind: string } }) => e.data.kind)).toEqual(['first_response', 'resolution']);
    const breached = await call(app, 'GET', '/tickets?sla_breached=true&limit=100', { token: tok.agent });
    expect(breached.body.items.map((x: { id: string }) => x.id)).toContain(t.id);
  });

  it('two sweeps running at once still mark each breach once', async () => {
    const made = await Promise.all([1, 2, 3].map(() => newTicket({ priority: 'urgent' })));
    const when = new Date(Date.now() + 20 * 60_000).toISOString();
    const sweep = () => db.sql.begin(async (tx) => {
      await tx`select set_config('role', 'service_role', true)`;
      return (await tx`select private.run_sla_sweep(${when}::timestamptz) as n`)[0].n as number;
    });
    const [a, b, c] = await Promise.all([sweep(), sweep(), sweep()]);
    expect(a + b + c).toBeGreaterThanOrEqual(3);
    for (const t of made) {
      const [row] = await db.sql`select count(*)::int as n from public.ticket_events where ticket_id = ${t.id} and type = 'sla_breached'`;
      expect(row.n).toBe(1);
    }
  });

  it('admins set SLA targets per priority; everyone reads them; new tickets follow them', async () => {
    const put = await call(app, 'PUT', '/tickets/sla-policies/low', { token: tok.admin, body: { first_response_minutes: 600, resolution_minutes: 6000 } });
    expect(put.body).toMatchObject({ priority: 'low', first_response_minutes: 600, resolution_minutes: 6000, business_hours: null });
    for (const role of ['agent', 'user']) {
      expect((await call(app, 'PUT', '/tickets/sla-policies/low', { token: tok[role], body: { first_response_minutes: 1, resolution_minutes: 2 } })).status).toBe(403);
    }
    const bad = await call(app, 'PUT', '/tickets/sla-policies/low', { token: tok.admin, body: { first_response_minutes: 60, resolution_minutes: 30 } });
    expect([bad.status, bad.body.error.details.fields[0].field]).toEqual([422, 'resolution_minutes']);
    const list = await call(app, 'GET', '/tickets/sla-policies', { token: tok.user });
    expect(list.body.items.map((p: { priority: string }) => p.priority)).toEqual(['urgent', 'medium', 'low']);
    const t = await newTicket({ priority: 'low' });
    expect(new Date(t.due_date).getTime() - new Date(t.created_at).getTime()).toBe(6000 * 60_000);
    expect((await call(app, 'DELETE', '/tickets/sla-policies/low', { token: tok.admin })).status).toBe(204);
    expect((await call(app, 'DELETE', '/tickets/sla-policies/low', { token: tok.admin })).status).toBe(404);
    expect((await call(app, 'GET', '/tickets/sla-policies', { token: tok.globexUser })).body.items).toEqual([]);
  });

  it('counts targets in business hours when the policy has them', async () => {
    const due = async (start: string, minutes: number) =>
      new Date((await db.sql`select private.add_business_minutes(${start}::timestamptz, ${minutes},
        '{"timezone": "Europe/Paris", "days": [1,2,3,4,5], "start": "09:00", "end": "17:00"}') as d`)[0].d).toISOString();
    // Friday 16:30 Paris (15:30Z) + 60 business minutes → Monday 09:30 Paris (08:30Z).
    expect(await due('2026-11-27T15:30:00Z', 60)).toBe('2026-11-30T08:30:00.000Z');
    // Saturday → Monday 09:00 + 2 h.
    expect(await due('2026-11-28T10:00:00Z', 120)).toBe('2026-11-30T10:00:00.000Z');
    // Two full business days.
    expect(await due('2026-11-24T08:00:00Z', 16 * 60)).toBe('2026-11-25T16:00:00.000Z');
    const put = await call(app, 'PUT', '/tickets/sla-policies/high', {
      token: tok.admin, body: { first_response_minutes: 60, resolution_minutes: 480, business_hours: { timezone: 'Europe/Paris' } },
    });
    expect(put.body.business_hours).toEqual({ timezone: 'Europe/Paris', days: [1, 2, 3, 4, 5], start: '09:00', end: '17:00' });
    const t = await newTicket({ priority: 'high' });
    const [{ expected }] = await db.sql`select private.add_business_minutes(${t.created_at}::timestamptz, 60, ${db.sql.json(put.body.business_hours)}) as expected`;
    expect(new Date(t.first_response_due_at).getTime()).toBe(new Date(expected).getTime());
    // A tz name in other case is the name (stored as the tz database writes it).
    const lower = await call(app, 'PUT', '/tickets/sla-policies/high', {
      token: tok.admin, body: { first_response_minutes: 60, resolution_minutes: 480, business_hours: { timezone: 'europe/paris' } },
    });
    expect([lower.status, lower.body.business_hours?.timezone]).toEqual([200, 'Europe/Paris']);
    // A policy stored before with a zone the check now refuses still takes edits that leave its hours alone.
    const [stored] = await db.sql`select id from public.sla_policies where tenant_id = ${acme} and priority = 'high' and team_id is null`;
    await db.sql`alter table public.sla_policies disable trigger sla_policy_hours_valid`;
    await db.sql`update public.sla_policies set business_hours = business_hours || '{"timezone": "<+04>-4"}' where id = ${stored.id}`;
    await db.sql`alter table public.sla_policies enable trigger sla_policy_hours_valid`;
    await db.sql`update public.sla_policies set first_response_minutes = 45 where id = ${stored.id}`;
    // POSIX zone specifications Postgres would take, with the sign reversed (UTC+3 is west).
    for (const timezone of ['UTC+3', 'GMT-5', 'EST5EDT,M3.2.0,M11.1.0', '<+03>-3']) {
      const posix = await call(app, 'PUT', '/tickets/sla-policies/high', {
        token: tok.admin, body: { first_response_minutes: 60, resolution_minutes: 480, business_hours: { timezone } },
      });
      expect([posix.status, posix.body.error?.details?.fields?.[0]?.field], timezone).toEqual([422, 'business_hours.timezone']);
    }
    for (const business_hours of [{ timezone: 'Mars/Olympus' }, { start: '18:00', end: '09:00' }, { days: [0] }]) {
      const bad = await call(app, 'PUT', '/tickets/sla-policies/high', { token: tok.admin, body: { first_response_minutes: 60, resolution_minutes: 480, business_hours } });
      expect(bad.status, JSON.stringify(business_hours)).toBe(422);
    }
    // Open until midnight is an end of 24:00 (a day's last minute included); no start is.
    const roundTheClock = { timezone: 'UTC', days: [1, 2, 3, 4, 5, 6, 7], start: '00:00', end: '24:00' };
    const midnight = await call(app, 'PUT', '/tickets/sla-policies/high', { token: tok.admin, body: { first_response_minutes: 60, resolution_minutes: 480, business_hours: roundTheClock } });
    expect([midnight.status, midnight.body.business_hours?.end]).toEqual([200, '24:00']);
    for (const hours of [{ start: '24:00', end: '24:00' }, { start: '00:00', end: '24:30' }]) {
      const bad = await call(app, 'PUT', '/tickets/sla-policies/high', { token: tok.admin, body: { first_response_minutes: 60, resolution_minutes: 480, business_hours: hours } });
      expect([bad.status, bad.body.error.details.fields[0].field], JSON.stringify(hours)).toEqual([422, hours.start === '24:00' ? 'business_hours.start' : 'business_hours.end']);
    }
    // An unknown time zone and a target the hours cannot reach in ten years are named.
    const mars = await call(app, 'PUT', '/tickets/sla-policies/high', { token: tok.admin, body: { first_response_minutes: 60, resolution_minutes: 480, business_hours: { timezone: 'Mars/Olympus' } } });
    expect(mars.body.error.details.fields).toEqual([{ field: 'business_hours.timezone', message: expect.stringContaining('time zone') }]);
    const weekly = { timezone: 'UTC', days: [1], start: '09:00', end: '10:00' };
    const far = await call(app, 'PUT', '/tickets/sla-policies/high', { token: tok.admin, body: { first_response_minutes: 60, resolution_minutes: 525_600, business_hours: weekly } });
    expect([far.status, far.body.error.details.fields]).toEqual([422, [{ field: 'resolution_minutes', message: 'takes more than ten years of these business hours' }]]);
    const farReply = await call(app, 'PUT', '/tickets/sla-policies/high', { token: tok.admin, body: { first_response_minutes: 60, resolution_minutes: 600, next_response_minutes: 525_600, business_hours: weekly } });
    expect(farReply.body.error.details.fields).toEqual([{ field: 'next_response_minutes', message: 'takes more than ten years of these business hours' }]);
    // One within reach is stored. Beyond ten years of the hours (a long pause added to a
    // target) the arithmetic answers no due time, not an error failing the ticket's write.
    const near = await call(app, 'PUT', '/tickets/sla-policies/high', { token: tok.admin, body: { first_response_minutes: 60, resolution_minutes: 6000, business_hours: weekly } });
    expect(near.status, JSON.stringify(near.body)).toBe(200);
    const [{ none }] = await db.sql`select private.add_business_minutes(now(), 600000, ${db.sql.json(weekly)}) is null as none`;
    expect(none).toBe(true);
    // Hours with no business day at all (days the API refuses, written to the table) are named as such.
    const [policy] = await db.sql`select id from public.sla_policies where tenant_id = ${acme} and priority = 'high' and team_id is null`;
    const never = await db.sql`update public.sla_policies set business_hours = ${db.sql.json({ ...weekly, days: [8] })} where id = ${policy.id}`.catch((e) => e);
    expect([never.code, JSON.parse(never.detail).details.fields[0].field]).toEqual(['PT422', 'business_hours']);
    await call(app, 'DELETE', '/tickets/sla-policies/high', { token: tok.admin });
  });

  it('a priority change moves the due dates', async () => {
    const t = await newTicket({ priority: 'medium' });
    const r = await call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.agent, body: { priority: 'urgent' } });
    expect(new Date(r.body.due_date).getTime() - new Date(t.created_at).getTime()).toBe(240 * 60_000);
    const timeline = (await call(app, 'GET', `/tickets/${t.id}`, { token: tok.agent })).body.timeline.map((e: { type: string }) => e.type);
    expect(timeline).toContain('priority_changed');
  });

  it('a due date the request names stays through its priority change, also when it is the one the ticket has', async () => {
    const t = await newTicket({ priority: 'medium' });
    const chosen = '2099-01-10T00:00:00.000Z';
    expect((await call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.agent, body: { due_date: chosen } })).body.due_date).toBe(chosen);
    // A form sending every field back: the same due date with a new priority.
    const r = await call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.agent, body: { priority: 'urgent', due_date: chosen } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.due_date).toBe(chosen);
    // Not named, the policy's date follows the priority as before.
    const moved = await call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.agent, body: { priority: 'medium' } });
    expect(moved.body.due_date).not.toBe(chosen);
  });

  it('the sweep (a recurring job of the jobs function) takes only the service credential', async () => {
    expect((await call(jobsApp, 'POST', '/jobs/run', { token: tok.admin })).status).toBe(401);
    await db.sql`update private.job_schedules set next_run_at = now() where name = 'sla-sweep'`;
    const ok = await call(jobsApp, 'POST', '/jobs/run', { token: await apiKey('service_role', TEST_JWT_SECRET) });
    expect(ok.status).toBe(200);
    expect(ok.body.tasks['sla-sweep'].breaches).toEqual(expect.any(Number));
  });
});

describe('merge, delete, restore', () => {
  it("a merge hands the source's first response to a target without one, counts no resolution, and wakes no rule on the source", async () => {
    const a = await newTicket();
    const b = await newTicket();
    expect((await call(app, 'POST', `/tickets/${a.id}/messages`, { token: tok.agent, body: { content: 'On it' } })).status).toBe(201);
    const [answered] = await db.sql`select first_response_at from public.tickets where id = ${a.id}`;
    expect(answered.first_response_at).not.toBeNull();
    const [rule] = await db.sql`insert into public.automation_rules (tenant_id, name, event, conditions, actions)
      values (${tenants.acme.id}, 'Tag closed', 'ticket.updated', '{"all": [{"field": "status", "op": "eq", "value": "closed"}]}',
              '[{"type": "add_tags", "tags": ["closed-tag"]}]') returning id`;
    const durations = async () =>
      Object.fromEntries((await db.sql`select kind, sum(n)::int as n from private.ticket_durations
        where tenant_id = ${tenants.acme.id} group by kind`).map((r) => [r.kind, r.n]));
    const before = await durations();
    try {
      expect((await call(app, 'POST', `/tickets/${a.id}/merge`, { token: tok.agent, body: { into: b.id } })).status).toBe(200);
      await runJobs({ tasks: ['automation'] });
      // One reply is one first response in the statistics (the target's now), and no
      // resolution was counted; the counts kept by the triggers are what a rebuild finds.
      expect(await durations()).toEqual(before);
      await db.sql`select private.rebuild_ticket_stats(${tenants.acme.id})`;
      expect(await durations()).toEqual(before);
      const rows = await db.sql`select id, first_response_at, resolved_at, tags from public.tickets where id in (${a.id}, ${b.id})`;
      const source = rows.find((r) => r.id === a.id)!;
      const target = rows.find((r) => r.id === b.id)!;
      // The target's conversation holds the answer: it counts, so no first-response breach.
      expect(target.first_response_at).toEqual(answered.first_response_at > new Date(b.created_at) ? answered.first_response_at : new Date(b.created_at));
      // A duplicate closed by a merge was never resolved.
      expect(source.resolved_at).toBeNull();
      // No rule ran on the merged source.
      expect(source.tags).not.toContain('closed-tag');
      expect(await db.sql`select outcome from public.automation_runs where rule_id = ${rule.id} and ticket_id = ${a.id}`).toEqual([]);
    } finally {
      await db.sql`delete from public.automation_rules where id = ${rule.id}`;
    }
  });

  it('a closed ticket merged into another leaves the statistics too: its times are the target\'s now', async () => {
    const durations = async () =>
      Object.fromEntries((await db.sql`select kind, sum(n)::int as n from private.ticket_durations
        where tenant_id = ${tenants.acme.id} group by kind`).map((r) => [r.kind, r.n]));
    const a = await newTicket();
    const b = await newTicket();
    expect((await call(app, 'POST', `/tickets/${a.id}/messages`, { token: tok.agent, body: { content: 'Fixed' } })).status).toBe(201);
    for (const status of ['resolved', 'closed']) {
      expect((await call(app, 'POST', `/tickets/${a.id}/status`, { token: tok.agent, body: { status } })).status).toBe(200);
    }
    const before = await durations();
    expect((await call(app, 'POST', `/tickets/${a.id}/merge`, { token: tok.agent, body: { into: b.id } })).status).toBe(200);
    // Its resolution leaves the statistics; its first response moves to the target.
    const after = await durations();
    expect([after.first_response, after.resolution]).toEqual([before.first_response, before.resolution - 1]);
    await db.sql`select private.rebuild_ticket_stats(${tenants.acme.id})`;
    expect(await durations()).toEqual(after);
  });

  it('merging moves the conversation and closes the source with a pointer', async () => {
    const a = await newTicket();
    const b = await newTicket();
    await call(app, 'POST', `/tickets/${a.id}/messages`, { token: tok.user, body: { content: 'Duplicate report' } });
    const r = await call(app, 'POST', `/tickets/${a.id}/merge`, { token: tok.agent, body: { into: b.id } });
    expect(r.status).toBe(200);
    const source = (await call(app, 'GET', `/tickets/${a.id}`, { token: tok.agent })).body;
    expect(source).toMatchObject({ status: 'closed', merged_into_id: b.id });
    const target = (await call(app, 'GET', `/tickets/${b.id}`, { token: tok.agent })).body;
    expect(target.messages.map((m: { content: string }) => m.content)).toContain('Duplicate report');
    expect(target.timeline.map((e: { type: string }) => e.type)).toContain('merged');
    expect((await call(app, 'POST', `/tickets/${a.id}/merge`, { token: tok.agent, body: { into: b.id } })).status).toBe(409);
    expect((await call(app, 'POST', `/tickets/${b.id}/merge`, { token: tok.agent, body: { into: b.id } })).status).toBe(409);
    // A merged ticket stays closed: reopening it is a refused transition, like any other.
    for (const status of ['open', 'resolved']) {
      const reopen = await call(app, 'POST', `/tickets/${a.id}/status`, { token: tok.agent, body: { status } });
      expect([reopen.status, reopen.body.error]).toMatchObject([409, {
        code: 'invalid_transition',
        details: { from: 'closed', to: status, allowed: [], merged_into_id: b.id },
      }]);
    }
    // The database says the same to a client writing the table (PostgREST).
    const direct = await db.sql`update public.tickets set status = 'open' where id = ${a.id}`.catch((e) => e);
    expect([direct.code, JSON.parse(direct.detail).code]).toEqual(['PT409', 'invalid_transition']);
    expect((await call(app, 'GET', `/tickets/${a.id}`, { token: tok.agent })).body).toMatchObject({ status: 'closed', merged_into_id: b.id });
    expect((await call(app, 'POST', `/tickets/${b.id}/merge`, { token: tok.user, body: { into: a.id } })).status).toBe(403);
    // Another customer's ticket: merging would show one customer the other's messages.
    const other = await call(app, 'POST', '/tickets', { token: tok.agent, body: { title: 'Phoned in by admin', requester_id: users.acmeAdmin.id, team_id: teams.acme } });
    const refused = await call(app, 'POST', `/tickets/${b.id}/merge`, { token: tok.agent, body: { into: other.body.id } });
    expect([refused.status, errorCode(refused)]).toEqual([409, 'conflict']);
  });

  it("a deleted ticket takes no one's follow, but an admin still hands it off, its assignee following it", async () => {
    const t = await newTicket();
    expect((await call(app, 'DELETE', `/tickets/${t.id}`, { token: tok.admin })).status).toBe(200);
    const follow = await call(app, 'POST', `/tickets/${t.id}/followers`, { token: tok.admin, body: {} });
    expect([follow.status, follow.body.error?.code]).toEqual([409, 'ticket_deleted']);
    const handed = await call(app, 'PUT', `/tickets/${t.id}/assignee`, { token: tok.admin, body: { user_id: users.acmeAgent.id } });
    expect(handed.status, JSON.stringify(handed.body)).toBe(200);
    expect(await db.sql`select user_id, reason from public.ticket_followers where ticket_id = ${t.id}`)
      .toEqual([{ user_id: users.acmeAgent.id, reason: 'assigned' }]);
    // A follow locks its ticket before any other row trigger locks a follower row (they
    // fire by name): a merge, a mention or a hand-off locks the ticket first, then that
    // row, and the other order deadlocked with them.
    const [first] = await db.sql`select t.tgname from pg_trigger t
      where t.tgrelid = 'public.ticket_followers'::regclass and not t.tgisinternal
        and t.tgtype & 2 = 2 and t.tgtype & 4 = 4 and t.tgtype & 1 = 1
      order by t.tgname limit 1`;
    expect(first.tgname).toBe('ticket_followers_0_parent_lock');
  });

  it('a merged ticket takes no new messages or attachments: 409 ticket_merged naming where to write, nothing written', async () => {
    const { supabaseClaims } = await import('../helpers/seed.ts');
    const a = await newTicket();
    const b = await newTicket();
    expect((await call(app, 'POST', `/tickets/${a.id}/merge`, { token: tok.agent, body: { into: b.id } })).status).toBe(200);
    const written = async () =>
      (await db.sql`select (select count(*) from public.ticket_messages where ticket_id = ${a.id})::int as messages,
                           (select count(*) from public.attachments where ticket_id = ${a.id})::int as attachments`)[0];
    const before = await written();
    const refusals = [
      await call(app, 'POST', `/tickets/${a.id}/messages`, { token: tok.user, body: { content: 'Any news?' } }),
      await call(app, 'POST', `/tickets/${a.id}/messages`, { token: tok.agent, body: { type: 'note', content: 'Checking' } }),
      await call(app, 'POST', `/tickets/${a.id}/attachments`, { token: tok.user, body: { file_name: 'late.txt', content_type: 'text/plain', size_bytes: 5 } }),
      // Nor followers (20261208131000: a follow on the closed source heard nothing again).
      await call(app, 'POST', `/tickets/${a.id}/followers`, { token: tok.admin, body: {} }),
    ];
    expect((await db.sql`select count(*)::int as n from public.ticket_followers where ticket_id = ${a.id} and user_id = ${users.acmeAdmin.id}`)[0].n).toBe(0);
    for (const r of refusals) {
      expect([r.status, r.body.error?.code, r.body.error?.details]).toEqual([409, 'ticket_merged', { merged_into_id: b.id }]);
    }
    // Directly (PostgREST) the same.
    const direct = await db.sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true),
        set_config('request.jwt.claims', ${JSON.stringify({ ...supabaseClaims(users.acmeUser, acme), role: 'authenticated' })}, true)`;
      return await tx`insert into public.ticket_messages (tenant_id, ticket_id, content) values (${acme}, ${a.id}, 'Direct reply')`;
    }).catch((e) => e);
    expect([direct.code, JSON.parse(direct.detail).code]).toEqual(['PT409', 'ticket_merged']);
    // Someone in the tenant who may not see the ticket learns nothing of the merge: the
    // policy's refusal, as for any ticket of someone else's.
    const [other] = await db.sql`insert into public.users (email) values ('other.customer@acme.test') returning id, email`;
    await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${other.id}, ${other.id})`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${other.id}, 'user')`;
    const stranger = await db.sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true),
        set_config('request.jwt.claims', ${JSON.stringify({ ...supabaseClaims({ id: other.id, email: other.email } as never, acme), role: 'authenticated' })}, true)`;
      return await tx`insert into public.ticket_messages (tenant_id, ticket_id, content) values (${acme}, ${a.id}, 'Guessing')`;
    }).catch((e) => e);
    expect(stranger.code).toBe('42501');
    expect(JSON.stringify(stranger)).not.toContain(b.id);
    await db.sql`delete from public.users where id = ${other.id}`;
    expect(await written()).toEqual(before);
    // The ticket it was merged into takes them.
    expect((await call(app, 'POST', `/tickets/${b.id}/messages`, { token: tok.user, body: { content: 'Any news?' } })).status).toBe(201);
  });

  it('admins soft-delete and restore; deleted tickets vanish for everyone else', async () => {
    const t = await newTicket();
    for (const role of ['agent', 'user']) expect((await call(app, 'DELETE', `/tickets/${t.id}`, { token: tok[role] })).status).toBe(403);
    const d = await call(app, 'DELETE', `/tickets/${t.id}`, { token: tok.admin });
    expect(d.body.deleted_at).not.toBeNull();
    for (const role of ['agent', 'user']) expect((await call(app, 'GET', `/tickets/${t.id}`, { token: tok[role] })).status).toBe(404);
    const listed = await call(app, 'GET', '/tickets?include_deleted=true&limit=100', { token: tok.admin });
    expect(listed.body.items.map((x: { id: string }) => x.id)).toContain(t.id);
    expect((await call(app, 'GET', '/tickets?include_deleted=true', { token: tok.agent })).status).toBe(403);
    expect((await call(app, 'POST', `/tickets/${t.id}/restore`, { token: tok.admin })).body.deleted_at).toBeNull();
    expect((await call(app, 'GET', `/tickets/${t.id}`, { token: tok.user })).status).toBe(200);
  });
});

describe('list, search, pagination', () => {
  it('searches title, description and tags, title matches first', async () => {
    const inTitle = await newTicket({ title: 'Kerberos ticket renewal fails', description: 'nothing else' });
    const inBody = await newTicket({ title: 'Login trouble again', description: 'probably kerberos related' });
    const tagged = await newTicket({ title: 'Something odd happens', tags: ['kerberos'] });
    const r = await call(app, 'GET', '/tickets?q=kerberos&limit=10', { token: tok.admin });
    expect(r.body.items.map((x: { id: string }) => x.id)).toEqual([inTitle.id, inBody.id, tagged.id]);
    const stemmed = await call(app, 'GET', '/tickets?q=renewing', { token: tok.admin });
    expect(stemmed.body.items.map((x: { id: string }) => x.id)).toEqual([inTitle.id]);
    const mine = await call(app, 'GET', '/tickets?q=kerberos', { token: tok.globexAgent });
    expect(mine.body.items).toEqual([]);
  });

  it('filters by status, assignee, requester, tag and dates', async () => {
    const t = await newTicket({ tags: ['billing'] });
    await call(app, 'PUT', `/tickets/${t.id}/assignee`, { token: tok.admin, body: { user_id: agent2.id } });
    await call(app, 'POST', `/tickets/${t.id}/status`, { token: tok.admin, body: { status: 'pending' } });
    const q = async (query: string, token = tok.admin) => (await call(app, 'GET', `/tickets?${query}&limit=100`, { token })).body.items.map((x: { id: string }) => x.id);
    expect(await q('status=pending,escalated&tag=billing')).toEqual([t.id]);
    expect(await q('assignee=me&tag=billing', tok.agent2)).toEqual([t.id]);
    expect(await q('assignee=none&tag=billing')).toEqual([]);
    expect(await q(`requester=${users.acmeUser.id}&tag=billing`)).toEqual([t.id]);
    expect(await q('requester=me&tag=billing', tok.user)).toEqual([t.id]);
    expect(await q(`created_after=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}&tag=billing`)).toEqual([]);
    expect(await q(`number=${t.number}`)).toEqual([t.id]);
  });

  it('pages with a cursor that stays stable while tickets are added', async () => {
    const tag = `page-${Date.now()}`;
    const made = [];
    for (let i = 0; i < 7; i++) made.push(await newTicket({ title: `Paged ticket ${i}`, tags: [tag] }));
    const seen: string[] = [];
    let cursor: string | null = null;
    let first = true;
    do {
      const r: { body: { items: { id: string }[]; next: string | null; total?: number } } = await call(app, 'GET',
        `/tickets?tag=${tag}&limit=3&include_total=true${cursor ? `&cursor=${cursor}` : ''}`, { token: tok.admin });
      if (first) expect(r.body.total).toBe(7);
      first = false;
      seen.push(...r.body.items.map((x) => x.id));
      cursor = r.body.next;
      await newTicket({ title: 'Inserted meanwhile', tags: [tag] }); // lands before the cursor
    } while (cursor);
    expect(seen).toEqual(made.map((m) => m.id).reverse());
    const asc = await call(app, 'GET', `/tickets?tag=${tag}&sort=number&order=asc&limit=2`, { token: tok.admin });
    expect(asc.body.items.map((x: { id: string }) => x.id)).toEqual([made[0].id, made[1].id]);
  });

  it('shows each role only what it may see', async () => {
    const ids = async (token: string) => new Set((await call(app, 'GET', '/tickets?limit=100&sort=created_at', { token })).body.items.map((x: { created_by: string; tenant_id: string }) => `${x.tenant_id}:${x.created_by}`));
    const mine = await ids(tok.user);
    const globexUsers = await ids(tok.globexUser);
    // Each sees some tickets (else the loops below would check nothing).
    expect([mine.size > 0, globexUsers.size > 0]).toEqual([true, true]);
    for (const key of mine) expect(key).toBe(`${acme}:${users.acmeUser.id}`);
    for (const key of globexUsers) expect(String(key).startsWith(tenants.globex.id)).toBe(true);
  });
});

describe('statistics', () => {
  it('counts by status and priority and medians match an exact computation', async () => {
    const r = await call(app, 'GET', '/tickets/stats', { token: tok.admin });
    expect(r.status).toBe(200);
    const [exact] = await db.sql`
      select count(*)::int as total,
        percentile_cont(0.5) within group (order by extract(epoch from first_response_at - created_at)) as fr,
        percentile_cont(0.5) within group (order by extract(epoch from resolved_at - created_at)) as res
      from public.tickets where tenant_id = ${acme} and deleted_at is null`;
    expect(r.body.total).toBe(exact.total);
    const byStatus = await db.sql`select status, count(*)::int as n from public.tickets where tenant_id = ${acme} and deleted_at is null group by 1`;
    expect(r.body.by_status).toEqual(Object.fromEntries(byStatus.map((x) => [x.status, x.n])));
    const byPriority = await db.sql`select priority, count(*)::int as n from public.tickets where tenant_id = ${acme} and deleted_at is null group by 1`;
    expect(r.body.by_priority).toEqual(Object.fromEntries(byPriority.map((x) => [x.priority, x.n])));
    // Log buckets 5 % wide: the estimate is within that of the true median (and ≥ 1 s).
    for (const [estimate, truth] of [[r.body.median_first_response_seconds, exact.fr], [r.body.median_resolution_seconds, exact.res]]) {
      if (truth === null) expect(estimate).toBeNull();
      else expect(Math.abs(estimate - Math.max(truth, 1)) / Math.max(truth, 1)).toBeLessThan(0.06);
    }
    expect((await call(app, 'GET', '/tickets/stats', { token: tok.user })).status).toBe(403);
  });

  it('the trigger-maintained numbers equal a rebuild from scratch', async () => {
    const snapshot = async () => ({
      counts: await db.sql`select status, priority, n from private.ticket_counts where tenant_id = ${acme} and n <> 0 order by 1, 2`,
      durations: await db.sql`select kind, bucket, n from private.ticket_durations where tenant_id = ${acme} and n <> 0 order by 1, 2`,
    });
    const maintained = await snapshot();
    expect(maintained.counts.length).toBeGreaterThan(2);
    await db.sql`select private.rebuild_ticket_stats(${acme})`;
    expect(await snapshot()).toEqual(maintained);
  });
});

describe('attachments', () => {
  it('registers, uploads through a signed URL, and downloads through another', async () => {
    const t = await newTicket();
    const bytes = new TextEncoder().encode('%PDF-1.7 fake invoice');
    const r = await call(app, 'POST', `/tickets/${t.id}/attachments`, { token: tok.user, body: { file_name: 'invoice.pdf', content_type: 'application/pdf', size_bytes: bytes.length } });
    expect(r.status).toBe(201);
    expect(r.body.attachment).toMatchObject({ status: 'pending', uploaded_by: users.acmeUser.id });
    const url = new URL(r.body.upload.url);
    expect(url.pathname).toContain(`/storage/v1/local/attachments/${acme}/`);
    const tampered = new URL(url);
    tampered.searchParams.set('size', '999');
    expect((await handleLocalStorage(new Request(tampered, { method: 'PUT', body: bytes }))).status).toBe(403);
    expect((await handleLocalStorage(new Request(url, { method: 'PUT', body: new Uint8Array(3) }))).status).toBe(400);
    expect((await handleLocalStorage(new Request(url, { method: 'PUT', body: bytes }))).status).toBe(200);
    expect((await handleLocalStorage(new Request(url, { method: 'PUT', body: bytes }))).status).toBe(409);

    const got = await call(app, 'GET', `/tickets/${t.id}/attachments/${r.body.attachment.id}`, { token: tok.agent });
    expect(got.body.attachment.status).toBe('uploaded');
    const download = await handleLocalStorage(new Request(got.body.download.url));
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(bytes);
    expect(download.headers.get('content-type')).toBe('application/pdf');
    expect(download.headers.get('content-disposition')).toBe(`attachment; filename="invoice.pdf"; filename*=UTF-8''invoice.pdf`);
    expect((await call(app, 'GET', `/tickets/${t.id}`, { token: tok.user })).body.attachments).toHaveLength(1);
    expect((await call(app, 'GET', `/tickets/${t.id}/attachments/${r.body.attachment.id}`, { token: tok.globexAgent })).status).toBe(404);
  });

  it('a read that finds the file arrived while the attachment is being deleted answers 404, not 500', async () => {
    const t = await newTicket();
    const bytes = new TextEncoder().encode('going, going');
    const r = await call(app, 'POST', `/tickets/${t.id}/attachments`, { token: tok.user, body: { file_name: 'gone.txt', content_type: 'text/plain', size_bytes: bytes.length } });
    expect(r.status).toBe(201);
    expect((await handleLocalStorage(new Request(r.body.upload.url, { method: 'PUT', body: bytes }))).status).toBe(200);
    // Still pending (no read has marked it); an admin's delete holds its row while the read marks it.
    const { whileHeld } = await import('../helpers/advisory-locks.ts');
    const got = await whileHeld(
      db.sql,
      (tx) => tx`delete from public.attachments where tenant_id = ${acme} and id = ${r.body.attachment.id}`,
      () => call(app, 'GET', `/tickets/${t.id}/attachments/${r.body.attachment.id}`, { token: tok.agent }),
    );
    expect([got.status, errorCode(got)]).toEqual([404, 'not_found']);
  });

  it('takes any file name: the storage key keeps the characters Storage takes, the download keeps the name', async () => {
    const t = await newTicket();
    // An accent, CJK, and macOS's screenshot name (a narrow no-break space before PM): each
    // was the tail of the key, which Supabase Storage refuses (400 InvalidKey), a 500.
    for (const file_name of ['Rechnung März.pdf', '报告 #1.txt', 'Screenshot 2026-12-05 at 7.12.05\u202fPM.png']) {
      const bytes = new TextEncoder().encode(file_name);
      const r = await call(app, 'POST', `/tickets/${t.id}/attachments`, { token: tok.user, body: { file_name, size_bytes: bytes.length } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(r.body.attachment.file_name).toBe(file_name);
      const [{ path: key }] = await db.sql`select path from public.attachments where tenant_id = ${acme} and id = ${r.body.attachment.id}`;
      expect(key).toBe(`${acme}/${t.id}/${r.body.attachment.id}/${file_name.replace(/[^A-Za-z0-9_.!*'()-]/g, '_')}`);
      expect((await handleLocalStorage(new Request(r.body.upload.url, { method: 'PUT', body: bytes }))).status).toBe(200);
      const got = await call(app, 'GET', `/tickets/${t.id}/attachments/${r.body.attachment.id}`, { token: tok.agent });
      const download = await handleLocalStorage(new Request(got.body.download.url));
      expect(new TextDecoder().decode(await download.arrayBuffer())).toBe(file_name);
      expect(download.headers.get('content-disposition')).toContain(`filename*=UTF-8''${encodeURIComponent(file_name)}`);
    }
  });

  it("a deleted ticket's files are deleted by storage-delete jobs its delete added (at once, and after the upload URL expired)", async () => {
    const t = await newTicket();
    const objects: string[] = [];
    for (const file_name of ['a.txt', 'b.txt']) {
      const bytes = new TextEncoder().encode(file_name);
      const r = await call(app, 'POST', `/tickets/${t.id}/attachments`, { token: tok.user, body: { file_name, content_type: 'text/plain', size_bytes: bytes.length } });
      expect((await handleLocalStorage(new Request(r.body.upload.url, { method: 'PUT', body: bytes }))).status).toBe(200);
      const [{ path: object }] = await db.sql`select path from public.attachments where tenant_id = ${acme} and id = ${r.body.attachment.id}`;
      objects.push(object);
    }
    // And one registered but not uploaded yet when its ticket goes.
    const pendingBytes = new TextEncoder().encode('late');
    const pending = await call(app, 'POST', `/tickets/${t.id}/attachments`, { token: tok.user, body: { file_name: 'c.txt', content_type: 'text/plain', size_bytes: pendingBytes.length } });
    const [{ path: pendingObject }] = await db.sql`select path from public.attachments where tenant_id = ${acme} and id = ${pending.body.attachment.id}`;
    objects.push(pendingObject);
    const there = (object: string) => stat(path.join(storageDir, 'attachments', ...object.split('/'))).then(() => true, () => false);
    expect(await Promise.all(objects.map(there))).toEqual([true, true, false]);
    await db.sql`delete from public.tickets where tenant_id = ${acme} and id = ${t.id}`;
    const jobs = await db.sql`select payload ->> 'object' as object, run_at > now() + interval '2 hours' as later, tenant_id
      from private.jobs where task = 'storage-delete' and payload ->> 'object' = any(${objects}) order by 1, 2`;
    expect(jobs).toEqual([...objects].sort().flatMap((object) => [false, true].map((later) => ({ object, later, tenant_id: acme }))));
    await db.sql`delete from private.jobs where task = 'storage-delete' and not (payload ->> 'object' = any(${objects}))`;
    const report = await runJobs({ tasks: ['storage-delete'] });
    expect(report.tasks['storage-delete']).toMatchObject({ completed: 3, deleted: 2, absent: 1 });
    expect(await Promise.all(objects.map(there))).toEqual([false, false, false]);
    // The pending file lands through its URL after its ticket went: the later jobs take it.
    expect((await handleLocalStorage(new Request(pending.body.upload.url, { method: 'PUT', body: pendingBytes }))).status).toBe(200);
    expect(await there(pendingObject)).toBe(true);
    await db.sql`update private.jobs set run_at = now() where task = 'storage-delete' and payload ->> 'object' = any(${objects})`;
    const later = await runJobs({ tasks: ['storage-delete'] });
    expect(later.tasks['storage-delete']).toMatchObject({ completed: 3, deleted: 1, absent: 2 });
    expect(await there(pendingObject)).toBe(false);
  });

  it('downloads under the registered name and type: a non-ASCII name with a quote, an HTML file', async () => {
    const t = await newTicket();
    const files = [
      {
        file_name: 'Überweisung "März".pdf',
        content_type: 'application/pdf',
        disposition: `attachment; filename="_berweisung _M_rz_.pdf"; filename*=UTF-8''%C3%9Cberweisung%20%22M%C3%A4rz%22.pdf`,
      },
      {
        // Served as what it is, but only ever as a download, never sniffed or rendered.
        file_name: 'page.html',
        content_type: 'text/html',
        disposition: `attachment; filename="page.html"; filename*=UTF-8''page.html`,
      },
    ];
    for (const { file_name, content_type, disposition } of files) {
      const bytes = new TextEncoder().encode(`<script>alert(${JSON.stringify(file_name)})</script>`);
      const r = await call(app, 'POST', `/tickets/${t.id}/attachments`, { token: tok.user, body: { file_name, content_type, size_bytes: bytes.length } });
      expect(r.status, file_name).toBe(201);
      expect((await handleLocalStorage(new Request(r.body.upload.url, { method: 'PUT', body: bytes }))).status).toBe(200);
      const got = await call(app, 'GET', `/tickets/${t.id}/attachments/${r.body.attachment.id}`, { token: tok.agent });
      expect(got.body.attachment).toMatchObject({ file_name, content_type, status: 'uploaded' });
      const download = await handleLocalStorage(new Request(got.body.download.url));
      expect(download.status).toBe(200);
      expect(download.headers.get('content-type')).toBe(content_type);
      expect(download.headers.get('content-disposition')).toBe(disposition);
      expect(download.headers.get('x-content-type-options')).toBe('nosniff');
      expect(new Uint8Array(await download.arrayBuffer())).toEqual(bytes);
    }
  });

  it('a file uploaded as its tenant is suspended is read (status uploaded, a download), though the row waits to be marked', async () => {
    const t = await newTicket();
    const bytes = new TextEncoder().encode('sent before the suspension');
    const r = await call(app, 'POST', `/tickets/${t.id}/attachments`, { token: tok.user, body: { file_name: 'late.txt', content_type: 'text/plain', size_bytes: bytes.length } });
    expect((await handleLocalStorage(new Request(r.body.upload.url, { method: 'PUT', body: bytes }))).status).toBe(200);
    await db.sql`update public.tenants set status = 'suspended' where id = ${acme}`;
    try {
      const got = await call(app, 'GET', `/tickets/${t.id}/attachments/${r.body.attachment.id}`, { token: tok.agent });
      expect([got.status, got.body.attachment?.status], JSON.stringify(got.body)).toEqual([200, 'uploaded']);
      const download = await handleLocalStorage(new Request(got.body.download.url));
      expect(new Uint8Array(await download.arrayBuffer())).toEqual(bytes);
      // Read-only: nothing was written (the row is marked once the tenant is back, or by its check).
      expect((await db.sql`select status from public.attachments where id = ${r.body.attachment.id}`)[0].status).toBe('pending');
    } finally {
      await db.sql`update public.tenants set status = 'active' where id = ${acme}`;
    }
    const after = await call(app, 'GET', `/tickets/${t.id}/attachments/${r.body.attachment.id}`, { token: tok.agent });
    expect(after.body.attachment.status).toBe('uploaded');
    expect((await db.sql`select status from public.attachments where id = ${r.body.attachment.id}`)[0].status).toBe('uploaded');
  });

  it('refuses files over 50 MiB and names with paths', async () => {
    const t = await newTicket();
    for (const body of [{ file_name: 'big.iso', size_bytes: 50 * 1024 * 1024 + 1 }, { file_name: '../etc/passwd', size_bytes: 10 }]) {
      const r = await call(app, 'POST', `/tickets/${t.id}/attachments`, { token: tok.user, body });
      expect(r.status).toBe(422);
    }
  });
});

// ---------------------------------------------------------------- roles × endpoints

type Ids = { ticket: string; message: string; attachment: string; other: string; follower?: string; macro?: string };
const endpoints: { method: string; path: (i: Ids) => string; body?: (i: Ids) => unknown }[] = [
  { method: 'GET', path: (i) => `/tickets/${i.ticket}` },
  { method: 'PATCH', path: (i) => `/tickets/${i.ticket}`, body: () => ({ title: 'Pwned ticket title' }) },
  { method: 'POST', path: (i) => `/tickets/${i.ticket}/status`, body: () => ({ status: 'pending' }) },
  { method: 'PUT', path: (i) => `/tickets/${i.ticket}/assignee`, body: () => ({ user_id: null }) },
  { method: 'POST', path: (i) => `/tickets/${i.ticket}/messages`, body: () => ({ content: 'hello' }) },
  { method: 'PATCH', path: (i) => `/tickets/${i.ticket}/messages/${i.message}`, body: () => ({ content: 'edited' }) },
  { method: 'POST', path: (i) => `/tickets/${i.ticket}/attachments`, body: () => ({ file_name: 'x.txt', size_bytes: 1 }) },
  { method: 'GET', path: (i) => `/tickets/${i.ticket}/attachments/${i.attachment}` },
  { method: 'DELETE', path: (i) => `/tickets/${i.ticket}/attachments/${i.attachment}` },
  { method: 'DELETE', path: (i) => `/tickets/${i.ticket}` },
  { method: 'POST', path: (i) => `/tickets/${i.ticket}/restore` },
  { method: 'POST', path: (i) => `/tickets/${i.ticket}/merge`, body: (i) => ({ into: i.other }) },
  { method: 'GET', path: (i) => `/tickets/${i.ticket}/followers` },
  { method: 'POST', path: (i) => `/tickets/${i.ticket}/followers`, body: () => ({}) },
  { method: 'DELETE', path: (i) => `/tickets/${i.ticket}/followers/${i.follower ?? users.acmeAgent.id}` },
  { method: 'POST', path: (i) => `/tickets/${i.ticket}/macros/${i.macro}/apply` },
];

describe('roles × endpoints', () => {
  let own: Ids;
  let foreign: Ids;
  beforeAll(async () => {
    const make = async (userToken: string, agentToken: string, tenantId: string, team: string) => {
      const t = (await call(app, 'POST', '/tickets', { token: userToken, body: { title: 'Matrix ticket' } })).body;
      const other = (await call(app, 'POST', '/tickets', { token: userToken, body: { title: 'Matrix other ticket' } })).body;
      await db.sql`update public.tickets set team_id = ${team} where id in (${t.id}, ${other.id})`;
      const m = (await call(app, 'POST', `/tickets/${t.id}/messages`, { token: userToken, body: { content: 'customer words' } })).body;
      const a = (await call(app, 'POST', `/tickets/${t.id}/attachments`, { token: agentToken, body: { file_name: 'a.txt', size_bytes: 1 } })).body;
      expect(a.attachment, JSON.stringify(a)).toBeDefined();
      const [macro] = await db.sql`insert into public.macros (tenant_id, scope, name, actions)
        values (${tenantId}, 'tenant', 'Matrix macro', '[{"type":"add_tags","tags":["macro"]}]') returning id`;
      return { ticket: t.id, message: m.id, attachment: a.attachment.id, other: other.id, tenantId, macro: macro.id as string };
    };
    own = await make(tok.user, tok.agent, acme, teams.acme);
    foreign = await make(tok.globexUser, tok.globexAgent, tenants.globex.id, teams.globex);
  });

  it('covers every ticket route of the OpenAPI document', async () => {
    const doc = await call(app, 'GET', '/tickets/openapi.json');
    const documented = Object.entries(doc.body.paths as Record<string, Record<string, unknown>>)
      .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
      .filter((r) => r.includes('{id}'))
      .sort();
    const tested = endpoints.map((e) => `${e.method} ${e.path({ ticket: '{id}', message: '{messageId}', attachment: '{attachmentId}', other: 'x', follower: '{userId}', macro: '{macroId}' })}`).sort();
    expect(tested).toEqual(documented);
  });

  for (const role of ['admin', 'agent', 'agent2', 'user'] as const) {
    it(`${role} of acme: 404 for every route with globex ticket ids, globex unchanged`, async () => {
      const snapshot = async () => (await db.sql`
        select md5(string_agg(t::text, ',' order by t.id)) as t,
               (select md5(string_agg(m::text, ',' order by m.id)) from public.ticket_messages m where m.tenant_id = ${tenants.globex.id}) as m,
               (select md5(string_agg(a::text, ',' order by a.id)) from public.attachments a where a.tenant_id = ${tenants.globex.id}) as a,
               (select md5(string_agg(f::text, ',' order by f.ticket_id, f.user_id)) from public.ticket_followers f
                where f.tenant_id = ${tenants.globex.id}) as f
        from public.tickets t where t.tenant_id = ${tenants.globex.id}`)[0];
      const before = await snapshot();
      for (const e of endpoints) {
        const r = await call(app, e.method, e.path(foreign), { token: tok[role], body: e.body?.(foreign) });
        expect([r.status, errorCode(r)], `${e.method} ${e.path(foreign)}`).toEqual([404, 'not_found']);
      }
      expect(await snapshot()).toEqual(before);
    });
  }

  // Own tenant: which roles may do what (agent2 is staff but not on the ticket's team,
  // so for them the ticket does not exist).
  const expected: Record<string, Record<string, number>> = {
    'GET /tickets/{id}': { admin: 200, agent: 200, agent2: 404, user: 200 },
    'PATCH /tickets/{id}': { admin: 200, agent: 200, agent2: 404, user: 403 },
    'POST /tickets/{id}/status': { admin: 200, agent: 200, agent2: 404, user: 403 },
    'PUT /tickets/{id}/assignee': { admin: 200, agent: 200, agent2: 404, user: 403 },
    'POST /tickets/{id}/messages': { admin: 201, agent: 201, agent2: 404, user: 201 },
    'PATCH /tickets/{id}/messages/{messageId}': { admin: 403, agent: 403, agent2: 404, user: 200 },
    'POST /tickets/{id}/attachments': { admin: 201, agent: 201, agent2: 404, user: 201 },
    'GET /tickets/{id}/attachments/{attachmentId}': { admin: 200, agent: 200, agent2: 404, user: 200 },
    'DELETE /tickets/{id}/attachments/{attachmentId}': { admin: 204, agent: 403, agent2: 404, user: 403 },
    'DELETE /tickets/{id}': { admin: 200, agent: 403, agent2: 404, user: 403 },
    // A deleted ticket is gone for everyone but admins.
    'POST /tickets/{id}/restore': { admin: 200, agent: 404, agent2: 404, user: 404 },
    'POST /tickets/{id}/merge': { admin: 200, agent: 200, agent2: 404, user: 403 },
    // A customer sees only their own follow and those they added (none here); they remove
    // only those, so a staff follower is no row of theirs: 404 (issue 16 §5).
    'GET /tickets/{id}/followers': { admin: 200, agent: 200, agent2: 404, user: 200 },
    'POST /tickets/{id}/followers': { admin: 201, agent: 201, agent2: 404, user: 403 },
    // The acme agent follows again before each call.
    'DELETE /tickets/{id}/followers/{userId}': { admin: 204, agent: 204, agent2: 404, user: 404 },
    'POST /tickets/{id}/macros/{macroId}/apply': { admin: 200, agent: 200, agent2: 404, user: 403 },
  };
  for (const role of ['agent2', 'user', 'agent', 'admin'] as const) {
    it(`${role} of acme on an acme ticket gets exactly the matrix`, async () => {
      for (const e of endpoints) {
        const route = `${e.method} ${e.path({ ticket: '{id}', message: '{messageId}', attachment: '{attachmentId}', other: '', follower: '{userId}', macro: '{macroId}' })}`;
        // Merging and deleting change the ticket: give each a fresh pair.
        let ids = own;
        if (e.path(own).endsWith('/merge') || e.method === 'DELETE' || e.path(own).endsWith('/restore')) {
          const a = await newTicket();
          const b = await newTicket();
          ids = { ...own, ticket: a.id, other: b.id };
          if (e.path(own).endsWith('/restore')) await db.sql`update public.tickets set deleted_at = now() where id = ${a.id}`;
          if (e.path(own).includes('/followers/')) {
            await db.sql`insert into public.ticket_followers (tenant_id, ticket_id, user_id) values (${acme}, ${a.id}, ${users.acmeAgent.id})`;
          }
          if (e.path(own).includes('/attachments/')) {
            const [file] = await db.sql`insert into public.attachments (tenant_id, ticket_id, file_name, size_bytes)
              values (${acme}, ${a.id}, 'matrix.txt', 1) returning id`;
            ids.attachment = file.id;
          }
        }
        const r = await call(app, e.method, e.path(ids), { token: tok[role], body: e.body?.(ids) });
        expect(r.status, `${role} ${route}: ${JSON.stringify(r.body)}`).toBe(expected[route][role]);
      }
    });
  }
});

describe('validation: 422 naming the field, nothing written', () => {
  const cases: [string, string, unknown, string][] = [
    ['POST', '/tickets', { title: 'Shrt' }, 'title'],
    ['POST', '/tickets', { title: 'x'.repeat(201) }, 'title'],
    ['POST', '/tickets', { title: 'Valid title', description: 'x'.repeat(5001) }, 'description'],
    ['POST', '/tickets', { title: 'Valid title', priority: 'asap' }, 'priority'],
    ['POST', '/tickets', { title: 'Valid title', department: 'legal' }, 'department'],
    ['POST', '/tickets', { title: 'Valid title', tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }, 'tags'],
    ['POST', '/tickets', { title: 'Valid title', tags: ['a,b'] }, 'tags.0'],
    ['POST', '/tickets', { title: 'Valid title', due_date: 'tomorrow' }, 'due_date'],
    // ISO times Postgres cannot read (they were cast failures naming the body).
    ['POST', '/tickets', { title: 'Valid title', due_date: '0000-06-01T00:00:00Z' }, 'due_date'],
    ['POST', '/tickets', { title: 'Valid title', due_date: '2099-01-01T00:00:00+16:00' }, 'due_date'],
    ['POST', '/tickets', { title: 'Valid title', assigned_to: 'bob' }, 'assigned_to'],
    ['POST', '/tickets', { title: 'Valid title', metadata: { k: 'x'.repeat(17_000) } }, 'metadata'],
    ['POST', '/tickets', { title: 'Valid\u0000title' }, 'title'],
    ['POST', '/tickets', { title: 'Valid title', unknown: true }, 'unknown'],
    ['POST', '/tickets', { title: 'Valid title', metadata: { ok: 1 }, priorty: 'high' }, 'priorty'],
    ['GET', '/tickets?status=lost', undefined, 'status'],
    ['GET', '/tickets?assignee=bob', undefined, 'assignee'],
    ['GET', '/tickets?sort=relevance', undefined, 'sort'],
    ['GET', '/tickets?limit=500', undefined, 'limit'],
    ['GET', '/tickets?created_after=yesterday', undefined, 'created_after'],
    ['GET', `/tickets?updated_before=${encodeURIComponent('2026-01-01T00:00:00-20:00')}`, undefined, 'updated_before'],
    ['GET', '/tickets?cursor=garbage', undefined, 'cursor'],
    ['GET', '/tickets/not-a-uuid', undefined, 'id'],
  ];
  it.each(cases)('%s %s %j → 422 on "%s"', async (method, url, body, field) => {
    const before = await count('tickets');
    const r = await call(app, method, url, { token: tok.agent, body });
    expect([r.status, errorCode(r)]).toEqual([422, 'validation_failed']);
    if (field) {
      const fields: string[] = r.body.error.details.fields.map((f: { field: string }) => f.field);
      expect(fields.some((f) => f === field || f.startsWith(`${field}.`)), JSON.stringify(fields)).toBe(true);
    }
    expect(await count('tickets')).toBe(before);
  });

  it('ticket-level bodies are validated too', async () => {
    const t = await newTicket();
    for (const [method, suffix, body, field] of [
      ['POST', '/status', { status: 'done' }, 'status'],
      ['PUT', '/assignee', { user_id: 'me' }, 'user_id'],
      ['POST', '/messages', { content: '' }, 'content'],
      ['POST', '/messages', { content: 'x'.repeat(10_001) }, 'content'],
      ['POST', '/messages', { content: 'hi', type: 'system' }, 'type'],
      ['POST', '/merge', { into: 'other' }, 'into'],
      ['PATCH', '', {}, ''],
    ] as const) {
      const state = async () => (await db.sql`
        select row_to_json(x)::text as ticket,
               (select count(*)::int from public.ticket_messages where ticket_id = ${t.id}) as messages,
               (select count(*)::int from public.ticket_followers where ticket_id = ${t.id}) as followers
        from public.tickets x where x.id = ${t.id}`)[0];
      const before = await state();
      const r = await call(app, method, `/tickets/${t.id}${suffix}`, { token: tok.agent, body });
      expect([`${method} ${suffix}`, r.status, errorCode(r)]).toEqual([`${method} ${suffix}`, 422, 'validation_failed']);
      if (field) expect(r.body.error.details.fields.map((f: { field: string }) => f.field)).toContain(field);
      expect(await state(), `${method} ${suffix}`).toEqual(before);
    }
  });
});

describe('the tenant a request acts in, and the caller’s standing there', () => {
  it('is the token’s, else X-Tenant-Id (id or slug), else the only one; nothing named is a 400, a stranger’s is a 404', async () => {
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${tenants.globex.id}, ${agent2.id}, 'user')`;
    try {
      const unpinned = await supabaseToken(agent2);
      const none = await call(app, 'GET', '/tickets', { token: unpinned });
      expect([none.status, errorCode(none)]).toEqual([400, 'tenant_required']);
      expect((await call(app, 'GET', '/tickets/stats', { token: unpinned, headers: { 'x-tenant-id': 'acme' } })).status).toBe(200);
      // Ids and slugs in any case (slugs are stored in lower case).
      for (const name of [acme.toUpperCase(), 'ACME', 'Acme']) {
        expect((await call(app, 'GET', '/tickets/stats', { token: unpinned, headers: { 'x-tenant-id': name } })).status, name).toBe(200);
      }
      // A customer in globex: the statistics need the agent role.
      const customer = await call(app, 'GET', '/tickets/stats', { token: unpinned, headers: { 'x-tenant-id': tenants.globex.id } });
      expect([customer.status, errorCode(customer), customer.body.error.message]).toEqual([403, 'forbidden', 'This needs the agent role in the tenant']);
      for (const name of ['no-such-tenant', '10000000-0000-4000-8000-0000000000ff']) {
        const r = await call(app, 'GET', '/tickets', { token: unpinned, headers: { 'x-tenant-id': name } });
        expect([r.status, errorCode(r)], name).toEqual([404, 'not_found']);
      }
    } finally {
      await db.sql`delete from public.memberships where tenant_id = ${tenants.globex.id} and user_id = ${agent2.id}`;
    }
    // One tenant: it is the active one without a header.
    expect((await call(app, 'GET', '/tickets/stats', { token: await supabaseToken(agent2) })).status).toBe(200);
  });

  it('a token bound to a tenant acts only there: X-Tenant-Id must name the same one', async () => {
    for (const same of ['acme', 'Acme', acme, acme.toUpperCase()]) {
      expect((await call(app, 'GET', '/tickets/stats', { token: tok.agent, headers: { 'x-tenant-id': same } })).status, same).toBe(200);
    }
    // A token naming its tenant by slug, in any case.
    const bySlug = await supabaseToken(users.acmeAgent, { tenantId: 'ACME' });
    expect((await call(app, 'GET', '/tickets/stats', { token: bySlug, headers: { 'x-tenant-id': 'acme' } })).status).toBe(200);
    for (const other of ['globex', tenants.globex.id, 'no-such-tenant']) {
      const r = await call(app, 'GET', '/tickets', { token: tok.agent, headers: { 'x-tenant-id': other } });
      expect([r.status, errorCode(r)], other).toEqual([400, 'tenant_mismatch']);
    }
  });

  it('platform admins act as super_admin in a tenant named by id; a slug of a tenant they are not in names none', async () => {
    const stats = await call(app, 'GET', '/tickets/stats', { token: tok.super, headers: { 'x-tenant-id': acme } });
    expect(stats.status).toBe(200);
    const deleted = await call(app, 'GET', `/tickets?include_deleted=true&limit=1`, { token: tok.super, headers: { 'x-tenant-id': acme } });
    expect(deleted.status).toBe(200);
    const bySlug = await call(app, 'GET', '/tickets', { token: tok.super, headers: { 'x-tenant-id': 'acme' } });
    expect([bySlug.status, errorCode(bySlug)]).toEqual([404, 'not_found']);
  });

  it('an invitee’s token bound to the tenant acts in none of it, whatever X-Tenant-Id says', async () => {
    const invitee = { id: '00000000-0000-4000-8000-0000000000a9', email: 'invitee@acme.test' };
    await db.sql`insert into public.users (id, email) values (${invitee.id}, ${invitee.email})`;
    await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${invitee.id}, ${invitee.id})`;
    await db.sql`insert into public.invitations (tenant_id, email) values (${acme}, ${invitee.email})`;
    const bound = await supabaseToken(invitee, { tenantId: acme });
    for (const headers of [{}, { 'x-tenant-id': 'globex' }, { 'x-tenant-id': 'acme' }] as Record<string, string>[]) {
      const r = await call(app, 'GET', '/tickets', { token: bound, headers });
      expect([r.status, errorCode(r)], JSON.stringify(headers)).toEqual([403, 'tenant_not_member']);
    }
  });

  it('a suspended tenant reads but refuses writes', async () => {
    await db.sql`update public.tenants set status = 'suspended' where id = ${tenants.globex.id}`;
    try {
      expect((await call(app, 'GET', '/tickets', { token: tok.globexUser })).status).toBe(200);
      const w = await call(app, 'POST', '/tickets', { token: tok.globexUser, body: { title: 'While suspended' } });
      expect([w.status, errorCode(w)]).toEqual([403, 'tenant_suspended']);
    } finally {
      await db.sql`update public.tenants set status = 'active' where id = ${tenants.globex.id}`;
    }
  });
});
