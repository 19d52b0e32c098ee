-- The plan's voice features and voice_agents limit, enforced (issue 15). Until now a
-- starter tenant (voice off, 0 voice agents) could run voice agents like any other.
--
-- * voice_agents counts a tenant's ACTIVE agents, in the same transaction as the change
--   (private.use_quota, 20261202071000_usage_quotas.sql): creating an active agent or
--   activating one past the limit is a 403 plan_limit_reached; deactivating or deleting
--   one gives its place back. An inactive agent routes no call, so it costs nothing —
--   a downgraded tenant keeps its agents, parked, and may still edit them. The counter
--   row is locked by the upsert until the writer commits: concurrent creates at the
--   limit queue on it and never overshoot (lock order: the agent row, then the counter).
-- * The voice feature is checked on the write path where a voice agent becomes active
--   (insert or activation) and where a call starts (voice_calls insert, the provider's
--   call.started included); knowledge_base where a knowledge base or a document is
--   added. Segments and the end of a call already started are accepted: a call in
--   progress when the plan changed finishes and is recorded. Removing, deactivating and
--   editing are always allowed, as for the other features.
-- * The provider's routing (private.voice_route) refuses a number whose tenant lacks the
--   voice feature (403 feature_not_in_plan), and its knowledge search during a call
--   (private.kb_search_for_call) one whose tenant lacks knowledge_base.
-- * GET /tenants/{id}/usage shows voice_agents.

-- ------------------------------------------------------------------ counting

create function private.count_voice_agent() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    if new.active then
      perform private.use_quota(new.tenant_id, 'voice_agents', 1);
    end if;
  elsif tg_op = 'DELETE' then
    if old.active then
      perform private.use_quota(old.tenant_id, 'voice_agents', -1);
    end if;
  elsif new.active and not old.active then
    perform private.use_quota(new.tenant_id, 'voice_agents', 1);
  elsif old.active and not new.active then
    perform private.use_quota(old.tenant_id, 'voice_agents', -1);
  end if;
  return null;
end;
$$;
revoke all on function private.count_voice_agent() from public, anon, authenticated;
create trigger count_usage after insert or delete or update of active on public.voice_agents
  for each row execute function private.count_voice_agent();

-- ------------------------------------------------------------------ features on the write path

create function private.require_voice_feature() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  case tg_table_name
    when 'voice_agents' then
      if new.active and (tg_op = 'INSERT' or not old.active) then
        perform private.assert_feature(new.tenant_id, 'voice');
      end if;
    when 'voice_calls' then
      perform private.assert_feature(new.tenant_id, 'voice');
    when 'voice_knowledge_bases', 'kb_documents' then
      perform private.assert_feature(new.tenant_id, 'knowledge_base');
  end case;
  return new;
end;
$$;
revoke all on function private.require_voice_feature() from public, anon, authenticated;
create trigger require_feature before insert or update of active on public.voice_agents
  for each row execute function private.require_voice_feature();
create trigger require_feature before insert on public.voice_calls
  for each row execute function private.require_voice_feature();
create trigger require_feature before insert on public.voice_knowledge_bases
  for each row execute function private.require_voice_feature();
create trigger require_feature before insert on public.kb_documents
  for each row execute function private.require_voice_feature();

-- ------------------------------------------------------------------ the provider's path

-- Redefined (20261202090400_voice_routing.sql): a number of a tenant whose plan lacks the
-- voice feature does not route — 403 feature_not_in_plan, after the 404 reasons.
create or replace function private.voice_route(p_to text, p_from text default null) returns jsonb
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
  perform private.assert_feature(a.tenant_id, 'voice');
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

-- The knowledge search of the provider's agent during a call: the tenant's plan must
-- include knowledge_base (403 feature_not_in_plan); a tenant that does not exist has no
-- knowledge (no rows), as before. For the function's own database role only.
create function private.kb_search_for_call(p_tenant_id uuid, p_query text, p_knowledge_base_id uuid, p_limit int)
returns table (chunk_id uuid, document_id uuid, knowledge_base_id uuid, title text, ordinal int, content text, score real)
language plpgsql stable
set search_path = ''
as $$
begin
  if exists (select 1 from public.tenants t where t.id = p_tenant_id) then
    perform private.assert_feature(p_tenant_id, 'knowledge_base');
  end if;
  return query select * from private.kb_search_in_tenant(p_tenant_id, p_query, p_knowledge_base_id, p_limit);
end;
$$;
revoke all on function private.kb_search_for_call(uuid, text, uuid, int) from public, anon, authenticated;

-- ------------------------------------------------------------------ reading usage

-- Redefined (20261202091000_api_key_quota.sql): voice_agents among the metrics. Only the
-- per-minute rate limits are not usage (reads_per_minute_per_key: 20261202100200).
create or replace function private.tenant_usage(p_tenant_id uuid) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_limits jsonb;
begin
  if p_tenant_id = any (private.tenant_ids('admin')) or private.is_platform_admin() then
    v_limits := private.tenant_entitlements(p_tenant_id) -> 'limits';
  end if;
  if v_limits is null then
    raise exception 'Tenant not found' using errcode = 'PT404', detail = '{"code": "not_found"}';
  end if;
  return jsonb_build_object(
    'tenant_id', p_tenant_id,
    'month', to_char(private.usage_period('tickets_per_month'), 'YYYY-MM'),
    'metrics', (
      select jsonb_object_agg(m.metric, jsonb_build_object(
        'used', coalesce((select u.used from private.usage_counters u
                          where u.tenant_id = p_tenant_id and u.metric = m.metric and u.period = private.usage_period(m.metric)), 0),
        'limit', v_limits -> m.metric))
      from (select k as metric from jsonb_object_keys(v_limits) k
            where k not in ('requests_per_minute', 'requests_per_minute_per_caller', 'reads_per_minute_per_key')
            union select 'call_minutes') m));
end;
$$;
revoke all on function private.tenant_usage(uuid) from public, anon;
grant execute on function private.tenant_usage(uuid) to authenticated, service_role;

-- ------------------------------------------------------------------ what is there today

insert into private.usage_counters (tenant_id, metric, period, used)
select tenant_id, 'voice_agents', date '1970-01-01', count(*) from public.voice_agents where active group by tenant_id
on conflict (tenant_id, metric, period) do update set used = excluded.used;
