// What the voice API's people's routes share: the columns they
// read (typed by the generated Row types), and keyset pages.
import type { RouteConfig, RouteHandler, z } from '@hono/zod-openapi';
import type { Tx } from '../../../shared/db.ts';
import type { Checked, Column, JsonObject, Selected } from '../../../shared/rows.ts';
import { cursorValues, encodeCursor, keysetCursor } from '../../../shared/schemas/common.ts';
import type * as s from '../schemas.ts';

export type VoiceHandler<R extends RouteConfig> = RouteHandler<R>;

export const AGENT_COLUMNS = [
  'id',
  'tenant_id',
  'name',
  'phone',
  'voice_id',
  'llm_config',
  'greeting',
  'language',
  'active',
  'knowledge_base_id',
  'created_at',
  'updated_at',
] as const satisfies readonly Column<'voice_agents'>[];
export type AgentRow = Checked<
  Selected<'voice_agents', typeof AGENT_COLUMNS>,
  { llm_config: z.infer<typeof s.LlmConfigSchema> & JsonObject }
>;
/** An agent as a read gives it: a customer's has no LLM configuration (see MEMBER_VIEWS). */
export type AgentReadRow = Omit<AgentRow, 'llm_config'> & { llm_config: AgentRow['llm_config'] | null };

export const CUSTOMER_COLUMNS = [
  'id',
  'tenant_id',
  'phone',
  'name',
  'email',
  'notes',
  'tags',
  'user_id',
  'recording_consent',
  'recording_consent_at',
  'marketing_consent',
  'marketing_consent_at',
  'created_at',
  'updated_at',
] as const satisfies readonly Column<'voice_customers'>[];
export type CustomerRow = Selected<'voice_customers', typeof CUSTOMER_COLUMNS>;

/** Staff-managed rows a customer (role user) reads too, without staff's columns. Staff
 *  and keys read the table under its policy; a customer reads through a definer function
 *  that leaves those columns out (the policy shows them no row), and gets them in the
 *  API's one shape (null, empty): what staff note about a caller (20261206030000), an
 *  agent's LLM configuration with its tools' credentials (20261206033000). */
const MEMBER_VIEWS = {
  voice_customers: {
    fn: 'private.voice_own_customer_records',
    columns: CUSTOMER_COLUMNS as readonly string[],
    withheld: { notes: 'null::text', tags: "'{}'::text[]" } as Record<string, string>,
  },
  voice_agents: {
    fn: 'private.voice_agents_for_members',
    columns: AGENT_COLUMNS as readonly string[],
    withheld: { llm_config: 'null::jsonb' } as Record<string, string>,
  },
};
type MemberView = keyof typeof MEMBER_VIEWS;

/** Where the caller reads `table`'s rows of the tenant (see MEMBER_VIEWS). */
export function readableRows(tx: Tx, table: MemberView, tenantId: string, staff: boolean) {
  return staff ? tx.unsafe(`public.${table}`) : tx`${tx.unsafe(MEMBER_VIEWS[table].fn)}(${tenantId}) as ${tx.unsafe(table)}`;
}

/** The columns the caller reads of `table` (see MEMBER_VIEWS). */
export function readableColumns(tx: Tx, table: MemberView, staff: boolean) {
  const { columns, withheld } = MEMBER_VIEWS[table];
  return staff
    ? tx.columns(columns)
    : tx.unsafe(columns.map((name) => (Object.hasOwn(withheld, name) ? `${withheld[name]} as ${name}` : `"${name}"`)).join(', '));
}

export const CALL_COLUMNS = [
  'id',
  'tenant_id',
  'agent_id',
  'customer_id',
  'direction',
  'status',
  'provider_call_id',
  'from_number',
  'to_number',
  'started_at',
  'answered_at',
  'ended_at',
  'timed_out_at',
  'duration_seconds',
  'outcome',
  'summary',
  'recording_path',
  'recording_object',
  'ticket_id',
  'created_at',
  'updated_at',
] as const satisfies readonly Column<'voice_calls'>[];
export type CallRow =
  & Checked<
    Selected<'voice_calls', typeof CALL_COLUMNS>,
    { direction: 'inbound' | 'outbound'; status: z.infer<typeof s.CallSchema>['status'] }
  >
  & { cost: number | null };

/** A page of rows read one more than shown, with the cursor of the last one shown
 *  (its sort key, read as text by the query, and its id). */
export function page<T extends { id: string; sort_key: string }>(rows: T[], limit: number) {
  const shown = rows.slice(0, limit);
  const last = shown.at(-1);
  const next = rows.length > limit && last ? encodeCursor([last.sort_key, last.id]) : null;
  return { items: shown.map(({ sort_key: _, ...row }) => row), next };
}

/** The keyset condition after a cursor, descending or ascending on (key, id). */
export function after(tx: Tx, cursor: string | undefined, key: ReturnType<Tx>, type: 'text' | 'timestamptz', desc: boolean) {
  // Each value checked for its type (keysetCursor): a cursor of another list (a name), or
  // one naming 30 February, is a 422 naming `cursor`, not a cast failure naming the body.
  const values = cursorValues(cursor, 2, keysetCursor(type));
  if (!values) return tx`true`;
  const cast = type === 'text' ? tx`text` : tx`timestamptz`;
  return desc
    ? tx`(${key}, id) < (${values[0]}::${cast}, ${values[1]}::uuid)`
    : tx`(${key}, id) > (${values[0]}::${cast}, ${values[1]}::uuid)`;
}
