// What the tickets API's route modules share: the columns they read, typed by the
// generated Row types, and the lookups a ticket route starts from.
import type { RouteConfig, RouteHandler, z } from '@hono/zod-openapi';
import type { TenantAccess } from '../../../shared/auth/context.ts';
import type { Tx } from '../../../shared/db.ts';
import { forbidden, notFound, unprocessable } from '../../../shared/errors.ts';
import { characterCount } from '../../../shared/text.ts';
import type { Checked, Column, JsonObject, Selected } from '../../../shared/rows.ts';
import { security as securityOf } from '../../../shared/schemas/security.ts';
import type * as s from '../schemas.ts';

/** Every route here takes a signed-in person's access token. */
export const security = securityOf.user;

/** A handler typed by its route: its input, the context its declared needs set up
 *  (c.var.access only where the route declares a tenant role), and responses its
 *  schemas accept. */
export type TicketsHandler<R extends RouteConfig> = RouteHandler<R>;

type Status = z.infer<typeof s.StatusSchema>;
type Priority = z.infer<typeof s.PrioritySchema>;
type Department = z.infer<typeof s.DepartmentSchema>;

export const TICKET_COLUMNS = [
  'id',
  'tenant_id',
  'number',
  'title',
  'description',
  'status',
  'priority',
  'department',
  'team_id',
  'created_by',
  'assigned_to',
  'due_date',
  'first_response_due_at',
  'first_response_at',
  'resolved_at',
  'closed_at',
  'sla_first_response_breached_at',
  'sla_resolution_breached_at',
  'sla_paused_at',
  'sla_paused_minutes',
  'next_response_due_at',
  'sla_next_response_breached_at',
  'tags',
  'metadata',
  'merged_into_id',
  'created_at',
  'updated_at',
  'deleted_at',
] as const satisfies readonly Column<'tickets'>[];
export type TicketRow =
  & Checked<
    Selected<'tickets', typeof TICKET_COLUMNS>,
    { status: Status; priority: Priority; department: Department; metadata: JsonObject }
  >
  & { custom_fields: JsonObject };

/** A ticket's columns as the API shows them: TICKET_COLUMNS and `custom_fields`, the
 *  values in the ticket's own column (fields visible to customers) merged with those in
 *  ticket_internal_fields (hidden from customers), read under the caller's RLS — whose
 *  select policy gives customers no row there, so they get the visible ones only. The
 *  query must read `public.tickets` under its own name. */
export function ticketColumns(tx: Tx) {
  return tx`${tx.columns(TICKET_COLUMNS)}, tickets.custom_fields || coalesce((
    select i.custom_fields from public.ticket_internal_fields i
    where i.tenant_id = tickets.tenant_id and i.ticket_id = tickets.id), '{}'::jsonb) as custom_fields`;
}

export const MESSAGE_COLUMNS = [
  'id',
  'ticket_id',
  'author_id',
  'type',
  'content',
  'created_at',
  'edited_at',
] as const satisfies readonly Column<'ticket_messages'>[];
export type MessageRow = Checked<
  Selected<'ticket_messages', typeof MESSAGE_COLUMNS>,
  { type: z.infer<typeof s.MessageSchema>['type'] }
>;

export const ATTACHMENT_COLUMNS = [
  'id',
  'ticket_id',
  'message_id',
  'file_name',
  'content_type',
  'size_bytes',
  'status',
  'uploaded_by',
  'created_at',
] as const satisfies readonly Column<'attachments'>[];
export type AttachmentRow = Checked<
  Selected<'attachments', typeof ATTACHMENT_COLUMNS>,
  { status: z.infer<typeof s.AttachmentSchema>['status'] }
>;

/** A ticket the caller changed but may no longer see: handing it to another agent or
 *  team (or filing it for someone else) can take it out of their sight. */
export type TicketOutOfSight = Pick<TicketRow, 'id' | 'tenant_id'>;

/** Staff only (the database ranked the caller's role: TenantAccess.staff); called once
 *  the ticket is known to be visible, so a ticket the caller cannot see stays a 404 for
 *  customers too. */
export function requireStaff(a: TenantAccess): void {
  if (!a.staff) throw forbidden('This needs the agent role in the tenant');
}

export function requireAdmin(a: TenantAccess, message: string): void {
  if (!a.admin) throw forbidden(message);
}

/** The ticket as the caller may see it, if they may. */
export async function findTicket(tx: Tx, tenantId: string, id: string): Promise<TicketRow | undefined> {
  const [t] = await tx<TicketRow>`
    select ${ticketColumns(tx)} from public.tickets where tenant_id = ${tenantId} and id = ${id}
  `;
  return t;
}

/** A ticket the caller can see, or 404 (other tenants' tickets are simply not there). */
export async function visibleTicket(tx: Tx, tenantId: string, id: string): Promise<TicketRow> {
  const t = await findTicket(tx, tenantId, id);
  if (!t) throw notFound('Ticket');
  return t;
}

/** The ticket as the caller may still see it after a change, else just its id. */
export async function readBack(tx: Tx, tenantId: string, id: string): Promise<TicketRow | TicketOutOfSight> {
  return (await findTicket(tx, tenantId, id)) ?? { id, tenant_id: tenantId };
}

/** Assignee and team changes go through private.hand_off_ticket (see there why). */
export async function handOff(
  tx: Tx,
  tenantId: string,
  id: string,
  change: { assignee?: string | null; team?: string | null },
): Promise<void> {
  await tx`
    select private.hand_off_ticket(${tenantId}, ${id}, ${'assignee' in change}, ${change.assignee ?? null},
                                   ${'team' in change}, ${change.team ?? null})
  `;
}

/** A message's most characters (ticket_messages' check, as the API's content allows). */
const MESSAGE_MAX_CHARACTERS = 10_000;

/** A canned response's body filled for this ticket and the caller, trimmed, read under
 *  the caller's RLS (private.render_canned_response); 404 when the caller cannot see the
 *  template or the ticket; 422 naming canned_response_id when it fills past a message's
 *  length (a long title in a long template: the column's check named `content`, a field
 *  the caller never sent). May be empty: each caller decides what that means. */
export async function fillCannedResponse(tx: Tx, tenantId: string, cannedId: string, ticketId: string): Promise<string> {
  const [filled] = await tx<{ text: string | null }>`
    select private.render_canned_response(${tenantId}, ${cannedId}, ${ticketId}) as text
  `;
  if (filled.text === null) throw notFound('Canned response');
  const text = filled.text.trim();
  if (characterCount(text) > MESSAGE_MAX_CHARACTERS) {
    throw unprocessable('The canned response is too long once filled for this ticket', {
      fields: [{ field: 'canned_response_id', message: `fills in as more than ${MESSAGE_MAX_CHARACTERS} characters` }],
    });
  }
  return text;
}
