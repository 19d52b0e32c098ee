// A call's transcript is final once the call has ended: staff append segments through the
// table (PostgREST) only to a call that is ringing or in progress; a completed, failed or
// missed call's transcript takes nothing more (409 call_ended), from anyone but the
// provider's own path (a machine). An append waits for a concurrent end, then is refused.
// And a call the provider reports is the provider's: people log calls under `manual:`
// ids, and may neither end nor add words to any other call.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { settled, someoneWaitsFor } from '../helpers/advisory-locks.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';

let db: TestDatabase;
const acme = tenants.acme.id;
const call = { open: '72000000-0000-4000-8000-000000000001', ended: '72000000-0000-4000-8000-000000000002' };

beforeAll(async () => {
  db = await freshDatabase('voice_transcripts');
  await db.sql`update public.tenants set plan = 'pro' where id = ${acme}`;
  const [agent] = await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config)
    values (${acme}, 'Desk', '+14155557001', 'v', '{"model": "m", "system_prompt": "p"}') returning id`;
  await db.sql`insert into public.voice_calls (tenant_id, id, agent_id, provider_call_id, status) values
    (${acme}, ${call.open}, ${agent.id}, 'manual:open', 'in_progress'), (${acme}, ${call.ended}, ${agent.id}, 'manual:ended', 'in_progress')`;
  await db.sql`update public.voice_calls set status = 'completed' where id = ${call.ended}`;
});
afterAll(async () => {
  await db.close();
});

const append = (id: string, seq: number) => async (tx: Parameters<Parameters<typeof probeAs>[3]>[0]) => [
  ...await tx`insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content)
     values (${acme}, ${id}, ${seq}, 'agent', 'added afterwards') returning seq`,
];

describe("another tenant's people", () => {
  it("learn nothing of a call by appending to it: ended, the provider's or unknown, the policy's 42501", async () => {
    const [agent] = await db.sql`select id from public.voice_agents where tenant_id = ${acme} limit 1`;
    const [provider] = await db.sql`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status)
      values (${acme}, ${agent.id}, 'outsider-probe', 'in_progress') returning id`;
    const outsider = supabaseClaims(users.globexAdmin, tenants.globex.id);
    const answers: Record<string, string | undefined> = {};
    for (const [label, id] of Object.entries({ ...call, provider: provider.id, unknown: '72000000-0000-4000-8000-0000000000ff' })) {
      const r = await probeAs(db.sql, 'authenticated', outsider, append(id, 900));
      answers[label] = r.ok ? 'appended' : `${r.error.code} ${r.error.message}`;
    }
    const refused = 'new row violates row-level security policy for table "voice_call_segments"';
    expect(answers).toEqual({ open: `42501 ${refused}`, ended: `42501 ${refused}`, provider: `42501 ${refused}`, unknown: `42501 ${refused}` });
    // The tenant's own agent is told why.
    const own = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAgent, acme), append(call.ended, 900));
    expect(own).toMatchObject({ ok: false, error: { code: 'PT409' } });
  });
});

describe("an ended call's transcript", () => {
  it('an append racing the end waits for it, then is refused', async () => {
    const [agent] = await db.sql`select id from public.voice_agents where tenant_id = ${acme} limit 1`;
    const [c] = await db.sql`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status)
      values (${acme}, ${agent.id}, 'manual:racing', 'in_progress') returning id`;
    // The end holds the call row (as private.voice_call_ended does) while the append starts.
    const ending = db.sql.reserve();
    const conn = await ending;
    try {
      await conn`begin`;
      await conn`select 1 from public.voice_calls where id = ${c.id} for no key update`;
      await conn`update public.voice_calls set status = 'completed' where id = ${c.id}`;
      const [{ pid }] = await conn`select pg_backend_pid() as pid`;
      const append = probeAs(
        db.sql,
        'authenticated',
        supabaseClaims(users.acmeAgent, acme),
        async (tx) =>
          tx`insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content)
           values (${acme}, ${c.id}, 0, 'agent', 'too late') returning seq`,
      );
      // It waits on the end's lock (the database says so), and has not answered.
      expect(await someoneWaitsFor(db.sql, Number(pid))).toBe(true);
      expect(await settled(append)).toBe(false);
      await conn`commit`;
      expect(await append).toMatchObject({ ok: false, error: { code: 'PT409' } });
    } finally {
      conn.release();
    }
  });

  for (const who of ['acmeAgent', 'acmeAdmin'] as const) {
    it(`${who}: appends to a call in progress, not to one that has ended`, async () => {
      // Each probe is rolled back (tests/helpers/db.ts probeAs): the two never see each other.
      expect(await probeAs(db.sql, 'authenticated', supabaseClaims(users[who], acme), append(call.open, 1))).toEqual({
        ok: true,
        value: [{ seq: 1 }],
      });
      const refused = await probeAs(db.sql, 'authenticated', supabaseClaims(users[who], acme), append(call.ended, 1));
      expect(refused).toMatchObject({
        ok: false,
        error: { code: 'PT409', message: 'The call has ended; its transcript is final' },
      });
    });
  }
});

describe("the provider's calls", () => {
  const as = (who: 'acmeAgent' | 'acmeAdmin' | 'super', f: Parameters<typeof probeAs>[3]) =>
    probeAs(db.sql, 'authenticated', supabaseClaims(users[who], acme), f);
  let provider: string;
  beforeAll(async () => {
    const [agent] = await db.sql`select id from public.voice_agents where tenant_id = ${acme} limit 1`;
    // As the provider's path writes it: no caller.
    [{ id: provider }] = await db.sql`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status)
      values (${acme}, ${agent.id}, 'CA-provider-1', 'in_progress') returning id`;
  });

  for (const who of ['acmeAgent', 'acmeAdmin', 'super'] as const) {
    it(`${who}: logs a call only under a manual: id, so none can be adopted by the provider's call.started`, async () => {
      const [agent] = await db.sql`select id from public.voice_agents where tenant_id = ${acme} limit 1`;
      const log = (id: string) =>
        as(
          who,
          (tx) =>
            tx`insert into public.voice_calls (tenant_id, agent_id, provider_call_id) values (${acme}, ${agent.id}, ${id}) returning provider_call_id`,
        );
      const squat = await log('CA-upcoming');
      expect(squat).toMatchObject({ ok: false, error: { code: 'PT422' } });
      expect(squat).toMatchObject({ ok: false, error: { message: 'A call logged by a person has an id starting with manual:' } });
      expect(await log('manual:desk-phone-1')).toEqual({ ok: true, value: [{ provider_call_id: 'manual:desk-phone-1' }] });
    });

    it(`${who}: neither ends nor adds words to a call the provider reports; links, outcome and summary stay theirs`, async () => {
      const end = await as(
        who,
        (tx) => tx`update public.voice_calls set status = 'completed' where id = ${provider} returning id`,
      );
      expect(end).toMatchObject({ ok: false, error: { code: 'PT409', message: 'The telephony provider ends its own calls' } });
      const words = await as(who, append(provider, 3));
      expect(words).toMatchObject({
        ok: false,
        error: { code: 'PT409', message: "The telephony provider writes its calls' transcripts" },
      });
      const notes = await as(
        who,
        (tx) =>
          tx`update public.voice_calls set outcome = 'callback', summary = 'wants a callback' where id = ${provider} returning outcome`,
      );
      expect(notes).toEqual({ ok: true, value: [{ outcome: 'callback' }] });
    });
  }

  it("the provider's own path still ends and transcribes it (no caller)", async () => {
    await db.sql.begin(async (tx) => {
      const segment = await tx`insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content)
        values (${acme}, ${provider}, 0, 'customer', 'hello') returning seq`;
      expect(segment).toHaveLength(1);
      const ended = await tx`update public.voice_calls set status = 'completed' where id = ${provider} returning status`;
      expect(ended).toEqual([{ status: 'completed' }]);
      throw Object.assign(new Error('rollback'), { rollback: true });
    }).catch((e) => {
      if (!e.rollback) throw e;
    });
  });
});
