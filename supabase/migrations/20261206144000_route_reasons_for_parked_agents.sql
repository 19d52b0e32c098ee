-- /route's reason for a number only parked agents have ignored their tenant's state: a
-- deleted or suspended tenant whose agent was parked (as the README suggests after a
-- downgrade) answered `agent_inactive`, a reason the provider may retry, where an active
-- agent of the same tenant answers `tenant_deleted` or `tenant_suspended`. The tenant's
-- state now comes first there too. Only the branch for a number no active agent answers
-- changes; the answer of a routed call is the same statement as before.

-- Redefined (20261202150200_voice_route_batched.sql): the reason for parked agents.
create or replace function private.voice_route_answer(p_to text, p_from text default null) returns jsonb
language plpgsql stable security definer
set search_path = ''
-- Called outside a transaction of its own: its lock wait bounded as 20261206037000 set it.
set lock_timeout = '30s'
as $$
declare
  r record;
  v_parked_in text;
begin
  -- As 20261202150200_voice_route_batched.sql: the whole answer in one statement.
  select a.id, a.tenant_id, a.name, a.phone, a.voice_id, a.llm_config, a.greeting, a.language, a.knowledge_base_id,
         t.status, t.name as tenant_name, t.plan,
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
    -- Only parked agents have the number: the reason is their tenant's state where that
    -- is not active (the provider stops retrying a deleted tenant's number), else the
    -- agent's. A live tenant's parked agent speaks for the number before a deleted one's.
    select t.status into v_parked_in
    from public.voice_agents a join public.tenants t on t.id = a.tenant_id
    where a.phone = p_to
    order by t.status = 'active' desc, t.status = 'suspended' desc
    limit 1;
    if v_parked_in = 'active' then
      return jsonb_build_object('error', jsonb_build_object('status', 404, 'code', 'agent_inactive',
        'message', 'The agent for this number is inactive'));
    elsif v_parked_in is not null then
      return jsonb_build_object('error', jsonb_build_object('status', 404, 'code', 'tenant_' || v_parked_in,
        'message', 'The tenant of this number is ' || v_parked_in));
    end if;
    return jsonb_build_object('error', jsonb_build_object('status', 404, 'code', 'unknown_number',
      'message', 'No agent answers this number'));
  end if;
  if r.status <> 'active' then
    return jsonb_build_object('error', jsonb_build_object('status', 404, 'code', 'tenant_' || r.status,
      'message', 'The tenant of this number is ' || r.status));
  end if;
  -- The statement's reading of the plan decides only when it says yes; a no is confirmed
  -- by the rule itself (private.tenant_has_feature), as private.assert_feature did.
  if not r.has_voice and not private.tenant_has_feature(r.tenant_id, 'voice') then
    return jsonb_build_object('error', jsonb_build_object('status', 403, 'code', 'feature_not_in_plan',
      'message', 'The tenant''s plan does not include voice',
      'details', jsonb_build_object('feature', 'voice', 'plan', r.plan)));
  end if;
  return jsonb_build_object(
    'tenant', jsonb_build_object('id', r.tenant_id, 'name', r.tenant_name),
    'agent', jsonb_build_object(
      'id', r.id, 'name', r.name, 'phone', r.phone, 'voice_id', r.voice_id, 'llm_config', r.llm_config,
      'greeting', r.greeting, 'language', r.language, 'knowledge_base_id', r.knowledge_base_id),
    'customer', r.customer);
end;
$$;
