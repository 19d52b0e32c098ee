-- A priority or team change that also sets due_date kept the old policy's first-response
-- time: the due dates were computed again only when due_date stayed as it was, so
-- `PATCH {priority: urgent, due_date: …}` on a low ticket left its first response due in
-- 8 hours instead of urgent's 30 minutes (and a move to no policy kept it too). Now the
-- first response always follows the policy that governs the ticket after the change; a
-- due date the same update sets is kept, as on insert.

-- Redefined (20261206054000_sla_dates_leave_with_their_policy.sql): the first response
-- follows the new policy also when the update sets due_date.
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
      when 'closed' then new.closed_at := now(); new.resolved_at := coalesce(new.resolved_at, now());
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
