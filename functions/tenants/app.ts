// The tenants API: tenants (super-admins create and run them, admins edit their own),
// members, teams, the audit trail, and GET /me. Every query runs as the caller under
// RLS (callerDb); the role checks here give clear 403/404s, the policies enforce them.
import { createRoute, z } from '@hono/zod-openapi';
import { type AuthEnv, caller, callerDb, requireUser, tenantAccess, type Caller } from '../../shared/auth/context.ts';
import { decryptJson } from '../../shared/crypto.ts';
import { supabaseUrl } from '../../shared/auth/issuers.ts';
import { chatwootUrlToken } from '../../shared/webhooks/chatwoot.ts';
import { newEndpointSecret } from '../../shared/webhooks/deliver.ts';
import { webhookTargetProblem } from '../../shared/webhooks/ssrf.ts';
import { conflict, forbidden, notFound, unprocessable } from '../../shared/errors.ts';
import { createApp } from '../../shared/http.ts';
import {
  commonErrors,
  conflictError,
  decodeCursor,
  encodeCursor,
  jsonBody,
  jsonResponse,
  UUID_PATTERN,
} from '../../shared/schemas/common.ts';
import * as s from './schemas.ts';

export const app = createApp<AuthEnv>('tenants', {
  title: 'Tenants API',
  description: 'Tenants, members, teams and audit trail of the multi-tenant platform.',
});

app.use('*', async (c, next) => {
  if (c.req.method === 'OPTIONS' || c.req.path.endsWith('/openapi.json')) return await next();
  return await requireUser()(c, next);
});

const security = [{ bearerAuth: [] }];
const TENANT_COLUMNS = 'id, name, slug, status, plan, settings, created_at, updated_at, deleted_at';

function requirePlatformAdmin(who: Caller): void {
  if (!who.isPlatformAdmin) throw forbidden('Only platform super-admins may do this');
}

const plainText = (v: string) => v.length <= 200 && !v.includes('\u0000');

function cursorOrFail(cursor: string | undefined, arity: number, valid = plainText): string[] | null {
  if (!cursor) return null;
  const values = decodeCursor(cursor, arity);
  if (!values || !values.every(valid)) throw unprocessable('The request is not valid', { fields: [{ field: 'cursor', message: 'Invalid cursor' }] });
  return values;
}

// ---------------------------------------------------------------- me

app.openapi(
  createRoute({
    method: 'get',
    path: '/me',
    summary: 'The caller: user, memberships, active tenant and role',
    security,
    responses: { 200: jsonResponse(s.MeSchema, 'The caller'), ...commonErrors },
  }),
  async (c) => {
    const who = caller(c);
    const invitations = await callerDb(c, null, (tx) =>
      tx`select id, tenant_id, tenant_name, tenant_slug, role, expires_at from private.my_invitations()`
    );
    const header = c.req.header('x-tenant-id');
    const activeId = who.pinnedTenantId ??
      who.memberships.find((m) => m.tenant_id === header?.toLowerCase() || m.tenant.slug === header)?.tenant_id ??
      (who.memberships.length === 1 ? who.memberships[0].tenant_id : undefined);
    const active = who.memberships.find((m) => m.tenant_id === activeId);
    return c.json({
      user: who.user,
      identity: { issuer: who.identity.issuer, subject: who.identity.subject, kind: who.identity.kind },
      is_platform_admin: who.isPlatformAdmin,
      memberships: who.memberships,
      invitations,
      active_tenant: active ? { id: active.tenant.id, slug: active.tenant.slug, name: active.tenant.name } : null,
      role: active ? active.role : who.isPlatformAdmin ? 'super_admin' as const : null,
    } as never, 200);
  },
);

// ---------------------------------------------------------------- tenants

app.openapi(
  createRoute({
    method: 'get',
    path: '/',
    summary: 'List tenants: all of them for super-admins, your own otherwise',
    security,
    request: { query: s.ListTenantsQuery },
    responses: { 200: jsonResponse(s.page(s.TenantSchema), 'A page of tenants'), ...commonErrors },
  }),
  async (c) => {
    const q = c.req.valid('query');
    const after = cursorOrFail(q.cursor, 2, (v) => plainText(v));
    if (after && !UUID_PATTERN.test(after[1])) throw unprocessable('The request is not valid', { fields: [{ field: 'cursor', message: 'Invalid cursor' }] });
    const rows = await callerDb(c, null, (tx) =>
      tx`
        select ${tx.unsafe(TENANT_COLUMNS)} from public.tenants
        where (${q.status ?? null}::text is null or status = ${q.status ?? null}::text)
          and (${after?.[0] ?? null}::text is null or (name, id) > (${after?.[0] ?? null}::text, ${after?.[1] ?? null}::uuid))
        order by name, id
        limit ${q.limit + 1}
      `
    );
    const items = rows.slice(0, q.limit);
    const last = items.at(-1);
    return c.json({ items, next: rows.length > q.limit && last ? encodeCursor([last.name, last.id]) : null } as never, 200);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/',
    summary: 'Create a tenant (super-admins), optionally with its first admin',
    security,
    request: { body: jsonBody(s.CreateTenantBody) },
    responses: { 201: jsonResponse(s.TenantSchema, 'The new tenant'), ...commonErrors, ...conflictError },
  }),
  async (c) => {
    const who = caller(c);
    requirePlatformAdmin(who);
    const body = c.req.valid('json');
    const tenant = await callerDb(c, null, async (tx) => {
      const [t] = await tx`
        insert into public.tenants (name, slug, plan, settings)
        values (${body.name}, ${body.slug}, ${body.plan}, ${tx.json(body.settings as never)})
        returning ${tx.unsafe(TENANT_COLUMNS)}
      `;
      if (body.admin) {
        const [{ id }] = await tx`
          select private.find_or_create_user(${body.admin.email}, ${body.admin.first_name ?? null}, ${body.admin.last_name ?? null}) as id
        `;
        await tx`insert into public.memberships (tenant_id, user_id, role) values (${t.id}, ${id}, 'admin')`;
      }
      for (const service of body.services) {
        await tx`insert into public.tenant_services (tenant_id, service) values (${t.id}, ${service})`;
      }
      return t;
    });
    return c.json(tenant as never, 201);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/{tenantId}',
    summary: 'Read a tenant you belong to',
    security,
    request: { params: s.TenantIdParam },
    responses: { 200: jsonResponse(s.TenantSchema, 'The tenant'), ...commonErrors },
  }),
  async (c) => {
    const { tenantId } = c.req.valid('param');
    tenantAccess(caller(c), tenantId, 'user');
    const [t] = await callerDb(c, tenantId, (tx) =>
      tx`select ${tx.unsafe(TENANT_COLUMNS)} from public.tenants where id = ${tenantId}`
    );
    if (!t) throw notFound('Tenant');
    return c.json(t as never, 200);
  },
);

app.openapi(
  createRoute({
    method: 'patch',
    path: '/{tenantId}',
    summary: 'Rename a tenant or change its settings (admins); change its plan (super-admins)',
    security,
    request: { params: s.TenantIdParam, body: jsonBody(s.UpdateTenantBody) },
    responses: { 200: jsonResponse(s.TenantSchema, 'The updated tenant'), ...commonErrors },
  }),
  async (c) => {
    const { tenantId } = c.req.valid('param');
    const body = c.req.valid('json');
    const who = caller(c);
    tenantAccess(who, tenantId, 'admin', { write: true });
    if (body.plan !== undefined) requirePlatformAdmin(who);
    const [t] = await callerDb(c, tenantId, (tx) =>
      tx`
        update public.tenants set
          name = coalesce(${body.name ?? null}::text, name),
          settings = coalesce(${body.settings ? tx.json(body.settings as never) : null}::jsonb, settings),
          plan = coalesce(${body.plan ?? null}::text, plan)
        where id = ${tenantId}
        returning ${tx.unsafe(TENANT_COLUMNS)}
      `
    );
    if (!t) throw notFound('Tenant');
    return c.json(t as never, 200);
  },
);

const statusRoute = (path: string, summary: string, method: 'post' | 'delete') =>
  createRoute({
    method,
    path,
    summary,
    security,
    request: { params: s.TenantIdParam },
    responses: { 200: jsonResponse(s.TenantSchema, 'The tenant'), ...commonErrors },
  });

/** Super-admins move a tenant between active, suspended and (soft) deleted. */
async function setTenantStatus(c: Parameters<typeof caller>[0], tenantId: string, status: 'active' | 'suspended' | 'deleted') {
  const who = caller(c);
  tenantAccess(who, tenantId, 'user'); // a tenant the caller cannot see stays a 404
  requirePlatformAdmin(who);
  const [t] = await callerDb(c, tenantId, (tx) =>
    tx`
      update public.tenants
      set status = ${status}, deleted_at = case when ${status} = 'deleted' then coalesce(deleted_at, now()) end
      where id = ${tenantId}
      returning ${tx.unsafe(TENANT_COLUMNS)}
    `
  );
  if (!t) throw notFound('Tenant');
  return t;
}

app.openapi(statusRoute('/{tenantId}/suspend', 'Suspend a tenant: read-only for its members (super-admins)', 'post'), async (c) =>
  c.json(await setTenantStatus(c, c.req.valid('param').tenantId, 'suspended') as never, 200));
app.openapi(statusRoute('/{tenantId}/resume', 'Resume or restore a tenant (super-admins)', 'post'), async (c) =>
  c.json(await setTenantStatus(c, c.req.valid('param').tenantId, 'active') as never, 200));
app.openapi(statusRoute('/{tenantId}', 'Soft-delete a tenant (super-admins)', 'delete'), async (c) =>
  c.json(await setTenantStatus(c, c.req.valid('param').tenantId, 'deleted') as never, 200));

// ---------------------------------------------------------------- members

const MEMBER_SELECT = `
  select m.user_id, u.email, u.first_name, u.last_name, m.role, m.available, m.created_at
  from public.memberships m join public.users u on u.id = m.user_id`;

app.openapi(
  createRoute({
    method: 'get',
    path: '/{tenantId}/members',
    summary: "List a tenant's members (agents and admins)",
    security,
    request: { params: s.TenantIdParam },
    responses: { 200: jsonResponse(z.object({ items: z.array(s.MemberSchema) }), 'Members'), ...commonErrors },
  }),
  async (c) => {
    const { tenantId } = c.req.valid('param');
    tenantAccess(caller(c), tenantId, 'agent');
    const items = await callerDb(c, tenantId, (tx) =>
      tx`${tx.unsafe(MEMBER_SELECT)} where m.tenant_id = ${tenantId} order by lower(u.email)`
    );
    return c.json({ items } as never, 200);
  },
);

app.openapi(
  createRoute({
    method: 'patch',
    path: '/{tenantId}/members/{userId}',
    summary: "Change a member's role or availability for automatic assignment (admins; a tenant keeps an admin)",
    security,
    request: { params: s.MemberParam, body: jsonBody(s.UpdateMemberBody) },
    responses: { 200: jsonResponse(s.MemberSchema, 'The member'), ...commonErrors, ...conflictError },
  }),
  async (c) => {
    const { tenantId, userId } = c.req.valid('param');
    const body = c.req.valid('json');
    tenantAccess(caller(c), tenantId, 'admin', { write: true });
    const member = await callerDb(c, tenantId, async (tx) => {
      const updated = await tx`
        update public.memberships
        set role = coalesce(${body.role ?? null}::text, role), available = coalesce(${body.available ?? null}::boolean, available)
        where tenant_id = ${tenantId} and user_id = ${userId} returning id
      `;
      if (!updated.length) return undefined;
      const [m] = await tx`${tx.unsafe(MEMBER_SELECT)} where m.tenant_id = ${tenantId} and m.user_id = ${userId}`;
      return m;
    });
    if (!member) throw notFound('Member');
    return c.json(member as never, 200);
  },
);

app.openapi(
  createRoute({
    method: 'delete',
    path: '/{tenantId}/members/{userId}',
    summary: 'Remove a member (admins; never the last admin)',
    security,
    request: { params: s.MemberParam },
    responses: { 204: { description: 'Removed' }, ...commonErrors, ...conflictError },
  }),
  async (c) => {
    const { tenantId, userId } = c.req.valid('param');
    tenantAccess(caller(c), tenantId, 'admin', { write: true });
    const deleted = await callerDb(c, tenantId, (tx) =>
      tx`delete from public.memberships where tenant_id = ${tenantId} and user_id = ${userId} returning id`
    );
    if (!deleted.length) throw notFound('Member');
    return c.body(null, 204);
  },
);

// ---------------------------------------------------------------- invitations

const INVITATION_COLUMNS = 'id, tenant_id, email, role, invited_by, created_at, expires_at, accepted_at';

app.openapi(
  createRoute({
    method: 'post',
    path: '/{tenantId}/invitations',
    summary: 'Invite a person by e-mail (admins); they join when they accept',
    security,
    request: { params: s.TenantIdParam, body: jsonBody(s.InviteBody) },
    responses: { 201: jsonResponse(s.InvitationSchema, 'The invitation'), ...commonErrors, ...conflictError },
  }),
  async (c) => {
    const { tenantId } = c.req.valid('param');
    const body = c.req.valid('json');
    tenantAccess(caller(c), tenantId, 'admin', { write: true });
    const invitation = await callerDb(c, tenantId, async (tx) => {
      const [member] = await tx`
        select 1 from public.memberships m join public.users u on u.id = m.user_id
        where m.tenant_id = ${tenantId} and lower(u.email) = ${body.email}
      `;
      if (member) throw conflict('already_member', 'This person is already a member of the tenant');
      const [inv] = await tx`
        insert into public.invitations (tenant_id, email, role, expires_at)
        values (${tenantId}, ${body.email}, ${body.role}, now() + make_interval(days => ${body.expires_in_days}))
        returning ${tx.unsafe(INVITATION_COLUMNS)}
      `;
      return inv;
    });
    return c.json(invitation as never, 201);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/{tenantId}/invitations',
    summary: "List a tenant's pending invitations (admins)",
    security,
    request: { params: s.TenantIdParam },
    responses: { 200: jsonResponse(z.object({ items: z.array(s.InvitationSchema) }), 'Pending invitations'), ...commonErrors },
  }),
  async (c) => {
    const { tenantId } = c.req.valid('param');
    tenantAccess(caller(c), tenantId, 'admin');
    const items = await callerDb(c, tenantId, (tx) =>
      tx`
        select ${tx.unsafe(INVITATION_COLUMNS)} from public.invitations
        where tenant_id = ${tenantId} and accepted_at is null
        order by created_at desc
      `
    );
    return c.json({ items } as never, 200);
  },
);

app.openapi(
  createRoute({
    method: 'delete',
    path: '/{tenantId}/invitations/{invitationId}',
    summary: 'Revoke a pending invitation (admins)',
    security,
    request: { params: s.InvitationParam },
    responses: { 204: { description: 'Revoked' }, ...commonErrors },
  }),
  async (c) => {
    const { tenantId, invitationId } = c.req.valid('param');
    tenantAccess(caller(c), tenantId, 'admin', { write: true });
    const deleted = await callerDb(c, tenantId, (tx) =>
      tx`
        delete from public.invitations
        where tenant_id = ${tenantId} and id = ${invitationId} and accepted_at is null
        returning id
      `
    );
    if (!deleted.length) throw notFound('Invitation');
    return c.body(null, 204);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/invitations/{invitationId}/accept',
    summary: 'Accept an invitation addressed to your e-mail and join its tenant',
    security,
    request: { params: s.AcceptParam },
    responses: {
      200: jsonResponse(z.object({ tenant_id: s.TenantIdParam.shape.tenantId, role: s.TenantRoleSchema }), 'The membership'),
      ...commonErrors,
    },
  }),
  async (c) => {
    const { invitationId } = c.req.valid('param');
    const [membership] = await callerDb(c, null, (tx) =>
      tx`select tenant_id, role from private.accept_invitation(${invitationId})`
    );
    return c.json(membership as never, 200);
  },
);

// ---------------------------------------------------------------- teams

const TEAM_COLUMNS = 'id, tenant_id, name, department, description, lead_user_id, auto_assign, created_at, updated_at';

app.openapi(
  createRoute({
    method: 'get',
    path: '/{tenantId}/teams',
    summary: "List a tenant's teams",
    security,
    request: { params: s.TenantIdParam },
    responses: { 200: jsonResponse(z.object({ items: z.array(s.TeamSchema) }), 'Teams'), ...commonErrors },
  }),
  async (c) => {
    const { tenantId } = c.req.valid('param');
    tenantAccess(caller(c), tenantId, 'user');
    const items = await callerDb(c, tenantId, (tx) =>
      tx`select ${tx.unsafe(TEAM_COLUMNS)} from public.teams where tenant_id = ${tenantId} order by lower(name)`
    );
    return c.json({ items } as never, 200);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/{tenantId}/teams',
    summary: 'Create a team (admins); the lead must be a member',
    security,
    request: { params: s.TenantIdParam, body: jsonBody(s.CreateTeamBody) },
    responses: { 201: jsonResponse(s.TeamSchema, 'The new team'), ...commonErrors, ...conflictError },
  }),
  async (c) => {
    const { tenantId } = c.req.valid('param');
    const body = c.req.valid('json');
    tenantAccess(caller(c), tenantId, 'admin', { write: true });
    const [team] = await callerDb(c, tenantId, (tx) =>
      tx`
        insert into public.teams (tenant_id, name, department, description, lead_user_id, auto_assign)
        values (${tenantId}, ${body.name}, ${body.department}, ${body.description ?? null}, ${body.lead_user_id ?? null},
                ${body.auto_assign})
        returning ${tx.unsafe(TEAM_COLUMNS)}
      `
    );
    return c.json(team as never, 201);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/{tenantId}/teams/{teamId}',
    summary: 'Read a team with its members',
    security,
    request: { params: s.TeamParam },
    responses: {
      200: jsonResponse(s.TeamSchema.extend({ members: z.array(s.TeamMemberSchema) }), 'The team'),
      ...commonErrors,
    },
  }),
  async (c) => {
    const { tenantId, teamId } = c.req.valid('param');
    tenantAccess(caller(c), tenantId, 'user');
    const team = await callerDb(c, tenantId, async (tx) => {
      const [t] = await tx`
        select ${tx.unsafe(TEAM_COLUMNS)} from public.teams where tenant_id = ${tenantId} and id = ${teamId}
      `;
      if (!t) return undefined;
      t.members = await tx`
        select tm.user_id, u.email, u.first_name, u.last_name
        from public.team_members tm join public.users u on u.id = tm.user_id
        where tm.tenant_id = ${tenantId} and tm.team_id = ${teamId}
        order by lower(u.email)
      `;
      return t;
    });
    if (!team) throw notFound('Team');
    return c.json(team as never, 200);
  },
);

app.openapi(
  createRoute({
    method: 'patch',
    path: '/{tenantId}/teams/{teamId}',
    summary: 'Update a team (admins)',
    security,
    request: { params: s.TeamParam, body: jsonBody(s.UpdateTeamBody) },
    responses: { 200: jsonResponse(s.TeamSchema, 'The team'), ...commonErrors, ...conflictError },
  }),
  async (c) => {
    const { tenantId, teamId } = c.req.valid('param');
    const body = c.req.valid('json');
    tenantAccess(caller(c), tenantId, 'admin', { write: true });
    const [team] = await callerDb(c, tenantId, (tx) =>
      tx`
        update public.teams set
          name = coalesce(${body.name ?? null}::text, name),
          department = coalesce(${body.department ?? null}::text, department),
          description = case when ${'description' in body} then ${body.description ?? null}::text else description end,
          lead_user_id = case when ${'lead_user_id' in body} then ${body.lead_user_id ?? null}::uuid else lead_user_id end,
          auto_assign = coalesce(${body.auto_assign ?? null}::text, auto_assign)
        where tenant_id = ${tenantId} and id = ${teamId}
        returning ${tx.unsafe(TEAM_COLUMNS)}
      `
    );
    if (!team) throw notFound('Team');
    return c.json(team as never, 200);
  },
);

app.openapi(
  createRoute({
    method: 'delete',
    path: '/{tenantId}/teams/{teamId}',
    summary: 'Delete a team and its memberships (admins)',
    security,
    request: { params: s.TeamParam },
    responses: { 204: { description: 'Deleted' }, ...commonErrors },
  }),
  async (c) => {
    const { tenantId, teamId } = c.req.valid('param');
    tenantAccess(caller(c), tenantId, 'admin', { write: true });
    const deleted = await callerDb(c, tenantId, (tx) =>
      tx`delete from public.teams where tenant_id = ${tenantId} and id = ${teamId} returning id`
    );
    if (!deleted.length) throw notFound('Team');
    return c.body(null, 204);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/{tenantId}/teams/{teamId}/members',
    summary: 'Add a tenant member to a team (admins)',
    security,
    request: { params: s.TeamParam, body: jsonBody(s.AddTeamMemberBody) },
    responses: { 201: jsonResponse(s.TeamMemberSchema, 'Added'), ...commonErrors, ...conflictError },
  }),
  async (c) => {
    const { tenantId, teamId } = c.req.valid('param');
    const { user_id } = c.req.valid('json');
    tenantAccess(caller(c), tenantId, 'admin', { write: true });
    const member = await callerDb(c, tenantId, async (tx) => {
      const [team] = await tx`select 1 from public.teams where tenant_id = ${tenantId} and id = ${teamId}`;
      if (!team) return undefined;
      await tx`insert into public.team_members (tenant_id, team_id, user_id) values (${tenantId}, ${teamId}, ${user_id})`;
      const [m] = await tx`select id as user_id, email, first_name, last_name from public.users where id = ${user_id}`;
      return m;
    });
    if (!member) throw notFound('Team');
    return c.json(member as never, 201);
  },
);

app.openapi(
  createRoute({
    method: 'delete',
    path: '/{tenantId}/teams/{teamId}/members/{userId}',
    summary: 'Remove a member from a team (admins)',
    security,
    request: { params: s.TeamMemberParam },
    responses: { 204: { description: 'Removed' }, ...commonErrors },
  }),
  async (c) => {
    const { tenantId, teamId, userId } = c.req.valid('param');
    tenantAccess(caller(c), tenantId, 'admin', { write: true });
    const deleted = await callerDb(c, tenantId, (tx) =>
      tx`
        delete from public.team_members where tenant_id = ${tenantId} and team_id = ${teamId} and user_id = ${userId}
        returning id
      `
    );
    if (!deleted.length) throw notFound('Team member');
    return c.body(null, 204);
  },
);

// ---------------------------------------------------------------- partner services

app.openapi(
  createRoute({
    method: 'get',
    path: '/{tenantId}/services',
    summary: "The tenant's partner services and their provisioning state (admins)",
    security,
    request: { params: s.TenantIdParam },
    responses: { 200: jsonResponse(z.object({ items: z.array(s.TenantServiceSchema) }), 'Services'), ...commonErrors },
  }),
  async (c) => {
    const { tenantId } = c.req.valid('param');
    tenantAccess(caller(c), tenantId, 'admin');
    const items = await callerDb(c, tenantId, async (tx) => {
      // credentials_available needs the column admins cannot select: ask the definer side.
      const rows = await tx`
        select service, desired_state, state, external_ids, last_error, attempts, remove_after, updated_at,
               credentials_revealed_at
        from public.tenant_services where tenant_id = ${tenantId} order by service`;
      return await Promise.all(rows.map(async ({ credentials_revealed_at, ...r }) => ({
        ...r,
        credentials_available: credentials_revealed_at === null,
        // Where the tenant's Chatwoot account sends its webhooks (for versions that do
        // not sign them, the token in the URL authenticates them).
        ...(r.service === 'chatwoot'
          ? { inbound_webhook_url: `${supabaseUrl()}/functions/v1/webhooks/chatwoot/${tenantId}?token=${await chatwootUrlToken(tenantId)}` }
          : {}),
      })));
    });
    return c.json({ items } as never, 200);
  },
);

app.openapi(
  createRoute({
    method: 'put',
    path: '/{tenantId}/services/{service}',
    summary: 'Enable or disable a partner service (admins); disabling removes its accounts',
    security,
    request: { params: s.ServiceParam, body: jsonBody(s.SetServiceBody) },
    responses: { 200: jsonResponse(s.TenantServiceSchema, 'The service'), ...commonErrors },
  }),
  async (c) => {
    const { tenantId, service } = c.req.valid('param');
    const { enabled } = c.req.valid('json');
    tenantAccess(caller(c), tenantId, 'admin', { write: true });
    const [row] = await callerDb(c, tenantId, (tx) =>
      tx`
        insert into public.tenant_services (tenant_id, service, desired_state)
        values (${tenantId}, ${service}, ${enabled ? 'active' : 'removed'})
        on conflict (tenant_id, service) do update set desired_state = excluded.desired_state
        returning service, desired_state, state, external_ids, last_error, attempts, remove_after, updated_at,
                  credentials_revealed_at is null as credentials_available
      `
    );
    return c.json(row as never, 200);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/{tenantId}/services/{service}/retry',
    summary: 'Retry a failed service once its cause is fixed (admins)',
    security,
    request: { params: s.ServiceParam },
    responses: { 202: jsonResponse(z.object({ queued: z.boolean() }), 'Queued'), ...commonErrors, ...conflictError },
  }),
  async (c) => {
    const { tenantId, service } = c.req.valid('param');
    tenantAccess(caller(c), tenantId, 'admin', { write: true });
    await callerDb(c, tenantId, (tx) => tx`select private.retry_tenant_service(${tenantId}, ${service})`);
    return c.json({ queued: true }, 202);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/{tenantId}/services/{service}/credentials',
    summary: "The owner login of a partner account, shown once to the tenant's admins",
    security,
    request: { params: s.ServiceParam },
    responses: {
      200: jsonResponse(z.object({ credentials: z.record(z.string(), z.unknown()) }), 'The credentials'),
      ...commonErrors,
      ...conflictError,
    },
  }),
  async (c) => {
    const { tenantId, service } = c.req.valid('param');
    tenantAccess(caller(c), tenantId, 'admin');
    const [row] = await callerDb(c, tenantId, (tx) =>
      tx`select private.reveal_service_credentials(${tenantId}, ${service}) as sealed`
    );
    if (!row.sealed) throw conflict('credentials_unavailable', 'No credentials to show: none yet, or already shown once');
    return c.json({ credentials: await decryptJson(row.sealed) }, 200);
  },
);

// ---------------------------------------------------------------- outbound webhooks

const ENDPOINT_COLUMNS = 'id, url, description, event_types, enabled, disabled_reason, consecutive_failures, created_at, updated_at';

function checkTarget(url: string | undefined): void {
  const problem = url === undefined ? null : webhookTargetProblem(url);
  if (problem) throw unprocessable('The request is not valid', { fields: [{ field: 'url', message: problem }] });
}

app.openapi(
  createRoute({
    method: 'post',
    path: '/{tenantId}/webhooks',
    summary: 'Register a webhook endpoint (admins); its signing secret is shown this once',
    security,
    request: { params: s.TenantIdParam, body: jsonBody(s.CreateEndpointBody) },
    responses: { 201: jsonResponse(s.EndpointSchema.extend({ secret: z.string() }), 'The endpoint and its secret'), ...commonErrors },
  }),
  async (c) => {
    const { tenantId } = c.req.valid('param');
    const body = c.req.valid('json');
    tenantAccess(caller(c), tenantId, 'admin', { write: true });
    checkTarget(body.url);
    const { secret, sealed } = await newEndpointSecret();
    const [endpoint] = await callerDb(c, tenantId, (tx) =>
      tx`
        insert into public.webhook_endpoints (tenant_id, url, description, event_types, secret_encrypted)
        values (${tenantId}, ${body.url}, ${body.description ?? null}, ${body.event_types}, ${sealed})
        returning ${tx.unsafe(ENDPOINT_COLUMNS)}
      `
    );
    return c.json({ ...endpoint, secret } as never, 201);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/{tenantId}/webhooks',
    summary: "The tenant's webhook endpoints (admins)",
    security,
    request: { params: s.TenantIdParam },
    responses: { 200: jsonResponse(z.object({ items: z.array(s.EndpointSchema) }), 'Endpoints'), ...commonErrors },
  }),
  async (c) => {
    const { tenantId } = c.req.valid('param');
    tenantAccess(caller(c), tenantId, 'admin');
    const items = await callerDb(c, tenantId, (tx) =>
      tx`select ${tx.unsafe(ENDPOINT_COLUMNS)} from public.webhook_endpoints where tenant_id = ${tenantId} order by created_at`
    );
    return c.json({ items } as never, 200);
  },
);

app.openapi(
  createRoute({
    method: 'patch',
    path: '/{tenantId}/webhooks/{endpointId}',
    summary: 'Change or re-enable an endpoint (admins)',
    security,
    request: { params: s.EndpointParam, body: jsonBody(s.UpdateEndpointBody) },
    responses: { 200: jsonResponse(s.EndpointSchema, 'The endpoint'), ...commonErrors },
  }),
  async (c) => {
    const { tenantId, endpointId } = c.req.valid('param');
    const body = c.req.valid('json');
    tenantAccess(caller(c), tenantId, 'admin', { write: true });
    checkTarget(body.url);
    const [endpoint] = await callerDb(c, tenantId, (tx) =>
      tx`
        update public.webhook_endpoints set
          url = coalesce(${body.url ?? null}::text, url),
          description = case when ${'description' in body} then ${body.description ?? null}::text else description end,
          event_types = coalesce(${body.event_types ?? null}::text[], event_types),
          enabled = coalesce(${body.enabled ?? null}::boolean, enabled)
        where tenant_id = ${tenantId} and id = ${endpointId}
        returning ${tx.unsafe(ENDPOINT_COLUMNS)}
      `
    );
    if (!endpoint) throw notFound('Webhook endpoint');
    return c.json(endpoint as never, 200);
  },
);

app.openapi(
  createRoute({
    method: 'delete',
    path: '/{tenantId}/webhooks/{endpointId}',
    summary: 'Remove an endpoint and its pending deliveries (admins)',
    security,
    request: { params: s.EndpointParam },
    responses: { 204: { description: 'Removed' }, ...commonErrors },
  }),
  async (c) => {
    const { tenantId, endpointId } = c.req.valid('param');
    tenantAccess(caller(c), tenantId, 'admin', { write: true });
    const deleted = await callerDb(c, tenantId, (tx) =>
      tx`delete from public.webhook_endpoints where tenant_id = ${tenantId} and id = ${endpointId} returning id`
    );
    if (!deleted.length) throw notFound('Webhook endpoint');
    return c.body(null, 204);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/{tenantId}/webhooks/{endpointId}/deliveries',
    summary: "An endpoint's recent deliveries: status, attempts, last error (admins)",
    security,
    request: { params: s.EndpointParam },
    responses: { 200: jsonResponse(z.object({ items: z.array(s.DeliverySchema) }), 'Deliveries'), ...commonErrors },
  }),
  async (c) => {
    const { tenantId, endpointId } = c.req.valid('param');
    tenantAccess(caller(c), tenantId, 'admin');
    const items = await callerDb(c, tenantId, async (tx) => {
      const [endpoint] = await tx`select 1 from public.webhook_endpoints where tenant_id = ${tenantId} and id = ${endpointId}`;
      if (!endpoint) throw notFound('Webhook endpoint');
      return await tx`select * from private.webhook_deliveries_for(${tenantId}, ${endpointId})`;
    });
    return c.json({ items } as never, 200);
  },
);

// ---------------------------------------------------------------- audit

app.openapi(
  createRoute({
    method: 'get',
    path: '/{tenantId}/audit',
    summary: "Read the tenant's audit trail, newest first (admins)",
    security,
    request: { params: s.TenantIdParam, query: s.AuditQuery },
    responses: { 200: jsonResponse(s.page(s.AuditEntrySchema), 'A page of audit entries'), ...commonErrors },
  }),
  async (c) => {
    const { tenantId } = c.req.valid('param');
    const q = c.req.valid('query');
    tenantAccess(caller(c), tenantId, 'admin');
    const before = cursorOrFail(q.cursor, 1, (v) => /^\d{1,18}$/.test(v));
    const rows = await callerDb(c, tenantId, (tx) =>
      tx`
        select id::text, table_name, record_key, action, actor_user_id, actor_role,
               old_data, new_data, changed_fields, created_at
        from public.audit_logs
        where tenant_id = ${tenantId}
          and (${q.table_name ?? null}::text is null or table_name = ${q.table_name ?? null}::text)
          and (${q.action ?? null}::text is null or action = ${q.action ?? null}::text)
          and (${before?.[0] ?? null}::bigint is null or id < ${before?.[0] ?? null}::bigint)
        order by audit_logs.id desc -- the column, not the text alias of the select list
        limit ${q.limit + 1}
      `
    );
    const items = rows.slice(0, q.limit);
    const last = items.at(-1);
    return c.json({ items, next: rows.length > q.limit && last ? encodeCursor([last.id]) : null } as never, 200);
  },
);
