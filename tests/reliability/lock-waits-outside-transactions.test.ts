// Statements sent outside a transaction of the functions' own — the telephony provider's
// call events without a tenant key, the job runner's queue statements — wait a bounded
// time for a lock (20261206034000): each SQL function they call carries its own
// `lock_timeout`, since there is no BEGIN to set it with. A call event stuck behind a
// lock nobody lets go is a 503 `timeout` the provider retries, and the connection goes
// back to the pool; before, the request hung as long as the lock was held.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app } from '../../functions/voice/app.ts';
import { root } from '../../scripts/stack.mjs';
import { apiKey } from '../../scripts/tokens.mjs';
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { tenants } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, TEST_JWT_SECRET } from '../helpers/tokens.ts';

// What the functions call outside a transaction of theirs. A later `create or replace` of
// one of these without the SET clause would drop it: this list is checked against the
// catalog.
const BOUNDED = [
  'voice_call_event_held',
  'voice_call_started',
  'voice_call_answered',
  'voice_call_ended',
  'voice_call_segments_appended',
  'voice_call_segments_append_outcome',
  'voice_call_recording_of',
  'voice_call_recording_set',
  'add_scheduled_jobs',
  'claim_due_jobs', // 20261206131000, in place of claim_jobs
  'complete_jobs',
  'fail_job',
  'release_jobs',
  'renew_job_leases',
  // 20261206037000
  'voice_route_answer',
  'voice_route_in_tenant',
  'kb_search_for_call',
  'kb_search_for_call_with_embedding',
  'voice_call_recording_restore',
  'voice_call_refuse_deleted',
  'rate_limit_hit',
  'rate_limit_key_read',
  'rate_limit_refund', // 20261207225000
  'verify_api_key', // 20261207233000: a key verified, and counted, before its request's body
  'job_metrics',
  // 20261206130000
  'defer_job',
  // 20261207173000, 20261207175000
  'hold_job_for_its_hook',
  'held_job_error',
];

/** The private functions the code calls in a statement of its own, outside a transaction:
 *  every `db()` and `callPathDb()` template in functions/ and shared/. */
function calledOutsideTransactions(): string[] {
  const names = new Set<string>();
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
      d.isDirectory() ? files(path.join(dir, d.name)) : d.name.endsWith('.ts') ? [path.join(dir, d.name)] : []
    );
  for (const file of [...files(path.join(root, 'functions')), ...files(path.join(root, 'shared'))]) {
    const text = readFileSync(file, 'utf8');
    for (const call of text.matchAll(/\b(?:db|callPathDb)\(\)(?:<[^`]*?>)?`([^`]*)`/g)) {
      for (const fn of call[1].matchAll(/private\.(\w+)\(/g)) names.add(fn[1]);
    }
  }
  return [...names].sort();
}

let db: TestDatabase;
let auth: AuthFixture;
let service: string;
const acme = tenants.acme.id;
const AGENT = '75000000-0000-4000-8000-000000000041';

beforeAll(async () => {
  db = await freshDatabase('lock_waits_outside_tx');
  auth = await configureAuth(db.url, { PROVISIONING_ENCRYPTION_KEY: randomBytes(32).toString('base64') });
  service = await apiKey('service_role', TEST_JWT_SECRET);
  await db.sql`update public.tenants set plan = 'pro' where id = ${acme}`;
  await db.sql`insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config)
    values (${acme}, ${AGENT}, 'Desk', '+14155554041', 'v', ${db.sql.json({ model: 'm', system_prompt: 'p' })})`;
});
afterAll(async () => {
  await closeDb();
  await auth?.close();
  await db?.close();
});

const event = (body: Record<string, unknown>) =>
  call(app, 'POST', '/voice/calls/events', { body: { tenant_id: acme, ...body }, headers: { authorization: `Bearer ${service}` } });

describe('lock waits outside a transaction', () => {
  it('the list is every private function the code calls outside a transaction, and more', () => {
    const called = calledOutsideTransactions();
    expect(called.length).toBeGreaterThan(8);
    expect(called.filter((name) => !BOUNDED.includes(name))).toEqual([]);
  });

  it('every such function carries its own lock_timeout of 30 s', async () => {
    const rows = await db.sql<{ name: string; config: string[] | null }[]>`
      select p.proname as name, p.proconfig as config
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'private' and p.proname = any (${BOUNDED})`;
    expect(new Set(rows.map((r) => r.name))).toEqual(new Set(BOUNDED));
    expect(rows.filter((r) => !(r.config ?? []).includes('lock_timeout=30s')).map((r) => r.name)).toEqual([]);
  });

  it('a call event behind a lock nobody lets go is a 503 timeout, and the next one is served', async () => {
    const started = await event({ type: 'call.started', agent_id: AGENT, provider_call_id: 'locked-1', from: '+14155550123', answered: true });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    // The same bound, shorter, so the test does not wait 30 s (this database only).
    await db.sql`alter function private.voice_call_ended set lock_timeout = '300ms'`;
    const holder = await db.sql.reserve();
    try {
      await holder`begin`;
      await holder`select 1 from public.voice_calls where tenant_id = ${acme} and provider_call_id = 'locked-1' for update`;
      const stuck = await event({ type: 'call.ended', provider_call_id: 'locked-1', status: 'completed', duration_seconds: 7 });
      expect([stuck.status, errorCode(stuck)]).toEqual([503, 'timeout']);
    } finally {
      await holder`rollback`;
      holder.release();
    }
    const ended = await event({ type: 'call.ended', provider_call_id: 'locked-1', status: 'completed', duration_seconds: 7 });
    expect(ended.status, JSON.stringify(ended.body)).toBe(200);
    const [c] = await db.sql`select status, duration_seconds from public.voice_calls where tenant_id = ${acme} and provider_call_id = 'locked-1'`;
    expect(c).toEqual({ status: 'completed', duration_seconds: 7 });
  });

  it("a batch's transcript append behind a held lock ends the batch's statement, not only that event's outcome", async () => {
    const started = await event({ type: 'call.started', agent_id: AGENT, provider_call_id: 'locked-2', from: '+14155550124', answered: true });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    await db.sql`alter function private.voice_call_segments_appended set lock_timeout = '300ms'`;
    const holder = await db.sql.reserve();
    try {
      await holder`begin`;
      await holder`select 1 from public.voice_calls where tenant_id = ${acme} and provider_call_id = 'locked-2' for update`;
      // What a batch of appends runs for each of its events (functions/voice/routes/provider.ts).
      const outcome = await db.sql`
        select private.voice_call_segments_append_outcome(${acme}, 'locked-2', ${JSON.stringify([{ seq: 0, speaker: 'agent', content: 'Hello' }])}) as v`
        .then((rows) => rows[0].v, (e: { code?: string }) => ({ raised: e.code }));
      // Raised, so the batch's every event is answered 503 at once and retried; an outcome
      // would have let each of a batch's events wait its own timeout in turn.
      expect(outcome).toEqual({ raised: '55P03' });
    } finally {
      await holder`rollback`;
      holder.release();
    }
  });
});
