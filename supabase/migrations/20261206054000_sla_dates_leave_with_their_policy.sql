-- A ticket moved to a priority or team no SLA policy covers has no due dates.
--
-- A priority or team change computes the due dates again from the policy that now
-- governs the ticket (apply_sla). Where none does, apply_sla left the ticket as it was,
-- so the old policy's first-response, resolution and next-response times stayed: a
-- ticket moved from urgent (30 minutes) to low, which the tenant gives no SLA, was
-- breached and escalated half an hour later. On insert, no policy means no due dates;
-- now the same holds after a change. An update that sets due_date itself keeps it, as
-- before, and a due date set by hand while no policy applied is not the old policy's to
-- take away.

-- Redefined (20261202141000_sla_policies_per_team.sql).
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
  if (new.priority is distinct from old.priority or new.team_id is distinct from old.team_id)
     and new.due_date is not distinct from old.due_date then
    if (private.sla_policy_for(new.tenant_id, new.team_id, new.priority)).id is not null then
      new := private.apply_sla(new);
    elsif (private.sla_policy_for(old.tenant_id, old.team_id, old.priority)).id is not null then
      -- No policy governs the ticket now: the old policy's targets go with it, as a
      -- ticket made under no policy has none (a due date set by hand under no policy
      -- before stays, as on insert).
      new.first_response_due_at := null;
      new.due_date := null;
      new.next_response_due_at := null;
    end if;
  end if;
  return new;
end;
$$;
revoke all on function private.tickets_before_update() from public, anon;
