// The caller is read once per transaction (20261201094000_caller_context.sql): the
// helpers every policy calls answer from a transaction-local context keyed by the
// claims, and any change to what it holds in the same transaction is seen by the next
// statement — so caching changes no answer, only the cost.
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';

let db: TestDatabase;
let one: postgres.Sql;
const acme = tenants.acme.id;
const globex = tenants.globex.id;
beforeAll(async () => {
  db = await freshDatabase('caller_context');
  one = postgres(db.adminUrl, { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  await one.end();
  await db.close();
});

type Tx = postgres.TransactionSql;
const as = (tx: Tx, claims: Record<string, unknown>) =>
  tx`select set_config('request.jwt.claims', ${JSON.stringify({ ...claims, role: 'authenticated' })}, true)`;
/** Index scans of user_identities so far in this backend (not yet flushed counters). */
const identityLookups = async (tx: Tx) =>
  (await tx`select coalesce(sum(pg_stat_get_xact_numscans(i.indexrelid)), 0)::int as n
    from pg_index i where i.indrelid = 'public.user_identities'::regclass`)[0].n as number;

describe('the caller context', () => {
  it('is read once per transaction however many helpers ask', async () => {
    await one.begin(async (tx) => {
      await as(tx, supabaseClaims(users.acmeAgent));
      const before = await identityLookups(tx);
      for (let i = 0; i < 5; i++) {
        await tx`select private.current_user_id(), private.is_platform_admin(), private.tenant_ids('user'),
          private.role_in(${acme}), private.tenant_access(${acme}::uuid, 'user', false)`;
      }
      expect(await identityLookups(tx) - before).toBe(1);
      expect((await tx`select private.current_user_id() as id`)[0].id).toBe(users.acmeAgent.id);
    });
  });

  it('follows the claims: re-scoped to another caller, it answers for that one', async () => {
    await one.begin(async (tx) => {
      await as(tx, supabaseClaims(users.acmeAgent));
      expect((await tx`select private.current_user_id() as id, private.role_in(${acme}) as role`)[0])
        .toEqual({ id: users.acmeAgent.id, role: 'agent' });
      await as(tx, supabaseClaims(users.globexUser));
      expect((await tx`select private.current_user_id() as id, private.role_in(${acme}) as role, private.role_in(${globex}) as g`)[0])
        .toEqual({ id: users.globexUser.id, role: null, g: 'user' });
      // A token narrowed to one tenant narrows the tenants too.
      await as(tx, supabaseClaims(users.acmeAgent, acme));
      expect((await tx`select private.tenant_ids('user') as ids`)[0].ids).toEqual([acme]);
    });
  });

  it('sees a membership added, a role changed and a tenant suspended earlier in the same transaction', async () => {
    await one.begin(async (tx) => {
      await as(tx, supabaseClaims(users.acmeUser));
      expect((await tx`select private.tenant_ids('user') as ids`)[0].ids).toEqual([acme]);
      await tx`insert into public.memberships (tenant_id, user_id, role) values (${globex}, ${users.acmeUser.id}, 'user')`;
      expect((await tx`select private.tenant_ids('user') as ids`)[0].ids.sort()).toEqual([acme, globex].sort());
      await tx`update public.memberships set role = 'agent' where tenant_id = ${globex} and user_id = ${users.acmeUser.id}`;
      expect((await tx`select private.role_in(${globex}) as role`)[0].role).toBe('agent');
      await tx`update public.tenants set status = 'suspended' where id = ${globex}`;
      expect((await tx`select private.tenant_ids('user', true) as ids`)[0].ids).toEqual([acme]);
      await tx`insert into public.platform_admins (user_id) values (${users.acmeUser.id})`;
      expect((await tx`select private.is_platform_admin() as a, private.role_in(${globex}) as role`)[0]).toEqual({ a: true, role: 'super_admin' });
      await tx`update public.users set status = 'disabled' where id = ${users.acmeUser.id}`;
      expect((await tx`select private.current_user_id() as id`)[0].id).toBeNull();
      throw new Error('roll back');
    }).catch((e: Error) => expect(e.message).toBe('roll back'));
    // Nothing outlives the transaction: the next one reads the database as it is.
    await one.begin(async (tx) => {
      await as(tx, supabaseClaims(users.acmeUser));
      expect((await tx`select private.tenant_ids('user') as ids, private.is_platform_admin() as a`)[0]).toEqual({ ids: [acme], a: false });
    });
  });
});
