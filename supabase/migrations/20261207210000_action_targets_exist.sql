-- A macro's or an automation rule's actions name templates, people and tags that can be
-- used, and a template they send is not deleted under them (review of the ticket
-- workflow's macros and rules, issue 14).
--
-- Only set_team's team was checked against the tenant (20261207186000). A send_canned
-- naming a template that does not exist (mistyped, another tenant's) or, in a rule, a
-- personal one; an assign naming someone who is not staff of the tenant; a tag with a
-- comma or a leading space, or one named twice, were all written (201), and failed only
-- when used: a macro answered 404 or 422 on every apply, and a rule, whose actions are all
-- or nothing, rolled back its other actions at every event, for ever, saying nothing to
-- the admin. A rule adding ["vip","vip"] put the tag on a ticket twice. Deleting a
-- template a macro or rule sends did the same to them.
--
-- Now each is a 422 on write naming `actions.<n>.<field>`, on both paths (the API also
-- drops a tag named twice in one action, as it does for a ticket's tags), and deleting a
-- template that a tenant-wide macro or a rule sends (or, for a personal one, its owner's
-- own macro) is a 409 `canned_response_in_use` listing them (a team's templates go with
-- the team: the team's deletion is refused the same way). A
-- personal template may be sent only by a personal macro of its owner, where applying it
-- can find it. Like the team check, nothing is said to an API caller outside the tenant.
-- What is not checked here: an assignee removed or demoted later (the rule then fails
-- its run, recorded, as before).

create function private.actions_name_existing_targets() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_pos int;
  v_action jsonb;
  v_id uuid;
  v_canned public.canned_responses;
  v_role text;
  v_errors jsonb := '[]';
  v_uuid constant text := '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
begin
  if jsonb_typeof(new.actions) is distinct from 'array' then
    return new; -- not a list of actions: the table's check constraint says so
  end if;
  -- An API caller outside the tenant: the policies refuse the write as for an id nobody
  -- has; which templates and people the tenant has is not theirs to learn.
  if private.outside_tenant(new.tenant_id) then
    return new;
  end if;
  -- In the order of the ids they name, so two writers take the rows' locks alike.
  for v_pos, v_action in
    select a.n - 1, a.v from jsonb_array_elements(new.actions) with ordinality as a(v, n)
    where jsonb_typeof(a.v) = 'object'
    order by coalesce(a.v ->> 'canned_response_id', a.v ->> 'user_id', ''), a.n
  loop
    case v_action ->> 'type'
    when 'add_tags', 'remove_tags' then
      if jsonb_typeof(v_action -> 'tags') = 'array' then
        if exists (select 1 from jsonb_array_elements(v_action -> 'tags') t
                   where jsonb_typeof(t) = 'string' and not (t #>> '{}') ~ '^[^,\s][^,]*$') then
          v_errors := v_errors || jsonb_build_array(jsonb_build_object('field', 'actions.' || v_pos || '.tags',
            'message', 'a tag has no commas and does not start with a space'));
        elsif (select count(*) <> count(distinct t) from jsonb_array_elements(v_action -> 'tags') t) then
          v_errors := v_errors || jsonb_build_array(jsonb_build_object('field', 'actions.' || v_pos || '.tags',
            'message', 'names a tag more than once'));
        end if;
      end if;
    when 'send_canned' then
      if (v_action ->> 'canned_response_id') ~ v_uuid then
        v_id := (v_action ->> 'canned_response_id')::uuid;
        -- FOR KEY SHARE: a deletion running at the same time waits, then sees this action.
        select c.* into v_canned from public.canned_responses c
        where c.tenant_id = new.tenant_id and c.id = v_id for key share;
        if not found then
          v_errors := v_errors || jsonb_build_array(jsonb_build_object('field', 'actions.' || v_pos || '.canned_response_id',
            'message', 'is not a canned response of the tenant'));
        elsif v_canned.scope = 'personal' and (tg_table_name = 'automation_rules'
              or not coalesce((to_jsonb(new) ->> 'scope') = 'personal'
                              and (to_jsonb(new) ->> 'owner_id')::uuid = v_canned.owner_id, false)) then
          v_errors := v_errors || jsonb_build_array(jsonb_build_object('field', 'actions.' || v_pos || '.canned_response_id',
            'message', case when tg_table_name = 'automation_rules'
                         then 'is a personal canned response: a rule sends tenant or team templates only'
                         else 'is a personal canned response: only a personal macro of its owner sends it' end));
        end if;
      end if;
    when 'assign' then
      if jsonb_typeof(v_action -> 'user_id') = 'string' and (v_action ->> 'user_id') ~ v_uuid then
        select m.role into v_role from public.memberships m
        where m.tenant_id = new.tenant_id and m.user_id = (v_action ->> 'user_id')::uuid;
        if v_role is null or v_role not in ('agent', 'admin') then
          v_errors := v_errors || jsonb_build_array(jsonb_build_object('field', 'actions.' || v_pos || '.user_id',
            'message', 'is not an agent or admin of the tenant'));
        end if;
      end if;
    else
      null;
    end case;
  end loop;
  if jsonb_array_length(v_errors) > 0 then
    raise exception 'An action names what the tenant does not have or cannot use' using errcode = 'PT422',
      detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object('fields', (
        select jsonb_agg(e order by e ->> 'field') from jsonb_array_elements(v_errors) e)))::text;
  end if;
  return new;
end;
$$;
revoke all on function private.actions_name_existing_targets() from public, anon, authenticated;
create trigger actions_name_existing_targets before insert or update of actions, scope, owner_id on public.macros
  for each row execute function private.actions_name_existing_targets();
create trigger actions_name_existing_targets before insert or update of actions on public.automation_rules
  for each row execute function private.actions_name_existing_targets();

-- Refuses deleting a template a macro or rule sends; the tenant's deletion, and a personal
-- template leaving with its owner's membership (their personal macros go with it), take
-- it along as before.
create function private.canned_response_delete_guard() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_macros jsonb;
  v_rules jsonb;
begin
  if not exists (select 1 from public.tenants t where t.id = old.tenant_id) then
    return old;
  end if;
  if old.scope = 'personal' and not exists (
    select 1 from public.memberships m where m.tenant_id = old.tenant_id and m.user_id = old.owner_id) then
    return old;
  end if;
  -- Tenant-wide macros, and a personal template's owner's own: an agent's personal macro
  -- sending a shared template holds nothing (admins can neither see nor change it; as
  -- for teams, 20261207196000): applied, it answers its owner 404.
  select jsonb_agg(m.id order by m.id) into v_macros from public.macros m
  where m.tenant_id = old.tenant_id and (m.scope = 'tenant' or m.owner_id = old.owner_id) and exists (
    select 1 from jsonb_array_elements(m.actions) a
    where a ->> 'type' = 'send_canned' and lower(a ->> 'canned_response_id') = old.id::text);
  select jsonb_agg(r.id order by r.id) into v_rules from public.automation_rules r
  where r.tenant_id = old.tenant_id and exists (
    select 1 from jsonb_array_elements(r.actions) a
    where a ->> 'type' = 'send_canned' and lower(a ->> 'canned_response_id') = old.id::text);
  if v_macros is not null or v_rules is not null then
    raise exception 'Macros or automation rules send this canned response: change or delete them first'
      using errcode = 'PT409',
        detail = jsonb_build_object('code', 'canned_response_in_use', 'details', jsonb_build_object(
          'canned_response_id', old.id,
          'macros', coalesce(v_macros, '[]'::jsonb), 'automation_rules', coalesce(v_rules, '[]'::jsonb)))::text;
  end if;
  return old;
end;
$$;
revoke all on function private.canned_response_delete_guard() from public, anon, authenticated;
create trigger canned_response_delete_guard before delete on public.canned_responses
  for each row execute function private.canned_response_delete_guard();
