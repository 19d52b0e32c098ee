// The SLA sweep reads its candidates once, then locks and handles them one by one
// (migration 20261206163000_sla_sweep_checks_under_its_lock.sql). A ticket whose due date
// a commit moves later while the sweep is busy with an earlier one must not be breached.
// The interleaving is made, not hoped for: another transaction moves ticket B's due date
// and holds the statistics row that the sweep's escalation of ticket A needs, so the sweep
// has read B as overdue and waits inside A; then that transaction commits. The warnings
// likewise: a ticket made pending while the sweep waits on an earlier warning gets none.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { whileHeld } from '../helpers/advisory-locks.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { tenants, users } from '../helpers/seed.ts';

const acme = tenants.acme.id;
let db: TestDatabase;

beforeAll(async () => {
  db = await freshDatabase('sla_sweep_recheck');
});
afterAll(() => db?.close());

const ticket = async (title: string) =>
  (await db.sql`insert into public.tickets (tenant_id, title, created_by, priority) values (${acme}, ${title}, ${users.acmeUser.id}, 'low')
    returning id`)[0].id as string;

it("does not breach a ticket whose due date moved later while the sweep was busy with another", async () => {
  const a = await ticket('A: no first response, overdue');
  const b = await ticket('B: answered, resolution overdue');
  const c = await ticket('C: low and open, like A');
  await db.sql`update public.tickets set first_response_due_at = now() - interval '2 hours', due_date = null where id = ${a}`;
  await db.sql`update public.tickets set first_response_at = now() - interval '3 hours', due_date = now() - interval '1 hour' where id = ${b}`;

  await whileHeld(
    db.sql,
    async (tx) => {
      await tx`update public.tickets set due_date = now() + interval '1 day' where id = ${b}`;
      // C leaves "open, low": its statistics row is the one A's escalation changes.
      await tx`update public.tickets set status = 'pending' where id = ${c}`;
    },
    () => db.sql`select private.run_sla_sweep() as n`.execute(),
  );
  const rows = await db.sql`select id, status, sla_first_response_breached_at, sla_resolution_breached_at from public.tickets where id in (${a}, ${b})`;
  const of = (id: string) => rows.find((r) => r.id === id)!;
  expect(of(a).sla_first_response_breached_at).not.toBeNull();
  expect([of(b).status, of(b).sla_resolution_breached_at]).toEqual(['open', null]);
  const messages = await db.sql`select content from public.ticket_messages where ticket_id = ${b} and type = 'system'`;
  expect(messages).toEqual([]);
});

it('sends no warning for a ticket made pending while the sweep was busy with an earlier warning', async () => {
  await db.sql`insert into public.sla_policies (tenant_id, priority, first_response_minutes, resolution_minutes, warning_minutes)
    values (${acme}, 'medium', 60, 600, 600)`;
  const first = await ticket('W1: first response due soonest');
  const second = await ticket('W2: first response due later');
  await db.sql`update public.tickets set priority = 'medium' where id in (${first}, ${second})`;
  await db.sql`update public.tickets set first_response_due_at = now() + interval '10 minutes', due_date = null where id = ${first}`;
  await db.sql`update public.tickets set first_response_due_at = now() + interval '20 minutes', due_date = null where id = ${second}`;

  await whileHeld(
    db.sql,
    async (tx) => {
      await tx`update public.tickets set status = 'pending' where id = ${second}`;
      // The warning W1's sweep will record, held uncommitted: the sweep waits on it.
      await tx`insert into private.sla_warnings (tenant_id, ticket_id, kind, due_at)
        select tenant_id, id, 'first_response', first_response_due_at from public.tickets where id = ${first}`;
    },
    () => db.sql`select private.run_sla_sweep() as n`.execute(),
  );
  const warned = await db.sql`select ticket_id from private.sla_warnings where ticket_id in (${first}, ${second})`;
  expect(warned.map((w) => w.ticket_id)).toEqual([first]);
  expect(await db.sql`select 1 from public.ticket_events where ticket_id = ${second} and type = 'sla_warning'`).toEqual([]);
});
