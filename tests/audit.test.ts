// The audit trail: every change to every audited table writes exactly one correct row,
// by trigger, with the actor from the JWT claims; nobody but the owner rewrites it.
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { committedAs, freshDatabase, probeAs, type TestDatabase } from './helpers/db.ts';
import { supabaseClaims, teams, tenants, users } from './helpers/seed.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase('audit');
});
afterAll(() => db.close());

/** Runs fn with the super-admin's claims (committing), and returns the audit rows it
 *  produced. It runs as the table owner, so the trigger is tested on every table
 *  whatever RLS lets a role write; the actor comes from the claims alone. */
async function audited(fn: (tx: postgres.TransactionSql) => Promise<unknown>, table?: string) {
  const [{ max }] = await db.sql`select coalesce(max(id), 0)::bigint as max from public.audit_logs`;
  await db.sql.begin(async (tx) => {
    await tx`select set_config('request.jwt.claims', ${JSON.stringify(supabaseClaims(users.super))}, true)`;
    await fn(tx);
  });
  return await db.sql`
    select * from public.audit_logs where id > ${max} and (${table ?? null}::text is null or table_name = ${table ?? null}::text)
    order by id`;
}

const TICKET = '50000000-0000-4000-8000-000000000001';
// Voice rows the voice cases hang off (issue 14).
const KB = '60000000-0000-4000-8000-000000000001';
const DOC = '60000000-0000-4000-8000-000000000002';
const VOICE_AGENT = '60000000-0000-4000-8000-000000000003';
const CALL = '60000000-0000-4000-8000-000000000004';
const LLM = { model: 'gpt-4o-mini', system_prompt: 'Be brief' };
const tenantKey = (r: Record<string, unknown>) => ({ tenant_id: tenants.acme.id, id: r.id });

// For every audited table: an insert, an update and a delete, with the key the audit
// row must carry and the tenant it must be filed under.
const cases: {
  table: string;
  tenantId: string | null;
  key: (row: Record<string, unknown>) => Record<string, unknown>;
  insert: (tx: postgres.TransactionSql) => Promise<unknown>;
  update: (tx: postgres.TransactionSql) => Promise<unknown>;
  changed: string[];
  remove: (tx: postgres.TransactionSql) => Promise<unknown>;
}[] = [
  {
    table: 'tenants',
    tenantId: '30000000-0000-4000-8000-000000000001',
    key: () => ({ id: '30000000-0000-4000-8000-000000000001' }),
    insert: (tx) =>
      tx`insert into public.tenants (id, name, slug) values ('30000000-0000-4000-8000-000000000001', 'Audit Co', 'audit-co')`,
    update: (tx) => tx`update public.tenants set name = 'Audit Company', plan = 'pro' where slug = 'audit-co'`,
    changed: ['name', 'plan'],
    remove: (tx) => tx`delete from public.tenants where slug = 'audit-co'`,
  },
  {
    table: 'users',
    tenantId: null,
    key: () => ({ id: '30000000-0000-4000-8000-0000000000aa' }),
    insert: (tx) =>
      tx`insert into public.users (id, email) values ('30000000-0000-4000-8000-0000000000aa', 'audit@example.test')`,
    update: (tx) => tx`update public.users set first_name = 'Aud' where id = '30000000-0000-4000-8000-0000000000aa'`,
    changed: ['first_name'],
    remove: (tx) => tx`delete from public.users where id = '30000000-0000-4000-8000-0000000000aa'`,
  },
  {
    table: 'memberships',
    tenantId: tenants.globex.id,
    key: (r) => ({ tenant_id: tenants.globex.id, id: r.id }),
    insert: (tx) =>
      tx`insert into public.memberships (tenant_id, user_id, role) values (${tenants.globex.id}, ${users.acmeUser.id}, 'user')`,
    update: (tx) =>
      tx`update public.memberships set role = 'agent' where tenant_id = ${tenants.globex.id} and user_id = ${users.acmeUser.id}`,
    changed: ['role'],
    remove: (tx) => tx`delete from public.memberships where tenant_id = ${tenants.globex.id} and user_id = ${users.acmeUser.id}`,
  },
  {
    table: 'teams',
    tenantId: tenants.acme.id,
    key: (r) => ({ tenant_id: tenants.acme.id, id: r.id }),
    insert: (tx) =>
      tx`insert into public.teams (tenant_id, name, department) values (${tenants.acme.id}, 'Audit team', 'marketing')`,
    update: (tx) =>
      tx`update public.teams set department = 'sales', description = 'd' where tenant_id = ${tenants.acme.id} and name = 'Audit team'`,
    changed: ['department', 'description'],
    remove: (tx) => tx`delete from public.teams where tenant_id = ${tenants.acme.id} and name = 'Audit team'`,
  },
  {
    table: 'team_members',
    tenantId: tenants.acme.id,
    key: (r) => ({ tenant_id: tenants.acme.id, id: r.id }),
    insert: (tx) =>
      tx`insert into public.team_members (tenant_id, team_id, user_id) values (${tenants.acme.id}, ${teams.acme}, ${users.acmeAdmin.id})`,
    update: (tx) =>
      tx`update public.team_members set created_at = '2020-01-01' where tenant_id = ${tenants.acme.id} and user_id = ${users.acmeAdmin.id}`,
    changed: ['created_at'],
    remove: (tx) => tx`delete from public.team_members where tenant_id = ${tenants.acme.id} and user_id = ${users.acmeAdmin.id}`,
  },
  {
    table: 'invitations',
    tenantId: tenants.acme.id,
    key: (r) => ({ tenant_id: tenants.acme.id, id: r.id }),
    insert: (tx) =>
      tx`insert into public.invitations (tenant_id, email, role) values (${tenants.acme.id}, 'audit@acme.test', 'user')`,
    update: (tx) => tx`update public.invitations set role = 'agent' where email = 'audit@acme.test'`,
    changed: ['role'],
    remove: (tx) => tx`delete from public.invitations where email = 'audit@acme.test'`,
  },
  {
    table: 'tickets',
    tenantId: tenants.acme.id,
    key: (r) => ({ tenant_id: tenants.acme.id, id: r.id }),
    insert: (tx) =>
      tx`insert into public.tickets (tenant_id, title, created_by) values (${tenants.acme.id}, 'Audit me please', ${users.acmeUser.id})`,
    update: (tx) => tx`update public.tickets set priority = 'high', tags = '{vip}' where title = 'Audit me please'`,
    changed: ['priority', 'tags'],
    remove: (tx) => tx`delete from public.tickets where title = 'Audit me please'`,
  },
  {
    table: 'ticket_messages',
    tenantId: tenants.acme.id,
    key: (r) => ({ tenant_id: tenants.acme.id, id: r.id }),
    insert: (tx) =>
      tx`insert into public.ticket_messages (tenant_id, ticket_id, author_id, content) values (${tenants.acme.id}, ${TICKET}, ${users.acmeUser.id}, 'audited message')`,
    update: (tx) => tx`update public.ticket_messages set content = 'edited message' where content = 'audited message'`,
    changed: ['content', 'edited_at'],
    remove: (tx) => tx`delete from public.ticket_messages where content = 'edited message'`,
  },
  {
    table: 'attachments',
    tenantId: tenants.acme.id,
    key: (r) => ({ tenant_id: tenants.acme.id, id: r.id }),
    insert: (tx) =>
      tx`insert into public.attachments (tenant_id, ticket_id, file_name, size_bytes, path) values (${tenants.acme.id}, ${TICKET}, 'a.txt', 3, ${`${tenants.acme.id}/audit/a.txt`})`,
    update: (tx) => tx`update public.attachments set status = 'uploaded' where file_name = 'a.txt'`,
    changed: ['status'],
    remove: (tx) => tx`delete from public.attachments where file_name = 'a.txt'`,
  },
  {
    table: 'sla_policies',
    tenantId: tenants.acme.id,
    key: (r) => ({ tenant_id: tenants.acme.id, id: r.id }),
    insert: (tx) =>
      tx`insert into public.sla_policies (tenant_id, priority, first_response_minutes, resolution_minutes) values (${tenants.acme.id}, 'low', 60, 600)`,
    update: (tx) => tx`update public.sla_policies set resolution_minutes = 900 where priority = 'low'`,
    changed: ['resolution_minutes'],
    remove: (tx) => tx`delete from public.sla_policies where priority = 'low'`,
  },
  {
    table: 'canned_responses',
    tenantId: tenants.acme.id,
    key: (r) => ({ tenant_id: tenants.acme.id, id: r.id }),
    insert: (tx) =>
      tx`insert into public.canned_responses (tenant_id, scope, short_code, title, body) values (${tenants.acme.id}, 'tenant', 'audited', 'Audited', 'Hello {{requester.name}}')`,
    update: (tx) => tx`update public.canned_responses set title = 'Audited again' where short_code = 'audited'`,
    changed: ['title'],
    remove: (tx) => tx`delete from public.canned_responses where short_code = 'audited'`,
  },
  {
    table: 'ticket_followers',
    tenantId: tenants.acme.id,
    key: (r) => ({ tenant_id: tenants.acme.id, id: r.id }),
    insert: (tx) =>
      tx`insert into public.ticket_followers (tenant_id, ticket_id, user_id) values (${tenants.acme.id}, ${TICKET}, ${users.acmeAdmin.id})`,
    update: (tx) =>
      tx`update public.ticket_followers set reason = 'mentioned' where tenant_id = ${tenants.acme.id} and user_id = ${users.acmeAdmin.id}`,
    changed: ['reason'],
    remove: (tx) =>
      tx`delete from public.ticket_followers where tenant_id = ${tenants.acme.id} and user_id = ${users.acmeAdmin.id}`,
  },
  {
    table: 'notifications',
    tenantId: tenants.acme.id,
    key: (r) => ({ tenant_id: tenants.acme.id, id: r.id }),
    insert: (tx) =>
      tx`insert into public.notifications (tenant_id, user_id, ticket_id, type) values (${tenants.acme.id}, ${users.acmeAgent.id}, ${TICKET}, 'audited')`,
    update: (tx) => tx`update public.notifications set read_at = '2026-01-01T00:00:00Z' where type = 'audited'`,
    changed: ['read_at'],
    remove: (tx) => tx`delete from public.notifications where type = 'audited'`,
  },
  {
    table: 'macros',
    tenantId: tenants.acme.id,
    key: (r) => ({ tenant_id: tenants.acme.id, id: r.id }),
    insert: (tx) =>
      tx`insert into public.macros (tenant_id, scope, name, actions) values (${tenants.acme.id}, 'tenant', 'Audited macro', '[{"type":"set_priority","priority":"high"}]')`,
    update: (tx) => tx`update public.macros set description = 'audited' where name = 'Audited macro'`,
    changed: ['description'],
    remove: (tx) => tx`delete from public.macros where name = 'Audited macro'`,
  },
  {
    table: 'automation_rules',
    tenantId: tenants.acme.id,
    key: (r) => ({ tenant_id: tenants.acme.id, id: r.id }),
    insert: (tx) =>
      tx`insert into public.automation_rules (tenant_id, name, event, actions) values (${tenants.acme.id}, 'Audited rule', 'ticket.created', '[{"type":"set_priority","priority":"high"}]')`,
    update: (tx) => tx`update public.automation_rules set description = 'audited' where name = 'Audited rule'`,
    changed: ['description'],
    remove: (tx) => tx`delete from public.automation_rules where name = 'Audited rule'`,
  },
  {
    table: 'automation_runs',
    tenantId: tenants.acme.id,
    key: (r) => ({ tenant_id: tenants.acme.id, id: r.id }),
    insert: (tx) =>
      tx`insert into public.automation_runs (tenant_id, rule_id, ticket_id, event, event_id, outcome)
      select ${tenants.acme.id}, r.id, ${TICKET}, 'ticket.created', gen_random_uuid(), 'applied'
      from public.automation_rules r where r.name = 'Audited run rule'`,
    update: (tx) =>
      tx`update public.automation_runs set error = 'audited' where event = 'ticket.created' and rule_id = (select id from public.automation_rules where name = 'Audited run rule')`,
    changed: ['error'],
    remove: (tx) =>
      tx`delete from public.automation_runs where rule_id = (select id from public.automation_rules where name = 'Audited run rule')`,
  },
  {
    table: 'departments',
    tenantId: tenants.acme.id,
    key: tenantKey,
    insert: (tx) => tx`insert into public.departments (tenant_id, key, name) values (${tenants.acme.id}, 'audited', 'Audited')`,
    update: (tx) => tx`update public.departments set name = 'Audited again' where key = 'audited'`,
    changed: ['name'],
    remove: (tx) => tx`delete from public.departments where key = 'audited'`,
  },
  {
    table: 'tags',
    tenantId: tenants.acme.id,
    key: tenantKey,
    insert: (tx) => tx`insert into public.tags (tenant_id, name) values (${tenants.acme.id}, 'audited-tag')`,
    update: (tx) => tx`update public.tags set color = '#00ff00' where name = 'audited-tag'`,
    changed: ['color'],
    remove: (tx) => tx`delete from public.tags where name = 'audited-tag'`,
  },
  {
    table: 'custom_field_definitions',
    tenantId: tenants.acme.id,
    key: tenantKey,
    insert: (tx) =>
      tx`insert into public.custom_field_definitions (tenant_id, key, label, type) values (${tenants.acme.id}, 'audited', 'Audited', 'text')`,
    update: (tx) => tx`update public.custom_field_definitions set label = 'Audited again' where key = 'audited'`,
    changed: ['label'],
    remove: (tx) => tx`delete from public.custom_field_definitions where key = 'audited'`,
  },
  {
    table: 'ticket_internal_fields',
    tenantId: tenants.acme.id,
    key: () => ({ tenant_id: tenants.acme.id, ticket_id: TICKET }),
    insert: (tx) =>
      tx`insert into public.ticket_internal_fields (tenant_id, ticket_id, custom_fields) values (${tenants.acme.id}, ${TICKET}, '{"audited": 1}')`,
    update: (tx) => tx`update public.ticket_internal_fields set custom_fields = '{"audited": 2}' where ticket_id = ${TICKET}`,
    changed: ['custom_fields'],
    remove: (tx) => tx`delete from public.ticket_internal_fields where ticket_id = ${TICKET}`,
  },
  {
    table: 'ticket_events',
    tenantId: tenants.acme.id,
    key: (r) => ({ tenant_id: tenants.acme.id, id: r.id }),
    insert: (tx) =>
      tx`insert into public.ticket_events (tenant_id, ticket_id, type) values (${tenants.acme.id}, ${TICKET}, 'restored')`,
    update: (tx) => tx`update public.ticket_events set data = '{"x":1}' where type = 'restored'`,
    changed: ['data'],
    remove: (tx) => tx`delete from public.ticket_events where type = 'restored'`,
  },
  {
    table: 'tenant_services',
    tenantId: tenants.acme.id,
    key: (r) => ({ tenant_id: tenants.acme.id, id: r.id }),
    insert: (tx) => tx`insert into public.tenant_services (tenant_id, service) values (${tenants.acme.id}, 'odoo')`,
    update: (tx) => tx`update public.tenant_services set desired_state = 'removed' where service = 'odoo'`,
    changed: ['desired_state'],
    remove: (tx) => tx`delete from public.tenant_services where service = 'odoo'`,
  },
  {
    table: 'webhook_endpoints',
    tenantId: tenants.acme.id,
    key: (r) => ({ tenant_id: tenants.acme.id, id: r.id }),
    insert: (tx) =>
      tx`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted) values (${tenants.acme.id}, 'https://hooks.example.com/a', 'v1:sealed')`,
    update: (tx) => tx`update public.webhook_endpoints set enabled = false where url = 'https://hooks.example.com/a'`,
    changed: ['enabled'],
    remove: (tx) => tx`delete from public.webhook_endpoints where url = 'https://hooks.example.com/a'`,
  },
  {
    table: 'api_keys',
    tenantId: tenants.acme.id,
    key: (r) => ({ tenant_id: tenants.acme.id, id: r.id }),
    insert: (tx) =>
      tx`insert into public.api_keys (tenant_id, name, prefix, scopes) values (${tenants.acme.id}, 'audited key', 'tpk_live_0a0a0a0a', '{tickets:read}')`,
    update: (tx) => tx`update public.api_keys set revoked_at = now() where name = 'audited key'`,
    changed: ['revoked_at'],
    remove: (tx) => tx`delete from public.api_keys where name = 'audited key'`,
  },
  {
    table: 'tenant_org_links',
    tenantId: tenants.acme.id,
    key: () => ({ tenant_id: tenants.acme.id, issuer: 'https://idp.example' }),
    insert: (tx) =>
      tx`insert into public.tenant_org_links (tenant_id, issuer, org_id) values (${tenants.acme.id}, 'https://idp.example', 'org_1')`,
    update: (tx) => tx`update public.tenant_org_links set org_id = 'org_2' where issuer = 'https://idp.example'`,
    changed: ['org_id'],
    remove: (tx) => tx`delete from public.tenant_org_links where issuer = 'https://idp.example'`,
  },
  {
    table: 'user_identities',
    tenantId: null,
    key: () => ({ issuer: 'https://idp.example', subject: 'user_audit' }),
    insert: (tx) =>
      tx`insert into public.user_identities (issuer, subject, user_id) values ('https://idp.example', 'user_audit', ${users.acmeUser.id})`,
    update: (tx) => tx`update public.user_identities set user_id = ${users.acmeAgent.id} where subject = 'user_audit'`,
    changed: ['user_id'],
    remove: (tx) => tx`delete from public.user_identities where subject = 'user_audit'`,
  },
  {
    table: 'voice_knowledge_bases',
    tenantId: tenants.acme.id,
    key: tenantKey,
    insert: (tx) => tx`insert into public.voice_knowledge_bases (tenant_id, name) values (${tenants.acme.id}, 'Audit KB')`,
    update: (tx) => tx`update public.voice_knowledge_bases set description = 'changed' where name = 'Audit KB'`,
    changed: ['description'],
    remove: (tx) => tx`delete from public.voice_knowledge_bases where name = 'Audit KB'`,
  },
  {
    table: 'kb_documents',
    tenantId: tenants.acme.id,
    key: tenantKey,
    insert: (tx) =>
      tx`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content) values (${tenants.acme.id}, ${KB}, 'Audit doc', 'Text.')`,
    update: (tx) => tx`update public.kb_documents set title = 'Audit doc 2' where title = 'Audit doc'`,
    changed: ['title'],
    remove: (tx) => tx`delete from public.kb_documents where title = 'Audit doc 2'`,
  },
  {
    table: 'voice_agents',
    tenantId: tenants.acme.id,
    key: tenantKey,
    insert: (tx) =>
      tx`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config) values (${tenants.acme.id}, 'Audit agent', '+15550004004', 'v', ${
        tx.json(LLM)
      })`,
    update: (tx) => tx`update public.voice_agents set greeting = 'Hi' where name = 'Audit agent'`,
    changed: ['greeting'],
    remove: (tx) => tx`delete from public.voice_agents where name = 'Audit agent'`,
  },
  {
    table: 'voice_customers',
    tenantId: tenants.acme.id,
    key: tenantKey,
    insert: (tx) => tx`insert into public.voice_customers (tenant_id, phone) values (${tenants.acme.id}, '+15550005005')`,
    update: (tx) => tx`update public.voice_customers set notes = 'VIP' where phone = '+15550005005'`,
    changed: ['notes'],
    remove: (tx) => tx`delete from public.voice_customers where phone = '+15550005005'`,
  },
  {
    table: 'voice_calls',
    tenantId: tenants.acme.id,
    key: tenantKey,
    insert: (tx) =>
      tx`insert into public.voice_calls (tenant_id, agent_id, provider_call_id) values (${tenants.acme.id}, ${VOICE_AGENT}, 'manual:audit-call')`,
    update: (tx) => tx`update public.voice_calls set summary = 'Asked for hours' where provider_call_id = 'manual:audit-call'`,
    changed: ['summary'],
    remove: (tx) => tx`delete from public.voice_calls where provider_call_id = 'manual:audit-call'`,
  },
  {
    table: 'voice_call_segments',
    tenantId: tenants.acme.id,
    key: tenantKey,
    insert: (tx) =>
      tx`insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content) values (${tenants.acme.id}, ${CALL}, 5, 'agent', 'Hello')`,
    update: (tx) => tx`update public.voice_call_segments set content = 'Hello there' where seq = 5`,
    changed: ['content'],
    remove: (tx) => tx`delete from public.voice_call_segments where seq = 5`,
  },
  {
    table: 'platform_admins',
    tenantId: null,
    key: () => ({ user_id: users.acmeUser.id }),
    insert: (tx) => tx`insert into public.platform_admins (user_id) values (${users.acmeUser.id})`,
    update: (tx) => tx`update public.platform_admins set created_at = '2020-01-01' where user_id = ${users.acmeUser.id}`,
    changed: ['created_at'],
    remove: (tx) => tx`delete from public.platform_admins where user_id = ${users.acmeUser.id}`,
  },
  // Plans (issue 15): a super-admin's overrides and flags for one tenant.
  {
    table: 'tenant_plan_overrides',
    tenantId: tenants.globex.id,
    key: () => ({ tenant_id: tenants.globex.id }),
    insert: (tx) =>
      tx`insert into private.tenant_plan_overrides (tenant_id, limits) values (${tenants.globex.id}, '{"members": 5}')`,
    update: (tx) => tx`update private.tenant_plan_overrides set limits = '{"members": 6}' where tenant_id = ${tenants.globex.id}`,
    changed: ['limits'],
    remove: (tx) => tx`delete from private.tenant_plan_overrides where tenant_id = ${tenants.globex.id}`,
  },
  {
    table: 'tenant_feature_flags',
    tenantId: tenants.globex.id,
    key: () => ({ tenant_id: tenants.globex.id, flag: 'audited' }),
    insert: (tx) =>
      tx`insert into private.tenant_feature_flags (tenant_id, flag, value) values (${tenants.globex.id}, 'audited', 'true')`,
    update: (tx) => tx`update private.tenant_feature_flags set value = 'false' where flag = 'audited'`,
    changed: ['value'],
    remove: (tx) => tx`delete from private.tenant_feature_flags where flag = 'audited'`,
  },
];

// Rows the ticket cases hang off, created once.
beforeAll(async () => {
  await db
    .sql`insert into public.tickets (tenant_id, id, title, created_by) values (${tenants.acme.id}, ${TICKET}, 'Audited parent ticket', ${users.acmeUser.id})`;
  await db.sql`insert into public.voice_knowledge_bases (tenant_id, id, name) values (${tenants.acme.id}, ${KB}, 'Parent KB')`;
  await db
    .sql`insert into public.kb_documents (tenant_id, id, knowledge_base_id, title, content) values (${tenants.acme.id}, ${DOC}, ${KB}, 'Parent doc', 'Parent text.')`;
  await db
    .sql`insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config) values (${tenants.acme.id}, ${VOICE_AGENT}, 'Parent agent', '+15550006006', 'v', ${
    db.sql.json(LLM)
  })`;
  await db
    .sql`insert into public.voice_calls (tenant_id, id, agent_id, provider_call_id) values (${tenants.acme.id}, ${CALL}, ${VOICE_AGENT}, 'manual:parent-call')`;
  await db
    .sql`insert into public.automation_rules (tenant_id, name, event, actions, active) values (${tenants.acme.id}, 'Audited run rule', 'ticket.created', '[{"type":"set_priority","priority":"high"}]', false)`;
});

describe.each(cases)('$table', (c) => {
  it('INSERT, UPDATE and DELETE each write exactly one correct audit row', async () => {
    const ins = await audited(c.insert, c.table);
    expect(ins).toHaveLength(1);
    const row = ins[0].new_data as Record<string, unknown>;
    expect(ins[0]).toMatchObject({
      table_name: c.table,
      action: 'INSERT',
      tenant_id: c.tenantId,
      record_key: c.key(row),
      actor_user_id: users.super.id,
      actor_subject: users.super.id,
      actor_role: 'authenticated',
      old_data: null,
    });

    const upd = await audited(c.update, c.table);
    expect(upd).toHaveLength(1);
    expect(upd[0]).toMatchObject({ action: 'UPDATE', record_key: c.key(row), changed_fields: c.changed });
    for (const field of c.changed) expect(upd[0].old_data[field]).not.toEqual(upd[0].new_data[field]);

    const del = await audited(c.remove, c.table);
    expect(del).toHaveLength(1);
    expect(del[0]).toMatchObject({ action: 'DELETE', record_key: c.key(row), new_data: null });
    expect(del[0].old_data).toMatchObject(upd[0].new_data);
  });
});

it('covers every audited table', async () => {
  const rows = await db.sql`
    select distinct c.relname from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_proc p on p.oid = t.tgfoid
    where p.proname = 'audit_row' order by 1`;
  expect(rows.map((r) => r.relname)).toEqual(cases.map((c) => c.table).sort());
});

it('records a no-op update as nothing, and deleted_at as SOFT_DELETE then RESTORE', async () => {
  expect(await audited((tx) => tx`update public.teams set name = name where id = ${teams.acme}`)).toHaveLength(0);
  const soft = await audited((tx) =>
    tx`update public.tenants set status = 'deleted', deleted_at = now() where id = ${tenants.globex.id}`
  );
  expect(soft.map((r) => r.action)).toEqual(['SOFT_DELETE']);
  const back = await audited((tx) =>
    tx`update public.tenants set status = 'active', deleted_at = null where id = ${tenants.globex.id}`
  );
  expect(back.map((r) => r.action)).toEqual(['RESTORE']);
});

it('files a cascade under each row it removed', async () => {
  const members = await db.sql`select id from public.team_members where team_id = ${teams.acme}`;
  expect(members.length).toBeGreaterThan(0);
  const rows = await audited((tx) => tx`delete from public.teams where id = ${teams.acme}`);
  expect(rows.map((r) => `${r.action} ${r.table_name}`).sort()).toEqual([
    ...members.map(() => 'DELETE team_members'),
    'DELETE teams',
  ]);
});

it('renders timestamps as the API does, whatever the session time zone and precision', async () => {
  const times = ['2026-03-04 05:06:07.1+02', '2026-03-04 05:06:07+00', '2026-03-04 05:06:07.999999-07:30'];
  for (const tz of ['UTC', 'America/New_York']) {
    const rows = await audited(async (tx) => {
      await tx.unsafe(`set local timezone = '${tz}'`);
      for (const [i, at] of times.entries()) {
        await tx`insert into public.teams (tenant_id, name, department, created_at) values (${tenants.acme.id}, ${`Clock ${tz} ${i}`}, 'sales', ${at}::timestamptz)`;
      }
    }, 'teams');
    const expected = await db.sql`select private.api_timestamp(t::timestamptz) as at from unnest(${times}::text[]) t`;
    expect(rows.map((r) => r.new_data.created_at), tz).toEqual(expected.map((e) => e.at));
    for (const r of rows) expect(r.new_data.updated_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  }
});

it("writes one row per changed row of a multi-row statement, in the statement's order", async () => {
  const names = ['Multi a', 'Multi b', 'Multi c'];
  const ins = await audited(
    (tx) =>
      tx`insert into public.teams (tenant_id, name, department) select ${tenants.acme.id}, n, 'sales' from unnest(${names}::text[]) n`,
    'teams',
  );
  expect(ins.map((r) => [r.action, r.new_data.name])).toEqual(names.map((n) => ['INSERT', n]));
  expect(new Set(ins.map((r) => r.record_key.id)).size).toBe(3);
  // 'Multi b' already has this description after the first update: the second changes
  // two rows and writes two audit rows.
  await audited((tx) =>
    tx`update public.teams set description = 'same' where tenant_id = ${tenants.acme.id} and name = 'Multi b'`
  );
  const upd = await audited(
    (tx) => tx`update public.teams set description = 'same' where tenant_id = ${tenants.acme.id} and name like 'Multi %'`,
    'teams',
  );
  expect(upd.map((r) => [r.new_data.name, r.changed_fields]).sort()).toEqual([['Multi a', ['description']], ['Multi c', [
    'description',
  ]]]);
  for (const r of upd) expect(r.record_key).toEqual({ tenant_id: tenants.acme.id, id: r.new_data.id });
  const del = await audited(
    (tx) => tx`delete from public.teams where tenant_id = ${tenants.acme.id} and name like 'Multi %'`,
    'teams',
  );
  expect(del.map((r) => r.action)).toEqual(['DELETE', 'DELETE', 'DELETE']);
});

it('leaves secret columns out of the row images but names them among the changed fields', async () => {
  await db
    .sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted) values (${tenants.acme.id}, 'https://hooks.example.com/s', 'v1:one')`;
  const rows = await audited((tx) =>
    tx`update public.webhook_endpoints set secret_encrypted = 'v1:two' where url = 'https://hooks.example.com/s'`
  );
  expect(rows).toHaveLength(1);
  // A new secret is a rotation: its time is recorded too (20261206062000).
  expect(rows[0].changed_fields).toEqual(['secret_encrypted', 'secret_rotated_at']);
  expect(rows[0].old_data).not.toHaveProperty('secret_encrypted');
  expect(rows[0].new_data).not.toHaveProperty('secret_encrypted');
  expect(JSON.stringify(rows[0])).not.toContain('v1:');
});

it('leaves search columns out of the row images and the changed fields', async () => {
  const tickets = await audited(async (tx) => {
    await tx`insert into public.tickets (tenant_id, title, created_by) values (${tenants.acme.id}, 'Searchable words', ${users.acmeUser.id})`;
    await tx`update public.tickets set title = 'Other searchable words' where title = 'Searchable words'`;
  }, 'tickets');
  expect(tickets.map((r) => [r.action, r.changed_fields.includes('search')])).toEqual([['INSERT', false], ['UPDATE', false]]);
  expect(tickets[1].changed_fields).toEqual(['title']);
  const segments = await audited(
    (tx) =>
      tx`insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content) values (${tenants.acme.id}, ${CALL}, 9, 'customer', 'Opening hours please')`,
    'voice_call_segments',
  );
  expect(segments).toHaveLength(1);
  for (const r of [...tickets, ...segments]) {
    expect(r.new_data).not.toHaveProperty('search');
    expect(r.old_data ?? {}).not.toHaveProperty('search');
  }
  expect(segments[0].new_data.content).toBe('Opening hours please');
});

it('files a knowledge-base document once: its chunks, cut from its content, write no audit rows', async () => {
  const content = Array.from({ length: 400 }, (_, i) => `Paragraph ${i} about opening hours and parking.`).join('\n\n');
  const rows = await audited((tx) =>
    tx`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content) values (${tenants.acme.id}, ${KB}, 'Chunked doc', ${content})`
  );
  const [{ chunks }] = await db.sql`
    select count(*)::int as chunks from public.kb_chunks k join public.kb_documents d on d.tenant_id = k.tenant_id and d.id = k.document_id
    where d.title = 'Chunked doc'`;
  expect(chunks).toBeGreaterThan(1);
  expect(rows.map((r) => `${r.action} ${r.table_name}`)).toEqual(['INSERT kb_documents']);
  expect(rows[0].new_data.content).toBe(content);
});

it("leaves an unchanged value over 4 kB out of an UPDATE's images, and keeps a changed one", async () => {
  // Varied text, so the value is large as stored, not only before compression.
  const words = (seed: string) => Array.from({ length: 3000 }, (_, i) => `${seed}${(i * 7919) % 10007}`).join(' ');
  const first = words('a');
  const second = words('b');
  await db
    .sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content) values (${tenants.acme.id}, ${KB}, 'Large doc', ${first})`;
  const [rename] = await audited(
    (tx) => tx`update public.kb_documents set title = 'Large doc, renamed' where title = 'Large doc'`,
    'kb_documents',
  );
  expect(rename.changed_fields).toEqual(['title']);
  expect(rename.old_data).not.toHaveProperty('content');
  expect(rename.new_data).not.toHaveProperty('content');
  expect(rename.old_data).toMatchObject({ title: 'Large doc', knowledge_base_id: KB });
  expect(rename.new_data).toMatchObject({ title: 'Large doc, renamed', knowledge_base_id: KB });
  const [{ size }] = await db
    .sql`select pg_column_size(old_data) + pg_column_size(new_data) as size from public.audit_logs where id = ${rename.id}`;
  expect(size).toBeLessThan(4096);

  const [edit] = await audited(
    (tx) => tx`update public.kb_documents set content = ${second} where title = 'Large doc, renamed'`,
    'kb_documents',
  );
  expect(edit.changed_fields).toEqual(['content']);
  expect([edit.old_data.content, edit.new_data.content]).toEqual([first, second]);
  // A small unchanged value stays in both images.
  expect([edit.old_data.title, edit.new_data.title]).toEqual(['Large doc, renamed', 'Large doc, renamed']);
});

it('names machine actors by their role', async () => {
  const [{ max }] = await db.sql`select max(id) as max from public.audit_logs`;
  await db.sql.begin(async (tx) => {
    await tx`select set_config('role', 'service_role', true), set_config('request.jwt.claims', '{"role":"service_role"}', true)`;
    await tx`update public.tenants set settings = '{"k":1}' where id = ${tenants.acme.id}`;
  });
  const [row] = await db.sql`select * from public.audit_logs where id > ${max}`;
  expect(row).toMatchObject({ actor_role: 'service_role', actor_user_id: null, changed_fields: ['settings'] });
});

describe('append-only', () => {
  for (const role of ['authenticated', 'service_role'] as const) {
    it(`${role} can neither update, delete nor truncate audit rows`, async () => {
      const claims = role === 'authenticated' ? supabaseClaims(users.super) : {};
      for (
        const stmt of [
          "update public.audit_logs set action = 'DELETE'",
          'delete from public.audit_logs',
          'truncate public.audit_logs',
        ]
      ) {
        const r = await probeAs(db.sql, role, claims, (tx) => tx.unsafe(stmt));
        expect(r.ok ? 'allowed' : r.error.code, `${role}: ${stmt}`).toBe('42501');
      }
    });
  }

  it('refuses even a role granted UPDATE, DELETE or TRUNCATE by mistake (the triggers, not the grants)', async () => {
    await db.sql`grant update, delete, truncate on public.audit_logs to service_role`;
    try {
      for (const stmt of ["update public.audit_logs set action = 'DELETE'", 'delete from public.audit_logs', 'truncate public.audit_logs']) {
        const r = await probeAs(db.sql, 'service_role', {}, (tx) => tx.unsafe(stmt));
        expect(r.ok ? 'allowed' : r.error.message, stmt).toContain('append-only');
      }
    } finally {
      await db.sql`revoke update, delete, truncate on public.audit_logs from service_role`;
    }
  });

  it('lets tenant admins read only their own tenant’s trail', async () => {
    const r = await probeAs(
      db.sql,
      'authenticated',
      supabaseClaims(users.acmeAdmin, tenants.acme.id),
      async (tx) => (await tx`select distinct tenant_id from public.audit_logs`).map((x) => x.tenant_id),
    );
    expect(r).toEqual({ ok: true, value: [tenants.acme.id] });
  });
});

describe('a tenant purged', () => {
  it('keeps its entries without their row images (the purge’s copies included), and its own deletion whole', async () => {
    const purged = '30000000-0000-4000-8000-0000000000b1';
    await db.sql.begin(async (tx) => {
      await tx`select set_config('request.jwt.claims', ${JSON.stringify(supabaseClaims(users.super))}, true)`;
      await tx`insert into public.tenants (id, name, slug) values (${purged}, 'Purged Co', 'purged-co')`;
      await tx`insert into public.memberships (tenant_id, user_id, role) values (${purged}, ${users.acmeUser.id}, 'admin')`;
      const [t] = await tx`insert into public.tickets (tenant_id, title, created_by)
        values (${purged}, 'A secret of the purged', ${users.acmeUser.id}) returning id`;
      await tx`insert into public.ticket_messages (tenant_id, ticket_id, author_id, type, content)
        values (${purged}, ${t.id}, ${users.acmeUser.id}, 'message', 'Words of the purged')`;
      await tx`update public.tickets set priority = 'high' where id = ${t.id}`;
    });
    const entries = async () =>
      (await db.sql`select table_name, action from public.audit_logs where tenant_id = ${purged} order by id`)
        .map((e) => `${e.action} ${e.table_name}`);
    expect(await entries()).toEqual(expect.arrayContaining(['INSERT tickets', 'INSERT ticket_messages', 'UPDATE tickets']));
    const bystander = (await db.sql`select count(*)::int as n from public.audit_logs where tenant_id = ${tenants.acme.id}`)[0].n;

    const before = await entries();
    // As a platform admin purges it: through PostgREST, as authenticated, under RLS.
    const [{ max }] = await db.sql`select coalesce(max(id), 0)::bigint as max from public.audit_logs`;
    await committedAs(db.sql, 'authenticated', supabaseClaims(users.super), (tx) => tx`delete from public.tenants where id = ${purged}`);
    const gone = await db.sql`select * from public.audit_logs where id > ${max} order by id`;
    const purge = gone.find((e) => e.table_name === 'tenants');
    expect(purge).toMatchObject({ action: 'DELETE', actor_user_id: users.super.id, redacted_at: null });
    expect(purge!.old_data).toMatchObject({ slug: 'purged-co' });
    // Every entry stays (who did what, and when), the cascade's DELETEs too; only the
    // tenants row's own deletion keeps its image.
    const after = await db.sql`select table_name, action, actor_user_id, old_data, new_data, redacted_at
      from public.audit_logs where tenant_id = ${purged} order by id`;
    expect(after.map((e) => `${e.action} ${e.table_name}`)).toEqual([
      ...before,
      ...gone.map((e) => `${e.action} ${e.table_name}`),
    ]);
    expect(after.map((e) => `${e.action} ${e.table_name}`)).toEqual(
      expect.arrayContaining(['DELETE tickets', 'DELETE ticket_messages', 'DELETE memberships']),
    );
    for (const e of after.filter((x) => !(x.table_name === 'tenants' && x.action === 'DELETE'))) {
      expect(e, `${e.action} ${e.table_name}`).toMatchObject({ old_data: null, new_data: null, redacted_at: expect.any(Date) });
    }
    const words = await db.sql`select id from public.audit_logs
      where old_data::text like '%of the purged%' or new_data::text like '%of the purged%'`;
    expect(words).toEqual([]);
    // Another tenant's trail is its own.
    expect((await db.sql`select count(*)::int as n from public.audit_logs where tenant_id = ${tenants.acme.id}`)[0].n).toBe(bystander);
  });
});
