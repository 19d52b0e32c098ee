// A person's membership changing while a write names them (migration
// 20261206161000_assignments_and_keys_wait_for_role_changes.sql). The demotion or removal
// runs in a transaction held open here; the write comes through the function meanwhile.
// An assignment or a new key must wait for that change (a backend waits on the holder's
// lock) and, once it is committed, be refused; a follow, which may hold its ticket, must
// not wait but answer 503 at once, and its retry be refused. Unlocked, each went through
// and outlived the change's own clean-up, which could not see it.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app as ticketsApp } from '../../functions/tickets/app.ts';
import { closeDb } from '../../shared/db.ts';
import { whileHeld } from '../helpers/advisory-locks.ts';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { call, type CallResult } from '../helpers/http.ts';
import { LOCAL_SUPABASE_ISSUER, supabaseClaims, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

const acme = tenants.acme.id;
let db: TestDatabase;
let auth: AuthFixture;
let admin: string;

beforeAll(async () => {
  db = await freshDatabase('role_change_races');
  auth = await configureAuth(db.url);
  admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

/** A new member of acme, with a token bound to it. */
async function member(email: string, role: 'agent' | 'admin'): Promise<{ id: string; token: string }> {
  const [u] = await db.sql`insert into public.users (email) values (${email}) returning id`;
  await db.sql`insert into public.user_identities (issuer, subject, user_id) values (${LOCAL_SUPABASE_ISSUER}, ${u.id}, ${u.id})`;
  await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${u.id}, ${role})`;
  return { id: u.id as string, token: await supabaseToken({ id: u.id as string, email }, { tenantId: acme }) };
}

/** A ticket a customer filed, that nobody holds. */
async function customerTicket(title: string): Promise<string> {
  const [t] = await db.sql`insert into public.tickets (tenant_id, title, created_by) values (${acme}, ${title}, ${users.acmeUser.id}) returning id`;
  return t.id as string;
}

/** `write` sent while `change` is under way in another transaction: it must wait for it,
 *  and its answer comes once the change is committed. */
const duringChange = (change: string, params: unknown[], write: () => Promise<CallResult>) =>
  whileHeld(db.sql, (tx) => tx.unsafe(change, params as never[]), write);

const demote = `update public.memberships set role = 'user' where tenant_id = $1 and user_id = $2`;

it('a ticket assigned to an agent being demoted waits for the demotion and is refused', async () => {
  const agent = await member('demoted.assignee@acme.test', 'agent');
  const ticket = await customerTicket('Assigned during a demotion');
  const r = await duringChange(demote, [acme, agent.id], () =>
    call(ticketsApp, 'PUT', `/tickets/${ticket}/assignee`, { token: admin, body: { user_id: agent.id } }));
  expect([r.status, r.body?.error?.details?.constraint], JSON.stringify(r.body)).toEqual([422, 'tickets_assignee_role_check']);
  const [t] = await db.sql`select assigned_to from public.tickets where id = ${ticket}`;
  expect(t.assigned_to).toBeNull();
  const follows = await db.sql`select 1 from public.ticket_followers where ticket_id = ${ticket} and user_id = ${agent.id}`;
  expect(follows).toHaveLength(0);
});

it('an agent being demoted, added as a follower meanwhile, gets a 503 at once (a follow may hold its ticket), and the retry is refused', async () => {
  const agent = await member('demoted.follower@acme.test', 'agent');
  const ticket = await customerTicket('Followed during a demotion');
  const follow = () => call(ticketsApp, 'POST', `/tickets/${ticket}/followers`, { token: admin, body: { user_id: agent.id } });
  // No wait: a follow is often made holding its ticket (a mention, a merge, a rule), which
  // the demotion's unassigning may be waiting for; waiting here could deadlock.
  const during = await whileHeld(db.sql, (tx) => tx.unsafe(demote, [acme, agent.id]), follow, { waits: false });
  expect([during.status, during.body?.error?.code], JSON.stringify(during.body)).toEqual([503, 'timeout']);
  const retry = await follow();
  expect([retry.status, retry.body?.error?.code], JSON.stringify(retry.body)).toEqual([409, 'not_staff']);
  const follows = await db.sql`select 1 from public.ticket_followers where ticket_id = ${ticket} and user_id = ${agent.id}`;
  expect(follows).toHaveLength(0);
});

it('an API key created by an admin being removed waits for the removal and is refused', async () => {
  const removed = await member('removed.keymaker@acme.test', 'admin');
  const r = await duringChange(`delete from public.memberships where tenant_id = $1 and user_id = $2`, [acme, removed.id], () =>
    call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, { token: removed.token, body: { name: 'during removal', scopes: ['tickets:read'] } }));
  expect(r.status, JSON.stringify(r.body)).toBe(404);
  const keys = await db.sql`select 1 from public.api_keys where tenant_id = ${acme} and created_by = ${removed.id} and revoked_at is null`;
  expect(keys).toHaveLength(0);
});

it('an internal note written while a follower is being demoted leaves them no note notification to read', async () => {
  const agent = await member('demoted.noted@acme.test', 'agent');
  const ticket = await customerTicket('Noted during a demotion');
  const colleague = await member('noted.colleague@acme.test', 'agent');
  for (const who of [agent.id, colleague.id]) {
    await db.sql`insert into public.ticket_followers (tenant_id, ticket_id, user_id, reason) values (${acme}, ${ticket}, ${who}, 'manual')`;
  }
  // The note does not wait for the demotion (it reads the role it finds, unlocked).
  const note = await whileHeld(db.sql, (tx) => tx.unsafe(demote, [acme, agent.id]), () =>
    call(ticketsApp, 'POST', `/tickets/${ticket}/messages`, { token: admin, body: { type: 'note', content: 'Do not tell the customer yet' } }), { waits: false });
  expect(note.status, JSON.stringify(note.body)).toBe(201);
  // What each reads of it, through the select policy (the API's feed and realtime apply it).
  const feed = async (who: { id: string }) => {
    const read = await probeAs(db.sql, 'authenticated', supabaseClaims({ id: who.id } as never, acme), (tx) =>
      tx`select type from public.notifications where ticket_id = ${ticket}`);
    if (!read.ok) throw new Error(read.error.message);
    return read.value.map((n) => n.type);
  };
  expect(await feed(agent)).not.toContain('note.created');
  expect(await feed(colleague)).toContain('note.created');
  const [{ role }] = await db.sql`select role from public.memberships where tenant_id = ${acme} and user_id = ${agent.id}`;
  expect(role).toBe('user');
});

it('an admin being removed or demoted cannot meanwhile make someone an admin, nor remove another admin: a 503 at once, and the retry is refused', async () => {
  const mallory = await member('removed.admin@acme.test', 'admin');
  const friend = await member('friend.of.removed@acme.test', 'agent');
  const promote = () => call(tenantsApp, 'PATCH', `/tenants/${acme}/members/${friend.id}`, { token: mallory.token, body: { role: 'admin' } });
  // No wait (no lock taken after the row the change holds, which a statement over several
  // memberships would take in turn): the caller's own membership is read NOWAIT.
  const during = await whileHeld(db.sql, (tx) => tx.unsafe(`delete from public.memberships where tenant_id = $1 and user_id = $2`, [acme, mallory.id]), promote, { waits: false });
  expect([during.status, during.body?.error?.code], JSON.stringify(during.body)).toEqual([503, 'retry']);
  // Straight through the table, the same refusal as PT503 (PostgREST's 503; a 55P03 would be its 500).
  const [eve, pal] = [await member('removed.direct@acme.test', 'admin'), await member('pal.of.removed@acme.test', 'agent')];
  const direct = await whileHeld(
    db.sql,
    (tx) => tx.unsafe(`delete from public.memberships where tenant_id = $1 and user_id = $2`, [acme, eve.id]),
    () => probeAs(db.sql, 'authenticated', supabaseClaims({ id: eve.id } as never, acme), (tx) =>
      tx`update public.memberships set role = 'admin' where tenant_id = ${acme} and user_id = ${pal.id} returning id`),
    { waits: false },
  );
  expect(direct.ok ? 'changed' : direct.error.code).toBe('PT503');
  const retry = await promote();
  expect(retry.status, JSON.stringify(retry.body)).toBe(403);
  const [f] = await db.sql`select role from public.memberships where tenant_id = ${acme} and user_id = ${friend.id}`;
  expect(f.role).toBe('agent');

  // Demoted while removing another admin, straight through the table (PostgREST's path).
  const demoted = await member('demoted.admin@acme.test', 'admin');
  const other = await member('other.admin@acme.test', 'admin');
  const remove = () =>
    probeAs(db.sql, 'authenticated', supabaseClaims({ id: demoted.id } as never, acme), (tx) =>
      tx`delete from public.memberships where tenant_id = ${acme} and user_id = ${other.id} returning id`);
  // Removing an admin, it waits first for the tenant's row, which keep_last_admin takes
  // for both admins' changes; then its caller is read demoted: refused.
  const removal = await whileHeld(db.sql, (tx) => tx.unsafe(`update public.memberships set role = 'agent' where tenant_id = $1 and user_id = $2`, [acme, demoted.id]), remove);
  expect(removal.ok ? 'removed' : removal.error.code).toBe('PT403');
  const again = await remove();
  expect(again.ok && again.value.length).toBe(0); // an agent now: the policy finds nothing to remove
  expect(await db.sql`select 1 from public.memberships where tenant_id = ${acme} and user_id = ${other.id}`).toHaveLength(1);
  // An admin in office still does both, and anyone may still leave.
  const ok = await call(tenantsApp, 'PATCH', `/tenants/${acme}/members/${friend.id}`, { token: other.token, body: { role: 'admin' } });
  expect(ok.status, JSON.stringify(ok.body)).toBe(200);
  const left = await probeAs(db.sql, 'authenticated', supabaseClaims({ id: demoted.id } as never, acme), (tx) =>
    tx`delete from public.memberships where tenant_id = ${acme} and user_id = ${demoted.id} returning id`);
  expect(left.ok && left.value.length).toBe(1);
});

it("a member's change after their own demotion committed, judged on the role read before it, is refused (PT403)", async () => {
  const late = await member('late.demoted@acme.test', 'admin');
  const target = await member('late.target@acme.test', 'agent');
  // The caller context is read at the transaction's first check; the demotion commits
  // between that read and the change: the policy still passes, the trigger refuses.
  const r = await db.sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${JSON.stringify(supabaseClaims({ id: late.id } as never, acme))}, true)`;
    expect((await tx`select private.role_in(${acme}) as role`)[0].role).toBe('admin');
    await db.sql`update public.memberships set role = 'agent' where tenant_id = ${acme} and user_id = ${late.id}`;
    return await tx`update public.memberships set role = 'admin' where tenant_id = ${acme} and user_id = ${target.id} returning id`
      .then(() => 'changed', (e) => e.code);
  }).catch((e) => e.code);
  expect(r).toBe('PT403');
  const [t] = await db.sql`select role from public.memberships where tenant_id = ${acme} and user_id = ${target.id}`;
  expect(t.role).toBe('agent');
});
