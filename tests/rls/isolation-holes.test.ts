// Regression tests for the isolation holes of issue 9 (section 3), each reproducing the
// attack as it was found on the direct-table path: `authenticated` with request claims,
// exactly as PostgREST calls the database (probeAs), plus the attachment route through
// the tickets function. Every test here failed before its fix.
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { app as ticketsApp } from '../../functions/tickets/app.ts';
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { someoneWaitsFor } from '../helpers/advisory-locks.ts';
import { call, errorCode } from '../helpers/http.ts';
import { LOCAL_SUPABASE_ISSUER, supabaseClaims, teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

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

  it('exposes no view that would bypass RLS (views in public run as the invoker) and no table without RLS', async () => {
    const views = await db.sql`
      select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('v', 'm')
        and (c.relkind = 'm' or not coalesce(c.reloptions @> array['security_invoker=true'], false))`;
    expect(views.map((v) => v.relname)).toEqual([]);
    const open = await db.sql`
      select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'p', 'f') and not c.relrowsecurity`;
    expect(open.map((t) => t.relname)).toEqual([]);
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
          searched: (await tx`select id from private.ticket_search_candidates(${globex}, 'globex', true)`).map((x) => x.id),
        }));
        const own = shape === 'her own tenant' ? [] : [herGlobexTicket];
        expect(r).toEqual({
          ok: true,
          value: { tickets: own, messages: 0, notes: 0, attachments: 0, events: 0, updated: 0, canSee: false, searched: own },
        });
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

describe('definer functions that trusted the tenant in their arguments', () => {
  // Acme's admin, who is no member of Globex, names Globex's ids.
  const outsider = supabaseClaims(users.acmeAdmin);

  it('trigger-only helpers are not executable by API roles at all', async () => {
    const [before] = await db.sql`select last_number from private.ticket_counters where tenant_id = ${globex}`;
    for (const stmt of [
      `select private.next_ticket_number('${globex}')`,
      `select private.is_member('${globex}', '${users.globexUser.id}')`,
      `select private.check_ticket_assignee('${globex}', '${users.globexAgent.id}')`,
      `select private.auto_assignee('${globex}', '${teams.globex}')`,
      `select private.apply_sla(null::public.tickets)`,
      `select private.setting('supabase_auth_issuer')`,
    ]) {
      for (const role of ['authenticated', 'anon'] as const) {
        const r = await probeAs(db.sql, role, role === 'anon' ? {} : outsider, (tx) => tx.unsafe(stmt));
        expect(r.ok ? 'executed' : r.error.code, `${role}: ${stmt}`).toBe('42501');
      }
    }
    const [after] = await db.sql`select last_number from private.ticket_counters where tenant_id = ${globex}`;
    expect(after).toEqual(before);
  });

  it("idempotency keys are claimed and stored only in the caller's own writable tenant", async () => {
    for (const stmt of [
      `select * from private.claim_idempotency_key('${globex}', 'key-1', 'hash')`,
      `select private.store_idempotent_response('${globex}', 'key-1', 201, '{}')`,
    ]) {
      for (const claims of [outsider, supabaseClaims(users.acmeAdmin, acme), supabaseClaims(users.globexUser, acme)]) {
        const r = await probeAs(db.sql, 'authenticated', claims, (tx) => tx.unsafe(stmt));
        expect(r.ok ? 'executed' : r.error.code, stmt).toBe('PT404');
      }
    }
    expect(await db.sql`select key from private.idempotency_keys where tenant_id = ${globex}`).toEqual([]);
    const own = await probeAs(db.sql, 'authenticated', supabaseClaims(users.globexUser, globex), async (tx) =>
      (await tx`select claimed from private.claim_idempotency_key(${globex}, 'key-1', 'hash')`)[0].claimed);
    expect(own).toEqual({ ok: true, value: true });
  });

  it('only functions reviewed as safe are executable by API roles', async () => {
    // Each checks its caller's right itself, acts only on the caller's own rows, or is a
    // pure function of its arguments. A new executable function fails here until it is
    // reviewed (and tests/rls covers it).
    const reviewed = [
      'accept_invitation(uuid)', // the caller's own invitation, matched by their e-mail
      'active_tenant_id()', 'current_user_id()', 'is_platform_admin()', 'caller_context()', // the caller
      'add_business_minutes(timestamp with time zone,integer,jsonb)', // pure (sla_policies check constraint)
      'allowed_ticket_transitions(text)', // the status machine, the same for every tenant
      'canned_body_placeholders_ok(text)', // pure (canned_responses check constraint)
      'macro_actions_ok(jsonb)', // pure (macros check constraint)
      'automation_actions_ok(jsonb)', 'automation_condition_ok(jsonb)', 'automation_conditions_ok(jsonb)', // pure (automation_rules checks)
      'custom_field_options_ok(text,text[])', // pure (custom_field_definitions check constraint)
      'tickets_with_custom_fields(uuid,jsonb,boolean)', // staff; the tickets select policy applied to every id
      'render_canned_response(uuid,uuid,uuid)', // invoker: the caller's own RLS decides
      'can_see_ticket(uuid,uuid)', 'role_in(uuid)', // the caller's standing; nothing for outsiders
      'tenant_access(uuid,text,boolean)', 'request_tenant_id(text)', 'token_tenant_id()', // the request's tenant and the caller's standing there
      'find_or_create_user(text,text,text)', // platform admins only
      'hand_off_ticket(uuid,uuid,boolean,uuid,boolean,uuid)', 'merge_tickets(uuid,uuid,uuid)', // staff, writable tenant, visible tickets
      'claim_idempotency_key(uuid,text,text)', 'store_idempotent_response(uuid,text,integer,jsonb)', // writable own tenant
      'mark_attachment_uploaded(uuid,uuid)', // visible ticket; nothing in a read-only tenant
      'message_edit_refusal(ticket_messages)', // the caller's own right to edit; the ticket under their RLS (invoker)
      'my_invitations()', 'my_team_keys()', 'my_followed_ticket_keys()', 'my_voice_customer_keys()', 'tenant_ids(text,boolean)', // the caller's own
      'customer_follower_tenant_ids(boolean)', // the caller's own tenants that let customers follow
      'retry_tenant_service(uuid,text)', 'rotate_service_credentials(uuid,text)', // admins, writable tenant
      'reveal_service_credentials(uuid,text)', 'webhook_deliveries_for(uuid,uuid,integer)', // admins
      'retry_webhook_delivery(uuid,uuid,bigint)', // admins (tenant_ids('admin', true)); the delivery by tenant and endpoint
      'unrevealed_service_credentials(uuid)', // admins of the tenant (or platform admins), else nothing
      'role_rank(text)', 'tags_text(text[])', // pure
      'ticket_stats(uuid)', // staff of the tenant
      'allowed_voice_call_transitions(text)', // the call status machine, the same for every tenant
      'kb_search(uuid,text,uuid,integer,real[])', 'voice_calls_matching(uuid,text)', // members of the tenant (tenant_ids; customers their own calls), else nothing
      'kb_embedding_dimensions()', // the catalog's embedding size, the same for every tenant
      'kb_chunks_of_document(uuid,uuid,integer,integer,boolean)', // invoker: the kb_chunks select policy
      'kb_set_embeddings(uuid,uuid,uuid,jsonb)', // admins of the writable tenant (or platform admins) first; 42501 otherwise
      'voice_call_delete(uuid,uuid)', // admins of the writable tenant (or platform admins) first; 42501 otherwise
      'voice_customer_erase(uuid,uuid)', // admins of the tenant (suspended too) or platform admins first; 42501 otherwise
      'check_customer_upload(uuid,bigint)', // the caller's own pending attachments, in a tenant they belong to; else nothing
      'check_customer_filing(uuid)', // the caller's own tickets, in a tenant they belong to (tenant_ids('user')); else nothing
      'check_customer_message(uuid)', // the caller's own messages, in a tenant they belong to (tenant_ids('user')); else nothing
      'check_customer_edits(uuid,integer)', // the caller's own edits, in a tenant they belong to (tenant_ids('user')); else nothing
      'voice_agents_for_members(uuid)', // a tenant among the caller's own (tenant_ids('user')), else nothing
      'voice_own_customer_records(uuid)', // the caller's own records, in a tenant they belong to (tenant_ids('user'))
      'voice_held_events(uuid,text,bigint,integer)', // staff of the tenant (tenant_ids('agent')) or platform admins, else nothing
      'ticket_search_candidates(uuid,text,boolean,integer)', // the tickets select policy as the caller's claims see it
      'entitlements_of(uuid)', 'require_feature(uuid,text)', 'tenant_usage(uuid)', // members (usage: admins) or platform admins
      'set_tenant_entitlements(uuid,jsonb,jsonb,jsonb)', // platform admins only
      'create_api_key(uuid,text,text[],timestamp with time zone,text)', 'api_keys_last_used(uuid)', // admins of the tenant
      'revoke_api_key(uuid,uuid)', // admins of the tenant (suspended too) or platform admins first; null otherwise
      'verify_api_key(uuid,text,text)', // the key whose secret the caller holds; the same 401 for any other id
    ].map((f) => `private.${f}`).sort();
    const rows = await db.sql`
      select n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' as fn,
             has_function_privilege('anon', p.oid, 'execute') as anon
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname in ('public', 'private')
        and (has_function_privilege('anon', p.oid, 'execute') or has_function_privilege('authenticated', p.oid, 'execute'))`;
    const normalise = (s: string) => s.replace(/\b(p_\w+|event) /g, '').replace(/, /g, ',');
    expect(rows.map((r) => normalise(r.fn)).sort()).toEqual(reviewed);
    expect(rows.filter((r) => r.anon).map((r) => r.fn)).toEqual([]);
  });

  it('a function the migration role creates later is executable by nobody until granted', async () => {
    // Created as the migration role itself: postgres, as the CLI pushes migrations.
    const asMigrations = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await asMigrations`create function private.zz_probe() returns int language sql set search_path = '' as 'select 1'`;
    } finally {
      await asMigrations.end();
    }
    try {
      const [r] = await db.sql`
        select has_function_privilege('authenticated', 'private.zz_probe()', 'execute') as auth,
               has_function_privilege('anon', 'private.zz_probe()', 'execute') as anon`;
      expect(r).toEqual({ auth: false, anon: false });
    } finally {
      await db.sql`drop function private.zz_probe()`;
    }
  });
});

describe('a suspended tenant is read-only on the direct path', () => {
  const ticket = '50000000-0000-4000-8000-0000000000d1';
  const message = '60000000-0000-4000-8000-0000000000d2';
  const customer = supabaseClaims(users.acmeUser, acme);

  beforeAll(async () => {
    await db.sql`insert into public.tickets (tenant_id, id, title, created_by) values (${acme}, ${ticket}, 'Suspended printer', ${users.acmeUser.id})`;
    await db.sql`
      insert into public.ticket_messages (tenant_id, id, ticket_id, author_id, content)
      values (${acme}, ${message}, ${ticket}, ${users.acmeUser.id}, 'original words')`;
  });

  async function whileSuspended<T>(fn: () => Promise<T>): Promise<T> {
    await db.sql`update public.tenants set status = 'suspended' where id = ${acme}`;
    try {
      return await fn();
    } finally {
      await db.sql`update public.tenants set status = 'active' where id = ${acme}`;
    }
  }

  // No RETURNING (it would add the select policy): what the update policy alone allows.
  const edit = async (tx: Tx, where: 'filtered' | 'bare') =>
    (where === 'filtered'
      ? await tx`update public.ticket_messages set content = 'edited while suspended' where tenant_id = ${acme} and id = ${message}`
      : await tx`update public.ticket_messages set content = 'edited while suspended'`).count;

  it('the author edits their message while the tenant is active (control)', async () => {
    const r = await probeAs(db.sql, 'authenticated', customer, (tx) => edit(tx, 'filtered'));
    expect(r).toEqual({ ok: true, value: 1 });
  });

  it('no message is edited in a suspended tenant, with or without a filter, whatever the token names', async () => {
    const results = await whileSuspended(async () => {
      const out: Record<string, unknown> = {};
      for (const claims of [customer, supabaseClaims(users.acmeUser)]) {
        for (const where of ['filtered', 'bare'] as const) {
          const r = await probeAs(db.sql, 'authenticated', claims, (tx) => edit(tx, where));
          out[`${claims.tenant_id ? 'acme' : 'none'} ${where}`] = r.ok ? r.value : r.error.code;
        }
      }
      return out;
    });
    expect(results).toEqual({ 'acme filtered': 0, 'acme bare': 0, 'none filtered': 0, 'none bare': 0 });
  });

  it('nobody leaves a suspended tenant either (a membership is a row of the tenant)', async () => {
    const r = await whileSuspended(() =>
      probeAs(db.sql, 'authenticated', customer, async (tx) =>
        (await tx`delete from public.memberships where tenant_id = ${acme} and user_id = ${users.acmeUser.id} returning id`).length));
    expect(r).toEqual({ ok: true, value: 0 });
  });

  it('marking an attachment uploaded records nothing in a suspended tenant (and does while active)', async () => {
    const [{ id }] = await db.sql`
      insert into public.attachments (tenant_id, ticket_id, file_name, size_bytes, path)
      values (${acme}, ${ticket}, 'late.pdf', 10, 'set-by-trigger') returning id`;
    const mark = () =>
      probeAs(db.sql, 'authenticated', customer, async (tx) => {
        await tx`select private.mark_attachment_uploaded(${acme}, ${id})`;
        return (await tx`select status from public.attachments where tenant_id = ${acme} and id = ${id}`)[0].status;
      });
    expect(await whileSuspended(mark)).toEqual({ ok: true, value: 'pending' });
    expect(await mark()).toEqual({ ok: true, value: 'uploaded' });
  });

  it('a former member edits none of their old messages', async () => {
    const r = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeUser), async (tx) => {
      await tx`delete from public.memberships where tenant_id = ${acme} and user_id = ${users.acmeUser.id}`;
      return await edit(tx, 'bare');
    });
    expect(r).toEqual({ ok: true, value: 0 });
  });
});

describe("attachments reference only their uploader's own messages", () => {
  const ticket = '50000000-0000-4000-8000-0000000000f1';
  const customerMessage = '60000000-0000-4000-8000-0000000000f2';
  const staffReply = '60000000-0000-4000-8000-0000000000f3';
  const customer = supabaseClaims(users.acmeUser, acme);
  const admin = supabaseClaims(users.acmeAdmin, acme);
  let auth: AuthFixture;
  let storageDir: string;

  beforeAll(async () => {
    storageDir = await mkdtemp(path.join(os.tmpdir(), 'isolation-storage-'));
    auth = await configureAuth(db.url, { LOCAL_STORAGE_DIR: storageDir, STORAGE_BACKEND: 'local' });
    await db.sql`insert into public.tickets (tenant_id, id, title, created_by) values (${acme}, ${ticket}, 'Attach here please', ${users.acmeUser.id})`;
    await db.sql`
      insert into public.ticket_messages (tenant_id, id, ticket_id, author_id, content) values
        (${acme}, ${customerMessage}, ${ticket}, ${users.acmeUser.id}, 'Here is my screenshot'),
        (${acme}, ${staffReply}, ${ticket}, ${users.acmeAdmin.id}, 'We are on it')`;
  });
  afterAll(async () => {
    await closeDb();
    await auth?.close();
    if (storageDir) await rm(storageDir, { recursive: true, force: true });
  });

  const attach = (tx: Tx, messageId: string) =>
    tx`insert into public.attachments (tenant_id, ticket_id, message_id, file_name, size_bytes)
       values (${acme}, ${ticket}, ${messageId}, 'shot.png', 10)`;

  it("the direct path refuses a file on someone else's message, in both directions", async () => {
    for (const [who, claims, messageId] of [['customer', customer, staffReply], ['admin', admin, customerMessage]] as const) {
      const r = await probeAs(db.sql, 'authenticated', claims, (tx) => attach(tx, messageId));
      expect(r.ok ? 'attached' : r.error.code, who).toBe('PT403');
    }
    const ok = await probeAs(db.sql, 'authenticated', customer, async (tx) => (await attach(tx, customerMessage)).count);
    expect(ok).toEqual({ ok: true, value: 1 });
  });

  it("POST /tickets/{id}/attachments with the staff reply's id is refused, not 201", async () => {
    const token = await supabaseToken(users.acmeUser, { tenantId: acme });
    const body = (messageId: string) => ({ file_name: 'shot.png', content_type: 'image/png', size_bytes: 10, message_id: messageId });
    const refused = await call(ticketsApp, 'POST', `/tickets/${ticket}/attachments`, { token, body: body(staffReply) });
    expect([refused.status, errorCode(refused)]).toEqual([403, 'forbidden']);
    const own = await call(ticketsApp, 'POST', `/tickets/${ticket}/attachments`, { token, body: body(customerMessage) });
    expect(own.status, JSON.stringify(own.body)).toBe(201);
    expect(own.body.attachment).toMatchObject({ message_id: customerMessage, uploaded_by: users.acmeUser.id });
    const rows = await db.sql`select message_id from public.attachments where tenant_id = ${acme} and ticket_id = ${ticket}`;
    expect(rows.map((r) => r.message_id)).toEqual([customerMessage]);
  });
});

describe("a ticket's lock", () => {
  it("is not taken by an outsider's message or attachment: refused at once by the policy, not after waiting on the ticket", async () => {
    // The victim's ticket is being written (its row locked, as a new message locks it).
    const writer = await db.sql.reserve();
    try {
      await writer`begin`;
      await writer`select 1 from public.tickets where tenant_id = ${globex} and id = ${victimTicket} for no key update`;
      const [{ pid }] = await writer`select pg_backend_pid() as pid`;
      // An Acme admin who is no one in Globex.
      const outsider = supabaseClaims(users.acmeAdmin, acme);
      const attempts = [
        probeAs(db.sql, 'authenticated', outsider, (tx) =>
          tx`insert into public.ticket_messages (tenant_id, ticket_id, author_id, content)
             values (${globex}, ${victimTicket}, ${users.acmeAdmin.id}, 'probe')`),
        probeAs(db.sql, 'authenticated', outsider, (tx) =>
          tx`insert into public.attachments (tenant_id, ticket_id, file_name, size_bytes)
             values (${globex}, ${victimTicket}, 'probe.txt', 1)`),
      ];
      // Refused at once, they never wait on the writer's lock (the database says who waits).
      expect(await someoneWaitsFor(db.sql, Number(pid))).toBe(false);
      const settled = await Promise.all(attempts);
      expect(settled).toHaveLength(2);
      for (const r of settled) expect(r).toMatchObject({ ok: false, error: { code: '42501' } });
    } finally {
      await writer`rollback`;
      writer.release();
    }
  });
});

describe('checks that run before the policies say nothing to a caller who may not make the write', () => {
  const codeOf = (r: { ok: true } | { ok: false; error: { code?: string } }) => (r.ok ? 'written' : r.error.code);

  it("another tenant's teams are not learned through a macro's set_team (20261207195000)", async () => {
    const outsider = supabaseClaims(users.globexAdmin, globex);
    const macro = (team: string) =>
      probeAs(db.sql, 'authenticated', outsider, (tx) =>
        tx`insert into public.macros (tenant_id, scope, name, actions)
           values (${acme}, 'tenant', 'Probe', ${tx.json([{ type: 'set_team', team_id: team }])})`);
    const [real, none] = [codeOf(await macro(teams.acme)), codeOf(await macro('2a000000-0000-4000-8000-00000000dead'))];
    expect(real).not.toBe('written');
    expect(real).toBe(none);
  });

  it("who is a customer of a tenant is not learned by adding them to its team, outside it or as its customer (20261207195000)", async () => {
    const member = (claims: Record<string, unknown>, user: string) =>
      probeAs(db.sql, 'authenticated', claims, (tx) =>
        tx`insert into public.team_members (tenant_id, team_id, user_id) values (${acme}, ${teams.acme}, ${user})`);
    for (const claims of [supabaseClaims(users.globexAdmin, globex), supabaseClaims(users.acmeUser, acme)]) {
      const [customer, admin] = [codeOf(await member(claims, users.acmeUser.id)), codeOf(await member(claims, users.acmeAdmin.id))];
      expect(customer).not.toBe('written');
      expect(customer).toBe(admin);
    }
    // An admin of the tenant is told.
    expect(codeOf(await member(supabaseClaims(users.acmeAdmin, acme), users.acmeUser.id))).toBe('PT409');
  });
});
