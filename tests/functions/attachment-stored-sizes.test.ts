// An uploaded attachment counts the bytes the storage holds (20261206044000). Supabase
// Storage's signed upload URLs take any size up to the bucket's limit, so on a hosted
// project an announcement of 50 MiB could be met with one byte (50 MiB charged for good)
// or one byte announced and 50 MiB stored (past the quota). This database gets the
// table a hosted project has (`storage.objects`, with `metadata.size`), and each way is
// tried: the size and the quota follow the stored bytes, a plan without room refuses the
// reader and the check releases the attachment. Without the table (the local stack, the
// other suites) nothing changes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { tenants, users } from '../helpers/seed.ts';

const MiB = 1024 * 1024;
let db: TestDatabase;
let ticket: string;
const acme = tenants.acme.id;

beforeAll(async () => {
  db = await freshDatabase('fn_attachment_sizes');
  // What Supabase Storage keeps of an object, as far as this needs.
  await db.sql`create schema storage`;
  await db.sql`create table storage.objects (bucket_id text, name text, metadata jsonb)`;
  [{ id: ticket }] = await db.sql`insert into public.tickets (tenant_id, title, created_by) values (${acme}, 'Files', ${users.acmeUser.id}) returning id`;
});
afterAll(async () => {
  await db.close();
});

const storageUsed = async () =>
  Number((await db.sql`select coalesce(sum(used), 0) as n from private.usage_counters where tenant_id = ${acme} and metric = 'storage_bytes'`)[0].n);
/** A pending attachment announced at `announced` bytes whose object the storage holds with `stored` bytes. */
async function registered(announced: number, stored: number) {
  const [a] = await db.sql`insert into public.attachments (tenant_id, ticket_id, file_name, size_bytes)
    values (${acme}, ${ticket}, ${`f-${announced}-${stored}.bin`}, ${announced}) returning id, bucket, path`;
  await db.sql`insert into storage.objects (bucket_id, name, metadata) values (${a.bucket}, ${a.path}, ${db.sql.json({ size: stored })})`;
  return a.id as string;
}
const sizeOf = async (id: string) => (await db.sql`select size_bytes::float8 as n, status from public.attachments where id = ${id}`)[0];

describe('an uploaded attachment counts the bytes the storage holds', () => {
  it('fewer than announced: the size and the quota come down when its check finds it', async () => {
    const id = await registered(50 * MiB, 1);
    const before = await storageUsed();
    const [{ outcome }] = await db.sql`select private.settle_pending_attachment(${acme}, ${id}, true) as outcome`;
    expect(outcome).toBe('uploaded');
    expect(await sizeOf(id)).toEqual({ n: 1, status: 'uploaded' });
    expect(await storageUsed()).toBe(before - (50 * MiB - 1));
  });

  it('empty: charged one byte, not the size announced for it', async () => {
    const id = await registered(50 * MiB, 0);
    const before = await storageUsed();
    const [{ outcome }] = await db.sql`select private.settle_pending_attachment(${acme}, ${id}, true) as outcome`;
    expect(outcome).toBe('uploaded');
    expect(await sizeOf(id)).toEqual({ n: 1, status: 'uploaded' });
    expect(await storageUsed()).toBe(before - (50 * MiB - 1));
  });

  it('more than announced: charged when a reader marks it, and refused when the plan has no room', async () => {
    const id = await registered(1, 10 * MiB);
    const before = await storageUsed();
    // What marking it on a read does (private.mark_attachment_uploaded).
    await db.sql`update public.attachments set status = 'uploaded' where id = ${id}`;
    expect(await sizeOf(id)).toEqual({ n: 10 * MiB, status: 'uploaded' });
    expect(await storageUsed()).toBe(before + 10 * MiB - 1);

    // No room for the real size: the reader is refused, the attachment stays pending.
    await db.sql`insert into private.tenant_plan_overrides (tenant_id, limits) values (${acme}, ${db.sql.json({ storage_bytes: (await storageUsed()) + MiB })})
      on conflict (tenant_id) do update set limits = excluded.limits`;
    const tooBig = await registered(1, 20 * MiB);
    const refused = await db.sql`update public.attachments set status = 'uploaded' where id = ${tooBig}`.catch((e: { code?: string; detail?: string }) => e);
    expect((refused as { code?: string }).code).toBe('PT403');
    expect(JSON.parse((refused as { detail: string }).detail)).toMatchObject({ code: 'plan_limit_reached' });
    expect(await sizeOf(tooBig)).toEqual({ n: 1, status: 'pending' });
    // Its check releases it, as one never uploaded.
    const usedBefore = await storageUsed();
    const [{ outcome }] = await db.sql`select private.settle_pending_attachment(${acme}, ${tooBig}, true) as outcome`;
    expect(outcome).toBe('released');
    expect(await db.sql`select 1 from public.attachments where id = ${tooBig}`).toEqual([]);
    expect(await storageUsed()).toBe(usedBefore - 1);
  });

  it('past the largest attachment (a bucket made before its limit): refused, and released by its check', async () => {
    await db.sql`delete from private.tenant_plan_overrides where tenant_id = ${acme}`;
    const huge = await registered(1, 60 * MiB);
    const refused = await db.sql`update public.attachments set status = 'uploaded' where id = ${huge}`.catch((e: { code?: string; detail?: string }) => e);
    expect((refused as { code?: string }).code).toBe('PT403');
    expect(JSON.parse((refused as { detail: string }).detail)).toMatchObject({ code: 'attachment_too_large' });
    const [{ outcome }] = await db.sql`select private.settle_pending_attachment(${acme}, ${huge}, true) as outcome`;
    expect(outcome).toBe('released');
  });

  it('an update naming the size too is counted once', async () => {
    const id = await registered(2 * MiB, 3 * MiB);
    const before = await storageUsed();
    await db.sql`update public.attachments set status = 'uploaded', size_bytes = size_bytes where id = ${id}`;
    expect(await sizeOf(id)).toEqual({ n: 3 * MiB, status: 'uploaded' });
    expect(await storageUsed()).toBe(before + MiB);
  });
});
