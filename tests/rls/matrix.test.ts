// Enumerates tests/rls/matrix.ts: each (table, action, role, own/foreign) runs as
// `authenticated` with the role's JWT claims set, as PostgREST would, in a transaction
// that is rolled back. "Allowed" means the statement reached at least one row; "denied"
// means it reached none or Postgres refused it (RLS or privileges).
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { supabaseClaims, teams, tenants, users, type SeedUser } from '../helpers/seed.ts';
import { type Action, matrix, type Role } from './matrix.ts';

type Tx = postgres.TransactionSql;
type Target = 'own' | 'foreign';
type Op = (tx: Tx, t: Target) => Promise<number>;

const tenantOf = (t: Target) => (t === 'own' ? tenants.acme : tenants.globex);
/** Each tenant's rule, read at setup: the run insert names it as a literal (read in the
 *  probe, it came through automation_rules' own policy, which agents and customers do
 *  not pass: their cells reached nothing whatever automation_runs allowed). */
const ruleOf = new Map<Target, string>();
const ticketOf = (t: Target) => (t === 'own' ? '50000000-0000-4000-8000-0000000000a1' : '50000000-0000-4000-8000-0000000000b1');
/** A ticket with no staff-only values: no ticket_internal_fields row, so an insert of one
 *  is refused by the policies alone (the main ticket has one). */
const plainTicketOf = (t: Target) => (t === 'own' ? '50000000-0000-4000-8000-0000000000a2' : '50000000-0000-4000-8000-0000000000b2');
const customerOf = (t: Target) => (t === 'own' ? users.acmeUser : users.globexUser);
const teamOf = (t: Target) => (t === 'own' ? teams.acme : teams.globex);
// A fellow member of the own tenant who is none of the actors, so "own" never means "self".
const peer = { id: '00000000-0000-4000-8000-0000000000f1', email: 'peer@acme.test' };
const plainUserOf = (t: Target) => (t === 'own' ? peer : users.globexUser);
const agentOf = (t: Target) => (t === 'own' ? users.acmeAgent : users.globexAgent);
// Staff not on the tenant's team (teams are staff: 20261207189000).
const staffOffTeamOf = (t: Target) => (t === 'own' ? users.acmeAdmin : users.globexAdmin);
const count = (rows: readonly unknown[]) => rows.length;
// Voice rows of each tenant (issue 14): a knowledge base with a document, an agent with
// a call (and a spare agent without, to delete), a customer, a segment of the call.
const voiceOf = (t: Target) => {
  const x = t === 'own' ? 'a' : 'b';
  return {
    kb: `60000000-0000-4000-8000-0000000000${x}1`,
    doc: `60000000-0000-4000-8000-0000000000${x}2`,
    agent: `60000000-0000-4000-8000-0000000000${x}3`,
    spare: `60000000-0000-4000-8000-0000000000${x}4`,
    customer: `60000000-0000-4000-8000-0000000000${x}5`,
    call: `60000000-0000-4000-8000-0000000000${x}6`,
    phone: t === 'own' ? '+15550001001' : '+15550002001',
  };
};
const LLM = { model: 'gpt-4o-mini', system_prompt: 'Be helpful', temperature: 0.3 };

// One statement per (table, action), aimed at the own or foreign tenant's rows.
const ops: Record<string, Record<Action, Op>> = {
  tenants: {
    select: async (tx, t) => count(await tx`select id from public.tenants where id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`insert into public.tenants (name, slug) values ('Probe', ${`probe-${t}`}) returning id`),
    update: async (tx, t) => count(await tx`update public.tenants set name = 'Renamed' where id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.tenants where id = ${tenantOf(t).id} returning id`),
  },
  memberships: {
    select: async (tx, t) => count(await tx`select id from public.memberships where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.memberships (tenant_id, user_id, role)
      values (${tenantOf(t).id}, ${t === 'own' ? users.globexUser.id : users.acmeUser.id}, 'user') returning id`),
    update: async (tx, t) => count(await tx`
      update public.memberships set role = 'agent' where tenant_id = ${tenantOf(t).id} and user_id = ${plainUserOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`
      delete from public.memberships where tenant_id = ${tenantOf(t).id} and user_id = ${plainUserOf(t).id} returning id`),
  },
  teams: {
    select: async (tx, t) => count(await tx`select id from public.teams where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.teams (tenant_id, name, department) values (${tenantOf(t).id}, 'Probe team', 'technical') returning id`),
    update: async (tx, t) => count(await tx`
      update public.teams set description = 'x' where tenant_id = ${tenantOf(t).id} and id = ${teamOf(t)} returning id`),
    // The spare one: a team with open tickets is kept (20261207127000).
    delete: async (tx, t) => count(await tx`delete from public.teams where tenant_id = ${tenantOf(t).id} and name = 'Spare team' returning id`),
  },
  team_members: {
    select: async (tx, t) => count(await tx`select id from public.team_members where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.team_members (tenant_id, team_id, user_id)
      values (${tenantOf(t).id}, ${teamOf(t)}, ${staffOffTeamOf(t).id}) returning id`),
    update: async (tx, t) => count(await tx`
      update public.team_members set user_id = user_id where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`
      delete from public.team_members where tenant_id = ${tenantOf(t).id} and user_id = ${agentOf(t).id} returning id`),
  },
  tenant_org_links: {
    select: async (tx, t) => count(await tx`select org_id from public.tenant_org_links where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.tenant_org_links (tenant_id, issuer, org_id)
      values (${tenantOf(t).id}, 'https://other-idp.example', ${`org_probe_${t}`}) returning org_id`),
    update: async (tx, t) => count(await tx`
      update public.tenant_org_links set org_id = org_id || '_x' where tenant_id = ${tenantOf(t).id} returning org_id`),
    delete: async (tx, t) => count(await tx`delete from public.tenant_org_links where tenant_id = ${tenantOf(t).id} returning org_id`),
  },
  users: {
    select: async (tx, t) => count(await tx`select id from public.users where id = ${plainUserOf(t).id}`),
    insert: async (tx, t) => count(await tx`insert into public.users (email) values (${`probe-${t}@example.test`}) returning id`),
    update: async (tx, t) => count(await tx`update public.users set first_name = 'Probe' where id = ${plainUserOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.users where id = ${plainUserOf(t).id} returning id`),
  },
  user_identities: {
    select: async (tx, t) => count(await tx`select subject from public.user_identities where user_id = ${plainUserOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.user_identities (issuer, subject, user_id)
      values ('https://other-idp.example', ${`probe-${t}`}, ${plainUserOf(t).id}) returning subject`),
    update: async (tx, t) => count(await tx`
      update public.user_identities set subject = subject || '-x' where user_id = ${plainUserOf(t).id} returning subject`),
    delete: async (tx, t) => count(await tx`delete from public.user_identities where user_id = ${plainUserOf(t).id} returning subject`),
  },
  platform_admins: {
    // The only platform admin row is the super-admin's own; own and foreign alike.
    select: async (tx) => count(await tx`select user_id from public.platform_admins`),
    insert: async (tx, t) => count(await tx`insert into public.platform_admins (user_id) values (${plainUserOf(t).id}) returning user_id`),
    update: async (tx) => count(await tx`update public.platform_admins set created_at = now() returning user_id`),
    delete: async (tx) => count(await tx`delete from public.platform_admins returning user_id`),
  },
  invitations: {
    select: async (tx, t) => count(await tx`select id from public.invitations where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.invitations (tenant_id, email, role) values (${tenantOf(t).id}, ${`new-${t}@example.test`}, 'agent') returning id`),
    update: async (tx, t) => count(await tx`
      update public.invitations set role = 'admin' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.invitations where tenant_id = ${tenantOf(t).id} returning id`),
  },
  tickets: {
    select: async (tx, t) => count(await tx`select id from public.tickets where tenant_id = ${tenantOf(t).id}`),
    // No RETURNING: a ticket an agent files for nobody in particular is not theirs to read.
    insert: async (tx, t) => (await tx`insert into public.tickets (tenant_id, title) values (${tenantOf(t).id}, 'Probe ticket')`).count,
    update: async (tx, t) => count(await tx`update public.tickets set priority = 'low' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.tickets where tenant_id = ${tenantOf(t).id} returning id`),
  },
  ticket_messages: {
    select: async (tx, t) => count(await tx`select id from public.ticket_messages where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.ticket_messages (tenant_id, ticket_id, content) values (${tenantOf(t).id}, ${ticketOf(t)}, 'probe') returning id`),
    update: async (tx, t) => count(await tx`
      update public.ticket_messages set content = 'edited' where tenant_id = ${tenantOf(t).id} and author_id = ${customerOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.ticket_messages where tenant_id = ${tenantOf(t).id} returning id`),
  },
  attachments: {
    select: async (tx, t) => count(await tx`select id from public.attachments where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.attachments (tenant_id, ticket_id, file_name, size_bytes)
      values (${tenantOf(t).id}, ${ticketOf(t)}, 'probe.txt', 5) returning id`),
    update: async (tx, t) => count(await tx`update public.attachments set status = 'uploaded' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.attachments where tenant_id = ${tenantOf(t).id} returning id`),
  },
  ticket_events: {
    select: async (tx, t) => count(await tx`select id from public.ticket_events where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.ticket_events (tenant_id, ticket_id, type) values (${tenantOf(t).id}, ${ticketOf(t)}, 'restored') returning id`),
    update: async (tx, t) => count(await tx`update public.ticket_events set data = '{}' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.ticket_events where tenant_id = ${tenantOf(t).id} returning id`),
  },
  tenant_services: {
    select: async (tx, t) => count(await tx`select service from public.tenant_services where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`insert into public.tenant_services (tenant_id, service) values (${tenantOf(t).id}, 'n8n') returning service`),
    update: async (tx, t) => count(await tx`update public.tenant_services set desired_state = 'removed' where tenant_id = ${tenantOf(t).id} returning service`),
    delete: async (tx, t) => count(await tx`delete from public.tenant_services where tenant_id = ${tenantOf(t).id} returning service`),
  },
  webhook_endpoints: {
    select: async (tx, t) => count(await tx`select id from public.webhook_endpoints where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.webhook_endpoints (tenant_id, url, secret_encrypted) values (${tenantOf(t).id}, 'https://hooks.example.com/p', 'v1:x') returning id`),
    update: async (tx, t) => count(await tx`update public.webhook_endpoints set enabled = false where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.webhook_endpoints where tenant_id = ${tenantOf(t).id} returning id`),
  },
  api_keys: {
    select: async (tx, t) => count(await tx`select id from public.api_keys where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.api_keys (tenant_id, name, prefix, scopes) values (${tenantOf(t).id}, 'forged', 'tpk_live_0', '{tickets:read}') returning id`),
    update: async (tx, t) => count(await tx`update public.api_keys set name = 'renamed' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.api_keys where tenant_id = ${tenantOf(t).id} returning id`),
  },
  sla_policies: {
    select: async (tx, t) => count(await tx`select id from public.sla_policies where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.sla_policies (tenant_id, priority, first_response_minutes, resolution_minutes)
      values (${tenantOf(t).id}, 'urgent', 15, 120) returning id`),
    update: async (tx, t) => count(await tx`update public.sla_policies set resolution_minutes = 999 where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.sla_policies where tenant_id = ${tenantOf(t).id} returning id`),
  },
  voice_knowledge_bases: {
    select: async (tx, t) => count(await tx`select id from public.voice_knowledge_bases where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`insert into public.voice_knowledge_bases (tenant_id, name) values (${tenantOf(t).id}, 'Probe KB') returning id`),
    update: async (tx, t) => count(await tx`update public.voice_knowledge_bases set description = 'x' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.voice_knowledge_bases where tenant_id = ${tenantOf(t).id} returning id`),
  },
  kb_documents: {
    select: async (tx, t) => count(await tx`select id from public.kb_documents where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
      values (${tenantOf(t).id}, ${voiceOf(t).kb}, 'Probe doc', 'Opening hours: nine to five.') returning id`),
    update: async (tx, t) => count(await tx`update public.kb_documents set title = 'Renamed' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.kb_documents where tenant_id = ${tenantOf(t).id} returning id`),
  },
  kb_chunks: {
    select: async (tx, t) => count(await tx`select id from public.kb_chunks where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.kb_chunks (tenant_id, knowledge_base_id, document_id, ordinal, content)
      values (${tenantOf(t).id}, ${voiceOf(t).kb}, ${voiceOf(t).doc}, 99, 'forged') returning id`),
    update: async (tx, t) => count(await tx`update public.kb_chunks set content = 'forged' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.kb_chunks where tenant_id = ${tenantOf(t).id} returning id`),
  },
  voice_agents: {
    select: async (tx, t) => count(await tx`select id from public.voice_agents where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config)
      values (${tenantOf(t).id}, 'Probe agent', ${t === 'own' ? '+15550009001' : '+15550009002'}, 'voice-1', ${tx.json(LLM)}) returning id`),
    update: async (tx, t) => count(await tx`update public.voice_agents set greeting = 'Hello' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.voice_agents where tenant_id = ${tenantOf(t).id} and id = ${voiceOf(t).spare} returning id`),
  },
  voice_customers: {
    select: async (tx, t) => count(await tx`select id from public.voice_customers where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.voice_customers (tenant_id, phone, name) values (${tenantOf(t).id}, '+15550007777', 'Probe') returning id`),
    update: async (tx, t) => count(await tx`update public.voice_customers set notes = 'x' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.voice_customers where tenant_id = ${tenantOf(t).id} returning id`),
  },
  voice_calls: {
    select: async (tx, t) => count(await tx`select id from public.voice_calls where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.voice_calls (tenant_id, agent_id, provider_call_id) values (${tenantOf(t).id}, ${voiceOf(t).agent}, 'manual:probe-call') returning id`),
    update: async (tx, t) => count(await tx`update public.voice_calls set summary = 'x' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.voice_calls where tenant_id = ${tenantOf(t).id} returning id`),
  },
  voice_call_segments: {
    select: async (tx, t) => count(await tx`select id from public.voice_call_segments where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content)
      values (${tenantOf(t).id}, ${voiceOf(t).call}, 99, 'agent', 'probe') returning id`),
    update: async (tx, t) => count(await tx`update public.voice_call_segments set content = 'forged' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.voice_call_segments where tenant_id = ${tenantOf(t).id} returning id`),
  },
  ticket_followers: {
    select: async (tx, t) => count(await tx`select id from public.ticket_followers where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.ticket_followers (tenant_id, ticket_id, user_id)
      values (${tenantOf(t).id}, ${ticketOf(t)}, ${(t === 'own' ? users.acmeAdmin : users.globexAdmin).id}) returning id`),
    update: async (tx, t) => count(await tx`update public.ticket_followers set reason = 'manual' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.ticket_followers where tenant_id = ${tenantOf(t).id} returning id`),
  },
  notifications: {
    select: async (tx, t) => count(await tx`select id from public.notifications where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.notifications (tenant_id, user_id, type) values (${tenantOf(t).id}, ${customerOf(t).id}, 'forged') returning id`),
    update: async (tx, t) => count(await tx`update public.notifications set read_at = now() where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.notifications where tenant_id = ${tenantOf(t).id} returning id`),
  },
  macros: {
    select: async (tx, t) => count(await tx`select id from public.macros where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.macros (tenant_id, scope, name, actions)
      values (${tenantOf(t).id}, 'tenant', 'Matrix new', '[{"type":"set_priority","priority":"low"}]') returning id`),
    update: async (tx, t) => count(await tx`update public.macros set description = 'x' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.macros where tenant_id = ${tenantOf(t).id} returning id`),
  },
  automation_rules: {
    select: async (tx, t) => count(await tx`select id from public.automation_rules where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.automation_rules (tenant_id, name, event, actions)
      values (${tenantOf(t).id}, 'Matrix new', 'ticket.created', '[{"type":"set_priority","priority":"low"}]') returning id`),
    update: async (tx, t) => count(await tx`update public.automation_rules set description = 'x' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.automation_rules where tenant_id = ${tenantOf(t).id} returning id`),
  },
  automation_runs: {
    select: async (tx, t) => count(await tx`select id from public.automation_runs where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.automation_runs (tenant_id, rule_id, ticket_id, event, event_id, outcome)
      values (${tenantOf(t).id}, ${ruleOf.get(t)!}, ${ticketOf(t)}, 'ticket.created', gen_random_uuid(), 'applied') returning id`),
    update: async (tx, t) => count(await tx`update public.automation_runs set error = 'x' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.automation_runs where tenant_id = ${tenantOf(t).id} returning id`),
  },
  canned_responses: {
    select: async (tx, t) => count(await tx`select id from public.canned_responses where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.canned_responses (tenant_id, scope, short_code, title, body)
      values (${tenantOf(t).id}, 'tenant', 'matrix-new', 'New', 'Hello') returning id`),
    update: async (tx, t) => count(await tx`update public.canned_responses set title = 'Changed' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.canned_responses where tenant_id = ${tenantOf(t).id} returning id`),
  },
  departments: {
    select: async (tx, t) => count(await tx`select id from public.departments where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.departments (tenant_id, key, name) values (${tenantOf(t).id}, 'matrix-new', 'New') returning id`),
    update: async (tx, t) => count(await tx`update public.departments set name = 'Changed' where tenant_id = ${tenantOf(t).id} returning id`),
    // The spare one: no ticket or team names it.
    delete: async (tx, t) => count(await tx`delete from public.departments where tenant_id = ${tenantOf(t).id} and key = 'spare' returning id`),
  },
  tags: {
    select: async (tx, t) => count(await tx`select id from public.tags where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.tags (tenant_id, name, color) values (${tenantOf(t).id}, 'matrix-new', '#123456') returning id`),
    update: async (tx, t) => count(await tx`update public.tags set color = '#654321' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.tags where tenant_id = ${tenantOf(t).id} and name = 'spare' returning id`),
  },
  custom_field_definitions: {
    select: async (tx, t) => count(await tx`select id from public.custom_field_definitions where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.custom_field_definitions (tenant_id, key, label, type) values (${tenantOf(t).id}, 'matrix_new', 'New', 'text') returning id`),
    update: async (tx, t) => count(await tx`update public.custom_field_definitions set label = 'Changed' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.custom_field_definitions where tenant_id = ${tenantOf(t).id} returning id`),
  },
  ticket_internal_fields: {
    select: async (tx, t) => count(await tx`select ticket_id from public.ticket_internal_fields where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.ticket_internal_fields (tenant_id, ticket_id, custom_fields)
      values (${tenantOf(t).id}, ${plainTicketOf(t)}, '{"risk": 9}') returning ticket_id`),
    update: async (tx, t) => count(await tx`
      update public.ticket_internal_fields set custom_fields = '{"risk": 9}' where tenant_id = ${tenantOf(t).id} returning ticket_id`),
    delete: async (tx, t) => count(await tx`delete from public.ticket_internal_fields where tenant_id = ${tenantOf(t).id} returning ticket_id`),
  },
  audit_logs: {
    select: async (tx, t) => count(await tx`select id from public.audit_logs where tenant_id = ${tenantOf(t).id}`),
    insert: async (tx, t) => count(await tx`
      insert into public.audit_logs (tenant_id, table_name, record_key, action, actor_role)
      values (${tenantOf(t).id}, 'forged', '{}', 'INSERT', 'authenticated') returning id`),
    update: async (tx, t) => count(await tx`update public.audit_logs set action = 'DELETE' where tenant_id = ${tenantOf(t).id} returning id`),
    delete: async (tx, t) => count(await tx`delete from public.audit_logs where tenant_id = ${tenantOf(t).id} returning id`),
  },
};

const actors: Record<Role, { user: SeedUser; tenantId?: string }> = {
  super: { user: users.super },
  admin: { user: users.acmeAdmin, tenantId: tenants.acme.id },
  agent: { user: users.acmeAgent, tenantId: tenants.acme.id },
  user: { user: users.acmeUser, tenantId: tenants.acme.id },
};

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase('rls_matrix');
  await db.sql`insert into public.users (id, email) values (${peer.id}, ${peer.email})`;
  await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${tenants.acme.id}, ${peer.id}, 'user')`;
  await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${peer.id}, ${peer.id})`;
  // Voice rows need a plan with voice, knowledge bases and room for agents (globex is starter).
  await db.sql`update public.tenants set plan = 'pro' where id = ${tenants.globex.id}`;
  for (const t of [tenants.acme.id, tenants.globex.id]) {
    await db.sql`insert into public.invitations (tenant_id, email, role) values (${t}, ${`pending-${t}@example.test`}, 'user')`;
  }
  // In each tenant: the customer's ticket on the agent's team, the customer's message,
  // an agent's internal note, the customer's attachment, an SLA policy.
  for (const t of ['own', 'foreign'] as const) {
    const tenantId = tenantOf(t).id;
    const agent = t === 'own' ? users.acmeAgent : users.globexAgent;
    await db.sql`insert into public.sla_policies (tenant_id, priority, first_response_minutes, resolution_minutes) values (${tenantId}, 'high', 60, 480)`;
    const v = voiceOf(t);
    await db.sql`insert into public.voice_knowledge_bases (tenant_id, id, name) values (${tenantId}, ${v.kb}, 'FAQ')`;
    await db.sql`insert into public.kb_documents (tenant_id, id, knowledge_base_id, title, content) values (${tenantId}, ${v.doc}, ${v.kb}, 'Hours', 'We open at nine.')`;
    // The spare shares the number, inactive: one active agent per number.
    await db.sql`insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config, knowledge_base_id, active)
                 values (${tenantId}, ${v.agent}, 'Reception', ${v.phone}, 'voice-1', ${db.sql.json(LLM)}, ${v.kb}, true),
                        (${tenantId}, ${v.spare}, 'Spare', ${v.phone}, 'voice-1', ${db.sql.json(LLM)}, null, false)`;
    await db.sql`insert into public.voice_customers (tenant_id, id, phone, name) values (${tenantId}, ${v.customer}, '+15550003003', 'Caller')`;
    await db.sql`insert into public.voice_calls (tenant_id, id, agent_id, customer_id, provider_call_id) values (${tenantId}, ${v.call}, ${v.agent}, ${v.customer}, 'manual:call-1')`;
    await db.sql`insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content) values (${tenantId}, ${v.call}, 0, 'customer', 'Hello?')`;
    await db.sql`insert into public.tenant_services (tenant_id, service) values (${tenantId}, 'botpress')`;
    await db.sql`insert into public.canned_responses (tenant_id, scope, short_code, title, body) values (${tenantId}, 'tenant', 'thanks', 'Thanks', 'Thank you, {{requester.name}}')`;
    await db.sql`insert into public.macros (tenant_id, scope, name, actions) values (${tenantId}, 'tenant', 'Escalate', '[{"type":"set_priority","priority":"urgent"}]')`;
    await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted) values (${tenantId}, 'https://hooks.example.com/m', 'v1:x')`;
    await db.sql`insert into public.api_keys (tenant_id, name, prefix, scopes, created_by) values (${tenantId}, 'matrix', 'tpk_live_m', '{tickets:read}', ${customerOf(t).id})`;
    await db.sql`insert into public.departments (tenant_id, key, name) values (${tenantId}, 'spare', 'Spare')`;
    await db.sql`insert into public.teams (tenant_id, name, department) values (${tenantId}, 'Spare team', 'technical')`;
    await db.sql`insert into public.tags (tenant_id, name) values (${tenantId}, 'spare')`;
    // A field customers see and one they do not, both with a value on the ticket.
    await db.sql`insert into public.custom_field_definitions (tenant_id, key, label, type, visible_to_customers, options)
                 values (${tenantId}, 'plan', 'Plan', 'select', true, '{gold,silver}'), (${tenantId}, 'risk', 'Risk', 'number', false, '{}')`;
    await db.sql`insert into public.tickets (tenant_id, id, title, team_id, created_by, custom_fields)
                 values (${tenantId}, ${ticketOf(t)}, 'Printer on fire', ${teamOf(t)}, ${customerOf(t).id}, '{"plan": "gold", "risk": 2}')`;
    await db.sql`insert into public.tickets (tenant_id, id, title, team_id, created_by)
                 values (${tenantId}, ${plainTicketOf(t)}, 'Nothing hidden', ${teamOf(t)}, ${customerOf(t).id})`;
    // The insert cell's statement works where no policy stands in the way (the owner's).
    const undo = new Error('undo');
    await db.sql.begin(async (tx) => {
      const rows = await tx`insert into public.ticket_internal_fields (tenant_id, ticket_id, custom_fields)
        values (${tenantId}, ${plainTicketOf(t)}, '{"risk": 9}') returning ticket_id`;
      expect(rows).toHaveLength(1);
      throw undo;
    }).catch((e) => {
      if (e !== undo) throw e;
    });
    await db.sql`insert into public.ticket_messages (tenant_id, ticket_id, author_id, content) values (${tenantId}, ${ticketOf(t)}, ${customerOf(t).id}, 'Please help')`;
    await db.sql`insert into public.ticket_followers (tenant_id, ticket_id, user_id) values (${tenantId}, ${ticketOf(t)}, ${agent.id})`;
    const [auto] = await db.sql`insert into public.automation_rules (tenant_id, name, event, actions, active)
      values (${tenantId}, 'Triage', 'ticket.created', '[{"type":"add_tags","tags":["triaged"]}]', false) returning id`;
    ruleOf.set(t, auto.id);
    await db.sql`insert into public.automation_runs (tenant_id, rule_id, ticket_id, event, event_id, outcome)
      values (${tenantId}, ${auto.id}, ${ticketOf(t)}, 'ticket.created', gen_random_uuid(), 'applied')`;
    for (const person of t === 'own' ? [users.acmeAdmin, users.acmeAgent, users.acmeUser] : [users.globexAdmin, users.globexAgent, users.globexUser]) {
      await db.sql`insert into public.notifications (tenant_id, user_id, ticket_id, type) values (${tenantId}, ${person.id}, ${ticketOf(t)}, 'seeded')`;
    }
    await db.sql`insert into public.ticket_messages (tenant_id, ticket_id, author_id, type, content) values (${tenantId}, ${ticketOf(t)}, ${agent.id}, 'note', 'Customer is VIP')`;
    await db.sql.begin(async (tx) => {
      await tx`select set_config('request.jwt.claims', ${JSON.stringify(supabaseClaims(customerOf(t)))}, true)`;
      await tx`insert into public.attachments (tenant_id, ticket_id, file_name, size_bytes, path) values (${tenantId}, ${ticketOf(t)}, 'photo.jpg', 1024, 'set-by-trigger')`;
    });
  }
});
afterAll(() => db.close());

async function reaches(role: Role, table: string, action: Action, target: Target): Promise<boolean> {
  const { user, tenantId } = actors[role];
  const result = await probeAs(db.sql, 'authenticated', supabaseClaims(user, tenantId), (tx) => ops[table][action](tx, target));
  if (!result.ok) {
    // Refusals must be RLS/privilege errors, not broken probes.
    expect(['42501', 'PT403'], `${role} ${action} ${table} ${target}: ${result.error.message}`).toContain(result.error.code);
    return false;
  }
  return result.value > 0;
}

it('covers every table in public', async () => {
  const rows = await db.sql`select tablename from pg_tables where schemaname = 'public' order by 1`;
  expect(Object.keys(matrix).sort()).toEqual(rows.map((r) => r.tablename));
});

for (const [table, actions] of Object.entries(matrix)) {
  describe(table, () => {
    for (const [action, roles] of Object.entries(actions) as [Action, Record<Role, { own: boolean; foreign: boolean }>][]) {
      for (const [role, expected] of Object.entries(roles) as [Role, { own: boolean; foreign: boolean }][]) {
        it(`${role} ${action}: own ${expected.own ? 'allowed' : 'denied'}, foreign ${expected.foreign ? 'allowed' : 'denied'}`, async () => {
          expect(await reaches(role, table, action, 'own')).toBe(expected.own);
          expect(await reaches(role, table, action, 'foreign')).toBe(expected.foreign);
        });
      }
    }
  });
}

describe('attacks and edges beyond the matrix', () => {
  it('anon reaches no table at all', async () => {
    for (const table of Object.keys(matrix)) {
      const r = await probeAs(db.sql, 'anon', {}, (tx) => tx`select 1 from ${tx('public')}.${tx(table)} limit 1`);
      expect(r.ok ? r.value.length : 0, table).toBe(0);
    }
  });

  it("claiming another tenant's id in the token reaches nothing there", async () => {
    const forged = supabaseClaims(users.acmeAdmin, tenants.globex.id);
    const r = await probeAs(db.sql, 'authenticated', forged, async (tx) => ({
      teams: (await tx`select id from public.teams`).length,
      updated: (await tx`update public.teams set description = 'x' returning id`).length,
      tenants: (await tx`select id from public.tenants`).length,
    }));
    expect(r).toEqual({ ok: true, value: { teams: 0, updated: 0, tenants: 0 } });
  });

  it('a subject nobody mapped reaches nothing, even with a valid-looking tenant claim', async () => {
    const claims = { iss: 'http://127.0.0.1:54321/auth/v1', sub: 'intruder', role: 'authenticated', tenant_id: tenants.acme.id };
    const r = await probeAs(db.sql, 'authenticated', claims, async (tx) => (await tx`select id from public.memberships`).length);
    expect(r).toEqual({ ok: true, value: 0 });
  });

  it('the same subject at another issuer is another person', async () => {
    const claims = { ...supabaseClaims(users.acmeAdmin, tenants.acme.id), iss: 'https://evil.example/auth/v1' };
    const r = await probeAs(db.sql, 'authenticated', claims, async (tx) => (await tx`select id from public.teams`).length);
    expect(r).toEqual({ ok: true, value: 0 });
  });

  it('a user edits their own profile but not their e-mail or status', async () => {
    const me = supabaseClaims(users.acmeUser, tenants.acme.id);
    const ok = await probeAs(db.sql, 'authenticated', me, async (tx) =>
      (await tx`update public.users set first_name = 'Me' where id = ${users.acmeUser.id} returning id`).length);
    expect(ok).toEqual({ ok: true, value: 1 });
    const email = await probeAs(db.sql, 'authenticated', me, (tx) =>
      tx`update public.users set email = 'takeover@example.test' where id = ${users.acmeUser.id}`);
    expect(email.ok ? null : email.error.code).toBe('PT403');
  });

  it('a tenant admin cannot change their plan, slug or status', async () => {
    const admin = supabaseClaims(users.acmeAdmin, tenants.acme.id);
    for (const change of ["plan = 'enterprise'", "slug = 'acme-2'", "status = 'suspended'"]) {
      const r = await probeAs(db.sql, 'authenticated', admin, (tx) => tx`update public.tenants set ${tx.unsafe(change)} where id = ${tenants.acme.id}`);
      expect(r.ok ? null : r.error.code, change).toBe('PT403');
    }
  });

  it('a suspended tenant is read-only for its admins', async () => {
    await db.sql`update public.tenants set status = 'suspended' where id = ${tenants.acme.id}`;
    try {
      const admin = supabaseClaims(users.acmeAdmin, tenants.acme.id);
      const r = await probeAs(db.sql, 'authenticated', admin, async (tx) => ({
        read: (await tx`select id from public.teams`).length,
        write: (await tx`update public.teams set description = 'x' returning id`).length,
      }));
      expect(r).toEqual({ ok: true, value: { read: 2, write: 0 } }); // its team and the spare
    } finally {
      await db.sql`update public.tenants set status = 'active' where id = ${tenants.acme.id}`;
    }
  });

  it('a deleted tenant disappears for its members', async () => {
    await db.sql`update public.tenants set status = 'deleted', deleted_at = now() where id = ${tenants.acme.id}`;
    try {
      const r = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeUser), async (tx) =>
        (await tx`select id from public.tenants`).length + (await tx`select id from public.teams`).length);
      expect(r).toEqual({ ok: true, value: 0 });
    } finally {
      await db.sql`update public.tenants set status = 'active', deleted_at = null where id = ${tenants.acme.id}`;
    }
  });

  it('a Clerk token names its tenant through the organisation claim', async () => {
    const clerk = (org: string) => ({ iss: 'http://127.0.0.1:54321/dev-issuers/clerk', sub: 'user_admin_acme', role: 'authenticated', o: { id: org } });
    const own = await probeAs(db.sql, 'authenticated', clerk('org_acme'), async (tx) => (await tx`select distinct tenant_id from public.teams`).map((r) => r.tenant_id));
    expect(own).toEqual({ ok: true, value: [tenants.acme.id] });
    const other = await probeAs(db.sql, 'authenticated', clerk('org_globex'), async (tx) => (await tx`select id from public.teams`).length);
    expect(other).toEqual({ ok: true, value: 0 });
  });

  it('a composite foreign key refuses a team lead from another tenant, even for super-admins', async () => {
    const r = await probeAs(db.sql, 'authenticated', supabaseClaims(users.super), (tx) =>
      tx`update public.teams set lead_user_id = ${users.globexAgent.id} where id = ${teams.acme}`);
    expect(r.ok ? null : r.error.code).toBe('23503');
  });

  it('no one below admin raises their own standing, on the direct path', async () => {
    // Within one's own tenant (the attack suites aim at other tenants): a customer or an
    // agent promoting their own membership, joining a team (its tickets' sight), making
    // themselves a platform admin, or minting a key.
    for (const role of ['user', 'agent'] as const) {
      const { user, tenantId } = actors[role];
      const attempts: Record<string, (tx: Parameters<Parameters<typeof probeAs>[3]>[0]) => Promise<unknown>> = {
        promote: (tx) => tx`update public.memberships set role = 'admin' where tenant_id = ${tenantId!} and user_id = ${user.id} returning id`,
        join_team: (tx) => tx`insert into public.team_members (tenant_id, team_id, user_id) values (${tenantId!}, ${teams.acme}, ${user.id}) returning id`,
        platform_admin: (tx) => tx`insert into public.platform_admins (user_id) values (${user.id}) returning user_id`,
        api_key: (tx) => tx`insert into public.api_keys (tenant_id, name, prefix, scopes, created_by)
          values (${tenantId!}, 'mine', 'tpk_live_00000000', '{tickets:read}', ${user.id}) returning id`,
      };
      for (const [name, attempt] of Object.entries(attempts)) {
        // The seeded agent is on the team already: off it for the attempt (in the probe's
        // own transaction, rolled back with it).
        const r = await probeAs(db.sql, 'authenticated', supabaseClaims(user, tenantId), async (tx) => {
          if (name === 'join_team' && role === 'agent') {
            await tx`select set_config('role', 'none', true)`;
            await tx`delete from public.team_members where team_id = ${teams.acme} and user_id = ${user.id}`;
            await tx`select set_config('role', 'authenticated', true)`;
          }
          return (await attempt(tx) as unknown[]).length;
        });
        expect([role, name, r.ok ? r.value : 'refused']).toEqual([role, name, r.ok ? 0 : 'refused']);
        // Refused for want of the right, not for a malformed statement (which could not fail).
        if (!r.ok) expect([role, name, r.error.code]).toEqual([role, name, expect.stringMatching(/^(42501|PT403)$/)]);
      }
      const [m] = await db.sql`select role from public.memberships where tenant_id = ${tenantId!} and user_id = ${user.id}`;
      expect(m.role).toBe(role);
    }
  });

  it('never lets a tenant lose its last admin', async () => {
    const r = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, tenants.acme.id), (tx) =>
      tx`update public.memberships set role = 'user' where user_id = ${users.acmeAdmin.id}`);
    expect(r.ok ? null : r.error.code).toBe('PT409');
    const ok = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, tenants.acme.id), async (tx) => {
      await tx`update public.memberships set role = 'admin' where user_id = ${users.acmeAgent.id}`;
      return (await tx`update public.memberships set role = 'user' where user_id = ${users.acmeAdmin.id} returning id`).length;
    });
    expect(ok).toEqual({ ok: true, value: 1 });
  });

  it('refuses TRUNCATE on every table and any use of sequences to API roles', async () => {
    for (const table of Object.keys(matrix)) {
      const r = await probeAs(db.sql, 'authenticated', supabaseClaims(users.super), (tx) => tx`truncate ${tx('public')}.${tx(table)} cascade`);
      expect(r.ok ? 'allowed' : r.error.code, table).toBe('42501');
    }
    for (const stmt of ["select setval('public.audit_logs_id_seq', 9223372036854775807)", "select nextval('public.audit_logs_id_seq')"]) {
      const r = await probeAs(db.sql, 'authenticated', supabaseClaims(users.super), (tx) => tx.unsafe(stmt));
      expect(r.ok ? 'allowed' : r.error.code, stmt).toBe('42501');
    }
  });

  it('lets admins change only the columns a person may set', async () => {
    const admin = supabaseClaims(users.acmeAdmin, tenants.acme.id);
    for (const stmt of [
      `update public.memberships set user_id = '${users.acmeUser.id}' where user_id = '${users.acmeAdmin.id}'`,
      `update public.tenants set created_at = '2000-01-01' where id = '${tenants.acme.id}'`,
      `update public.teams set tenant_id = '${tenants.globex.id}' where id = '${teams.acme}'`,
      `update public.users set last_login_at = now(), created_at = '2000-01-01' where id = '${users.acmeAdmin.id}'`,
      `insert into public.memberships (tenant_id, user_id, role, created_at) values ('${tenants.acme.id}', '${users.globexUser.id}', 'user', now())`,
    ]) {
      const r = await probeAs(db.sql, 'authenticated', admin, (tx) => tx.unsafe(stmt));
      expect(r.ok ? 'allowed' : r.error.code, stmt).toBe('42501');
    }
  });

  it('shows customers their tenant’s staff but not other customers', async () => {
    const r = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeUser, tenants.acme.id), async (tx) => ({
      users: (await tx`select email from public.users order by email`).map((x) => x.email),
      roles: (await tx`select role from public.memberships order by role`).map((x) => x.role),
    }));
    expect(r).toEqual({ ok: true, value: { users: ['admin@acme.test', 'agent@acme.test', 'user@acme.test'], roles: ['admin', 'agent', 'user'] } });
  });

  it('lets anyone leave a tenant, but not remove others', async () => {
    const me = supabaseClaims(users.acmeUser, tenants.acme.id);
    const leave = await probeAs(db.sql, 'authenticated', me, async (tx) =>
      (await tx`delete from public.memberships where user_id = ${users.acmeUser.id} returning id`).length);
    expect(leave).toEqual({ ok: true, value: 1 });
    const kick = await probeAs(db.sql, 'authenticated', me, async (tx) =>
      (await tx`delete from public.memberships where user_id <> ${users.acmeUser.id} returning id`).length);
    expect(kick).toEqual({ ok: true, value: 0 });
  });

  it('reads the tenant claim as an id, a slug or app_metadata.tenant_id, as the functions do', async () => {
    for (const claims of [
      { ...supabaseClaims(users.acmeAdmin), tenant_id: 'acme' },
      { ...supabaseClaims(users.acmeAdmin), app_metadata: { tenant_id: tenants.acme.id } },
    ]) {
      const r = await probeAs(db.sql, 'authenticated', claims, async (tx) => (await tx`select id from public.tenants`).map((x) => x.id));
      expect(r).toEqual({ ok: true, value: [tenants.acme.id] });
    }
    const unknown = await probeAs(db.sql, 'authenticated', { ...supabaseClaims(users.acmeAdmin), tenant_id: 'no-such-slug' }, async (tx) =>
      (await tx`select id from public.tenants`).length);
    expect(unknown).toEqual({ ok: true, value: 0 });
  });

  it('keeps user creation to super-admins', async () => {
    const r = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, tenants.acme.id), (tx) =>
      tx`select private.find_or_create_user('probe@example.test')`);
    expect(r.ok ? 'allowed' : r.error.code).toBe('42501');
  });
});

describe('tickets', () => {
  it('private.can_see_ticket agrees with the tickets policy for every role and ticket', async () => {
    const tickets = await db.sql`select tenant_id, id from public.tickets`;
    expect(tickets.length).toBeGreaterThanOrEqual(2);
    for (const [role, { user, tenantId }] of Object.entries(actors)) {
      const r = await probeAs(db.sql, 'authenticated', supabaseClaims(user, tenantId), async (tx) => {
        const visible = new Set((await tx`select id from public.tickets`).map((x) => x.id));
        const disagreements = [];
        for (const t of tickets) {
          const [{ can }] = await tx`select private.can_see_ticket(${t.tenant_id}, ${t.id}) as can`;
          if (can !== visible.has(t.id)) disagreements.push(t.id);
        }
        return disagreements;
      });
      expect(r, role).toEqual({ ok: true, value: [] });
    }
  });

  it('private.can_see_ticket is the tickets policy itself: a changed policy changes its answer', async () => {
    // Inside a transaction rolled back at the end: the policy narrowed to urgent tickets.
    const seen = await db.sql
      .begin(async (tx) => {
        await tx`alter policy tickets_select on public.tickets using (priority = 'urgent')`;
        await tx`update public.tickets set priority = 'low'`;
        await tx`update public.tickets set priority = 'urgent' where id = ${ticketOf('own')}`;
        await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
          JSON.stringify({ ...supabaseClaims(users.acmeAdmin, tenants.acme.id), role: 'authenticated' })
        }, true)`;
        const rows = await tx`select id from public.tickets where private.can_see_ticket(tenant_id, id) order by id`;
        const visible = await tx`select id from public.tickets order by id`;
        throw Object.assign(new Error('rollback'), { result: { can: rows.map((r) => r.id), visible: visible.map((r) => r.id) } });
      })
      .catch((err) => (err as { result?: unknown }).result ?? Promise.reject(err));
    expect(seen).toEqual({ can: [ticketOf('own')], visible: [ticketOf('own')] });
  });

  it("hides internal notes from the ticket's requester in the database", async () => {
    const types = async (user: SeedUser) => {
      const r = await probeAs(db.sql, 'authenticated', supabaseClaims(user, tenants.acme.id), async (tx) =>
        (await tx`select type from public.ticket_messages order by type`).map((x) => x.type));
      return r.ok ? r.value : r.error.message;
    };
    expect(await types(users.acmeUser)).toEqual(['message']);
    expect(await types(users.acmeAgent)).toEqual(['message', 'note']);
  });

  it('keeps attachment locations and status out of callers’ hands', async () => {
    const me = supabaseClaims(users.acmeUser, tenants.acme.id);
    for (const stmt of [
      `insert into public.attachments (tenant_id, ticket_id, file_name, size_bytes, path) values ('${tenants.acme.id}', '${ticketOf('own')}', 'x', 1, '${tenants.acme.id}/../../rest/v1/rpc/x')`,
      `insert into public.attachments (tenant_id, ticket_id, file_name, size_bytes, bucket) values ('${tenants.acme.id}', '${ticketOf('own')}', 'x', 1, 'other')`,
      `update public.attachments set status = 'uploaded'`,
    ]) {
      const r = await probeAs(db.sql, 'authenticated', me, (tx) => tx.unsafe(stmt));
      expect(r.ok ? 'allowed' : r.error.code, stmt).toBe('42501');
    }
    const dots = await probeAs(db.sql, 'authenticated', me, (tx) =>
      tx`insert into public.attachments (tenant_id, ticket_id, file_name, size_bytes) values (${tenants.acme.id}, ${ticketOf('own')}, '..', 1)`);
    expect(dots.ok ? 'allowed' : dots.error.code).toBe('23514');
    const [row] = (await probeAs(db.sql, 'authenticated', me, (tx) =>
      tx`insert into public.attachments (tenant_id, ticket_id, file_name, size_bytes) values (${tenants.acme.id}, ${ticketOf('own')}, 'ok.txt', 1) returning id, path, bucket, status`) as { ok: true; value: { id: string; path: string; bucket: string; status: string }[] }).value;
    expect(row).toMatchObject({ path: `${tenants.acme.id}/${ticketOf('own')}/${row.id}/ok.txt`, bucket: 'attachments', status: 'pending' });
  });

  it('refuses a customer writing a note or a system message, or assigning, straight to the database', async () => {
    const me = supabaseClaims(users.acmeUser, tenants.acme.id);
    for (const stmt of [
      `insert into public.ticket_messages (tenant_id, ticket_id, type, content) values ('${tenants.acme.id}', '${ticketOf('own')}', 'note', 'x')`,
      `insert into public.ticket_messages (tenant_id, ticket_id, type, content) values ('${tenants.acme.id}', '${ticketOf('own')}', 'system', 'x')`,
      `insert into public.tickets (tenant_id, title, assigned_to) values ('${tenants.acme.id}', 'Self assigned', '${users.acmeAgent.id}')`,
    ]) {
      const r = await probeAs(db.sql, 'authenticated', me, (tx) => tx.unsafe(stmt));
      expect(r.ok ? 'allowed' : r.error.code, stmt).toBe('PT403');
    }
  });
});

describe('invitations', () => {
  const invitee = { id: '00000000-0000-4000-8000-0000000000f2', email: 'invitee@example.test' };
  let invitationId: string;

  beforeAll(async () => {
    await db.sql`insert into public.users (id, email) values (${invitee.id}, ${invitee.email})`;
    await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${invitee.id}, ${invitee.id})`;
  });

  it('an admin invites; the invitee alone sees and accepts it, once', async () => {
    const admin = supabaseClaims(users.acmeAdmin, tenants.acme.id);
    const created = await probeAs(db.sql, 'authenticated', admin, async (tx) =>
      (await tx`insert into public.invitations (tenant_id, email, role) values (${tenants.acme.id}, 'Invitee@Example.test', 'agent') returning id, email, invited_by`)[0]);
    expect(created).toMatchObject({ ok: true, value: { email: 'invitee@example.test', invited_by: users.acmeAdmin.id } });
    // The probe rolled back; commit one for the rest of the flow.
    [{ id: invitationId }] = await db.sql`insert into public.invitations (tenant_id, email, role) values (${tenants.acme.id}, ${invitee.email}, 'agent') returning id`;

    const stranger = await probeAs(db.sql, 'authenticated', supabaseClaims(users.globexUser), (tx) =>
      tx`select * from private.accept_invitation(${invitationId})`);
    expect(stranger.ok ? 'accepted' : stranger.error.code).toBe('PT404');

    const mine = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeUser), async (tx) => (await tx`select * from private.my_invitations()`).length);
    expect(mine).toEqual({ ok: true, value: 0 });

    const claims = { iss: 'http://127.0.0.1:54321/auth/v1', sub: invitee.id, role: 'authenticated' };
    const pending = await probeAs(db.sql, 'authenticated', claims, (tx) => tx`select tenant_slug, role from private.my_invitations()`);
    expect(pending).toEqual({ ok: true, value: [{ tenant_slug: 'acme', role: 'agent' }] });

    await db.sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
      const [m] = await tx`select * from private.accept_invitation(${invitationId})`;
      expect(m).toEqual({ tenant_id: tenants.acme.id, role: 'agent' });
    });
    const again = await probeAs(db.sql, 'authenticated', claims, (tx) => tx`select * from private.accept_invitation(${invitationId})`);
    // Accepted already: the invitee learns that (409), a stranger still gets "not found".
    expect(again.ok ? 'accepted twice' : again.error.code).toBe('PT409');
    const strangerLater = await probeAs(db.sql, 'authenticated', supabaseClaims(users.globexUser), (tx) =>
      tx`select * from private.accept_invitation(${invitationId})`);
    expect(strangerLater.ok ? 'accepted' : strangerLater.error.code).toBe('PT404');
    const [m] = await db.sql`select role from public.memberships where tenant_id = ${tenants.acme.id} and user_id = ${invitee.id}`;
    expect(m.role).toBe('agent');
  });

  it('an expired invitation cannot be accepted, and its addressee is told why', async () => {
    const [{ id }] = await db.sql`
      insert into public.invitations (tenant_id, email, role, created_at, expires_at)
      values (${tenants.globex.id}, ${invitee.email}, 'user', now() - interval '20 days', now() - interval '1 day') returning id`;
    const claims = { iss: 'http://127.0.0.1:54321/auth/v1', sub: invitee.id, role: 'authenticated' };
    const r = await probeAs(db.sql, 'authenticated', claims, (tx) => tx`select * from private.accept_invitation(${id})`);
    // Told so (410 invitation_expired), as its addressee.
    expect(r.ok ? 'accepted' : r.error.code).toBe('PT410');
  });
});

