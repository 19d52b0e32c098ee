-- A deleted call stays deleted (issue 14; 20261204100000_voice_customer_erasure.sql).
--
-- Providers deliver each call event on its own and retry it until they see a 2xx. Until
-- now nothing remembered a deleted call. After the call was deleted, a retried
-- `call.started` created the call again, with the caller's number: an admin deleting a
-- call, or erasing a customer, could find it back minutes later, and an erased caller's
-- number was stored again. A late answer, transcript segments or end of the call was
-- held for ten minutes as an early event, transcript words included, and then dropped.
--
-- Now deleting a call, by any path (the erasure, an admin through the table, the
-- service role), leaves a tombstone of its tenant and provider call id for 30 days.
-- Within them every event for that id is refused with 410 `call_deleted`: not started
-- again, and not held. Providers take a 4xx as final and stop retrying. The tombstone
-- holds no personal data: the provider's opaque id and the time.
--
-- Not covered:
-- * Calls deleted before this migration. Their ids are in the audit trail's DELETE
--   entries, but the erased ones are redacted, and a backfill would read the whole trail
--   in one statement; nothing is backfilled.
-- * People's own calls (`manual:` ids): the provider cannot report them.
-- * A tenant hard-deleted (its calls cascade): the tenant's tombstones go with it.
-- * After 30 days, an id is taken again as a new call. Providers stop retrying within
--   hours (Twilio: 24 hours at most; Telnyx, Vonage: minutes).

create table private.voice_call_tombstones (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  provider_call_id text not null,
  deleted_at timestamptz not null default now(),
  primary key (tenant_id, provider_call_id)
);
-- The daily prune's walk over every tenant's old tombstones.
create index voice_call_tombstones_age_idx on private.voice_call_tombstones (deleted_at);
-- Private schema, not exposed; only the definer functions below touch it.
alter table private.voice_call_tombstones enable row level security;
revoke all on private.voice_call_tombstones from public, anon, authenticated, service_role;

-- The deleted calls' ids, kept in the delete's own statement (a rolled-back delete keeps
-- none). One insert per statement: a tenant's thousands of calls deleted at once (an
-- erasure) take no lock per row. A tenant being hard-deleted is gone already when its
-- calls cascade: none is kept for it (its tombstones cascade too, and a row naming it
-- would fail the foreign key).
create function private.voice_calls_tombstoned() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  insert into private.voice_call_tombstones (tenant_id, provider_call_id)
  select g.tenant_id, g.provider_call_id
  from gone g
  where g.provider_call_id not like 'manual:%'
    and exists (select 1 from public.tenants t where t.id = g.tenant_id)
  -- A call the service role inserted again by hand, then deleted again: the newer time.
  on conflict (tenant_id, provider_call_id) do update set deleted_at = excluded.deleted_at;
  return null;
end;
$$;
revoke all on function private.voice_calls_tombstoned() from public, anon, authenticated;
create trigger tombstoned after delete on public.voice_calls
  referencing old table as gone
  for each statement execute function private.voice_calls_tombstoned();

-- Refuses an event for a deleted call: 410 call_deleted. Called by a start about to
-- create its call and by a hold about to keep an event, after each found no call (in a
-- later snapshot than that look: a delete that had committed before it is seen here).
create function private.voice_call_refuse_deleted(p_tenant_id uuid, p_provider_call_id text) returns void
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if exists (select 1 from private.voice_call_tombstones t
             where t.tenant_id = p_tenant_id and t.provider_call_id = p_provider_call_id) then
    raise exception 'This call was deleted; its events are not taken' using errcode = 'PT410',
      detail = jsonb_build_object('code', 'call_deleted')::text;
  end if;
end;
$$;
revoke all on function private.voice_call_refuse_deleted(uuid, text) from public, anon, authenticated;
grant execute on function private.voice_call_refuse_deleted(uuid, text) to service_role;

-- Tombstones older than p_keep, dropped (daily, by the prune job). How many.
create function private.prune_voice_call_tombstones(p_keep interval default interval '30 days') returns int
language sql volatile security definer
set search_path = ''
as $$
  with dropped as (
    delete from private.voice_call_tombstones t where t.deleted_at < now() - p_keep returning 1
  )
  select count(*)::int from dropped;
$$;
revoke all on function private.prune_voice_call_tombstones(interval) from public, anon, authenticated;
grant execute on function private.prune_voice_call_tombstones(interval) to service_role;

-- Redefined: as 20261204100000_voice_customer_erasure.sql, and a call deleted within
-- 30 days is not started again (410 call_deleted), whatever the tenant's state.
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
  v_customer uuid;
  v_constraint text;
begin
  v_tenant_status := private.voice_event_tenant_status(p_tenant_id);
  -- A repeat answers the call as it is, before the rule about new calls.
  return query select false, c.id, c.status from public.voice_calls c
    where c.tenant_id = p_tenant_id and c.provider_call_id = p_provider_call_id;
  if found then
    return;
  end if;
  perform private.voice_call_refuse_deleted(p_tenant_id, p_provider_call_id);
  if v_tenant_status = 'suspended' then
    raise exception 'The tenant is suspended; it takes no new calls' using errcode = 'PT403',
      detail = jsonb_build_object('code', 'tenant_suspended')::text;
  end if;
  v_customer := (select c.id from public.voice_customers c
                 where c.tenant_id = p_tenant_id and c.phone = case when p_direction = 'outbound' then p_to else p_from end);
  loop
    begin
      insert into public.voice_calls (tenant_id, agent_id, customer_id, direction, status, provider_call_id,
                                      from_number, to_number, started_at, answered_at)
      values (p_tenant_id, p_agent_id, v_customer,
              p_direction, case when p_answered then 'in_progress' else 'ringing' end, p_provider_call_id,
              p_from, p_to, coalesce(p_started_at, now()), case when p_answered then coalesce(p_started_at, now()) end)
      on conflict (tenant_id, provider_call_id) do nothing
      returning id into v_id;
      exit;
    exception when foreign_key_violation then
      get stacked diagnostics v_constraint = constraint_name;
      if v_customer is null or v_constraint is distinct from 'voice_calls_tenant_id_customer_id_fkey' then
        raise;
      end if;
      v_customer := null;
    end;
  end loop;
  if v_id is not null then
    return query select true, c.id, c.status from public.voice_calls c where c.tenant_id = p_tenant_id and c.id = v_id;
    return;
  end if;
  -- Started at the same moment by a concurrent repeat: that one's call.
  return query select false, c.id, c.status from public.voice_calls c
    where c.tenant_id = p_tenant_id and c.provider_call_id = p_provider_call_id;
end;
$$;

-- Redefined: as 20261203160000_voice_early_events_review.sql, and an event for a call
-- deleted within 30 days is refused (410 call_deleted) rather than held: its start will
-- not come again, and a late transcript would be kept ten minutes for nothing.
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
