// The job queue's SQL (20261126100350_jobs.sql): job keys (replace, preserve_run_at, a
// running job's key), the backoff's bounds against the database's own clock, dead after
// max_attempts or at once, an operator's retry, a late worker refused, a dead worker's
// lease taken over, dead jobs pruned after 30 days, and 200 concurrent add_job calls
// with one key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { db as pool } from '../../shared/db.ts';
import { runJobs } from '../../shared/jobs/runner.ts';
import { closeConcurrencyDb, type ConcurrencyDb, concurrencyDatabase, deadlocks, WRITERS } from '../concurrency/harness.ts';
import { tenants } from '../helpers/seed.ts';

let db: ConcurrencyDb;
beforeAll(async () => {
  db = await concurrencyDatabase('jobs_queue');
});
afterAll(async () => {
  await closeConcurrencyDb(db);
});

let n = 0;
/** A task name of this test's own, so claims see only its jobs. */
const freshTask = () => `t-${++n}`;
const add = async (task: string, opts: { key?: string; runAt?: string; max?: number; queue?: string; mode?: string; payload?: Record<string, number> } = {}) =>
  (await db.sql`select * from private.add_job(${task}, ${db.sql.json(opts.payload ?? {})}, ${opts.key ?? null},
    ${opts.runAt ?? null}, ${opts.max ?? null}, ${opts.queue ?? null}, ${opts.mode ?? 'replace'})`)[0];
const claim = (worker: string, task: string, limit = 10, lease = 60) =>
  db.sql`select * from private.claim_due_jobs(${worker}, ${limit}, ${lease}, ${[task]})`;
const job = async (id: number) => (await db.sql`select * from private.jobs where id = ${id}`)[0];

describe('job keys', () => {
  it('replace: one job per key; a pending job takes the new payload and run time and starts over', async () => {
    const task = freshTask();
    const first = await add(task, { key: 'k-replace', payload: { v: 1 }, runAt: '2999-01-01T00:00:00Z' });
    await db.sql`update private.jobs set attempts = 3, last_error = 'earlier' where id = ${first.id}`;
    const second = await add(task, { key: 'k-replace', payload: { v: 2 } });
    expect(second.id).toBe(first.id);
    const row = await job(first.id);
    expect(row).toMatchObject({ payload: { v: 2 }, attempts: 0, last_error: null });
    expect(row.run_at.getTime()).toBeLessThan(Date.parse('2999-01-01T00:00:00Z'));
    expect((await db.sql`select count(*)::int as n from private.jobs where job_key = 'k-replace'`)[0].n).toBe(1);
  });

  it('preserve_run_at: the payload changes, the run time stays', async () => {
    const task = freshTask();
    const first = await add(task, { key: 'k-preserve', payload: { v: 1 }, runAt: '2999-01-01T00:00:00Z' });
    await add(task, { key: 'k-preserve', payload: { v: 2 }, mode: 'preserve_run_at' });
    const row = await job(first.id);
    expect(row.payload).toEqual({ v: 2 });
    expect(row.run_at.toISOString()).toBe('2999-01-01T00:00:00.000Z');
    await expect(add(task, { key: 'k-preserve', mode: 'unsafe_dedupe' })).rejects.toMatchObject({ code: '22023' });
  });

  it('a running job keeps running without its key; the new one is queued after it', async () => {
    const task = freshTask();
    const running = await add(task, { key: 'k-running', payload: { v: 1 } });
    expect((await claim('w1', task)).map((j) => j.id)).toEqual([running.id]);
    const next = await add(task, { key: 'k-running', payload: { v: 2 } });
    expect(next.id).not.toBe(running.id);
    expect(await job(running.id)).toMatchObject({ job_key: null, locked_by: 'w1', queue: 'job:k-running' });
    expect(next).toMatchObject({ job_key: 'k-running', queue: 'job:k-running', payload: { v: 2 } });
    // Not while the first runs, even for another worker; at once after it completes.
    expect(await claim('w2', task)).toEqual([]);
    expect((await db.sql`select id from private.complete_jobs('w1', ${[running.id]})`).map((r) => r.id)).toEqual([running.id]);
    expect((await claim('w2', task)).map((j) => j.id)).toEqual([next.id]);
  });

  it('the running job\'s successor stays behind it when the key is added again without a queue (a schedule\'s next tick)', async () => {
    const task = freshTask();
    const running = await add(task, { key: 'k-ticks' });
    await claim('w1', task);
    const next = await add(task, { key: 'k-ticks', mode: 'preserve_run_at' });
    expect(next.queue).toBe('job:k-ticks');
    const again = await add(task, { key: 'k-ticks', mode: 'preserve_run_at', payload: { v: 3 } });
    expect(again).toMatchObject({ id: next.id, queue: 'job:k-ticks', payload: { v: 3 } });
    // Still not beside the running one.
    expect(await claim('w2', task)).toEqual([]);
    await db.sql`select private.complete_jobs('w1', ${[running.id]})`;
    expect((await claim('w2', task)).map((j) => j.id)).toEqual([next.id]);
  });

  it('a job that gave its key away ends when it fails (superseded), whatever its attempts; its successor keeps its time', async () => {
    const task = freshTask();
    const running = await add(task, { key: 'k-superseded', max: 1 });
    await claim('w1', task);
    expect((await db.sql`select private.job_superseded(${running.id}) as s`)[0].s).toBe(false);
    const next = await add(task, { key: 'k-superseded', payload: { v: 2 } });
    expect((await db.sql`select private.job_superseded(${running.id}) as s`)[0].s).toBe(true);
    expect((await db.sql`select private.fail_job('w1', ${running.id}, 'boom') as o`)[0].o).toBe('superseded');
    expect(await job(running.id)).toBeUndefined();
    expect(await job(next.id)).toMatchObject({ attempts: 0, dead_at: null, last_error: null });
    expect((await claim('w2', task)).map((j) => j.id)).toEqual([next.id]);
    // A job that kept its key fails as before.
    expect((await db.sql`select private.fail_job('w2', ${next.id}, 'boom') as o`)[0].o).toBe('retry');
  });

  it('a dead job with the key comes back to life, attempts reset', async () => {
    const task = freshTask();
    const j = await add(task, { key: 'k-dead', max: 1 });
    await claim('w', task);
    expect((await db.sql`select private.fail_job('w', ${j.id}, 'boom') as o`)[0].o).toBe('dead');
    const again = await add(task, { key: 'k-dead' });
    expect(again).toMatchObject({ id: j.id, attempts: 0, dead_at: null, last_error: null });
    expect((await claim('w', task)).map((c) => c.id)).toEqual([j.id]);
  });
});

describe('backoff', () => {
  /** Claims a job whose attempts so far are `attempts - 1`, fails it, and returns the
   *  delay the queue chose, run_at − now(), in the same transaction (the database's clock). */
  const delayAfter = async (attempts: number, retryAfter: number | null = null) => {
    const task = freshTask();
    const j = await add(task, { max: 100 });
    await db.sql`update private.jobs set attempts = ${attempts - 1} where id = ${j.id}`;
    return await db.sql.begin(async (tx) => {
      const [c] = await tx`select * from private.claim_due_jobs('w', 1, 60, ${[task]})`;
      expect(c.attempts).toBe(attempts);
      const [{ o }] = await tx`select private.fail_job('w', ${j.id}, 'try later', ${retryAfter}) as o`;
      expect(o).toBe('retry');
      const [{ delay }] = await tx`select extract(epoch from run_at - now())::float8 as delay from private.jobs where id = ${j.id}`;
      return delay as number;
    });
  };

  it('is 2^attempts seconds, jittered to 75–125 %, capped at an hour', async () => {
    const seen: number[] = [];
    for (let attempts = 1; attempts <= 11; attempts++) {
      const d = await delayAfter(attempts);
      const base = 2 ** attempts;
      expect(d, `attempt ${attempts}`).toBeGreaterThanOrEqual(0.75 * base);
      expect(d, `attempt ${attempts}`).toBeLessThan(1.25 * base);
      seen.push(d / base);
    }
    for (const attempts of [12, 13, 20, 25, 60]) {
      const d = await delayAfter(attempts);
      expect(d, `attempt ${attempts}`).toBeLessThanOrEqual(3600);
      expect(d, `attempt ${attempts}`).toBeGreaterThanOrEqual(Math.min(3600, 0.75 * 2 ** Math.min(attempts, 30)));
    }
    // Jittered: the factors differ.
    expect(new Set(seen.map((f) => f.toFixed(6))).size).toBeGreaterThan(5);
  });

  it('is never sooner than the Retry-After reported, and not later than the backoff when that is longer', async () => {
    expect(await delayAfter(1, 500)).toBe(500);
    expect(await delayAfter(2, 7200)).toBe(7200); // beyond the cap: the partner's word wins
    const d = await delayAfter(10, 5); // backoff (≥ 768 s) longer than Retry-After
    expect(d).toBeGreaterThanOrEqual(768);
  });
});

describe('failure and retry', () => {
  it(`is dead after max_attempts (25 by default), and at once when permanent`, async () => {
    const task = freshTask();
    const j = await add(task, { max: 3 });
    expect((await add(freshTask())).max_attempts).toBe(25);
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) {
      await db.sql`update private.jobs set run_at = now() where id = ${j.id}`;
      const claimed = await claim('w', task, 1);
      expect(claimed.map((c) => c.id)).toContain(j.id);
      outcomes.push((await db.sql`select private.fail_job('w', ${j.id}, ${`failure ${i + 1}`}) as o`)[0].o);
    }
    expect(outcomes).toEqual(['retry', 'retry', 'dead']);
    expect(await job(j.id)).toMatchObject({ attempts: 3, locked_by: null, last_error: 'failure 3', dead_at: expect.any(Date) });
    await db.sql`update private.jobs set run_at = now() where id = ${j.id}`;
    expect(await claim('w', task)).toEqual([]);

    const p = await add(task, { max: 25 });
    await claim('w', task);
    expect((await db.sql`select private.fail_job('w', ${p.id}, '401 bad token', null, true) as o`)[0].o).toBe('dead');
    expect(await job(p.id)).toMatchObject({ attempts: 1, dead_at: expect.any(Date) });
  });

  it("an operator's retry runs a dead or backing-off job now, with a fresh count; never a running one", async () => {
    const task = freshTask();
    const j = await add(task, { max: 1 });
    await claim('w', task);
    await db.sql`select private.fail_job('w', ${j.id}, 'gave up')`;
    const retried = (await db.sql`select * from private.retry_job(${j.id})`)[0];
    expect(retried).toMatchObject({ id: j.id, attempts: 0, dead_at: null, last_error: null });
    expect((await claim('w', task)).map((c) => c.id)).toEqual([j.id]);
    await expect(db.sql`select private.retry_job(${j.id})`).rejects.toMatchObject({ code: 'PT409' });
    // API roles cannot call it (nor any queue function).
    await expect(db.sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true)`;
      await tx`select private.retry_job(${j.id})`;
    })).rejects.toMatchObject({ code: '42501' });
  });
});

describe("an operator's retry in a named queue", () => {
  it('a dead job with live jobs after it in its queue goes to the back (a new id): it never runs beside, or before, the ones that went on', async () => {
    const task = freshTask();
    const queue = `retry-q-${task}`;
    const [a, b] = [await add(task, { queue, max: 1 }), await add(task, { queue })];
    expect((await claim('w', task)).map((c) => c.id)).toEqual([a.id]);
    await db.sql`select private.fail_job('w', ${a.id}, 'gave up')`;
    // B went on (a dead job holds no queue) and runs now.
    expect((await claim('w', task)).map((c) => c.id)).toEqual([b.id]);
    const retried = (await db.sql`select * from private.retry_job(${a.id})`)[0];
    expect(Number(retried.id)).toBeGreaterThan(Number(b.id));
    expect(retried).toMatchObject({ task, queue, attempts: 0, dead_at: null, last_error: null, hook_holds: 0 });
    expect(await job(a.id)).toBeUndefined();
    // Not beside B, which holds the queue; after it, A runs.
    expect(await claim('w2', task)).toEqual([]);
    await db.sql`select private.complete_jobs('w', ${[b.id]}::bigint[])`;
    expect((await claim('w2', task)).map((c) => c.id)).toEqual([retried.id]);
    // A head backing off (failed, not dead) is still its queue's head: retried, it keeps
    // its id and its place, the jobs behind it waiting.
    const head = await add(task, { queue: `${queue}-head` });
    const behind = await add(task, { queue: `${queue}-head` });
    await claim('w4', task);
    await db.sql`select private.fail_job('w4', ${head.id}, 'partner said 500')`;
    expect((await job(head.id)).dead_at).toBeNull();
    expect((await db.sql`select * from private.retry_job(${head.id})`)[0].id).toBe(head.id);
    expect((await claim('w5', task)).map((c) => c.id)).toEqual([head.id]);
    expect(Number(behind.id)).toBeGreaterThan(Number(head.id));
    // Alone in its queue, a dead job keeps its id, as before.
    const lone = await add(task, { queue: `${queue}-lone`, max: 1 });
    await claim('w3', task);
    await db.sql`select private.fail_job('w3', ${lone.id}, 'gave up')`;
    expect((await db.sql`select * from private.retry_job(${lone.id})`)[0].id).toBe(lone.id);
  });
});

describe('retention of dead jobs', () => {
  it('the daily prune task drops dead jobs 30 days after they died; younger dead jobs and live ones stay', async () => {
    const task = freshTask();
    const [old, recent, pending, backingOff] = [await add(task), await add(task), await add(task), await add(task)];
    await db.sql`update private.jobs set dead_at = now() - interval '31 days', last_error = 'gave up long ago' where id = ${old.id}`;
    await db.sql`update private.jobs set dead_at = now() - interval '29 days', last_error = 'gave up' where id = ${recent.id}`;
    // A live job that has waited long is not dead: age alone prunes nothing.
    await db.sql`update private.jobs set created_at = now() - interval '90 days' where id = ${pending.id}`;
    await db.sql`update private.jobs set attempts = 20, run_at = now() + interval '1 hour', created_at = now() - interval '90 days'
      where id = ${backingOff.id}`;
    await db.sql`select private.add_job('prune')`;
    const report = await runJobs({ tasks: ['prune'] });
    expect(report.tasks.prune).toMatchObject({ completed: 1, dead_jobs: 1 });
    const left = (await db.sql`select id from private.jobs where task = ${task} order by id`).map((r) => r.id);
    expect(left).toEqual([recent.id, pending.id, backingOff.id]);
  });

  it('keeps them at least a day, whatever the caller asks; API roles cannot prune', async () => {
    const task = freshTask();
    const [hours, days] = [await add(task), await add(task)];
    await db.sql`update private.jobs set dead_at = now() - interval '5 hours' where id = ${hours.id}`;
    await db.sql`update private.jobs set dead_at = now() - interval '2 days' where id = ${days.id}`;
    // (The counts include the earlier test's dead jobs: look at this test's own.)
    expect((await db.sql`select private.prune_dead_jobs(interval '1 hour') as n`)[0].n).toBeGreaterThanOrEqual(1);
    expect((await db.sql`select id from private.jobs where task = ${task}`).map((r) => r.id)).toEqual([hours.id]);
    await db.sql`select private.prune_dead_jobs(null)`;
    expect((await db.sql`select id from private.jobs where task = ${task}`).map((r) => r.id)).toEqual([hours.id]);
    // An erasure's dead jobs are the only record of what it left undone (an object not
    // deleted, a trail not redacted): kept for an operator, however old.
    const kept = await db.sql`insert into private.jobs (task, payload, dead_at)
      values ('storage-delete', '{"bucket": "call-recordings", "object": "kept-by-test"}', now() - interval '400 days'),
             ('voice-erasure-trail', '{"kept_by_test": true}', now() - interval '400 days')
      returning id`;
    await db.sql`select private.prune_dead_jobs()`;
    expect(await db.sql`select id from private.jobs where id in ${db.sql(kept.map((k) => k.id))}`).toHaveLength(2);
    await db.sql`delete from private.jobs where id in ${db.sql(kept.map((k) => k.id))}`;
    await expect(db.sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true)`;
      await tx`select private.prune_dead_jobs()`;
    })).rejects.toMatchObject({ code: '42501' });
  });
});

describe('attachment checks the prune queues', () => {
  it('are queued 1,000 at a time, oldest first, through an index of their own: a backlog takes more runs, never one unbounded statement', async () => {
    const acme = tenants.acme.id;
    const [t] = await db.sql`insert into public.tickets (tenant_id, title) values (${acme}, 'Abandoned uploads') returning id`;
    const made = await db.sql`insert into public.attachments (tenant_id, ticket_id, file_name, size_bytes, path, created_at)
      select ${acme}, ${t.id}, 'f' || g || '.txt', 1, 'set-by-trigger', now() - interval '3 hours' - make_interval(secs => g)
      from generate_series(1, 1001) g returning id`;
    const ids = made.map((a) => a.id as string);
    // Checks queued at registration (if any) gone: as for uploads registered before them.
    await db.sql`delete from private.jobs where task = 'attachment-upload-check' and payload ->> 'attachment_id' in ${db.sql(ids)}`;
    const queued = async () =>
      (await db.sql`select count(*)::int as n from private.jobs
        where task = 'attachment-upload-check' and payload ->> 'attachment_id' in ${db.sql(ids)}`)[0].n as number;
    expect((await db.sql`select private.queue_missing_attachment_checks() as n`)[0].n).toBe(1000);
    expect(await queued()).toBe(1000);
    // The newest was left for the next run; then nothing is missing.
    const [{ newest }] = await db.sql`select id as newest from public.attachments where id in ${db.sql(ids)} order by created_at desc limit 1`;
    expect((await db.sql`select 1 from private.jobs where task = 'attachment-upload-check' and payload ->> 'attachment_id' = ${newest}`))
      .toHaveLength(0);
    expect((await db.sql`select private.queue_missing_attachment_checks() as n`)[0].n).toBe(1);
    expect((await db.sql`select private.queue_missing_attachment_checks() as n`)[0].n).toBe(0);
    expect(await queued()).toBe(1001);
    // The probe reads the checks' own index, not every job of the tenant.
    // (Sequential scans off: this table is small here, where a scan is cheapest.)
    const plan = await db.sql.begin(async (tx) => {
      await tx`set local enable_seqscan = off`;
      return (await tx.unsafe(`explain select 1 from private.jobs j
        where j.task = 'attachment-upload-check' and j.payload ->> 'attachment_id' = '${ids[0]}' and j.tenant_id = '${acme}'`))
        .map((r) => Object.values(r)[0]).join('\n');
    });
    expect(plan).toContain('jobs_attachment_check_idx');
    await db.sql`delete from private.jobs where task = 'attachment-upload-check' and payload ->> 'attachment_id' in ${db.sql(ids)}`;
    await db.sql`delete from public.tickets where id = ${t.id}`;
  });
});

describe('leases', () => {
  it('a worker whose lease ran out can no longer complete, fail or record anything', async () => {
    const task = freshTask();
    const j = await add(task);
    await claim('late', task);
    expect((await db.sql`select private.job_lease_held(${j.id}, 'late') as ok`)[0].ok).toBe(true);
    expect((await db.sql`select private.job_lease_held(${j.id}, 'someone-else') as ok`)[0].ok).toBe(false);
    await db.sql`update private.jobs set locked_until = now() - interval '1 second' where id = ${j.id}`;
    expect((await db.sql`select private.job_lease_held(${j.id}, 'late') as ok`)[0].ok).toBe(false);
    expect(await db.sql`select * from private.complete_jobs('late', ${[j.id]})`).toEqual([]);
    expect((await db.sql`select private.fail_job('late', ${j.id}, 'too late') as o`)[0].o).toBe('lost');
    expect(await job(j.id)).toMatchObject({ locked_by: 'late', attempts: 1, last_error: null, dead_at: null });
  });

  it("takes over a dead worker's job once its lease runs out, counting the attempt", async () => {
    const task = freshTask();
    const j = await add(task);
    expect((await claim('a', task, 10, 60)).map((c) => c.id)).toEqual([j.id]);
    expect(await claim('b', task)).toEqual([]); // the lease holds
    await db.sql`update private.jobs set locked_until = now() - interval '1 second' where id = ${j.id}`;
    const [taken] = await claim('b', task);
    expect(taken).toMatchObject({ id: j.id, attempts: 2 });
    expect(await db.sql`select * from private.complete_jobs('a', ${[j.id]})`).toEqual([]);
    expect((await db.sql`select id from private.complete_jobs('b', ${[j.id]})`).map((r) => r.id)).toEqual([j.id]);
    expect(await job(j.id)).toBeUndefined();
  });

  it('gives back jobs a worker did not start, the attempt uncounted', async () => {
    const task = freshTask();
    const j = await add(task);
    await claim('w', task);
    expect((await db.sql`select private.release_jobs('w', ${[j.id]}) as n`)[0].n).toBe(1);
    expect(await job(j.id)).toMatchObject({ locked_by: null, attempts: 0 });
  });
});

describe('concurrent add_job with one key', () => {
  it(`${WRITERS} at once: one job, no deadlock; with the key's job running: it and one new job`, async () => {
    const task = freshTask();
    const before = await deadlocks(db.sql, db.name);
    const burst = (key: string) =>
      Promise.all(Array.from({ length: WRITERS }, (_, i) =>
        pool()`select (private.add_job(${task}, ${JSON.stringify({ i })}::jsonb, ${key}, null, null, ${i % 2 ? 'q-burst' : null})).id`
      ));
    const ids = new Set((await burst('k-burst')).map((r) => r[0].id));
    expect(ids.size).toBe(1);
    expect((await db.sql`select count(*)::int as n from private.jobs where task = ${task}`)[0].n).toBe(1);

    // The key's job is running: every add lands on one new job queued behind it.
    await claim('runner', task);
    await burst('k-burst');
    const rows = await db.sql`select job_key, locked_by from private.jobs where task = ${task} order by id`;
    expect(rows).toEqual([{ job_key: null, locked_by: 'runner' }, { job_key: 'k-burst', locked_by: null }]);
    expect((await deadlocks(db.sql, db.name)) - before).toBe(0);
  });
});
