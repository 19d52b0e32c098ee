-- Partner services: each tenant's account in the partner products (Chatwoot, Botpress,
-- n8n, Odoo) — what the tenant should have (desired_state, set by its admins and by its
-- own lifecycle) and what the partner has as far as we know (state, the partner's ids,
-- the owner's sealed credentials). The work that makes one become the other is
-- provisioning, on the one job queue (20261126101600_provisioning.sql).

-- ------------------------------------------------------------------ the table

create table public.tenant_services (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  service text not null check (service in ('chatwoot', 'botpress', 'n8n', 'odoo')),
  -- What the tenant should have, and what the partner has as far as we know.
  desired_state text not null default 'active' check (desired_state in ('active', 'suspended', 'removed')),
  state text not null default 'pending'
    check (state in ('pending', 'provisioning', 'active', 'failed', 'suspended', 'removed')),
  external_ids jsonb not null default '{}'::jsonb check (jsonb_typeof(external_ids) = 'object'),
  -- AES-GCM ciphertext (shared/crypto.ts); never readable by API roles, shown to the
  -- tenant's admins once (private.reveal_service_credentials).
  credentials_encrypted text,
  -- Whether there is anything to reveal: readable by admins, unlike the ciphertext.
  credentials_stored boolean not null generated always as (credentials_encrypted is not null) stored,
  credentials_revealed_at timestamptz,
  last_error text,
  attempts int not null default 0,
  -- Removal waits out the grace period after a tenant is deleted.
  remove_after timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, service)
);
create index tenant_services_drift_idx on public.tenant_services (state, desired_state);

create trigger set_updated_at before update on public.tenant_services
  for each row execute function private.set_updated_at();
select private.enable_audit('public.tenant_services');

-- ------------------------------------------------------------------ access

alter table public.tenant_services enable row level security;
revoke all on public.tenant_services from anon, authenticated;
-- Everything but the ciphertext.
grant select (tenant_id, id, service, desired_state, state, external_ids, credentials_stored, credentials_revealed_at, last_error,
  attempts, remove_after, created_at, updated_at) on public.tenant_services to authenticated;
grant insert (tenant_id, service, desired_state), update (desired_state) on public.tenant_services to authenticated;

create policy tenant_services_select on public.tenant_services for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin'))::uuid[]) or (select private.is_platform_admin()));
create policy tenant_services_insert on public.tenant_services for insert to authenticated
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy tenant_services_update on public.tenant_services for update to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()))
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));

-- ------------------------------------------------------------------ the tenant's lifecycle

-- A tenant's own lifecycle drives its services: suspended → suspended, active →
-- active, deleted → removed after the grace period (settings.removal_grace_days, 7).
create function private.tenant_status_to_services() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.status is distinct from old.status then
    update public.tenant_services s set
      desired_state = case new.status when 'suspended' then 'suspended' when 'deleted' then 'removed' else 'active' end,
      remove_after = case when new.status = 'deleted'
        then now() + make_interval(days => case when new.settings ->> 'removal_grace_days' ~ '^\d{1,4}$'
                                                then (new.settings ->> 'removal_grace_days')::int else 7 end) end
    where s.tenant_id = new.id and (new.status = 'active' or s.desired_state <> 'removed');
  end if;
  return null;
end;
$$;
revoke all on function private.tenant_status_to_services() from public, anon, authenticated;
create trigger tenant_status_to_services after update of status on public.tenants
  for each row execute function private.tenant_status_to_services();

-- ------------------------------------------------------------------ credentials

-- The credentials, to the tenant's admins, once (then again only after a rotation).
create function private.reveal_service_credentials(p_tenant_id uuid, p_service text) returns text
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_ciphertext text;
begin
  if p_tenant_id <> all (private.tenant_ids('admin')) and not private.is_platform_admin() then
    raise exception 'only the tenant''s admins see its credentials' using errcode = 'PT403';
  end if;
  update public.tenant_services set credentials_revealed_at = now()
  where tenant_id = p_tenant_id and service = p_service and credentials_revealed_at is null
    and credentials_encrypted is not null
  returning credentials_encrypted into v_ciphertext;
  return v_ciphertext;
end;
$$;
revoke all on function private.reveal_service_credentials(uuid, text) from public, anon, authenticated;
grant execute on function private.reveal_service_credentials(uuid, text) to authenticated, service_role;
