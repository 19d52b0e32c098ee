-- An agent's LLM configuration is staff's: customers read the agents without it.
--
-- Every member of a tenant read its voice agents (20261202090100_voice_agents.sql), all
-- columns: `llm_config` holds the system prompt and the tools the provider is handed at
-- /route, and a tool object commonly carries its server's URL and credentials — every
-- customer of the tenant (role user) read them, on both paths. RLS filters rows, not
-- columns, so the row policy is staff's now and members below staff read the agents
-- through private.voice_agents_for_members: every column but `llm_config` (the API
-- answers it as null for them). As customer records are read (20261206030000).

drop policy voice_agents_select on public.voice_agents;
create policy voice_agents_select on public.voice_agents for select to authenticated
  using (
    tenant_id = any ((select private.tenant_ids('agent'))::uuid[])
    or (select private.is_platform_admin())
  );

-- The tenant's agents for a member of it, without their LLM configuration; nothing for
-- a tenant the caller does not belong to. Security definer: the policy above no longer
-- shows members the rows.
create function private.voice_agents_for_members(p_tenant_id uuid)
returns table (
  id uuid,
  tenant_id uuid,
  name text,
  phone text,
  voice_id text,
  greeting text,
  language text,
  active boolean,
  knowledge_base_id uuid,
  created_at timestamptz,
  updated_at timestamptz
)
language sql stable security definer
set search_path = ''
as $$
  select a.id, a.tenant_id, a.name, a.phone, a.voice_id, a.greeting, a.language, a.active, a.knowledge_base_id,
         a.created_at, a.updated_at
  from public.voice_agents a
  where a.tenant_id = p_tenant_id
    and p_tenant_id = any ((select private.tenant_ids('user'))::uuid[])
$$;
revoke all on function private.voice_agents_for_members(uuid) from public, anon;
grant execute on function private.voice_agents_for_members(uuid) to authenticated, service_role;
