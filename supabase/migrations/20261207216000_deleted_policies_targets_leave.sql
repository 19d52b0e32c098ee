-- Targets set by a policy deleted since leave with a change to a priority or team no
-- policy governs, as a live policy's do (review of SLA, issue 14).
--
-- A change of priority or team to one no policy governs dropped the former targets only
-- when a policy still governed the former priority and team (20261206054000). An admin
-- deleting the urgent policy, then an agent lowering an urgent ticket to low (no
-- policy): neither lookup found one, the deleted policy's first-response and resolution
-- due times stayed, and the sweep breached and escalated the ticket by them, telling
-- the customer. Which targets a policy set is told by the first-response due time, which
-- only a policy sets.

-- Redefined (20261207185000_settled_tickets_keep_their_due_dates.sql): a deleted policy's
-- targets go too.
create or replace function private.tickets_before_update() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_window_days numeric;
  v_policy public.sla_policies;
  -- The request named the due date (PATCH /tickets/{id} sets this for its update): kept
  -- although unchanged, as a due date set by the same update is.
  v_due_named boolean := coalesce(pg_catalog.current_setting('private.due_date_named', true), '') = 'on';
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
    if new.status in ('resolved', 'closed') and old.status not in ('resolved', 'closed') then
      -- Resolving (or closing) answers the reply owed: its clock stops.
      delete from private.ticket_replies_owed o where o.tenant_id = new.tenant_id and o.ticket_id = new.id;
      new.next_response_due_at := null;
    elsif old.status in ('resolved', 'closed') and new.status not in ('resolved', 'closed') then
      -- Reopened: a customer reply that came meanwhile is owed an answer from now, under
      -- the policy that governs the ticket (the clock did not run while it was settled).
      update private.ticket_replies_owed o set since = now(), paused_minutes = 0
      where o.tenant_id = new.tenant_id and o.ticket_id = new.id;
      if found then
        v_policy := private.sla_policy_for(new.tenant_id, new.team_id, new.priority);
        new.next_response_due_at := case
          when v_policy.next_response_minutes is null then null
          when v_policy.business_hours is null then now() + make_interval(mins => v_policy.next_response_minutes)
          else private.add_business_minutes(now(), v_policy.next_response_minutes, v_policy.business_hours) end;
      else
        new.next_response_due_at := null;
      end if;
      new.sla_next_response_breached_at := null;
    end if;
  end if;
  if new.assigned_to is distinct from old.assigned_to then
    perform private.check_ticket_assignee(new.tenant_id, new.assigned_to);
  end if;
  -- A settled ticket's targets are its history (kept while it stays settled; a reopen
  -- runs the reply clock above, as before).
  if (new.priority is distinct from old.priority or new.team_id is distinct from old.team_id)
     and new.status not in ('resolved', 'closed') then
    if (private.sla_policy_for(new.tenant_id, new.team_id, new.priority)).id is not null then
      if new.due_date is not distinct from old.due_date and not v_due_named then
        new := private.apply_sla(new);
      else
        -- A due date set by the same update is kept; the first response still follows
        -- the policy that now governs the ticket, as on insert.
        new.first_response_due_at := (private.apply_sla(new)).first_response_due_at;
      end if;
    elsif old.first_response_due_at is not null
          or (private.sla_policy_for(old.tenant_id, old.team_id, old.priority)).id is not null then
      -- No policy governs the ticket now: the old policy's targets go with it, as a
      -- ticket made under no policy has none (a due date set by hand under no policy
      -- before stays, as on insert, and one set by this update too). Targets a policy
      -- set are known by its first-response due time (only a policy sets it), the
      -- policy itself possibly deleted since: a deleted policy's targets went on, and
      -- breached, where a live one's would have gone.
      new.first_response_due_at := null;
      if new.due_date is not distinct from old.due_date and not v_due_named then
        new.due_date := null;
      end if;
      new.next_response_due_at := null;
    end if;
  end if;
  return new;
end;
$$;
