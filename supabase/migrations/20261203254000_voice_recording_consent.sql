-- Call recordings only with the customer's consent, where the tenant asks for it (issue 14;
-- 20261203251000_voice_call_recording_objects.sql). Customers carry `recording_consent`
-- (with the time it was given), and /route hands it to the provider, whose decision it
-- was whether to record. A tenant bound by a consent rule (two-party consent, GDPR) now
-- sets `settings.voice_recording_requires_consent: true`, and the platform then refuses
-- to take a recording (409 recording_not_consented) for a call whose customer has not
-- consented — or that has no customer: an unknown caller consented to nothing the
-- platform knows of. The flag is read as JSON true only: anything else (absent, false,
-- a string written past the API) leaves recordings to the provider, as before.

-- Redefined (20261203251000_voice_call_recording_objects.sql): the tenant's consent rule.
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
    raise exception 'No such call' using errcode = 'PT404', detail = jsonb_build_object('code', 'unknown_call')::text;
  end if;
  if v_required and not coalesce(v_consent, false) then
    raise exception 'The tenant records calls only of customers who consented' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'recording_not_consented', 'details', jsonb_build_object('customer_id', v_customer))::text;
  end if;
  return query select v_id, v_object;
end;
$$;
