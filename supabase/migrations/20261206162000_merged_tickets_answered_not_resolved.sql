-- A merge keeps the first response, counts no resolution, and wakes no rule on the
-- closed source.
--
-- * The target's first response: only the message trigger sets first_response_at, as a
--   reply is inserted; the merge moves the source's messages by an UPDATE, so a staff
--   reply already in the source did not count in the target, which the SLA sweep then
--   breached for "no first response" (escalating it, posting its system message and
--   sending ticket.sla_breached) although its conversation held the answer. The target
--   now takes the source's first response when it has none (not before it was made).
-- * The source's resolution: closing stamps resolved_at, and the merge's close did too,
--   so every merged duplicate counted as a resolution of a few seconds in the statistics
--   (median resolution time) and showed a resolved_at it never had. A close by a merge
--   now keeps resolved_at as it was (a source resolved before keeps its own).
-- * The statistics: a merged ticket's times count no more (its first response is the
--   target's now, and it was not resolved), so one reply is not counted twice; the
--   tenants' durations are computed again from their tickets once, here, which drops
--   those of the tickets merged before.
-- * Rules on the source: the merge's own update is a ticket.updated with status closed,
--   and events queued for the source before it still ran; their actions then wrote on a
--   ticket that takes nothing new (a reply was refused, 409 ticket_merged, recorded as the
--   rule's failure, and an assignment or tags landed on the dead ticket). A merged ticket
--   now runs no rule, as a deleted one.

-- Redefined (20261206063000_second_round_review.sql): the target's first response.
create or replace function private.merge_tickets(p_tenant_id uuid, p_source_id uuid, p_target_id uuid)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_source public.tickets;
  v_target public.tickets;
begin
  if coalesce(private.role_in(p_tenant_id), 'user') = 'user'
     or p_tenant_id <> all (private.tenant_ids('agent', true)) and not private.is_platform_admin() then
    raise exception 'only staff merge tickets' using errcode = 'PT403';
  end if;
  if not private.can_see_ticket(p_tenant_id, p_source_id) or not private.can_see_ticket(p_tenant_id, p_target_id) then
    raise exception 'ticket not found' using errcode = 'PT404';
  end if;
  if p_source_id = p_target_id then
    raise exception 'a ticket cannot be merged into itself' using errcode = 'PT409';
  end if;
  perform 1 from public.tickets t where t.tenant_id = p_tenant_id and t.id in (p_source_id, p_target_id)
  order by t.id for no key update;
  select * into v_source from public.tickets t where t.tenant_id = p_tenant_id and t.id = p_source_id;
  select * into v_target from public.tickets t where t.tenant_id = p_tenant_id and t.id = p_target_id;
  if v_source.merged_into_id is not null or v_target.merged_into_id is not null
     or v_source.deleted_at is not null or v_target.deleted_at is not null then
    raise exception 'merged or deleted tickets cannot be merged' using errcode = 'PT409';
  end if;
  if v_target.status = 'closed' then
    raise exception 'reopen the target ticket before merging into it' using errcode = 'PT409';
  end if;
  -- The conversation moves to the target, whose requester reads it: only one person's
  -- tickets are merged.
  if v_source.created_by is distinct from v_target.created_by then
    raise exception 'tickets of different requesters cannot be merged' using errcode = 'PT409';
  end if;
  perform 1 from public.ticket_messages m where m.tenant_id = p_tenant_id and m.ticket_id = p_source_id
  order by m.id for no key update;
  perform 1 from public.attachments a where a.tenant_id = p_tenant_id and a.ticket_id = p_source_id
  order by a.id for no key update;
  update public.ticket_messages set ticket_id = p_target_id where tenant_id = p_tenant_id and ticket_id = p_source_id;
  update public.attachments set ticket_id = p_target_id where tenant_id = p_tenant_id and ticket_id = p_source_id;
  -- The source's first response is in the target's conversation now.
  if v_source.first_response_at is not null and v_target.first_response_at is null then
    update public.tickets set first_response_at = greatest(v_source.first_response_at, v_target.created_at)
    where tenant_id = p_tenant_id and id = p_target_id;
  end if;
  -- Its followers follow the target: a colleague who wrote in the source reads their
  -- messages there, and staff who followed it hear of it. An assignment's follow is a
  -- plain one there (the target has its own assignee); customers follow only where the
  -- tenant still lets them. Copied as they were added (who added them stays theirs).
  insert into public.ticket_followers (tenant_id, ticket_id, user_id, reason, added_by)
  -- Staff's follows are the merger's doing on the target (the notification names who
  -- did it); a customer's stay the adder's, whose to see and remove they are.
  select f.tenant_id, p_target_id, f.user_id, case when f.reason = 'assigned' then 'manual' else f.reason end,
         case when m.role = 'user' then f.added_by else private.current_user_id() end
  from public.ticket_followers f
  join public.memberships m on m.tenant_id = f.tenant_id and m.user_id = f.user_id
  where f.tenant_id = p_tenant_id and f.ticket_id = p_source_id
    and (m.role in ('agent', 'admin')
         or (f.reason = 'manual' and exists (select 1 from public.tenants t
                                             where t.id = p_tenant_id and t.settings -> 'customer_followers' = 'true'::jsonb)))
  order by f.user_id
  on conflict (tenant_id, ticket_id, user_id) do nothing;
  update public.tickets set status = 'closed', merged_into_id = p_target_id
  where tenant_id = p_tenant_id and id = p_source_id;
  insert into public.ticket_messages (tenant_id, ticket_id, type, content) values
    (p_tenant_id, p_target_id, 'system', format('Ticket #%s was merged into this ticket.', v_source.number)),
    (p_tenant_id, p_source_id, 'system', format('Merged into ticket #%s.', v_target.number));
end;
$$;

-- Redefined (20261206150000_first_response_follows_a_priority_change.sql): a close by a
-- merge stamps no resolution.
create or replace function private.tickets_before_update() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_window_days numeric;
begin
  if new.status is distinct from old.status then
    if new.merged_into_id is not null and old.merged_into_id is null then
      null; -- merging closes the ticket whatever its state
    elsif not exists (
      select 1 from private.ticket_status_transitions s where s.from_status = old.status and s.to_status = new.status
    ) then
      raise exception 'A % ticket cannot become %', old.status, new.status using errcode = 'PT409',
        detail = jsonb_build_object('code', 'invalid_transition', 'details', jsonb_build_object(
          'from', old.status, 'to', new.status, 'allowed', to_jsonb(private.allowed_ticket_transitions(old.status))));
    elsif old.status = 'closed' then
      select case when t.settings ->> 'reopen_window_days' ~ '^\d{1,4}(\.\d+)?$'
                  then (t.settings ->> 'reopen_window_days')::numeric else 7 end into v_window_days
      from public.tenants t where t.id = new.tenant_id;
      if old.closed_at + make_interval(secs => v_window_days * 86400) < now() then
        raise exception 'The ticket was closed more than % days ago and cannot be reopened', v_window_days
          using errcode = 'PT409',
          detail = jsonb_build_object('code', 'invalid_transition', 'details', jsonb_build_object(
            'from', old.status, 'to', new.status, 'allowed', '[]'::jsonb, 'reopen_window_days', v_window_days));
      end if;
    end if;
    case new.status
      when 'resolved' then new.resolved_at := now();
      when 'closed' then
        new.closed_at := now();
        if new.merged_into_id is null or old.merged_into_id is not null then
          new.resolved_at := coalesce(new.resolved_at, now());
        end if;
      when 'open' then
        if old.status in ('resolved', 'closed') then
          new.resolved_at := null;
          new.closed_at := null;
        end if;
      else null;
    end case;
  end if;
  if new.assigned_to is distinct from old.assigned_to then
    perform private.check_ticket_assignee(new.tenant_id, new.assigned_to);
  end if;
  if new.priority is distinct from old.priority or new.team_id is distinct from old.team_id then
    if (private.sla_policy_for(new.tenant_id, new.team_id, new.priority)).id is not null then
      if new.due_date is not distinct from old.due_date then
        new := private.apply_sla(new);
      else
        -- A due date set by the same update is kept; the first response still follows
        -- the policy that now governs the ticket, as on insert.
        new.first_response_due_at := (private.apply_sla(new)).first_response_due_at;
      end if;
    elsif (private.sla_policy_for(old.tenant_id, old.team_id, old.priority)).id is not null then
      -- No policy governs the ticket now: the old policy's targets go with it, as a
      -- ticket made under no policy has none (a due date set by hand under no policy
      -- before stays, as on insert, and one set by this update too).
      new.first_response_due_at := null;
      if new.due_date is not distinct from old.due_date then
        new.due_date := null;
      end if;
      new.next_response_due_at := null;
    end if;
  end if;
  return new;
end;
$$;

-- Redefined (20261206156000_rule_replies_keep_the_wait.sql): a merged ticket runs no rule
-- (checked when the job starts and after each rule, as deletion is).
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
        when m.author_id is null then 'system'
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
            select x.author_id, x.created_at from public.ticket_messages x
            where x.tenant_id = v_tenant and x.ticket_id = v_ticket_id and x.type = 'message'
              and not exists (select 1 from private.automation_messages a where a.tenant_id = x.tenant_id and a.message_id = x.id)
            order by x.created_at desc limit 1
          ) m
          where m.created_at = (p_payload ->> 'since')::timestamptz
            and exists (select 1 from public.memberships s
                        where s.tenant_id = v_tenant and s.user_id = m.author_id and s.role in ('agent', 'admin')))
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

-- Redefined (20261205160000_row_trigger_helpers_planned_once.sql): a merged ticket's first
-- response and resolution are not counted (its counts by status and priority still are).
create or replace function private.ticket_stats_change(p_old public.tickets, p_new public.tickets) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v record;
  v_tenant uuid := coalesce(p_new.tenant_id, p_old.tenant_id);
  -- A row counts unless it is absent (an insert's old, a delete's new) or soft-deleted.
  v_old boolean := p_old.tenant_id is not null and p_old.deleted_at is null;
  v_new boolean := p_new.tenant_id is not null and p_new.deleted_at is null;
  -- Whose times count: a merged ticket's are the target's.
  v_old_timed boolean := v_old and p_old.merged_into_id is null;
  v_new_timed boolean := v_new and p_new.merged_into_id is null;
begin
  -- Nothing while a tenant's own deletion cascades.
  if not (v_old or v_new) or not exists (select 1 from public.tenants t where t.id = v_tenant) then
    return;
  end if;
  for v in
    select d.which, d.k1, d.k2, d.bucket, sum(d.n)::bigint as n
    from (values
      (1, p_old.status, p_old.priority, null::int, -1, v_old),
      (1, p_new.status, p_new.priority, null::int, 1, v_new),
      (2, 'first_response', null::text,
          case when v_old_timed and p_old.first_response_at is not null
               then private.duration_bucket(extract(epoch from p_old.first_response_at - p_old.created_at)) end,
          -1, v_old_timed and p_old.first_response_at is not null),
      (2, 'first_response', null::text,
          case when v_new_timed and p_new.first_response_at is not null
               then private.duration_bucket(extract(epoch from p_new.first_response_at - p_new.created_at)) end,
          1, v_new_timed and p_new.first_response_at is not null),
      (2, 'resolution', null::text,
          case when v_old_timed and p_old.resolved_at is not null
               then private.duration_bucket(extract(epoch from p_old.resolved_at - p_old.created_at)) end,
          -1, v_old_timed and p_old.resolved_at is not null),
      (2, 'resolution', null::text,
          case when v_new_timed and p_new.resolved_at is not null
               then private.duration_bucket(extract(epoch from p_new.resolved_at - p_new.created_at)) end,
          1, v_new_timed and p_new.resolved_at is not null)
    ) d(which, k1, k2, bucket, n, wanted)
    where d.wanted
    group by d.which, d.k1, d.k2, d.bucket
    having sum(d.n) <> 0
    order by d.which, d.k1, d.k2, d.bucket
  loop
    if v.which = 1 then
      insert into private.ticket_counts as c (tenant_id, status, priority, n)
      values (v_tenant, v.k1, v.k2, v.n)
      on conflict (tenant_id, status, priority) do update set n = c.n + excluded.n;
    else
      insert into private.ticket_durations as d (tenant_id, kind, bucket, n)
      values (v_tenant, v.k1, v.bucket, v.n)
      on conflict (tenant_id, kind, bucket) do update set n = d.n + excluded.n;
    end if;
  end loop;
end;
$$;

-- Redefined (20261126101400_ticket_statistics.sql): a merge changes the counts also when
-- it changes nothing else (a source already closed keeps its status).
create or replace function private.ticket_stats_maintain() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE'
     and (old.status, old.priority, old.deleted_at, old.first_response_at, old.resolved_at, old.merged_into_id)
         is not distinct from (new.status, new.priority, new.deleted_at, new.first_response_at, new.resolved_at, new.merged_into_id) then
    return null;
  end if;
  perform private.ticket_stats_change(case when tg_op <> 'INSERT' then old end, case when tg_op <> 'DELETE' then new end);
  return null;
end;
$$;

-- Redefined (20261126101400_ticket_statistics.sql): as the trigger counts them.
create or replace function private.rebuild_ticket_stats(p_tenant_id uuid) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  delete from private.ticket_counts where tenant_id = p_tenant_id;
  delete from private.ticket_durations where tenant_id = p_tenant_id;
  insert into private.ticket_counts (tenant_id, status, priority, n)
  select tenant_id, status, priority, count(*) from public.tickets
  where tenant_id = p_tenant_id and deleted_at is null group by 1, 2, 3;
  insert into private.ticket_durations (tenant_id, kind, bucket, n)
  select p_tenant_id, kind, bucket, count(*) from (
    select 'first_response' as kind, private.duration_bucket(extract(epoch from first_response_at - created_at)) as bucket
    from public.tickets
    where tenant_id = p_tenant_id and deleted_at is null and merged_into_id is null and first_response_at is not null
    union all
    select 'resolution', private.duration_bucket(extract(epoch from resolved_at - created_at))
    from public.tickets
    where tenant_id = p_tenant_id and deleted_at is null and merged_into_id is null and resolved_at is not null
  ) d group by 1, 2, 3;
end;
$$;

-- The durations counted so far included the merged tickets'. Rebuilt with the counts'
-- tables locked, so a ticket written meanwhile waits rather than racing the rebuild (in
-- one statement: the CLI sends a migration's statements outside a transaction block).
do $$
begin
  lock table private.ticket_counts, private.ticket_durations in exclusive mode;
  perform private.rebuild_ticket_stats(t.id) from public.tenants t;
end;
$$;
