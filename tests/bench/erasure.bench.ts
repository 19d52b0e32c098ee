// Erasing a voice customer in a tenant with a long audit trail (20261204100000 …
// 20261204102000): the request's time (the part that holds the customer's and the calls'
// locks), and the voice-erasure-trail job's chain to its end, beside a raw read of the
// entries the chain must read, through the same index, in the same run. Two customers:
// one whose calls are recent (the segments stage reads back only to their first call),
// one with a call at the very start of the trail (every segment entry of the tenant is
// read). The trail is written straight into audit_logs shaped as the audit trigger writes
// it — every column in each image, a call's summary included (ERASURE_BENCH_CALLS calls,
// each an INSERT and an UPDATE entry around ten segments') —, since writing it through
// the API would take the bench's whole budget.
//   ERASURE_BENCH_CALLS=50000 npx vitest bench --run tests/bench/erasure.bench.ts
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { closeDb } from '../../shared/db.ts';
import { runJobs } from '../../shared/jobs/runner.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { tenants } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth } from '../helpers/tokens.ts';

const CALLS = Number(process.env.ERASURE_BENCH_CALLS ?? 50_000);
const SEGMENTS = 10;
const acme = tenants.acme.id;
const AGENT = '74000000-0000-4000-8000-000000000011';
const LLM = { model: 'gpt-4o-mini', system_prompt: 'You answer the phone.', temperature: 0.2, tools: [] };
let db: TestDatabase;
let auth: AuthFixture;
const results: string[] = [];

/** A customer with `calls` real calls of ten segments each, written through the tables (and their triggers). */
async function customerWithCalls(phone: string, calls: number): Promise<{ id: string; calls: string[] }> {
  const [{ id }] = await db.sql`insert into public.voice_customers (tenant_id, phone, name) values (${acme}, ${phone}, 'Bench Caller') returning id`;
  const ids: string[] = [];
  for (let i = 0; i < calls; i++) {
    const [call] = await db.sql`insert into public.voice_calls (tenant_id, agent_id, customer_id, provider_call_id, from_number, status)
      values (${acme}, ${AGENT}, ${id}, ${`bench-${phone}-${i}`}, ${phone}, 'in_progress') returning id`;
    await db.sql`insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content)
      select ${acme}, ${call.id}, g, 'customer', 'a sentence the caller said about their order, number ' || g
      from generate_series(0, ${SEGMENTS - 1}) g`;
    await db.sql`update public.voice_calls set status = 'completed' where id = ${call.id}`;
    ids.push(call.id);
  }
  return { id, calls: ids };
}

beforeAll(async () => {
  const t0 = performance.now();
  db = await freshDatabase('bench_erasure');
  auth = await configureAuth(db.url);
  await db.sql`update public.tenants set plan = 'pro'`;
  await db.sql`insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config)
    values (${acme}, ${AGENT}, 'Desk', '+14155554011', 'v', ${db.sql.json(LLM)})`;
  // The long-standing customer's first call, at the start of the trail.
  const old = await customerWithCalls('+33700000001', 1);
  // Everyone else's calls: an INSERT entry, ten segments' INSERT entries, an UPDATE entry
  // each, in that order, with images of every column as the trigger renders them (a
  // call's summary of about 300 characters).
  await db.sql`
    insert into public.audit_logs (tenant_id, table_name, record_key, action, actor_role, old_data, new_data, changed_fields, image_bytes)
    select ${acme}, e.table_name, jsonb_build_object('id', e.record_id, 'tenant_id', ${acme}::uuid), e.action, 'service_role',
           e.old_data, e.new_data, e.changed,
           coalesce(pg_column_size(e.old_data), 0) + coalesce(pg_column_size(e.new_data), 0)
    from (
      select n, call_id, jsonb_build_object(
               'id', call_id, 'tenant_id', ${acme}::uuid, 'agent_id', ${AGENT}::uuid, 'customer_id', null,
               'direction', 'inbound', 'provider_call_id', 'synthetic-' || n,
               'from_number', '+3360' || lpad(n::text, 7, '0'), 'to_number', '+14155554011',
               'started_at', '2026-11-01T10:00:00.000Z', 'answered_at', '2026-11-01T10:00:02.000Z', 'ended_at', null,
               'duration_seconds', null, 'outcome', null, 'summary', null, 'recording_path', null, 'recording_object', null,
               'cost', null, 'ticket_id', null, 'timed_out_at', null,
               'created_at', '2026-11-01T10:00:00.000Z', 'updated_at', '2026-11-01T10:00:00.000Z',
               'status', 'in_progress') as open_image
      from (select n, gen_random_uuid() as call_id from generate_series(1, ${CALLS}) n) c0
    ) c
    cross join lateral (
      select 0 as k, 'voice_calls' as table_name, c.call_id as record_id, 'INSERT' as action, null::jsonb as old_data,
             c.open_image as new_data, null::text[] as changed
      union all
      select 1 + g, 'voice_call_segments', s.id, 'INSERT', null,
             jsonb_build_object('id', s.id, 'tenant_id', ${acme}::uuid, 'call_id', c.call_id, 'seq', g, 'speaker', 'customer',
                                'content', 'a sentence another caller said about their order, number ' || g, 'offset_ms', g * 4000,
                                'created_at', '2026-11-01T10:00:10.000Z'),
             null
      from generate_series(0, ${SEGMENTS - 1}) g cross join lateral (select gen_random_uuid() as id) s
      union all
      select 1 + ${SEGMENTS}, 'voice_calls', c.call_id, 'UPDATE', c.open_image,
             c.open_image || jsonb_build_object('status', 'completed', 'ended_at', '2026-11-01T10:04:00.000Z',
               'duration_seconds', 240, 'outcome', 'resolved', 'cost', 0.12, 'updated_at', '2026-11-01T10:04:00.000Z',
               'summary', 'The caller asked about an order placed last week, which had not arrived; the agent checked the ' ||
                          'tracking, found it delayed at the depot, promised a call back tomorrow and offered a discount ' ||
                          'on the next order, which the caller accepted. Call ' || c.n),
             array['cost', 'duration_seconds', 'ended_at', 'outcome', 'status', 'summary']
    ) e
    order by c.n, e.k`;
  await db.sql`analyze public.audit_logs`;
  // The recent customer's calls, and the long-standing one's last, at the end.
  const recent = await customerWithCalls('+33700000002', 3);
  const [{ n }] = await db.sql`select count(*)::int as n from public.audit_logs where tenant_id = ${acme}`;
  results.push(`[erasure bench] trail: ${n} entries of one tenant (${CALLS} calls × ${SEGMENTS} segments) in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  customers.recent = recent.id;
  customers.old = old.id;
});

afterAll(async () => {
  for (const line of results) console.log(line);
  await closeDb();
  await auth?.close();
  await db?.close();
});

const customers: Record<string, string> = {};
const once = { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 };

/** The entries the chain reads, read once raw through the same index, with the same test per row. */
async function rawRead(callIds: string[], floor: number) {
  const t = performance.now();
  await db.sql`
    select
      (select count(*) filter (where coalesce(old_data, new_data) ->> 'customer_id' = 'x' or coalesce(old_data, new_data) ->> 'from_number' = 'x')
       from public.audit_logs where tenant_id = ${acme} and table_name = 'voice_calls'),
      (select count(*) filter (where coalesce(old_data, new_data) ->> 'phone' = 'x')
       from public.audit_logs where tenant_id = ${acme} and table_name = 'voice_customers'),
      (select count(*) filter (where (coalesce(old_data, new_data) ->> 'call_id')::uuid = any (${db.sql.array(callIds)}::uuid[]))
       from public.audit_logs where tenant_id = ${acme} and table_name = 'voice_call_segments' and id >= ${floor})`;
  return performance.now() - t;
}

describe('customer erasure in a tenant with a long trail', () => {
  for (const who of ['recent', 'old'] as const) {
    bench(`erasing a ${who === 'recent' ? 'recent customer (calls at the end of the trail)' : 'customer with a call at the start of the trail'}`, async () => {
      const t = performance.now();
      const [{ erasure }] = await db.sql`select private.voice_customer_erase(${acme}, ${customers[who]}) as erasure`;
      const requestMs = performance.now() - t;
      const t2 = performance.now();
      const report = await runJobs({ tasks: ['voice-erasure-trail'], budgetMs: 600_000, batch: 1 });
      const jobMs = performance.now() - t2;
      const trail = report.tasks['voice-erasure-trail'];
      if (!trail?.done) throw new Error(`the trail job did not finish: ${JSON.stringify(report)}`);
      const [{ floor }] = await db.sql`select min(id)::int as floor from public.audit_logs
        where tenant_id = ${acme} and table_name = 'voice_calls' and record_key ->> 'id' = any (${db.sql.array(erasure.call_ids)}::text[])`;
      const rawMs = await rawRead(erasure.call_ids, floor);
      results.push(
        `[erasure bench] ${who}: request ${requestMs.toFixed(1)} ms (${erasure.erased.calls} calls, ` +
          `${erasure.erased.transcript_segments} segments); trail job ${(jobMs / 1000).toFixed(2)} s in ${trail.completed} batches, ` +
          `${trail.redacted} entries redacted; a raw read of the entries it reads ${rawMs.toFixed(0)} ms ` +
          `(job ${(jobMs / rawMs).toFixed(1)}× the raw read)`,
      );
    }, once);
  }
});
