-- A call event naming a tenant that does not exist is 404 unknown_tenant (issue 14,
-- review). It was left to the caller: call.started then met the plan's feature trigger
-- before the foreign key and answered 403 feature_not_in_plan with plan null — telling a
-- provider with a mistyped tenant id to upgrade a plan that is not there.

-- Redefined: as 20261202160000_voice_events_tenant_state.sql, and a missing tenant is a
-- 404 of its own.
create or replace function private.voice_event_tenant_status(p_tenant_id uuid) returns text
language plpgsql stable
set search_path = ''
as $$
declare
  v_status text;
begin
  select t.status into v_status from public.tenants t where t.id = p_tenant_id;
  if not found then
    raise exception 'No such tenant' using errcode = 'PT404', detail = jsonb_build_object('code', 'unknown_tenant')::text;
  end if;
  if v_status = 'deleted' then
    raise exception 'The tenant of this call is deleted' using errcode = 'PT404',
      detail = jsonb_build_object('code', 'tenant_deleted')::text;
  end if;
  return v_status;
end;
$$;
