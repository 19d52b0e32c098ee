// A customer's registered-but-not-uploaded attachments hold at most the tenant's
// `settings.customer_pending_upload_bytes` (200 MiB unless set), on both paths
// (20261206036000): each registration charges the plan's storage at once and gives it
// back only when its check finds no file, two hours later, so one customer announcing
// files they never send kept the tenant's storage full. Past the bound the registration
// is refused whole (PT429, the API's 429 rate_limited with Retry-After) and the storage
// count is untouched; staff still register; a registration whose file was found no
// longer counts; two at once take the last room once.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app } from '../../functions/tickets/app.ts';
import { closeDb } from '../../shared/db.ts';
import { handleLocalStorage } from '../../shared/storage.ts';
import { someoneWaitsFor } from '../helpers/advisory-locks.ts';
import { committedAs, freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

const MiB = 1024 * 1024;
let db: TestDatabase;
let auth: AuthFixture;
let storageDir: string;
let ticket: string;
const tok: Record<string, string> = {};
const acme = tenants.acme.id;
const customer = supabaseClaims(users.acmeUser, acme);

beforeAll(async () => {
  db = await freshDatabase('fn_customer_uploads');
  storageDir = await mkdtemp(path.join(os.tmpdir(), 'customer-uploads-'));
  auth = await configureAuth(db.url, { LOCAL_STORAGE_DIR: storageDir, STORAGE_BACKEND: 'local' });
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  const t = await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'Files for you' } });
  expect(t.status, JSON.stringify(t.body)).toBe(201);
  ticket = t.body.id;
  // The agent sees the ticket (on their team), to register files on it too.
  await db.sql`update public.tickets set team_id = (select id from public.teams where tenant_id = ${acme} limit 1) where id = ${ticket}`;
});
afterAll(async () => {
  await closeDb();
  await auth?.close();
  await db?.close();
  if (storageDir) await rm(storageDir, { recursive: true, force: true });
});

async function bound(bytes: unknown) {
  const r = await call(tenantsApp, 'PATCH', `/tenants/${acme}`, { token: tok.admin, body: { settings: { customer_pending_upload_bytes: bytes } } });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
}
const register = (token: string, size: number, name = 'scan.pdf') =>
  call(app, 'POST', `/tickets/${ticket}/attachments`, { token, body: { file_name: name, content_type: 'application/pdf', size_bytes: size } });
/** The customer's pending bytes, and the tenant's storage count. */
async function state() {
  const [s] = await db.sql`
    select (select coalesce(sum(size_bytes), 0)::float8 from public.attachments
            where tenant_id = ${acme} and uploaded_by = ${users.acmeUser.id} and status = 'pending') as pending,
           (select coalesce(sum(used), 0)::float8 from private.usage_counters where tenant_id = ${acme} and metric = 'storage_bytes') as storage`;
  return s as { pending: number; storage: number };
}
/** As the customer on PostgREST's path, committed. */
function asCustomer<T>(fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  return committedAs(db.sql, 'authenticated', customer, fn);
}
const insertDirect = (tx: postgres.TransactionSql, sizes: number[]) =>
  tx`insert into public.attachments (tenant_id, ticket_id, file_name, size_bytes)
     select ${acme}, ${ticket}, 'direct-' || n || '.bin', s from unnest(${sizes}::bigint[]) with ordinality as x(s, n)`;
const clearPending = () => db.sql`delete from public.attachments where tenant_id = ${acme} and status = 'pending'`;

describe("a customer's pending uploads", () => {
  it('the API: past the bound a registration is 429 rate_limited with Retry-After, and charges nothing', async () => {
    await clearPending();
    await bound(100 * MiB);
    expect((await register(tok.user, 50 * MiB)).status).toBe(201);
    expect((await register(tok.user, 50 * MiB)).status).toBe(201);
    const before = await state();
    expect(before.pending).toBe(100 * MiB);
    const res = await app.request(`/tickets/${ticket}/attachments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tok.user}`, 'content-type': 'application/json' },
      body: JSON.stringify({ file_name: 'one-more.pdf', size_bytes: 1 }),
    });
    const body = await res.json();
    expect([res.status, body.error.code, body.error.details]).toEqual([429, 'rate_limited', {
      scope: 'customer_pending_upload_bytes',
      limit: 100 * MiB,
      pending: 100 * MiB,
      requested: 1,
      retry_after: expect.any(Number),
    }]);
    expect(res.headers.get('retry-after')).toBe(String(body.error.details.retry_after));
    // When the first registration's check will have freed room for one byte: 2 h 10 min
    // after it was registered.
    const [{ due }] = await db.sql`
      select extract(epoch from min(created_at) + interval '2 hours 10 minutes' - clock_timestamp())::float8 as due
      from public.attachments where tenant_id = ${acme} and uploaded_by = ${users.acmeUser.id} and status = 'pending'`;
    expect(Math.abs(body.error.details.retry_after - due)).toBeLessThanOrEqual(2);
    expect(await state()).toEqual(before);
    // Staff are not held by it.
    expect((await register(tok.agent, 50 * MiB, 'staff.pdf')).status).toBe(201);
  });

  it('the number of pending registrations is bounded too: one-byte announcements do not slip under the bytes', async () => {
    await clearPending();
    await bound(100 * MiB);
    const most = async (n: unknown) => {
      const r = await call(tenantsApp, 'PATCH', `/tenants/${acme}`, { token: tok.admin, body: { settings: { customer_pending_uploads: n } } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    };
    await most(3); // raised to the floor, 10
    try {
      for (let i = 0; i < 10; i++) expect((await register(tok.user, 1, `tiny-${i}.bin`)).status).toBe(201);
      const before = await state();
      const over = await register(tok.user, 1, 'tiny-10.bin');
      expect([over.status, errorCode(over), over.body.error.details]).toEqual([429, 'rate_limited', {
        scope: 'customer_pending_uploads',
        limit: 10,
        pending: 10,
        retry_after: expect.any(Number),
      }]);
      // The direct path alike; nothing charged.
      const direct = await probeAs(db.sql, 'authenticated', customer, (tx) => insertDirect(tx, [1]));
      expect(direct).toMatchObject({ ok: false, error: { code: 'PT429' } });
      expect(await state()).toEqual(before);
      // Staff are not held by it.
      expect((await register(tok.agent, 1, 'staff-tiny.bin')).status).toBe(201);
    } finally {
      await most(null);
      await clearPending();
    }
  });

  it('files that did arrive no longer count: the registration past the bound marks them and goes through', async () => {
    await clearPending();
    await bound(100 * MiB);
    // Two files registered and sent as a client sends them (PUT to the signed URL),
    // never read back by anyone.
    for (const name of ['a.bin', 'b.bin']) {
      const r = await call(app, 'POST', `/tickets/${ticket}/attachments`, {
        token: tok.user,
        body: { file_name: name, content_type: 'application/octet-stream', size_bytes: 50 * MiB },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      const sent = await handleLocalStorage(new Request(r.body.upload.url, { method: 'PUT', body: new Uint8Array(50 * MiB) }));
      expect(sent.status).toBe(200);
    }
    expect((await state()).pending).toBe(100 * MiB);
    // A third: the two that arrived are marked uploaded, and there is room.
    const third = await register(tok.user, 50 * MiB, 'c.bin');
    expect(third.status, JSON.stringify(third.body)).toBe(201);
    const rows = await db.sql`select file_name, status from public.attachments
      where tenant_id = ${acme} and uploaded_by = ${users.acmeUser.id} order by file_name`;
    expect(rows.filter((r) => ['a.bin', 'b.bin', 'c.bin'].includes(r.file_name))).toEqual([
      { file_name: 'a.bin', status: 'uploaded' },
      { file_name: 'b.bin', status: 'uploaded' },
      { file_name: 'c.bin', status: 'pending' },
    ]);
    // A fourth past the bound with nothing arrived: refused, and nothing marked.
    expect((await register(tok.user, 50 * MiB, 'd.bin')).status).toBe(201);
    const fifth = await register(tok.user, 1, 'e.bin');
    expect([fifth.status, errorCode(fifth)]).toEqual([429, 'rate_limited']);
    expect((await state()).pending).toBe(100 * MiB);
  });

  it('Retry-After is when enough pending registrations will have been checked, never under a minute', async () => {
    await clearPending();
    await bound(100 * MiB);
    // 1 MiB an hour ago, 49 MiB half an hour ago, 50 MiB now: the bound is full.
    for (const [name, size, age] of [['small.bin', 1 * MiB, '1 hour'], ['mid.bin', 49 * MiB, '30 minutes'], ['large.bin', 50 * MiB, '0']] as const) {
      const r = await register(tok.user, size, name);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      await db.sql`update public.attachments set created_at = created_at - ${age}::interval
        where tenant_id = ${acme} and file_name = ${name} and status = 'pending'`;
    }
    const dueOf = async (name: string) =>
      (await db.sql`select extract(epoch from created_at + interval '2 hours 10 minutes' - clock_timestamp())::float8 as due
        from public.attachments where tenant_id = ${acme} and file_name = ${name} and status = 'pending'`)[0].due as number;
    // 1 byte: the small one's check frees enough.
    const oneByte = await register(tok.user, 1);
    expect(oneByte.status).toBe(429);
    expect(Math.abs(oneByte.body.error.details.retry_after - (await dueOf('small.bin')))).toBeLessThanOrEqual(2);
    // 2 MiB: the small one's check is not enough, the next one's is.
    const twoMiB = await register(tok.user, 2 * MiB);
    expect(twoMiB.status).toBe(429);
    expect(Math.abs(twoMiB.body.error.details.retry_after - (await dueOf('mid.bin')))).toBeLessThanOrEqual(2);
    // A check already due (late): a minute, not a second.
    await db.sql`update public.attachments set created_at = created_at - interval '3 hours'
      where tenant_id = ${acme} and uploaded_by = ${users.acmeUser.id} and status = 'pending'`;
    const late = await register(tok.user, 1);
    expect([late.status, late.body.error.details.retry_after]).toEqual([429, 60]);
  });

  it('the direct path: a bulk insert past the bound is refused whole', async () => {
    await clearPending();
    await bound(100 * MiB);
    const before = await state();
    const refused = await asCustomer((tx) => insertDirect(tx, [40 * MiB, 40 * MiB, 40 * MiB])).catch((e: { code?: string }) => e);
    expect((refused as { code?: string }).code).toBe('PT429');
    expect(await state()).toEqual(before);
    await asCustomer((tx) => insertDirect(tx, [40 * MiB, 40 * MiB]));
    expect((await state()).pending).toBe(80 * MiB);
  });

  it('two registrations at once take the last room once', async () => {
    await clearPending();
    await bound(60 * MiB);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let started!: (pid: number) => void;
    const first = new Promise<number>((r) => (started = r));
    const holder = asCustomer(async (tx) => {
      await insertDirect(tx, [40 * MiB]);
      started((await tx`select pg_backend_pid() as pid`)[0].pid);
      await held;
    });
    const pid = await first;
    const second = asCustomer((tx) => insertDirect(tx, [40 * MiB])).then(() => 'registered', (e: { code?: string }) => e.code);
    expect(await someoneWaitsFor(db.sql, pid)).toBe(true);
    release();
    await holder;
    expect(await second).toBe('PT429');
    expect((await state()).pending).toBe(40 * MiB);
  });

  it('the setting is a whole number of bytes from 50 MiB to 100 GiB; one written past the API counts as 200 MiB', async () => {
    for (const bad of [0, 50 * MiB - 1, 100 * 1024 * MiB + 1, 1.5 * 100 * MiB + 0.5, '209715200']) {
      const r = await call(tenantsApp, 'PATCH', `/tenants/${acme}`, { token: tok.admin, body: { settings: { customer_pending_upload_bytes: bad } } });
      expect([JSON.stringify(bad), r.status, r.body.error?.details?.fields?.[0]?.field]).toEqual([
        JSON.stringify(bad),
        422,
        'settings.customer_pending_upload_bytes',
      ]);
    }
    for (const [written, read] of [['"abc"', 200 * MiB], ['1', 50 * MiB], ['1e15', 100 * 1024 * MiB], ['null', 200 * MiB]] as const) {
      await db.sql`update public.tenants set settings = jsonb_set(settings, '{customer_pending_upload_bytes}', ${written}::text::jsonb) where id = ${acme}`;
      const [{ n }] = await db.sql`select private.customer_pending_upload_bytes(${acme})::float8 as n`;
      expect([written, n]).toEqual([written, read]);
    }
  });
});
