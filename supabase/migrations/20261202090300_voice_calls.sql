-- Voice calls (issue 14): each call of an agent, with its customer when the caller is
-- known, its status moving through a machine kept as data like the tickets'
-- (ringing → in_progress → completed | failed; ringing → missed | failed), the
-- provider's call id (unique per tenant: call events are idempotent by it), times,
-- duration, outcome, summary, recording location, cost and optionally the ticket opened
-- from it; and its transcript as ordered segments. Agents manage calls and append
-- segments; every member reads them; the telephony provider writes through the
-- call-event functions (voice_call_events).

create table private.voice_call_status_transitions (
  from_status text not null,
  to_status text not null,
  primary key (from_status, to_status)
);
insert into private.voice_call_status_transitions (from_status, to_status) values
  ('ringing', 'in_progress'), ('ringing', 'missed'), ('ringing', 'failed'),
  ('in_progress', 'completed'), ('in_progress', 'failed');
revoke all on private.voice_call_status_transitions from public, anon, authenticated;
grant select on private.voice_call_status_transitions to service_role;

create table public.voice_calls (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  agent_id uuid not null,
  customer_id uuid,
  direction text not null default 'inbound' check (direction in ('inbound', 'outbound')),
  status text not null default 'ringing'
    check (status in ('ringing', 'in_progress', 'completed', 'failed', 'missed')),
  provider_call_id text not null check (char_length(provider_call_id) between 1 and 200),
  from_number text check (from_number ~ '^\+?[0-9]{3,15}$'),
  to_number text check (to_number ~ '^\+?[0-9]{3,15}$'),
  started_at timestamptz not null default now(),
  answered_at timestamptz,
  ended_at timestamptz,
  duration_seconds int check (duration_seconds >= 0),
  outcome text check (char_length(outcome) <= 200),
  summary text check (char_length(summary) <= 20000),
  recording_path text check (char_length(recording_path) <= 1024),
  cost numeric(12, 4) check (cost >= 0),
  ticket_id uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, provider_call_id),
  foreign key (tenant_id, agent_id) references public.voice_agents (tenant_id, id),
  foreign key (tenant_id, customer_id) references public.voice_customers (tenant_id, id) on delete set null (customer_id),
  foreign key (tenant_id, ticket_id) references public.tickets (tenant_id, id) on delete set null (ticket_id)
);
create index voice_calls_tenant_started_idx on public.voice_calls (tenant_id, started_at desc, id desc);
create index voice_calls_agent_idx on public.voice_calls (tenant_id, agent_id, started_at desc, id desc);
create index voice_calls_customer_idx on public.voice_calls (tenant_id, customer_id, started_at desc, id desc)
  where customer_id is not null;
create index voice_calls_status_idx on public.voice_calls (tenant_id, status, started_at desc, id desc);
create index voice_calls_ticket_idx on public.voice_calls (tenant_id, ticket_id) where ticket_id is not null;

create table public.voice_call_segments (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  call_id uuid not null,
  seq int not null check (seq >= 0),
  speaker text not null check (speaker in ('agent', 'customer', 'system')),
  content text not null check (char_length(content) between 1 and 10000),
  offset_ms int not null default 0 check (offset_ms >= 0),
  created_at timestamptz not null default now(),
  search tsvector generated always as (to_tsvector('english'::regconfig, content)) stored,
  primary key (tenant_id, id),
  unique (tenant_id, call_id, seq),
  foreign key (tenant_id, call_id) references public.voice_calls (tenant_id, id) on delete cascade
);
create index voice_call_segments_search_idx on public.voice_call_segments using gin (search);

-- ------------------------------------------------------------------ the status machine

create function private.allowed_voice_call_transitions(p_from text) returns text[]
language sql stable security definer
set search_path = ''
as $$
  select coalesce(array_agg(to_status order by to_status), '{}')
  from private.voice_call_status_transitions where from_status = p_from
$$;
revoke all on function private.allowed_voice_call_transitions(text) from public, anon;
grant execute on function private.allowed_voice_call_transitions(text) to authenticated, service_role;

-- The only place a call's status change is checked: a refused one is 409
-- invalid_transition with the allowed targets. New calls start ringing or in progress.
-- Answering and ending stamp their times; the duration defaults to the answered time.
create function private.voice_call_status() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    if new.status not in ('ringing', 'in_progress') then
      raise exception 'A call starts ringing or in progress, not %', new.status using errcode = 'PT409',
        detail = jsonb_build_object('code', 'invalid_transition', 'details',
          jsonb_build_object('from', null, 'to', new.status, 'allowed', jsonb_build_array('ringing', 'in_progress')))::text;
    end if;
  elsif new.status is distinct from old.status then
    if new.status <> all (private.allowed_voice_call_transitions(old.status)) then
      raise exception 'A % call cannot become %', old.status, new.status using errcode = 'PT409',
        detail = jsonb_build_object('code', 'invalid_transition', 'details', jsonb_build_object(
          'from', old.status, 'to', new.status, 'allowed', to_jsonb(private.allowed_voice_call_transitions(old.status))))::text;
    end if;
  else
    return new;
  end if;
  if new.status <> 'ringing' and new.status <> 'missed' then
    new.answered_at := coalesce(new.answered_at, now());
  end if;
  if new.status in ('completed', 'failed', 'missed') then
    new.ended_at := coalesce(new.ended_at, now());
    new.duration_seconds := coalesce(new.duration_seconds, case when new.answered_at is not null
      then greatest(0, floor(extract(epoch from new.ended_at - new.answered_at)))::int else 0 end);
  end if;
  return new;
end;
$$;
revoke all on function private.voice_call_status() from public, anon, authenticated;
create trigger voice_call_status before insert or update of status on public.voice_calls
  for each row execute function private.voice_call_status();

-- ------------------------------------------------------------------ updated_at, audit, realtime

create trigger set_updated_at before update on public.voice_calls
  for each row execute function private.set_updated_at();
select private.enable_audit('public.voice_calls');
select private.enable_audit('public.voice_call_segments');
alter publication supabase_realtime add table public.voice_calls;

-- ------------------------------------------------------------------ who sees what

alter table public.voice_calls enable row level security;
alter table public.voice_call_segments enable row level security;
revoke all on public.voice_calls, public.voice_call_segments from anon, authenticated;
grant select,
  insert (tenant_id, agent_id, customer_id, direction, status, provider_call_id, from_number, to_number, started_at,
    outcome, summary),
  update (customer_id, status, outcome, summary),
  delete
  on public.voice_calls to authenticated;
grant select, insert (tenant_id, call_id, seq, speaker, content, offset_ms) on public.voice_call_segments to authenticated;

-- Members read; agents log and update calls; admins delete them.
create policy voice_calls_select on public.voice_calls for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) or (select private.is_platform_admin()));
create policy voice_calls_insert on public.voice_calls for insert to authenticated
  with check (tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]) or (select private.is_platform_admin()));
create policy voice_calls_update on public.voice_calls for update to authenticated
  using (tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]) or (select private.is_platform_admin()))
  with check (tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]) or (select private.is_platform_admin()));
create policy voice_calls_delete on public.voice_calls for delete to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));

-- Segments are appended, never rewritten.
create policy voice_call_segments_select on public.voice_call_segments for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) or (select private.is_platform_admin()));
create policy voice_call_segments_insert on public.voice_call_segments for insert to authenticated
  with check (tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]) or (select private.is_platform_admin()));
