// The role matrix, once, as data: for every table in public, every action, every role,
// whether it reaches a row of the caller's own tenant and of a foreign tenant. The
// test file enumerates it against the database exactly as PostgREST would call it.
//
//   user   — a tenant's customer: reads the tenant, its teams and its staff (not other
//            customers), edits only their own profile, may leave. Of the voice data,
//            only the customer record linked to them and its calls (a fixture row is
//            linked to nobody; tests/functions/voice.test.ts reads a linked one).
//   agent  — staff: sees every member (ticket powers come with the tickets tables).
//   admin  — runs the tenant: settings, invitations, roles, teams, audit trail.
//   super  — platform super-admin: everything in every tenant.
export type Role = 'super' | 'admin' | 'agent' | 'user';
export type Action = 'select' | 'insert' | 'update' | 'delete';
export type Outcome = { own: boolean; foreign: boolean };

const all = (own: boolean, foreign: boolean): Record<Role, Outcome> => ({
  super: { own: true, foreign: true },
  admin: { own, foreign },
  agent: { own, foreign },
  user: { own, foreign },
});
const only = (roles: Role[]): Record<Role, Outcome> =>
  Object.fromEntries((['super', 'admin', 'agent', 'user'] as Role[]).map((r) => [
    r,
    { own: roles.includes(r), foreign: r === 'super' && roles.includes('super') },
  ])) as Record<Role, Outcome>;
const nobody = (): Record<Role, Outcome> => only([]);

const exactly = (own: Role[]): Record<Role, Outcome> =>
  Object.fromEntries((['super', 'admin', 'agent', 'user'] as Role[]).map((r) => [r, { own: own.includes(r), foreign: false }])) as Record<Role, Outcome>;

export const matrix: Record<string, Record<Action, Record<Role, Outcome>>> = {
  tenants: { select: all(true, false), insert: only(['super']), update: only(['super', 'admin']), delete: only(['super']) },
  // Memberships come from accepted invitations (or super-admins), never a direct insert.
  memberships: { select: all(true, false), insert: only(['super']), update: only(['super', 'admin']), delete: only(['super', 'admin']) },
  invitations: { select: only(['super', 'admin']), insert: only(['super', 'admin']), update: nobody(), delete: only(['super', 'admin']) },
  teams: { select: all(true, false), insert: only(['super', 'admin']), update: only(['super', 'admin']), delete: only(['super', 'admin']) },
  team_members: { select: all(true, false), insert: only(['super', 'admin']), update: nobody(), delete: only(['super', 'admin']) },
  tenant_org_links: { select: all(true, false), insert: only(['super']), update: nobody(), delete: only(['super']) },
  // Platform-wide tables: "own" is a fellow customer (role user) of the caller's tenant,
  // "foreign" a member of another tenant only. Customers see their tenant's staff but
  // not each other; users edit only themselves (see the self checks).
  users: { select: only(['super', 'admin', 'agent']), insert: nobody(), update: only(['super']), delete: nobody() },
  user_identities: { select: only(['super']), insert: nobody(), update: nobody(), delete: nobody() },
  platform_admins: { select: only(['super']), insert: nobody(), update: nobody(), delete: nobody() },
  audit_logs: { select: only(['super', 'admin']), insert: nobody(), update: nobody(), delete: nobody() },
  // Tickets: the customer's own ticket of the tenant, on the agent's team. Every member
  // files tickets; staff work them; nobody hard-deletes (admins soft-delete by update).
  tickets: { select: all(true, false), insert: all(true, false), update: only(['super', 'admin', 'agent']), delete: nobody() },
  // Messages on that ticket ("own" = the customer's message): authors edit their own.
  ticket_messages: { select: all(true, false), insert: all(true, false), update: exactly(['user']), delete: nobody() },
  // Admins delete attachments (their bytes go back to the plan's storage: 20261207106000).
  attachments: { select: all(true, false), insert: all(true, false), update: nobody(), delete: only(['super', 'admin']) },
  ticket_events: { select: all(true, false), insert: nobody(), update: nobody(), delete: nobody() },
  // Partner services: admins see and enable them; the worker (service role) does the rest.
  tenant_services: { select: only(['super', 'admin']), insert: only(['super', 'admin']), update: only(['super', 'admin']), delete: nobody() },
  webhook_endpoints: { select: only(['super', 'admin']), insert: only(['super', 'admin']), update: only(['super', 'admin']), delete: only(['super', 'admin']) },
  // Macros (the tenant-wide one): staff apply them, admins keep them.
  macros: { select: only(['super', 'admin', 'agent']), insert: only(['super', 'admin']), update: only(['super', 'admin']), delete: only(['super', 'admin']) },
  automation_rules: { select: only(['super', 'admin']), insert: only(['super', 'admin']), update: only(['super', 'admin']), delete: only(['super', 'admin']) },
  automation_runs: { select: only(['super', 'admin']), insert: nobody(), update: nobody(), delete: nobody() },
  // API keys: admins see, rename and revoke their tenant's keys; keys are made only by
  // private.create_api_key (with the secret's hash) and never deleted (revocation keeps them).
  api_keys: { select: only(['super', 'admin']), insert: nobody(), update: only(['super', 'admin']), delete: nobody() },
  // Canned responses (the tenant-wide one): staff use them, admins keep them.
  canned_responses: { select: only(['super', 'admin', 'agent']), insert: only(['super', 'admin']), update: only(['super', 'admin']), delete: only(['super', 'admin']) },
  // Followers of the customer's ticket (the agent follows it): staff who see the ticket.
  ticket_followers: { select: only(['super', 'admin', 'agent']), insert: only(['super', 'admin', 'agent']), update: nobody(), delete: only(['super', 'admin', 'agent']) },
  // Each person's own notifications, not even a super-admin's window into others'.
  notifications: { select: exactly(['admin', 'agent', 'user']), insert: nobody(), update: exactly(['admin', 'agent', 'user']), delete: exactly(['admin', 'agent', 'user']) },
  // Per-tenant definitions (issue 16 §4): every member reads the departments and the
  // custom fields visible to customers (the seeded one is); staff read tags; admins keep
  // all three. Values of fields hidden from customers: staff who see the ticket read them,
  // nobody writes them but the tickets trigger.
  departments: { select: all(true, false), insert: only(['super', 'admin']), update: only(['super', 'admin']), delete: only(['super', 'admin']) },
  tags: { select: only(['super', 'admin', 'agent']), insert: only(['super', 'admin']), update: only(['super', 'admin']), delete: only(['super', 'admin']) },
  custom_field_definitions: { select: all(true, false), insert: only(['super', 'admin']), update: only(['super', 'admin']), delete: only(['super', 'admin']) },
  ticket_internal_fields: { select: only(['super', 'admin', 'agent']), insert: nobody(), update: nobody(), delete: nobody() },
  sla_policies: { select: all(true, false), insert: only(['super', 'admin']), update: only(['super', 'admin']), delete: only(['super', 'admin']) },
  // Voice (issue 14): admins manage agents and the knowledge base, agents manage
  // customers and calls, every member reads agents and the knowledge base; customers,
  // calls and transcripts are staff's (a user reads only their own linked record and its
  // calls: 20261202180000); chunks and segments are never rewritten.
  voice_knowledge_bases: { select: all(true, false), insert: only(['super', 'admin']), update: only(['super', 'admin']), delete: only(['super', 'admin']) },
  kb_documents: { select: all(true, false), insert: only(['super', 'admin']), update: only(['super', 'admin']), delete: only(['super', 'admin']) },
  kb_chunks: { select: all(true, false), insert: nobody(), update: nobody(), delete: nobody() },
  voice_agents: { select: only(['super', 'admin', 'agent']), insert: only(['super', 'admin']), update: only(['super', 'admin']), delete: only(['super', 'admin']) },
  voice_customers: { select: only(['super', 'admin', 'agent']), insert: only(['super', 'admin', 'agent']), update: only(['super', 'admin', 'agent']), delete: only(['super', 'admin', 'agent']) },
  voice_calls: { select: only(['super', 'admin', 'agent']), insert: only(['super', 'admin', 'agent']), update: only(['super', 'admin', 'agent']), delete: only(['super', 'admin']) },
  voice_call_segments: { select: only(['super', 'admin', 'agent']), insert: only(['super', 'admin', 'agent']), update: nobody(), delete: nobody() },
};
