// GET /jobs/metrics (issue 15, observability): the queue as an operator watches it, per
// task and in all, from a queue in a known state; machines only.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { app as jobs } from '../../functions/jobs/app.ts';
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
const serviceKey = `sb_secret_${randomBytes(16).toString('hex')}`;
beforeAll(async () => {
  db = await freshDatabase('job_metrics');
  auth = await configureAuth(db.url, { SUPABASE_SERVICE_ROLE_KEY: serviceKey });
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

it('counts due, scheduled, running, retrying and dead jobs per task, and the oldest due wait', async () => {
  await db.sql`delete from private.jobs`;
  await db.sql`
    insert into private.jobs (task, run_at, attempts, last_error, locked_by, locked_until, dead_at) values
      ('metric-a', now() - interval '120 seconds', 0, null, null, null, null),
      ('metric-a', now() - interval '10 seconds', 2, 'partner said 503', null, null, null),
      ('metric-a', now() + interval '1 hour', 1, 'backing off', null, null, null),
      -- In its first attempt (the claim counted it): running, not retrying.
      ('metric-a', now() - interval '1 second', 1, null, 'worker-1', now() + interval '60 seconds', null),
      ('metric-b', now() - interval '3 days', 25, 'gave up', null, null, now() - interval '2 days'),
      ('metric-b', now() - interval '1 hour', 3, 'permanent', null, null, now() - interval '5 minutes')`;
  const r = await call(jobs, 'GET', '/jobs/metrics', { headers: { authorization: `Bearer ${serviceKey}` } });
  expect(r.status).toBe(200);
  expect(r.body).toMatchObject({
    due: 2,
    scheduled: 1,
    running: 1,
    retrying: 2,
    dead: 2,
    tasks: {
      'metric-a': { due: 2, scheduled: 1, running: 1, retrying: 2, dead: 0, dead_last_24h: 0 },
      'metric-b': { due: 0, scheduled: 0, running: 0, retrying: 0, dead: 2, dead_last_24h: 1, oldest_due_age_seconds: null },
    },
  });
  // The oldest due job's wait when measured (the due job inserted 120 s in the past).
  const [{ age }] = await db.sql`
    select extract(epoch from ${r.body.measured_at}::timestamptz - min(run_at))::float8 as age
    from private.jobs where task = 'metric-a' and locked_by is null and attempts = 0`;
  expect(Math.abs(r.body.oldest_due_age_seconds - age)).toBeLessThanOrEqual(1);
  expect(r.body.tasks['metric-a'].oldest_due_age_seconds).toBe(r.body.oldest_due_age_seconds);
  expect(r.body.measured_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

it('a job behind the head of its named queue is queued_behind, not due: a head waiting does not age the queue', async () => {
  await db.sql`delete from private.jobs`;
  // A head deferred for five minutes (a suspended tenant's reply) and two behind it, due
  // long ago by their run_at; one due job of another queue.
  await db.sql`
    insert into private.jobs (task, queue, run_at) values
      ('metric-q', 'conv:1', now() + interval '5 minutes'),
      ('metric-q', 'conv:1', now() - interval '1 hour'),
      ('metric-q', 'conv:1', now() - interval '50 minutes'),
      ('metric-q', 'conv:2', now() - interval '30 seconds')`;
  const r = await call(jobs, 'GET', '/jobs/metrics', { headers: { authorization: `Bearer ${serviceKey}` } });
  expect(r.body).toMatchObject({ due: 1, queued_behind: 2, scheduled: 1, tasks: { 'metric-q': { due: 1, queued_behind: 2, scheduled: 1 } } });
  expect(r.body.oldest_due_age_seconds).toBeGreaterThanOrEqual(29);
  expect(r.body.oldest_due_age_seconds).toBeLessThan(600);
  // What the claim takes agrees: the other queue's job, not the jobs behind the head.
  const claimed = await db.sql`select queue from private.claim_due_jobs('metric-worker', 10, 60, ${['metric-q']}::text[])`;
  expect(claimed.map((c) => c.queue)).toEqual(['conv:2']);
});

it("a job that died in the last day counts there once revived (a schedule's job is back at its next tick)", async () => {
  await db.sql`delete from private.jobs`;
  await db.sql`insert into private.jobs (task, job_key, run_at, attempts, last_error, dead_at) values
    ('metric-sweep', 'schedule:metric-sweep', now(), 25, 'sweep failed', now() - interval '5 minutes'),
    ('metric-sweep', 'schedule:metric-old', now(), 25, 'long ago', now() - interval '2 days')`;
  // Revived, as add_scheduled_jobs does: no longer dead, its death still counted.
  await db.sql`update private.jobs set dead_at = null, attempts = 0 where task = 'metric-sweep'`;
  const r = await call(jobs, 'GET', '/jobs/metrics', { headers: { authorization: `Bearer ${serviceKey}` } });
  expect(r.body.tasks['metric-sweep']).toMatchObject({ dead: 0, dead_last_24h: 1 });
  // And it dies again: dead now, counted once.
  await db.sql`update private.jobs set dead_at = now() where job_key = 'schedule:metric-sweep'`;
  const again = await call(jobs, 'GET', '/jobs/metrics', { headers: { authorization: `Bearer ${serviceKey}` } });
  expect(again.body.tasks['metric-sweep']).toMatchObject({ dead: 1, dead_last_24h: 1 });
});

it('an empty queue is zeros and no wait', async () => {
  await db.sql`delete from private.jobs`;
  const r = await call(jobs, 'GET', '/jobs/metrics', { headers: { authorization: `Bearer ${serviceKey}` } });
  expect(r.body).toMatchObject({ due: 0, scheduled: 0, running: 0, retrying: 0, dead: 0, oldest_due_age_seconds: null, tasks: {} });
});

it('answers machines only: no credential, a user token, a wrong key are 401', async () => {
  const userToken = await supabaseToken(users.super, { tenantId: tenants.acme.id });
  const attempts: Record<string, string>[] = [{}, { authorization: `Bearer ${userToken}` }, { authorization: `Bearer ${serviceKey}x` }];
  for (const headers of attempts) {
    const r = await call(jobs, 'GET', '/jobs/metrics', { headers });
    expect([r.status, errorCode(r)]).toEqual([401, 'service_credential_required']);
  }
});

it('is not executable by the API roles (only the service role and the functions)', async () => {
  const [row] = await db.sql`select
    has_function_privilege('anon', 'private.job_metrics()', 'execute') as anon,
    has_function_privilege('authenticated', 'private.job_metrics()', 'execute') as authenticated`;
  expect(row).toEqual({ anon: false, authenticated: false });
});
