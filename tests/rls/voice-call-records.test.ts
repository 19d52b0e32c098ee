// A call's record holds together whoever writes it (20261202200000_voice_calls_review.sql):
// a person cannot replace the provider's end of a call the sweep ended, not even by
// naming the status it already has; times are never ahead of now, an end never before
// the start or the answer, and a call nobody answered lasted 0 seconds; a transcript's
// seq is bounded for people as for the provider; a merged ticket's calls follow it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';

let db: TestDatabase;
const acme = tenants.acme.id;
let agentId: string;

beforeAll(async () => {
  db = await freshDatabase('voice_call_records');
  await db.sql`update public.tenants set plan = 'pro' where id = ${acme}`;
  [{ id: agentId }] = await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config)
    values (${acme}, 'Desk', '+14155557101', 'v', '{"model": "m", "system_prompt": "p"}') returning id`;
});
afterAll(async () => {
  await db.close();
});

const asAgent = <T>(f: Parameters<typeof probeAs<T>>[3]) =>
  probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAgent, acme), f);

/** As asAgent, committed (as PostgREST does): for a call logged, then ended, then corrected. */
async function committedAsAgent<T>(f: Parameters<typeof probeAs<T>>[3]) {
  try {
    const value = await db.sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
        JSON.stringify({ ...supabaseClaims(users.acmeAgent, acme), role: 'authenticated' })
      }, true)`;
      return await f(tx);
    });
    return { ok: true as const, value: value as T };
  } catch (err) {
    const e = err as { code?: string; message: string };
    return { ok: false as const, error: { code: e.code, message: e.message } };
  }
}

/** A provider's call (the machine's path: no caller), started `hoursAgo`. */
async function providerCall(id: string, status: 'ringing' | 'in_progress', hoursAgo = 0) {
  const [c] = await db.sql`
    insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status, started_at, answered_at)
    values (${acme}, ${agentId}, ${id}, ${status}, now() - make_interval(hours => ${hoursAgo}),
            case when ${status} = 'in_progress' then now() - make_interval(hours => ${hoursAgo}) end) returning id`;
  return c.id as string;
}

describe("the provider's end of a call the sweep ended", () => {
  it('a person naming the status it already has is refused, and the real call.ended still lands', async () => {
    const id = await providerCall('prov-swept', 'in_progress', 5);
    expect(await db.sql`select private.run_voice_stale_call_sweep()`).toEqual([{ run_voice_stale_call_sweep: 1 }]);
    const [swept] = await db.sql`select status, timed_out_at from public.voice_calls where id = ${id}`;
    expect(swept.status).toBe('failed');
    expect(swept.timed_out_at).not.toBeNull();

    const same = await asAgent((tx) => tx`update public.voice_calls set status = status where id = ${id} returning id`);
    expect(same).toMatchObject({ ok: false, error: { code: 'PT409', message: 'The telephony provider ends its own calls' } });
    // A write that leaves the status alone (the outcome) is still the agent's to make.
    const outcome = await asAgent((tx) =>
      tx`update public.voice_calls set outcome = 'callback promised' where id = ${id}
         returning outcome, timed_out_at is not null as still_provisional`
    );
    expect(outcome).toEqual({ ok: true, value: [{ outcome: 'callback promised', still_provisional: true }] });

    const [ended] = await db.sql`
      select * from private.voice_call_ended(${acme}, 'prov-swept', 'completed', null, 3600, 'resolved', 1.5, null, 'rec/1.ogg')`;
    expect(ended).toMatchObject({ applied: true, status: 'completed' });
    expect(
      await db.sql`select status, duration_seconds, cost::float8 as cost, recording_path, timed_out_at
                        from public.voice_calls where id = ${id}`,
    ).toEqual([{
      status: 'completed',
      duration_seconds: 3600,
      cost: 1.5,
      recording_path: 'rec/1.ogg',
      timed_out_at: null,
    }]);
  });
});

describe('times that hold together', () => {
  it('a call logged by hand "starting" in the future starts now; infinity is refused', async () => {
    const future = await asAgent((tx) =>
      tx`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status, started_at)
         values (${acme}, ${agentId}, 'manual:future', 'in_progress', '2999-01-01')
         returning started_at <= now() as not_ahead, answered_at >= started_at as answered_after`
    );
    expect(future).toEqual({ ok: true, value: [{ not_ahead: true, answered_after: true }] });
    const infinite = await asAgent((tx) =>
      tx`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status, started_at)
         values (${acme}, ${agentId}, 'manual:infinite', 'ringing', '-infinity') returning id`
    );
    expect(infinite).toMatchObject({ ok: false, error: { code: '23514' } });
    expect(await db.sql`select count(*)::int as n from public.voice_calls where provider_call_id like 'manual:%'`).toEqual([{
      n: 0,
    }]);
  });

  it('an end event before the start ends at the start; a call never answered lasted 0 seconds', async () => {
    await providerCall('prov-early-end', 'ringing');
    const [missed] = await db.sql`
      select * from private.voice_call_ended(${acme}, 'prov-early-end', 'missed', '2000-01-01', 604800, null, null, null, null)`;
    expect(missed).toMatchObject({ applied: true, status: 'missed' });
    expect(
      await db.sql`select ended_at = started_at as at_start, answered_at, duration_seconds
                        from public.voice_calls where provider_call_id = 'prov-early-end'`,
    ).toEqual([{
      at_start: true,
      answered_at: null,
      duration_seconds: 0,
    }]);

    // Answered, then ended an hour "before" it started: at the answer, with the provider's duration.
    await providerCall('prov-answered', 'in_progress');
    await db
      .sql`select * from private.voice_call_ended(${acme}, 'prov-answered', 'completed', now() - interval '1 hour', 42, null, null, null, null)`;
    expect(
      await db.sql`select ended_at >= answered_at as after_answer, ended_at >= started_at as after_start, duration_seconds
                        from public.voice_calls where provider_call_id = 'prov-answered'`,
    ).toEqual([{
      after_answer: true,
      after_start: true,
      duration_seconds: 42,
    }]);
  });

  it('a call logged after the fact keeps its times: answered at its start, ended when they say, duration from them', async () => {
    await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types)
      values (${acme}, 'https://hooks.example.com/manual-times', 'v1:x', '{call.ended}')`;
    const logged = await committedAsAgent((tx) =>
      tx`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status, started_at)
         values (${acme}, ${agentId}, 'manual:past-1', 'in_progress', now() - interval '3 hours')
         returning id, answered_at = started_at as answered_at_start`
    );
    expect(logged).toMatchObject({ ok: true, value: [{ answered_at_start: true }] });
    if (!logged.ok) throw new Error(logged.error.message);
    const id = logged.value[0].id as string;
    const ended = await committedAsAgent((tx) =>
      tx`update public.voice_calls set status = 'completed', ended_at = started_at + interval '25 minutes' where id = ${id}
         returning duration_seconds, ended_at - started_at = interval '25 minutes' as ended_as_said`
    );
    expect(ended).toEqual({ ok: true, value: [{ duration_seconds: 1500, ended_as_said: true }] });
    const [hook] = await db.sql`
      select payload -> 'data' as data from private.webhook_events where tenant_id = ${acme} and type = 'call.ended'
        and payload -> 'data' ->> 'provider_call_id' = 'manual:past-1'`;
    expect(hook.data).toMatchObject({ status: 'completed', duration_seconds: 1500 });

    // A correction: answered five minutes in, ended at 40 minutes: 35 minutes.
    const corrected = await committedAsAgent((tx) =>
      tx`update public.voice_calls set answered_at = started_at + interval '5 minutes', ended_at = started_at + interval '40 minutes'
         where id = ${id} returning duration_seconds`
    );
    expect(corrected).toEqual({ ok: true, value: [{ duration_seconds: 2100 }] });
    // An end ahead of now is now; an end cannot be cleared.
    const ahead = await committedAsAgent((tx) =>
      tx`update public.voice_calls set ended_at = '2999-01-01' where id = ${id}
         returning ended_at <= now() as not_ahead, duration_seconds between 10500 and 11100 as follows`
    );
    expect(ahead).toEqual({ ok: true, value: [{ not_ahead: true, follows: true }] });
    const cleared = await committedAsAgent((tx) =>
      tx`update public.voice_calls set ended_at = null where id = ${id} returning id`
    );
    expect(cleared).toMatchObject({ ok: false, error: { code: 'PT422' } });
  });

  it("an end is written with the status that ends the call, an answer not on a ringing call, and never on a provider's call", async () => {
    const logged = await committedAsAgent((tx) =>
      tx`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status)
         values (${acme}, ${agentId}, 'manual:ringing-1', 'ringing') returning id, answered_at`
    );
    expect(logged).toMatchObject({ ok: true, value: [{ answered_at: null }] });
    if (!logged.ok) throw new Error(logged.error.message);
    const id = logged.value[0].id as string;
    const earlyEnd = await committedAsAgent((tx) =>
      tx`update public.voice_calls set ended_at = now() where id = ${id} returning id`
    );
    expect(earlyEnd).toMatchObject({ ok: false, error: { code: 'PT422', message: 'A call ends with its status' } });
    const ringingAnswer = await committedAsAgent((tx) =>
      tx`update public.voice_calls set answered_at = now() where id = ${id} returning id`
    );
    expect(ringingAnswer).toMatchObject({ ok: false, error: { code: 'PT422' } });
    const missed = await committedAsAgent((tx) =>
      tx`update public.voice_calls set status = 'missed' where id = ${id} returning answered_at, duration_seconds`
    );
    expect(missed).toEqual({ ok: true, value: [{ answered_at: null, duration_seconds: 0 }] });

    // An answer given with the call is held to its start and to now.
    const early = await asAgent((tx) =>
      tx`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status, started_at, answered_at)
         values (${acme}, ${agentId}, 'manual:early-answer', 'in_progress', now() - interval '1 hour', now() - interval '2 hours')
         returning answered_at = started_at as at_start`
    );
    expect(early).toEqual({ ok: true, value: [{ at_start: true }] });
    const late = await asAgent((tx) =>
      tx`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status, started_at, answered_at)
         values (${acme}, ${agentId}, 'manual:late-answer', 'in_progress', now() - interval '1 hour', '2999-01-01')
         returning answered_at <= now() as not_ahead`
    );
    expect(late).toEqual({ ok: true, value: [{ not_ahead: true }] });

    const provider = await providerCall('prov-times', 'in_progress', 1);
    for (const change of ["answered_at = started_at + interval '1 minute'", 'ended_at = now()']) {
      const r = await committedAsAgent((tx) =>
        tx.unsafe(`update public.voice_calls set ${change} where id = $1 returning id`, [provider])
      );
      expect(r, change).toMatchObject({ ok: false, error: { code: 'PT409' } });
    }
    expect(await db.sql`select answered_at = started_at as untouched, ended_at from public.voice_calls where id = ${provider}`)
      .toEqual([{ untouched: true, ended_at: null }]);
    // Nor on one the provider has ended: a longer call is not forged after the fact.
    await db.sql`select * from private.voice_call_ended(${acme}, 'prov-times', 'completed', null, 60, null, null, null, null)`;
    const [before] = await db.sql`select answered_at, ended_at, duration_seconds from public.voice_calls where id = ${provider}`;
    for (
      const change of [
        "ended_at = ended_at + interval '1 minute'",
        "answered_at = started_at + interval '1 second'",
        'answered_at = null',
      ]
    ) {
      const r = await asAgent((tx) =>
        tx.unsafe(`update public.voice_calls set ${change} where id = $1 returning id`, [provider])
      );
      expect(r, change).toMatchObject({ ok: false, error: { code: 'PT409' } });
    }
    expect(await db.sql`select answered_at, ended_at, duration_seconds from public.voice_calls where id = ${provider}`)
      .toEqual([before]);
  });

  it('an answered manual call keeps its answer: clearing it is refused', async () => {
    const logged = await committedAsAgent((tx) =>
      tx`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status, started_at)
         values (${acme}, ${agentId}, 'manual:keeps-answer', 'in_progress', now() - interval '10 minutes') returning id`
    );
    if (!logged.ok) throw new Error(logged.error.message);
    const id = logged.value[0].id as string;
    const cleared = await asAgent((tx) => tx`update public.voice_calls set answered_at = null where id = ${id} returning id`);
    expect(cleared).toMatchObject({
      ok: false,
      error: { code: 'PT422', message: 'The call was answered; its answer cannot be cleared' },
    });
    const ended = await committedAsAgent((tx) =>
      tx`update public.voice_calls set status = 'completed' where id = ${id} returning duration_seconds between 590 and 700 as lasted`
    );
    expect(ended).toEqual({ ok: true, value: [{ lasted: true }] });
    const after = await asAgent((tx) => tx`update public.voice_calls set answered_at = null where id = ${id} returning id`);
    expect(after).toMatchObject({ ok: false, error: { code: 'PT422' } });
  });

  it('an answer is not cleared on the way to an end either (it was stamped again at now: 0 seconds)', async () => {
    const logged = await committedAsAgent((tx) =>
      tx`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status, started_at)
         values (${acme}, ${agentId}, 'manual:failed-clear', 'in_progress', now() - interval '10 minutes') returning id`
    );
    if (!logged.ok) throw new Error(logged.error.message);
    const id = logged.value[0].id as string;
    const r = await asAgent((tx) =>
      tx`update public.voice_calls set status = 'failed', answered_at = null where id = ${id} returning duration_seconds`
    );
    expect(r).toMatchObject({
      ok: false,
      error: { code: 'PT422', message: 'The call was answered; its answer cannot be cleared' },
    });
  });

  it('a past call logged in progress is not swept as stale while it is being written up', async () => {
    // Started five hours ago, logged now: the sweep's 4-hour silence counts from the logging.
    const logged = await committedAsAgent((tx) =>
      tx`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status, started_at)
         values (${acme}, ${agentId}, 'manual:written-up', 'in_progress', now() - interval '5 hours') returning id`
    );
    if (!logged.ok) throw new Error(logged.error.message);
    const id = logged.value[0].id as string;
    await db.sql`select private.run_voice_stale_call_sweep()`;
    expect(await db.sql`select status, timed_out_at from public.voice_calls where id = ${id}`)
      .toEqual([{ status: 'in_progress', timed_out_at: null }]);
    // Four hours after the logging with nothing since, it is stale like any other call.
    await db.sql`select private.run_voice_stale_call_sweep(now() + interval '4 hours 1 minute')`;
    const [swept] = await db.sql`select status, timed_out_at is not null as provisional from public.voice_calls where id = ${id}`;
    expect(swept).toEqual({ status: 'failed', provisional: true });
  });

  it('the table refuses an end before the start however it is written', async () => {
    const id = await providerCall('prov-direct', 'in_progress');
    await expect(db.sql`update public.voice_calls set ended_at = started_at - interval '1 second' where id = ${id}`)
      .rejects.toMatchObject({ code: '23514', constraint_name: 'voice_calls_ended_at_check' });
    await expect(db.sql`update public.voice_calls set answered_at = started_at - interval '1 second' where id = ${id}`)
      .rejects.toMatchObject({ code: '23514', constraint_name: 'voice_calls_answered_at_check' });
  });
});

describe("a transcript's length", () => {
  it('people write no seq past 1,000,000 (the provider cannot either)', async () => {
    const manual = await asAgent(async (tx) => {
      const [c] = await tx`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status)
        values (${acme}, ${agentId}, 'manual:long', 'in_progress') returning id`;
      const ok = await tx`insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content)
        values (${acme}, ${c.id}, 1000000, 'agent', 'last') returning seq`;
      await tx`insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content)
        values (${acme}, ${c.id}, 2147483647, 'agent', 'past it')`;
      return ok;
    });
    expect(manual).toMatchObject({ ok: false, error: { code: '23514' } });
  });
});

describe('merged tickets', () => {
  it("a merged ticket's calls move to the ticket it was merged into, which may later be linked on", async () => {
    const ticket = async (title: string) => {
      await db.sql`insert into public.tickets (tenant_id, title, created_by) values (${acme}, ${title}, ${users.acmeUser.id})`;
      const [t] = await db.sql`select id from public.tickets where tenant_id = ${acme} and title = ${title}`;
      return t.id as string;
    };
    const source = await ticket('Merged away from');
    const target = await ticket('Merged into here');
    const other = await ticket('Some other ticket');
    const id = await providerCall('prov-merged', 'in_progress');
    // Opened from the call (the ticket names it), so the link takes.
    await db.sql`update public.tickets set metadata = ${db.sql.json({ voice_call_id: id })} where id = ${source}`;
    await db.sql`update public.voice_calls set ticket_id = ${source} where id = ${id}`;
    // Merged by an admin, who then reads the call.
    const asAdmin = <T>(f: Parameters<typeof probeAs<T>>[3]) =>
      probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, acme), f);
    const merged = await asAdmin(async (tx) => {
      await tx`select private.merge_tickets(${acme}, ${source}, ${target})`;
      const [after] = await tx`select ticket_id from public.voice_calls where id = ${id}`;
      // Linked once still: not on to a third ticket.
      const again = await tx.savepoint((sp) => sp`update public.voice_calls set ticket_id = ${other} where id = ${id}`)
        .then(() => 'moved', (err: { code?: string }) => err.code);
      return { ticket_id: after.ticket_id, again };
    });
    expect(merged).toEqual({ ok: true, value: { ticket_id: target, again: 'PT409' } });
  });
});

describe('the link between a call and its ticket', () => {
  it('an agent links a call on the direct path only to a ticket opened from it, not to any ticket of the tenant', async () => {
    const call = await providerCall('prov-link', 'in_progress');
    const other = await providerCall('prov-link-other', 'in_progress');
    await db.sql`insert into public.tickets (tenant_id, title, created_by, metadata)
      values (${acme}, 'Opened from the other call', ${users.acmeUser.id}, ${db.sql.json({ voice_call_id: other })}),
             (${acme}, 'Not from a call', ${users.acmeUser.id}, '{}')`;
    const [fromOther] = await db.sql`select id from public.tickets where title = 'Opened from the other call'`;
    const [plain] = await db.sql`select id from public.tickets where title = 'Not from a call'`;
    for (const ticket of [fromOther.id, plain.id]) {
      const linked = await asAgent((tx) => tx`update public.voice_calls set ticket_id = ${ticket} where id = ${call} returning id`);
      expect(linked).toMatchObject({ ok: false, error: { code: 'PT409', message: 'A call is linked only to the ticket opened from it' } });
    }
    expect((await db.sql`select ticket_id from public.voice_calls where id = ${call}`)[0].ticket_id).toBeNull();
    // The ticket opened from it (naming it) links.
    await db.sql`update public.tickets set metadata = ${db.sql.json({ voice_call_id: call })} where id = ${plain.id}`;
    const ok = await committedAsAgent((tx) => tx`update public.voice_calls set ticket_id = ${plain.id} where id = ${call} returning id`);
    expect(ok).toMatchObject({ ok: true });
    // The ticket's metadata edited to name the other call: still the first call's ticket.
    await db.sql`update public.tickets set metadata = ${db.sql.json({ voice_call_id: other })} where id = ${plain.id}`;
    const shared = await asAgent((tx) => tx`update public.voice_calls set ticket_id = ${plain.id} where id = ${other} returning id`);
    expect(shared).toMatchObject({ ok: false, error: { code: 'PT409', message: 'A call is linked only to the ticket opened from it' } });
  });
});
