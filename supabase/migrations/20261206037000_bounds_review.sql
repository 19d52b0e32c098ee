-- After review of 20261206034000 and 20261206036000.
--
-- 1. A batch of transcript appends (shared/batch.ts) runs each event through
--    private.voice_call_segments_append_outcome, which turned every error into that
--    event's outcome: a lock timeout too, so a batch of 48 events queued behind one held
--    lock waited 48 × 30 s. The lock timeout now ends the batch's statement (503, and the
--    provider retries the events), as any error of the statement itself does.
-- 2. More statements the functions send outside a transaction of theirs wait at most 30 s
--    for a lock: /route's lookups (which queue behind an ALTER TABLE waiting for its
--    lock as writes do), the knowledge search during a call, the recordings' restore and
--    refusal, the rate-limit counters and the job metrics.
-- 3. A customer refused for their pending uploads is told to come back when enough of
--    them will have been checked, not when the oldest one is (which may free a byte), and
--    never sooner than a minute (a check that is late must not make clients retry every
--    second).

create or replace function private.voice_call_segments_append_outcome(p_tenant_id uuid, p_provider_call_id text, p_segments text)
returns jsonb
language plpgsql
set search_path = ''
set lock_timeout = '30s'
as $$
declare
  r record;
  v_detail text;
  v_constraint text;
  v_column text;
begin
  select * into r from private.voice_call_segments_appended(p_tenant_id, p_provider_call_id, p_segments::jsonb);
  return jsonb_build_object('applied', r.applied, 'call_id', r.call_id, 'status', r.status);
-- A lock waited for too long is the whole batch's to answer (503, retried), not one
-- event's outcome: each of the batch's events would otherwise wait its own 30 s in turn.
exception when lock_not_available then
  raise;
when others then
  get stacked diagnostics v_detail = pg_exception_detail, v_constraint = constraint_name, v_column = column_name;
  return jsonb_build_object('error', jsonb_strip_nulls(jsonb_build_object(
    'code', sqlstate, 'message', sqlerrm, 'detail', nullif(v_detail, ''),
    'constraint_name', nullif(v_constraint, ''), 'column_name', nullif(v_column, ''))));
end;
$$;

do $$
declare
  v_fn regprocedure;
begin
  for v_fn in
    select p.oid::regprocedure
    from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'private' and p.proname = any (array[
      'voice_route_answer', 'voice_route_in_tenant', 'kb_search_for_call', 'kb_search_for_call_with_embedding',
      'voice_call_recording_restore', 'voice_call_refuse_deleted',
      'rate_limit_hit', 'rate_limit_key_read', 'job_metrics'])
  loop
    execute pg_catalog.format('alter function %s set lock_timeout = %L', v_fn, '30s');
  end loop;
end;
$$;

-- Redefined (20261206036000_customer_pending_uploads_cap.sql): retry_after as above.
create or replace function private.check_customer_upload(p_tenant_id uuid, p_size_bytes bigint) returns void
language plpgsql security definer
set search_path = ''
as $$
declare
  v_me uuid := private.current_user_id();
  v_cap bigint;
  v_pending bigint;
  v_frees timestamptz;
begin
  if v_me is null or not p_tenant_id = any (private.tenant_ids('user')) then
    return;
  end if;
  v_cap := private.customer_pending_upload_bytes(p_tenant_id);
  perform pg_catalog.pg_advisory_xact_lock(
    pg_catalog.hashtextextended('customer_uploads:' || p_tenant_id::text || ':' || v_me::text, 0));
  select coalesce(sum(a.size_bytes), 0) into v_pending
  from public.attachments a
  where a.tenant_id = p_tenant_id and a.uploaded_by = v_me and a.status = 'pending';
  if v_pending + coalesce(p_size_bytes, 0) > v_cap then
    -- When their checks will have freed enough: the pending ones oldest first, until the
    -- room left holds this one.
    select r.created_at + interval '2 hours 10 minutes' into v_frees
    from (
      select a.created_at, sum(a.size_bytes) over (order by a.created_at, a.id) as freed
      from public.attachments a
      where a.tenant_id = p_tenant_id and a.uploaded_by = v_me and a.status = 'pending'
    ) r
    where v_pending - r.freed + coalesce(p_size_bytes, 0) <= v_cap
    order by r.created_at limit 1;
    raise exception 'Too many bytes of yours are waiting for their upload in this tenant' using errcode = 'PT429',
      detail = pg_catalog.jsonb_build_object('code', 'rate_limited', 'details', pg_catalog.jsonb_build_object(
        'scope', 'customer_pending_upload_bytes', 'limit', v_cap, 'pending', v_pending, 'requested', p_size_bytes,
        'retry_after', greatest(60, pg_catalog.ceil(extract(epoch from
          coalesce(v_frees, pg_catalog.now() + interval '2 hours 10 minutes') - pg_catalog.clock_timestamp())))::integer));
  end if;
end;
$$;
