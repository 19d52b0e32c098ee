-- The events held for calls that have not started (issue 14; 20261203140000_voice_early_events.sql),
-- listed for the tenant's staff. Until now nothing showed them: staff could not see that
-- a provider's answer, transcript or end was waiting for its call's start (and would be
-- dropped 10 minutes after it arrived if the start never came), only that a call had
-- lost them. The credential each was sent under (`claims`) is not shown.
--
-- A definer with the standing of the calls' staff (tenant_ids('agent'), or a platform
-- admin): for anyone else, nothing, as for a tenant with nothing held. Only events still
-- held (a start would apply them), in the order they arrived, after an event id (the
-- pages' cursor), at most 101 (a page of 100 and one to know whether another follows).
create function private.voice_held_events(
  p_tenant_id uuid,
  p_provider_call_id text default null,
  p_after_id bigint default null,
  p_limit int default 50
)
returns table (id bigint, provider_call_id text, type text, payload jsonb, received_at timestamptz, held_until timestamptz)
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_limit int := least(greatest(coalesce(p_limit, 50), 1), 101);
begin
  if not coalesce(p_tenant_id = any (private.tenant_ids('agent')) or private.is_platform_admin(), false) then
    return;
  end if;
  return query
    select e.id, e.provider_call_id, e.type, e.payload, e.received_at, e.received_at + interval '10 minutes'
    from private.voice_call_early_events e
    where e.tenant_id = p_tenant_id
      and e.received_at >= now() - interval '10 minutes'
      and (p_provider_call_id is null or e.provider_call_id = p_provider_call_id)
      and e.id > coalesce(p_after_id, 0)
    order by e.id
    limit v_limit;
end;
$$;
revoke all on function private.voice_held_events(uuid, text, bigint, int) from public, anon;
grant execute on function private.voice_held_events(uuid, text, bigint, int) to authenticated, service_role;
