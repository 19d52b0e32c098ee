-- The call path's lookups batched (issue 14, /route speed). The provider's /route
-- requests that arrive while one is on its way to the database go together in the next
-- statement (shared/batch.ts, used by functions/voice/routes/provider.ts): one round trip for many
-- lookups, each still its own indexed probe. A batch cannot use exceptions for the
-- reasons a number does not route (one would fail its neighbours, and a subtransaction
-- per lookup costs more than the lookup), so the answer and the reason are data here:
--
-- private.voice_route_answer(to, from) answers what private.voice_route answers, or
-- {"error": {"status", "code", "message", "details"}} with the same status, code and
-- message the exceptions carried. private.voice_route is now that answer raised as
-- before (PT404 with its reason code, the plan's PT403 with its details), so both paths
-- share one definition of the rules.

create function private.voice_route_answer(p_to text, p_from text default null) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
  r record;
begin
  -- As 20261202150000_voice_route_one_statement.sql: the whole answer in one statement.
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
    if exists (select 1 from public.voice_agents where phone = p_to) then
      return jsonb_build_object('error', jsonb_build_object('status', 404, 'code', 'agent_inactive',
        'message', 'The agent for this number is inactive'));
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
revoke all on function private.voice_route_answer(text, text) from public, anon, authenticated;
grant execute on function private.voice_route_answer(text, text) to service_role;

-- The single lookup (a tenant API key's path, private.voice_route_in_tenant, and SQL
-- callers): the same answer, its reason raised as before.
create or replace function private.voice_route(p_to text, p_from text default null) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v jsonb := private.voice_route_answer(p_to, p_from);
  e jsonb := v -> 'error';
begin
  if e is null then
    return v;
  end if;
  if (e ->> 'status')::int = 403 then
    raise exception '%', e ->> 'message' using errcode = 'PT403',
      detail = jsonb_build_object('code', e ->> 'code', 'details', e -> 'details')::text;
  end if;
  raise exception '%', e ->> 'message' using errcode = 'PT404',
    detail = jsonb_build_object('code', e ->> 'code')::text;
end;
$$;
