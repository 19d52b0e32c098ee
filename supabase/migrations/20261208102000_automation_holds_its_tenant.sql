-- An automation job checked that its tenant was active without holding the row: a
-- suspension committing while the job waited for its ticket's lock went unseen, and the
-- rules' actions (an assignment, a status change, a reply queued for Chatwoot, webhook
-- events) were written into a read-only tenant. The check now holds the tenant in share
-- mode until the job commits, as ticket assignment does since 20261207196000: a
-- suspension waits for the job, or the job sees it (the tenant first, as the lock order
-- has it).

-- Redefined (20261207140000_timed_rules_wait_as_the_rule_says.sql): the tenant held.
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
  v_current boolean := true;
  -- When a timed rule's wait is judged: when its sweep judged it, or now if later.
  v_now timestamptz := greatest(now(), (p_payload ->> 'swept_at')::timestamptz);
begin
  if cardinality(v_chain) >= 5 then
    return jsonb_build_object('applied', 0, 'failed', 0, 'stopped', 1);
  end if;
  -- A read-only (suspended) or deleted tenant gets no automated writes. Held in share
  -- mode until the job commits: a suspension waits for it, or it sees the suspension.
  if not exists (select 1 from public.tenants x where x.id = v_tenant and x.status = 'active' for share of x) then
    return jsonb_build_object('applied', 0, 'failed', 0, 'inactive_tenant', 1);
  end if;
  -- The ticket is locked before any action (level 5 of the lock order), so conditions
  -- are checked against the state the actions change, and an action that takes a later
  -- lock (the outbox's, for emit_webhook) never holds it while waiting for the ticket.
  select * into v_ticket from public.tickets t where t.tenant_id = v_tenant and t.id = v_ticket_id for no key update;
  if not found or v_ticket.deleted_at is not null or v_ticket.merged_into_id is not null then
    return jsonb_build_object('applied', 0, 'failed', 0);
  end if;
  if p_payload ? 'message_id' then
    select jsonb_build_object('content', m.content, 'type', m.type, 'author', case
        -- Chatwoot's people are no platform users: the side its handler named.
        when m.author_id is null then coalesce((select case sd.side when 'staff' then 'staff' else 'requester' end
                                                from private.ticket_message_sides sd
                                                where sd.tenant_id = m.tenant_id and sd.message_id = m.id), 'system')
        when m.author_id = v_ticket.created_by then 'requester'
        when exists (select 1 from public.memberships ms where ms.tenant_id = m.tenant_id and ms.user_id = m.author_id
                     and ms.role in ('agent', 'admin')) then 'staff'
        else 'customer' end)
    into v_message
    from public.ticket_messages m where m.tenant_id = v_tenant and m.id = (p_payload ->> 'message_id')::uuid;
  end if;

  -- A time-based event is one wait, begun at `since`: the job runs after the sweep saw
  -- it (the next worker call, a backoff, the ticket's earlier jobs), and by then the wait
  -- may be over (the customer answered, staff reopened it). Its rules then match nothing.
  -- A job queued before `since` rode along is taken as it comes.
  if v_timed and p_payload ? 'since' then
    v_current := case v_event
      when 'ticket.pending_for' then
        v_ticket.status = 'pending' and v_ticket.sla_paused_at = (p_payload ->> 'since')::timestamptz
      else
        v_ticket.status in ('open', 'pending', 'escalated') and exists (
          select 1 from (
            select x.id, x.author_id, x.created_at from public.ticket_messages x
            where x.tenant_id = v_tenant and x.ticket_id = v_ticket_id and x.type = 'message'
              and not exists (select 1 from private.automation_messages a where a.tenant_id = x.tenant_id and a.message_id = x.id)
            order by x.created_at desc limit 1
          ) m
          where m.created_at = (p_payload ->> 'since')::timestamptz
            and (exists (select 1 from public.memberships s
                         where s.tenant_id = v_tenant and s.user_id = m.author_id and s.role in ('agent', 'admin'))
                 or exists (select 1 from private.ticket_message_sides sd
                            where sd.tenant_id = v_tenant and sd.message_id = m.id and sd.side = 'staff')))
    end;
  end if;

  for v_rule in
    select * from public.automation_rules r
    where r.tenant_id = v_tenant and r.event = v_event and r.active
      and (v_only is null or r.id = v_only) and r.id <> all (v_chain)
    order by r.position, r.created_at, r.id
  loop
    continue when exists (select 1 from public.automation_runs x
                          where x.tenant_id = v_tenant and x.rule_id = v_rule.id and x.event_id = v_event_id);
    -- A timed rule whose wait was lengthened after its job was queued: not due under the
    -- rule as it is. Nothing is recorded, so the sweep queues the wait again when it is.
    continue when v_timed and v_current and p_payload ? 'since' and not (
      (p_payload ->> 'since')::timestamptz <= v_now - make_interval(mins => coalesce(v_rule.after_minutes, 0))
      and (v_event <> 'ticket.pending_for'
           or private.business_minutes_between((p_payload ->> 'since')::timestamptz, v_now,
                (private.sla_policy_for(v_tenant, v_ticket.team_id, v_ticket.priority)).business_hours)
              >= coalesce(v_rule.after_minutes, 0)));
    v_matched := v_current and private.automation_conditions_hold(v_rule.conditions,
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
    exit when not found or v_ticket.deleted_at is not null or v_ticket.merged_into_id is not null;
  end loop;
  return jsonb_build_object('applied', v_applied, 'failed', v_failed);
end;
$$;
