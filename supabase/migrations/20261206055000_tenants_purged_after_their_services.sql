-- A tenant is deleted outright only once its partner services are removed.
--
-- Platform admins may delete a tenant row (PostgREST, the tenants_delete policy), and
-- tenant_services goes with it (on delete cascade). Its removal is the provision job's
-- work, which needs the row: the partner ids and the sealed credentials. Deleted outright,
-- the Chatwoot account (and its webhook), the Botpress bot, the n8n login and the Odoo
-- company stayed live at the partners for good, and nothing here knew them any more.
-- Now the delete is refused (409 services_not_removed, naming them) while a service is not
-- removed, unless it never made anything (pending, with no partner id or credentials).
-- The way to purge a tenant: set it deleted (the grace period suspends and then removes
-- its services; a removal_grace_days of 0 removes them at once), then delete it.

create function private.tenant_delete_after_services() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_left text[];
begin
  select array_agg(s.service order by s.service) into v_left
  from public.tenant_services s
  where s.tenant_id = old.id and s.state <> 'removed'
    and not (s.state = 'pending' and s.external_ids = '{}'::jsonb and s.credentials_encrypted is null);
  if v_left is not null then
    raise exception 'The tenant''s partner services are not removed yet (%): set the tenant deleted, and delete it once they are',
      array_to_string(v_left, ', ')
      using errcode = 'PT409',
      detail = jsonb_build_object('code', 'services_not_removed', 'details', jsonb_build_object('services', to_jsonb(v_left)));
  end if;
  return old;
end;
$$;
revoke all on function private.tenant_delete_after_services() from public, anon, authenticated;
create trigger tenant_delete_after_services before delete on public.tenants
  for each row execute function private.tenant_delete_after_services();
