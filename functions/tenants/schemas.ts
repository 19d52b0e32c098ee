// Request and response shapes of the tenants API. The same schemas validate requests
// and generate the OpenAPI document.
import { z } from '@hono/zod-openapi';
import { isSupportedCountry } from 'libphonenumber-js';
import { JsonObject, PageQuery, QueryInteger, Text, Uuid } from '../../shared/schemas/common.ts';

export const TenantRoleSchema = z.enum(['user', 'agent', 'admin']);
export const PlanSchema = z.enum(['starter', 'pro', 'enterprise']);
/** A department's key: each tenant keeps its own list (GET /tickets/departments), which
 *  the database checks (composite foreign key). */
export const DepartmentSchema = Text.regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'a department key (lower-case letters, digits, - and _)')
  .openapi({ description: "One of the tenant's departments, by key", example: 'support' });
export const AutoAssignSchema = z.enum(['none', 'round_robin', 'least_open']).openapi({
  description: 'New tickets routed to the team go to its available agents in turn, or to the one with the fewest open tickets',
});

/** Subdomain rules, as the database checks them: 3–63 characters, lower-case letters,
 *  digits and single inner hyphens. */
const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const SlugSchema = z
  .string()
  .min(3)
  .max(63)
  .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])$/, 'lower-case letters, digits and inner hyphens only')
  .refine((s) => !s.includes('--'), 'no consecutive hyphens')
  // X-Tenant-Id takes a slug or an id: a slug shaped like an id could name another tenant.
  .refine((s) => !UUID_SHAPE.test(s), 'not shaped like a tenant id')
  .openapi({ example: 'acme' });

const Name = Text.trim().min(1).max(100);
const Email = z.email().max(320).transform((e) => e.toLowerCase());
// Free-form, but for the keys the platform reads: the voice customers import's default
// region (functions/voice/routes/import.ts) must be one libphonenumber-js knows, or
// every import of the tenant that names none would be refused for it; whether call
// recordings need the customer's consent (private.voice_call_recording_of) is a boolean;
// how many tickets a customer files a day (private.customer_tickets_per_day) and how many
// messages they write (private.customer_messages_per_day) are 1–1,000,000,
// and the bytes a customer's pending uploads hold (private.customer_pending_upload_bytes)
// 50 MiB–100 GiB; the others below.
const Settings = JsonObject(16_384).superRefine((o, ctx) => {
  const region = o.voice_default_region;
  if (region !== undefined && region !== null && (typeof region !== 'string' || !isSupportedCountry(region))) {
    ctx.addIssue({
      code: 'custom',
      path: ['voice_default_region'],
      message: 'is not a supported region (ISO 3166-1 alpha-2, e.g. FR)',
    });
  }
  // A whole number within the bounds the database clamps it to.
  const wholeNumber = (key: string, min: number, max: number, message: string) => {
    const v = o[key];
    if (v !== undefined && v !== null && !(Number.isInteger(v) && (v as number) >= min && (v as number) <= max)) {
      ctx.addIssue({ code: 'custom', path: [key], message });
    }
  };
  wholeNumber('customer_tickets_per_day', 1, 1_000_000, 'must be a whole number from 1 to 1000000');
  wholeNumber('customer_messages_per_day', 1, 1_000_000, 'must be a whole number from 1 to 1000000');
  wholeNumber(
    'customer_pending_upload_bytes',
    52_428_800,
    107_374_182_400,
    'must be a whole number of bytes from 52428800 (50 MiB) to 107374182400 (100 GiB)',
  );
  // Read by the database as a whole number of days up to 9999 (anything else was 7, so a
  // tenant's partner spaces went for good earlier than the operator set), and a window
  // of days up to 9999 (likewise 7). (customer_pending_uploads is clamped to 10–10,000.)
  wholeNumber('removal_grace_days', 0, 9999, 'must be a whole number of days from 0 to 9999');
  const window = o.reopen_window_days;
  if (window !== undefined && window !== null && !(typeof window === 'number' && window >= 0 && window < 10_000)) {
    ctx.addIssue({ code: 'custom', path: ['reopen_window_days'], message: 'must be a number of days from 0 to 9999' });
  }
  // Switches the database reads as on only when they are JSON true: "true" or 1 was
  // stored, echoed, and meant off.
  for (const key of ['voice_recording_requires_consent', 'customer_followers']) {
    const v = o[key];
    if (v !== undefined && v !== null && typeof v !== 'boolean') {
      ctx.addIssue({ code: 'custom', path: [key], message: 'must be true or false' });
    }
  }
});
const Timestamp = z.string().openapi({ format: 'date-time' });

export const TenantSchema = z
  .object({
    id: Uuid,
    name: z.string(),
    slug: z.string(),
    status: z.enum(['active', 'suspended', 'deleted']),
    plan: PlanSchema,
    settings: z.record(z.string(), z.unknown()),
    created_at: Timestamp,
    updated_at: Timestamp,
    deleted_at: Timestamp.nullable(),
  })
  .openapi('Tenant');

export const TenantIdParam = z.object({
  tenantId: Uuid.openapi({ param: { name: 'tenantId', in: 'path' } }),
});
export const InvitationParam = TenantIdParam.extend({
  invitationId: Uuid.openapi({ param: { name: 'invitationId', in: 'path' } }),
});
export const AcceptParam = z.object({
  invitationId: Uuid.openapi({ param: { name: 'invitationId', in: 'path' } }),
});
export const MemberParam = TenantIdParam.extend({
  userId: Uuid.openapi({ param: { name: 'userId', in: 'path' } }),
});
export const TeamParam = TenantIdParam.extend({
  teamId: Uuid.openapi({ param: { name: 'teamId', in: 'path' } }),
});
export const TeamMemberParam = TeamParam.extend({
  userId: Uuid.openapi({ param: { name: 'userId', in: 'path' } }),
});

export const ServiceNameSchema = z.enum(['chatwoot', 'botpress', 'n8n', 'odoo']);

export const CreateTenantBody = z
  .object({
    name: Name,
    slug: SlugSchema,
    services: z.array(ServiceNameSchema).max(4).default([])
      .refine((s) => new Set(s).size === s.length, 'each service once')
      .openapi({ description: 'Partner products to provision for the tenant' }),
    plan: PlanSchema.default('starter'),
    settings: Settings.default({}),
    admin: z
      .object({ email: Email, first_name: Name.optional(), last_name: Name.optional() })
      .optional()
      .openapi({ description: 'The first admin; created as a user if the e-mail is new' }),
  })
  .strict()
  .openapi('CreateTenant');

export const UpdateTenantBody = z
  .object({
    name: Name.optional(),
    settings: Settings.optional().openapi({
      description: 'Merged into the settings the tenant has (JSON Merge Patch, top level): keys not named stay, null removes one',
    }),
    plan: PlanSchema.optional().openapi({ description: 'Super-admins only' }),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, { message: 'name, settings or plan is required' })
  .openapi('UpdateTenant');

/** A tenant's members come in pages too (customers included, a tenant has tens of
 *  thousands): up to 1,000 a page, all of a tenant with fewer at once, as before pages. */
export const ListMembersQuery = z.object({
  limit: QueryInteger(1, 1000).default(1000),
  // An e-mail of up to 320 characters, any of them written as a \u escape, and an id.
  cursor: Text.max(4096).optional(),
});

export const ListTenantsQuery = PageQuery.extend({
  status: z.enum(['active', 'suspended', 'deleted']).optional(),
});

export const MembershipSchema = z.object({
  tenant_id: Uuid,
  role: TenantRoleSchema,
  tenant: z.object({ id: Uuid, name: z.string(), slug: z.string(), status: z.string() }),
});

export const PendingInvitationSchema = z.object({
  id: Uuid,
  tenant_id: Uuid,
  tenant_name: z.string(),
  tenant_slug: z.string(),
  role: TenantRoleSchema,
  expires_at: Timestamp,
});

// Plans (issue 15): a tenant's effective limits, features and flags.
const Limits = z.record(z.string(), z.number().int().nonnegative().nullable())
  .openapi({ description: 'Limit name → maximum, null for no limit', example: { members: 100, tickets_per_month: 10000 } });
const Features = z.record(z.string(), z.boolean()).openapi({ example: { voice: false, outbound_webhooks: true } });
const FlagValue = z.union([z.boolean(), Text.min(1).max(100)]).openapi({ description: 'On/off, or a variant name' });

export const EntitlementsSchema = z
  .object({
    plan: PlanSchema,
    limits: Limits,
    features: Features,
    flags: z.record(z.string(), FlagValue),
    overridden: z.object({ limits: z.array(z.string()), features: z.array(z.string()) })
      .openapi({ description: 'Limits and features a super-admin set for this tenant, over the plan' }),
  })
  .openapi('Entitlements');

export const MeSchema = z
  .object({
    user: z.object({
      id: Uuid,
      email: z.string(),
      first_name: z.string().nullable(),
      last_name: z.string().nullable(),
      status: z.string(),
    }),
    identity: z.object({ issuer: z.string(), subject: z.string(), kind: z.string() }),
    is_platform_admin: z.boolean(),
    memberships: z.array(MembershipSchema),
    invitations: z.array(PendingInvitationSchema),
    active_tenant: z.object({ id: Uuid, slug: z.string(), name: z.string() }).nullable(),
    role: z.enum(['user', 'agent', 'admin', 'super_admin']).nullable(),
    entitlements: EntitlementsSchema.nullable()
      .openapi({ description: "The active tenant's effective plan limits, features and flags" }),
  })
  .openapi('Me');

export const MemberSchema = z
  .object({
    user_id: Uuid,
    email: z.string(),
    first_name: z.string().nullable(),
    last_name: z.string().nullable(),
    role: TenantRoleSchema,
    available: z.boolean(),
    created_at: Timestamp,
  })
  .openapi('Member');

export const InviteBody = z
  .object({
    email: Email,
    role: TenantRoleSchema.default('user'),
    expires_in_days: z.number().int().min(1).max(90).default(14),
  })
  .strict()
  .openapi('Invite');

export const InvitationSchema = z
  .object({
    id: Uuid,
    tenant_id: Uuid,
    email: z.string(),
    role: TenantRoleSchema,
    invited_by: Uuid.nullable(),
    created_at: Timestamp,
    expires_at: Timestamp,
    accepted_at: Timestamp.nullable(),
  })
  .openapi('Invitation');

export const UpdateMemberBody = z
  .object({
    role: TenantRoleSchema.optional(),
    available: z.boolean().optional().openapi({
      description: 'Whether automatic assignment may pick this agent',
    }),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, { message: 'role or available is required' })
  .openapi('UpdateMember');

export const TeamSchema = z
  .object({
    id: Uuid,
    tenant_id: Uuid,
    name: z.string(),
    department: DepartmentSchema,
    description: z.string().nullable(),
    lead_user_id: Uuid.nullable(),
    auto_assign: AutoAssignSchema,
    receives_department_tickets: z.boolean().openapi({
      description: 'Receives the tickets of its department filed without a team (one team per department).',
    }),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi('Team');

export const CreateTeamBody = z
  .object({
    name: Name,
    department: DepartmentSchema,
    description: Text.max(1000).optional(),
    lead_user_id: Uuid.optional(),
    auto_assign: AutoAssignSchema.default('none'),
    receives_department_tickets: z.boolean().default(false),
  })
  .strict()
  .openapi('CreateTeam');

export const UpdateTeamBody = z
  .object({
    name: Name.optional(),
    department: DepartmentSchema.optional(),
    description: Text.max(1000).nullable().optional(),
    lead_user_id: Uuid.nullable().optional(),
    auto_assign: AutoAssignSchema.optional(),
    receives_department_tickets: z.boolean().optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, { message: 'at least one field is required' })
  .openapi('UpdateTeam');

export const AddTeamMemberBody = z.object({ user_id: Uuid }).strict().openapi('AddTeamMember');

export const TeamMemberSchema = z
  .object({
    user_id: Uuid,
    email: z.string(),
    first_name: z.string().nullable(),
    last_name: z.string().nullable(),
  })
  .openapi('TeamMember');

export const AuditQuery = PageQuery.extend({
  table_name: Text.max(63).optional(),
  action: z.enum(['INSERT', 'UPDATE', 'DELETE', 'SOFT_DELETE', 'RESTORE']).optional(),
});

export const AuditEntrySchema = z
  .object({
    id: z.string(),
    table_name: z.string(),
    record_key: z.record(z.string(), z.unknown()),
    action: z.string(),
    actor_user_id: Uuid.nullable().openapi({
      description:
        'The person the change is made as: an API key acts as its creator (actor_issuer and actor_subject name the key)',
    }),
    actor_issuer: z.string().nullable().openapi({
      description: 'Who vouched for the actor: the identity provider, `tenant-platform:api-key` (actor_subject the key id), ' +
        "`automation` (actor_subject `rule:<id>`); null for the platform's own paths (jobs, webhooks)",
    }),
    actor_subject: z.string().nullable().openapi({ description: "The actor's id at that issuer" }),
    actor_role: z.string(),
    old_data: z.record(z.string(), z.unknown()).nullable(),
    new_data: z.record(z.string(), z.unknown()).nullable(),
    changed_fields: z.array(z.string()).nullable(),
    created_at: Timestamp,
    redacted_at: Timestamp.nullable().openapi({
      description: 'When the row images were erased (a customer erasure): old_data and new_data are then null',
    }),
  })
  .openapi('AuditEntry');

export const page = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), next: z.string().nullable() });

export const ServiceParam = TenantIdParam.extend({
  service: ServiceNameSchema.openapi({ param: { name: 'service', in: 'path' } }),
});

export const TenantServiceSchema = z
  .object({
    service: ServiceNameSchema,
    desired_state: z.enum(['active', 'suspended', 'removed']),
    state: z.enum(['pending', 'provisioning', 'active', 'failed', 'suspended', 'removed']),
    external_ids: z.record(z.string(), z.unknown()),
    last_error: z.string().nullable(),
    attempts: z.number().int(),
    remove_after: Timestamp.nullable(),
    credentials_available: z.boolean().openapi({
      description: 'A login to show an admin once (POST …/credentials): stored, not yet shown, and taken by the partner',
    }),
    credentials_pending: z.boolean().openapi({
      description:
        'A login not yet shown whose password the partner has not taken yet: the reveal answers 409 credentials_pending until it has',
    }),
    drift_detected_at: Timestamp.nullable().openapi({
      description: "When the reconcile pass last found the partner's objects gone (they are provisioned again)",
    }),
    drift_detail: z.string().nullable(),
    drift_repaired_at: Timestamp.nullable().openapi({ description: 'When the service was active again after that drift' }),
    updated_at: Timestamp,
    inbound_webhook_url: z.string().url().optional().openapi({
      description: "Chatwoot only: where the tenant's account webhook delivers (its URL token in the query)",
    }),
  })
  .openapi('TenantService');

export const SetServiceBody = z.object({ enabled: z.boolean() }).strict().openapi('SetService');

export const WEBHOOK_EVENT_TYPES = [
  'ticket.created',
  'ticket.updated',
  'ticket.status_changed',
  'ticket.assigned',
  'ticket.deleted',
  'ticket.sla_warning',
  'ticket.sla_breached',
  'ticket.follower_added',
  'ticket.mentioned',
  'message.created',
  'message.updated',
  'message.deleted',
  'note.created',
  'note.updated',
  'note.deleted',
  'membership.created',
  'membership.updated',
  'membership.deleted',
  'service.state_changed',
  'service.drift_detected',
  'call.started',
  'call.ended',
  'call.deleted',
  'customer.created',
  'customer.erased',
  'customer.erasure_completed',
  'automation.triggered',
] as const;

export const EndpointParam = TenantIdParam.extend({
  endpointId: Uuid.openapi({ param: { name: 'endpointId', in: 'path' } }),
});

const WebhookUrl = Text.max(2048).url();

export const CreateEndpointBody = z
  .object({
    url: WebhookUrl,
    event_types: z.array(z.enum(WEBHOOK_EVENT_TYPES)).max(50).default([])
      .openapi({ description: 'Empty: every event type' }),
    description: Text.max(500).optional(),
  })
  .strict()
  .openapi('CreateWebhookEndpoint');

export const UpdateEndpointBody = z
  .object({
    url: WebhookUrl.optional(),
    event_types: z.array(z.enum(WEBHOOK_EVENT_TYPES)).max(50).optional(),
    description: Text.max(500).nullable().optional(),
    enabled: z.boolean().optional().openapi({ description: 'Re-enabling clears the failure record' }),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, { message: 'at least one field is required' })
  .openapi('UpdateWebhookEndpoint');

export const EndpointSchema = z
  .object({
    id: Uuid,
    url: z.string(),
    description: z.string().nullable(),
    event_types: z.array(z.string()),
    enabled: z.boolean(),
    disabled_reason: z.string().nullable(),
    consecutive_failures: z.number().int().openapi({ description: 'Failed attempts in a row (a 429 is not one)' }),
    failing_since: Timestamp.nullable().openapi({
      description: 'When the current run of failures began; after a day of them (and 30 attempts) the endpoint is disabled',
    }),
    secret_rotated_at: Timestamp.nullable().openapi({ description: 'When the signing secret was last rotated' }),
    previous_secret_expires_at: Timestamp.nullable().openapi({
      description: 'Until when deliveries are signed with the previous secret too (null: only the current one)',
    }),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi('WebhookEndpoint');

export const RotateSecretBody = z
  .object({
    previous_secret_hours: z.number().int().min(0).max(168).default(24).openapi({
      description: 'How long deliveries carry a signature with the previous secret too (0: stop at once, for a leaked secret)',
    }),
  })
  .strict()
  .openapi('RotateWebhookSecret');

export const RetryDeliveryBody = z
  .object({
    delivery_id: z.number().int().min(1).openapi({ description: 'A failed delivery of this endpoint (its `id` in the list)' }),
  })
  .strict()
  .openapi('RetryWebhookDelivery');
export const RetriedDeliverySchema = z
  .object({
    id: z.number().int(),
    status: z.literal('pending'),
    queued: z.boolean().openapi({
      description: 'Whether it was queued now (false: the endpoint is disabled; re-enabling it queues it)',
    }),
  })
  .openapi('RetriedWebhookDelivery');

export const DeliverySchema = z
  .object({
    id: z.number().int(),
    message_id: z.string(),
    type: z.string(),
    status: z.enum(['pending', 'delivering', 'delivered', 'failed']),
    attempts: z.number().int(),
    last_status_code: z.number().int().nullable(),
    last_error: z.string().nullable(),
    created_at: Timestamp,
    delivered_at: Timestamp.nullable(),
  })
  .openapi('WebhookDelivery');

export const UpdateProfileBody = z
  .object({
    first_name: Name.nullable().optional(),
    last_name: Name.nullable().optional(),
    display_name: Text.trim().min(1).max(200).nullable().optional(),
    avatar_url: Text.max(2048).url().nullable().optional(),
    profile: JsonObject(16_384).optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, { message: 'at least one field is required' })
  .openapi('UpdateProfile');

export const ProfileSchema = z
  .object({
    id: Uuid,
    email: z.string(),
    first_name: z.string().nullable(),
    last_name: z.string().nullable(),
    display_name: z.string().nullable(),
    avatar_url: z.string().nullable(),
    profile: z.record(z.string(), z.unknown()),
    updated_at: Timestamp,
  })
  .openapi('Profile');

// ------------------------------------------------------------------ plans, usage (issue 15)

export const TenantWithEntitlementsSchema = TenantSchema.extend({ entitlements: EntitlementsSchema })
  .openapi('TenantWithEntitlements');

export const PlanTierSchema = z
  .object({ id: PlanSchema, name: z.string(), limits: Limits, features: Features })
  .openapi('PlanTier');

export const UpdateEntitlementsBody = z
  .object({
    limits: z.record(Text.max(63), z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).nullable()).optional()
      .openapi({ description: "Overrides of the plan's limits; null removes an override (no limit: set a large number)" }),
    features: z.record(Text.max(63), z.boolean().nullable()).optional()
      .openapi({ description: "Overrides of the plan's features; null removes an override" }),
    flags: z.record(z.string().regex(/^[a-z][a-z0-9_.-]{0,62}$/), FlagValue.nullable()).optional()
      .openapi({ description: 'Feature flags for gradual roll-outs; null deletes one' }),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, { message: 'limits, features or flags is required' });

export const UsageSchema = z
  .object({
    tenant_id: Uuid,
    month: z.string().openapi({ example: '2026-12', description: 'The month monthly metrics count (UTC)' }),
    metrics: z.record(z.string(), z.object({ used: z.number().int(), limit: z.number().int().nullable() })),
  })
  .openapi('Usage');
