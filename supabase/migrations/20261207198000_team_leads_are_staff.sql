-- A team's lead is staff too (review of this stop's diff, issue 14; 20261207189000 made
-- team members staff).
--
-- A customer could still be named a team's lead, and an agent demoted to customer stayed
-- the lead of their teams: listed to every member through teams.lead_user_id, which the
-- memberships table hides from customers. Now naming a customer as lead is refused with
-- 409 `not_staff` (the lead's membership read FOR SHARE NOWAIT, as a team row is held: a
-- change of that membership under way answers 503 `retry` rather than waiting against the
-- lock order), only for callers who may manage the tenant's teams, and a demotion to
-- customer also clears the person's leads (the membership, then the teams: its lock
-- order). Customers leading a team now stop.

create function private.team_lead_is_staff() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_role text;
begin
  if new.lead_user_id is null or (tg_op = 'UPDATE' and new.lead_user_id is not distinct from old.lead_user_id) then
    return new;
  end if;
  -- As team_member_is_staff (20261207195000): said only to those who manage the teams.
  if pg_catalog.current_setting('role', true) in ('anon', 'authenticated')
     and not (private.is_platform_admin() or new.tenant_id = any (private.tenant_ids('admin'))) then
    return new;
  end if;
  begin
    select m.role into v_role from public.memberships m
    where m.tenant_id = new.tenant_id and m.user_id = new.lead_user_id
    for share nowait;
  exception when lock_not_available then
    raise exception 'The lead''s membership is being changed; retry in a moment' using errcode = 'PT503',
      detail = jsonb_build_object('code', 'retry')::text;
  end;
  -- No member at all: the foreign key says so.
  if v_role = 'user' then
    raise exception 'Only staff of the tenant (agents and admins) can lead a team' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'not_staff', 'details', jsonb_build_object('user_id', new.lead_user_id))::text;
  end if;
  return new;
end;
$$;
revoke all on function private.team_lead_is_staff() from public, anon, authenticated;
create trigger team_lead_is_staff before insert or update of lead_user_id on public.teams
  for each row execute function private.team_lead_is_staff();

-- Redefined (20261207189000_teams_are_staff.sql): a demotion also clears the person's leads.
create or replace function private.drop_teams_on_demotion() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.role = 'user' and old.role <> 'user' then
    delete from public.team_members tm where tm.tenant_id = new.tenant_id and tm.user_id = new.user_id;
    update public.teams t set lead_user_id = null where t.tenant_id = new.tenant_id and t.lead_user_id = new.user_id;
  end if;
  return null;
end;
$$;

update public.teams t set lead_user_id = null
from public.memberships m
where m.tenant_id = t.tenant_id and m.user_id = t.lead_user_id and m.role = 'user';
