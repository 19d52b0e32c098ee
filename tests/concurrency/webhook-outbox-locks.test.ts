// The outbox's locks are bounded per transaction (issue 14;
// 20261205100000_webhook_outbox_bounded_locks.sql). Every ticket event took its key's
// advisory lock and add_job's two, held to commit, in a lock table the whole server
// shares: an agent's insert of 500 tickets through PostgREST held 1,500, and some
// 20,000 in one request would fail with "out of shared memory", with every other
// tenant's transactions that needed a lock meanwhile. Now a transaction takes at most
// 64 key locks; past them it writes under its tenant's outbox lock in exclusive mode,
// which the tenant's other emitters (and an endpoint being re-enabled) wait for, and no
// other tenant does. Each key's events stay numbered in commit order.
import type { TransactionSql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asTenantUser, countAdvisoryLocks, settled, someoneWaitsForAdvisoryLock } from '../helpers/advisory-locks.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { tenants, users } from '../helpers/seed.ts';

let db: TestDatabase;
const acme = tenants.acme.id;
const globex = tenants.globex.id;
const BULK = 3_000;
let endpoint: { acme: string; acmeOff: string; globex: string };

beforeAll(async () => {
  db = await freshDatabase('conc_outbox_locks');
  await db.sql`update public.tenants set plan = 'pro'`;
  const rows = await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types, enabled)
    values (${acme}, 'https://hooks.example.com/all', 'v1:x', '{}', true),
           (${acme}, 'https://hooks.example.com/later', 'v1:x', '{}', false),
           (${globex}, 'https://hooks.example.com/all', 'v1:x', '{}', true)
    returning id`;
  endpoint = { acme: rows[0].id, acmeOff: rows[1].id, globex: rows[2].id };
}, 120_000);
afterAll(() => db?.close());

/** The outbox's locks this transaction holds: its key locks (all other advisory locks
 *  here) and its tenants' outbox locks, by mode. */
async function outboxLocks(tx: TransactionSql, tenantsOfTx: string[]) {
  const tenantKeys = await tx`select private.webhook_tenant_lock_key(t)::text as key from pg_catalog.unnest(${tenantsOfTx}::uuid[]) t`;
  const c = await countAdvisoryLocks(tx, tenantKeys.map((k) => k.key as string));
  return { keys: c.others, tenantShare: c.share, tenantExclusive: c.exclusive };
}

/** Runs `statement` as acme's agent, through PostgREST's path, in one committed
 *  transaction: the rows it returned and the outbox locks held before commit. */
const asAgent = (statement: (tx: TransactionSql) => Promise<readonly unknown[]>) =>
  asTenantUser(db.sql, users.acmeAgent, acme, statement, (tx) => outboxLocks(tx, [acme]));

const events = async (type: string, titlePrefix: string) =>
  (await db.sql`
    select count(*)::int as n, count(distinct ev.ordering_key)::int as keys,
           bool_and(ev.payload ->> 'type' = ${type} and ev.payload -> 'data' ->> 'id' = t.id::text
                    and ev.payload -> 'data' ->> 'title' = t.title) as exact,
           count(d.id)::int as deliveries, count(j.id)::int as jobs,
           bool_and(d.endpoint_id = ${endpoint.acme} and j.task = 'deliver-webhook'
                    and j.queue = 'webhook:' || d.endpoint_id || ':' || d.ordering_key
                    and (j.payload ->> 'delivery_id')::bigint = d.id and j.tenant_id = ${acme}
                    and j.attempts = 0 and j.max_attempts = 25) as jobs_exact
    from private.webhook_events ev
    join public.tickets t on t.tenant_id = ev.tenant_id and ev.ordering_key = 'ticket:' || t.id
    left join private.webhook_deliveries d on d.event_id = ev.id
    left join private.jobs j on j.job_key = 'delivery:' || d.id
    where ev.tenant_id = ${acme} and ev.type = ${type} and t.title like ${titlePrefix + '%'}`)[0];

describe('bulk writes of tickets', () => {
  it(`an agent's insert of ${BULK.toLocaleString('en')} tickets holds at most 64 key locks and its tenant's, and writes every ticket.created`, async () => {
    const r = await asAgent((tx) =>
      tx`insert into public.tickets (tenant_id, title, description)
         select ${acme}, 'Bulk ticket ' || g, 'Written at once' from generate_series(1, ${BULK}) g returning id`
    );
    expect(r).toEqual({ rows: BULK, locks: { keys: 64, tenantShare: 1, tenantExclusive: 1 } });
    expect(await events('ticket.created', 'Bulk ticket ')).toEqual({
      n: BULK,
      keys: BULK,
      exact: true,
      deliveries: BULK,
      jobs: BULK,
      jobs_exact: true,
    });
  }, 120_000);

  it('updating them all in one statement: the same bound, and each ticket.status_changed after its ticket.created', async () => {
    const r = await asAgent((tx) =>
      tx`update public.tickets set status = 'pending' where tenant_id = ${acme} and title like 'Bulk ticket %' returning id`
    );
    expect(r).toEqual({ rows: BULK, locks: { keys: 64, tenantShare: 1, tenantExclusive: 1 } });
    expect(await events('ticket.status_changed', 'Bulk ticket ')).toMatchObject({ n: BULK, keys: BULK, exact: true, jobs: BULK, jobs_exact: true });
    const [order] = await db.sql`
      select count(*)::int as n from private.webhook_events c join private.webhook_events s on s.ordering_key = c.ordering_key
      where c.tenant_id = ${acme} and c.type = 'ticket.created' and s.type = 'ticket.status_changed' and s.id > c.id`;
    expect(order.n).toBe(BULK);
  }, 120_000);

  it('a few tickets take one lock each and their tenant\'s in share mode, as before: emitters of other tickets never wait', async () => {
    const r = await asAgent((tx) =>
      tx`insert into public.tickets (tenant_id, title, description)
         select ${acme}, 'Small ticket ' || g, 'One of three' from generate_series(1, 3) g returning id`
    );
    expect(r).toEqual({ rows: 3, locks: { keys: 3, tenantShare: 1, tenantExclusive: 0 } });
  }, 120_000);
});

describe('a bulk write and the other writers', () => {
  it("the tenant's other emitters wait for it and are numbered after it; another tenant's do not wait", async () => {
    const [lone] = await db.sql`insert into public.tickets (tenant_id, title, description)
      values (${acme}, 'Lone ticket', 'Not in the bulk write') returning id`;
    const [other] = await db.sql`insert into public.tickets (tenant_id, title, description)
      values (${globex}, 'Globex ticket', 'Another tenant') returning id`;
    let loneUpdate: Promise<unknown> | undefined;
    const seen = { waitedForBulk: false, doneBeforeCommit: true, globexDone: false };
    await db.sql.begin(async (tx) => {
      await tx`update public.tickets set priority = 'high' where tenant_id = ${acme} and title like 'Bulk ticket %'`;
      expect((await outboxLocks(tx, [acme])).tenantExclusive).toBe(1);
      const [{ pid }] = await tx`select pg_catalog.pg_backend_pid() as pid`;
      // Another ticket of the same tenant: waits for the tenant's outbox lock.
      loneUpdate = db.sql`update public.tickets set priority = 'urgent' where id = ${lone.id}`.execute();
      seen.waitedForBulk = await someoneWaitsForAdvisoryLock(db.sql, pid);
      // Another tenant's ticket: written while the bulk write is still open.
      await db.sql`update public.tickets set priority = 'urgent' where id = ${other.id}`;
      seen.globexDone = true;
      seen.doneBeforeCommit = await settled(loneUpdate);
    });
    await loneUpdate;
    expect(seen).toEqual({ waitedForBulk: true, doneBeforeCommit: false, globexDone: true });
    const [ids] = await db.sql`
      select (select max(id) from private.webhook_events where tenant_id = ${acme} and type = 'ticket.updated'
                and ordering_key <> ${'ticket:' + lone.id}) as bulk_last,
             (select max(id) from private.webhook_events where ordering_key = ${'ticket:' + lone.id} and type = 'ticket.updated') as lone,
             (select count(*)::int from private.webhook_events where tenant_id = ${acme} and type = 'ticket.updated'
                and ordering_key <> ${'ticket:' + lone.id}) as bulk_n`;
    expect(ids.bulk_n).toBe(BULK);
    expect(BigInt(ids.lone)).toBeGreaterThan(BigInt(ids.bulk_last));
  }, 120_000);

  it("re-enabling an endpoint waits for the tenant's emitters under way, then re-queues every pending delivery", async () => {
    const [t] = await db.sql`insert into public.tickets (tenant_id, title, description)
      values (${acme}, 'Before the endpoint', 'Written while the endpoint is off') returning id`;
    // The disabled endpoint has no delivery yet; give it one pending from before it was off.
    const [ev] = await db.sql`select id from private.webhook_events where ordering_key = ${'ticket:' + t.id}`;
    const [pending] = await db.sql`insert into private.webhook_deliveries (tenant_id, endpoint_id, event_id, ordering_key)
      values (${acme}, ${endpoint.acmeOff}, ${ev.id}, ${'ticket:' + t.id}) returning id`;
    let enable: Promise<unknown> | undefined;
    const seen = { waitedForEmitter: false, doneBeforeCommit: true };
    await db.sql.begin(async (tx) => {
      await tx`update public.tickets set priority = 'low' where id = ${t.id}`;
      expect(await outboxLocks(tx, [acme])).toEqual({ keys: 1, tenantShare: 1, tenantExclusive: 0 });
      const [{ pid }] = await tx`select pg_catalog.pg_backend_pid() as pid`;
      enable = db.sql`update public.webhook_endpoints set enabled = true where id = ${endpoint.acmeOff}`.execute();
      seen.waitedForEmitter = await someoneWaitsForAdvisoryLock(db.sql, pid);
      seen.doneBeforeCommit = await settled(enable);
    });
    await enable;
    expect(seen).toEqual({ waitedForEmitter: true, doneBeforeCommit: false });
    const jobs = await db.sql`select j.queue from private.jobs j where j.job_key = ${'delivery:' + pending.id}`;
    expect(jobs).toEqual([{ queue: `webhook:${endpoint.acmeOff}:ticket:${t.id}` }]);
  }, 120_000);
});
