-- Voice agents (issue 14): a tenant's AI agents that answer phone numbers. A dialled
-- number routes to exactly one agent: the E.164 number is unique across the platform
-- among active agents (a partial unique index, which is also the routing lookup's
-- index). The LLM configuration is validated by a zod schema on write and by the check
-- below in the database. Admins manage agents; every member reads them.

create table public.voice_agents (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  name text not null check (char_length(name) between 1 and 100),
  phone text not null check (phone ~ '^\+[1-9][0-9]{6,14}$'),
  voice_id text not null check (char_length(voice_id) between 1 and 200),
  -- {"model": text, "system_prompt": text, "temperature": 0..2, "tools": [...]}
  llm_config jsonb not null default '{}'::jsonb,
  greeting text check (char_length(greeting) <= 2000),
  language text not null default 'en' check (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$'),
  active boolean not null default true,
  knowledge_base_id uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, knowledge_base_id) references public.voice_knowledge_bases (tenant_id, id)
    on delete set null (knowledge_base_id),
  -- coalesce: a missing key makes the expression null, which a check would let through.
  constraint voice_agents_llm_config_valid check (coalesce(
    jsonb_typeof(llm_config) = 'object'
    and octet_length(llm_config::text) <= 65536
    and jsonb_typeof(llm_config -> 'model') = 'string'
    and char_length(llm_config ->> 'model') between 1 and 200
    and jsonb_typeof(llm_config -> 'system_prompt') = 'string'
    and char_length(llm_config ->> 'system_prompt') <= 20000
    and (not llm_config ? 'temperature'
         or (jsonb_typeof(llm_config -> 'temperature') = 'number'
             and (llm_config ->> 'temperature')::numeric between 0 and 2))
    and (not llm_config ? 'tools' or jsonb_typeof(llm_config -> 'tools') = 'array'),
    false))
);
-- One active agent per number, platform-wide; also the routing lookup's index.
create unique index voice_agents_active_phone_key on public.voice_agents (phone) where active;
-- Why a number does not route (an inactive agent) is found through this one.
create index voice_agents_phone_idx on public.voice_agents (phone);
create index voice_agents_tenant_name_idx on public.voice_agents (tenant_id, name, id);
create index voice_agents_kb_idx on public.voice_agents (tenant_id, knowledge_base_id) where knowledge_base_id is not null;

create trigger set_updated_at before update on public.voice_agents
  for each row execute function private.set_updated_at();
select private.enable_audit('public.voice_agents');

alter table public.voice_agents enable row level security;
revoke all on public.voice_agents from anon, authenticated;
grant select,
  insert (tenant_id, name, phone, voice_id, llm_config, greeting, language, active, knowledge_base_id),
  update (name, phone, voice_id, llm_config, greeting, language, active, knowledge_base_id),
  delete
  on public.voice_agents to authenticated;

create policy voice_agents_select on public.voice_agents for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) or (select private.is_platform_admin()));
create policy voice_agents_insert on public.voice_agents for insert to authenticated
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy voice_agents_update on public.voice_agents for update to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()))
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy voice_agents_delete on public.voice_agents for delete to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
