-- The call path's lookup in one statement (issue 14, /route speed).
--
-- private.voice_route ran four statements and two nested definer functions per call
-- (agent, tenant, private.assert_feature → private.tenant_has_feature, customer, with
-- private.api_timestamp for one field): about 158 µs in the database per call, against
-- 25 µs for the same join as one raw statement. Here the answer is one statement: the
-- active agent, its tenant, whether the tenant's plan (or its override) includes voice,
-- and the known caller, so a routable number costs one index probe per table, about
-- 95 µs. The reason codes are worked out only when the number does not route, as before:
-- unknown_number, agent_inactive, tenant_<status>, and the plan's refusal, which
-- private.assert_feature still raises with its details.
--
-- Two expressions are inlined rather than called, as function calls were most of the
-- cost: the plan feature (the expression private.tenant_has_feature evaluates: the
-- override's value when it names the feature, else the plan's; tests/functions/voice.test.ts
-- checks both directions against it), and the API timestamp format of
-- private.api_timestamp. A feature this statement reads as off still goes through
-- private.assert_feature, so the one rule decides the refusal and its details.

create or replace function private.voice_route(p_to text, p_from text default null) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
  r record;
begin
  select a.id, a.tenant_id, a.name, a.phone, a.voice_id, a.llm_config, a.greeting, a.language, a.knowledge_base_id,
         t.status, t.name as tenant_name,
         coalesce(case when o.features ? 'voice' then o.features -> 'voice' else p.features -> 'voice' end = 'true'::jsonb,
                  false) as has_voice,
         (select jsonb_build_object(
            'id', c.id, 'phone', c.phone, 'name', c.name, 'email', c.email, 'notes', c.notes, 'tags', to_jsonb(c.tags),
            'recording_consent', c.recording_consent, 'marketing_consent', c.marketing_consent,
            'recording_consent_at', to_char(c.recording_consent_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
          from public.voice_customers c
          where c.tenant_id = a.tenant_id and c.phone = p_from) as customer
    into r
  from public.voice_agents a
  join public.tenants t on t.id = a.tenant_id
  join private.plans p on p.id = t.plan
  left join private.tenant_plan_overrides o on o.tenant_id = t.id
  where a.phone = p_to and a.active;
  if not found then
    if exists (select 1 from public.voice_agents where phone = p_to) then
      raise exception 'The agent for this number is inactive' using errcode = 'PT404',
        detail = jsonb_build_object('code', 'agent_inactive')::text;
    end if;
    raise exception 'No agent answers this number' using errcode = 'PT404',
      detail = jsonb_build_object('code', 'unknown_number')::text;
  end if;
  if r.status <> 'active' then
    raise exception 'The tenant of this number is %', r.status using errcode = 'PT404',
      detail = jsonb_build_object('code', 'tenant_' || r.status)::text;
  end if;
  if not r.has_voice then
    perform private.assert_feature(r.tenant_id, 'voice');
  end if;
  return jsonb_build_object(
    'tenant', jsonb_build_object('id', r.tenant_id, 'name', r.tenant_name),
    'agent', jsonb_build_object(
      'id', r.id, 'name', r.name, 'phone', r.phone, 'voice_id', r.voice_id, 'llm_config', r.llm_config,
      'greeting', r.greeting, 'language', r.language, 'knowledge_base_id', r.knowledge_base_id),
    'customer', r.customer);
end;
$$;
