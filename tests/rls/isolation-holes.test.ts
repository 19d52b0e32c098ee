// Regression tests for the isolation holes of issue 9 (section 3), each reproducing the
// attack as it was found on the direct-table path: `authenticated` with request claims,
// exactly as PostgREST calls the database (probeAs), plus the attachment route through
// the tickets function. Every test here failed before its fix.
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { LOCAL_SUPABASE_ISSUER, supabaseClaims, teams, tenants, users } from '../helpers/seed.ts';

type Tx = postgres.TransactionSql;

let db: TestDatabase;
const acme = tenants.acme.id;
const globex = tenants.globex.id;

// Mallory is an agent in Globex (the victim) and an admin in Acme (her own tenant).
const mallory = { id: '00000000-0000-4000-8000-0000000000e1', email: 'mallory@example.test' };
// Claims of a token that names no tenant (a Clerk session without an active
// organisation, a SuperTokens token without tenant_id), one naming each tenant.
const malloryTokens: Record<string, Record<string, unknown>> = {
  'no tenant': supabaseClaims(mallory as never),
  'her own tenant': supabaseClaims(mallory as never, acme),
  'the victim tenant': supabaseClaims(mallory as never, globex),
};

// Globex's ticket on its Sales team, filed by its customer, with the customer's message,
// an internal note, an attachment and its timeline.
const victimTicket = '50000000-0000-4000-8000-0000000000c1';
const victimNote = '60000000-0000-4000-8000-0000000000c2';
const victimAttachment = '70000000-0000-4000-8000-0000000000c3';

async function asMallory<T>(claims: Record<string, unknown>, fn: (tx: Tx) => Promise<T>) {
  return await probeAs(db.sql, 'authenticated', claims, fn);
}

beforeAll(async () => {
  db = await freshDatabase('isolation_holes');
  await db.sql`insert into public.users (id, email) values (${mallory.id}, ${mallory.email})`;
  await db.sql`insert into public.user_identities (issuer, subject, user_id) values (${LOCAL_SUPABASE_ISSUER}, ${mallory.id}, ${mallory.id})`;
  await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${globex}, ${mallory.id}, 'agent'), (${acme}, ${mallory.id}, 'admin')`;
  await db.sql`
    insert into public.tickets (tenant_id, id, title, team_id, created_by)
    values (${globex}, ${victimTicket}, 'Globex secret deal', ${teams.globex}, ${users.globexUser.id})`;
  await db.sql`
    insert into public.ticket_messages (tenant_id, id, ticket_id, author_id, type, content) values
      (${globex}, ${victimNote}, ${victimTicket}, ${users.globexAgent.id}, 'note', 'Internal: discount up to 40 %')`;
  await db.sql`
    insert into public.ticket_messages (tenant_id, ticket_id, author_id, content)
    values (${globex}, ${victimTicket}, ${users.globexUser.id}, 'Please send the contract')`;
  await db.sql`
    insert into public.attachments (tenant_id, id, ticket_id, file_name, size_bytes, path)
    values (${globex}, ${victimAttachment}, ${victimTicket}, 'contract.pdf', 10, 'set-by-trigger')`;
});
afterAll(() => db.close());

describe('cross-tenant read and write through a colliding team id', () => {
  it('API roles cannot choose the id of a new team (the first step of the attack)', async () => {
    for (const [shape, claims] of Object.entries(malloryTokens)) {
      const r = await asMallory(claims, (tx) =>
        tx`insert into public.teams (tenant_id, id, name, department) values (${acme}, ${teams.globex}, 'Mirror', 'sales')`);
      expect(r.ok ? 'created' : r.error.code, shape).toBe('42501');
    }
  });

  it('no API role may choose an id on insert, or change a primary-key column on update, on any table in public', async () => {
    const rows = await db.sql`
      select p.grantee, p.table_name, p.column_name, p.privilege_type
      from information_schema.column_privileges p
      join pg_class c on c.relname = p.table_name
      join pg_namespace n on n.oid = c.relnamespace and n.nspname = p.table_schema
      join pg_attribute a on a.attrelid = c.oid and a.attname = p.column_name
      where p.table_schema = 'public' and p.grantee in ('anon', 'authenticated', 'PUBLIC')
        and ((p.privilege_type = 'INSERT' and p.column_name = 'id')
          or (p.privilege_type = 'UPDATE' and exists (
                select 1 from pg_constraint k
                where k.conrelid = c.oid and k.contype = 'p' and a.attnum = any (k.conkey))))
      order by 1, 2, 3, 4`;
    expect(rows.map((r) => `${r.grantee} ${r.privilege_type} ${r.table_name}.${r.column_name}`)).toEqual([]);
  });

  describe('even with a colliding team already in her own tenant', () => {
    // A team of Acme whose id is Globex's Sales team id (made by the owner here, as an
    // API client could before the fix), with Mallory joining it as Acme's admin. In
    // Globex she is on another team, whose ticket she may see: the team path works.
    const herGlobexTeam = '20000000-0000-4000-8000-0000000000c7';
    const herGlobexTicket = '50000000-0000-4000-8000-0000000000c8';
    beforeAll(async () => {
      await db.sql`insert into public.teams (tenant_id, id, name, department) values (${acme}, ${teams.globex}, 'Mirror', 'sales')`;
      await db.sql.begin(async (tx) => {
        await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${JSON.stringify(supabaseClaims(mallory as never))}, true)`;
        await tx`insert into public.team_members (tenant_id, team_id, user_id) values (${acme}, ${teams.globex}, ${mallory.id})`;
      });
      await db.sql`insert into public.teams (tenant_id, id, name, department) values (${globex}, ${herGlobexTeam}, 'Globex support', 'support')`;
      await db.sql`insert into public.team_members (tenant_id, team_id, user_id) values (${globex}, ${herGlobexTeam}, ${mallory.id})`;
      await db.sql`
        insert into public.tickets (tenant_id, id, title, team_id, created_by)
        values (${globex}, ${herGlobexTicket}, 'Globex ticket on her team', ${herGlobexTeam}, ${users.globexUser.id})`;
    });

    for (const [shape, claims] of Object.entries(malloryTokens)) {
      it(`reads and changes none of the victim's team tickets (token naming ${shape})`, async () => {
        const r = await asMallory(claims, async (tx) => ({
          tickets: (await tx`select id from public.tickets where tenant_id = ${globex}`).map((x) => x.id),
          messages: (await tx`select id from public.ticket_messages where tenant_id = ${globex} and ticket_id = ${victimTicket}`).length,
          notes: (await tx`select id from public.ticket_messages where id = ${victimNote}`).length,
          attachments: (await tx`select id from public.attachments where tenant_id = ${globex}`).length,
          events: (await tx`select id from public.ticket_events where tenant_id = ${globex} and ticket_id = ${victimTicket}`).length,
          updated: (await tx`
            update public.tickets set priority = 'urgent', title = 'Pwned by Mallory'
            where tenant_id = ${globex} and id = ${victimTicket} returning id`).length,
          canSee: (await tx`select private.can_see_ticket(${globex}, ${victimTicket}) as can`)[0].can,
        }));
        const own = shape === 'her own tenant' ? [] : [herGlobexTicket];
        expect(r).toEqual({ ok: true, value: { tickets: own, messages: 0, notes: 0, attachments: 0, events: 0, updated: 0, canSee: false } });
      });
    }

    it("the definer paths refuse the victim's ticket too", async () => {
      for (const stmt of [
        `select private.hand_off_ticket('${globex}', '${victimTicket}', true, '${mallory.id}', false, null)`,
        `select private.mark_attachment_uploaded('${globex}', '${victimAttachment}')`,
      ]) {
        const r = await asMallory(malloryTokens['no tenant'], (tx) => tx.unsafe(stmt));
        expect(r.ok ? 'done' : r.error.code, stmt).toBe('PT404');
      }
      const [a] = await db.sql`select status from public.attachments where tenant_id = ${globex} and id = ${victimAttachment}`;
      const [t] = await db.sql`select assigned_to from public.tickets where tenant_id = ${globex} and id = ${victimTicket}`;
      expect([a.status, t.assigned_to]).toEqual(['pending', null]);
    });
  });
});
