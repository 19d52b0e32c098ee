-- Service levels: each tenant's policy per priority (first-response and resolution
-- targets, optionally counted in business hours), the due dates it gives a ticket, and
-- the sweep that marks breaches. The sweep runs every minute as a job of the one queue
-- (task `sla-sweep`, scheduled in 20261126102100_schedules.sql).

-- ------------------------------------------------------------------ business hours

-- SLA targets counted in business hours when a policy has them:
-- {"timezone": "Europe/Paris", "days": [1, 2, 3, 4, 5], "start": "09:00", "end": "17:00"}
-- (ISO weekdays, 1 = Monday). Without business hours, targets run on the wall clock.
-- Pure; evaluated in the API roles' own statements (the policies' check constraint), so
-- executable by them.
create function private.add_business_minutes(p_start timestamptz, p_minutes int, p_hours jsonb) returns timestamptz
language plpgsql immutable
set search_path = ''
as $$
declare
  v_tz text := coalesce(p_hours ->> 'timezone', 'UTC');
  v_days int[] := coalesce((select array_agg(d::int) from jsonb_array_elements_text(p_hours -> 'days') d), '{1,2,3,4,5}');
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
  while v_left > 0 loop
    i := i + 1;
    if i > 3700 then -- ten years of days: a target that long is a configuration error
      raise exception 'the SLA target is out of range' using errcode = '22003';
    end if;
    if extract(isodow from v_local)::int = any (v_days) and v_local::time < v_close then
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
revoke all on function private.add_business_minutes(timestamptz, int, jsonb) from public, anon;
grant execute on function private.add_business_minutes(timestamptz, int, jsonb) to authenticated, service_role;

-- ------------------------------------------------------------------ policies

create table public.sla_policies (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  priority text not null check (priority in ('low', 'medium', 'high', 'urgent')),
  first_response_minutes int not null check (first_response_minutes between 1 and 525600),
  resolution_minutes int not null check (resolution_minutes between 1 and 525600),
  -- Optional business hours the targets are counted in (private.add_business_minutes).
  business_hours jsonb check (business_hours is null or jsonb_typeof(business_hours) = 'object'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, priority),
  check (resolution_minutes >= first_response_minutes),
  -- A policy's business hours must make sense when they are saved, not when a ticket needs them.
  constraint sla_policies_business_hours_valid
    check (business_hours is null or private.add_business_minutes('2026-01-05 00:00+00', 1, business_hours) is not null)
);
create trigger set_updated_at before update on public.sla_policies
  for each row execute function private.set_updated_at();
select private.enable_audit('public.sla_policies');

alter table public.sla_policies enable row level security;
revoke all on public.sla_policies from anon, authenticated;
grant select, insert (tenant_id, priority, first_response_minutes, resolution_minutes, business_hours),
  update (first_response_minutes, resolution_minutes, business_hours), delete
  on public.sla_policies to authenticated;

-- sla_policies: members read them (customers see their promised response times);
-- admins set them.
create policy sla_policies_select on public.sla_policies for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) or (select private.is_platform_admin()));
create policy sla_policies_insert on public.sla_policies for insert to authenticated
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy sla_policies_update on public.sla_policies for update to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()))
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy sla_policies_delete on public.sla_policies for delete to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));

-- ------------------------------------------------------------------ due dates

-- Due dates from the tenant's SLA policy for the priority, counted from creation — in
-- business hours when the policy has them. Called by the ticket triggers (definer), on
-- create and on a priority change; not executable by API roles (it would read another
-- tenant's policy).
create function private.apply_sla(p_ticket public.tickets) returns public.tickets
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_policy public.sla_policies;
begin
  select * into v_policy from public.sla_policies s
  where s.tenant_id = p_ticket.tenant_id and s.priority = p_ticket.priority;
  if v_policy.id is null then
    return p_ticket;
  end if;
  if v_policy.business_hours is null then
    p_ticket.first_response_due_at := p_ticket.created_at + make_interval(mins => v_policy.first_response_minutes);
    p_ticket.due_date := p_ticket.created_at + make_interval(mins => v_policy.resolution_minutes);
  else
    p_ticket.first_response_due_at := private.add_business_minutes(p_ticket.created_at, v_policy.first_response_minutes, v_policy.business_hours);
    p_ticket.due_date := private.add_business_minutes(p_ticket.created_at, v_policy.resolution_minutes, v_policy.business_hours);
  end if;
  return p_ticket;
end;
$$;
revoke all on function private.apply_sla(public.tickets) from public, anon, authenticated, service_role;

-- ------------------------------------------------------------------ the sweep

-- The SLA sweep, run on a schedule: marks each breach once (first response, resolution),
-- escalates the ticket if it is still open or pending, and says so in a system message
-- and the timeline. p_now is the clock, so tests and backfills can move it. It locks each
-- ticket (level 5) FOR NO KEY UPDATE SKIP LOCKED: it skips tickets someone else holds
-- and never waits for one.
create function private.run_sla_sweep(p_now timestamptz default now(), p_limit int default 500)
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
       and t.first_response_due_at <= p_now and t.status not in ('resolved', 'closed')
     order by t.first_response_due_at limit p_limit)
    union all
    (select t.tenant_id, t.id, 'resolution'::text from public.tickets t
     where t.resolved_at is null and t.sla_resolution_breached_at is null and t.deleted_at is null
       and t.due_date <= p_now and t.status not in ('resolved', 'closed')
     order by t.due_date limit p_limit)
  loop
    v_kind := v_due.kind;
    -- Re-read under a row lock; a concurrent sweep that got there first wins.
    select * into v_ticket from public.tickets t
    where t.tenant_id = v_due.tenant_id and t.id = v_due.id
    for no key update skip locked;
    continue when v_ticket.id is null;
    continue when (v_kind = 'first_response' and (v_ticket.sla_first_response_breached_at is not null or v_ticket.first_response_at is not null))
               or (v_kind = 'resolution' and (v_ticket.sla_resolution_breached_at is not null or v_ticket.resolved_at is not null));
    update public.tickets set
      sla_first_response_breached_at = case when v_kind = 'first_response' then p_now else sla_first_response_breached_at end,
      sla_resolution_breached_at = case when v_kind = 'resolution' then p_now else sla_resolution_breached_at end,
      status = case when status in ('open', 'pending') then 'escalated' else status end
    where tenant_id = v_ticket.tenant_id and id = v_ticket.id;
    insert into public.ticket_messages (tenant_id, ticket_id, type, content)
    values (v_ticket.tenant_id, v_ticket.id, 'system',
            case v_kind when 'first_response' then 'SLA breached: no first response by the due time.'
                        else 'SLA breached: not resolved by the due date.' end);
    insert into public.ticket_events (tenant_id, ticket_id, type, data)
    values (v_ticket.tenant_id, v_ticket.id, 'sla_breached', jsonb_build_object('kind', v_kind, 'at', p_now));
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;
revoke all on function private.run_sla_sweep(timestamptz, int) from public, anon, authenticated;
grant execute on function private.run_sla_sweep(timestamptz, int) to service_role;
