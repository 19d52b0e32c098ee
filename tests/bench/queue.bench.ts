// Queue throughput: jobs claimed and completed per second by the provisioning worker
// with a no-op connector, with 1 and 4 concurrent workers, against a raw
// `FOR UPDATE SKIP LOCKED` claim-and-complete loop on the same table in the same run.
// Each iteration enqueues JOBS jobs (through tenant_services, as production does) and
// drains them; jobs/s = hz × JOBS.
import { afterAll, beforeAll, bench, describe } from 'vitest';
import type { Connector, ServiceName } from '../../shared/connectors/types.ts';
import { closeDb } from '../../shared/db.ts';
import { runProvisioningWorker } from '../../shared/queue.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';

const JOBS = 200;
let db: TestDatabase;
const noop = (service: ServiceName): Connector => ({
  service,
  ensure: () => Promise.resolve({}),
  suspend: () => Promise.resolve(),
  resume: () => Promise.resolve(),
  remove: () => Promise.resolve(),
  check: () => Promise.resolve(true),
});
const connectors = { botpress: noop('botpress') };

beforeAll(async () => {
  db = await freshDatabase('bench_queue');
  process.env.SUPABASE_DB_URL = db.url;
  process.env.DB_POOL_MAX = '8';
  process.env.PROVISIONING_ENCRYPTION_KEY = Buffer.alloc(32, 7).toString('base64');
  await db.sql`insert into public.tenants (name, slug) select 'Queue ' || g, 'queue-' || g from generate_series(1, ${JOBS}) g`;
});
afterAll(async () => {
  await closeDb();
  await db.close();
});

/** JOBS fresh jobs: each queue tenant's botpress service flips its desired state. */
async function enqueue() {
  await db.sql`
    insert into public.tenant_services (tenant_id, service)
    select id, 'botpress' from public.tenants where slug like 'queue-%'
    on conflict (tenant_id, service) do update
      set desired_state = case when tenant_services.desired_state = 'active' then 'suspended' else 'active' end`;
}

async function rawLoop() {
  for (;;) {
    const claimed = await db.sql`
      update private.provisioning_jobs j set status = 'running', locked_by = 'raw', locked_until = now() + interval '60 s',
        attempts = j.attempts + 1
      where j.id in (select id from private.provisioning_jobs where status = 'queued' and run_at <= now()
                     order by run_at, id limit 5 for update skip locked)
      returning j.id`;
    if (!claimed.length) return;
    for (const job of claimed) await db.sql`update private.provisioning_jobs set status = 'done', locked_by = null where id = ${job.id}`;
  }
}

const opts = { time: 4000, warmupTime: 500 };

describe(`queue: ${JOBS} jobs per iteration, no-op connector (jobs/s = hz × ${JOBS})`, () => {
  bench('raw SKIP LOCKED loop, 1 worker — baseline', async () => {
    await enqueue();
    await rawLoop();
  }, opts);

  bench('raw SKIP LOCKED loop, 4 workers', async () => {
    await enqueue();
    await Promise.all([rawLoop(), rawLoop(), rawLoop(), rawLoop()]);
  }, opts);

  bench('provisioning worker, 1 worker', async () => {
    await enqueue();
    await runProvisioningWorker({ connectors, batch: 5, budgetMs: 60_000 });
  }, opts);

  bench('provisioning worker, 4 workers', async () => {
    await enqueue();
    await Promise.all(Array.from({ length: 4 }, () => runProvisioningWorker({ connectors, batch: 5, budgetMs: 60_000 })));
  }, opts);
});
