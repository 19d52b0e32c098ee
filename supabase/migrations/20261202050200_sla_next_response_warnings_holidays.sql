-- The rest of a complete SLA (issue 16 §2): holidays in a business-hours calendar, a
-- next-response target that every customer reply restarts, and a warning before a
-- breach (`ticket.sla_warning`, lead time per policy). Breaches are also announced as
-- their own outbound event, `ticket.sla_breached`.

-- ------------------------------------------------------------------ holidays

-- As before (20261126100800_sla.sql), plus `holidays`: dates ("2026-12-25", local to the
-- calendar's time zone) on which no business time passes, at most 400 of them.
create or replace function private.add_business_minutes(p_start timestamptz, p_minutes int, p_hours jsonb) returns timestamptz
language plpgsql immutable
set search_path = ''
as $$
declare
  v_tz text := coalesce(p_hours ->> 'timezone', 'UTC');
  v_days int[] := coalesce((select array_agg(d::int) from jsonb_array_elements_text(p_hours -> 'days') d), '{1,2,3,4,5}');
  v_holidays date[] := coalesce((select array_agg(d::date) from jsonb_array_elements_text(
                          case when jsonb_typeof(p_hours -> 'holidays') = 'array' then p_hours -> 'holidays' else '[]' end) d), '{}');
  v_open time := coalesce((p_hours ->> 'start')::time, '09:00');
  v_close time := coalesce((p_hours ->> 'end')::time, '17:00');
  v_local timestamp := p_start at time zone v_tz;
  v_left double precision := p_minutes;
  v_day_end timestamp;
  v_take double precision;
  i int := 0;
begin
  if v_close <= v_open or cardinality(v_days) = 0 then
    raise exception 'business hours need a start before the end and at least one day' using errcode = '22023';
  end if;
  if cardinality(v_holidays) > 400 then
    raise exception 'at most 400 holidays per calendar' using errcode = '22023';
  end if;
  while v_left > 0 loop
    i := i + 1;
    if i > 3700 then -- ten years of days: a target that long is a configuration error
      raise exception 'the SLA target is out of range' using errcode = '22003';
    end if;
    if extract(isodow from v_local)::int = any (v_days) and not (v_local::date = any (v_holidays))
       and v_local::time < v_close then
      if v_local::time < v_open then
        v_local := v_local::date + v_open;
      end if;
      v_day_end := v_local::date + v_close;
      v_take := least(v_left, extract(epoch from v_day_end - v_local) / 60);
      v_local := v_local + make_interval(secs => v_take * 60);
      v_left := v_left - v_take;
    else
      v_local := (v_local::date + 1) + v_open;
    end if;
  end loop;
  return v_local at time zone v_tz;
end;
$$;

-- As before (20261202050100_sla_pause_while_pending.sql), skipping holidays too.
create or replace function private.business_minutes_between(p_from timestamptz, p_to timestamptz, p_hours jsonb) returns int
language plpgsql immutable
set search_path = ''
as $$
declare
  v_tz text := coalesce(p_hours ->> 'timezone', 'UTC');
  v_days int[] := coalesce((select array_agg(d::int) from jsonb_array_elements_text(p_hours -> 'days') d), '{1,2,3,4,5}');
  v_holidays date[] := coalesce((select array_agg(d::date) from jsonb_array_elements_text(
                          case when jsonb_typeof(p_hours -> 'holidays') = 'array' then p_hours -> 'holidays' else '[]' end) d), '{}');
  v_open time := coalesce((p_hours ->> 'start')::time, '09:00');
  v_close time := coalesce((p_hours ->> 'end')::time, '17:00');
  v_from timestamp;
  v_to timestamp;
  v_day date;
  v_seconds double precision := 0;
begin
  if p_to <= p_from then
    return 0;
  end if;
  if p_hours is null then
    return round(extract(epoch from p_to - p_from) / 60)::int;
  end if;
  v_from := p_from at time zone v_tz;
  v_to := p_to at time zone v_tz;
  if v_to::date - v_from::date > 3700 then -- ten years: as add_business_minutes, out of range
    raise exception 'the paused time is out of range' using errcode = '22003';
  end if;
  v_day := v_from::date;
  while v_day <= v_to::date loop
    if extract(isodow from v_day)::int = any (v_days) and not (v_day = any (v_holidays)) then
      v_seconds := v_seconds + greatest(0, extract(epoch from
        least(v_to, v_day + v_close) - greatest(v_from, v_day + v_open)));
    end if;
    v_day := v_day + 1;
  end loop;
  return round(v_seconds / 60)::int;
end;
$$;

-- ------------------------------------------------------------------ policy and ticket columns

alter table public.sla_policies
  -- Answer every customer reply within this (null: no next-response target).
  add column next_response_minutes int check (next_response_minutes between 1 and 525600),
  -- Warn this long before a due time (null: no warnings); at most a week.
  add column warning_minutes int check (warning_minutes between 1 and 10080);
grant insert (next_response_minutes, warning_minutes), update (next_response_minutes, warning_minutes)
  on public.sla_policies to authenticated;

alter table public.tickets
  add column next_response_due_at timestamptz,
  add column sla_next_response_breached_at timestamptz;
-- The audit trigger renders timestamptz columns from its arguments: give it the new ones.
select private.enable_audit('public.tickets');
create index tickets_next_response_due_idx on public.tickets (next_response_due_at)
  where sla_next_response_breached_at is null and deleted_at is null;

-- Warnings sent, one per ticket, target and due time: a due time that moves (a pause, a
-- priority change, a new customer reply) gets its own warning, a sweep run twice none.
create table private.sla_warnings (
  tenant_id uuid not null,
  ticket_id uuid not null,
  kind text not null check (kind in ('first_response', 'resolution', 'next_response')),
  due_at timestamptz not null,
  warned_at timestamptz not null default now(),
  primary key (tenant_id, ticket_id, kind, due_at),
  foreign key (tenant_id, ticket_id) references public.tickets (tenant_id, id) on delete cascade
);

alter table public.ticket_events drop constraint ticket_events_type_check;
alter table public.ticket_events add constraint ticket_events_type_check check (type in (
  'created', 'status_changed', 'assigned', 'unassigned', 'priority_changed', 'team_changed',
  'sla_breached', 'sla_warning', 'merged', 'merged_into', 'deleted', 'restored'));

-- ------------------------------------------------------------------ the next-response clock

-- As before (20261126100900_tickets_rules.sql) — first response, a requester's reply
-- reopening a pending ticket, the activity touch — in one UPDATE that also runs the
-- next-response clock: a reply from the customer's side (the requester, or anyone not on
-- staff) starts it from now under the policy of the ticket's priority; a staff member's
-- public reply stops it.
create or replace function private.ticket_messages_after_insert() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_ticket public.tickets;
  v_staff boolean;
  v_policy public.sla_policies;
  v_next_set boolean := false;
  v_next_due timestamptz;
begin
  select * into v_ticket from public.tickets t where t.tenant_id = new.tenant_id and t.id = new.ticket_id for no key update;
  -- Only public replies with an author count; notes, system and imported messages
  -- leave v_staff null and fall through to the activity touch.
  if new.type = 'message' and new.author_id is not null then
    v_staff := exists (
      select 1 from public.memberships m
      where m.tenant_id = new.tenant_id and m.user_id = new.author_id and m.role in ('agent', 'admin')
    ) or exists (select 1 from public.platform_admins p where p.user_id = new.author_id);
  end if;
  if v_staff and new.author_id is distinct from v_ticket.created_by then
    v_next_set := v_ticket.next_response_due_at is not null;
    v_next_due := null;
  elsif v_staff is not null then
    select * into v_policy from public.sla_policies s
    where s.tenant_id = new.tenant_id and s.priority = v_ticket.priority;
    if v_policy.next_response_minutes is not null then
      v_next_set := true;
      v_next_due := case when v_policy.business_hours is null
        then now() + make_interval(mins => v_policy.next_response_minutes)
        else private.add_business_minutes(now(), v_policy.next_response_minutes, v_policy.business_hours) end;
    end if;
  end if;
  update public.tickets set
    first_response_at = case
      when v_staff and new.author_id is distinct from v_ticket.created_by and v_ticket.first_response_at is null
      then new.created_at else first_response_at end,
    status = case
      when v_staff is not null and new.author_id = v_ticket.created_by and v_ticket.status = 'pending'
      then 'open' else status end,
    next_response_due_at = case when v_next_set then v_next_due else next_response_due_at end,
    sla_next_response_breached_at = case when v_next_set then null else sla_next_response_breached_at end,
    updated_at = now()
  where tenant_id = new.tenant_id and id = new.ticket_id;
  return null;
end;
$$;
revoke all on function private.ticket_messages_after_insert() from public, anon;

-- As before (20261202050100_sla_pause_while_pending.sql), and the next-response due time
-- moves with the others.
create or replace function private.tickets_sla_pause() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_hours jsonb;
  v_minutes int;
begin
  if new.status = 'pending' and new.sla_paused_at is null then
    new.sla_paused_at := now();
  elsif new.status <> 'pending' and old.sla_paused_at is not null then
    select s.business_hours into v_hours from public.sla_policies s
    where s.tenant_id = new.tenant_id and s.priority = new.priority;
    v_minutes := private.business_minutes_between(old.sla_paused_at, now(), v_hours);
    if v_minutes > 0 then
      if new.first_response_at is null and new.first_response_due_at is not null then
        new.first_response_due_at := case when v_hours is null
          then new.first_response_due_at + make_interval(mins => v_minutes)
          else private.add_business_minutes(new.first_response_due_at, v_minutes, v_hours) end;
      end if;
      if new.resolved_at is null and new.due_date is not null then
        new.due_date := case when v_hours is null
          then new.due_date + make_interval(mins => v_minutes)
          else private.add_business_minutes(new.due_date, v_minutes, v_hours) end;
      end if;
      -- A customer reply that ends the wait restarts this clock in the same statement:
      -- only a due time set before the pause moves.
      if new.next_response_due_at is not null and new.next_response_due_at is not distinct from old.next_response_due_at then
        new.next_response_due_at := case when v_hours is null
          then new.next_response_due_at + make_interval(mins => v_minutes)
          else private.add_business_minutes(new.next_response_due_at, v_minutes, v_hours) end;
      end if;
      new.sla_paused_minutes := new.sla_paused_minutes + v_minutes;
    end if;
    new.sla_paused_at := null;
  end if;
  return new;
end;
$$;
revoke all on function private.tickets_sla_pause() from public, anon, authenticated;

-- ------------------------------------------------------------------ the sweep: warnings, three targets

-- As before (20261202050100_sla_pause_while_pending.sql), plus: the next-response target
-- breaches like the other two; each breach is also announced as `ticket.sla_breached`;
-- and tickets whose policy has a lead time get one `ticket.sla_warning` (event and
-- timeline entry) per target and due time, once inside the lead time. Pending,
-- resolved and closed tickets neither breach nor warn. The work lists read the partial
-- indexes on each due time; warnings only look a week ahead (the longest lead time).
create or replace function private.run_sla_sweep(p_now timestamptz default now(), p_limit int default 500)
returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_due record;
  v_ticket public.tickets;
  v_kind text;
  v_count int := 0;
begin
  for v_due in
    (select t.tenant_id, t.id, 'first_response'::text as kind from public.tickets t
     where t.first_response_at is null and t.sla_first_response_breached_at is null and t.deleted_at is null
       and t.first_response_due_at <= p_now and t.status not in ('pending', 'resolved', 'closed')
     order by t.first_response_due_at limit p_limit)
    union all
    (select t.tenant_id, t.id, 'resolution'::text from public.tickets t
     where t.resolved_at is null and t.sla_resolution_breached_at is null and t.deleted_at is null
       and t.due_date <= p_now and t.status not in ('pending', 'resolved', 'closed')
     order by t.due_date limit p_limit)
    union all
    (select t.tenant_id, t.id, 'next_response'::text from public.tickets t
     where t.sla_next_response_breached_at is null and t.deleted_at is null
       and t.next_response_due_at <= p_now and t.status not in ('pending', 'resolved', 'closed')
     order by t.next_response_due_at limit p_limit)
  loop
    v_kind := v_due.kind;
    -- Re-read under a row lock; a concurrent sweep that got there first wins.
    select * into v_ticket from public.tickets t
    where t.tenant_id = v_due.tenant_id and t.id = v_due.id
    for no key update skip locked;
    continue when v_ticket.id is null or v_ticket.status in ('pending', 'resolved', 'closed');
    continue when (v_kind = 'first_response' and (v_ticket.sla_first_response_breached_at is not null or v_ticket.first_response_at is not null))
               or (v_kind = 'resolution' and (v_ticket.sla_resolution_breached_at is not null or v_ticket.resolved_at is not null))
               or (v_kind = 'next_response' and (v_ticket.sla_next_response_breached_at is not null
                                                 or v_ticket.next_response_due_at is null or v_ticket.next_response_due_at > p_now));
    update public.tickets set
      sla_first_response_breached_at = case when v_kind = 'first_response' then p_now else sla_first_response_breached_at end,
      sla_resolution_breached_at = case when v_kind = 'resolution' then p_now else sla_resolution_breached_at end,
      sla_next_response_breached_at = case when v_kind = 'next_response' then p_now else sla_next_response_breached_at end,
      status = case when status = 'open' then 'escalated' else status end
    where tenant_id = v_ticket.tenant_id and id = v_ticket.id;
    insert into public.ticket_messages (tenant_id, ticket_id, type, content)
    values (v_ticket.tenant_id, v_ticket.id, 'system',
            case v_kind when 'first_response' then 'SLA breached: no first response by the due time.'
                        when 'next_response' then 'SLA breached: the customer''s reply was not answered in time.'
                        else 'SLA breached: not resolved by the due date.' end);
    insert into public.ticket_events (tenant_id, ticket_id, type, data)
    values (v_ticket.tenant_id, v_ticket.id, 'sla_breached', jsonb_build_object('kind', v_kind, 'at', p_now));
    perform private.emit_webhook_event(v_ticket.tenant_id, 'ticket.sla_breached', 'ticket:' || v_ticket.id,
      jsonb_build_object('type', 'ticket.sla_breached', 'tenant_id', v_ticket.tenant_id,
        'data', jsonb_build_object('ticket_id', v_ticket.id, 'number', v_ticket.number, 'kind', v_kind),
        'occurred_at', private.api_timestamp(clock_timestamp())));
    v_count := v_count + 1;
  end loop;

  for v_due in
    with due as (
      (select t.tenant_id, t.id, 'first_response'::text as kind, t.first_response_due_at as due_at from public.tickets t
       where t.first_response_at is null and t.sla_first_response_breached_at is null and t.deleted_at is null
         and t.first_response_due_at > p_now and t.first_response_due_at <= p_now + interval '7 days'
         and t.status not in ('pending', 'resolved', 'closed'))
      union all
      (select t.tenant_id, t.id, 'resolution', t.due_date from public.tickets t
       where t.resolved_at is null and t.sla_resolution_breached_at is null and t.deleted_at is null
         and t.due_date > p_now and t.due_date <= p_now + interval '7 days'
         and t.status not in ('pending', 'resolved', 'closed'))
      union all
      (select t.tenant_id, t.id, 'next_response', t.next_response_due_at from public.tickets t
       where t.sla_next_response_breached_at is null and t.deleted_at is null
         and t.next_response_due_at > p_now and t.next_response_due_at <= p_now + interval '7 days'
         and t.status not in ('pending', 'resolved', 'closed'))
    )
    select d.* from due d
    join public.tickets t on t.tenant_id = d.tenant_id and t.id = d.id
    join public.sla_policies s on s.tenant_id = t.tenant_id and s.priority = t.priority
    where s.warning_minutes is not null and d.due_at - make_interval(mins => s.warning_minutes) <= p_now
      and not exists (select 1 from private.sla_warnings w
                      where w.tenant_id = d.tenant_id and w.ticket_id = d.id and w.kind = d.kind and w.due_at = d.due_at)
    order by d.due_at
    limit p_limit
  loop
    select * into v_ticket from public.tickets t
    where t.tenant_id = v_due.tenant_id and t.id = v_due.id
    for no key update skip locked;
    continue when v_ticket.id is null;
    insert into private.sla_warnings (tenant_id, ticket_id, kind, due_at)
    values (v_due.tenant_id, v_due.id, v_due.kind, v_due.due_at)
    on conflict do nothing;
    continue when not found;
    insert into public.ticket_events (tenant_id, ticket_id, type, data)
    values (v_ticket.tenant_id, v_ticket.id, 'sla_warning', jsonb_build_object('kind', v_due.kind, 'due_at', v_due.due_at, 'at', p_now));
    perform private.emit_webhook_event(v_ticket.tenant_id, 'ticket.sla_warning', 'ticket:' || v_ticket.id,
      jsonb_build_object('type', 'ticket.sla_warning', 'tenant_id', v_ticket.tenant_id,
        'data', jsonb_build_object('ticket_id', v_ticket.id, 'number', v_ticket.number, 'kind', v_due.kind,
                                   'due_at', private.api_timestamp(v_due.due_at)),
        'occurred_at', private.api_timestamp(clock_timestamp())));
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;
revoke all on function private.run_sla_sweep(timestamptz, int) from public, anon, authenticated;
grant execute on function private.run_sla_sweep(timestamptz, int) to service_role;
