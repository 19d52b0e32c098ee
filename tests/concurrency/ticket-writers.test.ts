// One hot ticket: 200 writers at once — customer and staff replies, internal notes,
// status changes, assignment and attachments — through the tickets function. No
// deadlock, no 5xx; the final ticket is what the accepted requests give in the order
// they committed, and the audit trail has one row per accepted write, in that order.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { app } from '../../functions/tickets/app.ts';
import { call } from '../helpers/http.ts';
import { teams, tenants, users } from '../helpers/seed.ts';
import { supabaseToken } from '../helpers/tokens.ts';
import {
  closeConcurrencyDb,
  type ConcurrencyDb,
  concurrencyDatabase,
  contiguousTransactions,
  deadlocks,
  failures,
  runAll,
  shuffle,
  statisticsAgainstRecount,
  tally,
  type Writer,
  WRITERS,
} from './harness.ts';

const acme = tenants.acme.id;
const agent2 = { id: '00000000-0000-4000-8000-0000000000b2', email: 'agent2@acme.test' };
let db: ConcurrencyDb;
let storageDir: string;
const tok: Record<string, string> = {};

beforeAll(async () => {
  storageDir = await mkdtemp(path.join(os.tmpdir(), 'concurrency-storage-'));
  db = await concurrencyDatabase('conc_ticket', { STORAGE_BACKEND: 'local', LOCAL_STORAGE_DIR: storageDir });
  await db.sql`insert into public.users (id, email) values (${agent2.id}, ${agent2.email})`;
  await db.sql`insert into public.user_identities (issuer, subject, user_id)
    values ('http://127.0.0.1:54321/auth/v1', ${agent2.id}, ${agent2.id})`;
  await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${agent2.id}, 'agent')`;
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
});
afterAll(async () => {
  await closeConcurrencyDb(db);
  await rm(storageDir, { recursive: true, force: true });
});

type Kind = 'reply' | 'staff_reply' | 'note' | 'status' | 'assign' | 'attachment';

it(`one ticket, ${WRITERS} concurrent writers: no deadlock, a serial outcome, ordered audit`, async () => {
  const created = await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'The hot ticket', description: 'busy' } });
  expect(created.status).toBe(201);
  const id: string = created.body.id;
  await db.sql`update public.tickets set team_id = ${teams.acme} where id = ${id}`; // the agent's team sees it
  const [initial] = await db.sql`select status, assigned_to from public.tickets where id = ${id}`;
  const [{ mark }] = await db.sql`select coalesce(max(id), 0)::bigint as mark from public.audit_logs`;
  const deadlocksBefore = await deadlocks(db.sql, db.name);

  const staff = [tok.agent, tok.admin];
  const statusTargets = ['pending', 'escalated', 'open'];
  const assignees = [users.acmeAgent.id, agent2.id, users.acmeAdmin.id, null];
  const writers: Writer<Kind>[] = [
    ...Array.from({ length: 50 }, (_, i): Writer<Kind> => ({
      kind: 'reply',
      run: () => call(app, 'POST', `/tickets/${id}/messages`, { token: tok.user, body: { content: `customer ${i}` } }),
    })),
    ...Array.from({ length: 50 }, (_, i): Writer<Kind> => ({
      kind: 'staff_reply',
      run: () => call(app, 'POST', `/tickets/${id}/messages`, { token: staff[i % 2], body: { content: `staff ${i}` } }),
    })),
    ...Array.from({ length: 30 }, (_, i): Writer<Kind> => ({
      kind: 'note',
      run: () =>
        call(app, 'POST', `/tickets/${id}/messages`, { token: staff[i % 2], body: { type: 'note', content: `note ${i}` } }),
    })),
    ...Array.from({ length: 30 }, (_, i): Writer<Kind> => ({
      kind: 'status',
      wants: statusTargets[i % 3],
      run: () => call(app, 'POST', `/tickets/${id}/status`, { token: staff[i % 2], body: { status: statusTargets[i % 3] } }),
    })),
    ...Array.from({ length: 20 }, (_, i): Writer<Kind> => ({
      kind: 'assign',
      run: () => call(app, 'PUT', `/tickets/${id}/assignee`, { token: tok.admin, body: { user_id: assignees[i % 4] } }),
    })),
    ...Array.from({ length: 20 }, (_, i): Writer<Kind> => ({
      kind: 'attachment',
      run: () =>
        call(app, 'POST', `/tickets/${id}/attachments`, {
          token: tok.user,
          body: { file_name: `log-${i}.txt`, content_type: 'text/plain', size_bytes: 100 + i },
        }),
    })),
  ];
  expect(writers).toHaveLength(WRITERS);
  const outcomes = await runAll(shuffle(writers), db.sql);
  // They contended: the pool's connections at work at once, and writers queued on locks.
  expect(outcomes.overlap.busy).toBeGreaterThan(1);
  expect(outcomes.overlap.lockWaiters).toBeGreaterThan(1);
  const deadlocksAfter = await deadlocks(db.sql, db.name);
  const counts = tally(outcomes);
  console.info(`[concurrency] one ticket: ${JSON.stringify(counts)}, deadlocks ${deadlocksAfter - deadlocksBefore}`);

  // No deadlock and no 5xx; every write was accepted (all transitions used are allowed).
  expect({ deadlocks: deadlocksAfter - deadlocksBefore, ...failures(outcomes) }).toEqual({ deadlocks: 0, serverErrors: 0, retry: 0 });
  expect(counts).toEqual({
    reply: { 201: 50 },
    staff_reply: { 201: 50 },
    note: { 201: 30 },
    status: { 200: 30 },
    assign: { 200: 20 },
    attachment: { 201: 20 },
  });
  // Each accepted transition answered the ticket in the status it asked for.
  for (const o of outcomes.filter((x) => x.kind === 'status')) expect(o.result.body.status).toBe(o.wants);

  // Every accepted message and attachment exists exactly once.
  const messageIds = outcomes.filter((o) => ['reply', 'staff_reply', 'note'].includes(o.kind)).map((o) => o.result.body.id);
  const attachmentIds = outcomes.filter((o) => o.kind === 'attachment').map((o) => o.result.body.attachment.id);
  const storedMessages = await db.sql`select id, author_id, type, created_at from public.ticket_messages where ticket_id = ${id} and type <> 'system'`;
  expect(storedMessages.map((m) => m.id).sort()).toEqual([...messageIds].sort());
  const storedAttachments = await db.sql`select id from public.attachments where ticket_id = ${id}`;
  expect(storedAttachments.map((a) => a.id).sort()).toEqual([...attachmentIds].sort());

  // The audit rows of the ticket and everything hanging off it, in audit order.
  const audit = await db.sql`
    select id, transaction_id, table_name, action, record_key, old_data, new_data, changed_fields
    from public.audit_logs
    where id > ${mark} and tenant_id = ${acme}
      and ((table_name = 'tickets' and record_key ->> 'id' = ${id})
        or (table_name in ('ticket_messages', 'attachments', 'ticket_events') and coalesce(new_data, old_data) ->> 'ticket_id' = ${id}))
    order by id`;
  // One audit row per accepted message and attachment.
  const inserted = (table: string) => audit.filter((a) => a.table_name === table && a.action === 'INSERT').map((a) => a.record_key.id);
  expect(inserted('ticket_messages').sort()).toEqual([...messageIds].sort());
  expect(inserted('attachments').sort()).toEqual([...attachmentIds].sort());
  // Writers of the ticket took turns: no transaction's audit rows interleave another's,
  // so audit order is commit order.
  expect(contiguousTransactions(audit)).toBe(true);

  // The ticket's own audit rows chain: each change starts where the previous one ended,
  // and the last ends at the ticket as stored.
  const [final] = await db.sql`select status, assigned_to, first_response_at from public.tickets where id = ${id}`;
  const ticketRows = audit.filter((a) => a.table_name === 'tickets' && a.action === 'UPDATE');
  let state = { status: initial.status, assigned_to: initial.assigned_to };
  for (const row of ticketRows) {
    expect({ status: row.old_data.status, assigned_to: row.old_data.assigned_to }).toEqual(state);
    state = { status: row.new_data.status, assigned_to: row.new_data.assigned_to };
  }
  expect(state).toEqual({ status: final.status, assigned_to: final.assigned_to });

  // The timeline tells the same story: status and assignment events chain from the
  // initial values to the final ones, one per audited change.
  const events = await db.sql`select type, data from public.ticket_events where ticket_id = ${id} order by id`;
  const statusEvents = events.filter((e) => e.type === 'status_changed');
  let status = initial.status;
  for (const e of statusEvents) {
    expect(e.data.from).toBe(status);
    status = e.data.to;
  }
  expect(status).toBe(final.status);
  expect(statusEvents).toHaveLength(ticketRows.filter((r) => r.changed_fields.includes('status')).length);
  const assignEvents = events.filter((e) => e.type === 'assigned' || e.type === 'unassigned');
  let assignee = initial.assigned_to;
  for (const e of assignEvents) {
    expect(e.data.from).toBe(assignee);
    assignee = e.data.to;
  }
  expect(assignee).toBe(final.assigned_to);
  expect(assignEvents).toHaveLength(ticketRows.filter((r) => r.changed_fields.includes('assigned_to')).length);

  // The first response is the first staff reply in commit (= audit) order.
  const staffIds = new Set([users.acmeAgent.id, users.acmeAdmin.id]);
  const firstStaffReply = audit.find((a) =>
    a.table_name === 'ticket_messages' && a.action === 'INSERT' && a.new_data.type === 'message' && staffIds.has(a.new_data.author_id)
  );
  expect(new Date(final.first_response_at).toISOString()).toBe(new Date(firstStaffReply!.new_data.created_at).toISOString());

  // The statistics rows equal a recount.
  const stats = await statisticsAgainstRecount(db.sql, acme);
  expect(stats.maintained).toEqual(stats.recount);
}, 60_000);
