-- Early call events, after review (issue 14; 20261203140000_voice_early_events.sql):
--
-- * A call's start applied every event held for it, one subtransaction each: one call id
--   could hold all of its tenant's 1,000, and a session past 64 subtransactions makes
--   every session's snapshots overflow (the batches and the sweep stop at 48 and 50 for
--   that). A call now holds at most 32 events, and a tenant at most 16 MiB of them.
-- * Held segments were applied with the start's time: a ringing call became in progress
--   when the start came, not when its first words did (the end, held earlier, then
--   ended it at its answer: 0 s). A held segment now answers a ringing call at the time
--   it arrived, as it would have in time.
-- * A held event was written under whoever started the call: a key's event, started by
--   the provider, was audited under nobody. The event now keeps the claims it came with
--   and is applied under them.
-- * Concurrent holds of different calls could each count 999 and all insert: the count
--   and the insert now take turns per tenant (holds are rare: only early events).
-- * The expired were cleared only by the tenant's next hold (a tenant that stopped
--   holding kept its rows), and that delete could meet a start's in another order. The
--   stale-call job (every minute) now drops them, skipping rows a start holds; a hold
--   counts only live events.

alter table private.voice_call_early_events add column claims text;
-- The job's walk over every tenant's expired events.
create index voice_call_early_events_expiry_idx on private.voice_call_early_events (received_at);

-- Redefined: as 20261203140000_voice_early_events.sql, with the bounds per call and in
-- bytes, the count and insert in turns per tenant, the caller's claims kept, and the
-- expired left to private.prune_voice_early_events.
create or replace function private.voice_call_event_held(
  p_tenant_id uuid, p_provider_call_id text, p_type text, p_payload jsonb,
  out held boolean, out held_until timestamptz
)
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_status text;
  v_tenant_n int;
  v_tenant_bytes bigint;
  v_call_n int;
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
  -- The tenant's room, counted and taken by one hold at a time (after the call's lock:
  -- a start takes only that one, so no two wait on each other).
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('voice early events/' || p_tenant_id::text, 14));
  select count(*), coalesce(sum(pg_catalog.pg_column_size(e.payload)), 0),
         count(*) filter (where e.provider_call_id = p_provider_call_id)
  into v_tenant_n, v_tenant_bytes, v_call_n
  from private.voice_call_early_events e
  where e.tenant_id = p_tenant_id and e.received_at >= now() - interval '10 minutes';
  if v_tenant_n >= 1000 or v_tenant_bytes + pg_catalog.pg_column_size(p_payload) > 16 * 1024 * 1024 or v_call_n >= 32 then
    raise exception 'No such call, and the tenant or the call holds as many early events as it may' using errcode = 'PT404',
      detail = jsonb_build_object('code', 'unknown_call')::text;
  end if;
  insert into private.voice_call_early_events (tenant_id, provider_call_id, type, payload, claims)
  values (p_tenant_id, p_provider_call_id, p_type, p_payload, nullif(current_setting('request.jwt.claims', true), ''));
  held := true;
  held_until := now() + interval '10 minutes';
end;
$$;

-- Redefined: as 20261203140000_voice_early_events.sql, each event under the claims it
-- came with (the start's own are back after each), and a held segment answering a
-- ringing call at the time it arrived.
create or replace function private.voice_call_apply_early_events() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  e private.voice_call_early_events;
  v_at timestamptz;
  v_claims text := current_setting('request.jwt.claims', true);
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
      perform pg_catalog.set_config('request.jwt.claims', coalesce(e.claims, ''), true);
      case e.type
        when 'call.answered' then
          v_at := coalesce((e.payload ->> 'answered_at')::timestamptz, e.received_at);
          perform private.voice_call_answered(new.tenant_id, new.provider_call_id, v_at);
        when 'transcript.segments' then
          perform private.voice_call_answered(new.tenant_id, new.provider_call_id, e.received_at);
          perform private.voice_call_segments_appended(new.tenant_id, new.provider_call_id, e.payload -> 'segments');
        when 'call.ended' then
          v_at := greatest(coalesce((e.payload ->> 'ended_at')::timestamptz, e.received_at), new.started_at);
          perform private.voice_call_ended(new.tenant_id, new.provider_call_id, e.payload ->> 'status', v_at,
            (e.payload ->> 'duration_seconds')::int, e.payload ->> 'outcome', (e.payload ->> 'cost')::numeric,
            e.payload ->> 'summary', e.payload ->> 'recording_path');
      end case;
      perform pg_catalog.set_config('request.jwt.claims', coalesce(v_claims, ''), true);
    exception when others then
      perform pg_catalog.set_config('request.jwt.claims', coalesce(v_claims, ''), true);
      raise warning 'voice early events: % for call % of tenant % dropped: % (%)', e.type, new.id, new.tenant_id, sqlerrm, sqlstate;
    end;
  end loop;
  return null;
end;
$$;

-- The events held longer than 10 minutes, dropped (every minute, with the stale-call
-- sweep): those of a start under way are left to it. How many were dropped.
create function private.prune_voice_early_events() returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_n int;
begin
  delete from private.voice_call_early_events x
  where (x.tenant_id, x.provider_call_id, x.id) in (
    select e.tenant_id, e.provider_call_id, e.id from private.voice_call_early_events e
    where e.received_at < now() - interval '10 minutes'
    limit 10000
    for update skip locked
  );
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;
revoke all on function private.prune_voice_early_events() from public, anon, authenticated;
grant execute on function private.prune_voice_early_events() to service_role;
