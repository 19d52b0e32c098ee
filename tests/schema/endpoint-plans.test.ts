// No endpoint reaches a tenant table without an index (issue 12). Every operation of
// the tenants and tickets functions' OpenAPI documents — reads and writes — is called
// for real, and every statement it runs is planned with sequential scans disabled:
// the statements the handlers send, and those run inside the SQL functions, triggers
// and foreign-key checks they reach (auto_explain with nested statements, its plans
// sent back as notices and read through shared/db.ts observeNotices). With
// enable_seqscan off the planner takes any index that can answer, whatever the data
// size, so a Seq Scan left on a table with a tenant_id column means no index can. On
// the mid-size dataset loaded below, a scan that reads and throws away a thousand rows
// or more fails too: an index that matches only the tenant, filtered row by row.
//
// GET routes are generated from the documents (a new one is covered without a test
// written for it; a path parameter this file cannot fill fails it). Writes need a
// valid body and an order (create before delete), so they are listed below; the list
// must name every write operation of the documents, or the test fails.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app as ticketsApp } from '../../functions/tickets/app.ts';
import { encryptJson } from '../../shared/crypto.ts';
import { closeDb, observeNotices } from '../../shared/db.ts';
import { loadTenantsAndTeams } from '../../scripts/bench-data.mjs';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call } from '../helpers/http.ts';
import { teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

type App = { request: (input: string, init?: RequestInit) => Response | Promise<Response> };
type Document = { paths: Record<string, Record<string, unknown>> };
type Plan = {
  'Node Type': string;
  'Relation Name'?: string;
  'Schema'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  'Recheck Cond'?: string;
  'Filter'?: string;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: Plan[];
};
type Explained = { route: string; text: string; plan: Plan };

const acme = tenants.acme.id;
const apps: Record<string, App> = { tenants: tenantsApp, tickets: ticketsApp };
let db: TestDatabase;
let auth: AuthFixture;

beforeAll(async () => {
  db = await freshDatabase('endpoint_plans');
  // Every new session of this database plans without sequential scans and sends the
  // plan of every statement, nested ones included, to its client.
  const name = new URL(db.url).pathname.slice(1);
  for (
    const setting of [
      `session_preload_libraries = 'auto_explain'`,
      `auto_explain.log_min_duration = 0`,
      `auto_explain.log_nested_statements = on`,
      `auto_explain.log_analyze = on`,
      `auto_explain.log_timing = off`,
      `auto_explain.log_format = 'json'`,
      `auto_explain.log_level = 'notice'`,
      `enable_seqscan = off`,
    ]
  ) await db.sql.unsafe(`alter database "${name}" set ${setting}`);
  await loadMidSizeData();
  auth = await configureAuth(db.url, { PROVISIONING_ENCRYPTION_KEY: randomBytes(32).toString('base64') });
  await closeDb();
}, 300_000); // loads ~200k rows; on a loaded 2-core machine this alone has taken over 120 s

/** A mid-size dataset, so the planner's choices are the ones it makes in production:
 *  200 more tenants with 10,000 members, and in acme 20,000 tickets with 40,000
 *  messages, 40,000 timeline events, 40,000 audit rows and 10,000 attachments, team
 *  members in the other tenants, then fresh statistics. */
async function loadMidSizeData(): Promise<void> {
  await loadTenantsAndTeams(db.sql);
  const N = 20_000;
  await db.sql`alter table public.tickets disable trigger user`;
  await db.sql`alter table public.ticket_messages disable trigger user`;
  await db.sql`
    insert into public.tickets (tenant_id, number, title, description, status, priority, department, team_id,
                                created_by, assigned_to, created_at, custom_fields)
    select ${acme}, g, 'Mid-size ticket ' || g, 'About ' || (array['printing', 'vpn', 'billing', 'login'])[1 + g % 4],
      (array['open', 'pending', 'escalated', 'resolved', 'closed'])[1 + g % 5],
      (array['low', 'medium', 'high', 'urgent'])[1 + g % 4], 'support', ${teams.acme},
      case when g % 4 = 0 then ${users.acmeUser.id}::uuid else ${users.acmeAdmin.id}::uuid end,
      case when g % 3 = 0 then ${users.acmeAgent.id}::uuid end,
      now() - make_interval(secs => g * 60),
      -- Custom field values (the field is defined by a route below) on one ticket in 100.
      case when g % 100 = 0 then '{"plan": "silver"}'::jsonb else '{}'::jsonb end
    from generate_series(1, ${N}) g`;
  await db.sql`
    insert into public.ticket_messages (tenant_id, ticket_id, author_id, content, created_at)
    select t.tenant_id, t.id, t.created_by, 'Message ' || k, t.created_at + make_interval(secs => k)
    from public.tickets t, generate_series(1, 2) k where t.tenant_id = ${acme}`;
  await db.sql`
    insert into public.ticket_events (tenant_id, ticket_id, type, actor_user_id)
    select t.tenant_id, t.id, e, t.created_by from public.tickets t, unnest(array['created', 'assigned']) e
    where t.tenant_id = ${acme}`;
  await db.sql`
    insert into public.audit_logs (tenant_id, table_name, record_key, action, actor_role, new_data)
    select t.tenant_id, 'tickets', jsonb_build_object('id', t.id), a, 'authenticated', '{}'
    from public.tickets t, unnest(array['INSERT', 'UPDATE']) a where t.tenant_id = ${acme}`;
  await db.sql`alter table public.attachments disable trigger user`;
  await db.sql`
    insert into public.attachments (tenant_id, ticket_id, file_name, size_bytes, path, status, uploaded_by)
    select t.tenant_id, t.id, 'file.txt', 10, t.tenant_id || '/' || t.id || '/' || gen_random_uuid() || '/file.txt', 'uploaded', t.created_by
    from public.tickets t where t.tenant_id = ${acme} and t.number % 2 = 0`;
  await db.sql`alter table public.attachments enable trigger user`;
  await db.sql`
    insert into public.team_members (tenant_id, team_id, user_id)
    select m.tenant_id, t.id, m.user_id from public.memberships m
    join public.teams t on t.tenant_id = m.tenant_id and t.name = 'Team ' || (1 + abs(hashtext(m.user_id::text)) % 5)
    where m.tenant_id <> ${acme} and m.role <> 'user'`;
  await db.sql`insert into private.ticket_counters (tenant_id, last_number) values (${acme}, ${N})
    on conflict (tenant_id) do update set last_number = excluded.last_number`;
  await db.sql`alter table public.tickets enable trigger user`;
  await db.sql`alter table public.ticket_messages enable trigger user`;
  await db.sql`select private.rebuild_ticket_stats(${acme})`;
  // As autovacuum would have: statistics, and the GIN indexes' pending lists merged
  // (a long pending list makes the planner avoid the search index).
  await db.sql`vacuum analyze`;
}
afterAll(async () => {
  observeNotices(null);
  await closeDb();
  await auth.close();
  await db.close();
});

/** Seq Scan nodes on the given tables in a plan. */
function seqScans(plan: Plan, tenantTables: Set<string>): string[] {
  const name = `${plan['Schema'] ?? 'public'}.${plan['Relation Name']}`;
  const here = plan['Node Type'] === 'Seq Scan' && tenantTables.has(name) ? [`Seq Scan on ${name}`] : [];
  return [...here, ...(plan.Plans ?? []).flatMap((p) => seqScans(p, tenantTables))];
}

/** Scans that read many rows only to throw them away (auto_explain runs with analyze):
 *  on a tenant of millions, that is a sequential scan in disguise: an index walk over
 *  the whole tenant filtered row by row. A list that returns what it reads, or a page
 *  that stops early, throws little away. */
const WASTE_LIMIT = 1000;
function wastefulScans(plan: Plan, tenantTables: Set<string>): string[] {
  const name = `${plan['Schema'] ?? 'public'}.${plan['Relation Name']}`;
  const loops = plan['Actual Loops'] ?? 1;
  const removed = ((plan['Rows Removed by Filter'] ?? 0) + (plan['Rows Removed by Index Recheck'] ?? 0)) * loops;
  const here = plan['Relation Name'] && tenantTables.has(name) && removed >= WASTE_LIMIT
    ? [`${plan['Node Type']} on ${name}${plan['Index Name'] ? ` (${plan['Index Name']})` : ''} threw away ${removed} rows (filter ${plan['Filter']})`]
    : [];
  return [...here, ...(plan.Plans ?? []).flatMap((p) => wastefulScans(p, tenantTables))];
}

/** The plans auto_explain sent while fn ran, each labelled with the route. */
async function explained(route: string, fn: () => Promise<void>, into: Explained[]): Promise<void> {
  observeNotices((message) => {
    const at = message.indexOf('{');
    if (!message.includes('plan:') || at < 0) return;
    const body = JSON.parse(message.slice(at)) as { 'Query Text': string; Plan: Plan };
    into.push({ route, text: body['Query Text'], plan: body.Plan });
  });
  try {
    await fn();
  } finally {
    observeNotices(null);
  }
}

it('every endpoint of tenants and tickets, and everything it runs inside, reads through indexes', async () => {
  const tok = {
    super: await supabaseToken(users.super),
    admin: await supabaseToken(users.acmeAdmin, { tenantId: acme }),
    agent: await supabaseToken(users.acmeAgent, { tenantId: acme }),
    user: await supabaseToken(users.acmeUser, { tenantId: acme }),
  };
  const plans: Explained[] = [];
  const called = new Set<string>();
  const statuses: string[] = [];
  /** Calls a route, records its plans, and insists it did its work (2xx). */
  const run = async (
    fn: 'tenants' | 'tickets',
    method: string,
    template: string,
    url: string,
    opts: { token?: string; body?: unknown } = {},
  ) => {
    const route = `${method} ${template}`;
    called.add(route);
    let result!: Awaited<ReturnType<typeof call>>;
    await explained(route, async () => {
      result = await call(apps[fn], method, url, { token: opts.token ?? tok.admin, body: opts.body });
    }, plans);
    if (result.status >= 300) statuses.push(`${route} (${url}): ${result.status} ${JSON.stringify(result.body)}`);
    return result.body;
  };

  // Writes first, in an order that gives each one something to act on; their ids then
  // fill the GET routes' path parameters.
  await run('tenants', 'PATCH', '/tenants/me', '/tenants/me', { body: { display_name: 'Planner' } });
  const created = await run('tenants', 'POST', '/tenants', '/tenants', {
    token: tok.super,
    body: { name: 'Planned', slug: 'planned-tenant', admin: { email: 'owner@planned.test' } },
  });
  await run('tenants', 'PATCH', '/tenants/{tenantId}', `/tenants/${acme}`, { body: { name: 'Acme Planned' } });
  const invite = await run('tenants', 'POST', '/tenants/{tenantId}/invitations', `/tenants/${acme}/invitations`, {
    body: { email: users.globexUser.email, role: 'agent' },
  });
  await run('tenants', 'POST', '/tenants/invitations/{invitationId}/accept', `/tenants/invitations/${invite.id}/accept`, {
    token: await supabaseToken(users.globexUser),
  });
  const revoked = await run('tenants', 'POST', '/tenants/{tenantId}/invitations', `/tenants/${acme}/invitations`, {
    body: { email: 'later@acme.test', role: 'user' },
  });
  await run(
    'tenants',
    'DELETE',
    '/tenants/{tenantId}/invitations/{invitationId}',
    `/tenants/${acme}/invitations/${revoked.id}`,
  );
  await run('tenants', 'PATCH', '/tenants/{tenantId}/members/{userId}', `/tenants/${acme}/members/${users.globexUser.id}`, {
    body: { role: 'user' },
  });
  const team = await run('tenants', 'POST', '/tenants/{tenantId}/teams', `/tenants/${acme}/teams`, {
    body: { name: 'Planners', department: 'marketing' },
  });
  await run('tenants', 'PATCH', '/tenants/{tenantId}/teams/{teamId}', `/tenants/${acme}/teams/${team.id}`, {
    body: { name: 'Plan makers' },
  });
  await run('tenants', 'POST', '/tenants/{tenantId}/teams/{teamId}/members', `/tenants/${acme}/teams/${team.id}/members`, {
    body: { user_id: users.acmeAgent.id },
  });
  await run(
    'tenants',
    'DELETE',
    '/tenants/{tenantId}/teams/{teamId}/members/{userId}',
    `/tenants/${acme}/teams/${team.id}/members/${users.acmeAgent.id}`,
  );
  await run('tenants', 'PUT', '/tenants/{tenantId}/services/{service}', `/tenants/${acme}/services/chatwoot`, {
    token: tok.super,
    body: { enabled: true },
  });
  // The service is provisioned by the job queue; mark it failed, then ready, as the
  // runner would, so retry and the credential routes have something to act on.
  await db.sql`update public.tenant_services set state = 'failed', last_error = 'planned'
    where tenant_id = ${acme} and service = 'chatwoot'`;
  await run('tenants', 'POST', '/tenants/{tenantId}/services/{service}/retry', `/tenants/${acme}/services/chatwoot/retry`, {
    token: tok.super,
  });
  const sealed = await encryptJson({ password: 'planned' }, { tenantId: acme, service: 'chatwoot' });
  await db.sql`update public.tenant_services set state = 'active', last_error = null, credentials_encrypted = ${sealed}
    where tenant_id = ${acme} and service = 'chatwoot'`;
  await run(
    'tenants',
    'POST',
    '/tenants/{tenantId}/services/{service}/credentials',
    `/tenants/${acme}/services/chatwoot/credentials`,
  );
  await run(
    'tenants',
    'POST',
    '/tenants/{tenantId}/services/{service}/rotate-credentials',
    `/tenants/${acme}/services/chatwoot/rotate-credentials`,
  );
  const endpoint = await run('tenants', 'POST', '/tenants/{tenantId}/webhooks', `/tenants/${acme}/webhooks`, {
    body: { url: 'http://127.0.0.1:9/plans' },
  });
  await run('tenants', 'PATCH', '/tenants/{tenantId}/webhooks/{endpointId}', `/tenants/${acme}/webhooks/${endpoint.id}`, {
    body: { enabled: true },
  });
  await run(
    'tenants',
    'POST',
    '/tenants/{tenantId}/webhooks/{endpointId}/rotate-secret',
    `/tenants/${acme}/webhooks/${endpoint.id}/rotate-secret`,
  );
  const apiKey = await run('tenants', 'POST', '/tenants/{tenantId}/api-keys', `/tenants/${acme}/api-keys`, {
    body: { name: 'plans', scopes: ['tickets:read'] },
  });

  await run('tickets', 'PUT', '/tickets/sla-policies/{priority}', '/tickets/sla-policies/high', {
    body: { first_response_minutes: 30, resolution_minutes: 240 },
  });
  // A team's own policy, which the PATCH below (team and priority) looks up.
  await run('tickets', 'PUT', '/tickets/sla-policies/{priority}', `/tickets/sla-policies/urgent?team_id=${teams.acme}`, {
    body: { first_response_minutes: 15, resolution_minutes: 120 },
  });
  await run('tickets', 'GET', '/tickets/sla-policies', `/tickets/sla-policies?team_id=${teams.acme}`);
  const ticket = await run('tickets', 'POST', '/tickets', '/tickets', {
    token: tok.user,
    body: { title: 'Plans', description: 'Indexed?', priority: 'high' },
  });
  const other = await run('tickets', 'POST', '/tickets', '/tickets', {
    token: tok.user,
    body: { title: 'Plans again', description: 'Merged away' },
  });
  await run('tickets', 'PATCH', '/tickets/{id}', `/tickets/${ticket.id}`, { body: { team_id: teams.acme, priority: 'urgent' } });
  await run('tickets', 'PUT', '/tickets/{id}/assignee', `/tickets/${ticket.id}/assignee`, {
    body: { user_id: users.acmeAgent.id },
  });
  await run('tickets', 'POST', '/tickets/{id}/status', `/tickets/${ticket.id}/status`, { body: { status: 'pending' } });
  const message = await run('tickets', 'POST', '/tickets/{id}/messages', `/tickets/${ticket.id}/messages`, {
    token: tok.agent,
    body: { content: 'Looking into it' },
  });
  await run('tickets', 'PATCH', '/tickets/{id}/messages/{messageId}', `/tickets/${ticket.id}/messages/${message.id}`, {
    token: tok.agent,
    body: { content: 'Looking into it now' },
  });
  const canned = await run('tickets', 'POST', '/tickets/canned-responses', '/tickets/canned-responses', {
    body: { scope: 'tenant', short_code: 'thanks', title: 'Thanks', body: 'Thanks, {{requester.name}}: #{{ticket.number}}' },
  });
  await run('tickets', 'PATCH', '/tickets/canned-responses/{cannedId}', `/tickets/canned-responses/${canned.id}`, {
    body: { title: 'Thank you' },
  });
  await run('tickets', 'POST', '/tickets/{id}/messages', `/tickets/${ticket.id}/messages`, {
    token: tok.agent,
    body: { canned_response_id: canned.id },
  });
  await run('tickets', 'POST', '/tickets/{id}/followers', `/tickets/${ticket.id}/followers`, {
    token: tok.agent,
    body: {},
  });
  await run('tickets', 'POST', '/tickets/{id}/messages', `/tickets/${ticket.id}/messages`, {
    token: tok.admin,
    body: { type: 'note', content: `Over to you, mention://user/${users.acmeAgent.id}/Agent` },
  });
  await run('tickets', 'POST', '/tickets/notifications/read', '/tickets/notifications/read', { token: tok.agent, body: {} });
  const macro = await run('tickets', 'POST', '/tickets/macros', '/tickets/macros', {
    body: {
      scope: 'tenant',
      name: 'Triage',
      actions: [{ type: 'add_tags', tags: ['triaged'] }, { type: 'set_priority', priority: 'high' }, {
        type: 'send_canned',
        canned_response_id: canned.id,
      }],
    },
  });
  await run('tickets', 'PATCH', '/tickets/macros/{macroId}', `/tickets/macros/${macro.id}`, { body: { description: 'First look' } });
  const autoRule = await run('tickets', 'POST', '/tickets/automation-rules', '/tickets/automation-rules', {
    body: {
      name: 'Printers to high',
      event: 'ticket.created',
      conditions: { all: [{ field: 'title', op: 'contains', value: 'printer' }] },
      actions: [{ type: 'set_priority', priority: 'high' }],
    },
  });
  await run('tickets', 'PATCH', '/tickets/automation-rules/{ruleId}', `/tickets/automation-rules/${autoRule.id}`, {
    body: { position: 2 },
  });
  await run('tickets', 'POST', '/tickets/{id}/macros/{macroId}/apply', `/tickets/${ticket.id}/macros/${macro.id}/apply`, {
    token: tok.agent,
  });
  // Custom fields (one customers see, one they do not), a department, a tag.
  const field = await run('tickets', 'POST', '/tickets/custom-fields', '/tickets/custom-fields', {
    body: { key: 'plan', label: 'Plan', type: 'select', options: ['gold', 'silver'], visible_to_customers: true },
  });
  const hiddenField = await run('tickets', 'POST', '/tickets/custom-fields', '/tickets/custom-fields', {
    body: { key: 'risk', label: 'Risk', type: 'number' },
  });
  await run('tickets', 'PATCH', '/tickets/{id}', `/tickets/${ticket.id}`, { body: { custom_fields: { plan: 'gold', risk: 3 } } });
  // Hidden and visible again: the values move both ways.
  for (const visible of [false, true]) {
    await run('tickets', 'PATCH', '/tickets/custom-fields/{fieldId}', `/tickets/custom-fields/${field.id}`, {
      body: { visible_to_customers: visible },
    });
  }
  const department = await run('tickets', 'POST', '/tickets/departments', '/tickets/departments', {
    body: { key: 'billing', name: 'Billing' },
  });
  await run('tickets', 'PATCH', '/tickets/departments/{departmentId}', `/tickets/departments/${department.id}`, {
    body: { name: 'Billing and invoices' },
  });
  const tag = await run('tickets', 'POST', '/tickets/tags', '/tickets/tags', { body: { name: 'planned', color: '#112233' } });
  await run('tickets', 'PATCH', '/tickets/tags/{tagId}', `/tickets/tags/${tag.id}`, { body: { color: '#445566' } });
  const upload = await run('tickets', 'POST', '/tickets/{id}/attachments', `/tickets/${ticket.id}/attachments`, {
    body: { file_name: 'a.txt', content_type: 'text/plain', size_bytes: 1 },
  });
  await run('tickets', 'POST', '/tickets/{id}/merge', `/tickets/${other.id}/merge`, { body: { into: ticket.id } });

  await run('tenants', 'PATCH', '/tenants/{tenantId}/entitlements', `/tenants/${acme}/entitlements`, {
    token: tok.super,
    body: { limits: { members: 500 }, features: { voice: true }, flags: { planned: 'b' } },
  });

  // Every GET route, with the ids made above.
  const ids: Record<string, string> = {
    tenantId: acme,
    teamId: teams.acme,
    id: ticket.id,
    endpointId: endpoint.id,
    attachmentId: upload.attachment?.id,
    invitationId: invite.id,
    userId: users.acmeAgent.id,
    service: 'chatwoot',
    messageId: message.id,
    priority: 'high',
    cannedId: canned.id,
    macroId: macro.id,
    ruleId: autoRule.id,
    fieldId: field.id,
    departmentId: department.id,
    tagId: tag.id,
  };
  const extraQueries: Record<string, string[]> = {
    // Relevance search, its first page (ranked candidates): a common word, a word in no
    // ticket. (The exact order — with other filters, least relevant first, or paging
    // past the candidates — filters the tenant's matches under RLS row by row, as the
    // search always did: not listed, see the README's search paragraph.)
    '/tickets': [
      '?status=open&limit=20',
      '?assignee=me',
      `?team_id=${teams.acme}`,
      '?q=printing',
      '?q=zanzibar',
      '?custom_field=plan:gold',
      '?custom_field=risk:3',
    ],
    '/tenants/{tenantId}/audit': ['?table_name=tickets', '?table_name=teams', '?action=UPDATE', '?action=DELETE'],
    '/tickets/canned-responses': ['?code=th', '?scope=tenant'],
    '/tickets/notifications': ['?unread=true'],
    '/tickets/automation-rules/{ruleId}/runs': ['?outcome=failed'],
  };
  const unfilled: string[] = [];
  const documented: string[] = [];
  for (const [fn, app] of Object.entries(apps)) {
    const doc = (await (await app.request(`/${fn}/openapi.json`)).json()) as Document;
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) documented.push(`${method.toUpperCase()} ${path}`);
      if (!('get' in ops)) continue;
      const url = path.replace(/\{(\w+)\}/g, (_, name: string) => {
        if (!ids[name]) unfilled.push(`${path}: ${name}`);
        return ids[name] ?? 'missing';
      });
      for (const query of ['', ...(extraQueries[path] ?? [])]) {
        await run(fn as 'tenants' | 'tickets', 'GET', `${path}${query}`, `${url}${query}`);
        called.add(`GET ${path}`);
      }
    }
  }

  // A request with an API key: its verification and the key's context, through indexes.
  await run('tickets', 'GET', '/tickets', '/tickets', { token: apiKey.key });

  // The removals last.
  await run('tenants', 'DELETE', '/tenants/{tenantId}/api-keys/{keyId}', `/tenants/${acme}/api-keys/${apiKey.id}`);
  await run('tickets', 'DELETE', '/tickets/{id}/attachments/{attachmentId}', `/tickets/${ticket.id}/attachments/${upload.attachment.id}`);
  await run('tickets', 'DELETE', '/tickets/{id}', `/tickets/${ticket.id}`);
  await run('tickets', 'POST', '/tickets/{id}/restore', `/tickets/${ticket.id}/restore`);
  await run('tickets', 'DELETE', '/tickets/sla-policies/{priority}', '/tickets/sla-policies/high');
  await run('tickets', 'DELETE', '/tickets/sla-policies/{priority}', `/tickets/sla-policies/urgent?team_id=${teams.acme}`);
  await run('tickets', 'DELETE', '/tickets/macros/{macroId}', `/tickets/macros/${macro.id}`);
  await run('tickets', 'DELETE', '/tickets/automation-rules/{ruleId}', `/tickets/automation-rules/${autoRule.id}`);
  await run('tickets', 'DELETE', '/tickets/canned-responses/{cannedId}', `/tickets/canned-responses/${canned.id}`);
  await run('tickets', 'DELETE', '/tickets/custom-fields/{fieldId}', `/tickets/custom-fields/${hiddenField.id}`);
  await run('tickets', 'DELETE', '/tickets/departments/{departmentId}', `/tickets/departments/${department.id}`);
  await run('tickets', 'DELETE', '/tickets/tags/{tagId}', `/tickets/tags/${tag.id}`);
  await run('tickets', 'DELETE', '/tickets/{id}/followers/{userId}', `/tickets/${ticket.id}/followers/${users.acmeAgent.id}`, {
    token: tok.agent,
  });
  // One of the endpoint's deliveries as its attempts would leave it, sent again.
  const [failed] = await db.sql`update private.webhook_deliveries set status = 'failed'
    where id = (select min(d.id) from private.webhook_deliveries d where d.endpoint_id = ${endpoint.id}) returning id`;
  await run(
    'tenants',
    'POST',
    '/tenants/{tenantId}/webhooks/{endpointId}/deliveries/retry',
    `/tenants/${acme}/webhooks/${endpoint.id}/deliveries/retry`,
    { body: { delivery_id: Number(failed.id) } },
  );
  await run('tenants', 'DELETE', '/tenants/{tenantId}/webhooks/{endpointId}', `/tenants/${acme}/webhooks/${endpoint.id}`);
  await run('tenants', 'DELETE', '/tenants/{tenantId}/teams/{teamId}', `/tenants/${acme}/teams/${team.id}`);
  await run('tenants', 'DELETE', '/tenants/{tenantId}/members/{userId}', `/tenants/${acme}/members/${users.globexUser.id}`);
  await run('tenants', 'POST', '/tenants/{tenantId}/suspend', `/tenants/${created.id}/suspend`, { token: tok.super });
  await run('tenants', 'POST', '/tenants/{tenantId}/resume', `/tenants/${created.id}/resume`, { token: tok.super });
  await run('tenants', 'DELETE', '/tenants/{tenantId}', `/tenants/${created.id}`, { token: tok.super });

  expect(unfilled, 'path parameters this test cannot fill: add their ids').toEqual([]);
  expect(
    documented.filter((r) => !called.has(r)).sort(),
    'operations of the OpenAPI documents this test does not call: add them above',
  ).toEqual([]);
  expect(statuses, 'every call must succeed, or its plans prove nothing').toEqual([]);

  const tenantTables = new Set(
    (await db.sql`select n.nspname || '.' || c.relname as name from pg_class c
      join pg_namespace n on n.oid = c.relnamespace
      join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
      where n.nspname in ('public', 'private') and c.relkind in ('r', 'p')`).map((r) => r.name as string),
  );
  expect(tenantTables.has('public.tickets')).toBe(true);
  const offenders = new Set<string>();
  for (const p of plans) {
    const scans = [...seqScans(p.plan, tenantTables), ...wastefulScans(p.plan, tenantTables)];
    if (scans.length) offenders.add(`${p.route}: ${scans.join(', ')} in ${p.text.replace(/\s+/g, ' ').slice(0, 200)}`);
  }
  const nested = plans.filter((p) => !/^\s*(select|with|insert|update|delete|begin|commit)\b/i.test(p.text) || /\$\d/.test(p.text));
  console.info(
    `[endpoint plans] ${plans.length} plans (${nested.length} from functions, triggers and key checks) of ${called.size} operations`,
  );
  expect(called.size).toBeGreaterThanOrEqual(50);
  // Each operation's own statements were seen (a route none is captured for would pass
  // the check below by having nothing to check).
  expect([...called].filter((r) => !plans.some((p) => p.route === r)), 'operations none of whose plans was captured').toEqual([]);
  expect([...offenders]).toEqual([]);
}, 180_000);

it('the detector sees a Seq Scan (at the top and inside a function) and a walk that throws most of a tenant away', async () => {
  const { db: pool } = await import('../../shared/db.ts');
  const tenantTables = new Set(['public.teams']);
  const top: Explained[] = [];
  await explained('control', async () => {
    await pool()`select count(*) from public.teams where description like ${'%x%'}`;
  }, top);
  expect(top.flatMap((p) => seqScans(p.plan, tenantTables))).toEqual(['Seq Scan on public.teams']);
  const nested: Explained[] = [];
  await explained('control', async () => {
    await pool()`do $$ begin perform count(*) from public.teams where description like '%y%'; end $$`;
  }, nested);
  expect(nested.flatMap((p) => seqScans(p.plan, tenantTables))).toEqual(['Seq Scan on public.teams']);
  // A read that names the tenant and filters the rest walks the whole tenant.
  const wide: Explained[] = [];
  await explained('control', async () => {
    await pool()`select count(*) from public.tickets where tenant_id = ${acme} and description like ${'%vpn%'}`;
  }, wide);
  expect(wide.flatMap((p) => wastefulScans(p.plan, new Set(['public.tickets'])))).toHaveLength(1);
});

it('every read endpoint of voice, the provider’s call path included, reads through indexes', async () => {
  const { app: voiceApp } = await import('../../functions/voice/app.ts');
  const { apiKey } = await import('../../scripts/tokens.mjs');
  // Mid-size voice data: every tenant an agent and 20 customers; in acme 5,000 customers,
  // 5,000 calls with 3 transcript segments each and a knowledge base of 300 chunks.
  // Every tenant on a plan with voice (starter has none).
  await db.sql`update public.tenants set plan = 'pro' where plan = 'starter'`;
  await db.sql`
    insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config)
    select t.id, 'Desk', '+1555' || lpad(row_number() over (order by t.id)::text, 7, '0'), 'v',
           '{"model": "m", "system_prompt": "p"}'
    from public.tenants t`;
  await db.sql`
    insert into public.voice_customers (tenant_id, phone, name, tags)
    select t.id, '+1666' || lpad(g::text, 7, '0'), 'Customer ' || g, array['t' || (g % 10)]
    from public.tenants t, generate_series(1, 20) g where t.id <> ${acme}`;
  await db.sql`
    insert into public.voice_customers (tenant_id, phone, name, tags, created_at)
    select ${acme}, '+1777' || lpad(g::text, 7, '0'), 'Caller ' || g, array['acme-' || (g % 50)], now() - make_interval(secs => g)
    from generate_series(1, 5000) g`;
  const [agent] = await db.sql`select id, phone from public.voice_agents where tenant_id = ${acme}`;
  await db.sql`
    insert into public.voice_calls (tenant_id, agent_id, customer_id, status, provider_call_id, from_number, started_at, answered_at)
    select ${acme}, ${agent.id}, c.id, 'in_progress', 'plan-' || row_number() over (), c.phone,
           now() - make_interval(mins => row_number() over ()::int), now()
    from public.voice_customers c where c.tenant_id = ${acme}`;
  await db.sql`
    insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content)
    select c.tenant_id, c.id, k, 'customer', (array['hello there', 'my invoice is wrong', 'thanks, bye'])[k + 1]
      || case when c.provider_call_id = 'plan-7' then ' refund' else '' end
    from public.voice_calls c, generate_series(0, 2) k where c.tenant_id = ${acme}`;
  const [kb] = await db.sql`insert into public.voice_knowledge_bases (tenant_id, name) values (${acme}, 'Plans') returning id`;
  const paragraphs = Array.from({ length: 300 }, (_, i) => `Section ${i}: ${'filler words '.repeat(80)}${i === 150 ? 'parking garage' : ''}`);
  await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content) values (${acme}, ${kb.id}, 'Manual', ${paragraphs.join('\n\n')})`;
  // As autovacuum would have: statistics, and the GIN indexes' pending lists merged.
  await db.sql`vacuum analyze public.voice_agents, public.voice_customers, public.voice_calls, public.voice_call_segments, public.kb_chunks`;
  await closeDb();

  const tok = { admin: await supabaseToken(users.acmeAdmin, { tenantId: acme }) };
  const service = await apiKey('service_role', process.env.SUPABASE_JWT_SECRET!);
  const [customer] = await db.sql`select id, phone from public.voice_customers where tenant_id = ${acme} limit 1`;
  const [oneCall] = await db.sql`select id from public.voice_calls where tenant_id = ${acme} limit 1`;
  const [doc] = await db.sql`select id from public.kb_documents where tenant_id = ${acme}`;
  const ids: Record<string, string> = { id: oneCall.id, kbId: kb.id };
  const byPath: Record<string, string[]> = {
    '/voice/route': [`?to=${encodeURIComponent(agent.phone)}&from=${encodeURIComponent(customer.phone)}`],
    '/voice/knowledge/search': [`?tenant_id=${acme}&knowledge_base_id=${kb.id}&q=parking`],
    '/voice/knowledge-bases/search': ['?q=parking', `?q=parking&knowledge_base_id=${kb.id}`],
    '/voice/calls': ['', '?status=in_progress', `?customer_id=${customer.id}`, `?agent_id=${agent.id}`, '?q=refund'],
    '/voice/customers': ['', `?phone=${encodeURIComponent(customer.phone)}`],
    '/voice/agents/{id}': [],
    '/voice/customers/{id}': [],
    '/voice/knowledge-bases/{kbId}/documents/{id}': [],
    '/voice/knowledge-bases/{kbId}/documents/{id}/chunks': [],
    '/voice/calls/{id}/recording': [],
  };
  const plans: Explained[] = [];
  /** explained(), remembering each route run, so that one none of whose plans is captured
   *  fails rather than passing with nothing to check. */
  const ran = new Set<string>();
  const explainedHere = (route: string, fn: () => Promise<void>, into: Explained[]) => {
    ran.add(route);
    return explained(route, fn, into);
  };
  const statuses: string[] = [];
  const doc_ = (await (await voiceApp.request('/voice/openapi.json')).json()) as Document;
  const gets = Object.entries(doc_.paths).filter(([, ops]) => 'get' in ops).map(([p]) => p);
  for (const path of gets) {
    const url = path.replace(/\{(\w+)\}/g, (_, name: string) => ids[name] ?? 'missing');
    const queries = byPath[path] ?? [''];
    const machine = path === '/voice/route' || path === '/voice/knowledge/search';
    for (const query of queries.length ? queries : []) {
      await explainedHere(`GET ${path}`, async () => {
        const r = await call(voiceApp, 'GET', `${url}${query}`, machine ? { headers: { authorization: `Bearer ${service}` } } : { token: tok.admin });
        if (r.status >= 300) statuses.push(`GET ${path}${query}: ${r.status} ${JSON.stringify(r.body)}`);
      }, plans);
    }
  }
  // The ids of a single agent, customer and document, read through their routes.
  for (
    const [path, id] of [['/voice/agents/{id}', agent.id], ['/voice/customers/{id}', customer.id], [
      '/voice/knowledge-bases/{kbId}/documents/{id}',
      doc.id,
    ]]
  ) {
    await explainedHere(`GET ${path}`, async () => {
      const r = await call(voiceApp, 'GET', path.replace('{kbId}', kb.id).replace('{id}', id), { token: tok.admin });
      if (r.status >= 300) statuses.push(`GET ${path}: ${r.status}`);
    }, plans);
  }
  // A call's recording: the call's row is what it reads (this one has none in storage:
  // 404 no_recording, after the read).
  await explainedHere('GET /voice/calls/{id}/recording', async () => {
    const r = await call(voiceApp, 'GET', `/voice/calls/${oneCall.id}/recording`, { token: tok.admin });
    if (r.status !== 404 || r.body.error?.code !== 'no_recording') statuses.push(`GET /voice/calls/{id}/recording: ${r.status}`);
  }, plans);
  // A document's chunks: the first page, a later one, and those without an embedding.
  for (const query of ['', '?after=100&limit=50', '?embedded=false']) {
    const path = '/voice/knowledge-bases/{kbId}/documents/{id}/chunks';
    await explainedHere(`GET ${path}`, async () => {
      const r = await call(voiceApp, 'GET', `${path.replace('{kbId}', kb.id).replace('{id}', doc.id)}${query}`, { token: tok.admin });
      if (r.status !== 200 || !r.body.items.length) statuses.push(`GET ${path}${query}: ${r.status}`);
    }, plans);
  }
  // The searches by POST, with a query's embedding (here, without vector search, by the text).
  for (
    const [path, body, machine] of [
      ['/voice/knowledge-bases/search', { q: 'parking', embedding: [0.5, 0.5] }, false],
      ['/voice/knowledge/search', { tenant_id: acme, knowledge_base_id: kb.id, q: 'parking', embedding: [0.5, 0.5] }, true],
    ] as const
  ) {
    await explainedHere(`POST ${path}`, async () => {
      const r = await call(voiceApp, 'POST', path, machine ? { body, headers: { authorization: `Bearer ${service}` } } : { body, token: tok.admin });
      if (r.status !== 200 || r.body.mode !== 'full_text' || !r.body.items.length) statuses.push(`POST ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    }, plans);
  }
  // A tenant's customer (role user) linked to one voice customer record: their calls and
  // their record are found by index, not by the policy filtering the tenant's rows.
  await db.sql`update public.voice_customers set user_id = ${users.acmeUser.id} where tenant_id = ${acme} and id = ${customer.id}`;
  const userToken = await supabaseToken(users.acmeUser, { tenantId: acme });
  for (const url of ['/voice/calls', '/voice/calls?q=refund', '/voice/customers']) {
    await explainedHere(`GET ${url} (customer)`, async () => {
      const r = await call(voiceApp, 'GET', url, { token: userToken });
      if (r.status !== 200 || (url === '/voice/customers' && r.body.items.length !== 1)) statuses.push(`GET ${url} (customer): ${r.status}`);
    }, plans);
  }
  expect(statuses).toEqual([]);
  expect(doc.id).toBeTruthy();
  const tenantTables = new Set(
    (await db.sql`select n.nspname || '.' || c.relname as name from pg_class c
      join pg_namespace n on n.oid = c.relnamespace
      join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
      where n.nspname in ('public', 'private') and c.relkind in ('r', 'p')`).map((r) => r.name as string),
  );
  const offenders = new Set<string>();
  for (const p of plans) {
    const scans = [...seqScans(p.plan, tenantTables), ...wastefulScans(p.plan, tenantTables)];
    if (scans.length) offenders.add(`${p.route}: ${scans.join(', ')} in ${p.text.replace(/\s+/g, ' ').slice(0, 200)}`);
  }
  expect(plans.length).toBeGreaterThan(15);
  expect([...ran].filter((r) => !plans.some((p) => p.route === r)), 'routes none of whose plans was captured').toEqual([]);
  expect([...offenders]).toEqual([]);
}, 180_000);
