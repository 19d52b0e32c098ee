-- A ticket reopened after its priority or team changed while it was settled gets the
-- targets of the policy that governs it now (review of the ticket workflow).
--
-- A settled ticket keeps its due dates when its team or priority changes
-- (20261207185000: they are what it was held to). But nothing computed them again when
-- it was reopened: a low ticket resolved, made urgent while resolved (the customer wrote
-- that the problem was back), then reopened, was held to the low policy's dates, only
-- moved by the time it sat resolved; reopened first and made urgent after, it got the
-- urgent dates. The order of two requests decided its SLA. Now such a change is noted
-- (private.tickets_sla_stale) and at the reopening the first-response and resolution
-- targets are computed again from the policy that governs the ticket then, the time it
-- sat settled not counted, as for a change made while it was live. A due date set by hand
-- while settled (or by the reopening update) is kept, as it would be, and ends the note;
-- with no policy governing the ticket at the reopening, its dates stay as they were.

create table private.tickets_sla_stale (
  tenant_id uuid not null,
  ticket_id uuid not null,
  primary key (tenant_id, ticket_id),
  foreign key (tenant_id, ticket_id) references public.tickets (tenant_id, id) on delete cascade
);
-- Private schema, not exposed; only the definer trigger below touches it.
alter table private.tickets_sla_stale enable row level security;
revoke all on private.tickets_sla_stale from public, anon, authenticated, service_role;

create function private.tickets_settled_targets() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_named boolean := coalesce(pg_catalog.current_setting('private.due_date_named', true), '') = 'on';
  v_policy public.sla_policies;
  v_added int;
  v_shifted timestamptz;
begin
  if old.status in ('resolved', 'closed') and new.status in ('resolved', 'closed') then
    if new.due_date is distinct from old.due_date or v_named then
      -- Set by hand while settled: kept at the reopening.
      delete from private.tickets_sla_stale s where s.tenant_id = new.tenant_id and s.ticket_id = new.id;
    elsif new.priority is distinct from old.priority or new.team_id is distinct from old.team_id then
      insert into private.tickets_sla_stale (tenant_id, ticket_id) values (new.tenant_id, new.id)
      on conflict do nothing;
    end if;
  elsif old.status in ('resolved', 'closed') and new.status not in ('resolved', 'closed') then
    delete from private.tickets_sla_stale s where s.tenant_id = new.tenant_id and s.ticket_id = new.id;
    if found and not v_named then
      v_policy := private.sla_policy_for(new.tenant_id, new.team_id, new.priority);
      -- tickets_sla_pause (before this trigger, by name) moved an unchanged due date by
      -- the minutes it sat settled and kept one this update names: only the moved one,
      -- or one this update left alone, is computed again.
      v_added := new.sla_paused_minutes - old.sla_paused_minutes;
      v_shifted := case when old.due_date is null or v_added <= 0 then old.due_date
                        when v_policy.business_hours is null then old.due_date + make_interval(mins => v_added)
                        else private.add_business_minutes(old.due_date, v_added, v_policy.business_hours) end;
      if v_policy.id is not null and new.due_date is not distinct from v_shifted then
        new := private.apply_sla(new);
      end if;
    end if;
  end if;
  return new;
end;
$$;
revoke all on function private.tickets_settled_targets() from public, anon, authenticated, service_role;
-- Named to run after tickets_sla_pause (BEFORE triggers fire in name order): the
-- reopening has added the time the ticket sat settled to its paused minutes by then.
create trigger tickets_sla_settled_targets before update on public.tickets
  for each row when (old.status in ('resolved', 'closed')
                     and (new.status not in ('resolved', 'closed') or new.priority is distinct from old.priority
                          or new.team_id is distinct from old.team_id or new.due_date is distinct from old.due_date))
  execute function private.tickets_settled_targets();
