-- The grace period before a deleted tenant's partner spaces are removed is the
-- platform's to set (review, issue 14).
--
-- settings.removal_grace_days decides when a deleted tenant's partner spaces are removed
-- (private.tenant_status_to_services), and 0 is how platform admins purge a tenant
-- (README). It sat in settings, which the tenant's own admins write (PATCH
-- /tenants/{id}, or the row through PostgREST): an admin could set 9999, so that a
-- platform admin's deletion left its spaces suspended for 27 years and the row could not
-- be purged (409 services_not_removed), or 0, so that a deletion meant as a soft one
-- destroyed the partner data at once. Only platform admins may now change it (trusted
-- paths, the service role and operators, as before).

-- Redefined (20261126100500_tenant_core_rules.sql): settings.removal_grace_days is the
-- platform admins'.
create or replace function private.guard_tenant_update() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user = 'authenticated'
     and (new.slug, new.status, new.plan, new.deleted_at) is distinct from (old.slug, old.status, old.plan, old.deleted_at)
     and not private.is_platform_admin() then
    raise exception 'only platform admins may change slug, status or plan' using errcode = 'PT403';
  end if;
  if current_user = 'authenticated'
     and new.settings -> 'removal_grace_days' is distinct from old.settings -> 'removal_grace_days'
     and not private.is_platform_admin() then
    raise exception 'only platform admins may change settings.removal_grace_days' using errcode = 'PT403';
  end if;
  return new;
end;
$$;
