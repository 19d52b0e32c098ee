-- Call events that arrive before their call.started (issue 14). A provider sends each
-- event as its own webhook and retries each on its own schedule, so an answer, a
-- transcript batch or even the end can overtake the start of its call. Until now such an
-- event was 404 unknown_call; a provider takes a 404 as final (only a 5xx or a timeout
-- is retried), so the call lost its first words, or its end, duration and cost (the
-- stale-call sweep then ended it as failed).
--
-- Now an answer, segments or an end for a provider call id that its tenant has not
-- started is held, and the call's start applies what is held, in the order it arrived,
-- through the same functions as when it arrives in time (webhooks included). Bounds:
-- * held for 10 minutes: a start later than that finds nothing, and an event held that
--   long is taken as one for a call that never started;
-- * at most 1,000 held events per tenant (a flood of made-up ids fills its own tenant's
--   room, and only that): beyond, 404 unknown_call as before;
-- * a tenant that could not start the call holds nothing and answers as before: no
--   such tenant, deleted (404), suspended, or no voice in its plan (404 unknown_call:
--   the start itself would be refused, so the events belong to no call).
-- A held event that its call then refuses (an end the status machine does not allow
-- from the status the earlier events gave it) is dropped with a warning in the server
-- log, naming the call, not the event's content: the provider was answered already.
-- The start and a late hold of one call id serialise on a transaction-scoped advisory
-- lock, so an event held while its call starts is either applied by the start or finds
-- the call and applies itself, never neither.

create table private.voice_call_early_events (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  provider_call_id text not null,
  id bigint generated always as identity,
  type text not null check (type in ('call.answered', 'transcript.segments', 'call.ended')),
  payload jsonb not null,
  received_at timestamptz not null default now(),
  primary key (tenant_id, provider_call_id, id)
);
-- The tenant's room (count) and its expired events (delete), by age.
create index voice_call_early_events_age_idx on private.voice_call_early_events (tenant_id, received_at);

-- The lock one provider call id of a tenant serialises its start and its holds on.
create function private.voice_call_id_lock(p_tenant_id uuid, p_provider_call_id text) returns void
language sql volatile
set search_path = ''
as $$
  select pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(p_tenant_id::text || '/' || p_provider_call_id, 14));
$$;
revoke all on function private.voice_call_id_lock(uuid, text) from public, anon, authenticated;

-- Holds an event for a call its tenant has not started: true when held (with the time
-- it is held until), false when the call is there now (started since the event was
-- refused: the caller sends it again, as it arrives in time). Refuses as before when the
-- tenant could not start the call, or holds its 1,000 events already.
create function private.voice_call_event_held(
  p_tenant_id uuid, p_provider_call_id text, p_type text, p_payload jsonb,
  out held boolean, out held_until timestamptz
)
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_status text;
begin
  v_status := private.voice_event_tenant_status(p_tenant_id);
  if v_status <> 'active' or not private.tenant_has_feature(p_tenant_id, 'voice') or p_provider_call_id like 'manual:%' then
    raise exception 'No such call' using errcode = 'PT404', detail = jsonb_build_object('code', 'unknown_call')::text;
  end if;
  perform private.voice_call_id_lock(p_tenant_id, p_provider_call_id);
  -- A fresh snapshot after the lock: a start that committed while this waited is seen.
  if exists (select 1 from public.voice_calls c where c.tenant_id = p_tenant_id and c.provider_call_id = p_provider_call_id) then
    held := false;
    return;
  end if;
  delete from private.voice_call_early_events e
  where e.tenant_id = p_tenant_id and e.received_at < now() - interval '10 minutes';
  if (select count(*) from (select 1 from private.voice_call_early_events e where e.tenant_id = p_tenant_id limit 1000) n) >= 1000 then
    raise exception 'No such call, and the tenant holds as many early events as it may' using errcode = 'PT404',
      detail = jsonb_build_object('code', 'unknown_call')::text;
  end if;
  insert into private.voice_call_early_events (tenant_id, provider_call_id, type, payload)
  values (p_tenant_id, p_provider_call_id, p_type, p_payload);
  held := true;
  held_until := now() + interval '10 minutes';
end;
$$;
revoke all on function private.voice_call_event_held(uuid, text, text, jsonb) from public, anon, authenticated;
grant execute on function private.voice_call_event_held(uuid, text, text, jsonb) to service_role;

-- A new provider call applies the events held for it, oldest first, each in its own
-- subtransaction (one refused does not undo the start or the others), and forgets them.
-- An event without its own time takes the time it arrived (never before the start):
-- that is when the provider said it.
create function private.voice_call_apply_early_events() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  e private.voice_call_early_events;
  v_at timestamptz;
begin
  perform private.voice_call_id_lock(new.tenant_id, new.provider_call_id);
  for e in
    with taken as (
      delete from private.voice_call_early_events x
      where x.tenant_id = new.tenant_id and x.provider_call_id = new.provider_call_id
      returning x.*
    )
    select * from taken order by taken.id
  loop
    continue when e.received_at < now() - interval '10 minutes';
    begin
      case e.type
        when 'call.answered' then
          v_at := coalesce((e.payload ->> 'answered_at')::timestamptz, e.received_at);
          perform private.voice_call_answered(new.tenant_id, new.provider_call_id, v_at);
        when 'transcript.segments' then
          perform private.voice_call_segments_appended(new.tenant_id, new.provider_call_id, e.payload -> 'segments');
        when 'call.ended' then
          v_at := greatest(coalesce((e.payload ->> 'ended_at')::timestamptz, e.received_at), new.started_at);
          perform private.voice_call_ended(new.tenant_id, new.provider_call_id, e.payload ->> 'status', v_at,
            (e.payload ->> 'duration_seconds')::int, e.payload ->> 'outcome', (e.payload ->> 'cost')::numeric,
            e.payload ->> 'summary', e.payload ->> 'recording_path');
      end case;
    exception when others then
      raise warning 'voice early events: % for call % of tenant % dropped: % (%)', e.type, new.id, new.tenant_id, sqlerrm, sqlstate;
    end;
  end loop;
  return null;
end;
$$;
revoke all on function private.voice_call_apply_early_events() from public, anon, authenticated;
-- After the other row triggers (names sort after webhook_outbox): call.started is queued
-- before the events it is followed by. People's calls (manual: ids) never have any.
create trigger zz_apply_early_events after insert on public.voice_calls
  for each row when (new.provider_call_id is not null and new.provider_call_id not like 'manual:%')
  execute function private.voice_call_apply_early_events();

-- Redefined: as 20261202160000_voice_events_tenant_state.sql, and a new call answers its
-- status after the events held for it (a held end makes it completed at once).
create or replace function private.voice_call_started(
  p_tenant_id uuid, p_agent_id uuid, p_provider_call_id text, p_direction text,
  p_from text, p_to text, p_started_at timestamptz, p_answered boolean
) returns table (applied boolean, call_id uuid, status text)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_id uuid;
  v_tenant_status text;
begin
  v_tenant_status := private.voice_event_tenant_status(p_tenant_id);
  -- A repeat answers the call as it is, before the rule about new calls.
  return query select false, c.id, c.status from public.voice_calls c
    where c.tenant_id = p_tenant_id and c.provider_call_id = p_provider_call_id;
  if found then
    return;
  end if;
  if v_tenant_status = 'suspended' then
    raise exception 'The tenant is suspended; it takes no new calls' using errcode = 'PT403',
      detail = jsonb_build_object('code', 'tenant_suspended')::text;
  end if;
  insert into public.voice_calls (tenant_id, agent_id, customer_id, direction, status, provider_call_id,
                                  from_number, to_number, started_at, answered_at)
  values (p_tenant_id, p_agent_id,
          (select c.id from public.voice_customers c
           where c.tenant_id = p_tenant_id and c.phone = case when p_direction = 'outbound' then p_to else p_from end),
          p_direction, case when p_answered then 'in_progress' else 'ringing' end, p_provider_call_id,
          p_from, p_to, coalesce(p_started_at, now()), case when p_answered then coalesce(p_started_at, now()) end)
  on conflict (tenant_id, provider_call_id) do nothing
  returning id into v_id;
  if v_id is not null then
    return query select true, c.id, c.status from public.voice_calls c where c.tenant_id = p_tenant_id and c.id = v_id;
    return;
  end if;
  -- Started at the same moment by a concurrent repeat: that one's call.
  return query select false, c.id, c.status from public.voice_calls c
    where c.tenant_id = p_tenant_id and c.provider_call_id = p_provider_call_id;
end;
$$;
