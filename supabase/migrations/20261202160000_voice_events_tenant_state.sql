-- The provider's call path and the tenant's state (issue 14). Routing already refused a
-- suspended or deleted tenant's numbers, but the events that follow did not ask: the
-- provider (or the tenant's own key) could start calls for a suspended tenant, and write
-- calls and read knowledge of a deleted one. These functions run as the function's own
-- database role, which row-level security does not confine, so the rules are here:
--
-- * A new call needs an active tenant: suspended is 403 tenant_suspended (read-only, as
--   everywhere), deleted 404 tenant_deleted; a plan without voice stays the insert
--   trigger's 403 feature_not_in_plan (20261202100000_voice_plan.sql). A repeated start
--   of a call already there still answers that call while the tenant is suspended.
-- * Segments and the end of a call already started are still taken while the tenant is
--   suspended: the call began while it was active, and its record (the end's duration
--   and cost above all) must be whole. A deleted tenant takes nothing: 404 tenant_deleted.
-- * A deleted tenant has no knowledge for an agent to search, as one that does not exist.
-- Otherwise as 20261202090400_voice_routing.sql and 20261202100000_voice_plan.sql.

-- The status of the tenant a call event names (null for none), read once per event;
-- 404 tenant_deleted for a deleted one, which takes no event. A missing tenant is left to
-- the caller (its foreign keys, or unknown_call).
create function private.voice_event_tenant_status(p_tenant_id uuid) returns text
language plpgsql stable
set search_path = ''
as $$
declare
  v_status text;
begin
  select t.status into v_status from public.tenants t where t.id = p_tenant_id;
  if v_status = 'deleted' then
    raise exception 'The tenant of this call is deleted' using errcode = 'PT404',
      detail = jsonb_build_object('code', 'tenant_deleted')::text;
  end if;
  return v_status;
end;
$$;
revoke all on function private.voice_event_tenant_status(uuid) from public, anon, authenticated;
grant execute on function private.voice_event_tenant_status(uuid) to service_role;

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
    return query select true, v_id, case when p_answered then 'in_progress' else 'ringing' end;
    return;
  end if;
  -- Started at the same moment by a concurrent repeat: that one's call.
  return query select false, c.id, c.status from public.voice_calls c
    where c.tenant_id = p_tenant_id and c.provider_call_id = p_provider_call_id;
end;
$$;

create or replace function private.voice_call_segments_appended(p_tenant_id uuid, p_provider_call_id text, p_segments jsonb)
returns table (applied int, call_id uuid, status text)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_id uuid;
  v_status text;
  v_n int;
begin
  perform private.voice_event_tenant_status(p_tenant_id);
  select c.id, c.status into v_id, v_status from public.voice_calls c
  where c.tenant_id = p_tenant_id and c.provider_call_id = p_provider_call_id
  for no key update;
  if v_id is null then
    raise exception 'No such call' using errcode = 'PT404', detail = jsonb_build_object('code', 'unknown_call')::text;
  end if;
  if v_status not in ('ringing', 'in_progress') then
    return query select 0, v_id, v_status;
    return;
  end if;
  if v_status = 'ringing' then
    update public.voice_calls c set status = 'in_progress' where c.tenant_id = p_tenant_id and c.id = v_id;
    v_status := 'in_progress';
  end if;
  insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content, offset_ms)
  select p_tenant_id, v_id, s.seq, s.speaker, s.content, coalesce(s.offset_ms, 0)
  from jsonb_to_recordset(p_segments) as s(seq int, speaker text, content text, offset_ms int)
  order by s.seq
  on conflict (tenant_id, call_id, seq) do nothing;
  get diagnostics v_n = row_count;
  return query select v_n, v_id, v_status;
end;
$$;

create or replace function private.voice_call_ended(
  p_tenant_id uuid, p_provider_call_id text, p_status text, p_ended_at timestamptz, p_duration_seconds int,
  p_outcome text, p_cost numeric, p_summary text, p_recording_path text
) returns table (applied boolean, call_id uuid, status text)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
  c public.voice_calls;
begin
  perform private.voice_event_tenant_status(p_tenant_id);
  select * into c from public.voice_calls v
  where v.tenant_id = p_tenant_id and v.provider_call_id = p_provider_call_id
  for no key update;
  if c.id is null then
    raise exception 'No such call' using errcode = 'PT404', detail = jsonb_build_object('code', 'unknown_call')::text;
  end if;
  if c.status not in ('ringing', 'in_progress') then
    return query select false, c.id, c.status;
    return;
  end if;
  if c.status = 'ringing' and p_status = 'completed' then
    update public.voice_calls v set status = 'in_progress', answered_at = v.started_at
    where v.tenant_id = p_tenant_id and v.id = c.id;
  end if;
  update public.voice_calls v set
    status = p_status,
    ended_at = coalesce(p_ended_at, now()),
    duration_seconds = p_duration_seconds,
    outcome = coalesce(p_outcome, v.outcome),
    cost = coalesce(p_cost, v.cost),
    summary = coalesce(p_summary, v.summary),
    recording_path = coalesce(p_recording_path, v.recording_path)
  where v.tenant_id = p_tenant_id and v.id = c.id;
  return query select true, c.id, p_status;
end;
$$;

create or replace function private.kb_search_for_call(p_tenant_id uuid, p_query text, p_knowledge_base_id uuid, p_limit int)
returns table (chunk_id uuid, document_id uuid, knowledge_base_id uuid, title text, ordinal int, content text, score real)
language plpgsql stable
set search_path = ''
as $$
declare
  v_status text;
begin
  select t.status into v_status from public.tenants t where t.id = p_tenant_id;
  if v_status is null or v_status = 'deleted' then
    return;
  end if;
  perform private.assert_feature(p_tenant_id, 'knowledge_base');
  return query select * from private.kb_search_in_tenant(p_tenant_id, p_query, p_knowledge_base_id, p_limit);
end;
$$;
