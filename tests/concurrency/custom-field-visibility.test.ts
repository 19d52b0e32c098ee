// A custom field value written while its field changes visibility ends up where the
// field's committed visibility says: in tickets.custom_fields (customers read it) when
// shown, in the staff-only ticket_internal_fields when hidden. The change rewrites the
// tickets holding the field's values; a ticket write that read the definition before the
// change committed used to file its value under the old visibility where that rewrite
// never looked. Each test holds one side open in a transaction of its own while the other
// runs through the tickets function, which is the interleaving that lost the value.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app } from '../../functions/tickets/app.ts';
import { someoneWaitsFor } from '../helpers/advisory-locks.ts';
import { call } from '../helpers/http.ts';
import { tenants, users } from '../helpers/seed.ts';
import { supabaseToken } from '../helpers/tokens.ts';
import { closeConcurrencyDb, type ConcurrencyDb, concurrencyDatabase } from './harness.ts';

let db: ConcurrencyDb;
const acme = tenants.acme.id;
const tok: Record<string, string> = {};

beforeAll(async () => {
  db = await concurrencyDatabase('custom_field_visibility');
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
});
afterAll(async () => {
  await closeConcurrencyDb(db);
});

type Body = Record<string, unknown>;

async function define(key: string, visible: boolean): Promise<string> {
  const r = await call(app, 'POST', '/tickets/custom-fields', {
    token: tok.admin,
    body: { key, label: key, type: 'text', visible_to_customers: visible },
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
}

async function fileTicket(custom_fields: Body) {
  return await call(app, 'POST', '/tickets', { token: tok.agent, body: { title: 'Printer on fire', custom_fields } });
}

/** Where the ticket's value of `key` is kept: the customer-visible column, the staff-only
 *  table, both or neither. */
async function placeOf(ticketId: string, key: string) {
  const [row] = await db.sql`
    select t.custom_fields -> ${key} as shown, i.custom_fields -> ${key} as hidden
    from public.tickets t left join public.ticket_internal_fields i on i.tenant_id = t.tenant_id and i.ticket_id = t.id
    where t.id = ${ticketId}`;
  return { shown: row.shown ?? null, hidden: row.hidden ?? null };
}

async function visibleNow(fieldId: string): Promise<boolean> {
  const [row] = await db.sql`select visible_to_customers from public.custom_field_definitions where id = ${fieldId}`;
  return row.visible_to_customers as boolean;
}

/** Runs `during` while another transaction holds `hold` uncommitted, then commits it. */
async function whileHeld<T>(hold: (tx: ConcurrencyDb['sql']) => Promise<unknown>, during: () => Promise<T>): Promise<T> {
  const holder = await db.sql.reserve();
  try {
    await holder`begin`;
    await hold(holder as unknown as ConcurrencyDb['sql']);
    const [{ pid }] = await holder`select pg_backend_pid() as pid`;
    const pending = during();
    // Either the request queues behind the held transaction, or it finishes without.
    await Promise.race([pending.then(() => undefined, () => undefined), someoneWaitsFor(db.sql, pid as number)]);
    await holder`commit`;
    return await pending;
  } finally {
    holder.release();
  }
}

describe('a value written while its field changes visibility is kept where the committed visibility says', () => {
  it('a field being hidden: a ticket filed meanwhile keeps the value out of what customers read', async () => {
    const field = await define('escalation_reason', true);
    const filed = await whileHeld(
      (tx) => tx`update public.custom_field_definitions set visible_to_customers = false where id = ${field}`,
      () => fileTicket({ escalation_reason: 'customer is a known fraudster' }),
    );
    expect(filed.status, JSON.stringify(filed.body)).toBe(201);
    expect(await visibleNow(field)).toBe(false);
    expect(await placeOf(filed.body.id as string, 'escalation_reason')).toEqual({
      shown: null,
      hidden: 'customer is a known fraudster',
    });
  });

  it('a field being shown: a ticket filed meanwhile keeps the value where customers read it', async () => {
    const field = await define('order_number', false);
    const filed = await whileHeld(
      (tx) => tx`update public.custom_field_definitions set visible_to_customers = true where id = ${field}`,
      () => fileTicket({ order_number: 'A-1001' }),
    );
    expect(filed.status, JSON.stringify(filed.body)).toBe(201);
    expect(await visibleNow(field)).toBe(true);
    expect(await placeOf(filed.body.id as string, 'order_number')).toEqual({ shown: 'A-1001', hidden: null });
  });

  it('a value removed while its field is being shown stays removed', async () => {
    const field = await define('callback_number', false);
    const filed = await fileTicket({ callback_number: '+1 555 0100' });
    expect(filed.status, JSON.stringify(filed.body)).toBe(201);
    const id = filed.body.id as string;
    expect(await placeOf(id, 'callback_number')).toEqual({ shown: null, hidden: '+1 555 0100' });
    const shown = await whileHeld(
      (tx) => tx`update public.tickets set custom_fields = custom_fields || '{"callback_number": null}'::jsonb where id = ${id}`,
      () => call(app, 'PATCH', `/tickets/custom-fields/${field}`, { token: tok.admin, body: { visible_to_customers: true } }),
    );
    expect(shown.status, JSON.stringify(shown.body)).toBe(200);
    expect(await placeOf(id, 'callback_number')).toEqual({ shown: null, hidden: null });
  });

  it('a write and a visibility change that wait for each other: one fails whole as a retry, the other is kept right', async () => {
    const field = await define('account_tier', true);
    const filed = await fileTicket({ account_tier: 'bronze' });
    expect(filed.status, JSON.stringify(filed.body)).toBe(201);
    const id = filed.body.id as string;
    const holder = await db.sql.reserve();
    let holderError: string | undefined;
    let hidden: Awaited<ReturnType<typeof call>>;
    try {
      await holder`begin`;
      // The writer holds the ticket first; the change then locks the definition and
      // queues for the ticket; the writer then asks for the definition.
      await holder`select 1 from public.tickets where id = ${id} for update`;
      const [{ pid }] = await holder`select pg_backend_pid() as pid`;
      const pending = call(app, 'PATCH', `/tickets/custom-fields/${field}`, {
        token: tok.admin,
        body: { visible_to_customers: false },
      });
      expect(await someoneWaitsFor(db.sql, pid as number)).toBe(true);
      try {
        await holder`update public.tickets set custom_fields = custom_fields || '{"account_tier": "gold"}'::jsonb where id = ${id}`;
        await holder`commit`;
      } catch (err) {
        holderError = (err as { code?: string }).code;
        await holder`rollback`;
      }
      hidden = await pending;
    } finally {
      holder.release();
    }
    // Whichever Postgres chose fails as a deadlock, nothing of it kept; the other lands.
    const outcomes = [holderError ?? 'committed', hidden.status === 200 ? 'committed' : `${hidden.status} ${hidden.body.error?.code}`];
    for (const o of outcomes) expect(['committed', '40P01', '503 retry']).toContain(o);
    // Exactly one of the two: they waited for each other, and Postgres broke the cycle once.
    expect(outcomes.filter((o) => o === 'committed'), JSON.stringify(outcomes)).toHaveLength(1);
    const visible = await visibleNow(field);
    expect(visible).toBe(hidden.status !== 200);
    const value = holderError === undefined ? 'gold' : 'bronze';
    expect(await placeOf(id, 'account_tier')).toEqual(visible ? { shown: value, hidden: null } : { shown: null, hidden: value });
  });
});
