// add_job's locks are bounded per transaction (issue 14;
// 20261205110000_job_adders_bounded_locks.sql). Every job with a key took the key's
// advisory lock and every job in a named queue the queue's, held to commit, in a lock
// table the whole server shares: a tenant admin's update of 3,000 tickets' team held
// 3,000 (6,000 with an automation rule on ticket.updated), and a large enough request
// fails with "out of shared memory", with every other tenant's transactions that need a
// lock meanwhile. Now a transaction takes at most 64 key and queue locks; past them it
// adds jobs under its tenant's job adders' lock in exclusive mode, which the tenant's
// other job adders wait for, and no other tenant does. The jobs are the same.
import type { TransactionSql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asTenantUser, countAdvisoryLocks, settled, someoneWaitsFor, someoneWaitsForAdvisoryLock } from '../helpers/advisory-locks.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { tenants, users } from '../helpers/seed.ts';

let db: TestDatabase;
const acme = tenants.acme.id;
const globex = tenants.globex.id;
const BULK = 3_000;
let team: { first: string; second: string; globex: string };

beforeAll(async () => {
  db = await freshDatabase('conc_job_adders_locks');
  const rows = await db.sql`insert into public.teams (tenant_id, name, department)
    values (${acme}, 'Bulk first', 'technical'), (${acme}, 'Bulk second', 'technical'), (${globex}, 'Globex bulk', 'technical')
    returning id`;
  team = { first: rows[0].id, second: rows[1].id, globex: rows[2].id };
  // An automation rule on ticket.updated: every ticket update adds a job to the ticket's queue.
  await db.sql`insert into public.automation_rules (tenant_id, name, event, actions, active)
    values (${acme}, 'Tag team changes', 'ticket.updated', '[{"type":"add_tags","tags":["moved"]}]', true)`;
  await db.sql`insert into public.tickets (tenant_id, title, description)
    select ${acme}, 'Bulk job ticket ' || g, 'Given a team at once' from generate_series(1, ${BULK}) g`;
}, 120_000);
afterAll(() => db?.close());

/** The job adders' locks of the given tenants this transaction holds, by mode, and the
 *  other advisory locks (key and queue locks here, and the outbox's where named). */
async function jobLocks(tx: TransactionSql, tenantsOfTx: string[]) {
  const adders = await tx`select private.job_adders_lock_key(t)::text as key from pg_catalog.unnest(${tenantsOfTx}::uuid[]) t`;
  const c = await countAdvisoryLocks(tx, adders.map((a) => a.key as string));
  return { keysAndQueues: c.others, adderShare: c.share, adderExclusive: c.exclusive };
}

/** Runs `statement` as a tenant's admin, through PostgREST's path, in one committed
 *  transaction: the rows it returned and the job locks held before commit. */
const asAdmin = (tenant: string, statement: (tx: TransactionSql) => Promise<readonly unknown[]>) =>
  asTenantUser(db.sql, tenant === acme ? users.acmeAdmin : users.globexAdmin, tenant, statement, (tx) => jobLocks(tx, [tenant]));

/** The bulk tickets' jobs: assign-ticket by key, automation by queue, each checked. */
const bulkJobs = async (teamId: string) =>
  (await db.sql`
    select count(a.id)::int as assign, count(distinct a.job_key)::int as assign_keys,
           bool_and(a.payload ->> 'team_id' = ${teamId} and a.payload ->> 'ticket_id' = t.id::text
                    and a.tenant_id = ${acme} and a.attempts = 0 and a.locked_by is null) as assign_exact,
           (select count(*)::int from private.jobs au join public.tickets t2 on au.queue = 'automation:' || t2.id
            where au.task = 'automation' and t2.title like 'Bulk job ticket %' and au.tenant_id = ${acme}
              and au.payload ->> 'event' = 'ticket.updated' and au.payload -> 'changed' ? 'team_id') as automation
    from public.tickets t
    left join private.jobs a on a.job_key = 'assign-ticket:' || t.tenant_id || ':' || t.id and a.task = 'assign-ticket'
    where t.tenant_id = ${acme} and t.title like 'Bulk job ticket %'`)[0];

/** An enabled endpoint of `tenant` for ticket.updated (its plan made pro, which has webhooks). */
async function endpointFor(tenant: string, url: string) {
  await db.sql`update public.tenants set plan = 'pro' where id = ${tenant}`;
  const [endpoint] = await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types, enabled)
    values (${tenant}, ${url}, 'v1:x', '{ticket.updated}', true) returning id`;
  return endpoint as { id: string };
}

describe('bulk job adders', () => {
  it(`an admin's update of ${BULK.toLocaleString('en')} tickets' team holds at most 64 key and queue locks and two of its tenant's, and adds every job`, async () => {
    const r = await asAdmin(acme, (tx) =>
      tx`update public.tickets set team_id = ${team.first} where tenant_id = ${acme} and title like 'Bulk job ticket %' returning id`
    );
    // Two jobs a ticket: its assign-ticket job (a key) and its automation job (a queue).
    expect(r).toEqual({ rows: BULK, locks: { keysAndQueues: 64, adderShare: 1, adderExclusive: 1 } });
    expect(await bulkJobs(team.first)).toEqual({ assign: BULK, assign_keys: BULK, assign_exact: true, automation: BULK });
  }, 120_000);

  it("again, to another team, while some tickets' assign-ticket jobs run: each key keeps one pending job, queued behind the running one", async () => {
    const running = await db.sql`
      update private.jobs j set locked_by = 'bulk-runner', locked_until = now() + interval '10 minutes'
      from public.tickets t
      where j.job_key = 'assign-ticket:' || t.tenant_id || ':' || t.id and t.tenant_id = ${acme}
        and t.title in ('Bulk job ticket 1', 'Bulk job ticket 1500', 'Bulk job ticket 3000')
      returning j.id, j.job_key`;
    expect(running.length).toBe(3);
    const r = await asAdmin(acme, (tx) =>
      tx`update public.tickets set team_id = ${team.second} where tenant_id = ${acme} and title like 'Bulk job ticket %' returning id`
    );
    expect(r.locks.keysAndQueues).toBeLessThanOrEqual(64 + 2); // a running job's hand-over may add its queue's
    expect(r.locks).toMatchObject({ adderShare: 1, adderExclusive: 1 });
    expect(await bulkJobs(team.second)).toMatchObject({ assign: BULK, assign_keys: BULK, assign_exact: true });
    for (const job of running) {
      const rows = await db.sql`select id, job_key, queue, locked_by, payload ->> 'team_id' as team from private.jobs
        where id = ${job.id} or job_key = ${job.job_key} order by id`;
      expect(rows.map((j) => ({ ...j, id: undefined }))).toEqual([
        { id: undefined, job_key: null, queue: 'job:' + job.job_key, locked_by: 'bulk-runner', team: team.first },
        { id: undefined, job_key: job.job_key, queue: 'job:' + job.job_key, locked_by: null, team: team.second },
      ]);
    }
    await db.sql`update private.jobs set locked_by = null, locked_until = null where locked_by = 'bulk-runner'`;
  }, 120_000);

  it("one ticket's team: its key's lock, its queue's and its tenant's in share mode, as before: adders of other keys never wait", async () => {
    const [t] = await db.sql`insert into public.tickets (tenant_id, title, description)
      values (${acme}, 'Single job ticket', 'One of one') returning id`;
    const r = await asAdmin(acme, (tx) => tx`update public.tickets set team_id = ${team.first} where id = ${t.id} returning id`);
    expect(r).toEqual({ rows: 1, locks: { keysAndQueues: 2, adderShare: 1, adderExclusive: 0 } });
  }, 120_000);
});

describe('a bulk job adder and the others', () => {
  it("the tenant's other adders wait for it until it commits; another tenant's do not wait", async () => {
    const [lone] = await db.sql`insert into public.tickets (tenant_id, title, description)
      values (${acme}, 'Lone job ticket', 'Not in the bulk write') returning id`;
    const [other] = await db.sql`insert into public.tickets (tenant_id, title, description)
      values (${globex}, 'Globex job ticket', 'Another tenant') returning id`;
    let loneUpdate: Promise<unknown> | undefined;
    const seen = { waitedForBulk: false, doneBeforeCommit: true, globexDone: false };
    await db.sql.begin(async (tx) => {
      await tx`update public.tickets set team_id = ${team.first} where tenant_id = ${acme} and title like 'Bulk job ticket %'`;
      expect((await jobLocks(tx, [acme])).adderExclusive).toBe(1);
      const [{ pid }] = await tx`select pg_catalog.pg_backend_pid() as pid`;
      // Another ticket of the same tenant: its assign-ticket job waits for the tenant's lock.
      loneUpdate = db.sql`update public.tickets set team_id = ${team.second} where id = ${lone.id}`.execute();
      seen.waitedForBulk = await someoneWaitsForAdvisoryLock(db.sql, pid);
      // Another tenant's ticket: its job added while the bulk write is still open.
      await db.sql`update public.tickets set team_id = ${team.globex} where id = ${other.id}`;
      seen.globexDone = true;
      seen.doneBeforeCommit = await settled(loneUpdate);
    });
    await loneUpdate;
    expect(seen).toEqual({ waitedForBulk: true, doneBeforeCommit: false, globexDone: true });
    const [jobs] = await db.sql`
      select (select payload ->> 'team_id' from private.jobs where job_key = ${'assign-ticket:' + acme + ':' + lone.id}) as lone,
             (select count(*)::int from private.jobs where job_key = ${'assign-ticket:' + globex + ':' + other.id}) as globex_jobs`;
    expect(jobs).toEqual({ lone: team.second, globex_jobs: 1 });
  }, 120_000);

  it('an adder waiting for a queue lock the bulk writer took early holds no tenant lock: no deadlock when the writer escalates', async () => {
    // 20261205110000 took the tenant's share lock before the queue's: the waiting adder
    // held it, and the writer's exclusive request closed a cycle (40P01).
    let waiter: Promise<unknown> | undefined;
    await db.sql.begin(async (tx) => {
      await tx`select private.add_job('probe', ${db.sql.json({ tenant_id: acme })}, null, null, null, 'early-queue-' || g)
               from generate_series(1, 10) g`;
      const [{ pid }] = await tx`select pg_catalog.pg_backend_pid() as pid`;
      waiter = db.sql`select private.add_job('probe', ${db.sql.json({ tenant_id: acme })}, null, null, null, 'early-queue-1')`.execute();
      expect(await someoneWaitsForAdvisoryLock(db.sql, pid)).toBe(true);
      // Past the bound: the tenant's lock in exclusive mode.
      await tx`select private.add_job('probe', ${db.sql.json({ tenant_id: acme })}, null, null, null, 'late-queue-' || g)
               from generate_series(1, 100) g`;
      expect((await jobLocks(tx, [acme])).adderExclusive).toBe(1);
    });
    await waiter;
    const [n] = await db.sql`select count(*)::int as n from private.jobs where task = 'probe' and queue = 'early-queue-1'`;
    expect(n.n).toBe(2);
    await db.sql`delete from private.jobs where task = 'probe'`;
  }, 120_000);

  it('re-enabling a webhook endpoint with thousands of pending deliveries takes no job lock, with add_job\'s rules for their jobs', async () => {
    const endpoint = await endpointFor(acme, 'https://hooks.example.com/requeue');
    await db.sql`update public.tickets set priority = 'high' where tenant_id = ${acme} and title like 'Bulk job ticket %'`;
    await db.sql`update public.webhook_endpoints set enabled = false where id = ${endpoint.id}`;
    // Meanwhile most delivery jobs ran and found the endpoint off; one runs now, one died.
    const kept = await db.sql`select j.id from private.jobs j join private.webhook_deliveries d on j.job_key = 'delivery:' || d.id
      where d.endpoint_id = ${endpoint.id} order by j.id limit 2`;
    const [running, dead] = kept.map((k) => k.id as string);
    await db.sql`delete from private.jobs where task = 'deliver-webhook' and tenant_id = ${acme} and id not in ${db.sql([running, dead])}`;
    await db.sql`update private.jobs set locked_by = 'requeue-runner', locked_until = now() + interval '10 minutes', attempts = 1
      where id = ${running}`;
    await db.sql`update private.jobs set dead_at = now(), attempts = 25, last_error = 'gave up' where id = ${dead}`;
    const locks = await db.sql.begin(async (tx) => {
      await tx`update public.webhook_endpoints set enabled = true where id = ${endpoint.id}`;
      return await jobLocks(tx, [acme]);
    });
    // One lock: the tenant's outbox lock, which the re-enable takes first.
    expect(locks).toEqual({ keysAndQueues: 1, adderShare: 0, adderExclusive: 0 });
    const [q] = await db.sql`
      select count(*)::int as deliveries, count(j.id)::int as jobs,
             bool_and(j.queue = 'webhook:' || d.endpoint_id || ':' || d.ordering_key and j.tenant_id = ${acme} and j.task = 'deliver-webhook'
                      and (j.payload ->> 'delivery_id')::bigint = d.id and j.attempts = 0 and j.dead_at is null
                      and j.locked_by is null and j.max_attempts = 25) as exact
      from private.webhook_deliveries d left join private.jobs j on j.job_key = 'delivery:' || d.id
      where d.endpoint_id = ${endpoint.id} and d.status = 'pending'`;
    expect(q).toEqual({ deliveries: BULK, jobs: BULK, exact: true });
    // The running job keeps running without its key, in the queue the new job waits in,
    // superseded: failing, it ends rather than holding the new job back (20261207100000).
    const [handed] = await db.sql`select r.job_key, r.locked_by, r.superseded, r.queue = n.queue as same_queue, n.id > r.id as behind
      from private.jobs r join private.jobs n on n.job_key = 'delivery:' || (r.payload ->> 'delivery_id') where r.id = ${running}`;
    expect(handed).toEqual({ job_key: null, locked_by: 'requeue-runner', superseded: true, same_queue: true, behind: true });
    // The dead one started over, as a new job (its row gone); every new job was made in
    // delivery order, so each queue runs its deliveries in order (20261206145000).
    expect(await db.sql`select 1 from private.jobs where id = ${dead}`).toHaveLength(0);
    const [order] = await db.sql`
      select bool_and(o.job_rank = o.delivery_rank) as in_order
      from (select rank() over (order by j.id) as job_rank, rank() over (order by d.id) as delivery_rank
            from private.webhook_deliveries d join private.jobs j on j.job_key = 'delivery:' || d.id
            where d.endpoint_id = ${endpoint.id} and d.status = 'pending') o`;
    expect(order.in_order).toBe(true);
  }, 120_000);

  it("a re-enable and a writer that added a job, then wants the outbox: no deadlock", async () => {
    // 20261205110000: the re-enable held the tenant's outbox lock and asked for the job
    // adders' lock exclusively; the writer held that in share mode and asked for the
    // outbox lock: 40P01.
    const [endpoint] = await db.sql`select id from public.webhook_endpoints where url = 'https://hooks.example.com/requeue'`;
    await db.sql`update public.webhook_endpoints set enabled = false where id = ${endpoint.id}`;
    await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types, enabled)
      values (${acme}, 'https://hooks.example.com/always', 'v1:x', '{ticket.updated}', true)`;
    const [t] = await db.sql`select id from public.tickets where tenant_id = ${acme} and title = 'Bulk job ticket 7'`;
    let enable: Promise<unknown> | undefined;
    await db.sql.begin(async (tx) => {
      await tx`select private.add_job('probe', ${db.sql.json({ tenant_id: acme })}, 'probe-key', null, null, 'probe-queue')`;
      const [{ pid }] = await tx`select pg_catalog.pg_backend_pid() as pid`;
      enable = db.sql`update public.webhook_endpoints set enabled = true where id = ${endpoint.id}`.execute();
      enable.catch(() => {}); // awaited below; a failure there fails the test
      // The re-enable either finishes or waits for this transaction; then a webhook event.
      await Promise.race([enable, someoneWaitsForAdvisoryLock(db.sql, pid)]);
      await tx`update public.tickets set priority = 'urgent' where id = ${t.id}`;
    });
    await enable;
    const [ev] = await db.sql`select count(*)::int as n from private.webhook_events
      where ordering_key = ${'ticket:' + t.id} and type = 'ticket.updated' and payload -> 'data' ->> 'priority' = 'urgent'`;
    expect(ev.n).toBe(1);
    await db.sql`delete from private.jobs where task = 'probe'`;
  }, 120_000);
});

// 20261205150000_job_adders_bulk_sticky.sql, after a second review.
describe('past the bound, and a running job\'s queue', () => {
  const probe = (tenant: string, note: string) => db.sql.json({ tenant_id: tenant, note });

  it('a transaction past the bound stays past it: a later one-lock add takes no key lock a waiting adder holds (no deadlock)', async () => {
    // 20261205140000 counted nothing past the bound: 63 locks, a key and a queue (bulk),
    // then a one-lock add was under the bound again and asked for its key's lock while
    // holding the tenant's lock exclusively; the adder holding that key waited for the
    // tenant's share lock: 40P01.
    let other: Promise<unknown> | undefined;
    const seen = await db.sql.begin(async (tx) => {
      await tx`select private.add_job('probe', ${probe(acme, 'early')}, null, null, null, 'sticky-queue-' || g)
               from generate_series(1, 63) g`;
      await tx`select private.add_job('probe', ${probe(acme, 'escalates')}, 'sticky-first', null, null, 'sticky-queue-64')`;
      const escalated = (await jobLocks(tx, [acme])).adderExclusive;
      const [{ pid }] = await tx`select pg_catalog.pg_backend_pid() as pid`;
      // Another adder of the tenant: holds the key's lock, waits for the tenant's.
      other = db.sql`select private.add_job('probe', ${probe(acme, 'other')}, 'sticky-shared')`.execute();
      other.catch(() => {}); // awaited below
      const otherWaits = await someoneWaitsForAdvisoryLock(db.sql, pid);
      await tx`select private.add_job('probe', ${probe(acme, 'bulk')}, 'sticky-shared')`;
      return { escalated, otherWaits, locks: await jobLocks(tx, [acme]), otherDone: await settled(other) };
    });
    await other;
    expect(seen).toEqual({
      escalated: 1,
      otherWaits: true,
      locks: { keysAndQueues: 63, adderShare: 1, adderExclusive: 1 },
      otherDone: false,
    });
    // The other adder came second: its job replaced the bulk writer's.
    const jobs = await db.sql`select payload ->> 'note' as note from private.jobs where job_key = 'sticky-shared'`;
    expect(jobs).toEqual([{ note: 'other' }]);
    await db.sql`delete from private.jobs where task = 'probe'`;
  }, 120_000);

  it("an adder whose key's job runs takes that job's queue before the tenant's lock: no deadlock with a bulk writer holding the queue", async () => {
    // 20261205140000 handed the running job over after taking the tenant's share lock,
    // then waited for the queue's lock, which the bulk writer held from its first 64;
    // the writer's exclusive request closed a cycle (40P01).
    const [running] = await db.sql`insert into private.jobs (task, payload, tenant_id, queue, job_key, locked_by, locked_until)
      values ('probe', ${probe(acme, 'running')}, ${acme}, 'handover-queue', 'handover-key', 'probe-runner', now() + interval '10 minutes')
      returning id`;
    let adder: Promise<unknown> | undefined;
    await db.sql.begin(async (tx) => {
      await tx`select private.add_job('probe', ${probe(acme, 'bulk')}, null, null, null, 'handover-queue')`;
      const [{ pid }] = await tx`select pg_catalog.pg_backend_pid() as pid`;
      adder = db.sql`select private.add_job('probe', ${probe(acme, 'again')}, 'handover-key')`.execute();
      adder.catch(() => {}); // awaited below
      expect(await someoneWaitsForAdvisoryLock(db.sql, pid)).toBe(true);
      // Past the bound: the tenant's lock in exclusive mode.
      await tx`select private.add_job('probe', ${probe(acme, 'bulk')}, null, null, null, 'handover-late-' || g)
               from generate_series(1, 100) g`;
      expect((await jobLocks(tx, [acme])).adderExclusive).toBe(1);
      expect(await settled(adder)).toBe(false);
    });
    await adder;
    const jobs = await db.sql`select id = ${running.id} as running, job_key, queue, locked_by from private.jobs
      where id = ${running.id} or job_key = 'handover-key' order by id`;
    expect(jobs).toEqual([
      { running: true, job_key: null, queue: 'handover-queue', locked_by: 'probe-runner' },
      { running: false, job_key: 'handover-key', queue: 'handover-queue', locked_by: null },
    ]);
    await db.sql`delete from private.jobs where task = 'probe'`;
  }, 120_000);

  it("a re-enable waits for a worker's claim under way and hands the claimed job over; a pending job's later run_at starts now", async () => {
    const endpoint = await endpointFor(globex, 'https://hooks.example.com/claimed');
    const tickets = await db.sql`insert into public.tickets (tenant_id, title, description)
      select ${globex}, 'Claimed delivery ticket ' || g, 'Three deliveries' from generate_series(1, 3) g returning id`;
    await db.sql`update public.tickets set priority = 'high' where id in ${db.sql(tickets.map((t) => t.id as string))}`;
    await db.sql`update public.webhook_endpoints set enabled = false where id = ${endpoint.id}`;
    const jobs = await db.sql`select j.id, j.job_key, d.id as delivery from private.jobs j
      join private.webhook_deliveries d on j.job_key = 'delivery:' || d.id where d.endpoint_id = ${endpoint.id} order by j.id`;
    expect(jobs.length).toBe(3);
    const [claimed, later, gone] = jobs;
    await db.sql`update private.jobs set run_at = now() + interval '1 hour', attempts = 3 where id = ${later.id}`;
    await db.sql`delete from private.jobs where id = ${gone.id}`;
    let enable: Promise<unknown> | undefined;
    const seen = await db.sql.begin(async (claim) => {
      // A worker's claim, not yet committed: the job's row is locked.
      await claim`update private.jobs set locked_by = 'claiming-worker', locked_until = now() + interval '10 minutes'
                  where id = ${claimed.id}`;
      const [{ pid }] = await claim`select pg_catalog.pg_backend_pid() as pid`;
      enable = db.sql`update public.webhook_endpoints set enabled = true where id = ${endpoint.id}`.execute();
      enable.catch(() => {}); // awaited below
      return { waits: await someoneWaitsFor(db.sql, pid), done: await settled(enable) };
    });
    await enable;
    expect(seen).toEqual({ waits: true, done: false });
    const after = await db.sql`select j.job_key, j.locked_by, j.attempts, j.run_at <= now() as due, j.queue, j.id = ${claimed.id} as claimed
      from private.jobs j where j.id = ${claimed.id} or j.job_key in ${db.sql(jobs.map((j) => j.job_key as string))} order by j.id`;
    const queue = (await db.sql`select queue from private.jobs where id = ${claimed.id}`)[0].queue;
    expect(after).toEqual([
      // The claimed job runs on without its key; its delivery's new job waits behind it.
      // Every other delivery gets a new job, made in delivery order (20261206145000).
      { job_key: null, locked_by: 'claiming-worker', attempts: 0, due: true, queue, claimed: true },
      { job_key: claimed.job_key, locked_by: null, attempts: 0, due: true, queue, claimed: false },
      { job_key: later.job_key, locked_by: null, attempts: 0, due: true, queue: expect.any(String), claimed: false },
      { job_key: gone.job_key, locked_by: null, attempts: 0, due: true, queue: expect.any(String), claimed: false },
    ]);
  }, 120_000);
});
