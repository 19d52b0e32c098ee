-- /route through a tenant's API key gives the tenant's state before a parked agent's
-- (review of the voice product, issue 14).
--
-- 20261206144000 made the provider's lookup (private.voice_route_answer) answer a number
-- only parked agents have with the tenant's state where it is not active
-- (`tenant_suspended`, `tenant_deleted`: the provider stops retrying a dead number),
-- and `agent_inactive` (which it may retry) only in a live tenant. A tenant's own
-- telephony integration, routing with an API key (private.voice_route_in_tenant), still
-- heard `agent_inactive` for its parked agent in a suspended or deleted tenant: the same
-- number answered two ways by credential, and the integration retried a dead number.

-- Redefined (20261202141400_voice_route_api_keys.sql): the tenant's state first.
create or replace function private.voice_route_in_tenant(p_tenant_id uuid, p_to text, p_from text default null) returns jsonb
language plpgsql stable security definer
set search_path = ''
-- Called outside a transaction of its own: its lock wait bounded as 20261206037000 set it.
set lock_timeout = '30s'
as $$
declare
  v_status text;
begin
  if not exists (select 1 from public.voice_agents a where a.tenant_id = p_tenant_id and a.phone = p_to) then
    raise exception 'No agent answers this number' using errcode = 'PT404',
      detail = jsonb_build_object('code', 'unknown_number')::text;
  end if;
  if not exists (select 1 from public.voice_agents a where a.tenant_id = p_tenant_id and a.phone = p_to and a.active) then
    select t.status into v_status from public.tenants t where t.id = p_tenant_id;
    if v_status is distinct from 'active' then
      raise exception 'The tenant of this number is %', v_status using errcode = 'PT404',
        detail = jsonb_build_object('code', 'tenant_' || v_status)::text;
    end if;
    raise exception 'The agent for this number is inactive' using errcode = 'PT404',
      detail = jsonb_build_object('code', 'agent_inactive')::text;
  end if;
  -- The one active agent of the number is this tenant's (one active agent per number).
  return private.voice_route(p_to, p_from);
end;
$$;
