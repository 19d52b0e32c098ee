// No endpoint reads a tenant table without an index (issue 12). Every GET operation of
// the tenants and tickets functions' OpenAPI documents is called as a tenant admin with
// real ids (a new route is covered without a test written for it; a path parameter
// this file cannot fill fails it), the statements it sends are captured
// (shared/db.ts observeStatements), and each is EXPLAINed with its parameters, in the
// role and claims it ran with, and with sequential scans disabled: a plan that still
// shows a Seq Scan on a table of the public schema has no index to answer it, whatever
// the data size. (What the statements' helper functions and triggers run inside is not
// seen here; writes are left for later.)
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app as ticketsApp } from '../../functions/tickets/app.ts';
import { closeDb, observeStatements } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call } from '../helpers/http.ts';
import { teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

type App = { request: (input: string, init?: RequestInit) => Response | Promise<Response> };
type Document = { paths: Record<string, Record<string, unknown>> };
type Plan = { 'Node Type': string; 'Relation Name'?: string; Plans?: Plan[] };

const acme = tenants.acme.id;
let db: TestDatabase;
let auth: AuthFixture;
let plain: postgres.Sql;

beforeAll(async () => {
  db = await freshDatabase('endpoint_plans');
  auth = await configureAuth(db.url, { PROVISIONING_ENCRYPTION_KEY: randomBytes(32).toString('base64') });
  plain = postgres(db.url, { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  observeStatements(null);
  await closeDb();
  await plain.end();
  await auth.close();
  await db.close();
});

/** Seq Scan nodes on public tables in a plan. */
function seqScans(plan: Plan, publicTables: Set<string>): string[] {
  const here = plan['Node Type'] === 'Seq Scan' && plan['Relation Name'] && publicTables.has(plan['Relation Name'])
    ? [plan['Relation Name']]
    : [];
  return [...here, ...(plan.Plans ?? []).flatMap((p) => seqScans(p, publicTables))];
}

it('every GET endpoint of tenants and tickets reads through indexes', async () => {
  const token = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  // Real ids for every path parameter the documents use.
  const ticket = await call(ticketsApp, 'POST', '/tickets', { token, body: { title: 'Plans', description: 'Indexed?' } });
  const endpoint = await call(tenantsApp, 'POST', `/tenants/${acme}/webhooks`, { token, body: { url: 'http://127.0.0.1:9/plans' } });
  const upload = await call(ticketsApp, 'POST', `/tickets/${ticket.body.id}/attachments`, {
    token,
    body: { file_name: 'a.txt', content_type: 'text/plain', size_bytes: 1 },
  });
  const ids: Record<string, string> = {
    tenantId: acme,
    teamId: teams.acme,
    id: ticket.body.id,
    endpointId: endpoint.body.id,
    attachmentId: upload.body.attachment?.id,
  };
  const extraQueries: Record<string, string[]> = {
    '/tickets': ['?status=open&limit=20', '?q=printer', '?q=printer&sort=relevance', '?assignee=me', `?team_id=${teams.acme}`],
    '/tenants/{tenantId}/audit': ['?table=tickets'],
  };

  const captured: { text: string; values: unknown[]; scope: string | undefined; route: string }[] = [];
  let route = '';
  observeStatements((text, values, scope) => captured.push({ text, values, scope, route }));
  const unfilled: string[] = [];
  for (const [fn, app] of Object.entries({ tenants: tenantsApp, tickets: ticketsApp } as Record<string, App>)) {
    const doc = (await (await app.request(`/${fn}/openapi.json`)).json()) as Document;
    for (const [path, ops] of Object.entries(doc.paths)) {
      if (!('get' in ops)) continue;
      const url = path.replace(/\{(\w+)\}/g, (_, name: string) => {
        if (!ids[name]) unfilled.push(`${path}: ${name}`);
        return ids[name] ?? 'missing';
      });
      for (const query of ['', ...(extraQueries[path] ?? [])]) {
        route = `GET ${path}${query}`;
        const r = await call(app, 'GET', `${url}${query}`, { token });
        expect(r.status, `${route}: ${JSON.stringify(r.body)}`).toBeLessThan(500);
      }
    }
  }
  observeStatements(null);
  expect(unfilled, `path parameters this test cannot fill: add their ids`).toEqual([]);

  const publicTables = new Set(
    (await db.sql`select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'p')`).map((r) => r.relname as string),
  );
  // The detector itself: a read no index can answer shows its Seq Scan with the
  // setting on.
  const control = await plain.begin(async (tx) => {
    await tx`set local enable_seqscan = off`;
    const [row] = await tx.unsafe(`explain (format json) select * from public.teams where description like '%x%'`);
    return seqScans((row['QUERY PLAN'] as { Plan: Plan }[])[0].Plan, publicTables);
  });
  expect(control).toEqual(['teams']);
  const statements = captured.filter((s) => /^\s*(select|with)\b/i.test(s.text) && !/set_config\(/i.test(s.text));
  expect(new Set(statements.map((s) => s.route)).size).toBeGreaterThanOrEqual(14);
  const offenders: string[] = [];
  for (const s of statements) {
    const [role, claims] = (s.scope ?? 'postgres\u0000{}').split('\u0000');
    const plan = await plain.begin(async (tx) => {
      if (s.scope) await tx`select set_config('role', ${role}, true), set_config('request.jwt.claims', ${claims}, true)`;
      await tx`set local enable_seqscan = off`;
      const [row] = await tx.unsafe(`explain (format json) ${s.text}`, s.values as never[]);
      return (row['QUERY PLAN'] as { Plan: Plan }[])[0].Plan;
    });
    const scans = seqScans(plan, publicTables);
    if (scans.length) offenders.push(`${s.route}: Seq Scan on ${scans.join(', ')} in ${s.text.replace(/\s+/g, ' ').slice(0, 160)}`);
  }
  console.info(`[endpoint plans] ${statements.length} statements of ${new Set(statements.map((s) => s.route)).size} GET routes explained`);
  expect(offenders).toEqual([]);
}, 120_000);
