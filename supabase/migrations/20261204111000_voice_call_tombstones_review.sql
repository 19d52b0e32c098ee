-- Deleted calls' tombstones, after review (issue 14; 20261204110000_voice_call_tombstones.sql).
--
-- * The tombstone kept the provider call id as sent. That is free text of up to 200
--   characters, written by the provider or a tenant's key, and an integrator may build
--   it from the caller's number. It would then outlive an erasure by 30 days. The
--   tombstone now keeps the id's SHA-256 only, and events are matched by it.
-- * A hold checked the tenant's state before the tombstone. In a suspended tenant, or
--   one whose plan lost voice, a deleted call's start was refused as deleted but its
--   answer, segments or end as unknown (404). The tombstone now comes first, so every
--   event of a deleted call gets the same answer whatever the tenant's state (a
--   deleted tenant's still say `tenant_deleted`).
-- * Answering 410 was wrong for what posts call events: a relay that delivers webhooks
--   and retries what is not 2xx. Some such senders even take 410 as "unsubscribe this
--   endpoint". The function now answers these events 200, `{applied: false, deleted:
--   true}`, like any other late event that changes nothing (the route turns the
--   database's refusal below into that answer). A recording upload asked for a deleted
--   call is an API request, not a delivery: it is 410 `call_deleted` (it was 404
--   `unknown_call`), so the provider knows to discard the recording.
-- * The daily prune deletes every expired tombstone in one statement. After a large
--   erasure that is thousands of rows, 30 days later: small next to the webhook history
--   the same job prunes, so it stays one statement.

-- Existing tombstones, re-keyed by their ids' hashes.
alter table private.voice_call_tombstones add column provider_call_hash bytea;
update private.voice_call_tombstones t
set provider_call_hash = pg_catalog.sha256(pg_catalog.convert_to(t.provider_call_id, 'UTF8'));
alter table private.voice_call_tombstones drop constraint voice_call_tombstones_pkey;
alter table private.voice_call_tombstones drop column provider_call_id;
alter table private.voice_call_tombstones alter column provider_call_hash set not null;
alter table private.voice_call_tombstones add primary key (tenant_id, provider_call_hash);

-- A provider call id as its tombstone keeps it.
create function private.voice_call_id_hash(p_provider_call_id text) returns bytea
language sql immutable strict parallel safe
set search_path = ''
as $$
  select pg_catalog.sha256(pg_catalog.convert_to(p_provider_call_id, 'UTF8'));
$$;
revoke all on function private.voice_call_id_hash(text) from public, anon, authenticated;
grant execute on function private.voice_call_id_hash(text) to service_role;

-- Redefined (20261204110000): the ids' hashes.
create or replace function private.voice_calls_tombstoned() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  insert into private.voice_call_tombstones (tenant_id, provider_call_hash)
  select g.tenant_id, private.voice_call_id_hash(g.provider_call_id)
  from gone g
  where g.provider_call_id not like 'manual:%'
    and exists (select 1 from public.tenants t where t.id = g.tenant_id)
  -- A call the service role inserted again by hand, then deleted again: the newer time.
  on conflict (tenant_id, provider_call_hash) do update set deleted_at = excluded.deleted_at;
  return null;
end;
$$;
comment on function private.voice_calls_tombstoned() is
  'After a delete on voice_calls: a tombstone (tenant, SHA-256 of the provider call id) per deleted provider call, '
  'so that its late events are not taken (issue 14).';

-- Redefined (20261204110000): by the id's hash.
create or replace function private.voice_call_refuse_deleted(p_tenant_id uuid, p_provider_call_id text) returns void
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if exists (select 1 from private.voice_call_tombstones t
             where t.tenant_id = p_tenant_id and t.provider_call_hash = private.voice_call_id_hash(p_provider_call_id)) then
    raise exception 'This call was deleted; its events are not taken' using errcode = 'PT410',
      detail = jsonb_build_object('code', 'call_deleted')::text;
  end if;
end;
$$;
comment on function private.voice_call_refuse_deleted(uuid, text) is
  'Raises PT410 call_deleted when the tenant deleted a call of this provider id in the last 30 days (its tombstone).';
comment on function private.prune_voice_call_tombstones(interval) is
  'Drops the tombstones of calls deleted longer than p_keep ago (30 days); run by the daily prune job.';

-- Redefined: as 20261204110000_voice_call_tombstones.sql, with the tombstone checked
-- before the tenant's state.
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
  -- A deleted call's event says so whatever the tenant's state: its tombstone committed
  -- with the delete, so no lock is needed to see it.
  perform private.voice_call_refuse_deleted(p_tenant_id, p_provider_call_id);
  if v_status <> 'active' or not private.tenant_has_feature(p_tenant_id, 'voice') or p_provider_call_id like 'manual:%' then
    raise exception 'No such call' using errcode = 'PT404', detail = jsonb_build_object('code', 'unknown_call')::text;
  end if;
  perform private.voice_call_id_lock(p_tenant_id, p_provider_call_id);
  -- A fresh snapshot after the lock: a start that committed while this waited is seen.
  if exists (select 1 from public.voice_calls c where c.tenant_id = p_tenant_id and c.provider_call_id = p_provider_call_id) then
    held := false;
    return;
  end if;
  -- And a delete that committed while this waited (the look above no longer finds the call).
  perform private.voice_call_refuse_deleted(p_tenant_id, p_provider_call_id);
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

-- Redefined: as 20261203254000_voice_recording_consent.sql, and a deleted call's
-- recording is 410 call_deleted (the provider discards it) rather than unknown.
create or replace function private.voice_call_recording_of(p_tenant_id uuid, p_provider_call_id text)
returns table (call_id uuid, recording_object text)
language plpgsql stable
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_id uuid;
  v_object text;
  v_customer uuid;
  v_consent boolean;
  v_required boolean;
begin
  perform private.voice_event_tenant_status(p_tenant_id);
  select v.id, v.recording_object, v.customer_id, c.recording_consent,
         coalesce(t.settings -> 'voice_recording_requires_consent' = 'true'::jsonb, false)
  into v_id, v_object, v_customer, v_consent, v_required
  from public.voice_calls v
  join public.tenants t on t.id = v.tenant_id
  left join public.voice_customers c on c.tenant_id = v.tenant_id and c.id = v.customer_id
  where v.tenant_id = p_tenant_id and v.provider_call_id = p_provider_call_id;
  if v_id is null then
    perform private.voice_call_refuse_deleted(p_tenant_id, p_provider_call_id);
    raise exception 'No such call' using errcode = 'PT404', detail = jsonb_build_object('code', 'unknown_call')::text;
  end if;
  if v_required and not coalesce(v_consent, false) then
    raise exception 'The tenant records calls only of customers who consented' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'recording_not_consented', 'details', jsonb_build_object('customer_id', v_customer))::text;
  end if;
  return query select v_id, v_object;
end;
$$;
