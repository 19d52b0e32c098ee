// Stale calls (issue 14; supabase/migrations/20261202170000_voice_stale_calls.sql): the
// recurring job voice-stale-calls ends provisionally a call ringing for 15 minutes
// (missed) or in progress with no event for 4 hours (failed), in every tenant, at its
// last known event; the provider's late end replaces that end once (call.ended again);
// late segments are stored; a call an event holds is skipped; staff can neither clear the
// mark nor move a timed-out call.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { app as jobsApp } from '../../functions/jobs/app.ts';
import { app } from '../../functions/voice/app.ts';
import { closeDb } from '../../shared/db.ts';
import { rowsRead, withNestedPlans } from '../helpers/nested-plans.ts';
import { apiKey } from '../../scripts/tokens.mjs';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { call } from '../helpers/http.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
let service: string;
const acme = tenants.acme.id;
const globex = tenants.globex.id;
const LLM = { model: 'm', system_prompt: 'p' };
const NUMBER = { acme: '+14155556001', globex: '+14155556002' };
const AGENT = { acme: '76000000-0000-4000-8000-000000000001', globex: '76000000-0000-4000-8000-000000000002' };
const MINUTE = 60_000;
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

beforeAll(async () => {
  db = await freshDatabase('fn_voice_stale');
  auth = await configureAuth(db.url);
  service = await apiKey('service_role', TEST_JWT_SECRET);
  await db.sql`update public.tenants set plan = 'pro' where id in (${acme}, ${globex})`;
  await db.sql`insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config) values
    (${acme}, ${AGENT.acme}, 'Acme desk', ${NUMBER.acme}, 'v', ${db.sql.json(LLM)}),
    (${globex}, ${AGENT.globex}, 'Globex desk', ${NUMBER.globex}, 'v', ${db.sql.json(LLM)})`;
  await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types)
    values (${acme}, 'https://hooks.example.com/voice', 'v1:x', '{call.ended}')`;
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

const event = (body: Record<string, unknown>) =>
  call(app, 'POST', '/voice/calls/events', { body, headers: { authorization: `Bearer ${service}` } });
const start = async (tenant: string, id: string, startedAt: string, answered: boolean) => {
  const r = await event({
    type: 'call.started',
    tenant_id: tenant,
    provider_call_id: id,
    agent_id: tenant === acme ? AGENT.acme : AGENT.globex,
    to: tenant === acme ? NUMBER.acme : NUMBER.globex,
    started_at: startedAt,
    answered,
  });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.call_id as string;
};
const segment = (tenant: string, id: string, seq: number) =>
  event({
    type: 'transcript.segments',
    tenant_id: tenant,
    provider_call_id: id,
    segments: [{ seq, speaker: 'customer', content: `said ${seq}` }],
  });
const row = async (id: string) =>
  (await db.sql`select status, answered_at, ended_at, duration_seconds, timed_out_at, outcome, cost::float8 as cost
                from public.voice_calls where id = ${id}`)[0];
/** The job as the worker runs it: due now, through the jobs function. */
const runJob = async () => {
  await db.sql`update private.job_schedules set next_run_at = now() where name = 'voice-stale-calls'`;
  const r = await call(jobsApp, 'POST', '/jobs/run', { token: service });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.tasks['voice-stale-calls'].ended as number;
};

const startedAt = async (id: string) =>
  (await db.sql`select started_at from public.voice_calls where id = ${id}`)[0].started_at as Date;
const sent = async (id: string) =>
  (await db.sql`select payload from private.webhook_events
                where type = 'call.ended' and ordering_key = ${`call:${id}`} order by id`).map((e) => e.payload);

describe('the stale-call sweep', () => {
  it('ends a call ringing 15 minutes (missed) and one silent 4 hours (failed) at its last event, in every tenant', async () => {
    const c = {
      ringing: await start(acme, 'stale-ringing', ago(20 * MINUTE), false),
      ringingNow: await start(acme, 'fresh-ringing', ago(5 * MINUTE), false),
      silent: await start(acme, 'stale-silent', ago(300 * MINUTE), true),
      talking: await start(acme, 'long-talking', ago(300 * MINUTE), true),
      answeredLate: await start(acme, 'answered-late', ago(300 * MINUTE), true),
      ended: await start(acme, 'long-ended', ago(300 * MINUTE), true),
      globex: await start(globex, 'globex-ringing', ago(30 * MINUTE), false),
    };
    // The silent call's last segment came 4.5 hours ago; the long call is still talking;
    // the third was answered 3 hours ago (its last event) and has said nothing since.
    expect((await segment(acme, 'stale-silent', 0)).body.segments_added).toBe(1);
    const lastWord = await db.sql`update public.voice_call_segments set created_at = now() - interval '270 minutes'
      where call_id = ${c.silent} returning created_at`;
    expect((await segment(acme, 'long-talking', 0)).body.segments_added).toBe(1);
    await db.sql`update public.voice_calls set answered_at = now() - interval '3 hours' where id = ${c.answeredLate}`;
    await event({ type: 'call.ended', tenant_id: acme, provider_call_id: 'long-ended', status: 'completed' });
    const endedBefore = await row(c.ended);

    expect(await runJob()).toBe(3);

    const ringing = await row(c.ringing);
    expect(ringing).toMatchObject({ status: 'missed', answered_at: null, duration_seconds: 0, outcome: null });
    expect(ringing.ended_at).toEqual(await startedAt(c.ringing));
    expect(ringing.timed_out_at).toBeInstanceOf(Date);
    const silent = await row(c.silent);
    expect(silent).toMatchObject({ status: 'failed', duration_seconds: 30 * 60 });
    expect(silent.ended_at).toEqual(lastWord[0].created_at);
    expect(silent.timed_out_at).toBeInstanceOf(Date);
    expect((await row(c.globex)).status).toBe('missed');
    for (const id of [c.ringingNow, c.talking, c.answeredLate]) {
      expect(await row(id)).toMatchObject({ timed_out_at: null, ended_at: null });
    }
    expect((await row(c.ringingNow)).status).toBe('ringing');
    expect((await row(c.talking)).status).toBe('in_progress');
    expect(await row(c.ended)).toEqual(endedBefore);
    // The provisional end went out as such.
    expect(
      (await sent(c.silent)).map((p) => [p.data.status, p.provisional, p.replaces_provisional, p.data.timed_out_at !== null]),
    )
      .toEqual([['failed', true, false, true]]);
    // Nothing more is stale: the next run ends nothing, and the audit has the sweep's ends.
    expect(await runJob()).toBe(0);
    const audit = await db.sql`select new_data->>'status' as status, actor_role, changed_fields from public.audit_logs
      where table_name = 'voice_calls' and record_key->>'id' = ${c.silent} and action = 'UPDATE' order by id desc limit 1`;
    expect(audit).toMatchObject([{
      status: 'failed',
      changed_fields: expect.arrayContaining(['status', 'ended_at', 'timed_out_at']),
    }]);
  });

  it("the provider's late end replaces the provisional end once, and call.ended goes out again, marked", async () => {
    const id = await start(acme, 'late-end', ago(20 * MINUTE), false);
    expect(await runJob()).toBe(1);
    const provisional = await row(id);
    expect(provisional.status).toBe('missed');
    // A late segment is stored; the call stays ended until its end comes.
    const late = await segment(acme, 'late-end', 0);
    expect([late.body.segments_added, late.body.status]).toEqual([1, 'missed']);
    const end = await event({
      type: 'call.ended',
      tenant_id: acme,
      provider_call_id: 'late-end',
      status: 'completed',
      outcome: 'booked',
      cost: 0.4,
    });
    expect([end.status, end.body.applied, end.body.status]).toEqual([200, true, 'completed']);
    const after = await row(id);
    // Answered at its start (nothing said when); no end time given: its last known event
    // is its end — the late segment, stored after the sweep — not the sweep's end (the
    // start) and not the moment the late end came.
    // Its duration counts from the answer (the start) to that segment, in microseconds.
    const [lateWord] = await db.sql`select g.created_at, floor(extract(epoch from g.created_at - c.started_at))::int as seconds
      from public.voice_call_segments g join public.voice_calls c on c.id = g.call_id where g.call_id = ${id}`;
    expect(lateWord.seconds).toBeGreaterThanOrEqual(20 * 60);
    expect(after).toMatchObject({
      status: 'completed',
      timed_out_at: null,
      outcome: 'booked',
      cost: 0.4,
      answered_at: await startedAt(id),
      ended_at: lateWord.created_at,
      duration_seconds: lateWord.seconds,
    });
    // Once replaced, the call is ended as any other: a repeat changes nothing.
    const repeat = await event({ type: 'call.ended', tenant_id: acme, provider_call_id: 'late-end', status: 'failed', cost: 9 });
    expect([repeat.body.applied, repeat.body.status]).toEqual([false, 'completed']);
    expect(await row(id)).toEqual(after);
    expect((await sent(id)).map((p) => [p.data.status, p.provisional, p.replaces_provisional, p.data.timed_out_at === null]))
      .toEqual([['missed', true, false, false], ['completed', false, true, true]]);
    expect(
      (await call(app, 'GET', `/voice/calls/${id}`, { token: await supabaseToken(users.acmeAgent, { tenantId: acme }) })).body,
    )
      .toMatchObject({ status: 'completed', timed_out_at: null, cost: 0.4, transcript: [{ seq: 0, content: 'said 0' }] });
  });

  it('takes a late answer of a call it ended as missed: the late end then counts from the answer; nothing ends twice', async () => {
    const id = await start(acme, 'late-answer', ago(20 * MINUTE), false);
    expect(await runJob()).toBe(1);
    expect((await row(id)).status).toBe('missed');
    const answeredAt = ago(19 * MINUTE);
    const answer = await event({ type: 'call.answered', tenant_id: acme, provider_call_id: 'late-answer', answered_at: answeredAt });
    expect([answer.status, answer.body.applied, answer.body.status]).toEqual([200, true, 'missed']);
    const answered = await row(id);
    // Recorded; still ended provisionally (the mark kept, no second call.ended).
    expect(answered).toMatchObject({ status: 'missed', answered_at: new Date(answeredAt) });
    expect(answered.timed_out_at).not.toBeNull();
    expect(answered.ended_at.getTime()).toBeGreaterThanOrEqual(new Date(answeredAt).getTime());
    expect((await sent(id)).map((p) => p.data.status)).toEqual(['missed']);
    // A repeat of the answer changes nothing.
    const again = await event({ type: 'call.answered', tenant_id: acme, provider_call_id: 'late-answer', answered_at: ago(MINUTE) });
    expect(again.body.applied).toBe(false);
    // A recording written to the call meanwhile leaves the mark for the real end too.
    await db.sql`update public.voice_calls set recording_path = 'https://provider.example/rec/late-answer' where id = ${id}`;
    expect((await row(id)).timed_out_at).not.toBeNull();
    const end = await event({ type: 'call.ended', tenant_id: acme, provider_call_id: 'late-answer', status: 'completed', ended_at: ago(14 * MINUTE) });
    expect([end.body.applied, end.body.status]).toEqual([true, 'completed']);
    expect(await row(id)).toMatchObject({ status: 'completed', timed_out_at: null, answered_at: new Date(answeredAt), duration_seconds: 300 });
    expect((await sent(id)).map((p) => p.data.status)).toEqual(['missed', 'completed']);
  });

  it("takes the provider's duration and end time when the late end gives them, also for the same status", async () => {
    const id = await start(acme, 'late-failed', ago(300 * MINUTE), true);
    expect(await runJob()).toBe(1);
    const endedAt = ago(100 * MINUTE);
    const end = await event({
      type: 'call.ended',
      tenant_id: acme,
      provider_call_id: 'late-failed',
      status: 'failed',
      ended_at: endedAt,
      duration_seconds: 12_000,
    });
    expect([end.body.applied, end.body.status]).toEqual([true, 'failed']);
    const after = await row(id);
    expect(after).toMatchObject({ status: 'failed', timed_out_at: null, duration_seconds: 12_000 });
    expect(after.ended_at.toISOString()).toBe(endedAt);
  });

  it('takes only an end the call could have reached from where the sweep found it', async () => {
    // Swept in progress (failed): it was answered, so it cannot have been missed.
    const talked = await start(acme, 'reach-talked', ago(300 * MINUTE), true);
    // Swept ringing (missed): failing is possible, and it was never answered.
    const rang = await start(acme, 'reach-rang', ago(20 * MINUTE), false);
    expect(await runJob()).toBe(2);
    const before = await row(talked);
    const missed = await event({ type: 'call.ended', tenant_id: acme, provider_call_id: 'reach-talked', status: 'missed' });
    expect([missed.status, missed.body.error.code, missed.body.error.details.allowed]).toEqual([409, 'invalid_transition', [
      'completed',
      'failed',
    ]]);
    expect(await row(talked)).toEqual(before);
    const failed = await event({ type: 'call.ended', tenant_id: acme, provider_call_id: 'reach-rang', status: 'failed' });
    expect([failed.body.applied, failed.body.status]).toEqual([true, 'failed']);
    expect(await row(rang)).toMatchObject({ status: 'failed', answered_at: null, duration_seconds: 0, timed_out_at: null });
  });

  it('leaves a call that an event holds to that event, and takes it on the next run if still stale', async () => {
    const id = await start(acme, 'held', ago(20 * MINUTE), false);
    const conn = await db.sql.reserve();
    try {
      await conn`begin`;
      await conn`select id from public.voice_calls where id = ${id} for no key update`;
      expect(await db.sql`select private.run_voice_stale_call_sweep() as n`).toEqual([{ n: 0 }]);
      await conn`rollback`;
    } finally {
      conn.release();
    }
    expect((await row(id)).status).toBe('ringing');
    expect(await runJob()).toBe(1);
    expect((await row(id)).status).toBe('missed');
  });

  it('ends at most its limit per run, oldest first; a call it cannot end stops no other', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await start(acme, `batch-${i}`, ago((40 - i) * MINUTE), false));
    expect(await db.sql`select private.run_voice_stale_call_sweep(p_limit => 2) as n`).toEqual([{ n: 2 }]);
    expect((await Promise.all(ids.map(row))).map((r) => r.status)).toEqual(['missed', 'missed', 'ringing']);
    expect(await runJob()).toBe(1);
    // The oldest candidate cannot be ended (a constraint refuses it here): the others are.
    const poison = await start(acme, 'poison', ago(50 * MINUTE), false);
    const fine = await start(acme, 'fine', ago(45 * MINUTE), false);
    await db.sql`alter table public.voice_calls add constraint test_poison
      check (provider_call_id <> 'poison' or status in ('ringing', 'in_progress')) not valid`;
    try {
      expect(await runJob()).toBe(1);
      expect([(await row(poison)).status, (await row(fine)).status]).toEqual(['ringing', 'missed']);
    } finally {
      await db.sql`alter table public.voice_calls drop constraint test_poison`;
    }
    expect(await runJob()).toBe(1);
  });

  it("takes turns between tenants: one tenant's calls reported to have started in 2000 do not keep another's from being ended", async () => {
    const flood = [];
    for (let i = 0; i < 5; i++) flood.push(await start(acme, `flood-${i}`, `2000-01-0${i + 1}T00:00:00Z`, false));
    const stuck = await start(globex, 'stuck-elsewhere', ago(20 * MINUTE), false);
    // Three a run: globex's only stale call is in the first, though acme's five are older.
    expect(await db.sql`select private.run_voice_stale_call_sweep(p_limit => 3) as n`).toEqual([{ n: 3 }]);
    expect((await row(stuck)).status).toBe('missed');
    expect((await Promise.all(flood.map(row))).map((r) => r.status)).toEqual([
      'missed',
      'missed',
      'ringing',
      'ringing',
      'ringing',
    ]);
    expect(await runJob()).toBe(3);
  });

  it("reads a call's last event from one index entry, not from every segment of the call", async () => {
    const id = await start(acme, 'long-transcript', ago(5 * MINUTE), true);
    await db.sql`insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content, created_at)
      select ${acme}, ${id}, g, 'customer', 'word ' || g, now() - make_interval(secs => 3000 - g)
      from generate_series(0, 2999) g`;
    await db.sql`analyze public.voice_call_segments`;
    // The statements the function runs, planned and counted as they ran.
    const { result: last, plans } = await withNestedPlans(
      db.adminUrl,
      async (probe) => (await probe`select private.voice_call_last_event_at(${acme}, ${id}) as last`)[0].last,
    );
    const [{ newest }] = await db.sql`select max(created_at) as newest from public.voice_call_segments where call_id = ${id}`;
    expect(last).toEqual(newest);
    const nested = plans
      .filter((p) => /voice_call_segments/.test(p['Query Text']) && !/voice_call_last_event_at/.test(p['Query Text']));
    expect(nested).toHaveLength(1);
    expect(rowsRead(nested[0].Plan, 'voice_call_segments')).toBe(1);
  });

  it('never lets live calls fill its limit: a call whose last event is recent is no candidate', async () => {
    // Older than the stale one, but still talking (a segment now), and ringing with a
    // segment staff added now.
    const live = await start(acme, 'live-old', ago(400 * MINUTE), true);
    await segment(acme, 'live-old', 0);
    const [{ id: ringingLive }] = await db
      .sql`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status, started_at)
      values (${acme}, ${AGENT.acme}, 'ringing-live', 'ringing', now() - interval '30 minutes') returning id`;
    await db.sql`insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content)
      values (${acme}, ${ringingLive}, 0, 'system', 'note')`;
    const stale = await start(acme, 'stale-young', ago(20 * MINUTE), false);
    expect(await db.sql`select private.run_voice_stale_call_sweep(p_limit => 1) as n`).toEqual([{ n: 1 }]);
    expect([(await row(live)).status, (await row(ringingLive)).status, (await row(stale)).status])
      .toEqual(['in_progress', 'ringing', 'missed']);
  });

  it('caps the duration of a call reported to have started decades ago at a week, instead of failing or billing decades', async () => {
    const minutes = async () =>
      (await db.sql`select coalesce(sum(used), 0)::int as n from private.usage_counters
        where tenant_id = ${acme} and metric = 'call_minutes'`)[0].n as number;
    const before = await minutes();
    const [{ id }] = await db
      .sql`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status, started_at, answered_at)
      values (${acme}, ${AGENT.acme}, 'ancient', 'in_progress', '1900-01-01T00:00:00Z', '1900-01-01T00:00:00Z') returning id`;
    await segment(acme, 'ancient', 0);
    await db.sql`update public.voice_call_segments set created_at = now() - interval '5 hours' where call_id = ${id}`;
    expect(await runJob()).toBe(1);
    expect(await row(id)).toMatchObject({ status: 'failed', duration_seconds: 7 * 86400 });
    // Exactly its week is billed (not decades, and not nothing).
    expect(await minutes()).toBe(before + 7 * 24 * 60);
  });

  it('drops the call events held longer than 10 minutes for a start that never came, and keeps the live ones', async () => {
    await db.sql`insert into private.voice_call_early_events (tenant_id, provider_call_id, type, payload, received_at) values
      (${acme}, 'never-started', 'call.ended', '{"status": "completed"}', now() - interval '11 minutes'),
      (${globex}, 'never-started', 'call.answered', '{}', now() - interval '3 hours'),
      (${acme}, 'starting-soon', 'call.ended', '{"status": "completed"}', now() - interval '9 minutes')`;
    onTestFinished(async () => {
      await db.sql`delete from private.voice_call_early_events`;
    });
    await db.sql`update private.job_schedules set next_run_at = now() where name = 'voice-stale-calls'`;
    const r = await call(jobsApp, 'POST', '/jobs/run', { token: service });
    expect(r.body.tasks['voice-stale-calls'].early_events_dropped).toBe(2);
    expect((await db.sql`select provider_call_id from private.voice_call_early_events`).map((e) => e.provider_call_id))
      .toEqual(['starting-soon']);
  });

  it("leaves a deleted tenant's calls alone", async () => {
    const id = await start(globex, 'deleted-tenant', ago(20 * MINUTE), false);
    await db.sql`update public.tenants set status = 'deleted', deleted_at = now() where id = ${globex}`;
    try {
      expect(await runJob()).toBe(0);
      expect(await row(id)).toMatchObject({ status: 'ringing', timed_out_at: null });
    } finally {
      await db.sql`update public.tenants set status = 'active', deleted_at = null where id = ${globex}`;
    }
    expect(await runJob()).toBe(1);
  });

  it('staff end a call they logged by hand after the sweep, but can neither clear the mark nor say an unreachable end', async () => {
    const claims = supabaseClaims(users.acmeAgent, acme);
    // Logged 5 hours ago (the logging and the answer are its last events).
    const [{ id }] = await db
      .sql`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status, started_at, answered_at, created_at)
      values (${acme}, ${AGENT.acme}, 'manual:by-hand', 'in_progress', now() - interval '5 hours', now() - interval '5 hours',
              now() - interval '5 hours') returning id`;
    expect(await runJob()).toBe(1);
    const clear = await probeAs(
      db.sql,
      'authenticated',
      claims,
      (tx) => tx`update public.voice_calls set timed_out_at = null where id = ${id}`,
    );
    expect(clear).toMatchObject({ ok: false, error: { code: '42501' } });
    const unreachable = await probeAs(
      db.sql,
      'authenticated',
      claims,
      (tx) => tx`update public.voice_calls set status = 'missed' where id = ${id}`,
    );
    expect(unreachable).toMatchObject({ ok: false, error: { code: 'PT409' } });
    const sweep = await probeAs(db.sql, 'authenticated', claims, (tx) => tx`select private.run_voice_stale_call_sweep()`);
    expect(sweep).toMatchObject({ ok: false, error: { code: '42501' } });
    const before = await row(id);
    // Committed, as PostgREST would: the agent's end replaces the provisional one.
    await db.sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
        JSON.stringify({ ...claims, role: 'authenticated' })
      }, true)`;
      await tx`update public.voice_calls set status = 'completed', outcome = 'resolved' where id = ${id}`;
    });
    expect(await row(id)).toMatchObject({
      status: 'completed',
      outcome: 'resolved',
      timed_out_at: null,
      ended_at: before.ended_at,
    });
  });
});
