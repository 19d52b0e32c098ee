-- Automation rules (issue 16 §1): per tenant, an event, conditions over the ticket (and
-- the message or the change that raised the event), and ordered actions from the
-- macros' allow-list plus `emit_webhook`.
--
-- How a rule runs:
--   * Capture. A trigger on tickets, ticket_messages and ticket_events adds one
--     `automation` job per event, in the transaction of the change, when the tenant has
--     an active rule for that event (otherwise it costs one index probe). The job's
--     queue is the ticket's (`automation:<ticket id>`), so one ticket's events are
--     evaluated in the order they committed.
--   * Evaluation (private.run_automation, from the job). The tenant's active rules for
--     the event, by position: conditions read the ticket as it is now (plus what the
--     event carries: the changed fields, the message), each matching rule applies its
--     actions in order through the same statements a PostgREST write runs (so the status
--     machine, the hand-off job, the SLA triggers, notifications, the outbox and the
--     audit trail apply), and the next rule sees the ticket as the previous one left it.
--     A rule's actions are all-or-nothing (a subtransaction): a refused action rolls the
--     rule back and is recorded in automation_runs with the action's position and the
--     error; the other rules still run.
--   * The actor. While a rule acts, the request claims name it (issuer `automation`,
--     subject `rule:<id>`, role service_role), so every audit row it causes shows the rule.
--   * Loops. Events a rule's actions raise carry the chain of rules that caused them
--     (private.automation_chain); a rule in the chain is not applied again, and a chain
--     stops at 5 rules — so no rule triggers itself, and two rules cannot ping-pong.
--   * Exactly once. automation_runs is unique per (rule, event id): an evaluation is one
--     transaction, so a retried job either finds nothing recorded or everything.
--   * Time-based rules (`ticket.pending_for`: pending for N business minutes under the
--     ticket's SLA policy hours; `ticket.no_customer_reply`: the last public message is
--     not the requester's and is N minutes old) are found by the automation sweep
--     (every minute, private.run_automation_sweep) and evaluated like the others, once
--     per pending stint or unanswered message (a deterministic event id).

-- ------------------------------------------------------------------ checks

create function private.automation_condition_ok(p_condition jsonb) returns boolean
language sql immutable
set search_path = ''
as $$
  select jsonb_typeof(p_condition) = 'object'
    and not exists (select 1 from jsonb_object_keys(p_condition) k where k not in ('field', 'op', 'value'))
    and coalesce(p_condition ->> 'field' ~ ('^(status|priority|department|team_id|assigned_to|requester_id|title|description|tags'
      || '|changed|message\.content|message\.type|message\.author|custom_fields\.[a-z][a-z0-9_]{0,49})$'), false)
    and coalesce(case p_condition ->> 'op'
      when 'is_empty' then not p_condition ? 'value'
      when 'is_not_empty' then not p_condition ? 'value'
      when 'in' then jsonb_typeof(p_condition -> 'value') = 'array'
        and jsonb_array_length(p_condition -> 'value') between 1 and 50
        and not exists (select 1 from jsonb_array_elements(p_condition -> 'value') v
                        where jsonb_typeof(v) not in ('string', 'number', 'boolean'))
      when 'not_in' then jsonb_typeof(p_condition -> 'value') = 'array'
        and jsonb_array_length(p_condition -> 'value') between 1 and 50
        and not exists (select 1 from jsonb_array_elements(p_condition -> 'value') v
                        where jsonb_typeof(v) not in ('string', 'number', 'boolean'))
      when 'eq' then jsonb_typeof(p_condition -> 'value') in ('string', 'number', 'boolean')
      when 'neq' then jsonb_typeof(p_condition -> 'value') in ('string', 'number', 'boolean')
      when 'contains' then jsonb_typeof(p_condition -> 'value') = 'string'
        and char_length(p_condition ->> 'value') between 1 and 200
      when 'not_contains' then jsonb_typeof(p_condition -> 'value') = 'string'
        and char_length(p_condition ->> 'value') between 1 and 200
      else false end, false)
    and octet_length(p_condition::text) <= 4096;
$$;

-- {all: [...], any: [...]}: every condition of `all` and, when `any` has some, one of
-- them. Up to 20 in each.
create function private.automation_conditions_ok(p_conditions jsonb) returns boolean
language sql immutable
set search_path = ''
as $$
  select jsonb_typeof(p_conditions) = 'object'
    and not exists (select 1 from jsonb_object_keys(p_conditions) k where k not in ('all', 'any'))
    and not exists (
      select 1 from unnest(array['all', 'any']) g
      where p_conditions ? g and (
        jsonb_typeof(p_conditions -> g) <> 'array' or jsonb_array_length(p_conditions -> g) > 20
        or exists (select 1 from jsonb_array_elements(p_conditions -> g) c where not private.automation_condition_ok(c))));
$$;

-- The macros' actions (private.macro_actions_ok) plus emit_webhook {label}: an outbound
-- `automation.triggered` event naming the rule, the ticket and the label.
create function private.automation_actions_ok(p_actions jsonb) returns boolean
language sql immutable
set search_path = ''
as $$
  select jsonb_typeof(p_actions) = 'array'
    and jsonb_array_length(p_actions) between 1 and 20
    and not exists (
      select 1 from jsonb_array_elements(p_actions) a
      where not coalesce(case
        when jsonb_typeof(a) = 'object' and a ->> 'type' = 'emit_webhook' then
          (select array_agg(k order by k) from jsonb_object_keys(a) k) = '{label,type}'
          and jsonb_typeof(a -> 'label') = 'string' and char_length(a ->> 'label') between 1 and 100
        else private.macro_actions_ok(jsonb_build_array(a)) end, false));
$$;

-- The table's checks run as the writer: pure functions, callable by the API roles.
revoke all on function private.automation_condition_ok(jsonb) from public, anon;
revoke all on function private.automation_conditions_ok(jsonb) from public, anon;
revoke all on function private.automation_actions_ok(jsonb) from public, anon;
grant execute on function private.automation_condition_ok(jsonb) to authenticated, service_role;
grant execute on function private.automation_conditions_ok(jsonb) to authenticated, service_role;
grant execute on function private.automation_actions_ok(jsonb) to authenticated, service_role;

-- ------------------------------------------------------------------ the tables

create table public.automation_rules (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  name text not null check (char_length(btrim(name)) between 1 and 100),
  description text check (char_length(description) <= 1000),
  event text not null check (event in ('ticket.created', 'ticket.updated', 'message.created', 'ticket.sla_breached',
                                       'ticket.pending_for', 'ticket.no_customer_reply')),
  -- Time-based events only: how long (business minutes for pending_for, wall-clock
  -- minutes for no_customer_reply), up to 30 days.
  after_minutes int check (after_minutes between 1 and 43200),
  conditions jsonb not null default '{}'::jsonb,
  actions jsonb not null,
  -- Rules of one event run by position, then age.
  position int not null default 0 check (position between 0 and 10000),
  active boolean not null default true,
  created_by uuid references public.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  constraint automation_rules_name_key unique (tenant_id, name),
  constraint automation_rules_timing check ((event in ('ticket.pending_for', 'ticket.no_customer_reply')) = (after_minutes is not null)),
  constraint automation_rules_conditions_valid check (private.automation_conditions_ok(conditions)),
  constraint automation_rules_actions_valid check (private.automation_actions_ok(actions))
);
-- The capture trigger's probe and the evaluation's list.
create index automation_rules_event_idx on public.automation_rules (tenant_id, event, position, created_at) where active;
-- The sweep's list of time-based rules across tenants.
create index automation_rules_timed_idx on public.automation_rules (event) where active and after_minutes is not null;
create index automation_rules_created_by_idx on public.automation_rules (created_by);
create trigger set_updated_at before update on public.automation_rules
  for each row execute function private.set_updated_at();
select private.enable_audit('public.automation_rules');

alter table public.automation_rules enable row level security;
revoke all on public.automation_rules from anon, authenticated;
grant select, insert (tenant_id, name, description, event, after_minutes, conditions, actions, position, active, created_by),
  update (name, description, event, after_minutes, conditions, actions, position, active), delete
  on public.automation_rules to authenticated;

-- Admins keep the tenant's rules; nobody else sees them (their conditions can name
-- customers and teams, their actions canned texts).
create policy automation_rules_select on public.automation_rules for select to authenticated
  using ((select private.is_platform_admin()) or tenant_id = any ((select private.tenant_ids('admin'))::uuid[]));
create policy automation_rules_insert on public.automation_rules for insert to authenticated
  with check ((select private.is_platform_admin()) or tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]));
create policy automation_rules_update on public.automation_rules for update to authenticated
  using ((select private.is_platform_admin()) or tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]))
  with check ((select private.is_platform_admin()) or tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]));
create policy automation_rules_delete on public.automation_rules for delete to authenticated
  using ((select private.is_platform_admin()) or tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]));

-- What each rule did: one row per rule and event it matched — applied, or failed with
-- the refused action and the error — written only by private.run_automation.
create table public.automation_runs (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id bigint generated always as identity,
  rule_id uuid not null,
  ticket_id uuid not null,
  event text not null,
  event_id uuid not null,
  outcome text not null check (outcome in ('applied', 'failed', 'not_matched')),
  actions_applied int not null default 0,
  -- failed: the 0-based position of the refused action, and why.
  failed_action int,
  error text check (char_length(error) <= 2000),
  created_at timestamptz not null default now(),
  primary key (tenant_id, id),
  constraint automation_runs_once unique (tenant_id, rule_id, event_id),
  foreign key (tenant_id, rule_id) references public.automation_rules (tenant_id, id) on delete cascade,
  foreign key (tenant_id, ticket_id) references public.tickets (tenant_id, id) on delete cascade
);
create index automation_runs_rule_idx on public.automation_runs (tenant_id, rule_id, id desc);
create index automation_runs_ticket_idx on public.automation_runs (tenant_id, ticket_id);
create index automation_runs_failed_idx on public.automation_runs (tenant_id, rule_id, id desc) where outcome = 'failed';
select private.enable_audit('public.automation_runs');

alter table public.automation_runs enable row level security;
revoke all on public.automation_runs from anon, authenticated;
revoke all on sequence public.automation_runs_id_seq from anon, authenticated;
grant select on public.automation_runs to authenticated;
create policy automation_runs_select on public.automation_runs for select to authenticated
  using ((select private.is_platform_admin()) or tenant_id = any ((select private.tenant_ids('admin'))::uuid[]));

-- ------------------------------------------------------------------ capture

-- One `automation` job per event of a tenant with an active rule for it.
create function private.automation_capture() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_event text;
  v_ticket uuid;
  v_payload jsonb;
  v_chain text := nullif(current_setting('private.automation_chain', true), '');
begin
  -- Branches, not one CASE: each table's row has only its own columns.
  if tg_table_name = 'tickets' then
    v_event := case tg_op when 'INSERT' then 'ticket.created' else 'ticket.updated' end;
    v_ticket := new.id;
  elsif tg_table_name = 'ticket_messages' then
    v_event := 'message.created';
    v_ticket := new.ticket_id;
  else
    v_event := 'ticket.sla_breached';
    v_ticket := new.ticket_id;
  end if;
  if not exists (select 1 from public.automation_rules r
                 where r.tenant_id = new.tenant_id and r.event = v_event and r.active) then
    return null;
  end if;
  v_payload := jsonb_build_object('tenant_id', new.tenant_id, 'ticket_id', v_ticket, 'event', v_event,
    'event_id', gen_random_uuid(),
    'chain', coalesce(to_jsonb(string_to_array(v_chain, ',')), '[]'::jsonb));
  if tg_table_name = 'tickets' and tg_op = 'UPDATE' then
    if new.deleted_at is not null then
      return null;
    end if;
    v_payload := v_payload || jsonb_build_object('changed', (
      select coalesce(jsonb_agg(n.key order by n.key), '[]'::jsonb)
      from jsonb_each(to_jsonb(new)) n
      where n.key not in ('updated_at', 'search') and n.value is distinct from to_jsonb(old) -> n.key));
    if v_payload -> 'changed' = '[]'::jsonb then
      return null; -- activity only: not an event
    end if;
  elsif tg_table_name = 'ticket_messages' then
    v_payload := v_payload || jsonb_build_object('message_id', new.id);
  end if;
  perform private.add_job('automation', v_payload, null, null, null, 'automation:' || v_ticket);
  return null;
end;
$$;
revoke all on function private.automation_capture() from public, anon, authenticated;
create trigger automation_capture after insert or update on public.tickets
  for each row execute function private.automation_capture();
create trigger automation_capture after insert on public.ticket_messages
  for each row execute function private.automation_capture();
create trigger automation_capture after insert on public.ticket_events
  for each row when (new.type = 'sla_breached') execute function private.automation_capture();

-- ------------------------------------------------------------------ evaluation

-- What conditions read: the ticket's columns (requester_id names created_by), the
-- fields an update changed, the message of a message event (its author as `requester`,
-- `staff`, `customer` or `system`).
create function private.automation_subject(p_ticket public.tickets, p_changed jsonb, p_message jsonb) returns jsonb
language sql immutable
set search_path = ''
as $$
  select (to_jsonb(p_ticket) - 'search')
    || jsonb_build_object('requester_id', p_ticket.created_by, 'changed', coalesce(p_changed, '[]'::jsonb),
                          'message', p_message);
$$;

create function private.automation_condition_holds(p_subject jsonb, p_condition jsonb) returns boolean
language plpgsql immutable
set search_path = ''
as $$
declare
  v jsonb := p_subject #> string_to_array(p_condition ->> 'field', '.');
  w jsonb := p_condition -> 'value';
  v_empty boolean;
  v_hit boolean;
begin
  v_empty := v is null or v = 'null'::jsonb or v = '""'::jsonb or v = '[]'::jsonb;
  case p_condition ->> 'op'
    when 'is_empty' then return v_empty;
    when 'is_not_empty' then return not v_empty;
    when 'eq', 'neq' then
      v_hit := not v_empty and v = w;
    when 'in', 'not_in' then
      v_hit := not v_empty and case when jsonb_typeof(v) = 'array'
        then exists (select 1 from jsonb_array_elements(v) e where w @> jsonb_build_array(e))
        else w @> jsonb_build_array(v) end;
    when 'contains', 'not_contains' then
      v_hit := not v_empty and case when jsonb_typeof(v) = 'array'
        then v @> jsonb_build_array(w)
        else strpos(lower(v #>> '{}'), lower(w #>> '{}')) > 0 end;
    else
      return false;
  end case;
  return case when p_condition ->> 'op' in ('neq', 'not_in', 'not_contains') then not v_hit else v_hit end;
end;
$$;

create function private.automation_conditions_hold(p_conditions jsonb, p_subject jsonb) returns boolean
language sql immutable
set search_path = ''
as $$
  select not exists (select 1 from jsonb_array_elements(coalesce(p_conditions -> 'all', '[]')) c
                     where not private.automation_condition_holds(p_subject, c))
    and (jsonb_array_length(coalesce(p_conditions -> 'any', '[]')) = 0
         or exists (select 1 from jsonb_array_elements(p_conditions -> 'any') c
                    where private.automation_condition_holds(p_subject, c)));
$$;

revoke all on function private.automation_subject(public.tickets, jsonb, jsonb) from public, anon, authenticated;
revoke all on function private.automation_condition_holds(jsonb, jsonb) from public, anon, authenticated;
revoke all on function private.automation_conditions_hold(jsonb, jsonb) from public, anon, authenticated;

-- One action of a rule, with the statement a PostgREST write of it runs (the status
-- machine and the other ticket triggers apply; a team change leaves an unassigned
-- ticket to the team's auto-assignment job, as a direct team change does).
create function private.automation_apply_action(p_rule public.automation_rules, p_ticket_id uuid, p_event text, p_action jsonb)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  t uuid := p_rule.tenant_id;
  v_text text;
begin
  case p_action ->> 'type'
    when 'set_status' then
      update public.tickets set status = p_action ->> 'status' where tenant_id = t and id = p_ticket_id;
    when 'set_priority' then
      update public.tickets set priority = p_action ->> 'priority' where tenant_id = t and id = p_ticket_id;
    when 'set_team' then
      update public.tickets set team_id = (p_action ->> 'team_id')::uuid where tenant_id = t and id = p_ticket_id;
    when 'assign' then
      update public.tickets set assigned_to = (p_action ->> 'user_id')::uuid where tenant_id = t and id = p_ticket_id;
    when 'add_tags' then
      update public.tickets
      set tags = tags || array(select x from jsonb_array_elements_text(p_action -> 'tags') x where not x = any (tags))
      where tenant_id = t and id = p_ticket_id;
    when 'remove_tags' then
      update public.tickets
      set tags = array(select x from unnest(tags) x
                       where not x = any (array(select jsonb_array_elements_text(p_action -> 'tags'))))
      where tenant_id = t and id = p_ticket_id;
    when 'add_note', 'reply' then
      insert into public.ticket_messages (tenant_id, ticket_id, type, content)
      values (t, p_ticket_id, case p_action ->> 'type' when 'add_note' then 'note' else 'message' end, p_action ->> 'content');
    when 'send_canned' then
      v_text := btrim(private.render_canned_response(t, (p_action ->> 'canned_response_id')::uuid, p_ticket_id));
      if v_text is null or v_text = '' then
        raise exception 'canned response % not found or empty', p_action ->> 'canned_response_id' using errcode = 'P0002';
      end if;
      insert into public.ticket_messages (tenant_id, ticket_id, type, content) values (t, p_ticket_id, 'message', v_text);
    when 'emit_webhook' then
      perform private.emit_webhook_event(t, 'automation.triggered', 'ticket:' || p_ticket_id,
        jsonb_build_object('type', 'automation.triggered', 'tenant_id', t,
          'data', jsonb_build_object('rule_id', p_rule.id, 'rule_name', p_rule.name, 'label', p_action ->> 'label',
                                     'ticket_id', p_ticket_id, 'event', p_event),
          'occurred_at', to_char(clock_timestamp() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')));
    else
      raise exception 'unknown action %', p_action ->> 'type' using errcode = '22023';
  end case;
end;
$$;
revoke all on function private.automation_apply_action(public.automation_rules, uuid, text, jsonb) from public, anon, authenticated;

-- Evaluates one event (an `automation` job's payload). Returns counts.
create function private.run_automation(p_payload jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_tenant uuid := (p_payload ->> 'tenant_id')::uuid;
  v_ticket_id uuid := (p_payload ->> 'ticket_id')::uuid;
  v_event text := p_payload ->> 'event';
  v_event_id uuid := (p_payload ->> 'event_id')::uuid;
  v_only uuid := (p_payload ->> 'rule_id')::uuid;
  v_timed boolean := v_event in ('ticket.pending_for', 'ticket.no_customer_reply');
  v_chain uuid[] := array(select jsonb_array_elements_text(coalesce(p_payload -> 'chain', '[]'))::uuid);
  v_claims text := current_setting('request.jwt.claims', true);
  v_ticket public.tickets;
  v_message jsonb;
  v_rule public.automation_rules;
  v_action jsonb;
  v_i int;
  v_applied int := 0;
  v_failed int := 0;
  v_matched boolean;
begin
  if cardinality(v_chain) >= 5 then
    return jsonb_build_object('applied', 0, 'failed', 0, 'stopped', 1);
  end if;
  select * into v_ticket from public.tickets t where t.tenant_id = v_tenant and t.id = v_ticket_id;
  if not found or v_ticket.deleted_at is not null then
    return jsonb_build_object('applied', 0, 'failed', 0);
  end if;
  if p_payload ? 'message_id' then
    select jsonb_build_object('content', m.content, 'type', m.type, 'author', case
        when m.author_id is null then 'system'
        when m.author_id = v_ticket.created_by then 'requester'
        when exists (select 1 from public.memberships ms where ms.tenant_id = m.tenant_id and ms.user_id = m.author_id
                     and ms.role in ('agent', 'admin')) then 'staff'
        else 'customer' end)
    into v_message
    from public.ticket_messages m where m.tenant_id = v_tenant and m.id = (p_payload ->> 'message_id')::uuid;
  end if;

  for v_rule in
    select * from public.automation_rules r
    where r.tenant_id = v_tenant and r.event = v_event and r.active
      and (v_only is null or r.id = v_only) and r.id <> all (v_chain)
    order by r.position, r.created_at, r.id
  loop
    continue when exists (select 1 from public.automation_runs x
                          where x.tenant_id = v_tenant and x.rule_id = v_rule.id and x.event_id = v_event_id);
    v_matched := private.automation_conditions_hold(v_rule.conditions,
      private.automation_subject(v_ticket, p_payload -> 'changed', v_message));
    if not v_matched then
      -- A time-based event is looked for every minute: remember it was seen.
      if v_timed then
        insert into public.automation_runs (tenant_id, rule_id, ticket_id, event, event_id, outcome)
        values (v_tenant, v_rule.id, v_ticket_id, v_event, v_event_id, 'not_matched');
      end if;
      continue;
    end if;
    v_i := 0;
    begin
      perform set_config('request.jwt.claims', jsonb_build_object('role', 'service_role', 'iss', 'automation',
        'sub', 'rule:' || v_rule.id, 'tenant_id', v_tenant)::text, true);
      perform set_config('private.automation_chain', array_to_string(v_chain || v_rule.id, ','), true);
      for v_action in select a from jsonb_array_elements(v_rule.actions) a loop
        perform private.automation_apply_action(v_rule, v_ticket_id, v_event, v_action);
        v_i := v_i + 1;
      end loop;
      insert into public.automation_runs (tenant_id, rule_id, ticket_id, event, event_id, outcome, actions_applied)
      values (v_tenant, v_rule.id, v_ticket_id, v_event, v_event_id, 'applied', v_i);
      v_applied := v_applied + 1;
    exception when others then
      -- The rule's actions are undone (with the settings above); the failure is kept.
      insert into public.automation_runs (tenant_id, rule_id, ticket_id, event, event_id, outcome, failed_action, error)
      values (v_tenant, v_rule.id, v_ticket_id, v_event, v_event_id, 'failed', v_i, left(sqlerrm, 2000));
      v_failed := v_failed + 1;
    end;
    perform set_config('request.jwt.claims', coalesce(v_claims, ''), true);
    perform set_config('private.automation_chain', '', true);
    select * into v_ticket from public.tickets t where t.tenant_id = v_tenant and t.id = v_ticket_id;
    exit when not found or v_ticket.deleted_at is not null;
  end loop;
  return jsonb_build_object('applied', v_applied, 'failed', v_failed);
end;
$$;
revoke all on function private.run_automation(jsonb) from public, anon, authenticated;
grant execute on function private.run_automation(jsonb) to service_role;

-- ------------------------------------------------------------------ time-based rules

-- Finds tickets a time-based rule is due for and adds their evaluation jobs: pending
-- for the rule's business minutes (the ticket's SLA policy hours; wall clock without
-- them) since it entered pending; or waiting on the customer (the last public message
-- is not the requester's) for the rule's minutes. One event per stint — its id is
-- derived from the rule, the ticket and when the wait began — so a ticket is evaluated
-- once per wait, whatever the outcome. Returns the jobs added (up to p_limit).
create function private.run_automation_sweep(p_now timestamptz default now(), p_limit int default 500) returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_rule public.automation_rules;
  v_due record;
  v_added int := 0;
begin
  for v_rule in
    select * from public.automation_rules r
    where r.active and r.after_minutes is not null and r.event in ('ticket.pending_for', 'ticket.no_customer_reply')
    order by r.tenant_id, r.position, r.id
  loop
    exit when v_added >= p_limit;
    for v_due in
      select w.ticket_id, w.since,
             md5(v_rule.id::text || ':' || w.ticket_id::text || ':' || w.since::text)::uuid as event_id
      from (
        select t.id as ticket_id, t.sla_paused_at as since
        from public.tickets t
        where v_rule.event = 'ticket.pending_for'
          and t.tenant_id = v_rule.tenant_id and t.status = 'pending' and t.deleted_at is null
          and t.sla_paused_at <= p_now - make_interval(mins => v_rule.after_minutes)
          and private.business_minutes_between(t.sla_paused_at, p_now,
                (select s.business_hours from public.sla_policies s
                 where s.tenant_id = t.tenant_id and s.priority = t.priority)) >= v_rule.after_minutes
        union all
        select t.id, m.created_at
        from public.tickets t
        cross join lateral (
          select x.author_id, x.created_at from public.ticket_messages x
          where x.tenant_id = t.tenant_id and x.ticket_id = t.id and x.type = 'message'
          order by x.created_at desc limit 1
        ) m
        where v_rule.event = 'ticket.no_customer_reply'
          and t.tenant_id = v_rule.tenant_id and t.status in ('open', 'pending', 'escalated') and t.deleted_at is null
          and m.author_id is distinct from t.created_by
          and m.created_at <= p_now - make_interval(mins => v_rule.after_minutes)
      ) w
      where not exists (
        select 1 from public.automation_runs x
        where x.tenant_id = v_rule.tenant_id and x.rule_id = v_rule.id
          and x.event_id = md5(v_rule.id::text || ':' || w.ticket_id::text || ':' || w.since::text)::uuid)
      order by w.since
      limit p_limit - v_added
    loop
      perform private.add_job('automation',
        jsonb_build_object('tenant_id', v_rule.tenant_id, 'ticket_id', v_due.ticket_id, 'event', v_rule.event,
                           'event_id', v_due.event_id, 'rule_id', v_rule.id, 'chain', '[]'::jsonb),
        'automation-timed:' || v_due.event_id, null, null, 'automation:' || v_due.ticket_id, 'preserve_run_at');
      v_added := v_added + 1;
    end loop;
  end loop;
  return v_added;
end;
$$;
revoke all on function private.run_automation_sweep(timestamptz, int) from public, anon, authenticated;
grant execute on function private.run_automation_sweep(timestamptz, int) to service_role;

insert into private.job_schedules (name, task, every, next_run_at) values
  ('automation-sweep', 'automation-sweep', interval '1 minute', now());
