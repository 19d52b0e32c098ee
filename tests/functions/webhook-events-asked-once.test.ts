// Each webhook event asks once whether anyone wants it (issue 14;
// 20261205120000_webhook_events_asked_once.sql). A single event asked
// private.webhook_type_wanted twice (its emitter, then the helper writing its rows), at
// 16 µs a question (measured). Counted here with the server's own per-function call
// counts, not timed: one question per event for a ticket's and a call's events, one per
// tenant for a statement's customers and deleted calls (it was one per row: the planner
// pushed the question below the statement's distinct tenants).
import type { TransactionSql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { tenants } from '../helpers/seed.ts';

let db: TestDatabase;
const acme = tenants.acme.id;
const globex = tenants.globex.id;
const AGENT = '75000000-0000-4000-8000-000000000041';
const LLM = { model: 'gpt-4o-mini', system_prompt: 'You answer the phone.', temperature: 0.2, tools: [] };
const N = 20;

beforeAll(async () => {
  db = await freshDatabase('fn_webhook_asked_once');
  await db.sql`update public.tenants set plan = 'pro'`;
  await db.sql`insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config)
    values (${acme}, ${AGENT}, 'Desk', '+14155554041', 'v', ${db.sql.json(LLM)})`;
  // acme hears every event; globex has no receiver.
  await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types, enabled)
    values (${acme}, 'https://hooks.example.com/all', 'v1:x', '{}', true)`;
}, 120_000);
afterAll(() => db?.close());

/** Runs `statement` in a committed transaction that counts its function calls: how many
 *  times it asked private.webhook_type_wanted, and how many events (of `type`) it wrote. */
async function asked(statement: (tx: TransactionSql) => Promise<unknown>, type?: string) {
  return await db.sql.begin(async (tx) => {
    await tx`set local track_functions = 'all'`;
    // The backend's counts not yet reported include earlier transactions': the difference.
    const counts = async () =>
      (await tx`
        select coalesce(pg_stat_get_xact_function_calls('private.webhook_type_wanted(uuid, text)'::regprocedure), 0)::int as asked,
               (select count(*)::int from private.webhook_events where ${type ?? null}::text is null or type = ${type ?? null}) as events`)[0] as { asked: number; events: number };
    const before = await counts();
    await statement(tx);
    const after = await counts();
    return { asked: after.asked - before.asked, events: after.events - before.events };
  });
}

describe('who wants a webhook event: asked once', () => {
  it(`${N} tickets created, then given a priority: one question per event`, async () => {
    const created = await asked((tx) =>
      tx`insert into public.tickets (tenant_id, title, description)
         select ${acme}, 'Asked once ' || g, 'Counted' from generate_series(1, ${N}) g`
    );
    expect(created).toEqual({ asked: N, events: N });
    const updated = await asked((tx) =>
      tx`update public.tickets set priority = 'high' where tenant_id = ${acme} and title like 'Asked once %'`
    );
    expect(updated.events).toBeGreaterThanOrEqual(N); // ticket.updated, and what else a change of priority tells
    expect(updated.asked).toBe(updated.events);
  });

  it(`${N} calls logged, then ended, then deleted: one question per call event, one for the delete statement`, async () => {
    const logged = await asked((tx) =>
      tx`insert into public.voice_calls (tenant_id, agent_id, direction, status, provider_call_id, to_number)
         select ${acme}, ${AGENT}, 'outbound', 'in_progress', 'manual:asked-' || g, '+33611112222'
         from generate_series(1, ${N}) g`
    );
    expect(logged).toEqual({ asked: N, events: N });
    const ended = await asked((tx) =>
      tx`update public.voice_calls set status = 'completed' where tenant_id = ${acme} and provider_call_id like 'manual:asked-%'`
    );
    expect(ended).toEqual({ asked: N, events: N });
    const deleted = await asked((tx) =>
      tx`delete from public.voice_calls where tenant_id = ${acme} and provider_call_id like 'manual:asked-%'`, 'call.deleted'
    );
    expect(deleted).toEqual({ asked: 1, events: N });
  });

  it(`${N} customers of each tenant in one statement: one question per tenant, events for the tenant that listens`, async () => {
    const created = await asked((tx) =>
      tx`insert into public.voice_customers (tenant_id, phone)
         select t, '+1646' || (4000000 + g) from generate_series(1, ${N}) g, unnest(${[acme, globex]}::uuid[]) t`
    );
    expect(created).toEqual({ asked: 2, events: N });
  });

  it('a tenant with no receiver: no question, and nothing written', async () => {
    const created = await asked((tx) =>
      tx`insert into public.tickets (tenant_id, title, description)
         select ${globex}, 'Unheard ' || g, 'Counted' from generate_series(1, ${N}) g`
    );
    expect(created).toEqual({ asked: 0, events: 0 }); // webhook_outbox looks for an endpoint first
  });
});
