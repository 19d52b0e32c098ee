-- A call's transcript rules answer no one outside its tenant (issue 14; as
-- 20261203234000_plan_checks_for_outsiders.sql for the plan).
--
-- Appending a segment through the table runs two definer before-row triggers that read
-- the call, before the policy's WITH CHECK: anyone signed in who held another tenant's
-- call id was answered provider_call (409) for a provider's call, call_ended (409) for an
-- ended one, and the policy's 42501 otherwise or for an id nobody has — the call's
-- existence and state, read by id; and the ended-call check locked the call row first.
-- Now both return at once for an API caller outside the tenant (private.outside_tenant),
-- and the policy refuses the append.

-- Redefined (20261203080100_voice_call_times_and_key_events.sql): nothing for an API caller outside the call's tenant.
create or replace function private.voice_segment_people_rules() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if private.outside_tenant(new.tenant_id) then
    return new;
  end if;
  if private.current_user_id() is null
    or (auth.jwt() ->> 'iss' = 'tenant-platform:api-key' and auth.jwt() ->> 'role' = 'service_role') then
    return new;
  end if;
  if exists (select 1 from public.voice_calls c
             where c.tenant_id = new.tenant_id and c.id = new.call_id and c.provider_call_id not like 'manual:%') then
    raise exception 'The telephony provider writes its calls'' transcripts' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'provider_call')::text;
  end if;
  return new;
end;
$$;

-- Redefined (20261203080100_voice_call_times_and_key_events.sql): nothing for an API caller outside the call's tenant.
create or replace function private.voice_segment_call_open() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_status text;
begin
  if private.outside_tenant(new.tenant_id) then
    return new;
  end if;
  if private.current_user_id() is null
    or (auth.jwt() ->> 'iss' = 'tenant-platform:api-key' and auth.jwt() ->> 'role' = 'service_role') then
    return new;
  end if;
  select c.status into v_status from public.voice_calls c
  where c.tenant_id = new.tenant_id and c.id = new.call_id
  for share;
  if v_status is not null and v_status not in ('ringing', 'in_progress') then
    raise exception 'The call has ended; its transcript is final' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'call_ended')::text;
  end if;
  return new;
end;
$$;
