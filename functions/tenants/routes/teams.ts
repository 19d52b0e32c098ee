// Teams and their members (admins write; every member reads), including automatic
// ticket assignment per team and the team that receives a department's tickets.
import { createRoute, z } from '@hono/zod-openapi';
import { callerDb } from '../../../shared/auth/context.ts';
import { apiKeyScope } from '../../../shared/auth/api-keys.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { notFound } from '../../../shared/errors.ts';
import { commonErrors, conflictError, errorResponse, jsonBody, jsonResponse } from '../../../shared/schemas/common.ts';
import type { Checked, Column, Selected, Tables } from '../../../shared/rows.ts';
import * as s from '../schemas.ts';
import { security, type TenantsApp } from './common.ts';

const TEAM_COLUMNS = [
  'id',
  'tenant_id',
  'name',
  'department',
  'description',
  'lead_user_id',
  'auto_assign',
  'receives_department_tickets',
  'created_at',
  'updated_at',
] as const satisfies readonly Column<'teams'>[];
type TeamRow = Checked<
  Selected<'teams', typeof TEAM_COLUMNS>,
  { department: z.infer<typeof s.DepartmentSchema>; auto_assign: z.infer<typeof s.AutoAssignSchema> }
>;
type TeamMemberRow = { user_id: string } & Pick<Tables<'users'>, 'email' | 'first_name' | 'last_name'>;

export function registerTeams(app: TenantsApp): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/{tenantId}/teams',
      summary: "List a tenant's teams",
      ...apiKeyScope('teams:read'),
      middleware: needs.tenantRole('user', { scope: 'teams:read' }),
      request: { params: s.TenantIdParam },
      responses: { 200: jsonResponse(z.object({ items: z.array(s.TeamSchema) }), 'Teams'), ...commonErrors },
    }),
    async (c) => {
      const { tenantId } = c.req.valid('param');
      const items = await callerDb(
        c,
        tenantId,
        (tx) =>
          tx<TeamRow>`select ${tx.columns(TEAM_COLUMNS)} from public.teams where tenant_id = ${tenantId} order by lower(name)`,
      );
      return c.json({ items }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/{tenantId}/teams',
      summary: 'Create a team (admins); the lead must be a member',
      security,
      middleware: needs.tenantRole('admin', { write: true }),
      request: { params: s.TenantIdParam, body: jsonBody(s.CreateTeamBody) },
      responses: { 201: jsonResponse(s.TeamSchema, 'The new team'), ...commonErrors, ...conflictError },
    }),
    async (c) => {
      const { tenantId } = c.req.valid('param');
      const body = c.req.valid('json');
      const [team] = await callerDb(c, tenantId, (tx) =>
        tx<TeamRow>`
          insert into public.teams (tenant_id, name, department, description, lead_user_id, auto_assign,
                                    receives_department_tickets)
          values (${tenantId}, ${body.name}, ${body.department}, ${body.description ?? null}, ${body.lead_user_id ?? null},
                  ${body.auto_assign}, ${body.receives_department_tickets})
          returning ${tx.columns(TEAM_COLUMNS)}
        `);
      return c.json(team, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/{tenantId}/teams/{teamId}',
      summary: 'Read a team with its members',
      ...apiKeyScope('teams:read'),
      middleware: needs.tenantRole('user', { scope: 'teams:read' }),
      request: { params: s.TeamParam },
      responses: {
        200: jsonResponse(s.TeamSchema.extend({ members: z.array(s.TeamMemberSchema) }), 'The team'),
        ...commonErrors,
      },
    }),
    async (c) => {
      const { tenantId, teamId } = c.req.valid('param');
      const team = await callerDb(c, tenantId, async (tx) => {
        const [t] = await tx<TeamRow | undefined>`
          select ${tx.columns(TEAM_COLUMNS)} from public.teams where tenant_id = ${tenantId} and id = ${teamId}
        `;
        if (!t) return undefined;
        const members = await tx<TeamMemberRow>`
          select tm.user_id, u.email, u.first_name, u.last_name
          from public.team_members tm join public.users u on u.id = tm.user_id
          where tm.tenant_id = ${tenantId} and tm.team_id = ${teamId}
          order by lower(u.email)
        `;
        return { ...t, members };
      });
      if (!team) throw notFound('Team');
      return c.json(team, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/{tenantId}/teams/{teamId}',
      summary: 'Update a team (admins)',
      security,
      middleware: needs.tenantRole('admin', { write: true }),
      request: { params: s.TeamParam, body: jsonBody(s.UpdateTeamBody) },
      responses: { 200: jsonResponse(s.TeamSchema, 'The team'), ...commonErrors, ...conflictError },
    }),
    async (c) => {
      const { tenantId, teamId } = c.req.valid('param');
      const body = c.req.valid('json');
      const [team] = await callerDb(c, tenantId, (tx) =>
        tx<TeamRow | undefined>`
          update public.teams set
            name = coalesce(${body.name ?? null}::text, name),
            department = coalesce(${body.department ?? null}::text, department),
            description = case when ${'description' in body} then ${body.description ?? null}::text else description end,
            lead_user_id = case when ${'lead_user_id' in body} then ${body.lead_user_id ?? null}::uuid else lead_user_id end,
            auto_assign = coalesce(${body.auto_assign ?? null}::text, auto_assign),
            receives_department_tickets = coalesce(${
          body.receives_department_tickets ?? null
        }::boolean, receives_department_tickets)
          where tenant_id = ${tenantId} and id = ${teamId}
          returning ${tx.columns(TEAM_COLUMNS)}
        `);
      if (!team) throw notFound('Team');
      return c.json(team, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/{tenantId}/teams/{teamId}',
      summary: 'Delete a team with its memberships, its own SLA policies and canned responses (admins)',
      description: 'Its settled tickets keep their due dates and are left with no team.',
      security,
      middleware: needs.tenantRole('admin', { write: true }),
      request: { params: s.TeamParam },
      responses: {
        204: { description: 'Deleted' },
        ...commonErrors,
        409: errorResponse(
          '`team_has_open_tickets`: tickets not settled are on the team (`details.open_tickets`; 20261207127000); ' +
            '`team_in_use`: macros or automation rules move tickets to it (`details.macros`, `details.automation_rules`; ' +
            '20261207186000); `canned_response_in_use`: they send one of its templates (20261207210000): change or ' +
            'delete those first',
        ),
      },
    }),
    async (c) => {
      const { tenantId, teamId } = c.req.valid('param');
      const deleted = await callerDb(
        c,
        tenantId,
        (tx) => tx`delete from public.teams where tenant_id = ${tenantId} and id = ${teamId} returning id`,
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
      middleware: needs.tenantRole('admin', { write: true }),
      request: { params: s.TeamParam, body: jsonBody(s.AddTeamMemberBody) },
      responses: {
        201: jsonResponse(s.TeamMemberSchema, 'Added'),
        ...commonErrors,
        409: errorResponse(
          '`already_exists`: already on the team; `not_staff`: a customer (teams are agents and admins: a demotion to ' +
            'customer takes the person off every team, 20261207189000)',
        ),
      },
    }),
    async (c) => {
      const { tenantId, teamId } = c.req.valid('param');
      const { user_id } = c.req.valid('json');
      const member = await callerDb(c, tenantId, async (tx) => {
        const [team] = await tx`select 1 from public.teams where tenant_id = ${tenantId} and id = ${teamId}`;
        if (!team) return undefined;
        await tx`insert into public.team_members (tenant_id, team_id, user_id) values (${tenantId}, ${teamId}, ${user_id})`;
        const [m] = await tx<TeamMemberRow>`
          select id as user_id, email, first_name, last_name from public.users where id = ${user_id}
        `;
        return m;
      });
      if (!member) throw notFound('Team');
      return c.json(member, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/{tenantId}/teams/{teamId}/members/{userId}',
      summary: 'Remove a member from a team (admins)',
      security,
      middleware: needs.tenantRole('admin', { write: true }),
      request: { params: s.TeamMemberParam },
      responses: { 204: { description: 'Removed' }, ...commonErrors },
    }),
    async (c) => {
      const { tenantId, teamId, userId } = c.req.valid('param');
      const deleted = await callerDb(c, tenantId, (tx) =>
        tx`
          delete from public.team_members where tenant_id = ${tenantId} and team_id = ${teamId} and user_id = ${userId}
          returning id
        `);
      if (!deleted.length) throw notFound('Team member');
      return c.body(null, 204);
    },
  );
}
