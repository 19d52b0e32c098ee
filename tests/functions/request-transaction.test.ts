// shared/auth/context: one transaction per user request. Everything a handler writes
// commits together when it succeeds and rolls back together when it fails, whatever
// the error; the caller lookup and the handler's queries share it.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AuthEnv, callerDb, requireUser } from '../../shared/auth/context.ts';
import { closeDb } from '../../shared/db.ts';
import { conflict } from '../../shared/errors.ts';
import { createApp } from '../../shared/http.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
let token: string;

const app = createApp<AuthEnv>('probe', { title: 'probe', description: 'probe' });
app.use('*', requireUser());
app.post('/teams/:outcome', async (c) => {
  await callerDb(c, tenants.acme.id, (tx) =>
    tx`insert into public.teams (tenant_id, name, department) values (${tenants.acme.id}, ${`Probe ${c.req.param('outcome')}`}, 'sales')`);
  // A second write in the same request, scoped to the same tenant.
  await callerDb(c, tenants.acme.id, (tx) => tx`update public.tenants set settings = '{"probe": true}' where id = ${tenants.acme.id}`);
  if (c.req.param('outcome') === 'conflict') throw conflict('probe', 'handler refused after writing');
  if (c.req.param('outcome') === 'crash') throw new Error('handler crashed after writing');
  const [{ txid }] = await callerDb(c, null, (tx) => tx`select txid_current()::text as txid`);
  return c.json({ txid });
});

beforeAll(async () => {
  db = await freshDatabase('request_tx');
  auth = await configureAuth(db.url);
  token = await supabaseToken(users.acmeAdmin, { tenantId: tenants.acme.id });
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

const state = async () => {
  const [row] = await db.sql`
    select (select count(*)::int from public.teams where name like 'Probe %') as teams,
           (select settings from public.tenants where id = ${tenants.acme.id}) as settings`;
  return row;
};

it('commits every write of a successful request, in one transaction', async () => {
  const r = await call(app, 'POST', '/probe/teams/ok', { token });
  expect(r.status).toBe(200);
  expect(await state()).toEqual({ teams: 1, settings: { probe: true } });
  const audit = await db.sql`select distinct transaction_id::text from public.audit_logs where tenant_id = ${tenants.acme.id} and table_name in ('teams', 'tenants') and actor_user_id = ${users.acmeAdmin.id}`;
  expect(audit.map((a) => a.transaction_id)).toEqual([r.body.txid]);
});

it('rolls back every write when the handler answers with an error', async () => {
  await db.sql`delete from public.teams where name like 'Probe %'`;
  await db.sql`update public.tenants set settings = '{}' where id = ${tenants.acme.id}`;
  const refused = await call(app, 'POST', '/probe/teams/conflict', { token });
  expect([refused.status, errorCode(refused)]).toEqual([409, 'probe']);
  const crashed = await call(app, 'POST', '/probe/teams/crash', { token });
  expect([crashed.status, errorCode(crashed)]).toEqual([500, 'internal_error']);
  expect(await state()).toEqual({ teams: 0, settings: {} });
});
