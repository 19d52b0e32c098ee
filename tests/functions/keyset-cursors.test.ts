// Keyset cursors whose sort value is read back through a cast (`::timestamptz`,
// `::double precision`): a forged value must be a 422 naming `cursor`, never a cast
// failure in SQL (a 422 naming the body). The check (shared/schemas/common.ts,
// keysetCursor) is compared with Postgres itself: it accepts nothing Postgres refuses,
// and everything Postgres writes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as tickets } from '../../functions/tickets/app.ts';
import { app as voice } from '../../functions/voice/app.ts';
import { closeDb } from '../../shared/db.ts';
import { encodeCursor, isPgTimestamptz, keysetCursor } from '../../shared/schemas/common.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
let admin: string;
let kb: string;
const acme = tenants.acme.id;
const ID = '10000000-0000-4000-8000-000000000001';

beforeAll(async () => {
  db = await freshDatabase('keyset_cursors');
  auth = await configureAuth(db.url);
  admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  [{ id: kb }] = await db.sql`insert into public.voice_knowledge_bases (tenant_id, name) values (${acme}, 'Menu') returning id`;
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

/** A small seeded generator, so a failure names a case that comes again. */
function generator(seed: number) {
  let x = seed;
  return <T>(items: readonly T[]): T => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return items[x % items.length];
  };
}

describe('the timestamptz check against Postgres', () => {
  it('accepts no text Postgres refuses; refuses only what Postgres never writes (24:00, second 60)', async () => {
    const pick = generator(7);
    const two = (n: number) => String(n).padStart(2, '0');
    const cases = new Set<string>();
    while (cases.size < 6000) {
      const year = pick([1, 4, 44, 100, 1582, 1900, 2000, 2023, 2024, 4713, 4714, 294275, 294276, 294277, 999999]);
      const date = `${String(year).padStart(4, '0')}-${two(pick([0, 1, 2, 4, 11, 12, 13]))}-${two(pick([0, 1, 23, 24, 25, 28, 29, 30, 31, 32]))}`;
      const time = `${two(pick([0, 12, 23, 24, 25]))}:${two(pick([0, 59, 60]))}:${two(pick([0, 59, 60]))}`;
      const fraction = pick(['', '.5', '.123456']);
      const offset = pick(['+00', '-03:30', '+05:30', '+00:19:32', '-15', '+15:59', '+16', '+14:60', '-99']);
      cases.add(`${date} ${time}${fraction}${offset}${pick(['', '', ' BC'])}`);
    }
    const list = [...cases];
    const rows = await db.sql<{ v: string; ok: boolean }[]>`
      select v, pg_input_is_valid(v, 'timestamptz') as ok from unnest(${list}::text[]) v`;
    const postgres = new Map(rows.map((r) => [r.v, r.ok]));
    const falseAccepts = list.filter((v) => isPgTimestamptz(v) && !postgres.get(v));
    expect(falseAccepts).toEqual([]);
    // What the check refuses that Postgres reads: forms Postgres never writes as output.
    const refusedButValid = list.filter((v) => !isPgTimestamptz(v) && postgres.get(v));
    const neverWritten = (v: string) => / 24:|:60/.test(v);
    expect(refusedButValid.filter((v) => !neverWritten(v))).toEqual([]);
    // The sample has both kinds, or the comparison says nothing.
    expect(list.filter((v) => isPgTimestamptz(v)).length).toBeGreaterThan(100);
    expect(list.filter((v) => !postgres.get(v)).length).toBeGreaterThan(100);
  });

  it('takes every instant as Postgres writes it, across the range and in zones with odd offsets', async () => {
    const written: string[] = [];
    for (const zone of ['UTC', 'Asia/Kolkata', 'America/St_Johns', 'Europe/Amsterdam', 'Pacific/Kiritimati']) {
      const rows = await db.sql.begin(async (tx) => {
        await tx`select set_config('TimeZone', ${zone}, true)`;
        // Local mean time before 1900 gives offsets in seconds (Amsterdam +00:19:32).
        return await tx<{ t: string }[]>`
          select (timestamptz '4713-01-01 00:00:00+00 BC' + (i * interval '1 day' * 3541.7) + i * interval '1 second')::text as t
          from generate_series(0, 600) i
          union all
          select (timestamptz '1800-01-01 00:00:00+00' + i * interval '1 day 1 hour 1 second')::text
          from generate_series(0, 300) i
          union all
          -- The type's first and last instants, which a zone writes in the year before or after.
          select unnest(array[timestamptz '4714-11-24 00:00:00+00 BC', timestamptz '294276-12-31 23:59:59.999999+00'])::text`;
      });
      written.push(...rows.map((r) => r.t));
    }
    expect(written.some((t) => t.endsWith(' BC'))).toBe(true);
    expect(written.some((t) => /[+-]\d\d:\d\d:\d\d$/.test(t))).toBe(true);
    expect(written.filter((t) => !isPgTimestamptz(t))).toEqual([]);
  });
});

describe('a forged sort value is a 422 naming the cursor, on every list that casts one', () => {
  const forged = (sortValue: string) => encodeCursor([sortValue, ID]);
  const lists: [string, (cursor: string) => string, string][] = [
    ['/voice/calls', (c) => `/voice/calls?cursor=${c}`, 'voice'],
    ['/voice/customers', (c) => `/voice/customers?cursor=${c}`, 'voice'],
    ['/voice/knowledge-bases/{kbId}/documents', (c) => `/voice/knowledge-bases/${kb}/documents?cursor=${c}`, 'voice'],
    ['/tickets (created_at)', (c) => `/tickets?sort=created_at&cursor=${c}`, 'tickets'],
    ['/tickets (updated_at, ascending)', (c) => `/tickets?sort=updated_at&order=asc&cursor=${c}`, 'tickets'],
    ['/tickets/notifications', (c) => `/tickets/notifications?cursor=${c}`, 'tickets'],
  ];
  const impossible = [
    '2024-02-30 00:00:00+00',
    '2023-02-29 12:00:00+00',
    '2024-01-01 25:00:00+00',
    '2024-01-01 00:00:00+99',
    '999999-01-01 00:00:00+00',
    'not a time',
  ];

  for (const [name, path, fn] of lists) {
    it(`${name}: impossible instants refused by name; a real one, 29 February or BC, reads a page`, async () => {
      const app = fn === 'voice' ? voice : tickets;
      for (const value of impossible) {
        const r = await call(app, 'GET', path(forged(value)), { token: admin });
        expect([r.status, errorCode(r), r.body.error.details?.fields?.[0]?.field], value).toEqual([
          422,
          'validation_failed',
          'cursor',
        ]);
      }
      for (const value of ['2024-02-29 23:59:59.999999+00', '0044-03-15 12:00:00+05:30 BC']) {
        const r = await call(app, 'GET', path(forged(value)), { token: admin });
        expect([r.status, Array.isArray(r.body.items)], value).toEqual([200, true]);
      }
    });
  }

  it('/tickets by number or priority: a sort value that is no number is refused by name', async () => {
    for (const sort of ['number', 'priority']) {
      for (const value of ['abc', '1.2.3', '1e+999', '']) {
        const r = await call(tickets, 'GET', `/tickets?sort=${sort}&cursor=${forged(value)}`, { token: admin });
        expect([r.status, r.body.error?.details?.fields?.[0]?.field], `${sort} ${value}`).toEqual([422, 'cursor']);
      }
      const r = await call(tickets, 'GET', `/tickets?sort=${sort}&cursor=${forged('3')}`, { token: admin });
      expect(r.status).toBe(200);
    }
  });

  it("/tickets by relevance: a created_at that does not exist, or a rank past the type's range, is refused by name", async () => {
    const cursor = (at: string) => encodeCursor(['x', '0.5', at, ID, '', '']);
    const bad = await call(tickets, 'GET', `/tickets?q=printer&cursor=${cursor('2024-02-30T00:00:00.000000Z')}`, {
      token: admin,
    });
    expect([bad.status, bad.body.error?.details?.fields?.[0]?.field]).toEqual([422, 'cursor']);
    // A rank past double precision's range failed its cast the same way.
    for (const rank of ['1e400', '1e-400']) {
      const c = encodeCursor(['x', rank, '2024-02-29T00:00:00.000000Z', ID, '', '']);
      const r = await call(tickets, 'GET', `/tickets?q=printer&cursor=${c}`, { token: admin });
      expect([r.status, r.body.error?.details?.fields?.[0]?.field], rank).toEqual([422, 'cursor']);
    }
    const good = await call(tickets, 'GET', `/tickets?q=printer&cursor=${cursor('2024-02-29T00:00:00.000000Z')}`, {
      token: admin,
    });
    expect(good.status, JSON.stringify(good.body)).toBe(200);
  });

  it('a text sort value stays any short text without NUL', () => {
    const text = keysetCursor('text');
    expect([text('Łódź – FR', 0), text('a\u0000', 0), text('x'.repeat(201), 0), text(ID, 1), text('nope', 1)])
      .toEqual([true, false, false, true, false]);
  });
});
