// Automation rules (admins): an event, conditions and ordered actions the platform
// applies to tickets on its own, deferred through the job queue
// (20261202140000_automation_rules.sql holds every rule of evaluation), and each rule's
// runs — what it applied, and what it was refused and why.
import { createRoute, z } from '@hono/zod-openapi';
import { apiKeyScope, type Scope } from '../../../shared/auth/api-keys.ts';
import { caller, type CallerContext, callerDb } from '../../../shared/auth/context.ts';
import { missingScopes, requireScopes } from '../../../shared/auth/key-scopes.ts';
import { needs } from '../../../shared/auth/needs.ts';
import type { Tx } from '../../../shared/db.ts';
import { notFound } from '../../../shared/errors.ts';
import { createRouter } from '../../../shared/http.ts';
import type { Checked, Column, Selected } from '../../../shared/rows.ts';
import {
  commonErrors,
  conflictError,
  cursorValues,
  isPgTimestamptz,
  jsonBody,
  jsonResponse,
  keysetPage,
  UUID_PATTERN,
} from '../../../shared/schemas/common.ts';
import * as s from '../schemas.ts';
import type { TicketsHandler } from './common.ts';

const RULE_COLUMNS = [
  'id',
  'tenant_id',
  'name',
  'description',
  'event',
  'after_minutes',
  'conditions',
  'actions',
  'position',
  'active',
  'created_by',
  'created_at',
  'updated_at',
] as const satisfies readonly Column<'automation_rules'>[];
const RUN_COLUMNS = [
  'id',
  'rule_id',
  'ticket_id',
  'event',
  'event_id',
  'outcome',
  'actions_applied',
  'failed_action',
  'error',
  'created_at',
] as const satisfies readonly Column<'automation_runs'>[];

type Run = z.infer<typeof s.AutomationRunSchema>;
type RuleRow = Checked<
  Selected<'automation_rules', typeof RULE_COLUMNS>,
  {
    event: z.infer<typeof s.AutomationEventSchema>;
    conditions: z.infer<typeof s.AutomationRuleSchema>['conditions'];
    actions: z.infer<typeof s.AutomationActionSchema>[];
  }
>;
type Rule = RuleRow & { last_failure: Run | null };

const routes = {
  list: createRoute({
    method: 'get',
    path: '/automation-rules',
    summary: "The tenant's automation rules (admins), by event and position",
    ...apiKeyScope('workflow:manage'),
    middleware: needs.activeTenantRole('admin', { scope: 'workflow:manage' }),
    request: { query: s.ListRulesQuery },
    responses: {
      200: jsonResponse(
        z.object({ items: z.array(s.AutomationRuleSchema), next: z.string().nullable() }),
        'A page of rules, by event, then position',
      ),
      ...commonErrors,
    },
  }),
  create: createRoute({
    method: 'post',
    path: '/automation-rules',
    summary: 'Add an automation rule (admins)',
    ...apiKeyScope('workflow:manage'),
    middleware: needs.activeTenantRole('admin', { write: true, scope: 'workflow:manage' }),
    request: { body: jsonBody(s.AutomationRuleBody) },
    responses: { 201: jsonResponse(s.AutomationRuleSchema, 'The rule'), ...commonErrors, ...conflictError },
  }),
  get: createRoute({
    method: 'get',
    path: '/automation-rules/{ruleId}',
    summary: 'One rule, with its latest failure',
    ...apiKeyScope('workflow:manage'),
    middleware: needs.activeTenantRole('admin', { scope: 'workflow:manage' }),
    request: { params: s.AutomationRuleIdParam },
    responses: { 200: jsonResponse(s.AutomationRuleSchema, 'The rule'), ...commonErrors },
  }),
  update: createRoute({
    method: 'patch',
    path: '/automation-rules/{ruleId}',
    summary: 'Change a rule: its event, conditions, actions, position, or switch it off',
    ...apiKeyScope('workflow:manage'),
    middleware: needs.activeTenantRole('admin', { write: true, scope: 'workflow:manage' }),
    request: { params: s.AutomationRuleIdParam, body: jsonBody(s.UpdateAutomationRuleBody) },
    responses: { 200: jsonResponse(s.AutomationRuleSchema, 'The rule'), ...commonErrors, ...conflictError },
  }),
  remove: createRoute({
    method: 'delete',
    path: '/automation-rules/{ruleId}',
    summary: 'Remove a rule and its runs',
    ...apiKeyScope('workflow:manage'),
    middleware: needs.activeTenantRole('admin', { write: true, scope: 'workflow:manage' }),
    request: { params: s.AutomationRuleIdParam },
    responses: { 204: { description: 'Removed' }, ...commonErrors },
  }),
  runs: createRoute({
    method: 'get',
    path: '/automation-rules/{ruleId}/runs',
    summary: "A rule's runs, newest first: what it applied, and what it was refused and why",
    ...apiKeyScope('workflow:manage'),
    middleware: needs.activeTenantRole('admin', { scope: 'workflow:manage' }),
    request: { params: s.AutomationRuleIdParam, query: s.AutomationRunsQuery },
    responses: {
      200: jsonResponse(
        z.object({ items: z.array(s.AutomationRunSchema), next_before: z.number().int().nullable() }),
        'Runs, newest first; next_before pages on',
      ),
      ...commonErrors,
    },
  }),
};

/** What a rule reads and writes, and what its runs name: tickets. */
const TICKET_SCOPES: readonly Scope[] = ['tickets:read', 'tickets:write'];

/** Rules with their latest failure (one statement; the caller adds the filter). A run
 *  names a ticket, its event and why it was refused: an API key without the ticket scopes
 *  (see requireTicketScopes) reads the rules with last_failure null, as it cannot read
 *  their runs either. */
const selectRules = (tx: Tx, withRuns: boolean, keyed = false) => {
  // The list's cursor reads created_at as Postgres writes it.
  const key = keyed ? tx`r.created_at::text as created_key,` : tx``;
  return withRuns
    ? tx`
    select ${tx.columns(RULE_COLUMNS)}, ${key} (
      select to_jsonb(f) from (
        select ${tx.columns(RUN_COLUMNS)} from public.automation_runs x
        where x.tenant_id = r.tenant_id and x.rule_id = r.id and x.outcome = 'failed'
        order by x.id desc limit 1) f
    ) as last_failure
    from public.automation_rules r`
    : tx`select ${tx.columns(RULE_COLUMNS)}, ${key} null::jsonb as last_failure from public.automation_rules r`;
};

async function readRule(tx: Tx, tenantId: string, id: string, withRuns = true): Promise<Rule> {
  const [rule] = await tx<Rule>`${selectRules(tx, withRuns)} where r.tenant_id = ${tenantId} and r.id = ${id}`;
  if (!rule) throw notFound('Automation rule');
  return rule;
}

/** Whether the caller may read what a rule's runs name (a person: yes; a key: with the ticket scopes). */
const readsRuns = (c: CallerContext) => missingScopes(caller(c).apiKey?.scopes, TICKET_SCOPES).length === 0;

/** A rules cursor: (event, position, created_at as Postgres writes it, id), each checked
 *  for its type, so a forged one is a 422 naming the cursor. */
const ruleCursor = (v: string, i: number) =>
  i === 0
    ? /^[a-z_.]{1,64}$/.test(v)
    : i === 1
    ? /^-?\d{1,10}$/.test(v) && Math.abs(Number(v)) <= 2147483647
    : i === 2
    ? isPgTimestamptz(v)
    : UUID_PATTERN.test(v);

const list: TicketsHandler<typeof routes.list> = async (c) => {
  const access = c.var.access;
  const q = c.req.valid('query');
  const after = cursorValues(q.cursor, 4, ruleCursor);
  // Past the 500th a list was cut with nothing to say so: pages, with `next`.
  const rows = await callerDb(c, access.tenantId, (tx) =>
    tx<Rule & { created_key: string }>`
      ${selectRules(tx, readsRuns(c), true)} where r.tenant_id = ${access.tenantId}
        ${
      after
        ? tx`and (r.event, r.position, r.created_at, r.id)
               > (${after[0]}::text, ${after[1]}::int, ${after[2]}::timestamptz, ${after[3]}::uuid)`
        : tx``
    }
      order by r.event, r.position, r.created_at, r.id limit ${q.limit + 1}
    `);
  const page = keysetPage(rows, q.limit, (r) => [r.event, String(r.position), r.created_key, r.id]);
  return c.json({ items: page.items.map(({ created_key: _, ...rule }) => rule), next: page.next }, 200);
};

/** A rule reads tickets (its conditions, hidden custom fields included) and writes them
 *  (its actions), and its runs name the tickets it matched: an API key adds or changes
 *  one, or reads its runs, only with tickets:read and tickets:write besides
 *  workflow:manage. */
const requireTicketScopes = (c: CallerContext) =>
  requireScopes(caller(c).apiKey?.scopes, TICKET_SCOPES, 'Rules read and write tickets');

const create: TicketsHandler<typeof routes.create> = async (c) => {
  requireTicketScopes(c);
  const b = c.req.valid('json');
  const access = c.var.access;
  const rule = await callerDb(c, access.tenantId, async (tx) => {
    const [r] = await tx<{ id: string }>`
      insert into public.automation_rules
        (tenant_id, name, description, event, after_minutes, conditions, actions, position, active, created_by)
      values (${access.tenantId}, ${b.name}, ${b.description ?? null}, ${b.event}, ${b.after_minutes ?? null},
              ${tx.json(b.conditions)}, ${tx.json(b.actions)}, ${b.position}, ${b.active}, private.current_user_id())
      returning id
    `;
    return await readRule(tx, access.tenantId, r.id);
  });
  return c.json(rule, 201);
};

const get: TicketsHandler<typeof routes.get> = async (c) => {
  const { ruleId } = c.req.valid('param');
  const access = c.var.access;
  return c.json(await callerDb(c, access.tenantId, (tx) => readRule(tx, access.tenantId, ruleId, readsRuns(c))), 200);
};

const update: TicketsHandler<typeof routes.update> = async (c) => {
  requireTicketScopes(c);
  const { ruleId } = c.req.valid('param');
  const b = c.req.valid('json');
  const access = c.var.access;
  const rule = await callerDb(c, access.tenantId, async (tx) => {
    await readRule(tx, access.tenantId, ruleId);
    // Only what the body names changes, written over the row as it is when locked (a
    // concurrent change to another field stays); the database checks the whole (timing,
    // conditions and actions), so a rule never becomes inconsistent.
    await tx`
      update public.automation_rules set
        name = coalesce(${b.name ?? null}::text, name),
        description = case when ${'description' in b} then ${b.description ?? null}::text else description end,
        event = coalesce(${b.event ?? null}::text, event),
        after_minutes = case when ${'after_minutes' in b} then ${b.after_minutes ?? null}::integer else after_minutes end,
        conditions = coalesce(${b.conditions ? tx.json(b.conditions) : null}::jsonb, conditions),
        actions = coalesce(${b.actions ? tx.json(b.actions) : null}::jsonb, actions),
        position = coalesce(${b.position ?? null}::integer, position),
        active = coalesce(${b.active ?? null}::boolean, active)
      where tenant_id = ${access.tenantId} and id = ${ruleId}
    `;
    return await readRule(tx, access.tenantId, ruleId);
  });
  return c.json(rule, 200);
};

const remove: TicketsHandler<typeof routes.remove> = async (c) => {
  const { ruleId } = c.req.valid('param');
  const access = c.var.access;
  await callerDb(c, access.tenantId, async (tx) => {
    const gone =
      await tx`delete from public.automation_rules where tenant_id = ${access.tenantId} and id = ${ruleId} returning id`;
    if (!gone.length) throw notFound('Automation rule');
  });
  return c.body(null, 204);
};

const runs: TicketsHandler<typeof routes.runs> = async (c) => {
  requireTicketScopes(c);
  const { ruleId } = c.req.valid('param');
  const q = c.req.valid('query');
  const access = c.var.access;
  const items = await callerDb(c, access.tenantId, async (tx) => {
    await readRule(tx, access.tenantId, ruleId);
    return await tx<Run>`
      select ${tx.columns(RUN_COLUMNS)} from public.automation_runs
      where tenant_id = ${access.tenantId} and rule_id = ${ruleId}
        ${q.outcome ? tx`and outcome = ${q.outcome}` : tx``}
        ${q.ticket_id ? tx`and ticket_id = ${q.ticket_id}` : tx``}
        ${q.before ? tx`and id < ${q.before}` : tx``}
      order by id desc limit ${q.limit}
    `;
  });
  const next = items.length === q.limit ? items[items.length - 1].id : null;
  return c.json({ items, next_before: next }, 200);
};

export const automation = createRouter()
  .openapi(routes.list, list)
  .openapi(routes.create, create)
  .openapi(routes.get, get)
  .openapi(routes.update, update)
  .openapi(routes.remove, remove)
  .openapi(routes.runs, runs);
