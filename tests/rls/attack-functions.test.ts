// Issue 9, §3: every function that anon or authenticated may execute, enumerated from
// pg_proc and its ACL, is called as each two-tenant attacker with each token shape, with
// the victim tenant's ids. No effect (the victim's rows, in every schema, unchanged inside
// the transaction), no information (the same answer or the same error code as for ids
// that exist nowhere, and no victim value in the result). A function that becomes
// executable fails the suite until it is shown safe and listed below.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type Sql, type TestDatabase } from '../helpers/db.ts';
import {
  actors,
  attackers,
  createAttackers,
  fingerprint,
  installKit,
  type Json,
  type Outcome,
  plantColliders,
  populateTenant,
  type Probe,
  runProbes,
  snapshot,
  tenantRows,
  VICTIM,
  VICTIM_PEOPLE,
  VICTIM_TEAM,
  VICTIM_TICKETS,
} from './attack-kit.ts';

// Every function API roles may execute, with why it is safe. Keep it true: an executable
// function missing here, or listed but no longer executable, fails the suite. (Before
// issue 9 the list also held next_ticket_number, is_member, auto_assignee, apply_sla,
// check_ticket_assignee, setting and my_team_ids: this suite found the first five leaking or writing
// across tenants; they are now callable only by triggers and definer code.)
const SAFE: Record<string, string> = {
  'private.accept_invitation(p_invitation_id uuid)': "acts only on an invitation addressed to the caller's own e-mail",
  'private.active_tenant_id()': "echoes the tenant the caller's own token names (an API key's: the key's own tenant)",
  'private.api_keys_last_used(p_tenant_id uuid)': 'nothing unless the caller is an admin of the tenant',
  'private.create_api_key(p_tenant_id uuid, p_name text, p_scopes text[], p_expires_at timestamp with time zone, p_secret_sha256 text)':
    'admins of the writable tenant only, never a key; 404 otherwise',
  'private.verify_api_key(p_id uuid, p_secret_sha256 text, p_scope text)':
    'needs the secret: a wrong one answers 401 invalid_api_key exactly as an unknown id, and changes nothing',
  'private.add_business_minutes(p_start timestamp with time zone, p_minutes integer, p_hours jsonb)': 'pure arithmetic on its arguments',
  'private.allowed_ticket_transitions(p_from text)': 'the global status transition table, the same for every tenant',
  'private.canned_body_placeholders_ok(p_body text)': 'pure: which placeholders a text holds',
  'private.custom_field_options_ok(p_type text, p_options text[])': 'pure: whether options fit a field type',
  'private.tickets_with_custom_fields(p_tenant_id uuid, p_contains jsonb, p_internal boolean)':
    "staff of the tenant only (nothing for others, at once); only tickets the tickets select policy shows the caller",
  'private.can_see_ticket(p_tenant_id uuid, p_ticket_id uuid)': "the tickets select policy, run for one ticket as the caller's claims see it",
  'private.caller_context()': "the caller's own user, admin flag, active tenant and memberships, from their own claims",
  'private.claim_idempotency_key(p_tenant_id uuid, p_key text, p_request_hash text)': "keys only in the caller's writable tenants (assert_writable_tenant), under the caller's own id",
  'private.current_user_id()': 'the caller\'s own id, from their own token',
  'private.find_or_create_user(p_email text, p_first_name text, p_last_name text)': 'refuses everyone but platform admins (42501)',
  'private.hand_off_ticket(p_tenant_id uuid, p_ticket_id uuid, p_set_assignee boolean, p_assignee uuid, p_set_team boolean, p_team_id uuid)':
    'checks the caller is staff of the tenant (role_in, tenant_ids(agent, writable)) and can see the ticket',
  'private.is_platform_admin()': 'about the caller only',
  'private.mark_attachment_uploaded(p_tenant_id uuid, p_attachment_id uuid)': 'checks the caller can see the attachment\'s ticket',
  'private.message_edit_refusal(p_message ticket_messages)':
    "the caller's own right to edit a row the caller supplies; its ticket is looked up under the caller's select policy (invoker)",
  'private.merge_tickets(p_tenant_id uuid, p_source_id uuid, p_target_id uuid)': 'checks the caller is staff of the tenant and can see both tickets',
  'private.my_invitations()': "the caller's own pending invitations",
  'private.macro_actions_ok(p_actions jsonb)': 'pure: whether a list of actions is well-formed',
  'private.automation_actions_ok(p_actions jsonb)': "pure: whether a rule's actions are well-formed",
  'private.automation_condition_ok(p_condition jsonb)': "pure: whether one of a rule's conditions is well-formed",
  'private.automation_conditions_ok(p_conditions jsonb)': "pure: whether a rule's conditions are well-formed",
  'private.my_followed_ticket_keys()': "the caller's own followed tickets, as tenant-qualified keys",
  'private.customer_follower_tenant_ids(p_writable boolean)':
    "the caller's own tenants (tenant_ids) whose settings let customers follow tickets",
  'private.my_team_keys()': "the caller's own teams, as tenant-qualified keys",
  'private.my_voice_customer_keys()': "the caller's own linked voice customer records, as tenant-qualified keys",
  'private.render_canned_response(p_tenant_id uuid, p_canned_id uuid, p_ticket_id uuid)':
    'security invoker: reads the template, the ticket and the people under the caller\'s own RLS',
  'private.retry_tenant_service(p_tenant_id uuid, p_service text)': "checks tenant_ids('admin', writable)",
  'private.reveal_service_credentials(p_tenant_id uuid, p_service text)': "checks tenant_ids('admin')",
  'private.unrevealed_service_credentials(p_tenant_id uuid)': "only rows of a tenant among tenant_ids('admin') (or for platform admins); else nothing",
  'private.revoke_api_key(p_tenant_id uuid, p_key_id uuid)':
    "checks tenant_ids('admin') (suspended too) first; null for anyone else, whether the key exists or not",
  'private.request_tenant_id(p_name text)': "resolves a name only among the caller's own tenants (tenant_ids); any other uuid is echoed unchecked, a slug of another tenant is the nil id",
  'private.role_in(p_tenant_id uuid)': "the caller's own role, narrowed to the tenants their token allows",
  'private.role_rank(p_role text)': 'pure: a role name to its rank',
  'private.rotate_service_credentials(p_tenant_id uuid, p_service text)': "checks tenant_ids('admin', writable)",
  'private.store_idempotent_response(p_tenant_id uuid, p_key text, p_status_code integer, p_response jsonb)': "writes only the caller's own keys (user_id = current_user_id())",
  'private.tags_text(p_tags text[])': 'pure: tags to search text',
  'private.tenant_access(p_tenant_id uuid, p_min_role text, p_write boolean)': "the caller's own standing (role_in); the same 404 for another tenant as for none",
  'private.tenant_ids(p_min_role text, p_writable boolean)': "the caller's own tenants",
  'private.ticket_search_candidates(p_tenant_id uuid, p_query text, p_include_deleted boolean, p_limit integer)':
    "filtered by the tickets select policy itself (read from the catalog) as the caller's claims see it: ids of tickets the caller may read anyway",
  'private.ticket_stats(p_tenant_id uuid)': 'checks the caller is staff of the tenant (role_in)',
  'private.token_tenant_id()': "the tenant the caller's own token names, if theirs or inviting them (else PT403)",
  'private.allowed_voice_call_transitions(p_from text)': 'the global call status transition table, the same for every tenant',
  'private.kb_search(p_tenant_id uuid, p_query text, p_knowledge_base_id uuid, p_limit integer, p_embedding real[])':
    "answers only for a tenant among the caller's own (tenant_ids('user')) or a platform admin; else nothing",
  'private.kb_embedding_dimensions()': "the project's embedding size from the catalog, the same for every tenant",
  'private.kb_chunks_of_document(p_tenant_id uuid, p_document_id uuid, p_after integer, p_limit integer, p_embedded boolean)':
    'invoker: the kb_chunks select policy decides what the caller sees',
  'private.kb_set_embeddings(p_tenant_id uuid, p_knowledge_base_id uuid, p_document_id uuid, p_items jsonb)':
    "checks tenant_ids('admin', true) or platform admin before reading anything (42501 to anyone else, the same for an unknown tenant)",
  'private.voice_call_delete(p_tenant_id uuid, p_call_id uuid)':
    "checks tenant_ids('admin', true) or platform admin before reading anything (42501 to anyone else, the same for an unknown tenant)",
  'private.voice_customer_erase(p_tenant_id uuid, p_customer_id uuid)':
    "checks tenant_ids('admin') or platform admin before reading anything (42501 to anyone else, the same for an unknown tenant)",
  'private.voice_held_events(p_tenant_id uuid, p_provider_call_id text, p_after_id bigint, p_limit integer)':
    "answers only for a tenant among the caller's own staff tenants (tenant_ids('agent')) or a platform admin; else nothing",
  'private.check_customer_upload(p_tenant_id uuid, p_size_bytes bigint)':
    "sums only the caller's own pending attachments, in a tenant among tenant_ids('user'); else returns at once",
  'private.check_customer_filing(p_tenant_id uuid)':
    "counts only the caller's own tickets, in a tenant among tenant_ids('user'); else returns at once",
  'private.check_customer_message(p_tenant_id uuid)':
    "counts only the caller's own messages, in a tenant among tenant_ids('user'); else returns at once",
  'private.check_customer_edits(p_tenant_id uuid, p_edits integer)':
    "counts only the caller's own edits, in a tenant among tenant_ids('user'); else returns at once",
  'private.voice_agents_for_members(p_tenant_id uuid)':
    "the agents of a tenant among the caller's own (tenant_ids('user')), without their LLM configuration; else nothing",
  'private.voice_own_customer_records(p_tenant_id uuid)':
    "the caller's own linked voice customer records in a tenant they belong to, without staff's notes and tags",
  'private.voice_calls_matching(p_tenant_id uuid, p_query text)':
    "answers only for a tenant among the caller's own: staff (tenant_ids('agent')) or a platform admin every call, a customer (tenant_ids('user')) their linked record's; else nothing",
  'private.webhook_deliveries_for(p_tenant_id uuid, p_endpoint_id uuid, p_limit integer)': "checks tenant_ids('admin')",
  'private.retry_webhook_delivery(p_tenant_id uuid, p_endpoint_id uuid, p_delivery_id bigint)':
    "checks tenant_ids('admin', true); the delivery by tenant, endpoint and id",
  // Plans and usage (issue 15).
  'private.entitlements_of(p_tenant_id uuid)': "checks tenant_ids('user') or platform admin; the same 404 for another tenant as for none",
  'private.require_feature(p_tenant_id uuid, p_feature text)': "checks tenant_ids('user') or platform admin first; the same 404 for another tenant as for none",
  'private.set_tenant_entitlements(p_tenant_id uuid, p_limits jsonb, p_features jsonb, p_flags jsonb)': 'refuses everyone but platform admins (PT403)',
  'private.tenant_usage(p_tenant_id uuid)': "checks tenant_ids('admin') or platform admin; the same 404 for another tenant as for none",
};

// Provided by the platform bootstrap (what every hosted project has), not by a migration:
// they read the caller's own claims and nothing else.
const PLATFORM = new Set(['auth.uid()', 'auth.jwt()', 'auth.role()', 'auth.email()']);

interface Fn {
  signature: string;
  schema: string;
  name: string;
  retset: boolean;
  args: { name: string; type: string; typrel: string | null }[];
  anon: boolean;
  authenticated: boolean;
}

/** Functions anon or authenticated may execute, outside extensions and the platform's auth helpers. */
async function executableFunctions(sql: Sql): Promise<Fn[]> {
  const rows = await sql`
    select n.nspname as schema, p.proname as name, p.proretset as retset,
           format('%s.%s(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) as signature,
           has_function_privilege('anon', p.oid, 'EXECUTE') as anon,
           has_function_privilege('authenticated', p.oid, 'EXECUTE') as authenticated,
           coalesce((select json_agg(json_build_object('name', coalesce(p.proargnames[k.i], ''), 'type', format_type(k.t, null),
                                                      'typrel', (select nullif(ty.typrelid, 0)::regclass::text from pg_type ty where ty.oid = k.t))
                                     order by k.i)
                     from unnest(p.proargtypes::oid[]) with ordinality k(t, i)), '[]') as args
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname not in ('pg_catalog', 'information_schema', 'attack_probe') and n.nspname not like 'pg_toast%'
      and p.prokind = 'f' and p.prorettype not in ('trigger'::regtype, 'event_trigger'::regtype)
      and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
      and (has_function_privilege('anon', p.oid, 'EXECUTE') or has_function_privilege('authenticated', p.oid, 'EXECUTE'))
    order by 4`;
  return (rows as unknown as Fn[]).filter((f) => !PLATFORM.has(f.signature));
}

let db: TestDatabase;
let fns: Fn[];
let victimRows: Map<string, Json[]>;
let baseline: string;
let results: { fn: Fn; actor: string; shape: string; victim: Probe; random: Probe; vo: Outcome; ro: Outcome; swap: Map<string, string> }[] = [];

/** The table of an id argument whose name does not say it. */
const ID_TABLES: Record<string, string> = {
  'render_canned_response(p_canned_id)': 'canned_responses',
  'verify_api_key(p_id)': 'api_keys',
};

/** uuid arguments no victim table is named like: called with a ticket id, which aims at nothing. */
const unaimed = new Set<string>();

const firstId = (rel: string) => victimRows.get(rel)?.[0]?.id as string | undefined;

/** A value for each argument, aimed at the victim: uuids by name (tenant, ticket, team,
 *  user, …, else the table named like the argument), text from a victim column of the same
 *  name, row types from a victim row of that table. */
function victimArgs(fn: Fn): string[] {
  return fn.args.map(({ name, type, typrel }) => {
    const bare = name.replace(/^p_/, '').replace(/_id$/, '');
    if (typrel) {
      // A victim row with its derived timestamps cleared (created_at kept), so a function
      // that fills them from the tenant's settings shows whether it read them.
      const found = victimRows.get(typrel)?.[0];
      const row = found &&
        Object.fromEntries(Object.entries(found).filter(([k, v]) => k === 'created_at' || typeof v !== 'string' || !/^\d{4}-\d\d-\d\dT/.test(v)));
      return row ? `jsonb_populate_record(null::${typrel}, '${JSON.stringify(row).replace(/'/g, "''")}'::jsonb)` : `null::${typrel}`;
    }
    if (type === 'uuid') {
      if (/tenant/.test(bare)) return `'${VICTIM.id}'::uuid`;
      if (/target/.test(bare)) return `'${VICTIM_TICKETS.other}'::uuid`;
      if (/ticket|source/.test(bare)) return `'${VICTIM_TICKETS.open}'::uuid`;
      if (/team/.test(bare)) return `'${VICTIM_TEAM}'::uuid`;
      if (/user|assignee|member|author|lead/.test(bare)) return `'${VICTIM_PEOPLE.agent.id}'::uuid`;
      // The table named like the argument, also under a prefix (p_customer_id: voice_customers).
      const named = new RegExp(`(^|_)${bare}s?$`);
      const table = ID_TABLES[`${fn.name}(${name})`] ?? [...victimRows.keys()].find((rel) => named.test(rel.replace(/^.*\./, '')));
      const id = table && firstId(table);
      if (!id) unaimed.add(`${fn.name}(${name})`);
      return `'${id ?? firstId('tickets')}'::uuid`;
    }
    if (type === 'text') {
      if (/role/.test(bare)) return `'user'`;
      // A search's words: one the victim's seeded text holds everywhere (its tickets, its
      // knowledge, its transcripts), so a search that forgot its tenant check answers rows
      // for the victim's ids and none for the random twin's. ('x' matched nothing either way.)
      if (/^(query|q|search|terms?)$/.test(bare)) return `'victim'`;
      if (bare === 'from') return `'open'`;
      for (const rows of victimRows.values()) {
        const v = rows[0]?.[bare];
        if (typeof v === 'string') return `'${v.replace(/'/g, "''")}'`;
      }
      return `'x'`;
    }
    if (/^(integer|bigint|smallint|numeric)$/.test(type)) return '10';
    if (type === 'boolean') return 'true';
    if (type === 'jsonb' || type === 'json') return `'{}'::${type}`;
    if (type.startsWith('timestamp')) return `'2026-01-05T10:00:00Z'::${type}`;
    // No embedding (an empty one is refused before any tenant check where vectors exist).
    if (type.endsWith('[]') && /embedding/.test(bare)) return `null::${type}`;
    if (type.endsWith('[]')) return `'{}'::${type}`;
    return `null::${type}`;
  });
}

function callSql(fn: Fn, args: string[]): string {
  const call = `${fn.schema}.${fn.name}(${args.join(', ')})`;
  return fn.retset ? `select * from ${call}` : `select ${call} as v`;
}

/** The same call with every uuid exchanged for one that exists nowhere. */
function randomTwin(sqlText: string): { sql: string; swap: Map<string, string> } {
  const swap = new Map<string, string>();
  const out = sqlText.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (u) => {
    if (!swap.has(u)) swap.set(u, randomUUID());
    return swap.get(u)!;
  });
  return { sql: out, swap };
}

function normalised(o: Outcome, swap?: Map<string, string>): string {
  if (o.code) return `error ${o.code}`;
  let text = JSON.stringify(o.value ?? null);
  if (swap) for (const [victim, random] of swap) text = text.split(random).join(victim);
  return text;
}

function buildCalls(list: Fn[]) {
  const calls: { fn: Fn; actor: string; shape: string; victim: Probe; random: Probe; swap: Map<string, string> }[] = [];
  for (const actor of actors()) {
    for (const fn of list.filter((f) => (actor.role === 'anon' ? f.anon : f.authenticated))) {
      const sqlText = callSql(fn, victimArgs(fn));
      for (const shape of actor.shapes) {
        const twin = randomTwin(sqlText);
        const base = { role: actor.role, claims: shape.claims, kind: 'read' as const, tenant: VICTIM.id, fp: true, fp_always: true, keep: true };
        calls.push({
          fn,
          actor: actor.label,
          shape: shape.label,
          swap: twin.swap,
          victim: { ...base, sql: sqlText, meta: { fn: fn.signature, actor: actor.label, shape: shape.label } },
          random: { ...base, sql: twin.sql, meta: { fn: fn.signature, actor: actor.label, shape: shape.label, ids: 'random' } },
        });
      }
    }
  }
  return calls;
}

async function attack(sql: Sql, list: Fn[]) {
  const calls = buildCalls(list);
  const outcomes = await runProbes(sql, calls.flatMap((c) => [c.victim, c.random]), 60);
  return calls.map((c, i) => ({ ...c, vo: outcomes[2 * i], ro: outcomes[2 * i + 1] }));
}

function verdicts(list: typeof results): string[] {
  const out = new Set<string>();
  for (const r of list) {
    const who = `${r.fn.signature} as ${r.actor} (${r.shape})`;
    if (r.vo.code && ['42601', '42703', '42883', '42P01', '42804'].includes(r.vo.code)) out.add(`BROKEN CALL ${who}: ${r.vo.code} ${r.vo.msg}`);
    if (r.vo.changed) out.add(`EFFECT on the victim: ${r.fn.signature}: ${(r.vo.changed_tables ?? []).join(', ')}`);
    if (r.vo.markers?.length) out.add(`INFORMATION (victim values in the result): ${r.fn.signature}: ${r.vo.markers.slice(0, 3).join(', ')}`);
    const v = normalised(r.vo);
    const x = normalised(r.ro, r.swap);
    if (v !== x) out.add(`INFORMATION (victim ids answer differently from unknown ids): ${r.fn.signature}: ${v.slice(0, 80)} vs ${x.slice(0, 80)}`);
    void who;
  }
  return [...out].sort();
}

beforeAll(async () => {
  db = await freshDatabase('attack_functions');
  await installKit(db.sql);
  await populateTenant(db.sql, VICTIM, VICTIM_PEOPLE, VICTIM_TEAM);
  await createAttackers(db.sql);
  await snapshot(db.sql, VICTIM.id);
  await plantColliders(db.sql, VICTIM.id, attackers.map((at) => ({ tenant: at.b.id, person: at.id })));
  baseline = await snapshot(db.sql, VICTIM.id);
  victimRows = await tenantRows(db.sql, VICTIM.id);
  fns = await executableFunctions(db.sql);
  results = await attack(db.sql, fns);
  const as = actors();
  console.log(
    `executable functions attacked: ${fns.length} functions (${fns.filter((f) => f.anon).length} by anon) × ${as.length} roles × ` +
      `${as[1].shapes.length} token shapes = ${results.length} calls with victim ids, each against the same call with unknown ids`,
  );
}, 120_000);
afterAll(() => db?.close());

describe('functions API roles may execute', () => {
  it('are each listed as shown safe, and every listed one is still executable', () => {
    const now = fns.map((f) => f.signature);
    expect(now.filter((s) => !(s in SAFE)), 'new executable function: show it safe, then list it in SAFE').toEqual([]);
    expect(Object.keys(SAFE).filter((s) => !now.includes(s)), 'listed but no longer executable: drop it from SAFE').toEqual([]);
  });

  it("are called with the victim's own record for each id argument", () => {
    expect([...unaimed].sort(), 'an id argument no victim table is named like: name the table it takes').toEqual([]);
  });

  it('have no effect on the victim tenant, give no information about it, and take well-formed calls', () => {
    expect(verdicts(results)).toEqual([]);
  });

  // The verdicts compare a victim's ids with unknown ones: a function whose generated
  // arguments its own checks refuse every time (a time in the past, a malformed hash)
  // answers both the same and shows nothing of its tenant check. Each is called at least
  // once in a way its argument checks take, so its refusals are its authorization's.
  it('are each called at least once past their argument checks', () => {
    const argumentRefusal = (code?: string) => !!code && (/^2[23]/.test(code) || ['PT400', 'PT422'].includes(code));
    const stopped = fns.filter((f) =>
      results.filter((r) => r.fn.signature === f.signature).every((r) => argumentRefusal(r.vo.code) && argumentRefusal(r.ro.code))
    ).map((f) => `${f.signature}: ${results.find((r) => r.fn.signature === f.signature)?.vo.code}`);
    expect(stopped, 'called only with arguments its checks refuse: generate ones they take').toEqual([]);
  });

  // A check of the harness, not of the functions (the verdicts above see each call's
  // changes inside its own transaction): every probe is rolled back, so the suite itself
  // leaves the victim tenant as it found it for the tests that follow.
  it('the probes leave the victim tenant as they found it (each is rolled back)', async () => {
    expect(await fingerprint(db.sql, VICTIM.id)).toBe(baseline);
  });
});

describe('canary: the checker catches a planted leaking function', () => {
  it('an unlisted definer function that reads and writes another tenant is reported', async () => {
    let found: string[] = [];
    let unlisted: string[] = [];
    await db.sql
      .begin(async (tx) => {
        await tx.unsafe(`
          create function public.attack_canary(p_tenant_id uuid) returns bigint language sql security definer set search_path = '' as $$
            update public.teams set description = description where tenant_id = p_tenant_id;
            select count(*) from public.tickets where tenant_id = p_tenant_id $$;
          revoke all on function public.attack_canary(uuid) from public, anon;
          grant execute on function public.attack_canary(uuid) to authenticated`);
        const list = (await executableFunctions(tx as never)).filter((f) => f.name === 'attack_canary');
        unlisted = list.map((f) => f.signature).filter((s) => !(s in SAFE));
        found = verdicts(await attack(tx as never, list));
        throw new Error('rollback');
      })
      .catch((e) => {
        if ((e as Error).message !== 'rollback') throw e;
      });
    expect(unlisted).toEqual(['public.attack_canary(p_tenant_id uuid)']);
    expect(found.some((f) => f.startsWith('EFFECT on the victim: public.attack_canary'))).toBe(true);
    expect(found.some((f) => f.startsWith('INFORMATION (victim ids answer differently') && f.includes('attack_canary'))).toBe(true);
  });
});
