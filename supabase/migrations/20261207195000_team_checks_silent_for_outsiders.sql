-- The checks on team references say nothing to a caller who may not make the write
-- (review of 20261207186000 and 20261207189000, issue 14).
--
-- Both run before the row-level policies refuse a write. actions_name_existing_teams
-- answered an outsider naming another tenant's id 422 for a team that tenant does not
-- have and the policy's refusal for one it has (and locked that team's row):
-- an oracle of another tenant's teams. team_member_is_staff answered 409 not_staff when
-- the person named is a customer of the tenant and the policy's refusal otherwise: to an
-- outsider, or to a customer of the tenant (who may not see other customers), an oracle
-- of who is a customer there. Now the first returns at once for an API caller outside the
-- tenant (private.outside_tenant, as the plan checks do), and the second for any API
-- caller who is neither a platform admin nor an admin of the tenant.

-- Redefined (20261207186000_team_actions_name_a_team.sql): silent for outsiders.
create or replace function private.actions_name_existing_teams() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_pos int;
  v_team uuid;
begin
  if jsonb_typeof(new.actions) is distinct from 'array' then
    return new; -- not a list of actions: the table's check constraint says so
  end if;
  -- An API caller outside the tenant: the policies refuse the write as for an id nobody
  -- has; which teams the tenant has is not theirs to learn, nor its rows to lock.
  if private.outside_tenant(new.tenant_id) then
    return new;
  end if;
  for v_pos, v_team in
    select a.n - 1, (a.v ->> 'team_id')::uuid
    from jsonb_array_elements(new.actions) with ordinality as a(v, n)
    where a.v ->> 'type' = 'set_team' and jsonb_typeof(a.v -> 'team_id') = 'string'
      -- not an id (the check constraint says so): not read as one here
      and (a.v ->> 'team_id') ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
    order by 2, 1
  loop
    perform 1 from public.teams t where t.tenant_id = new.tenant_id and t.id = v_team for key share;
    if not found then
      raise exception 'The action names a team the tenant does not have' using errcode = 'PT422',
        detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object('fields', jsonb_build_array(
          jsonb_build_object('field', 'actions.' || v_pos || '.team_id', 'message', 'is not a team of the tenant'))))::text;
    end if;
  end loop;
  return new;
end;
$$;

-- Redefined (20261207189000_teams_are_staff.sql): only for those who manage the tenant's teams.
create or replace function private.team_member_is_staff() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_role text;
begin
  -- Only for a caller who may manage the tenant's teams (the service role, a platform
  -- admin, an admin of the tenant): to anyone else the policies refuse the write as for
  -- an id nobody has; whether a person is a customer there is not theirs to learn.
  if pg_catalog.current_setting('role', true) in ('anon', 'authenticated')
     and not (private.is_platform_admin() or new.tenant_id = any (private.tenant_ids('admin'))) then
    return new;
  end if;
  select m.role into v_role from public.memberships m
  where m.tenant_id = new.tenant_id and m.user_id = new.user_id
  for share;
  -- No member at all: the foreign key says so.
  if v_role = 'user' then
    raise exception 'Only staff of the tenant (agents and admins) can be on a team' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'not_staff', 'details', jsonb_build_object('user_id', new.user_id))::text;
  end if;
  return new;
end;
$$;
