-- The telephony provider's call path (issue 14): routing a dialled number, and the call
-- events, idempotent by the provider's call id. Only the service role runs these (the
-- voice function's machine routes); each is one round trip.

-- The active agent for a dialled number, with its tenant and configuration and the
-- caller's customer record if the tenant knows the number: one lookup through the
-- partial unique index of active numbers (and, only when that misses, the plain phone
-- index to say why). Refusals are 404s whose code the provider can act on:
-- unknown_number, agent_inactive, tenant_suspended, tenant_deleted. Definer: it renders
-- timestamps the API's way (private.api_timestamp).
create function private.voice_route(p_to text, p_from text default null) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
  a public.voice_agents;
  v_status text;
  v_tenant_name text;
  v_customer jsonb;
begin
  select * into a from public.voice_agents where phone = p_to and active;
  if not found then
    if exists (select 1 from public.voice_agents where phone = p_to) then
      raise exception 'The agent for this number is inactive' using errcode = 'PT404',
        detail = jsonb_build_object('code', 'agent_inactive')::text;
    end if;
    raise exception 'No agent answers this number' using errcode = 'PT404',
      detail = jsonb_build_object('code', 'unknown_number')::text;
  end if;
  select t.status, t.name into v_status, v_tenant_name from public.tenants t where t.id = a.tenant_id;
  if v_status <> 'active' then
    raise exception 'The tenant of this number is %', v_status using errcode = 'PT404',
      detail = jsonb_build_object('code', 'tenant_' || v_status)::text;
  end if;
  if p_from is not null then
    select jsonb_build_object(
      'id', c.id, 'phone', c.phone, 'name', c.name, 'email', c.email, 'notes', c.notes, 'tags', to_jsonb(c.tags),
      'recording_consent', c.recording_consent, 'marketing_consent', c.marketing_consent,
      'recording_consent_at', private.api_timestamp(c.recording_consent_at))
      into v_customer
    from public.voice_customers c where c.tenant_id = a.tenant_id and c.phone = p_from;
  end if;
  return jsonb_build_object(
    'tenant', jsonb_build_object('id', a.tenant_id, 'name', v_tenant_name),
    'agent', jsonb_build_object(
      'id', a.id, 'name', a.name, 'phone', a.phone, 'voice_id', a.voice_id, 'llm_config', a.llm_config,
      'greeting', a.greeting, 'language', a.language, 'knowledge_base_id', a.knowledge_base_id),
    'customer', v_customer);
end;
$$;
revoke all on function private.voice_route(text, text) from public, anon, authenticated;
grant execute on function private.voice_route(text, text) to service_role;

-- ------------------------------------------------------------------ call events

-- A call started (ringing, or already answered): created once per provider call id; a
-- repeated or late start changes nothing and answers the call as it is. The agent must
-- be the tenant's (composite key); the customer is found by the caller's number
-- (inbound) or the number called (outbound).
create function private.voice_call_started(
  p_tenant_id uuid, p_agent_id uuid, p_provider_call_id text, p_direction text,
  p_from text, p_to text, p_started_at timestamptz, p_answered boolean
) returns table (applied boolean, call_id uuid, status text)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_id uuid;
begin
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
  return query select false, c.id, c.status from public.voice_calls c
    where c.tenant_id = p_tenant_id and c.provider_call_id = p_provider_call_id;
end;
$$;
revoke all on function private.voice_call_started(uuid, uuid, text, text, text, text, timestamptz, boolean)
  from public, anon, authenticated;
grant execute on function private.voice_call_started(uuid, uuid, text, text, text, text, timestamptz, boolean)
  to service_role;

-- Transcript segments of a call still going on, appended by their sequence number: a
-- segment already there (a repeat) or a call already ended (a late event) changes
-- nothing. A ringing call with a segment was answered. An unknown call is 404
-- unknown_call. p_segments: [{"seq", "speaker", "content", "offset_ms"}, …]. Takes the
-- call row FOR NO KEY UPDATE (the only lock), so an end event waits for the append.
create function private.voice_call_segments_appended(p_tenant_id uuid, p_provider_call_id text, p_segments jsonb)
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
revoke all on function private.voice_call_segments_appended(uuid, text, jsonb) from public, anon, authenticated;
grant execute on function private.voice_call_segments_appended(uuid, text, jsonb) to service_role;

-- The call ended (completed, failed or missed) with its outcome, duration, cost,
-- summary and recording: applied once; an ended call stays as it ended. A call that
-- completes while still ringing was answered at its start.
create function private.voice_call_ended(
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
revoke all on function private.voice_call_ended(uuid, text, text, timestamptz, int, text, numeric, text, text)
  from public, anon, authenticated;
grant execute on function private.voice_call_ended(uuid, text, text, timestamptz, int, text, numeric, text, text)
  to service_role;
