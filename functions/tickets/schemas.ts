// Request and response shapes of the tickets API; the same schemas validate requests
// and generate the OpenAPI document.
import { z } from '@hono/zod-openapi';
import {
  CursorParam,
  ErrorSchema,
  IsoDate,
  IsoTimestamp,
  JsonObject,
  PageQuery,
  QueryInteger,
  QueryTimestamp,
  Text,
  Uuid,
} from '../../shared/schemas/common.ts';
import {
  CustomFieldValues,
  DepartmentSchema,
  FieldKey,
  PRIORITIES,
  PrioritySchema,
  Tag,
  Tags,
} from '../../shared/schemas/ticket-fields.ts';

export { DepartmentSchema, FieldKey, PrioritySchema };

const STATUSES = ['open', 'pending', 'escalated', 'resolved', 'closed'] as const;
export const StatusSchema = z.enum(STATUSES);
const Timestamp = z.string().openapi({ format: 'date-time' });

export const TicketIdParam = z.object({ id: Uuid.openapi({ param: { name: 'id', in: 'path' } }) });
export const MessageParam = TicketIdParam.extend({
  messageId: Uuid.openapi({ param: { name: 'messageId', in: 'path' } }),
});
export const AttachmentParam = TicketIdParam.extend({
  attachmentId: Uuid.openapi({ param: { name: 'attachmentId', in: 'path' } }),
});

export const TicketSchema = z
  .object({
    id: Uuid,
    tenant_id: Uuid,
    number: z.number().int(),
    title: z.string(),
    description: z.string().nullable(),
    status: StatusSchema,
    priority: PrioritySchema,
    department: DepartmentSchema,
    team_id: Uuid.nullable(),
    created_by: Uuid.nullable(),
    assigned_to: Uuid.nullable(),
    due_date: Timestamp.nullable(),
    first_response_due_at: Timestamp.nullable(),
    first_response_at: Timestamp.nullable(),
    resolved_at: Timestamp.nullable(),
    closed_at: Timestamp.nullable(),
    sla_first_response_breached_at: Timestamp.nullable(),
    sla_resolution_breached_at: Timestamp.nullable(),
    sla_paused_at: Timestamp.nullable()
      .openapi({ description: 'Since when the SLA clocks stand still: the ticket waits for the customer (pending)' }),
    sla_paused_minutes: z.number().int()
      .openapi({
        description:
          'Time spent waiting for the customer, or resolved before a reopening, added to the due dates (business minutes under business hours)',
      }),
    next_response_due_at: Timestamp.nullable()
      .openapi({ description: "When the customer's last reply must be answered (the policy's next-response target)" }),
    sla_next_response_breached_at: Timestamp.nullable(),
    tags: z.array(z.string()),
    metadata: z.record(z.string(), z.unknown()),
    custom_fields: z.record(z.string(), z.unknown()).openapi({
      description: 'Custom field values by key: for customers only the fields visible to them; for staff all',
    }),
    merged_into_id: Uuid.nullable(),
    created_at: Timestamp,
    updated_at: Timestamp,
    deleted_at: Timestamp.nullable(),
  })
  .openapi('Ticket');

/** What a change answers when it took the ticket out of the caller's sight (handed to
 *  another agent or team, or filed for someone else): only its id. */
export const TicketOutOfSightSchema = z
  .object({ id: Uuid, tenant_id: Uuid })
  .openapi('TicketOutOfSight', {
    description: 'The change took the ticket out of your sight (handed to another agent or team): only its id',
  });
/** The ticket after a change, as the caller may still see it. */
export const ChangedTicketSchema = z.union([TicketSchema, TicketOutOfSightSchema]);

export const MessageSchema = z
  .object({
    id: Uuid,
    ticket_id: Uuid,
    author_id: Uuid.nullable(),
    type: z.enum(['message', 'note', 'system']),
    content: z.string(),
    created_at: Timestamp,
    edited_at: Timestamp.nullable(),
  })
  .openapi('TicketMessage');

export const AttachmentSchema = z
  .object({
    id: Uuid,
    ticket_id: Uuid,
    message_id: Uuid.nullable(),
    file_name: z.string(),
    content_type: z.string(),
    size_bytes: z.number().int(),
    status: z.enum(['pending', 'uploaded']),
    uploaded_by: Uuid.nullable(),
    created_at: Timestamp,
  })
  .openapi('Attachment');

export const EventSchema = z
  .object({
    id: z.string(),
    type: z.string(),
    data: z.record(z.string(), z.unknown()),
    actor_user_id: Uuid.nullable(),
    created_at: Timestamp,
  })
  .openapi('TicketEvent');

// A voice call linked to this ticket (voice_calls.ticket_id, the enforced link: opened from
// the call, or linked by staff; the voice function's GET /calls/{id} has the rest).
export const LinkedCallSchema = z
  .object({
    id: Uuid,
    status: z.enum(['ringing', 'in_progress', 'completed', 'failed', 'missed']),
    started_at: Timestamp,
  })
  .openapi('TicketLinkedCall');

export const TicketDetailSchema = TicketSchema.extend({
  messages: z.array(MessageSchema),
  attachments: z.array(AttachmentSchema),
  timeline: z.array(EventSchema),
  calls: z.array(LinkedCallSchema).optional().openapi({
    description: 'The voice calls linked to this ticket (voice_calls.ticket_id), oldest first; absent for an API key ' +
      'without calls:read',
  }),
}).openapi('TicketDetail');

export const CreateTicketBody = z
  .object({
    title: Text.trim().min(5).max(200),
    description: Text.max(5000).optional(),
    priority: PrioritySchema.default('medium'),
    department: DepartmentSchema.default('support'),
    team_id: Uuid.optional().openapi({
      description: 'Staff only; a team with automatic assignment picks an agent',
    }),
    assigned_to: Uuid.optional().openapi({ description: 'Staff only; an agent or admin of the tenant' }),
    requester_id: Uuid.optional().openapi({ description: 'Staff only: file the ticket for this member' }),
    due_date: IsoTimestamp.optional().openapi({
      description: "Staff only: a customer's is not taken, the SLA policy decides their ticket's due date",
    }),
    tags: Tags.default([]),
    metadata: JsonObject(16_384).default({}),
    custom_fields: CustomFieldValues.default({}).openapi({
      description: 'Custom field values; required fields must be given (customers: those visible to them)',
    }),
  })
  .strict()
  .openapi('CreateTicket');

export const UpdateTicketBody = z
  .object({
    title: Text.trim().min(5).max(200).optional(),
    description: Text.max(5000).nullable().optional(),
    priority: PrioritySchema.optional(),
    department: DepartmentSchema.optional(),
    team_id: Uuid.nullable().optional(),
    due_date: IsoTimestamp.nullable().optional(),
    tags: Tags.optional(),
    metadata: JsonObject(16_384).optional(),
    custom_fields: CustomFieldValues.optional().openapi({
      description: 'Merged into the values the ticket has: keys not named stay, null removes one',
    }),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, { message: 'at least one field is required' })
  .openapi('UpdateTicket');

export const TransitionBody = z.object({ status: StatusSchema }).strict().openapi('Transition');
export const AssignBody = z
  .object({ user_id: Uuid.nullable().openapi({ description: 'An agent or admin; null unassigns' }) })
  .strict()
  .openapi('Assign');
export const MessageBody = z
  .object({
    content: Text.trim().min(1).max(10_000).optional()
      .openapi({ description: 'The text; or give canned_response_id instead' }),
    canned_response_id: Uuid.optional().openapi({
      description: 'Send a canned response, its placeholders filled for this ticket and you (staff)',
    }),
    type: z.enum(['message', 'note']).default('message'),
  })
  .strict()
  .refine((b) => (b.content === undefined) !== (b.canned_response_id === undefined), {
    message: 'give either content or canned_response_id',
    path: ['content'],
  })
  .openapi('NewMessage');
export const EditMessageBody = z.object({ content: Text.trim().min(1).max(10_000) }).strict().openapi(
  'EditMessage',
);
export const MergeBody = z.object({ into: Uuid }).strict().openapi('Merge');

export const AttachmentBody = z
  .object({
    file_name: Text.trim().min(1).max(255)
      // deno-lint-ignore no-control-regex
      .refine((n) => !/[/\\\u0000-\u001f]/.test(n) && n !== '.' && n !== '..', 'a plain file name'),
    content_type: Text.max(255).regex(/^[\w.+-]+\/[\w.+-]+$/, 'a MIME type').default(
      'application/octet-stream',
    ),
    size_bytes: z.number().int().min(1).max(50 * 1024 * 1024),
    message_id: Uuid.optional(),
  })
  .strict()
  .openapi('NewAttachment');

export { SignedUrlSchema } from '../../shared/schemas/common.ts';

/** A comma-separated query value of enum members: `status=open,pending`. */
const csv = <T extends readonly [string, ...string[]]>(values: T) =>
  z.string().max(200).transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean)).pipe(
    z.array(z.enum(values)).min(1),
  );
const bool = z.enum(['true', 'false']).transform((v) => v === 'true');
/** A comma-separated query value of department keys. */
const departmentKeys = z.string().max(400).transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean)).pipe(
  z.array(DepartmentSchema).min(1).max(20),
);
/** `custom_field=<key>:<value>`, repeatable (all must match): the ticket's value equals
 *  it — for a multi-select field, the list holds it. */
const customFieldFilter = z
  .union([Text.max(1100), z.array(Text.max(1100)).max(5)])
  .transform((v) => (Array.isArray(v) ? v : [v]))
  .pipe(
    z.array(
      z.string().regex(/^[a-z][a-z0-9_]{0,39}:/, '<key>:<value>').transform((f) => {
        const at = f.indexOf(':');
        return { key: f.slice(0, at), value: f.slice(at + 1) };
      }),
    ).min(1).max(5),
  );

export const ListQuery = PageQuery.extend({
  status: csv(STATUSES).optional(),
  priority: csv(PRIORITIES).optional(),
  department: departmentKeys.optional(),
  custom_field: customFieldFilter.optional().openapi({
    description:
      '`<key>:<value>`, up to 5 (repeat the parameter; all must match): the value equals it (a multi-select holds it; checkbox: true/false)',
  }),
  team_id: Uuid.optional(),
  assignee: z.union([z.literal('me'), z.literal('none'), Uuid]).optional(),
  requester: z.union([z.literal('me'), Uuid]).optional(),
  tag: Tag.optional(),
  number: QueryInteger(1, Number.MAX_SAFE_INTEGER).optional(),
  created_after: QueryTimestamp.optional(),
  created_before: QueryTimestamp.optional(),
  updated_after: QueryTimestamp.optional(),
  updated_before: QueryTimestamp.optional(),
  sla_breached: bool.optional(),
  q: Text.trim().min(1).max(200).optional().openapi({
    description: 'Full-text search over title, description and tags',
  }),
  sort: z.enum(['created_at', 'updated_at', 'number', 'priority', 'relevance']).optional(),
  order: z.enum(['asc', 'desc']).default('desc'),
  include_total: bool.default(false),
  include_deleted: bool.default(false).openapi({ description: 'Admins: include soft-deleted tickets' }),
}).refine((q) => q.sort !== 'relevance' || q.q !== undefined, {
  message: 'sort=relevance needs q',
  path: ['sort'],
});

export const TicketPageSchema = z.object({
  items: z.array(TicketSchema),
  next: z.string().nullable(),
  total: z.number().int().optional(),
});

export const StatsSchema = z
  .object({
    total: z.number().int(),
    by_status: z.record(z.string(), z.number().int()),
    by_priority: z.record(z.string(), z.number().int()),
    median_first_response_seconds: z.number().nullable(),
    median_resolution_seconds: z.number().nullable(),
  })
  .openapi('TicketStats');

const HHMM = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM');
/** An end may be 24:00, the day's last minute included (00:00–24:00: open round the clock). */
const HHMM_END = z.string().regex(/^(([01]\d|2[0-3]):[0-5]\d|24:00)$/, 'HH:MM, or 24:00');
export const BusinessHours = z
  .object({
    timezone: Text.min(1).max(64).default('UTC').openapi({ example: 'Europe/Paris' }),
    days: z.array(z.number().int().min(1).max(7)).min(1).max(7).default([1, 2, 3, 4, 5])
      .refine((d) => new Set(d).size === d.length, 'each day once')
      .openapi({ description: 'ISO weekdays, 1 = Monday' }),
    start: HHMM.default('09:00'),
    end: HHMM_END.default('17:00'),
    holidays: z.array(IsoDate).max(400)
      .refine((d) => new Set(d).size === d.length, 'each date once').optional()
      .openapi({ description: "Dates (YYYY-MM-DD, in the calendar's time zone) on which no business time passes" }),
  })
  .strict()
  .refine((h) => h.start < h.end, { message: 'start must be before end', path: ['end'] });

export const PriorityParam = z.object({
  priority: PrioritySchema.openapi({ param: { name: 'priority', in: 'path' } }),
});

export const SlaPolicyBody = z
  .object({
    first_response_minutes: z.number().int().min(1).max(525_600),
    resolution_minutes: z.number().int().min(1).max(525_600),
    business_hours: BusinessHours.nullable().default(null)
      .openapi({ description: 'Count the targets in these hours only; null: around the clock' }),
    next_response_minutes: z.number().int().min(1).max(525_600).nullable().default(null)
      .openapi({ description: 'Answer each customer reply within this; null: no next-response target' }),
    warning_minutes: z.number().int().min(1).max(10_080).nullable().default(null)
      .openapi({ description: 'Send ticket.sla_warning this long before a due time; null: no warnings' }),
  })
  .strict()
  .refine((b) => b.resolution_minutes >= b.first_response_minutes, {
    message: 'resolution_minutes must be at least first_response_minutes',
    path: ['resolution_minutes'],
  })
  .openapi('SlaPolicyInput');

/** Which policies: a team's own (team_id), or the tenant-wide ones (none). */
export const SlaPolicyTeamQuery = z.object({
  team_id: Uuid.optional().openapi({
    param: { name: 'team_id', in: 'query' },
    description: "A team's own policies, which win over the tenant-wide ones for its tickets; without it, the tenant-wide ones",
  }),
});

export const SlaPolicySchema = z
  .object({
    priority: PrioritySchema,
    team_id: Uuid.nullable().openapi({ description: 'The team this policy is for; null: tenant-wide' }),
    first_response_minutes: z.number().int(),
    resolution_minutes: z.number().int(),
    business_hours: z.record(z.string(), z.unknown()).nullable(),
    next_response_minutes: z.number().int().nullable(),
    warning_minutes: z.number().int().nullable(),
    updated_at: Timestamp,
  })
  .openapi('SlaPolicy');

// ------------------------------------------------------------------ canned responses

/** The placeholders a canned response may hold (the same list as
 *  private.canned_body_placeholders_ok, which checks them again on write). */
export const CANNED_PLACEHOLDERS = ['ticket.number', 'ticket.title', 'requester.name', 'agent.name'] as const;
const CannedBodyText = Text.min(1).max(10_000).superRefine((body, ctx) => {
  for (const m of body.matchAll(/\{\{\s*([^{}]*?)\s*\}\}/g)) {
    if (!(CANNED_PLACEHOLDERS as readonly string[]).includes(m[1])) {
      ctx.addIssue({
        code: 'custom',
        message: `unknown placeholder {{${m[1]}}}; allowed: ${CANNED_PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')}`,
      });
    }
  }
}).openapi({ description: `Text with placeholders among ${CANNED_PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')}` });
const ShortCode = Text.regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'lower-case letters, digits, - and _, at most 32');

export const CannedScopeSchema = z.enum(['tenant', 'team', 'personal']);
export const CannedIdParam = z.object({ cannedId: Uuid.openapi({ param: { name: 'cannedId', in: 'path' } }) });

export const CannedListQuery = z.object({
  scope: CannedScopeSchema.optional(),
  team_id: Uuid.optional(),
  code: Text.max(32).optional().openapi({ description: 'Short codes starting with this' }),
  limit: QueryInteger(1, 500).default(200),
  cursor: CursorParam,
});

export const CannedResponseBody = z
  .object({
    scope: CannedScopeSchema.default('personal')
      .openapi({ description: 'tenant: all staff; team: one team (team_id); personal: only you' }),
    team_id: Uuid.optional(),
    short_code: ShortCode,
    title: Text.trim().min(1).max(200),
    body: CannedBodyText,
  })
  .strict()
  .refine((b) => (b.scope === 'team') === (b.team_id !== undefined), {
    message: 'team_id is required for a team canned response, and only for one',
    path: ['team_id'],
  })
  .openapi('NewCannedResponse');

export const UpdateCannedResponseBody = z
  .object({ short_code: ShortCode.optional(), title: Text.trim().min(1).max(200).optional(), body: CannedBodyText.optional() })
  .strict()
  .refine((b) => Object.keys(b).length > 0, { message: 'at least one field is required' })
  .openapi('UpdateCannedResponse');

export const CannedResponseSchema = z
  .object({
    id: Uuid,
    tenant_id: Uuid,
    scope: CannedScopeSchema,
    team_id: Uuid.nullable(),
    owner_id: Uuid.nullable(),
    short_code: z.string(),
    title: z.string(),
    body: z.string(),
    created_by: Uuid.nullable(),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi('CannedResponse');

// ------------------------------------------------------------------ followers and notifications

export const FollowReasonSchema = z.enum(['manual', 'assigned', 'mentioned']);
export const FollowerParam = TicketIdParam.extend({
  userId: Uuid.openapi({ param: { name: 'userId', in: 'path' } }),
});
export const FollowBody = z
  .object({ user_id: Uuid.optional().openapi({ description: 'A staff member to add; default: you' }) })
  .strict()
  .openapi('Follow');
export const FollowerSchema = z
  .object({ user_id: Uuid, reason: FollowReasonSchema, added_by: Uuid.nullable(), created_at: Timestamp })
  .openapi('Follower');
export const notStaffError = {
  description:
    'not_staff: only staff of the tenant can follow a ticket (and its customers where settings.customer_followers is true); not_customer: a customer adds only customers; already_following: the person follows already, by a follow the caller may not see (a customer adding someone staff added); ticket_merged (details.merged_into_id: follow that one), ticket_deleted (restore it first)',
  content: { 'application/json': { schema: ErrorSchema } },
};

export const NotificationsQuery = z.object({
  unread: z.enum(['true', 'false']).optional().transform((v) => v === 'true'),
  limit: QueryInteger(1, 100).default(50),
  cursor: CursorParam,
});
export const MarkReadBody = z
  .object({
    ids: z.array(Uuid).min(1).max(500).optional().openapi({ description: 'These; without ids, all of yours' }),
  })
  .strict()
  .openapi('MarkRead');
export const NotificationSchema = z
  .object({
    id: Uuid,
    ticket_id: Uuid.nullable(),
    type: z.string().openapi({
      description:
        'A timeline event (status_changed, assigned, sla_breached…), message.created, note.created, mentioned or follower_added',
    }),
    actor_user_id: Uuid.nullable(),
    data: z.record(z.string(), z.unknown()),
    read_at: Timestamp.nullable(),
    created_at: Timestamp,
  })
  .openapi('Notification');

// ------------------------------------------------------------------ macros

export const MacroScopeSchema = z.enum(['tenant', 'personal']);
export const MacroIdParam = z.object({ macroId: Uuid.openapi({ param: { name: 'macroId', in: 'path' } }) });
export const ApplyMacroParam = TicketIdParam.extend({
  macroId: Uuid.openapi({ param: { name: 'macroId', in: 'path' } }),
});
const MessageText = Text.trim().min(1).max(10_000);
/** An action's tags: a repeat is dropped, as a ticket's tags drop one (the database
 *  refuses a list naming one twice: a rule stored it on tickets twice). */
const ActionTags = z.array(Tag).min(1).max(20).transform((tags) => [...new Set(tags)]);
/** The allow-list of macro actions (the same list as private.macro_actions_ok). */
export const MacroActionSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('set_status'), status: StatusSchema }).strict(),
  z.object({ type: z.literal('set_priority'), priority: PrioritySchema }).strict(),
  z.object({ type: z.literal('set_team'), team_id: Uuid.nullable() }).strict(),
  z.object({ type: z.literal('assign'), user_id: Uuid.nullable() }).strict(),
  z.object({ type: z.literal('add_tags'), tags: ActionTags }).strict(),
  z.object({ type: z.literal('remove_tags'), tags: ActionTags }).strict(),
  z.object({ type: z.literal('add_note'), content: MessageText }).strict(),
  z.object({ type: z.literal('reply'), content: MessageText }).strict(),
  z.object({ type: z.literal('send_canned'), canned_response_id: Uuid }).strict(),
]).openapi('MacroAction');
const MacroActions = z.array(MacroActionSchema).min(1).max(20);

export const MacroBody = z
  .object({
    scope: MacroScopeSchema.default('personal').openapi({
      description: 'tenant: all staff (admins keep it); personal: only you',
    }),
    name: Text.trim().min(1).max(100),
    description: Text.max(1000).nullable().optional(),
    actions: MacroActions,
  })
  .strict()
  .openapi('NewMacro');
export const UpdateMacroBody = z
  .object({
    name: Text.trim().min(1).max(100).optional(),
    description: Text.max(1000).nullable().optional(),
    actions: MacroActions.optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, { message: 'at least one field is required' })
  .openapi('UpdateMacro');
/** Automation rules come in pages by event, then position (up to 500 a page, the default). */
export const ListRulesQuery = z.object({
  limit: QueryInteger(1, 500).default(500),
  cursor: CursorParam,
});
/** Macros come in pages by name (up to 500 a page, the default). */
export const ListMacrosQuery = z.object({
  limit: QueryInteger(1, 500).default(500),
  cursor: CursorParam,
});

export const MacroSchema = z
  .object({
    id: Uuid,
    tenant_id: Uuid,
    scope: MacroScopeSchema,
    owner_id: Uuid.nullable(),
    name: z.string(),
    description: z.string().nullable(),
    actions: z.array(MacroActionSchema),
    created_by: Uuid.nullable(),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi('Macro');

// ------------------------------------------------------------------ custom fields, departments, tags

export const FieldTypeSchema = z.enum(['text', 'number', 'date', 'select', 'multi_select', 'checkbox']);
export const FieldIdParam = z.object({ fieldId: Uuid.openapi({ param: { name: 'fieldId', in: 'path' } }) });
const FieldOptions = z.array(Text.trim().min(1).max(100)).max(100)
  .refine((o) => new Set(o).size === o.length, 'each option once')
  .openapi({ description: 'select and multi_select: the choices (1 to 100); other types: none' });

export const CustomFieldBody = z
  .object({
    key: FieldKey.openapi({ description: 'How values and filters name the field; never changes' }),
    label: Text.trim().min(1).max(100),
    type: FieldTypeSchema.openapi({ description: 'Never changes' }),
    required: z.boolean().default(false).openapi({ description: 'A value is needed when a ticket is filed' }),
    visible_to_customers: z.boolean().default(false)
      .openapi({ description: 'Customers see (and fill in) the field; otherwise only staff ever read its values' }),
    options: FieldOptions.default([]),
    position: z.number().int().min(0).max(10_000).default(0),
  })
  .strict()
  .refine((b) => (b.type === 'select' || b.type === 'multi_select') === (b.options.length > 0), {
    message: 'select and multi_select fields need options; other types take none',
    path: ['options'],
  })
  .openapi('NewCustomField');

export const UpdateCustomFieldBody = z
  .object({
    label: Text.trim().min(1).max(100).optional(),
    required: z.boolean().optional(),
    visible_to_customers: z.boolean().optional().openapi({
      description: "Changing it moves the field's values to where customers can (or cannot) read them",
    }),
    options: FieldOptions.min(1).optional(),
    position: z.number().int().min(0).max(10_000).optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, { message: 'at least one field is required' })
  .openapi('UpdateCustomField');

export const CustomFieldSchema = z
  .object({
    id: Uuid,
    tenant_id: Uuid,
    key: z.string(),
    label: z.string(),
    type: FieldTypeSchema,
    required: z.boolean(),
    visible_to_customers: z.boolean(),
    options: z.array(z.string()),
    position: z.number().int(),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi('CustomField');

export const DepartmentIdParam = z.object({
  departmentId: Uuid.openapi({ param: { name: 'departmentId', in: 'path' } }),
});
export const DepartmentBody = z
  .object({
    key: DepartmentSchema.openapi({ description: 'How tickets and teams name it; never changes' }),
    name: Text.trim().min(1).max(100),
  })
  .strict()
  .openapi('NewDepartment');
export const UpdateDepartmentBody = z.object({ name: Text.trim().min(1).max(100) }).strict().openapi('UpdateDepartment');
export const DepartmentRecordSchema = z
  .object({ id: Uuid, tenant_id: Uuid, key: z.string(), name: z.string(), created_at: Timestamp, updated_at: Timestamp })
  .openapi('Department');

export const TagIdParam = z.object({ tagId: Uuid.openapi({ param: { name: 'tagId', in: 'path' } }) });
const Color = z.string().regex(/^#[0-9a-f]{6}$/, 'a colour #rrggbb (lower case)').openapi({ example: '#3b82f6' });
export const TagBody = z
  .object({ name: Tag, color: Color.nullable().default(null), description: Text.max(500).nullable().default(null) })
  .strict()
  .openapi('NewTag');
export const UpdateTagBody = z
  .object({ color: Color.nullable().optional(), description: Text.max(500).nullable().optional() })
  .strict()
  .refine((b) => Object.keys(b).length > 0, { message: 'at least one field is required' })
  .openapi('UpdateTag');
/** The tag registry comes in pages by name (a customer's tickets register the tags they
 *  carry, so it grows with them): up to 1,000 a page, the default. */
export const ListTagsQuery = z.object({
  limit: QueryInteger(1, 1000).default(1000),
  cursor: CursorParam,
});

export const TagSchema = z
  .object({
    id: Uuid,
    tenant_id: Uuid,
    name: z.string(),
    color: z.string().nullable(),
    description: z.string().nullable(),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi('TagRecord');

// ------------------------------------------------------------------ automation rules

export const AUTOMATION_EVENTS = [
  'ticket.created',
  'ticket.updated',
  'message.created',
  'ticket.sla_breached',
  'ticket.pending_for',
  'ticket.no_customer_reply',
] as const;
const TIMED_EVENTS: readonly string[] = ['ticket.pending_for', 'ticket.no_customer_reply'];
export const AutomationEventSchema = z.enum(AUTOMATION_EVENTS).openapi({
  description: 'ticket.pending_for: pending for after_minutes of business time; ticket.no_customer_reply: the last ' +
    "public message is not the requester's and is after_minutes old; the others: as the change happens",
});
const ConditionField = z
  .string()
  .regex(
    /^(status|priority|department|team_id|assigned_to|requester_id|title|description|tags|changed|message\.content|message\.type|message\.author|custom_fields\.[a-z][a-z0-9_]{0,49})$/,
    'a ticket field, changed, message.content, message.type, message.author or custom_fields.<key>',
  );
const Scalar = z.union([Text.max(200), z.number(), z.boolean()]);
export const AutomationConditionSchema = z.union([
  z.object({ field: ConditionField, op: z.enum(['is_empty', 'is_not_empty']) }).strict(),
  z.object({ field: ConditionField, op: z.enum(['eq', 'neq']), value: Scalar }).strict(),
  z.object({ field: ConditionField, op: z.enum(['in', 'not_in']), value: z.array(Scalar).min(1).max(50) }).strict(),
  z.object({ field: ConditionField, op: z.enum(['contains', 'not_contains']), value: Text.min(1).max(200) })
    .strict(),
]).openapi('AutomationCondition', {
  description: 'contains: a substring (case-insensitive) of a text, or an element of a list (tags, changed)',
});
const AutomationConditions = z
  .object({
    all: z.array(AutomationConditionSchema).max(20).optional().openapi({ description: 'Every one of these' }),
    any: z.array(AutomationConditionSchema).max(20).optional().openapi({
      description: 'And, when given, at least one of these',
    }),
  })
  .strict()
  .openapi('AutomationConditions');
export const AutomationActionSchema = z.discriminatedUnion('type', [
  ...MacroActionSchema.options,
  z.object({ type: z.literal('emit_webhook'), label: Text.min(1).max(100) }).strict().openapi({
    description: 'An outbound automation.triggered event with the rule, the ticket and this label',
  }),
  z.object({
    type: z.literal('set_custom_field'),
    key: FieldKey,
    value: z.union([Text.max(1000), z.number(), z.boolean(), z.array(Text.max(100)).max(100), z.null()]),
  }).strict().openapi({
    description: "Set (null: remove) a custom field's value; the field's type and options are checked when it runs",
  }),
]).openapi('AutomationAction');
const AutomationActions = z.array(AutomationActionSchema).min(1).max(20);
const AfterMinutes = z.number().int().min(1).max(43_200).openapi({
  description: 'Time-based events only: minutes (business minutes for ticket.pending_for), up to 30 days',
});
export const AutomationRuleIdParam = z.object({
  ruleId: Uuid.openapi({ param: { name: 'ruleId', in: 'path' } }),
});
export const AutomationRuleBody = z
  .object({
    name: Text.trim().min(1).max(100),
    description: Text.max(1000).nullable().optional(),
    event: AutomationEventSchema,
    after_minutes: AfterMinutes.nullable().optional(),
    conditions: AutomationConditions.default({}),
    actions: AutomationActions,
    position: z.number().int().min(0).max(10_000).default(0),
    active: z.boolean().default(true),
  })
  .strict()
  .refine((b) => TIMED_EVENTS.includes(b.event) === (b.after_minutes != null), {
    message: 'after_minutes is required for time-based events and not allowed for the others',
    path: ['after_minutes'],
  })
  .openapi('NewAutomationRule');
export const UpdateAutomationRuleBody = z
  .object({
    name: Text.trim().min(1).max(100).optional(),
    description: Text.max(1000).nullable().optional(),
    event: AutomationEventSchema.optional(),
    after_minutes: AfterMinutes.nullable().optional(),
    conditions: AutomationConditions.optional(),
    actions: AutomationActions.optional(),
    position: z.number().int().min(0).max(10_000).optional(),
    active: z.boolean().optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, { message: 'at least one field is required' })
  .openapi('UpdateAutomationRule');
export const AutomationRunSchema = z
  .object({
    id: z.number().int(),
    rule_id: Uuid,
    ticket_id: Uuid,
    event: z.string(),
    event_id: Uuid,
    outcome: z.enum(['applied', 'failed', 'not_matched']).openapi({
      description: 'not_matched: a time-based event whose conditions did not hold (it is not looked at again)',
    }),
    actions_applied: z.number().int(),
    failed_action: z.number().int().nullable().openapi({ description: 'failed: the refused action (0-based)' }),
    error: z.string().nullable(),
    created_at: Timestamp,
  })
  .openapi('AutomationRun');
export const AutomationRuleSchema = z
  .object({
    id: Uuid,
    tenant_id: Uuid,
    name: z.string(),
    description: z.string().nullable(),
    event: AutomationEventSchema,
    after_minutes: z.number().int().nullable(),
    conditions: AutomationConditions,
    actions: z.array(AutomationActionSchema),
    position: z.number().int(),
    active: z.boolean(),
    created_by: Uuid.nullable(),
    created_at: Timestamp,
    updated_at: Timestamp,
    last_failure: AutomationRunSchema.nullable().openapi({
      description:
        'The latest failed run, if any (null for an API key without tickets:read and tickets:write: a run names a ticket)',
    }),
  })
  .openapi('AutomationRule');
export const AutomationRunsQuery = z.object({
  outcome: z.enum(['applied', 'failed', 'not_matched']).optional(),
  ticket_id: Uuid.optional(),
  before: QueryInteger(1, Number.MAX_SAFE_INTEGER).optional().openapi({ description: 'Runs older than this id (keyset)' }),
  limit: QueryInteger(1, 200).default(50),
});
