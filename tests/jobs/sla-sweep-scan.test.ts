// The SLA sweep reads only tickets it can act on (20261207213000): settled and waiting
// tickets that never had a first response (or whose due dates passed) are not in its
// indexes, so a sweep every minute does not read past a tenant's whole history to reach
// the tickets due. Checked on the sweep's own queries, taken from the live function, as
// the planner runs them: no ticket row is read and thrown away.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { tenants, users } from '../helpers/seed.ts';

const acme = tenants.acme.id;
let db: TestDatabase;

beforeAll(async () => {
  db = await freshDatabase('sla_sweep_scan');
  // Its customer files more tickets here than a customer's daily allowance.
  await db.sql`update public.tenants set settings = settings || '{"customer_tickets_per_day": 10000}' where id = ${acme}`;
});
afterAll(() => db?.close());

type Plan = { 'Relation Name'?: string; 'Rows Removed by Filter'?: number; 'Actual Loops'?: number; Plans?: Plan[] };
/** Ticket rows each scan of `tickets` read and discarded, over the whole plan. */
function ticketRowsDiscarded(plan: Plan): number {
  const own = plan['Relation Name'] === 'tickets' ? (plan['Rows Removed by Filter'] ?? 0) * (plan['Actual Loops'] ?? 1) : 0;
  return own + (plan.Plans ?? []).reduce((n, p) => n + ticketRowsDiscarded(p), 0);
}

it("reads no settled or waiting ticket, however many a tenant has, to find the ones due or to warn", async () => {
  // 300 settled or waiting tickets whose targets all passed unmet, and one open one due.
  await db.sql`
    insert into public.tickets (tenant_id, title, created_by, priority)
    select ${acme}, 'History ' || g, ${users.acmeUser.id}, 'low' from generate_series(1, 300) g`;
  await db.sql`update public.tickets set first_response_due_at = now() - interval '1 day', due_date = now() - interval '1 hour',
                 next_response_due_at = now() - interval '1 hour' where title like 'History %'`;
  // A third waiting on the customer, a third resolved, a third closed: none answered.
  await db.sql`update public.tickets set status = 'pending' where title like 'History %' and number % 3 = 0`;
  await db.sql`update public.tickets set status = 'resolved' where title like 'History %' and number % 3 <> 0`;
  await db.sql`update public.tickets set status = 'closed' where title like 'History %' and number % 3 = 2`;
  const [due] = await db.sql`insert into public.tickets (tenant_id, title, created_by, priority) values (${acme}, 'Due now', ${users.acmeUser.id}, 'low') returning id`;
  await db.sql`update public.tickets set first_response_due_at = now() - interval '1 minute' where id = ${due.id}`;
  await db.sql`analyze public.tickets`;

  // The sweep's two queries, as the live function states them.
  const [{ src }] = await db.sql`select prosrc as src from pg_proc where oid = 'private.run_sla_sweep(timestamptz, int)'::regprocedure`;
  const queries = [...(src as string).matchAll(/for v_due in\s+([\s\S]*?)\n\s*loop/g)].map((m) =>
    m[1].replaceAll('p_now', 'now()').replaceAll('p_limit', '500')
  );
  expect(queries).toHaveLength(2);
  for (const query of queries) {
    const discarded = await db.sql.begin(async (tx) => {
      // The plan the planner picks with many tickets: index scans, not a read of the table.
      await tx`set local enable_seqscan = off`;
      await tx`set local enable_bitmapscan = off`;
      const [row] = await tx.unsafe(`explain (analyze, format json) ${query}`);
      return ticketRowsDiscarded((row['QUERY PLAN'] as { Plan: Plan }[])[0].Plan);
    });
    expect(discarded, query.slice(0, 80)).toBe(0);
  }
  // And the sweep acts on the one due.
  await db.sql`select private.run_sla_sweep()`;
  const [after] = await db.sql`select sla_first_response_breached_at is not null as breached from public.tickets where id = ${due.id}`;
  expect(after.breached).toBe(true);
  expect((await db.sql`select count(*)::int as n from public.tickets where title like 'History %' and sla_first_response_breached_at is not null`)[0].n).toBe(0);
});
