-- Automation rules after review (issue 16 §1):
--   * run_automation locks the ticket before any action and before checking conditions:
--     an action taking a later lock of the order (the outbox's advisory lock, for
--     emit_webhook) no longer holds it while a writer of the ticket waits for it and the
--     rule then waits for the ticket — a deadlock;
--   * a deadlock, serialization failure, lock or statement timeout inside a rule is no
--     longer recorded as the rule's failure (which the once-per-event rule would have
--     made final): it rolls the evaluation back and the job retries;
--   * suspended and deleted tenants are read-only: no rule writes there, and the sweep
--     skips them;
--   * the sweep never adds again an event whose job exists (pending or dead): a failing
--     time-based evaluation dies after its attempts instead of being revived every minute;
--   * "no customer reply" waits on staff's last public word only: a rule's own reminder
--     (no author) or another customer's message does not start a new wait, so a reminder
--     rule does not re-arm itself;
--   * a personal canned response is its owner's alone: a rule's send_canned refuses it.
-- And followers: an agent or admin demoted to customer keeps no follows (their access
-- through a follow was staff's; with customer followers on, it would have outlived the
-- demotion).

create or replace function private.run_automation(p_payload jsonb) returns jsonb
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
  -- A read-only (suspended) or deleted tenant gets no automated writes.
  if not exists (select 1 from public.tenants x where x.id = v_tenant and x.status = 'active') then
    return jsonb_build_object('applied', 0, 'failed', 0, 'inactive_tenant', 1);
  end if;
  -- The ticket is locked before any action (level 5 of the lock order), so conditions
  -- are checked against the state the actions change, and an action that takes a later
  -- lock (the outbox's, for emit_webhook) never holds it while waiting for the ticket.
  select * into v_ticket from public.tickets t where t.tenant_id = v_tenant and t.id = v_ticket_id for no key update;
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
      -- A passing condition (deadlock, serialization, lock or statement timeout) is not
      -- the rule's failure: the whole evaluation rolls back and the job retries it.
      if sqlstate in ('40001', '40P01', '55P03', '57014') then
        raise;
      end if;
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

create or replace function private.run_automation_sweep(p_now timestamptz default now(), p_limit int default 500) returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_rule public.automation_rules;
  v_due record;
  v_added int := 0;
begin
  for v_rule in
    select r.* from public.automation_rules r
    join public.tenants x on x.id = r.tenant_id and x.status = 'active'
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
                (private.sla_policy_for(t.tenant_id, t.team_id, t.priority)).business_hours) >= v_rule.after_minutes
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
          and exists (select 1 from public.memberships s
                      where s.tenant_id = t.tenant_id and s.user_id = m.author_id and s.role in ('agent', 'admin'))
          and m.created_at <= p_now - make_interval(mins => v_rule.after_minutes)
      ) w
      where not exists (
        select 1 from private.jobs j
        where j.job_key = 'automation-timed:' || md5(v_rule.id::text || ':' || w.ticket_id::text || ':' || w.since::text)::uuid)
      and not exists (
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

create or replace function private.automation_apply_action(p_rule public.automation_rules, p_ticket_id uuid, p_event text, p_action jsonb)
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
      update public.tickets set status = p_action ->> 'status'
      where tenant_id = t and id = p_ticket_id and status is distinct from p_action ->> 'status';
    when 'set_priority' then
      update public.tickets set priority = p_action ->> 'priority'
      where tenant_id = t and id = p_ticket_id and priority is distinct from p_action ->> 'priority';
    when 'set_team' then
      update public.tickets set team_id = (p_action ->> 'team_id')::uuid
      where tenant_id = t and id = p_ticket_id and team_id is distinct from (p_action ->> 'team_id')::uuid;
    when 'assign' then
      update public.tickets set assigned_to = (p_action ->> 'user_id')::uuid
      where tenant_id = t and id = p_ticket_id and assigned_to is distinct from (p_action ->> 'user_id')::uuid;
    when 'add_tags' then
      update public.tickets
      set tags = tags || array(select x from jsonb_array_elements_text(p_action -> 'tags') x where not x = any (tags))
      where tenant_id = t and id = p_ticket_id
        and not tags @> array(select jsonb_array_elements_text(p_action -> 'tags'));
    when 'remove_tags' then
      update public.tickets
      set tags = array(select x from unnest(tags) x
                       where not x = any (array(select jsonb_array_elements_text(p_action -> 'tags'))))
      where tenant_id = t and id = p_ticket_id
        and tags && array(select jsonb_array_elements_text(p_action -> 'tags'));
    when 'add_note', 'reply' then
      insert into public.ticket_messages (tenant_id, ticket_id, type, content)
      values (t, p_ticket_id, case p_action ->> 'type' when 'add_note' then 'note' else 'message' end, p_action ->> 'content');
    when 'send_canned' then
      if exists (select 1 from public.canned_responses c
                 where c.tenant_id = t and c.id = (p_action ->> 'canned_response_id')::uuid and c.scope = 'personal') then
        raise exception 'canned response % is personal: a rule sends tenant or team templates only',
          p_action ->> 'canned_response_id' using errcode = 'P0001';
      end if;
      v_text := btrim(private.render_canned_response(t, (p_action ->> 'canned_response_id')::uuid, p_ticket_id));
      if v_text is null or v_text = '' then
        raise exception 'canned response % not found or empty', p_action ->> 'canned_response_id' using errcode = 'P0002';
      end if;
      insert into public.ticket_messages (tenant_id, ticket_id, type, content) values (t, p_ticket_id, 'message', v_text);
    when 'set_custom_field' then
      -- Through the tickets' one writer of values (private.write_ticket_custom_fields):
      -- checked against the field's type and options, a hidden field's value filed away
      -- from customers, null removing it.
      update public.tickets set custom_fields = custom_fields || jsonb_build_object(p_action ->> 'key', p_action -> 'value')
      where tenant_id = t and id = p_ticket_id;
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

create function private.drop_follows_on_demotion() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.role = 'user' and old.role <> 'user' then
    delete from public.ticket_followers f where f.tenant_id = new.tenant_id and f.user_id = new.user_id;
  end if;
  return null;
end;
$$;
revoke all on function private.drop_follows_on_demotion() from public, anon, authenticated;
create trigger drop_follows_on_demotion after update of role on public.memberships
  for each row execute function private.drop_follows_on_demotion();
