-- A macro's or an automation rule's set_team names a team the tenant has, and a team named
-- by one is not deleted (review of teams, issue 14).
--
-- A set_team action was checked for its id's form only: a macro or rule could name a team
-- that does not exist (mistyped, or another tenant's), and deleting a team left the
-- actions naming it in place. Applied, the action fails on the tickets' composite foreign
-- key: a macro answers 422, and a rule, whose actions are all or nothing, rolls back its
-- other actions with it at every event, for ever, saying nothing to the admin who deleted
-- the team. Now a macro or rule is written only when each team its set_team actions name
-- is the tenant's (422 naming `actions.<n>.team_id`; the team row taken FOR KEY SHARE, so
-- a deletion running at the same time waits and then sees the new action), and a team
-- named by any is refused with 409 `team_in_use` listing them: change or delete those
-- first. A tenant deleted outright takes everything along as before.

-- Refuses a set_team action naming a team the tenant does not have.
create function private.actions_name_existing_teams() returns trigger
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
revoke all on function private.actions_name_existing_teams() from public, anon, authenticated;
create trigger actions_name_existing_teams before insert or update of actions on public.macros
  for each row execute function private.actions_name_existing_teams();
create trigger actions_name_existing_teams before insert or update of actions on public.automation_rules
  for each row execute function private.actions_name_existing_teams();

-- Redefined (20261207127000_teams_with_open_tickets_kept.sql): a team a macro or rule
-- names is kept too.
create or replace function private.team_delete_guard() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_open int;
  v_macros jsonb;
  v_rules jsonb;
begin
  -- The tenant's own deletion (a cascade): everything goes.
  if not exists (select 1 from public.tenants t where t.id = old.tenant_id) then
    return old;
  end if;
  select count(*) into v_open from public.tickets t
  where t.tenant_id = old.tenant_id and t.team_id = old.id
    and t.deleted_at is null and t.status not in ('resolved', 'closed');
  if v_open > 0 then
    raise exception 'The team still has % open ticket(s): move them to another team first', v_open
      using errcode = 'PT409',
        detail = jsonb_build_object('code', 'team_has_open_tickets', 'details', jsonb_build_object('open_tickets', v_open))::text;
  end if;
  select jsonb_agg(m.id order by m.id) into v_macros from public.macros m
  where m.tenant_id = old.tenant_id and exists (
    select 1 from jsonb_array_elements(m.actions) a
    where a ->> 'type' = 'set_team' and jsonb_typeof(a -> 'team_id') = 'string' and (a ->> 'team_id')::uuid = old.id);
  select jsonb_agg(r.id order by r.id) into v_rules from public.automation_rules r
  where r.tenant_id = old.tenant_id and exists (
    select 1 from jsonb_array_elements(r.actions) a
    where a ->> 'type' = 'set_team' and jsonb_typeof(a -> 'team_id') = 'string' and (a ->> 'team_id')::uuid = old.id);
  if v_macros is not null or v_rules is not null then
    raise exception 'Macros or automation rules move tickets to this team: change or delete them first'
      using errcode = 'PT409',
        detail = jsonb_build_object('code', 'team_in_use', 'details', jsonb_build_object(
          'macros', coalesce(v_macros, '[]'::jsonb), 'automation_rules', coalesce(v_rules, '[]'::jsonb)))::text;
  end if;
  return old;
end;
$$;
