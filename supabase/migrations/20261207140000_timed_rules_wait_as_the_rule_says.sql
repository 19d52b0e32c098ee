-- A time-based rule waits as long as it says when its job runs (review, issue 14).
--
-- The sweep queues a timed rule's job once the wait has lasted the rule's after_minutes;
-- the job runs later (the next worker call, a backoff, the ticket's earlier jobs). An
-- admin who lengthened the wait in between ("pending for 60 minutes" made 2 days) still
-- had the ticket closed after an hour: the job checked that the wait was the same one,
-- not that it had lasted as long as the rule now says. The job now checks the rule as it
-- is: a wait not yet long enough records nothing (the job is done and deleted), and the
-- sweep queues it again once it is. Business minutes count as the sweep counts them, up
-- to the time the sweep judged at or now, whichever is later (the sweep's p_now, which
-- the job now carries as `swept_at`, is never later than now but where a test sweeps
-- ahead of the clock).

-- Redefined (20261207111000_automation_sees_chatwoot_and_shares_sweeps.sql): a timed
-- rule's wait is checked against its after_minutes as it is now.
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
  -- A read-only (suspended) or deleted tenant gets no automated writes.
  if not exists (select 1 from public.tenants x where x.id = v_tenant and x.status = 'active') then
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


-- Redefined (20261207111000_automation_sees_chatwoot_and_shares_sweeps.sql): the job
-- carries the time the wait was judged at (`swept_at`); the time zone and date style as
-- they were (a redefinition drops the settings an alter added).
create or replace function private.run_automation_sweep(p_now timestamptz default now(), p_limit int default 500) returns int
language plpgsql volatile security definer
set search_path = ''
-- The waits' ids (md5 of since::text) the same whatever the session's (20261207108000).
set timezone = 'UTC'
set datestyle = 'ISO, MDY'
as $$
declare
  v_rule public.automation_rules;
  v_due record;
  v_added int := 0;
  -- A tenant's share of a run: a fifth, so one tenant's backlog leaves room for others;
  -- the second pass hands out what the first left.
  v_share int;
  v_tenant uuid;
  v_in_tenant int := 0;
  -- A tenant reached its share in the first pass: only then is there a second.
  v_capped boolean := false;
begin
  for v_pass in 1..2 loop
    exit when v_added >= p_limit or (v_pass = 2 and not v_capped);
    v_share := case v_pass when 1 then greatest(1, p_limit / 5) else p_limit end;
    v_tenant := null;
    for v_rule in
      select r.* from public.automation_rules r
      join public.tenants x on x.id = r.tenant_id and x.status = 'active'
      where r.active and r.after_minutes is not null and r.event in ('ticket.pending_for', 'ticket.no_customer_reply')
      -- Tenants in an order that changes every minute, so no tenant always comes first.
      order by pg_catalog.md5(r.tenant_id::text || pg_catalog.date_trunc('minute', p_now)::text), r.tenant_id, r.position, r.id
    loop
      exit when v_added >= p_limit;
      if v_rule.tenant_id is distinct from v_tenant then
        v_tenant := v_rule.tenant_id;
        v_in_tenant := 0;
      end if;
      continue when v_in_tenant >= v_share;
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
            select x.id, x.author_id, x.created_at from public.ticket_messages x
            where x.tenant_id = t.tenant_id and x.ticket_id = t.id and x.type = 'message'
              and not exists (select 1 from private.automation_messages a where a.tenant_id = x.tenant_id and a.message_id = x.id)
            order by x.created_at desc limit 1
          ) m
          where v_rule.event = 'ticket.no_customer_reply'
            and t.tenant_id = v_rule.tenant_id and t.status in ('open', 'pending', 'escalated') and t.deleted_at is null
            and (exists (select 1 from public.memberships s
                         where s.tenant_id = t.tenant_id and s.user_id = m.author_id and s.role in ('agent', 'admin'))
                 or exists (select 1 from private.ticket_message_sides sd
                            where sd.tenant_id = t.tenant_id and sd.message_id = m.id and sd.side = 'staff'))
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
        limit least(p_limit - v_added, v_share - v_in_tenant)
      loop
        perform private.add_job('automation',
          jsonb_build_object('tenant_id', v_rule.tenant_id, 'ticket_id', v_due.ticket_id, 'event', v_rule.event,
                             'event_id', v_due.event_id, 'rule_id', v_rule.id, 'chain', '[]'::jsonb,
                             'since', v_due.since, 'swept_at', p_now),
          'automation-timed:' || v_due.event_id, null, null, 'automation:' || v_due.ticket_id, 'preserve_run_at');
        v_added := v_added + 1;
        v_in_tenant := v_in_tenant + 1;
        v_capped := v_capped or v_in_tenant >= v_share;
      end loop;
    end loop;
  end loop;
  return v_added;
end;
$$;
