// A tenant that is not active is left alone by the machine paths (20261206041000): the
// SLA sweep breaches and warns only active tenants' tickets (a suspended tenant is
// read-only; its overdue tickets are breached once it is active again), and a deleted
// tenant writes no webhook events (those queued before still go). Before, the sweep
// escalated a suspended tenant's tickets and told its receivers, and a deleted tenant's
// changes kept writing events.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { tenants, users } from '../helpers/seed.ts';

let db: TestDatabase;
const acme = tenants.acme.id;
const globex = tenants.globex.id;

beforeAll(async () => {
  db = await freshDatabase('fn_inactive_tenants');
  // Both listen to every event (the outbox writes them; nothing is delivered here).
  await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types)
    values (${acme}, 'https://hooks.example.com/acme', 'v1:x', '{}'), (${globex}, 'https://hooks.example.com/globex', 'v1:x', '{}')`;
});
afterAll(async () => {
  await closeDb();
  await db.close();
});

/** A ticket of the tenant whose first response was due an hour ago. */
async function overdue(tenantId: string, requester: string) {
  const [t] = await db.sql`insert into public.tickets (tenant_id, title, created_by) values (${tenantId}, 'Waiting', ${requester}) returning id`;
  await db.sql`update public.tickets set first_response_due_at = now() - interval '1 hour' where id = ${t.id}`;
  return t.id as string;
}
const breached = async (id: string) =>
  (await db.sql`select status, sla_first_response_breached_at is not null as breached from public.tickets where id = ${id}`)[0];
const eventsSince = async (tenantId: string, mark: number) =>
  (await db.sql`select type from private.webhook_events where tenant_id = ${tenantId} and id > ${mark} order by id`).map((e) => e.type);
const mark = async () => (await db.sql`select coalesce(max(id), 0)::int as m from private.webhook_events`)[0].m as number;

describe('tenants that are not active', () => {
  it("the SLA sweep leaves a suspended tenant's tickets alone, and breaches them once it is active again", async () => {
    const ours = await overdue(acme, users.acmeUser.id);
    const theirs = await overdue(globex, users.globexUser.id);
    await db.sql`update public.tenants set status = 'suspended' where id = ${globex}`;
    const before = await mark();
    await db.sql`select private.run_sla_sweep()`;
    expect(await breached(ours)).toEqual({ status: 'escalated', breached: true });
    expect(await breached(theirs)).toEqual({ status: 'open', breached: false });
    expect(await eventsSince(globex, before)).toEqual([]);
    expect(await eventsSince(acme, before)).toContain('ticket.sla_breached');

    await db.sql`update public.tenants set status = 'active' where id = ${globex}`;
    await db.sql`select private.run_sla_sweep()`;
    expect(await breached(theirs)).toEqual({ status: 'escalated', breached: true });
  });

  it("a deleted tenant's changes write no webhook event; a delivery queued before its deletion still goes", async () => {
    // A delivery queued while it was active.
    const [t] = await db.sql`insert into public.tickets (tenant_id, title, created_by) values (${globex}, 'Before the end', ${users.globexUser.id}) returning id`;
    const [d] = await db.sql`select d.id from private.webhook_deliveries d join private.webhook_events e on e.id = d.event_id
      where e.tenant_id = ${globex} and d.status = 'pending' order by d.id desc limit 1`;
    expect(d).toBeDefined();
    await db.sql`update public.tenants set status = 'deleted', deleted_at = now() where id = ${globex}`;
    const before = await mark();
    await db.sql`update public.tickets set title = 'After the end' where id = ${t.id}`;
    expect(await eventsSince(globex, before)).toEqual([]);
    // A delivery queued before the deletion still goes (the deletion can be undone within
    // its grace period: ending it would lose it).
    const [{ withheld }] = await db.sql`select private.webhook_delivery_withheld(${d.id}) as withheld`;
    expect(withheld).toBe(false);
    const [after] = await db.sql`select status from private.webhook_deliveries where id = ${d.id}`;
    expect(after).toEqual({ status: 'pending' });
    // A plan without outbound webhooks still ends a delivery unsent.
    await db.sql`insert into private.tenant_plan_overrides (tenant_id, features) values (${globex}, '{"outbound_webhooks": false}')`;
    expect((await db.sql`select private.webhook_delivery_withheld(${d.id}) as w`)[0].w).toBe(true);
    const [ended] = await db.sql`select status, last_error from private.webhook_deliveries where id = ${d.id}`;
    expect(ended).toEqual({ status: 'failed', last_error: "not sent: the tenant's plan does not include outbound_webhooks" });
  });
});
