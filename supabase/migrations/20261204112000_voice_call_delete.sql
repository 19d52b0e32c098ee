-- Deleting one call through the API, and the tombstones after a second review (issue 14;
-- 20261204110000_voice_call_tombstones.sql, 20261204111000_voice_call_tombstones_review.sql).
--
-- * `DELETE /voice/calls/{id}` (2026-12-04) deleted the call and nothing else. The
--   webhook events about the call stayed in the outbox: `call.started` and `call.ended`
--   carry the call's row (numbers, summary, recording path), and those not delivered yet
--   still went out after the delete. Receivers that keep copies of calls were never told
--   the call was gone. The route now runs `private.voice_call_delete`, in one
--   transaction:
--   - the call (its transcript, and its recording's storage jobs, by the calls' triggers;
--     its tombstone);
--   - every webhook event about it, delivered or not (with their deliveries and
--     attempts), as an erasure removes them;
--   - then `call.deleted`, naming the call by its id only.
--   Its rules: admins of an active tenant, and platform admins in any tenant (a
--   platform admin may delete a suspended tenant's call, as the table's policy lets
--   them); 404 for a call not in the tenant; 409 `call_in_progress` while the call is
--   ringing or in progress. A delete through the table (PostgREST) still removes the row
--   only: it skips the open-call rule, the events and the notice.
-- * A hold checked the tombstone before looking for the call. When a call and a
--   tombstone of its id both existed (an operator's hand insert after a delete), a hold
--   reached by a race dropped an event of a live call. The tombstone is now checked only
--   when there is no call of that id.
--
-- What the tombstones keep, said more exactly than 20261204111000's header does: the
-- provider call id's SHA-256, unkeyed. An id built from a phone number can be found again
-- by hashing every number of a country: pseudonymised, not anonymous. And the re-keying
-- there updated the rows before dropping the column, so the ids stayed in dead row
-- versions until vacuum. The table was one day old and held development data only.

create function private.voice_call_delete(p_tenant_id uuid, p_call_id uuid)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_status text;
begin
  -- Called by people with their own rights: the table's delete policy's rule.
  if pg_catalog.current_setting('role', true) in ('anon', 'authenticated')
     and not coalesce(p_tenant_id = any (private.tenant_ids('admin', true)) or private.is_platform_admin(), false) then
    raise exception 'permission denied to delete the calls of this tenant' using errcode = '42501';
  end if;
  -- Locked first: an event changing the call's status waits for the delete, then finds
  -- the call gone (dropped, by its tombstone).
  select v.status into v_status from public.voice_calls v
  where v.tenant_id = p_tenant_id and v.id = p_call_id
  for update;
  if not found then
    raise exception 'Call not found' using errcode = 'PT404', detail = jsonb_build_object('code', 'not_found');
  end if;
  if v_status in ('ringing', 'in_progress') then
    raise exception 'The call has not ended; it can be deleted once it has' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'call_in_progress', 'details', jsonb_build_object('status', v_status));
  end if;
  delete from public.voice_calls v where v.tenant_id = p_tenant_id and v.id = p_call_id;
  -- Their payloads hold the call's row; found by the (tenant_id, ordering_key) index.
  delete from private.webhook_events e where e.tenant_id = p_tenant_id and e.ordering_key = 'call:' || p_call_id;
  perform private.emit_webhook_event(p_tenant_id, 'call.deleted', 'call:' || p_call_id,
    jsonb_build_object('type', 'call.deleted', 'tenant_id', p_tenant_id,
                       'data', jsonb_build_object('id', p_call_id),
                       'occurred_at', private.api_timestamp(pg_catalog.clock_timestamp())));
end;
$$;
revoke all on function private.voice_call_delete(uuid, uuid) from public, anon;
grant execute on function private.voice_call_delete(uuid, uuid) to authenticated, service_role;
comment on function private.voice_call_delete(uuid, uuid) is
  'DELETE /voice/calls/{id}: an ended call, the webhook events about it, and call.deleted (ids only); admins of an '
  'active tenant and platform admins (issue 14).';

-- Redefined: as 20261204111000_voice_call_tombstones_review.sql, the tombstone checked
-- only when no call of the id exists.
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
  if not exists (select 1 from public.voice_calls c where c.tenant_id = p_tenant_id and c.provider_call_id = p_provider_call_id) then
    perform private.voice_call_refuse_deleted(p_tenant_id, p_provider_call_id);
  end if;
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
