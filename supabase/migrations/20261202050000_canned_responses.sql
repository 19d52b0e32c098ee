-- Canned responses (issue 16 §3): reply templates an agent picks by short code. Each one
-- belongs to the whole tenant, to one team, or to one agent (personal). The body may hold
-- allow-listed placeholders, filled inside the caller's own transaction under RLS
-- (private.render_canned_response), so a template can never reveal what its user could
-- not read anyway.

-- ------------------------------------------------------------------ placeholders

-- The placeholders a body may use: `{{ticket.number}}`, `{{ticket.title}}`,
-- `{{requester.name}}`, `{{agent.name}}` (spaces inside the braces allowed). Anything else
-- in double braces is a typo the author should hear about when saving, not a customer
-- when it is sent. Pure; used in the table's check constraint.
create function private.canned_body_placeholders_ok(p_body text) returns boolean
language sql immutable
set search_path = ''
as $$
  select not exists (
    select 1 from pg_catalog.regexp_matches(p_body, '\{\{\s*([^{}]*?)\s*\}\}', 'g') m
    where m[1] not in ('ticket.number', 'ticket.title', 'requester.name', 'agent.name')
  );
$$;
revoke all on function private.canned_body_placeholders_ok(text) from public, anon;
grant execute on function private.canned_body_placeholders_ok(text) to authenticated, service_role;

-- ------------------------------------------------------------------ the table

create table public.canned_responses (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  -- Who may use it: everyone on staff (tenant), the members of one team (team), its
  -- owner alone (personal).
  scope text not null check (scope in ('tenant', 'team', 'personal')),
  team_id uuid,
  owner_id uuid,
  short_code text not null check (short_code ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
  title text not null check (char_length(btrim(title)) between 1 and 200),
  body text not null check (char_length(body) between 1 and 10000),
  created_by uuid references public.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, team_id) references public.teams (tenant_id, id) on delete cascade,
  -- A personal template leaves with its owner's membership.
  foreign key (tenant_id, owner_id) references public.memberships (tenant_id, user_id) on delete cascade,
  check ((scope = 'tenant' and team_id is null and owner_id is null)
      or (scope = 'team' and team_id is not null and owner_id is null)
      or (scope = 'personal' and team_id is null and owner_id is not null)),
  constraint canned_responses_placeholders check (private.canned_body_placeholders_ok(body))
);
-- One short code per place it is used from: the tenant, a team, an agent.
create unique index canned_responses_code_key on public.canned_responses (tenant_id, scope, team_id, owner_id, short_code)
  nulls not distinct;
create index canned_responses_team_idx on public.canned_responses (tenant_id, team_id) where team_id is not null;
create index canned_responses_owner_idx on public.canned_responses (tenant_id, owner_id) where owner_id is not null;
create index canned_responses_created_by_idx on public.canned_responses (created_by);

create trigger set_updated_at before update on public.canned_responses
  for each row execute function private.set_updated_at();
select private.enable_audit('public.canned_responses');

-- ------------------------------------------------------------------ who sees and writes what

alter table public.canned_responses enable row level security;
revoke all on public.canned_responses from anon, authenticated;
grant select, insert (tenant_id, scope, team_id, owner_id, short_code, title, body, created_by),
  update (short_code, title, body), delete
  on public.canned_responses to authenticated;

-- Staff only (customers never see templates): tenant-wide ones every agent; a team's its
-- members and the tenant's admins; a personal one its owner alone, while on staff.
create policy canned_responses_select on public.canned_responses for select to authenticated
  using (
    (select private.is_platform_admin())
    or (scope = 'tenant' and tenant_id = any ((select private.tenant_ids('agent'))::uuid[]))
    or (scope = 'team' and (
      tenant_id = any ((select private.tenant_ids('admin'))::uuid[])
      or (tenant_id::text || '/' || team_id::text) = any ((select private.my_team_keys())::text[])))
    or (scope = 'personal' and owner_id = (select private.current_user_id())
        and tenant_id = any ((select private.tenant_ids('agent'))::uuid[]))
  );
-- Admins keep the tenant's and the teams' templates; each agent their own, in an active
-- tenant.
create policy canned_responses_insert on public.canned_responses for insert to authenticated
  with check (
    (select private.is_platform_admin())
    or (scope in ('tenant', 'team') and tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]))
    or (scope = 'personal' and owner_id = (select private.current_user_id())
        and tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]))
  );
create policy canned_responses_update on public.canned_responses for update to authenticated
  using (
    (select private.is_platform_admin())
    or (scope in ('tenant', 'team') and tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]))
    or (scope = 'personal' and owner_id = (select private.current_user_id())
        and tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]))
  );
create policy canned_responses_delete on public.canned_responses for delete to authenticated
  using (
    (select private.is_platform_admin())
    or (scope in ('tenant', 'team') and tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]))
    or (scope = 'personal' and owner_id = (select private.current_user_id())
        and tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]))
  );

-- ------------------------------------------------------------------ filling a template

-- The template's body with its placeholders filled for one ticket, read as the caller
-- (security invoker: RLS decides which template, ticket and people it may read). Null when
-- the caller cannot see the template or the ticket, which the API answers with 404. A
-- person the caller cannot read, or one without a name, fills in as an empty string.
-- Values go through regexp_replace, whose replacement treats `\` specially: escaped.
create function private.render_canned_response(p_tenant_id uuid, p_canned_id uuid, p_ticket_id uuid)
returns text
language sql stable security invoker
set search_path = ''
as $$
  with v as (
    select c.body, t.number, t.title,
      coalesce((select coalesce(nullif(btrim(u.display_name), ''), nullif(btrim(concat_ws(' ', u.first_name, u.last_name)), ''))
                from public.users u where u.id = t.created_by), '') as requester_name,
      coalesce((select coalesce(nullif(btrim(u.display_name), ''), nullif(btrim(concat_ws(' ', u.first_name, u.last_name)), ''))
                from public.users u where u.id = private.current_user_id()), '') as agent_name
    from public.canned_responses c
    join public.tickets t on t.tenant_id = c.tenant_id and t.id = p_ticket_id
    where c.tenant_id = p_tenant_id and c.id = p_canned_id
  )
  select pg_catalog.regexp_replace(pg_catalog.regexp_replace(pg_catalog.regexp_replace(pg_catalog.regexp_replace(v.body,
    '\{\{\s*ticket\.number\s*\}\}', v.number::text, 'g'),
    '\{\{\s*ticket\.title\s*\}\}', pg_catalog.replace(v.title, '\', '\\'), 'g'),
    '\{\{\s*requester\.name\s*\}\}', pg_catalog.replace(v.requester_name, '\', '\\'), 'g'),
    '\{\{\s*agent\.name\s*\}\}', pg_catalog.replace(v.agent_name, '\', '\\'), 'g')
  from v;
$$;
revoke all on function private.render_canned_response(uuid, uuid, uuid) from public, anon;
grant execute on function private.render_canned_response(uuid, uuid, uuid) to authenticated;
