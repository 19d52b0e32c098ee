-- A tenant's own telephony integration routes its numbers with an API key (issue 15:
-- scope voice:route; call events take calls:write). The provider's credentials route
-- every tenant's numbers (private.voice_route); a key is confined to its tenant: a number
-- that no agent of the tenant has is `unknown_number` to it, whatever another tenant does
-- with that number, so a key learns nothing of other tenants. For the functions'
-- database role only; the key itself is verified before (private.verify_api_key).
create function private.voice_route_in_tenant(p_tenant_id uuid, p_to text, p_from text default null) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if not exists (select 1 from public.voice_agents a where a.tenant_id = p_tenant_id and a.phone = p_to) then
    raise exception 'No agent answers this number' using errcode = 'PT404',
      detail = jsonb_build_object('code', 'unknown_number')::text;
  end if;
  if not exists (select 1 from public.voice_agents a where a.tenant_id = p_tenant_id and a.phone = p_to and a.active) then
    raise exception 'The agent for this number is inactive' using errcode = 'PT404',
      detail = jsonb_build_object('code', 'agent_inactive')::text;
  end if;
  -- The one active agent of the number is this tenant's (one active agent per number).
  return private.voice_route(p_to, p_from);
end;
$$;
revoke all on function private.voice_route_in_tenant(uuid, text, text) from public, anon, authenticated;
grant execute on function private.voice_route_in_tenant(uuid, text, text) to service_role;
