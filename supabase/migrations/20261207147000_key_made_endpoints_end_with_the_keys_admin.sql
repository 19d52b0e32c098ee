-- An endpoint an API key set up stops receiving while the key cannot act because the
-- admin who made it no longer is one (review, issue 14).
--
-- A key's endpoint is disabled when the key is revoked or expires (20261207110000). A
-- key whose creator was demoted, removed from the tenant or disabled is refused too
-- (401 api_key_owner_inactive, private.verify_api_key), without being revoked (their
-- promotion back restores it): its endpoint kept receiving every event it was set up
-- for (tickets, internal notes) at the URL the key chose. The delivery job now disables
-- it first in that case as well, saying why; an admin enables it again (vouching for it).

-- Redefined (20261207110000_key_made_endpoints_end_with_the_key.sql): the key's creator
-- no longer an active admin of the tenant lapses it too.
create or replace function private.webhook_endpoint_key_lapsed(p_tenant_id uuid, p_endpoint_id uuid) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_prefix text;
  v_why text;
begin
  select k.prefix,
         case when k.revoked_at is not null or k.expires_at <= pg_catalog.now() then 'has expired'
              else 'was made by an admin who no longer is one (demoted, removed or disabled)' end
  into v_prefix, v_why
  from private.webhook_endpoint_key_origins o
  join public.api_keys k on k.tenant_id = o.tenant_id and k.id = o.api_key_id
  where o.tenant_id = p_tenant_id and o.endpoint_id = p_endpoint_id
    and (k.revoked_at is not null or k.expires_at <= pg_catalog.now()
         -- As private.verify_api_key asks it.
         or not exists (select 1 from public.memberships m join public.users u on u.id = m.user_id
                        where m.tenant_id = k.tenant_id and m.user_id = k.created_by and m.role = 'admin'
                          and u.status = 'active'));
  if v_prefix is null then
    return false;
  end if;
  update public.webhook_endpoints e
  set enabled = false,
      disabled_reason = format('disabled: the API key %s that set it up %s; an admin enables it again', v_prefix, v_why)
  where e.tenant_id = p_tenant_id and e.id = p_endpoint_id and e.enabled;
  return true;
end;
$$;
